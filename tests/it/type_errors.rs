//! One rendered-diagnostic snapshot per type error kind, each asserting its code.

use crate::helpers::{diagnostics, snapshot_body, with_schema};

macro_rules! type_snap {
    ($name:ident, $code:expr, $body:expr) => {
        #[test]
        fn $name() {
            let src = with_schema($body);
            let (diags, _) = diagnostics(&src);
            let errors: Vec<_> = diags.iter().map(|d| d.code.as_str()).collect();
            assert_eq!(errors, [$code], "{:#?}", diags);
            // Only the workflow is shown: the schema is the same in every test.
            insta::assert_snapshot!(
                stringify!($name),
                snapshot_body(&src)
                    .split_once("\n\nworkflow")
                    .map_or(String::new(), |(_, rest)| format!("workflow{rest}"))
            );
        }
    };
}

type_snap!(
    unknown_field,
    "nurture::type::unknown-field",
    r#"workflow w {
  when contact_created
  if contact.scroe > 3 { tag "x" }
}
"#
);
type_snap!(
    unknown_field_in_set,
    "nurture::type::unknown-field",
    r"workflow w {
  when contact_created
  set contact.lifetime_valu = 1.0
}
"
);
type_snap!(
    unknown_event_trigger,
    "nurture::type::unknown-event",
    r"workflow w {
  when purchse
}
"
);
type_snap!(
    unknown_event_wait_for,
    "nurture::type::unknown-event",
    r"workflow w {
  when contact_created
  wait for email_open within 2d
}
"
);
type_snap!(
    unknown_event_goal,
    "nurture::type::unknown-event",
    r"workflow w {
  when contact_created
  goal purchased
}
"
);
type_snap!(
    unknown_payload_field,
    "nurture::type::unknown-payload-field",
    r"workflow w {
  when purchase where event.amout > 10.0
}
"
);
type_snap!(
    unknown_channel,
    "nurture::type::unknown-channel",
    r#"workflow w {
  when contact_created
  send emial "hi"
}
"#
);
type_snap!(
    channel_without_field,
    "nurture::type::no-channel-field",
    r#"workflow w {
  when contact_created
  send push "hi"
}
"#
);
type_snap!(
    sms_without_phone_check,
    "nurture::type::channel-unset",
    r#"workflow w {
  when contact_created
  send sms "hi"
}
"#
);
type_snap!(
    narrowing_ends_at_wait,
    "nurture::type::channel-unset",
    r#"workflow w {
  when contact_created
  if contact.phone is set {
    wait 1d
    send sms "hi"
  }
}
"#
);
type_snap!(
    narrowing_ends_at_wait_for,
    "nurture::type::channel-unset",
    r#"workflow w {
  when contact_created
  if contact.phone is not set { exit }
  wait for email_opened within 1d
  send sms "hi"
}
"#
);
type_snap!(
    optional_in_arithmetic,
    "nurture::type::optional-unchecked",
    r#"workflow w {
  when contact_created
  if now - contact.signed_up_at > 1d { tag "old" }
}
"#
);
type_snap!(
    optional_in_interpolation,
    "nurture::type::optional-unchecked",
    r#"workflow w {
  when contact_created
  notify "sales" "hello {contact.first_name}"
}
"#
);
type_snap!(
    optional_in_or_branch,
    "nurture::type::optional-unchecked",
    r#"workflow w {
  when contact_created
  if contact.phone is set or len(contact.phone) > 3 { tag "x" }
}
"#
);
type_snap!(
    enum_bad_member_compare,
    "nurture::type::enum-member",
    r#"workflow w {
  when contact_created
  if contact.plan == "gold" { tag "x" }
}
"#
);
type_snap!(
    enum_bad_member_assign,
    "nurture::type::enum-member",
    r#"workflow w {
  when contact_created
  set contact.plan = "premium"
}
"#
);
type_snap!(
    enum_bad_member_in_list,
    "nurture::type::enum-member",
    r#"workflow w {
  when contact.plan in ["free", "pro"]
}
"#
);
type_snap!(
    set_type_mismatch,
    "nurture::type::bad-assign",
    r#"workflow w {
  when contact_created
  set contact.score = "high"
}
"#
);
type_snap!(
    set_int_to_float_field,
    "nurture::type::bad-assign",
    r"workflow w {
  when contact_created
  set contact.lifetime_value = 5
}
"
);
type_snap!(
    set_optional_into_required,
    "nurture::type::bad-assign",
    r"workflow w {
  when contact_created
  set contact.country = contact.first_name
}
"
);
type_snap!(
    compound_assign_on_string,
    "nurture::type::bad-compound-assign",
    r"workflow w {
  when contact_created
  set contact.country += 1
}
"
);
type_snap!(
    compound_assign_float_into_int,
    "nurture::type::bad-compound-assign",
    r"workflow w {
  when purchase
  set contact.score += trigger.amount
}
"
);
type_snap!(
    compare_mismatch,
    "nurture::type::mismatch",
    r#"workflow w {
  when contact_created
  if contact.country == 3 { tag "x" }
}
"#
);
type_snap!(
    condition_not_bool,
    "nurture::type::mismatch",
    r#"workflow w {
  when contact_created
  if contact.score { tag "x" }
}
"#
);
type_snap!(
    bad_arithmetic,
    "nurture::type::bad-operand",
    r#"workflow w {
  when contact_created
  if contact.opted_in + 1 > 2 { tag "x" }
}
"#
);
type_snap!(
    order_mismatch,
    "nurture::type::mismatch",
    r#"workflow w {
  when contact_created
  if contact.signed_up_at is set and contact.signed_up_at > 5 { tag "x" }
}
"#
);
type_snap!(
    in_needs_collection,
    "nurture::type::mismatch",
    r#"workflow w {
  when contact_created
  if "ES" in contact.country { tag "x" }
}
"#
);
type_snap!(
    unknown_function,
    "nurture::type::unknown-function",
    r#"workflow w {
  when contact_created
  if lenght(contact.email) > 3 { tag "x" }
}
"#
);
type_snap!(
    wrong_arity,
    "nurture::type::arity",
    r#"workflow w {
  when contact_created
  if contains(contact.email) { tag "x" }
}
"#
);
type_snap!(
    event_outside_scope,
    "nurture::type::event-out-of-scope",
    r"workflow w {
  when contact_created
  tag event.campaign
}
"
);
type_snap!(
    event_after_timeout,
    "nurture::type::event-out-of-scope",
    r"workflow w {
  when contact_created
  wait for email_opened within 1d {
  } timeout {
    tag event.campaign
  }
}
"
);
type_snap!(
    trigger_without_event,
    "nurture::type::trigger-out-of-scope",
    r"workflow w {
  when contact.score > 10
  tag trigger.order_id
}
"
);
type_snap!(
    split_not_100,
    "nurture::type::split-total",
    r#"workflow w {
  when contact_created
  split {
    50% { send email "a" }
    30% { send email "b" }
  }
}
"#
);
/// A 0% share is legal: only the total must be 100 (the `unreachable`
/// lint reports the empty arm).
#[test]
fn a_zero_share_is_accepted() {
    let src = with_schema(
        r#"workflow w {
  when contact_created
  split {
    100% { send email "a" }
    0% { send email "b" }
  }
}
"#,
    );
    let (diags, _) = diagnostics(&src);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:#?}");
}
type_snap!(
    zero_wait,
    "nurture::type::non-positive-duration",
    r"workflow w {
  when contact_created
  wait 0s
}
"
);
type_snap!(
    zero_reenter,
    "nurture::type::non-positive-duration",
    r"workflow w {
  when contact_created
  reenter after 0d
}
"
);
type_snap!(
    is_set_on_required,
    "nurture::type::always-set",
    r#"workflow w {
  when contact_created
  if contact.email is set { tag "x" }
}
"#
);
type_snap!(
    duplicate_workflow,
    "nurture::type::duplicate-name",
    r"workflow w {
  when contact_created
}
workflow w {
  when purchase
}
"
);
type_snap!(
    duplicate_with_key,
    "nurture::type::duplicate-name",
    r#"workflow w {
  when contact_created
  send email "x" with { a: 1, a: 2 }
}
"#
);

