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
    r#"workflow welcome {
  when contact_created
  send email "hi"
"#
);
syntax_snap!(
    missing_open_brace_after_name,
    "nurture::syntax::unexpected-token",
    r"workflow welcome
  when contact_created
}
"
);
syntax_snap!(
    unterminated_string,
    "nurture::syntax::unterminated-string",
    r#"workflow w {
  when contact_created
  send email "welcome
}
"#
);
syntax_snap!(
    wait_for_without_within,
    "nurture::syntax::wait-for-without-within",
    r"workflow w {
  when contact_created
  wait for email_opened {
  }
}
"
);
syntax_snap!(
    bad_duration_unit_glued,
    "nurture::syntax::bad-duration-unit",
    r"workflow w {
  when contact_created
  wait 3dayz
}
"
);
syntax_snap!(
    bad_duration_unit_spaced,
    "nurture::syntax::bad-duration-unit",
    r"workflow w {
  when contact_created
  wait 3 days
}
"
);
syntax_snap!(
    duration_without_unit,
    "nurture::syntax::bad-duration-unit",
    r"workflow w {
  when contact_created
  wait 2
}
"
);
syntax_snap!(
    assign_instead_of_compare,
    "nurture::syntax::assign-in-condition",
    r#"workflow w {
  when contact_created
  if contact.plan = "paid" {
    tag "paying"
  }
}
"#
);
syntax_snap!(
    compare_instead_of_assign,
    "nurture::syntax::compare-in-set",
    r"workflow w {
  when contact_created
  set contact.score == 5
}
"
);
syntax_snap!(
    keyword_as_workflow_name,
    "nurture::syntax::keyword-as-name",
    r"workflow send {
  when contact_created
}
"
);
syntax_snap!(
    keyword_as_field_name,
    "nurture::syntax::keyword-as-name",
    r"contact {
  email: string
  event: string
}
"
);
syntax_snap!(
    bare_field_name,
    "nurture::syntax::bare-name",
    r#"workflow w {
  when contact_created
  if score > 10 {
    tag "hot"
  }
}
"#
);
syntax_snap!(
    misspelled_statement,
    "nurture::syntax::unexpected-token",
    r#"workflow w {
  when contact_created
  sned email "hi"
}
"#
);
syntax_snap!(
    misspelled_top_level,
    "nurture::syntax::unexpected-token",
    r"wrkflow w {
  when contact_created
}
"
);
syntax_snap!(
    missing_template,
    "nurture::syntax::unexpected-token",
    r"workflow w {
  when contact_created
  send email welcome
}
"
);
syntax_snap!(
    split_share_without_percent,
    "nurture::syntax::unexpected-token",
    r#"workflow w {
  when contact_created
  split {
    50 { send email "a" }
  }
}
"#
);
syntax_snap!(
    field_without_colon,
    "nurture::syntax::unexpected-token",
    r"contact {
  email string
}
"
);
syntax_snap!(
    missing_trigger,
    "nurture::syntax::missing-trigger",
    r#"workflow w {
  send email "hi"
}
"#
);
syntax_snap!(
    trigger_after_statement,
    "nurture::syntax::header-after-statement",
    r#"workflow w {
  send email "hi"
  when contact_created
}
"#
);
syntax_snap!(
    two_triggers,
    "nurture::syntax::duplicate-header",
    r"workflow w {
  when contact_created
  when purchase
}
"
);
syntax_snap!(
    bad_reenter,
    "nurture::syntax::unexpected-token",
    r"workflow w {
  when contact_created
  reenter sometimes
}
"
);
syntax_snap!(
    invalid_datetime,
    "nurture::syntax::bad-datetime",
    r"workflow w {
  when contact.since < @2026-13-45T00:00:00Z
}
"
);
syntax_snap!(
    stray_closing_brace,
    "nurture::syntax::unexpected-token",
    r"workflow w {
  when contact_created
}
}
"
);

/// One run reports the errors of several items, not only the first.
#[test]
fn errors_in_several_items_are_all_reported() {
    let src = r#"workflow a {
  when x
  wait 3dayz
}

workflow b {
  when x
  send email "oops
}

