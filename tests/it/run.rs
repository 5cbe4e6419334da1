//! `nurture run`: golden examples, one test per statement, trigger and
//! ordering rule, one per bad-input reason, and determinism.

use crate::helpers::{bin, root, stderr, stdout, with_schema};
use std::path::Path;

struct Ran {
    code: Option<i32>,
    out: String,
    err: String,
}

/// Runs `program` (with the test schema) over `events`, with extra flags.
///
/// A run that succeeds is also run again in three consecutive parts with one
/// `--state` DB, cut at lines chosen from the events' own hash, and must
/// give the same output: every run test is a continuation test too.
fn run(program: &str, events: &str, flags: &[&str]) -> Ran {
    let program = with_schema(program);
    let o = crate::helpers::run_program(&program, events, flags);
    let ran = Ran {
        code: o.status.code(),
        out: stdout(&o),
        err: stderr(&o),
    };
    let plain = flags
        .iter()
        .all(|f| ["--trace", "--drain", "--until"].contains(f) || f.starts_with("20"));
    let n = events.lines().count();
    if ran.code == Some(0) && plain && n > 1 {
        let h = events.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut cuts = [
            (h % (n as u64 + 1)) as usize,
            ((h >> 32) % (n as u64 + 1)) as usize,
        ];
        cuts.sort_unstable();
        let parts = crate::helpers::run_program_in_parts(&program, events, flags, &cuts);
        let mut joined = String::new();
        for p in &parts {
            assert_eq!(
                p.status.code(),
                Some(0),
                "part at cuts {cuts:?}: {}",
                stderr(p)
            );
            joined += &stdout(p);
        }
        assert!(
            joined == ran.out,
            "cut at lines {cuts:?}, parts give:\n{joined}\nwhole run:\n{}",
            ran.out
        );
    }
    ran
}

/// The `action` lines of the output, as (time, contact, workflow, rest) strings for short asserts.
fn actions(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let mut rest: Vec<String> = v
                .as_object()
                .expect("object")
                .iter()
                .filter(|(k, _)| !["at", "contact", "workflow", "action"].contains(&k.as_str()))
                .map(|(k, v)| format!("{k}={}", v.as_str().map_or(v.to_string(), str::to_string)))
                .collect();
            rest.sort();
            let at = v["at"].as_str().unwrap_or("");
            format!(
                "{} {} {} {} {}",
                &at[5..16],
                v["contact"].as_str().unwrap_or(""),
                v["workflow"].as_str().unwrap_or(""),
                v["action"].as_str().unwrap_or(""),
                rest.join(" ")
            )
            .trim_end()
            .to_string()
        })
        .collect()
}

const CREATE_C1: &str = r#"{"at":"2026-03-01T09:00:00Z","contact":"c1","type":"contact_created","attributes":{"email":"a@x.com","opted_in":true,"country":"ES"}}"#;