/// Schema-level mistakes, reported where the declaration is.
#[test]
fn schema_errors() {
    let src = r#"contact {
  email: strng
  phone: int @channel(sms)
  ok: string @consent(email)
  tags: set<int>
  plan: "a" | "b" = "c"
  n: int = contact.x
  e: string @channel(emial)
}
event contact_created {}
event e { a: int, a: int }
"#;
    let (diags, rendered) = diagnostics(src);
    let codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "nurture::type::unknown-type",
            "nurture::type::bad-annotation",
            "nurture::type::bad-annotation",
            "nurture::type::bad-set-element",
            "nurture::type::enum-member",
            "nurture::type::non-constant-default",
            "nurture::type::unknown-channel",
            "nurture::type::duplicate-name",
            "nurture::type::duplicate-name",
        ],
        "{rendered}"
    );
    insta::assert_snapshot!("schema_errors", rendered);
}

#[test]
fn program_without_contact_block() {
    let (diags, _) = diagnostics("event e {}\n");
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, "nurture::type::no-contact-block");
}

#[test]
fn two_contact_blocks() {
    let (diags, _) = diagnostics(
        r"contact { a: int }
contact { b: int }
",
    );
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, "nurture::type::multiple-contact-blocks");
}

/// A single mistake is reported once, not as a page of follow-on errors.
#[test]
fn one_mistake_one_error() {
    let src = with_schema(
        r#"workflow w {
  when contact_created
  if contact.scroe + 1 > 2 and contact.scroe * 2 < len(contact.scroe) { tag "x" }
}
"#,
    );
    let (diags, _) = diagnostics(&src);
    assert_eq!(diags.len(), 3, "{diags:#?}");
    assert!(diags
        .iter()
        .all(|d| d.code == "nurture::type::unknown-field"));
}