workflow c {
  when x
  if contact.a = 1 { }
}
"#;
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
    let src = r#"workflow w {
  when purchase
  wait 3dayz
  send email "x
  if contact.a = 1 {
    tag "é"
  }
  sned email "y"
}
"#;
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

// Syntax from other languages gets "write this instead".
syntax_snap!(
    double_ampersand,
    "nurture::syntax::foreign-syntax",
    r#"workflow w {
  when contact_created where contact.score > 1 && contact.score < 9
  tag "x"
}
"#
);
syntax_snap!(
    double_bar,
    "nurture::syntax::foreign-syntax",
    r#"workflow w {
  when contact_created where contact.score > 1 || contact.score < 9
  tag "x"
}
"#
);
syntax_snap!(
    bang_for_not,
    "nurture::syntax::foreign-syntax",
    r#"workflow w {
  when contact_created where !contact.opted_in
  tag "x"
}
"#
);
syntax_snap!(
    elif_for_else_if,
    "nurture::syntax::foreign-syntax",
    r#"workflow w {
  when contact_created
  if contact.score > 1 {
    tag "a"
  } elif contact.score > 2 {
    tag "b"
  }
}
"#
);
syntax_snap!(
    hash_comment,
    "nurture::syntax::foreign-syntax",
    r#"workflow w {
  when contact_created
  # say hello
  tag "x"
}
"#
);
syntax_snap!(
    arrow_for_greater_or_equal,
    "nurture::syntax::foreign-syntax",
    r#"workflow w {
  when contact_created where contact.score => 10
  tag "x"
}
"#
);

/// Each of these is one error, not a cascade.
#[test]
fn one_error_for_each_common_mistake() {
    for (src, code) in [
        ("workflow w {\n  when contact_created\n  wait 1.5d\n  tag \"x\"\n}\n", "nurture::syntax::bad-duration-unit"),
        ("workflow w {\n  when contact_created\n  wait 2days\n  tag \"x\"\n}\n", "nurture::syntax::bad-duration-unit"),
        ("workflow w {\n  when contact_created\n  wait 1mo\n  tag \"x\"\n}\n", "nurture::syntax::bad-duration-unit"),
        ("workflow w {\n  when contact_created\n  wait 2 d\n  tag \"x\"\n}\n", "nurture::syntax::bad-duration-unit"),
        ("workflow w {\n  when contact_created\n  wait for email_opened where event.campaign == \"a\" {\n    tag \"x\"\n  }\n}\n", "nurture::syntax::wait-for-without-within"),
        ("workflow w\n  when contact_created\n  tag \"x\"\n}\n", "nurture::syntax::unexpected-token"),
    ] {
        let (diags, rendered) = diagnostics(src);
        let codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, [code], "{src}\n{rendered}");
    }
}

syntax_snap!(
    assign_in_a_trigger_where,
    "nurture::syntax::assign-in-condition",
    r#"workflow w {
  when purchase where event.amount = 3.0
  tag "x"
}
"#
);
syntax_snap!(
    set_without_contact,
    "nurture::syntax::bare-name",
    r#"workflow w {
  when purchase
  set score = 5
}
"#
);
syntax_snap!(
    with_without_braces,
    "nurture::syntax::unexpected-token",
    r#"workflow w {
  when purchase
  send email "x" with plan: "free"
}
"#
);
syntax_snap!(
    with_missing_comma,
    "nurture::syntax::unexpected-token",
    r#"workflow w {
  when purchase
  webhook "crm" with { plan: "free" amount: 1 }
}
"#
);

/// After a mistake in a `with { }` or a `wait for`, the valid lines that
/// follow are not reported: one error each.
#[test]
fn one_error_per_mistake() {
    for src in [
        "workflow w {\n  when purchase\n  send email \"x\" with { a: }\n  send email \"y\"\n  tag \"z\"\n}\n",
        "workflow w {\n  when purchase\n  wait for email_opened within {\n    tag \"a\"\n  }\n  send email \"y\"\n}\n",
        "workflow w {\n  when purchase\n  wait for email_opened 2d\n  send email \"y\"\n}\n",
        "workflow w {\n  when purchase\n  send email \"x\" with a: 1\n  send email \"y\"\n}\n",
    ] {
        let (diags, rendered) = diagnostics(src);
        assert_eq!(diags.len(), 1, "{src}\n{rendered}");
    }
}