fn events(lines: &[&str]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

// ------------------------------------------------------------------ golden examples

fn golden(name: &str) {
    let ex = root().join("examples");
    let o = bin()
        .arg("run")
        .arg(&ex)
        .arg("--events")
        .arg(ex.join("events").join(format!("{name}.jsonl")))
        .args(["--drain", "--trace"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let path = ex.join("expected").join(format!("{name}.jsonl"));
    crate::helpers::assert_golden(name, &path, &stdout(&o));
}

#[test]
fn golden_lead_nurturing() {
    golden("lead_nurturing");
}

#[test]
fn golden_calendar() {
    golden("calendar");
}

#[test]
fn golden_cart_abandonment() {
    golden("cart_abandonment");
}

#[test]
fn golden_feedback_and_nps() {
    golden("feedback_and_nps");
}

#[test]
fn golden_content_and_sales() {
    golden("content_and_sales");
}

#[test]
fn golden_welcome() {
    golden("welcome");
}

#[test]
fn golden_anonymous_visitor() {
    golden("anonymous_visitor");
}

#[test]
fn golden_re_engagement() {
    golden("re_engagement");
}

/// Every events file of the examples has its golden output, and a test above.
#[test]
fn every_example_events_file_has_a_golden_output() {
    let ex = root().join("examples");
    for e in std::fs::read_dir(ex.join("events")).expect("events") {
        let p = e.expect("entry").path();
        let name = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        assert!(
            ex.join("expected").join(format!("{name}.jsonl")).exists(),
            "no golden output for {name}"
        );
        let this = std::fs::read_to_string(file!()).unwrap_or_default();
        assert!(
            this.contains(&format!("golden(\"{name}\")")),
            "no golden test for {name}"
        );
    }
}

// ------------------------------------------------------------------ statements

#[test]
fn send_with_data_and_every_simple_statement() {
    let r = run(
        r#"workflow w { when contact_created
  send email "intro" with { n: contact.score + 1, plan: contact.plan, ltv: contact.lifetime_value }
  tag "vip"
  tag "vip"
  untag "cold"
  set contact.score = 7
  set contact.score += 5
  set contact.score -= 2
  add to list "news"
  remove from list "news"
  add to audience "gads"
  notify "sales" "{contact.email} has {contact.score} ({contact.lifetime_value + 0.5}) tags {contact.tags}"
  webhook "crm"
  webhook "crm2" with { id: contact.email }
}"#,
        &events(&[CREATE_C1]),
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert_eq!(
        actions(&r.out),
        [
            "03-01T09:00 c1 w send channel=email data={\"ltv\":0.0,\"n\":1,\"plan\":\"free\"} template=intro",
            "03-01T09:00 c1 w tag tag=vip",
            "03-01T09:00 c1 w tag tag=vip",
            "03-01T09:00 c1 w untag tag=cold",
            "03-01T09:00 c1 w set field=score value=7",
            "03-01T09:00 c1 w set field=score value=12",
            "03-01T09:00 c1 w set field=score value=10",
            "03-01T09:00 c1 w add_to_list list=news",
            "03-01T09:00 c1 w remove_from_list list=news",
            "03-01T09:00 c1 w add_to_audience audience=gads",
            "03-01T09:00 c1 w notify message=a@x.com has 10 (0.5) tags [vip] to=sales",
            "03-01T09:00 c1 w webhook name=crm",
            "03-01T09:00 c1 w webhook data={\"id\":\"a@x.com\"} name=crm2",
        ]
    );
    // `webhook` without `with` has no `data` key, and keys keep their written order.
    assert!(
        r.out.contains(r#""action":"webhook","name":"crm"}"#),
        "{}",
        r.out
    );
    assert!(
        r.out.contains(r#""data":{"n":1,"plan":"free","ltv":0.0}"#),
        "{}",
        r.out
    );
}

#[test]
fn wait_and_drain_and_until() {
    let prog = r#"workflow w { when contact_created send email "a" wait 1d send email "b" wait 1d send email "c" }"#;
    let ev = events(&[CREATE_C1]);
    assert_eq!(actions(&run(prog, &ev, &[]).out).len(), 1);
    let until = run(prog, &ev, &["--until", "2026-03-02T09:00:00Z"]);
    assert_eq!(
        actions(&until.out),
        [
            "03-01T09:00 c1 w send channel=email template=a",
            "03-02T09:00 c1 w send channel=email template=b"
        ]
    );
    assert_eq!(actions(&run(prog, &ev, &["--drain"]).out).len(), 3);
}

#[test]
fn wait_for_received_and_timeout() {
    let prog = r#"workflow w { when contact_created
  wait for email_opened within 2d where event.campaign == "intro" { send email event.campaign } timeout { send email "timeout" }
  send email "after" }"#;
    let opened = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"email_opened","campaign":"intro"}"#,
    ]);
    let r = run(
        &prog.replace("send email event.campaign", "tag event.campaign"),
        &opened,
        &["--drain"],
    );
    assert_eq!(
        actions(&r.out),
        [
            "03-02T09:00 c1 w tag tag=intro",
            "03-02T09:00 c1 w send channel=email template=after"
        ]
    );
    let other = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"email_opened","campaign":"other"}"#,
    ]);
    let r = run(
        &prog.replace("send email event.campaign", "tag event.campaign"),
        &other,
        &["--drain"],
    );
    assert_eq!(
        actions(&r.out),
        [
            "03-03T09:00 c1 w send channel=email template=timeout",
            "03-03T09:00 c1 w send channel=email template=after"
        ]
    );
}

#[test]
fn history_filters_see_the_payload_fields_they_read() {
    // `amount` is read only inside a history filter: input must keep it.
    let prog = r#"workflow w { when page_visited where seen(purchase where event.amount > 100.0 within 30d) reenter always tag "big" }"#;
    let purchase = |t: &str, amount: &str| {
        format!(
            r#"{{"at":"2026-03-01T{t}:00Z","contact":"c1","type":"purchase","order_id":"o","amount":{amount},"category":"x"}}"#
        )
    };
    let visit = |t: &str| {
        format!(
            r#"{{"at":"2026-03-01T{t}:00Z","contact":"c1","type":"page_visited","url":"/","seconds":1}}"#
        )
    };
    let lines = [
        CREATE_C1.to_string(),
        purchase("10:00", "50.0"),
        visit("10:30"),
        purchase("11:00", "150.0"),
        visit("11:30"),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(
        actions(&run(prog, &events(&lines), &[]).out),
        ["03-01T11:30 c1 w tag tag=big"]
    );
}

#[test]
fn trigger_and_received_fields_survive_later_waits() {
    // Journeys keep their trigger and the event received only when the
    // workflow reads them: here both are read after a further wait.
    let prog = r#"workflow w { when purchase
  wait 1d
  wait for email_opened within 2d { wait 1h tag event.campaign } timeout { tag "none" }
  tag trigger.order_id }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"purchase","order_id":"o7","amount":5.0,"category":"x"}"#,
        r#"{"at":"2026-03-02T12:00:00Z","contact":"c1","type":"email_opened","campaign":"spring"}"#,
    ]);
    assert_eq!(
        actions(&run(prog, &ev, &["--drain"]).out),
        [
            "03-02T13:00 c1 w tag tag=spring",
            "03-02T13:00 c1 w tag tag=o7"
        ]
    );
}

