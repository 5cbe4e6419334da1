//! Tricky programs that must check clean.

use crate::helpers::{diagnostics, with_schema};

fn assert_clean(body: &str) {
    let (diags, rendered) = diagnostics(&with_schema(body));
    assert!(
        diags.is_empty(),
        "expected no diagnostics, got:\n{rendered}"
    );
}

#[test]
fn narrowing_inside_if() {
    assert_clean("workflow w { when contact_created if contact.phone is set { send sms \"a\" } }");
}

#[test]
fn narrowing_in_and_right_hand_side() {
    assert_clean("workflow w { when contact_created if contact.first_name is set and len(contact.first_name) > 2 { tag \"x\" } }");
}

#[test]
fn narrowing_after_early_exit() {
    assert_clean(
        "workflow w { when contact_created if contact.phone is not set { exit } send sms \"a\" }",
    );
}

#[test]
fn narrowing_in_else_of_is_not_set() {
    assert_clean("workflow w { when contact_created if contact.phone is not set { send email \"a\" } else { send sms \"b\" } }");
}

#[test]
fn narrowing_with_not_and_or() {
    assert_clean("workflow w { when contact_created if not (contact.phone is not set or contact.score < 1) { send sms \"a\" } }");
}

#[test]
fn narrowing_from_entry_filter() {
    assert_clean("workflow w { when contact_created where contact.phone is set send sms \"a\" }");
}

#[test]
fn narrowing_by_assignment() {
    assert_clean("workflow w { when contact_created set contact.phone = \"+1\" send sms \"a\" }");
}

#[test]
fn narrowing_renewed_after_wait() {
    assert_clean(
        "workflow w { when contact_created wait 1d if contact.phone is set { send sms \"a\" } }",
    );
}

#[test]
fn enums_in_comparisons_lists_and_sets() {
    assert_clean("workflow w { when contact.plan in [\"trial\", \"paid\"] if contact.plan != \"free\" { set contact.plan = \"paid\" } }");
}

#[test]
fn int_float_mixing_in_arithmetic_and_comparison() {
    assert_clean("workflow w { when purchase where event.amount * 2 > 100 and contact.score / 3 + 1.5 < trigger.amount set contact.lifetime_value += trigger.amount set contact.lifetime_value -= 1 }");
}

#[test]
fn datetime_and_duration_arithmetic() {
    assert_clean("workflow w { when contact_created if contact.signed_up_at is set and now - contact.signed_up_at > 7d and days(now - (contact.signed_up_at + 1d)) >= 1.0 { tag \"x\" } }");
}

#[test]
fn list_and_set_membership() {
    assert_clean("workflow w { when contact_created if contact.country in [\"ES\", \"PT\"] and \"vip\" in contact.tags and not (\"x\" in contact.tags) { tag \"iberia\" } }");
}

#[test]
fn nested_waits_with_event_scopes() {
    assert_clean(
        "workflow w { when contact_created
          wait for email_opened within 2d where event.campaign == \"a\" {
            tag event.campaign
            wait 1h
            tag event.campaign
            wait for purchase within 1d where event.amount > 1.0 {
              set contact.lifetime_value += event.amount
            } timeout {
              wait for page_visited within 1d { tag event.url }
            }
          } timeout { send email \"again\" } }",
    );
}

#[test]
fn trigger_payload_everywhere() {
    assert_clean("workflow w { when purchase where trigger.amount > 1.0 goal purchase where event.order_id != trigger.order_id wait 1d notify \"ops\" \"order {trigger.order_id} of {trigger.amount}\" }");
}

#[test]
fn history_predicates() {
    assert_clean("workflow w { when page_visited where not seen(purchase within 30d) and count(page_visited where event.seconds > 10) >= 3 tag \"browser\" }");
}

#[test]
fn split_send_with_and_webhook() {
    assert_clean("workflow w { when contact_created split { 60% { send email \"a\" with { n: contact.score, p: contact.plan } } 40% { webhook \"crm\" } } }");
}

#[test]
fn optional_into_optional_field() {
    assert_clean("workflow w { when contact_created set contact.first_name = contact.phone }");
}

#[test]
fn every_example_checks_clean() {
    let src = nurture::source::load_sources(&crate::helpers::root().join("examples"))
        .expect("examples load");
    let a = nurture::pipeline::analyse(&src);
    assert!(a.diagnostics.is_empty(), "{:#?}", a.diagnostics);
}
