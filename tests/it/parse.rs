//! One AST snapshot (spans included) per construct of the surface syntax.

use nurture::source::SourceMap;

fn parse(text: &str) -> nurture::ast::Program {
    let mut s = SourceMap::default();
    s.add("t.flow", text);
    let (program, diags) = nurture::syntax::parse_program(&s);
    assert!(diags.is_empty(), "unexpected diagnostics: {diags:#?}");
    program
}

macro_rules! parse_snap {
    ($name:ident, $src:expr) => {
        #[test]
        fn $name() {
            insta::assert_debug_snapshot!(stringify!($name), parse($src));
        }
    };
}

parse_snap!(
    contact_block,
    r#"contact {
  email: string @channel(email)
  phone: string? @channel(sms)
  opted_in: bool = false @consent(email, sms)
  score: int = 0
  tags: set<string>
  visits: list<int>
  plan: "free" | "trial" | "paid" = "free"
  since: datetime? = @2026-01-01T00:00:00Z
  grace: duration = 1d 12h
  ltv: float = -1.5
}"#
);

parse_snap!(
    event_decls,
    r#"event signed_up {}
event purchase { order_id: string, amount: float }
event visit { url: string
  seconds: int? }"#
);

parse_snap!(
    trigger_event_with_where,
    r#"workflow w { when purchase where event.amount > 10.0 }"#
);
parse_snap!(trigger_inactive, r#"workflow w { when inactive for 30d }"#);
parse_snap!(
    trigger_condition,
    r#"workflow w { when contact.score >= 50 }"#
);
parse_snap!(
    headers,
    r#"workflow w {
  when contact_created
  goal purchase where event.amount > 0.0
  exit when unsubscribed
  reenter after 30d
}"#
);
parse_snap!(
    reenter_forms,
    r#"workflow a { when x reenter never }
workflow b { when x reenter always }"#
);
parse_snap!(
    goal_condition,
    r#"workflow w { when x goal contact.plan == "paid" exit when contact.score < 0 }"#
);

parse_snap!(
    send_with,
    r#"workflow w { when x send email "intro" with { plan: contact.plan, n: 1, } }"#
);
parse_snap!(tag_untag, r#"workflow w { when x tag "vip" untag "cold" }"#);
parse_snap!(
    set_forms,
    r#"workflow w { when x
  set contact.score = 1
  set contact.score += 5
  set contact.score -= 2 }"#
);
parse_snap!(
    lists_and_audiences,
    r#"workflow w { when x
  add to list "newsletter"
  remove from list "newsletter"
  add to audience "gads" }"#
);
parse_snap!(
    notify_interpolation,
    r#"workflow w { when x notify "sales" "Lead {contact.email} has {contact.score + 1} points \{not}" }"#
);
parse_snap!(
    webhook_forms,
    r#"workflow w { when x webhook "crm" webhook "crm2" with { id: trigger.order_id } }"#
);
parse_snap!(
    wait_durations,
    r#"workflow w { when x wait 1d 12h wait 30s wait 2w }"#
);
parse_snap!(
    wait_for_both_blocks,
    r#"workflow w { when x
  wait for email_opened within 2d where event.campaign == "intro" {
    send email "part2"
  } timeout {
    send email "resend"
  } }"#
);
parse_snap!(
    wait_for_bare,
    r#"workflow w { when x wait for email_opened within 2d send email "after" }"#
);
parse_snap!(
    if_else_chain,
    r#"workflow w { when x
  if contact.phone is set { send sms "a" }
  else if contact.score > 5 { send email "b" }
  else { exit } }"#
);
parse_snap!(
    split_arms,
    r#"workflow w { when x split { 50% { send email "a" } 30% { send email "b" } 20% { } } }"#
);
parse_snap!(
    stage_and_exit,
    r#"workflow w { when x stage "Intro sent" exit }"#
);

parse_snap!(
    precedence_or_and_not,
    r#"workflow w { when contact.a or contact.b and not contact.c == contact.d }"#
);
parse_snap!(
    precedence_arithmetic,
    r#"workflow w { when contact.a + contact.b * 2 - -contact.c / 4 > 1 }"#
);
parse_snap!(
    left_associativity,
    r#"workflow w { when contact.a - contact.b - contact.c == 1 and contact.x / 2 / 2 > 0 }"#
);
parse_snap!(
    is_set_forms,
    r#"workflow w { when contact.phone is set and contact.first_name is not set }"#
);
parse_snap!(
    membership_and_lists,
    r#"workflow w { when contact.country in ["ES", "PT"] and "vip" in contact.tags and [] == [] }"#
);
parse_snap!(
    literals,
    r#"workflow w { when @2026-03-01T09:00:00Z < now - 1d 2h and true != false and "a\"b" == "x" and 1.25 > 3 }"#
);
parse_snap!(
    builtin_calls,
    r#"workflow w { when len(contact.email) > 3 and lower(contact.country) == "es" and days(now - contact.since) > 2.0 }"#
);
parse_snap!(
    history_calls,
    r#"workflow w { when seen(purchase where event.amount > 5.0 within 30d) and count(email_opened within 7d) >= 2 and seen(unsubscribed) }"#
);
parse_snap!(
    comments_everywhere,
    r#"// header
contact { // schema
  email: string // address
}
// trailing"#
);