#[test]
fn event_at_exactly_the_deadline_comes_after_the_timeout() {
    let prog = r#"workflow w { when contact_created wait for email_opened within 1d { tag "got" } timeout { tag "late" } }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
    ]);
    assert_eq!(
        actions(&run(prog, &ev, &[]).out),
        ["03-02T09:00 c1 w tag tag=late"]
    );
}

#[test]
fn if_else_chain_and_exit() {
    let prog = r#"workflow w { when purchase
  if trigger.amount > 100.0 { tag "big" } else if trigger.amount > 10.0 { tag "mid" } else { tag "small" exit }
  tag "done" }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"purchase","order_id":"1","amount":500.0,"category":"x"}"#,
    ]);
    assert_eq!(
        actions(
            &run(
                &prog.replace("purchase", "purchase\n reenter always"),
                &ev,
                &[]
            )
            .out
        ),
        [
            "03-01T10:00 c1 w tag tag=big",
            "03-01T10:00 c1 w tag tag=done"
        ]
    );
    let small = ev.replace("500.0", "5.0");
    let r = run(prog, &small, &["--trace"]);
    assert!(
        r.out.contains(r#""action":"end","outcome":"exited""#),
        "{}",
        r.out
    );
    assert!(!r.out.contains("done"));
}

#[test]
fn split_is_deterministic_and_uses_the_documented_hash() {
    assert_eq!(
        nurture::runtime::engine::split_bucket("c1", "w", 0),
        nurture::runtime::engine::split_bucket("c1", "w", 0)
    );
    let prog = r#"workflow w { when contact_created split { 50% { tag "a" } 50% { tag "b" } } }"#;
    let mut lines = Vec::new();
    for i in 0..40 {
        lines.push(format!(r#"{{"at":"2026-03-01T09:00:00Z","contact":"c{i}","type":"contact_created","attributes":{{"email":"a@x.com","opted_in":true,"country":"ES"}}}}"#));
    }
    let ev = lines.join("\n");
    let r = run(prog, &ev, &[]);
    let acts = actions(&r.out);
    for (i, a) in acts.iter().enumerate() {
        let bucket = nurture::runtime::engine::split_bucket(&format!("c{i}"), "w", 0);
        let want = if bucket < 50 { "tag=a" } else { "tag=b" };
        assert!(a.ends_with(want), "{a} vs bucket {bucket}");
    }
    let a = acts.iter().filter(|a| a.ends_with("tag=a")).count();
    assert!(a > 5 && a < 35, "split is badly skewed: {a}/40");
}

#[test]
fn stage_is_traced() {
    let r = run(
        r#"workflow w { when contact_created stage "Intro sent" }"#,
        &events(&[CREATE_C1]),
        &["--trace"],
    );
    assert!(
        r.out.contains(r#""action":"stage","stage":"Intro sent""#),
        "{}",
        r.out
    );
    assert!(r.out.contains(r#""action":"end","outcome":"completed""#));
}

// ------------------------------------------------------------------ triggers

#[test]
fn trigger_where_filters() {
    let prog = r#"workflow w { when purchase where event.amount >= 10.0 reenter always tag trigger.order_id }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"purchase","order_id":"small","amount":5.0,"category":"x"}"#,
        r#"{"at":"2026-03-01T11:00:00Z","contact":"c1","type":"purchase","order_id":"big","amount":50.0,"category":"x"}"#,
    ]);
    assert_eq!(
        actions(&run(prog, &ev, &[]).out),
        ["03-01T11:00 c1 w tag tag=big"]
    );
}

#[test]
fn inactive_trigger_fires_once_per_silence() {
    let prog = r#"workflow w { when inactive for 2d reenter always tag "dormant" }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
        r#"{"at":"2026-03-10T09:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
    ]);
    assert_eq!(
        actions(&run(prog, &ev, &["--drain"]).out),
        [
            "03-04T09:00 c1 w tag tag=dormant",
            "03-12T09:00 c1 w tag tag=dormant"
        ]
    );
}

#[test]
fn attribute_trigger_fires_on_the_edge_from_input_and_from_set() {
    let prog = r#"workflow hot { when contact.score >= 50 reenter always tag "hot" }
workflow bump { when email_opened reenter always set contact.score += 30 }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"contact_updated","attributes":{"score":60}}"#,
        r#"{"at":"2026-03-01T11:00:00Z","contact":"c1","type":"contact_updated","attributes":{"score":70}}"#,
        r#"{"at":"2026-03-01T12:00:00Z","contact":"c1","type":"contact_updated","attributes":{"score":0}}"#,
        r#"{"at":"2026-03-01T13:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
        r#"{"at":"2026-03-01T14:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
    ]);
    assert_eq!(
        actions(&run(prog, &ev, &[]).out),
        [
            "03-01T10:00 c1 hot tag tag=hot",
            "03-01T13:00 c1 bump set field=score value=30",
            "03-01T14:00 c1 bump set field=score value=60",
            "03-01T14:00 c1 hot tag tag=hot",
        ]
    );
}