#[test]
fn too_many_condition_triggers() {
    let mut src = String::from("contact { score: int = 0 }\n");
    for i in 0..65 {
        src.push_str(&format!("workflow w{i} {{ when contact.score > {i} }}\n"));
    }
    let (diags, _) = diagnostics(&src);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].code, "nurture::type::too-many-triggers");
    assert!(diags[0].message.contains("at most 64"));
}

// A `when COND` trigger reads only attributes.
type_snap!(
    condition_trigger_reads_history,
    "nurture::type::condition-trigger-reads-time",
    r#"workflow w {
  when contact.opted_in and not seen(email_opened within 60d)
  tag "x"
}
"#
);
type_snap!(
    condition_trigger_reads_now,
    "nurture::type::condition-trigger-reads-time",
    r#"workflow w {
  when contact.score > 3 and now > @2026-06-01T00:00:00Z
  tag "x"
}
"#
);
type_snap!(
    condition_trigger_reads_count,
    "nurture::type::condition-trigger-reads-time",
    r#"workflow w {
  when count(purchase) > 2
  tag "x"
}
"#
);

/// The same reads are fine in an event trigger's `where`.
#[test]
fn an_event_where_may_read_history_and_time() {
    let src = with_schema(
        r#"workflow w {
  when purchase where contact.opted_in and not seen(email_opened within 60d) and now > @2026-01-01T00:00:00Z
  tag "x"
}
"#,
    );
    let (diags, _) = diagnostics(&src);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:#?}");
}

/// `at`, `contact`, `type` and `id` are an input record's own keys: no
/// payload field may take one of those names.
#[test]
fn reserved_payload_field_names() {
    // (`contact` is a keyword: refused as a name already.)
    for name in ["at", "type", "id"] {
        let src = with_schema(&format!("event order {{ {name}: string, total: float }}\n"));
        let (diags, rendered) = diagnostics(&src);
        let codes: Vec<_> = diags.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["nurture::type::reserved-field"], "{rendered}");
        assert!(
            rendered.contains(&format!("`{name}` cannot name a payload field")),
            "{rendered}"
        );
    }
}

/// A split's name is unique in its workflow, an arm's label in its split.
#[test]
fn split_names_and_arm_labels_are_unique() {
    let src = with_schema(
        "workflow w {\n  when contact_created\n  split \"t\" {\n    50% as \"a\" { tag \"x\" }\n    50% as \"a\" { tag \"y\" }\n  }\n  split \"t\" {\n    100% { tag \"z\" }\n  }\n}\n",
    );
    let (diags, rendered) = diagnostics(&src);
    let codes: Vec<_> = diags.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "nurture::type::duplicate-name",
            "nurture::type::duplicate-name"
        ],
        "{rendered}"
    );
    assert!(
        rendered.contains("two splits of this workflow are named \"t\""),
        "{rendered}"
    );
    assert!(
        rendered.contains("two arms of this split are labelled \"a\""),
        "{rendered}"
    );
}
