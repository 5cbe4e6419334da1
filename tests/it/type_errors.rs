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
    "workflow w {\n  when contact_created\n  if contact.scroe > 3 { tag \"x\" }\n}\n"
);
type_snap!(
    unknown_field_in_set,
    "nurture::type::unknown-field",
    "workflow w {\n  when contact_created\n  set contact.lifetime_valu = 1.0\n}\n"
);
type_snap!(
    unknown_event_trigger,
    "nurture::type::unknown-event",
    "workflow w {\n  when purchse\n}\n"
);
type_snap!(
    unknown_event_wait_for,
    "nurture::type::unknown-event",
    "workflow w {\n  when contact_created\n  wait for email_open within 2d\n}\n"
);
type_snap!(
    unknown_event_goal,
    "nurture::type::unknown-event",
    "workflow w {\n  when contact_created\n  goal purchased\n}\n"
);
type_snap!(
    unknown_payload_field,
    "nurture::type::unknown-payload-field",
    "workflow w {\n  when purchase where event.amout > 10.0\n}\n"
);
type_snap!(
    unknown_channel,
    "nurture::type::unknown-channel",
    "workflow w {\n  when contact_created\n  send emial \"hi\"\n}\n"
);
type_snap!(
    channel_without_field,
    "nurture::type::no-channel-field",
    "workflow w {\n  when contact_created\n  send push \"hi\"\n}\n"
);
type_snap!(
    sms_without_phone_check,
    "nurture::type::channel-unset",
    "workflow w {\n  when contact_created\n  send sms \"hi\"\n}\n"
);
type_snap!(narrowing_ends_at_wait, "nurture::type::channel-unset", "workflow w {\n  when contact_created\n  if contact.phone is set {\n    wait 1d\n    send sms \"hi\"\n  }\n}\n");
type_snap!(narrowing_ends_at_wait_for, "nurture::type::channel-unset", "workflow w {\n  when contact_created\n  if contact.phone is not set { exit }\n  wait for email_opened within 1d\n  send sms \"hi\"\n}\n");
type_snap!(optional_in_arithmetic, "nurture::type::optional-unchecked", "workflow w {\n  when contact_created\n  if now - contact.signed_up_at > 1d { tag \"old\" }\n}\n");
type_snap!(
    optional_in_interpolation,
    "nurture::type::optional-unchecked",
    "workflow w {\n  when contact_created\n  notify \"sales\" \"hello {contact.first_name}\"\n}\n"
);
type_snap!(optional_in_or_branch, "nurture::type::optional-unchecked", "workflow w {\n  when contact_created\n  if contact.phone is set or len(contact.phone) > 3 { tag \"x\" }\n}\n");
type_snap!(
    enum_bad_member_compare,
    "nurture::type::enum-member",
    "workflow w {\n  when contact_created\n  if contact.plan == \"gold\" { tag \"x\" }\n}\n"
);
type_snap!(
    enum_bad_member_assign,
    "nurture::type::enum-member",
    "workflow w {\n  when contact_created\n  set contact.plan = \"premium\"\n}\n"
);
type_snap!(
    enum_bad_member_in_list,
    "nurture::type::enum-member",
    "workflow w {\n  when contact.plan in [\"free\", \"pro\"]\n}\n"
);
type_snap!(
    set_type_mismatch,
    "nurture::type::bad-assign",
    "workflow w {\n  when contact_created\n  set contact.score = \"high\"\n}\n"
);
type_snap!(
    set_int_to_float_field,
    "nurture::type::bad-assign",
    "workflow w {\n  when contact_created\n  set contact.lifetime_value = 5\n}\n"
);
type_snap!(
    set_optional_into_required,
    "nurture::type::bad-assign",
    "workflow w {\n  when contact_created\n  set contact.country = contact.first_name\n}\n"
);
type_snap!(
    compound_assign_on_string,
    "nurture::type::bad-compound-assign",
    "workflow w {\n  when contact_created\n  set contact.country += 1\n}\n"
);
type_snap!(
    compound_assign_float_into_int,
    "nurture::type::bad-compound-assign",
    "workflow w {\n  when purchase\n  set contact.score += trigger.amount\n}\n"
);
type_snap!(
    compare_mismatch,
    "nurture::type::mismatch",
    "workflow w {\n  when contact_created\n  if contact.country == 3 { tag \"x\" }\n}\n"
);
type_snap!(
    condition_not_bool,
    "nurture::type::mismatch",
    "workflow w {\n  when contact_created\n  if contact.score { tag \"x\" }\n}\n"
);
type_snap!(
    bad_arithmetic,
    "nurture::type::bad-operand",
    "workflow w {\n  when contact_created\n  if contact.opted_in + 1 > 2 { tag \"x\" }\n}\n"
);
type_snap!(order_mismatch, "nurture::type::mismatch", "workflow w {\n  when contact_created\n  if contact.signed_up_at is set and contact.signed_up_at > 5 { tag \"x\" }\n}\n");
type_snap!(
    in_needs_collection,
    "nurture::type::mismatch",
    "workflow w {\n  when contact_created\n  if \"ES\" in contact.country { tag \"x\" }\n}\n"
);
type_snap!(
    unknown_function,
    "nurture::type::unknown-function",
    "workflow w {\n  when contact_created\n  if lenght(contact.email) > 3 { tag \"x\" }\n}\n"
);
type_snap!(
    wrong_arity,
    "nurture::type::arity",
    "workflow w {\n  when contact_created\n  if contains(contact.email) { tag \"x\" }\n}\n"
);
type_snap!(
    event_outside_scope,
    "nurture::type::event-out-of-scope",
    "workflow w {\n  when contact_created\n  tag event.campaign\n}\n"
);
type_snap!(event_after_timeout, "nurture::type::event-out-of-scope", "workflow w {\n  when contact_created\n  wait for email_opened within 1d {\n  } timeout {\n    tag event.campaign\n  }\n}\n");
type_snap!(
    trigger_without_event,
    "nurture::type::trigger-out-of-scope",
    "workflow w {\n  when contact.score > 10\n  tag trigger.order_id\n}\n"
);
type_snap!(split_not_100, "nurture::type::split-total", "workflow w {\n  when contact_created\n  split {\n    50% { send email \"a\" }\n    30% { send email \"b\" }\n  }\n}\n");
type_snap!(split_zero_share, "nurture::type::split-share", "workflow w {\n  when contact_created\n  split {\n    100% { send email \"a\" }\n    0% { send email \"b\" }\n  }\n}\n");
type_snap!(
    zero_wait,
    "nurture::type::non-positive-duration",
    "workflow w {\n  when contact_created\n  wait 0s\n}\n"
);
type_snap!(
    zero_reenter,
    "nurture::type::non-positive-duration",
    "workflow w {\n  when contact_created\n  reenter after 0d\n}\n"
);
type_snap!(
    is_set_on_required,
    "nurture::type::always-set",
    "workflow w {\n  when contact_created\n  if contact.email is set { tag \"x\" }\n}\n"
);
type_snap!(
    duplicate_workflow,
    "nurture::type::duplicate-name",
    "workflow w {\n  when contact_created\n}\nworkflow w {\n  when purchase\n}\n"
);
type_snap!(
    duplicate_with_key,
    "nurture::type::duplicate-name",
    "workflow w {\n  when contact_created\n  send email \"x\" with { a: 1, a: 2 }\n}\n"
);

/// Schema-level mistakes, reported where the declaration is.
#[test]
fn schema_errors() {
    let src = "contact {\n  email: strng\n  phone: int @channel(sms)\n  ok: string @consent(email)\n  tags: set<int>\n  plan: \"a\" | \"b\" = \"c\"\n  n: int = contact.x\n  e: string @channel(emial)\n}\nevent contact_created {}\nevent e { a: int, a: int }\n";
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
    let (diags, _) = diagnostics("contact { a: int }\ncontact { b: int }\n");
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, "nurture::type::multiple-contact-blocks");
}

/// A single mistake is reported once, not as a page of follow-on errors.
#[test]
fn one_mistake_one_error() {
    let src = with_schema("workflow w {\n  when contact_created\n  if contact.scroe + 1 > 2 and contact.scroe * 2 < len(contact.scroe) { tag \"x\" }\n}\n");
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