#[test]
fn contact_created_with_condition_true_counts_as_a_change() {
    let prog = r#"workflow hot { when contact.score >= 50 tag "hot" }"#;
    let ev = events(&[&CREATE_C1.replace(r#""country":"ES""#, r#""country":"ES","score":90"#)]);
    assert_eq!(
        actions(&run(prog, &ev, &[]).out),
        ["03-01T09:00 c1 hot tag tag=hot"]
    );
}

#[test]
fn set_fires_triggers_when_the_journey_waits_before_the_next_input() {
    let prog = r#"workflow a { when contact_created set contact.score = 99 tag "a1" wait 1h tag "a2" }
workflow b { when contact.score > 50 tag "b" }"#;
    assert_eq!(
        actions(&run(prog, &events(&[CREATE_C1]), &["--drain"]).out),
        [
            "03-01T09:00 c1 a set field=score value=99",
            "03-01T09:00 c1 a tag tag=a1",
            "03-01T09:00 c1 b tag tag=b",
            "03-01T10:00 c1 a tag tag=a2",
        ]
    );
}

#[test]
fn cascade_bound_fails_the_journey_with_a_clear_error() {
    let prog = r#"workflow up { when contact.score > 0 reenter always set contact.plan = "paid" set contact.score = 0 }
workflow down { when contact.plan == "paid" reenter always set contact.plan = "free" set contact.score = 1 }"#;
    let ev = events(&[&CREATE_C1.replace(r#""country":"ES""#, r#""country":"ES","score":1"#)]);
    let r = run(prog, &ev, &[]);
    assert_eq!(r.code, Some(0));
    assert!(
        r.err
            .contains("attribute triggers set one another off more than 32 times"),
        "{}",
        r.err
    );
    assert!(r.err.contains("up -> down"), "{}", r.err);
    assert!(r.err.contains("p.flow:"), "{}", r.err);
}

#[test]
fn goal_converts_and_exit_when_exits() {
    let prog = r#"workflow w { when contact_created goal purchase exit when unsubscribed wait for email_opened within 10d }"#;
    let buy = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"purchase","order_id":"1","amount":1.0,"category":"x"}"#,
    ]);
    assert!(run(prog, &buy, &["--trace"])
        .out
        .contains(r#""outcome":"converted""#));
    let unsub = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"unsubscribed"}"#,
    ]);
    assert!(run(prog, &unsub, &["--trace"])
        .out
        .contains(r#""outcome":"exited""#));
}

#[test]
fn reenter_after_counts_from_the_previous_entry() {
    let prog = r#"workflow w { when email_opened reenter after 2d tag "in" wait 1h }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
        r#"{"at":"2026-03-03T09:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
        r#"{"at":"2026-03-04T09:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
    ]);
    assert_eq!(
        actions(&run(prog, &ev, &[]).out),
        ["03-02T09:00 c1 w tag tag=in", "03-04T09:00 c1 w tag tag=in"]
    );
    let never = run(&prog.replace("reenter after 2d", "reenter never"), &ev, &[]);
    assert_eq!(actions(&never.out).len(), 1);
}

#[test]
fn history_seen_and_count_with_within_boundary() {
    let prog = r#"workflow w { when page_visited reenter always tag "{count(page_visited within 1d)}" if seen(purchase within 1d) { tag "buyer" } }"#
        .replace("tag \"{count(page_visited within 1d)}\"", "notify \"t\" \"{count(page_visited within 1d)}\"");
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"purchase","order_id":"1","amount":1.0,"category":"x"}"#,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"page_visited","url":"/","seconds":1}"#,
        r#"{"at":"2026-03-02T10:00:00Z","contact":"c1","type":"page_visited","url":"/","seconds":1}"#,
        r#"{"at":"2026-03-03T10:00:00Z","contact":"c1","type":"page_visited","url":"/","seconds":1}"#,
    ]);
    assert_eq!(
        actions(&run(&prog, &ev, &[]).out),
        [
            "03-02T09:00 c1 w notify message=1 to=t",
            "03-02T09:00 c1 w tag tag=buyer",
            "03-02T10:00 c1 w notify message=2 to=t",
            "03-02T10:00 c1 w tag tag=buyer",
            "03-03T10:00 c1 w notify message=2 to=t",
        ]
    );
}

// ------------------------------------------------------------------ ordering rules

