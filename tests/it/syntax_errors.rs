//! Snapshots of rendered syntax diagnostics for realistic mistakes.

use crate::helpers::{diagnostics, snapshot_body};

macro_rules! syntax_snap {
    ($name:ident, $code:expr, $src:expr) => {
        #[test]
        fn $name() {
            let (diags, _) = diagnostics($src);
            assert!(
                diags.iter().any(|d| d.code == $code),
                "expected {} in {:#?}",
                $code,
                diags
            );
            insta::assert_snapshot!(stringify!($name), snapshot_body($src));
        }
    };
}

syntax_snap!(
    missing_closing_brace,
    "nurture::syntax::unclosed-brace",
    "workflow welcome {\n  when contact_created\n  send email \"hi\"\n"
);
syntax_snap!(
    missing_open_brace_after_name,
    "nurture::syntax::unexpected-token",
    "workflow welcome\n  when contact_created\n}\n"
);
syntax_snap!(
    unterminated_string,
    "nurture::syntax::unterminated-string",
    "workflow w {\n  when contact_created\n  send email \"welcome\n}\n"
);
syntax_snap!(
    wait_for_without_within,
    "nurture::syntax::wait-for-without-within",
    "workflow w {\n  when contact_created\n  wait for email_opened {\n  }\n}\n"
);
syntax_snap!(
    bad_duration_unit_glued,
    "nurture::syntax::bad-duration-unit",
    "workflow w {\n  when contact_created\n  wait 3dayz\n}\n"
);
syntax_snap!(
    bad_duration_unit_spaced,
    "nurture::syntax::bad-duration-unit",
    "workflow w {\n  when contact_created\n  wait 3 days\n}\n"
);
syntax_snap!(
    duration_without_unit,
    "nurture::syntax::bad-duration-unit",
    "workflow w {\n  when contact_created\n  wait 2\n}\n"
);
syntax_snap!(assign_instead_of_compare, "nurture::syntax::assign-in-condition", "workflow w {\n  when contact_created\n  if contact.plan = \"paid\" {\n    tag \"paying\"\n  }\n}\n");
syntax_snap!(
    compare_instead_of_assign,
    "nurture::syntax::compare-in-set",
    "workflow w {\n  when contact_created\n  set contact.score == 5\n}\n"
);
syntax_snap!(
    keyword_as_workflow_name,
    "nurture::syntax::keyword-as-name",
    "workflow send {\n  when contact_created\n}\n"
);
syntax_snap!(
    keyword_as_field_name,
    "nurture::syntax::keyword-as-name",
    "contact {\n  email: string\n  event: string\n}\n"
);
syntax_snap!(
    bare_field_name,
    "nurture::syntax::bare-name",
    "workflow w {\n  when contact_created\n  if score > 10 {\n    tag \"hot\"\n  }\n}\n"
);
syntax_snap!(
    misspelled_statement,
    "nurture::syntax::unexpected-token",
    "workflow w {\n  when contact_created\n  sned email \"hi\"\n}\n"
);
syntax_snap!(
    misspelled_top_level,
    "nurture::syntax::unexpected-token",
    "wrkflow w {\n  when contact_created\n}\n"
);
syntax_snap!(
    missing_template,
    "nurture::syntax::unexpected-token",
    "workflow w {\n  when contact_created\n  send email welcome\n}\n"
);
syntax_snap!(
    split_share_without_percent,
    "nurture::syntax::unexpected-token",
    "workflow w {\n  when contact_created\n  split {\n    50 { send email \"a\" }\n  }\n}\n"
);
syntax_snap!(
    field_without_colon,
    "nurture::syntax::unexpected-token",
    "contact {\n  email string\n}\n"
);
syntax_snap!(
    missing_trigger,
    "nurture::syntax::missing-trigger",
    "workflow w {\n  send email \"hi\"\n}\n"
);
syntax_snap!(
    trigger_after_statement,
    "nurture::syntax::header-after-statement",
    "workflow w {\n  send email \"hi\"\n  when contact_created\n}\n"
);
syntax_snap!(
    two_triggers,
    "nurture::syntax::duplicate-header",
    "workflow w {\n  when contact_created\n  when purchase\n}\n"
);
syntax_snap!(
    bad_reenter,
    "nurture::syntax::unexpected-token",
    "workflow w {\n  when contact_created\n  reenter sometimes\n}\n"
);
syntax_snap!(
    invalid_datetime,
    "nurture::syntax::bad-datetime",
    "workflow w {\n  when contact.since < @2026-13-45T00:00:00Z\n}\n"
);
syntax_snap!(
    stray_closing_brace,
    "nurture::syntax::unexpected-token",
    "workflow w {\n  when contact_created\n}\n}\n"
);

/// One run reports the errors of several items, not only the first.
#[test]
fn errors_in_several_items_are_all_reported() {
    let src = "workflow a {\n  when x\n  wait 3dayz\n}\n\nworkflow b {\n  when x\n  send email \"oops\n}\n\nworkflow c {\n  when x\n  if contact.a = 1 { }\n}\n";
    let (diags, _) = diagnostics(src);
    let codes: Vec<&str> = diags
        .iter()
        .filter(|d| d.code.starts_with("nurture::syntax"))
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(
        codes,
        [
            "nurture::syntax::bad-duration-unit",
            "nurture::syntax::unterminated-string",
            "nurture::syntax::assign-in-condition"
        ]
    );
}

/// Diagnostics never mention pest's rule names.
#[test]
fn messages_never_name_grammar_rules() {
    for src in [
        "workflow",
        "contact { a: }",
        "event e { x: int, }",
        "workflow w { when x if { } }",
        "@@@",
    ] {
        let (diags, rendered) = diagnostics(src);
        assert!(!diags.is_empty(), "{src}");
        for word in [
            "kw_",
            "_stmt",
            "op_",
            "expr_",
            "EOI",
            "item_or_end",
            "Rule::",
        ] {
            assert!(!rendered.contains(word), "{src}: {rendered}");
        }
    }
}

/// Several mistakes in one workflow are all reported, each where it is.
#[test]
fn errors_in_one_workflow_are_all_reported() {
    let src = "workflow w {\n  when purchase\n  wait 3dayz\n  send email \"x\n  if contact.a = 1 {\n    tag \"é\"\n  }\n  sned email \"y\"\n}\n";
    let (diags, _) = diagnostics(src);
    let got: Vec<(usize, &str)> = diags
        .iter()
        .filter(|d| d.code.starts_with("nurture::syntax"))
        .map(|d| {
            (
                src[..d.span.start as usize].matches('\n').count() + 1,
                d.code.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (3, "nurture::syntax::bad-duration-unit"),
            (4, "nurture::syntax::unterminated-string"),
            (5, "nurture::syntax::assign-in-condition"),
            (8, "nurture::syntax::unexpected-token"),
        ]
    );
}