#[test]
fn timer_and_event_at_the_same_instant_timer_first() {
    let prog = r#"workflow a { when contact_created wait 1d tag "timer" }
workflow b { when email_opened tag "event" }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
    ]);
    assert_eq!(
        actions(&run(prog, &ev, &[]).out),
        [
            "03-02T09:00 c1 a tag tag=timer",
            "03-02T09:00 c1 b tag tag=event"
        ]
    );
}

#[test]
fn timers_due_together_fire_in_creation_order() {
    let prog = r#"workflow a { when email_opened wait 2d tag "a" }
workflow b { when contact_created wait 3d tag "b" }"#;
    // b's timer (created first) and a's timer are both due on 03-04 09:00.
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
    ]);
    assert_eq!(
        actions(&run(prog, &ev, &["--drain"]).out),
        ["03-04T09:00 c1 b tag tag=b", "03-04T09:00 c1 a tag tag=a"]
    );
}

#[test]
fn goal_before_resume_before_trigger() {
    let prog = r#"workflow g { when contact_created goal email_opened wait for email_opened within 5d { tag "g-resumed" } }
workflow r { when contact_created wait for email_opened within 5d { tag "r-resumed" } }
workflow t { when email_opened tag "t-started" }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
    ]);
    let r = run(prog, &ev, &["--trace"]);
    let order: Vec<String> = actions(&r.out)
        .into_iter()
        .filter(|a| a.starts_with("03-02"))
        .collect();
    assert_eq!(
        order,
        [
            "03-02T09:00 c1 g end outcome=converted",
            "03-02T09:00 c1 r resume event=email_opened",
            "03-02T09:00 c1 r tag tag=r-resumed",
            "03-02T09:00 c1 r end outcome=completed",
            "03-02T09:00 c1 t enter",
            "03-02T09:00 c1 t tag tag=t-started",
            "03-02T09:00 c1 t end outcome=completed",
        ]
    );
}

#[test]
fn two_workflows_on_one_event_run_in_declaration_order() {
    let prog = r#"workflow second { when email_opened tag "1" }
workflow first { when email_opened tag "2" }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
    ]);
    assert_eq!(
        actions(&run(prog, &ev, &[]).out),
        [
            "03-02T09:00 c1 second tag tag=1",
            "03-02T09:00 c1 first tag tag=2"
        ]
    );
}

#[test]
fn a_wait_ignores_the_event_that_started_it_and_earlier_ones() {
    let prog = r#"workflow w { when email_opened wait for email_opened within 1d { tag "second open" } timeout { tag "no second open" } }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
    ]);
    assert_eq!(
        actions(&run(prog, &ev, &["--drain"]).out),
        ["03-02T10:00 c1 w tag tag=no second open"]
    );
}

#[test]
fn one_active_journey_per_contact_and_workflow() {
    let prog = r#"workflow w { when email_opened reenter always tag "in" wait 1d }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
        r#"{"at":"2026-03-01T11:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
    ]);
    assert_eq!(
        actions(&run(prog, &ev, &[]).out),
        ["03-01T10:00 c1 w tag tag=in"]
    );
}

#[test]
fn preloaded_contacts_fire_nothing_and_start_inactivity_at_first_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let contacts = dir.path().join("contacts.jsonl");
    std::fs::write(
        &contacts,
        "{\"id\":\"p1\",\"email\":\"p@x.com\",\"opted_in\":true,\"country\":\"ES\",\"score\":80}\n",
    )
    .expect("write");
    let prog = r#"workflow hot { when contact.score > 50 tag "hot" }
workflow idle { when inactive for 1d tag "idle" }"#;
    let ev = events(&[CREATE_C1]);
    let r = run(
        prog,
        &ev,
        &["--drain", "--contacts", contacts.to_str().unwrap_or("")],
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    // p1's inactivity period starts at the first input event, before that event is handled.
    assert_eq!(
        actions(&r.out),
        [
            "03-02T09:00 p1 idle tag tag=idle",
            "03-02T09:00 c1 idle tag tag=idle"
        ]
    );
}

#[test]
fn division_by_zero_fails_the_journey_and_the_run_goes_on() {
    let prog = r#"workflow w { when contact_created reenter always tag "before" set contact.score = 10 / contact.score tag "after" }"#;
    let ev = events(&[CREATE_C1, &CREATE_C1.replace("c1", "c2")]);
    let r = run(prog, &ev, &["--trace"]);
    assert_eq!(r.code, Some(0));
    assert_eq!(r.out.matches(r#""outcome":"failed""#).count(), 2);
    assert!(r.err.contains("runtime error at"), "{}", r.err);
    assert!(r.err.contains("division by zero"), "{}", r.err);
}

#[test]
fn int_division_truncates_toward_zero() {
    let prog = r#"workflow w { when contact_created set contact.score = -7 / 2 }"#;
    assert_eq!(
        actions(&run(prog, &events(&[CREATE_C1]), &[]).out),
        ["03-01T09:00 c1 w set field=score value=-3"]
    );
}

// ------------------------------------------------------------------ bad input

fn bad_input(line: &str, reason: &str) {
    let prog = r#"workflow w { when contact_created tag "x" }"#;
    let ev = events(&[
        CREATE_C1,
        &CREATE_C1.replace("c1", "c2"),
        line,
        &CREATE_C1.replace("c1", "c3"),
    ]);
    let r = run(prog, &ev, &[]);
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(
        r.err.contains(&format!("events.jsonl:3: {reason}")),
        "wanted {reason:?} in {}",
        r.err
    );
    // What came before the bad line was written.
    assert_eq!(actions(&r.out).len(), 2, "{}", r.out);
    // With skip, the line goes to the rejects file and the run goes on.
    let r = run(
        prog,
        &ev,
        &["--on-error", "skip", "--rejects", "rejects.jsonl"],
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert_eq!(actions(&r.out).len(), 3);
    assert!(r.err.contains("1 rejected"), "{}", r.err);
}

#[test]
fn bad_input_malformed_json() {
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1""#,
        "malformed JSON",
    );
}

#[test]
fn bad_input_unknown_event_type() {
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"purchse"}"#,
        "unknown event type `purchse` (did you mean `purchase`?)",
    );
}

#[test]
fn bad_input_wrong_field_type() {
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"email_opened","campaign":3}"#,
        "field `campaign` of `email_opened` must be string, found int `3`",
    );
}

#[test]
fn bad_input_missing_payload_field() {
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"email_opened"}"#,
        "event `email_opened` is missing field `campaign`",
    );
}

#[test]
fn bad_input_unknown_payload_field() {
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"unsubscribed","why":"x"}"#,
        "event `unsubscribed` has no field `why`",
    );
}

#[test]
fn bad_input_unknown_contact() {
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":"zz","type":"unsubscribed"}"#,
        "unknown contact `zz`",
    );
}

#[test]
fn bad_input_time_going_backwards() {
    bad_input(
        r#"{"at":"2026-02-01T10:00:00Z","contact":"c1","type":"unsubscribed"}"#,
        "time goes backwards",
    );
}

#[test]
fn bad_input_bad_timestamp() {
    bad_input(
        r#"{"at":"yesterday","contact":"c1","type":"unsubscribed"}"#,
        "`at` is not an RFC 3339 datetime",
    );
}

#[test]
fn bad_input_missing_required_attribute() {
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c9","type":"contact_created","attributes":{"email":"a@x.com"}}"#,
        "required attribute `country` is missing",
    );
}

#[test]
fn bad_input_wrong_attribute_type_and_enum() {
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"contact_updated","attributes":{"plan":"gold"}}"#,
        "attribute `plan` must be one of \"free\", \"trial\", \"paid\", found \"gold\"",
    );
}

#[test]
fn bad_input_duplicate_contact() {
    bad_input(CREATE_C1, "contact `c1` already exists");
}

#[test]
fn bad_input_missing_type() {
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1"}"#,
        "missing field `type`",
    );
}

#[test]
fn program_with_errors_is_not_run() {
    let r = run("workflow w { when purchse }", &events(&[CREATE_C1]), &[]);
    assert_eq!(r.code, Some(1));
    assert!(r.err.contains("nothing was run"));
    assert!(r.out.is_empty());
}

#[test]
fn summary_counts_actions_and_outcomes() {
    let r = run(
        r#"workflow w { when contact_created send email "a" wait 1d }"#,
        &events(&[CREATE_C1]),
        &[],
    );
    assert!(
        r.err
            .contains("summary: 1 events read, 0 rejected, 1 actions (send 1)"),
        "{}",
        r.err
    );
    let row = r
        .err
        .lines()
        .find(|l| l.trim_start().starts_with("w "))
        .unwrap_or("");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols, ["w", "1", "0", "0", "0", "0", "1", "0"], "{}", r.err);
}

// ------------------------------------------------------------------ determinism

mod determinism {
    use super::*;
    use proptest::prelude::*;

    fn generated(seed: u64, n: usize) -> String {
        let mut x = seed | 1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut lines = Vec::new();
        let mut t = 1_772_355_600i64; // 2026-03-01T09:00:00Z
        for c in 0..5 {
            lines.push(format!(r#"{{"at":"{}","contact":"c{c}","type":"contact_created","attributes":{{"email":"c{c}@x.com","opted_in":{},"country":"ES","phone":"+1"}}}}"#, stamp(t), c % 2 == 0));
        }
        for _ in 0..n {
            t += (next() % 20_000) as i64;
            let c = next() % 5;
            let line = match next() % 4 {
                0 => format!(
                    r#"{{"at":"{}","contact":"c{c}","type":"email_opened","campaign":"nurture_intro"}}"#,
                    stamp(t)
                ),
                1 => format!(
                    r#"{{"at":"{}","contact":"c{c}","type":"purchase","order_id":"o","amount":{}.5,"category":"x"}}"#,
                    stamp(t),
                    next() % 200
                ),
                2 => format!(
                    r#"{{"at":"{}","contact":"c{c}","type":"page_visited","url":"/p","seconds":{}}}"#,
                    stamp(t),
                    next() % 90
                ),
                _ => format!(
                    r#"{{"at":"{}","contact":"c{c}","type":"contact_updated","attributes":{{"score":{}}}}}"#,
                    stamp(t),
                    next() % 100
                ),
            };
            lines.push(line);
        }
        lines.join("\n")
    }

    fn stamp(t: i64) -> String {
        nurture::runtime::value::format_datetime(t * 1000)
    }

    const PROGRAM: &str = r#"workflow nurture { when contact_created where contact.opted_in goal purchase send email "intro"
  wait for email_opened within 1d where event.campaign == "nurture_intro" { send email "p2" } timeout { if contact.phone is set { send sms "nudge" } }
  split { 30% { tag "a" } 70% { tag "b" } } }
workflow hot { when contact.score >= 50 reenter always tag "hot" set contact.score -= 10 }
workflow browse { when page_visited where event.seconds > 30 and not seen(purchase within 2d) reenter after 1h webhook "overlay" with { n: count(page_visited within 1d) } }
workflow idle { when inactive for 3h reenter always untag "active" }"#;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        #[test]
        fn same_input_same_output(seed in any::<u64>()) {
            let ev = generated(seed, 120);
            let a = run(PROGRAM, &ev, &["--drain", "--trace"]);
            let b = run(PROGRAM, &ev, &["--drain", "--trace"]);
            prop_assert_eq!(a.code, Some(0), "{}", a.err);
            prop_assert!(!a.out.is_empty());
            prop_assert_eq!(a.out, b.out);
            prop_assert_eq!(a.err, b.err);
        }
    }

    #[test]
    fn generated_input_paths_exist() {
        assert!(Path::new(&root().join("examples")).exists());
    }
}

/// A finished journey's pending deadline must not wake a later journey that reuses its slot.
#[test]
fn stale_timer_never_wakes_a_later_journey() {
    let prog = r#"workflow a { when contact_created wait for email_opened within 3d { tag "a" } }
workflow b { when purchase wait 5d tag "b" }"#;
    let ev = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"email_opened","campaign":"x"}"#,
        r#"{"at":"2026-03-02T10:00:00Z","contact":"c1","type":"purchase","order_id":"1","amount":1.0,"category":"x"}"#,
    ]);
    assert_eq!(
        actions(&run(prog, &ev, &["--drain"]).out),
        ["03-02T09:00 c1 a tag tag=a", "03-07T10:00 c1 b tag tag=b"]
    );
}

#[test]
fn bad_input_invalid_utf8_is_a_bad_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.flow");
    let e = dir.path().join("events.jsonl");
    std::fs::write(
        &p,
        with_schema(r#"workflow w { when contact_created tag "x" }"#),
    )
    .expect("write");
    let mut bytes = format!("{CREATE_C1}\n").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\n");
    bytes.extend_from_slice(CREATE_C1.replace("c1", "c2").as_bytes());
    std::fs::write(&e, &bytes).expect("write");
    let o = bin()
        .arg("run")
        .arg(&p)
        .arg("--events")
        .arg(&e)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("events.jsonl:2: the line is not valid UTF-8"),
        "{}",
        stderr(&o)
    );
    assert_eq!(actions(&stdout(&o)).len(), 1);
    let rejects = dir.path().join("rejects.jsonl");
    let o = bin()
        .arg("run")
        .arg(&p)
        .arg("--events")
        .arg(&e)
        .args(["--on-error", "skip", "--rejects"])
        .arg(&rejects)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(actions(&stdout(&o)).len(), 2);
    assert_eq!(std::fs::read(&rejects).expect("rejects"), b"\xff\xfe\n");
}

#[test]
fn condition_goal_and_exit_are_tested_at_every_event() {
    let prog = r#"workflow w { when contact_created goal contact.plan == "paid" exit when contact.score < 0 wait 10d tag "late" }"#;
    let paid = events(&[
        CREATE_C1,
        r#"{"at":"2026-03-02T09:00:00Z","contact":"c1","type":"page_visited","url":"/","seconds":1}"#,
        r#"{"at":"2026-03-03T09:00:00Z","contact":"c1","type":"contact_updated","attributes":{"plan":"paid"}}"#,
    ]);
    let r = run(prog, &paid, &["--trace", "--drain"]);
    assert!(
        actions(&r.out).contains(&"03-03T09:00 c1 w end outcome=converted".to_string()),
        "{}",
        r.out
    );
    let negative = paid.replace(r#""plan":"paid""#, r#""score":-5"#);
    let r = run(prog, &negative, &["--trace", "--drain"]);
    assert!(
        actions(&r.out).contains(&"03-03T09:00 c1 w end outcome=exited".to_string()),
        "{}",
        r.out
    );
    assert!(!r.out.contains("late"));
}

#[test]
fn bad_contacts_record_is_reported_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let contacts = dir.path().join("contacts.jsonl");
    std::fs::write(
        &contacts,
        r#"{"id":"p1","email":"p@x.com","opted_in":true,"country":"ES"}
{"id":"p2","email":"q@x.com","opted_in":true}
"#,
    )
    .expect("write");
    let path = contacts.to_str().unwrap_or("");
    let r = run(
        r#"workflow w { when contact_created tag "x" }"#,
        &events(&[CREATE_C1]),
        &["--contacts", path],
    );
    assert_eq!(r.code, Some(2));
    assert!(
        r.err
            .contains("contacts.jsonl:2: required attribute `country` is missing"),
        "{}",
        r.err
    );
    let r = run(
        r#"workflow w { when contact_created tag "x" }"#,
        &events(&[CREATE_C1]),
        &["--contacts", path, "--on-error", "skip"],
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert!(r.err.contains("1 rejected"), "{}", r.err);
}

#[test]
fn bad_input_duplicate_key() {
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"email_opened","campaign":"a","campaign":"b"}"#,
        "the key `campaign` appears twice in the record",
    );
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","at":"2026-03-01T11:00:00Z","contact":"c1","type":"email_opened","campaign":"a"}"#,
        "the key `at` appears twice in the record",
    );
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"contact_updated","attributes":{"score":1,"score":2}}"#,
        "the key `score` appears twice in the record",
    );
}

#[test]
fn bad_input_leap_second() {
    bad_input(
        r#"{"at":"2026-06-30T23:59:60Z","contact":"c1","type":"email_opened","campaign":"a"}"#,
        "`at` is not an RFC 3339 datetime",
    );
}

/// A byte-order mark at the start of an events file is skipped.
#[test]
fn a_byte_order_mark_starts_the_file_harmlessly() {
    let prog = r#"workflow w { when contact_created tag "x" }"#;
    let ev = format!("\u{feff}{}", events(&[CREATE_C1]));
    let r = run(prog, &ev, &[]);
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert_eq!(actions(&r.out).len(), 1);
}

/// An empty id in `--contacts` is a bad record.
#[test]
fn an_empty_contact_id_is_a_bad_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = dir.path().join("contacts.jsonl");
    std::fs::write(
        &c,
        "{\"id\":\"\",\"email\":\"a@x.com\",\"opted_in\":true,\"country\":\"ES\"}\n",
    )
    .expect("write");
    let r = run(
        r#"workflow w { when contact_created tag "x" }"#,
        &events(&[CREATE_C1]),
        &["--contacts", c.to_str().unwrap_or("")],
    );
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(
        r.err.contains("contacts.jsonl:1: `id` is empty"),
        "{}",
        r.err
    );
}

/// Fractional seconds are kept to the millisecond.
#[test]
fn fractional_seconds_are_kept_to_the_millisecond() {
    let prog = r#"workflow w { when email_opened wait 1s tag "x" }"#;
    let r = run(
        prog,
        &events(&[
            CREATE_C1,
            r#"{"at":"2026-03-01T10:00:00.123456Z","contact":"c1","type":"email_opened","campaign":"a"}"#,
        ]),
        &["--drain"],
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert!(r.out.contains("2026-03-01T10:00:01.123Z"), "{}", r.out);
}

#[test]
fn bad_input_wrong_typed_contact_or_type_names_the_key() {
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":5,"type":"email_opened","campaign":"a"}"#,
        "`contact` must be a string, found integer `5`",
    );
    bad_input(
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":["email_opened"],"campaign":"a"}"#,
        "`type` must be a string, found sequence",
    );
}

/// An input record may carry the client's event id, `"id"`, a string:
/// `nurture run` passes it over; another value is a bad record.
#[test]
fn a_client_event_id_is_passed_over() {
    let program = crate::helpers::with_schema(
        "workflow w {  // nurture:allow(no-goal, consent)\n  when email_opened\n  tag \"opened\"\n}\n",
    );
    let events = r#"{"at":"2026-03-01T09:00:00Z","contact":"c1","type":"contact_created","id":"evt-1","attributes":{"email":"a@x.com","opted_in":true,"country":"ES"}}
{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"email_opened","campaign":"a","id":"evt-2"}
{"at":"2026-03-01T11:00:00Z","id":7,"contact":"c1","type":"email_opened","campaign":"b"}
"#;
    let o = crate::helpers::run_program(&program, events, &["--on-error", "skip"]);
    assert_eq!(o.status.code(), Some(0), "{}", crate::helpers::stderr(&o));
    assert_eq!(crate::helpers::stdout(&o).lines().count(), 1);
    assert!(
        crate::helpers::stderr(&o)
            .contains(":3: `id` (the client's event id) must be a string, found 7"),
        "{}",
        crate::helpers::stderr(&o)
    );
}
