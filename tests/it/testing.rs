//! `nurture test`: steps, claims, the matching rule, isolation, failures as
//! people read them, type errors in test blocks, and coverage.

use crate::helpers::{bin, diagnostics, root, snapshot_body, stdout, with_schema};
use nurture::testing;
use std::sync::Arc;

/// A workflow that emits one action of every kind.
const PROGRAM: &str = r#"workflow hello {
  when contact_created where contact.opted_in
  goal purchase
  send email "hi" with { n: 1, who: "ana" }
  wait for email_opened within 2d where event.campaign == "hi" {
    tag "opened"
    set contact.score = 5
  } timeout {
    untag "quiet"
    add to list "cold"
  }
  notify "sales" "a new lead"
  webhook "crm"
  add to audience "ads"
  remove from list "cold"
}
"#;

/// Each test of `tests` (written after `PROGRAM`): its name and, for a
/// failure, the message.
fn results(tests: &str) -> Vec<(String, Option<String>)> {
    let src = crate::helpers::sources(&with_schema(&format!("{PROGRAM}\n{tests}")));
    let a = nurture::pipeline::analyse(&src);
    let errors: Vec<_> = a.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let prog = Arc::new(nurture::runtime::compile(&a.program, &a.checked.schema));
    a.program
        .tests()
        .map(|t| {
            let r = testing::run(t, &prog, false);
            (r.name, r.failure.map(|f| f.message))
        })
        .collect()
}

/// Asserts each test passed (`None`) or failed with a message containing
/// the text given.
fn expect(tests: &str, want: &[(&str, Option<&str>)]) {
    let got = results(tests);
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((name, failure), (want_name, want_failure)) in got.iter().zip(want) {
        assert_eq!(name, want_name);
        match (failure, want_failure) {
            (None, None) => {}
            (Some(m), Some(w)) => assert!(m.contains(w), "{name}: `{m}` lacks `{w}`"),
            (f, w) => panic!("{name}: got {f:?}, wanted {w:?}"),
        }
    }
}

const ANA: &str = r#"contact ana { email: "ana@example.com", country: "ES", opted_in: true }"#;

#[test]
fn every_step_kind_drives_the_run() {
    expect(
        &format!(
            r#"
test "at and contact" {{
  at @2026-03-01T09:00:00Z
  {ANA}
  expect ana: send email "hi" at @2026-03-01T09:00:00Z
  expect ana: now == @2026-03-01T09:00:00Z
}}
test "advance fires the timeout" {{
  {ANA}
  advance 2d
  expect ana: untag "quiet" at @2026-01-03T00:00:00Z
  expect ana: add to list "cold"
}}
test "an event resumes the wait" {{
  {ANA}
  advance 1h
  event ana email_opened {{ campaign: "hi" }}
  expect ana: tag "opened" at @2026-01-01T01:00:00Z
  expect ana: set contact.score = 5
  expect ana: contact.score == 5
}}
test "update changes the contact" {{
  {ANA}
  update ana {{ score: 7, plan: "paid" }}
  expect ana: contact.score == 7 and contact.plan == "paid"
}}
test "given fires nothing" {{
  given ana {{ email: "ana@example.com", country: "ES", opted_in: true }}
  expect ana: nothing else
  expect ana: not in hello
}}
test "at never goes back" {{
  at @2026-03-01T00:00:00Z
  {ANA}
  advance 1d
  at @2026-03-01T12:00:00Z
}}
"#
        ),
        &[
            ("at and contact", None),
            ("advance fires the timeout", None),
            ("an event resumes the wait", None),
            ("update changes the contact", None),
            ("given fires nothing", None),
            ("at never goes back", Some("would move the clock back")),
        ],
    );
}

#[test]
fn every_claim_kind_holds_and_fails() {
    expect(
        &format!(
            r#"
test "patterns with parts left off" {{
  {ANA}
  advance 2d
  expect ana: send
  expect ana: untag
  expect ana: add to list
  expect ana: notify "sales"
  expect ana: webhook "crm"
  expect ana: add to audience "ads"
  expect ana: remove from list "cold"
  expect ana: nothing else
}}
test "with keys must be equal" {{
  {ANA}
  expect ana: send email "hi" with {{ n: 1 }}
}}
test "with a different value" {{
  {ANA}
  expect ana: send email "hi" with {{ who: "bob" }}
}}
test "a time that differs" {{
  {ANA}
  expect ana: send email "hi" at @2026-01-01T00:00:01Z
}}
test "no holds" {{
  {ANA}
  expect ana: no send sms
  expect ana: no tag
}}
test "no fails" {{
  {ANA}
  expect ana: no send email
}}
test "nothing else fails" {{
  {ANA}
  advance 2d
  expect ana: send email "hi"
  expect ana: nothing else
}}
test "in and outcome" {{
  {ANA}
  expect ana: in hello
  event ana purchase {{ order_id: "o1", amount: 9.5, category: "shoes" }}
  expect ana: not in hello
  expect ana: hello converted
}}
test "in fails" {{
  given ana {{ email: "a@x.com", country: "ES", opted_in: true }}
  expect ana: in hello
}}
test "not in fails" {{
  {ANA}
  expect ana: not in hello
}}
test "an outcome that differs" {{
  {ANA}
  advance 2d
  expect ana: hello converted
}}
test "an outcome still in flight" {{
  {ANA}
  expect ana: hello completed
}}
test "a false expression" {{
  {ANA}
  expect ana: contact.score > 3
}}
"#
        ),
        &[
            ("patterns with parts left off", None),
            ("with keys must be equal", None),
            (
                "with a different value",
                Some("no action for `ana` matches"),
            ),
            ("a time that differs", Some("at 2026-01-01T00:00:01Z")),
            ("no holds", None),
            ("no fails", Some("an action for `ana` matches `send email`")),
            (
                "nothing else fails",
                Some("6 actions for `ana` matched by no claim"),
            ),
            ("in and outcome", None),
            ("in fails", Some("has no journey in flight in `hello`")),
            ("not in fails", Some("has a journey in flight in `hello`")),
            (
                "an outcome that differs",
                Some("ended completed, not converted"),
            ),
            ("an outcome still in flight", Some("is still in flight")),
            ("a false expression", Some("(contact.score is 0)")),
        ],
    );
}

/// The first unmatched action that matches becomes matched: the same claim
/// twice needs two actions.
#[test]
fn a_claim_matches_one_action_once() {
    expect(
        &format!(
            r#"
test "one send, two claims" {{
  {ANA}
  expect ana: send email
  expect ana: send email
}}
test "two lists, two claims" {{
  {ANA}
  advance 2d
  expect ana: add to list "cold"
  expect ana: remove from list "cold"
  expect ana: no add to list
}}
"#
        ),
        &[
            (
                "one send, two claims",
                Some("no action for `ana` matches `send email`"),
            ),
            ("two lists, two claims", None),
        ],
    );
}

/// Each test starts from nothing: no contacts, no actions, the clock at
/// 2026-01-01T00:00:00Z, whatever ran before it.
#[test]
fn tests_are_isolated() {
    expect(
        &format!(
            r#"
test "first" {{
  at @2026-06-01T00:00:00Z
  {ANA}
  update ana {{ score: 9 }}
  advance 2d
}}
test "second" {{
  given ana {{ email: "a@x.com", country: "ES", opted_in: true }}
  expect ana: now == @2026-01-01T00:00:00Z
  expect ana: contact.score == 0
  expect ana: nothing else
  expect ana: not in hello
}}
"#
        ),
        &[("first", None), ("second", None)],
    );
}

/// `nurture test` end to end: a line per test, the failure with its source
/// and the actions the contact was sent, the counts, exit 1.
#[test]
fn a_failure_shows_the_claim_and_what_was_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("p.flow"),
        with_schema(&format!(
            r#"{PROGRAM}
test "an opener is tagged" {{
  {ANA}
  advance 1h
  event ana email_opened {{ campaign: "hi" }}
  expect ana: tag "opened"
}}

test "a lead who never opens is tagged" {{
  {ANA}
  advance 2d
  expect ana: tag "opened"
}}
"#
        )),
    )
    .expect("write");
    let o = bin()
        .current_dir(dir.path())
        .args(["test", "p.flow"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!("test_failure", stdout(&o));

    let o = bin()
        .current_dir(dir.path())
        .args(["test", "p.flow", "--filter", "opener", "--format", "json"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["name"], "an opener is tagged");
    assert_eq!(lines[0]["passed"], true);
    assert_eq!(lines[0]["file"], "p.flow");
    assert_eq!(lines[0]["line"], 36);
}

/// A program that does not check runs no test: exit 2.
#[test]
fn a_program_with_errors_runs_no_test() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("p.flow"),
        with_schema(&format!(
            "{PROGRAM}\ntest \"t\" {{\n  contact ana {{ emial: \"x\" }}\n}}\n"
        )),
    )
    .expect("write");
    let o = bin()
        .current_dir(dir.path())
        .args(["test", "p.flow"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        crate::helpers::stderr(&o).contains("no test was run"),
        "{}",
        crate::helpers::stderr(&o)
    );
}

macro_rules! test_type_snap {
    ($name:ident, $codes:expr, $body:expr) => {
        #[test]
        fn $name() {
            let src = with_schema(&format!("{PROGRAM}\n{}", $body));
            let (diags, _) = diagnostics(&src);
            let codes: Vec<_> = diags.iter().map(|d| d.code.as_str()).collect();
            assert_eq!(codes, $codes, "{diags:#?}");
            insta::assert_snapshot!(
                stringify!($name),
                snapshot_body(&src)
                    .split_once("\ntest ")
                    .map_or(String::new(), |(_, rest)| format!("test {rest}"))
            );
        }
    };
}

test_type_snap!(
    test_contact_fields,
    [
        "nurture::type::missing-field",
        "nurture::type::unknown-field",
        "nurture::type::mismatch",
        "nurture::type::enum-member",
    ],
    r#"test "fields" {
  contact ana { emial: "a@x.com", country: "ES", opted_in: 1, plan: "gold" }
}
"#
);
test_type_snap!(
    test_event_payload,
    [
        "nurture::type::unknown-event",
        "nurture::type::missing-field",
        "nurture::type::unknown-payload-field",
        "nurture::type::mismatch",
    ],
    r#"test "events" {
  contact ana { email: "a@x.com", country: "ES", opted_in: true }
  event ana email_opend { campaign: "x" }
  event ana email_opened { campain: "x" }
  event ana page_visited { url: "/", seconds: "10" }
}
"#
);
test_type_snap!(
    test_claim_names,
    [
        "nurture::test::unknown-contact",
        "nurture::type::unknown-workflow",
        "nurture::type::unknown-channel",
        "nurture::type::unknown-field",
        "nurture::type::mismatch",
        "nurture::type::event-out-of-scope",
        "nurture::test::not-literal",
    ],
    r#"test "claims" {
  contact ana { email: "a@x.com", country: "ES", opted_in: true }
  expect bob: send
  expect ana: in helo
  expect ana: send emial
  expect ana: set contact.scroe = 1
  expect ana: contact.score + 1
  expect ana: event.campaign == "x"
  update ana { score: contact.score }
}
"#
);

/// Coverage of a small program, counted by hand: 9 statements (send, wait
/// for, tag, set, untag, add to list, notify, webhook, add to audience,
/// remove from list: 10), 2 branches of the wait for; one test that only
/// times out runs 8 statements and takes 1 branch.
#[test]
fn coverage_counts_statements_and_branches() {
    let src = crate::helpers::sources(&with_schema(&format!(
        r#"{PROGRAM}
workflow choose {{
  when purchase
  if trigger.amount > 100 {{
    tag "big"
  }} else if trigger.amount > 10 {{
    tag "mid"
  }}
  split {{
    50% {{ tag "a" }}
    50% {{ tag "b" }}
  }}
}}

test "a lead who never opens" {{
  {ANA}
  advance 2d
}}

test "a big purchase" {{
  {ANA}
  event ana purchase {{ order_id: "o", amount: 500.0, category: "x" }}
}}
"#
    )));
    let a = nurture::pipeline::analyse(&src);
    let errors: Vec<_> = a.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let prog = Arc::new(nurture::runtime::compile(&a.program, &a.checked.schema));
    let mut all =
        nurture::runtime::coverage::Coverage::new(prog.workflows.iter().map(|w| w.code.len()));
    for t in a.program.tests() {
        all.merge(
            testing::run(t, &prog, true)
                .coverage
                .as_ref()
                .expect("coverage"),
        );
    }
    let report = testing::coverage_report(&prog, &all);
    // hello: send, wait for, tag, set, untag, add to list, notify, webhook,
    // add to audience, remove from list = 10 statements; the second test
    // converts at once (goal purchase), so only the first runs past the
    // wait: 8 of them (not tag, not set). Branches: received, timeout.
    assert_eq!(report[0].name, "hello");
    assert_eq!(report[0].statements, (8, 10));
    assert_eq!(report[0].branches, (1, 2));
    // choose: if, tag, else if, tag, split, tag, tag = 7 statements; the big
    // purchase runs if, tag "big", split and one arm's tag: 4. Branches:
    // the if arm, the else-if arm, the absent else, two split arms = 5; taken:
    // the if arm and one split arm.
    assert_eq!(report[1].name, "choose");
    assert_eq!(report[1].statements, (4, 7));
    assert_eq!(report[1].branches, (2, 5));
    let never: Vec<usize> = report[1]
        .never_run()
        .map(|s| src.file(s.file).line_col(s.start as usize).0)
        .collect();
    let first = src.files[0]
        .text
        .lines()
        .position(|l| l.contains("workflow choose"))
        .expect("choose")
        + 1;
    // `else if` (line +4), tag "mid" (+5), and the arm not taken.
    assert!(
        never.contains(&(first + 4)) && never.contains(&(first + 5)),
        "{never:?}"
    );
    assert_eq!(never.len(), 3, "{never:?}");
}

/// The examples are tested in the language, every branch of every example
/// workflow taken by some test.
#[test]
fn the_examples_tests_pass_with_full_branch_coverage() {
    let o = bin()
        .args(["test", "--coverage", "--format", "json"])
        .arg(root().join("examples"))
        .output()
        .expect("runs");
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let last: serde_json::Value =
        serde_json::from_str(out.lines().last().unwrap_or("")).expect("json");
    let workflows = last["coverage"].as_array().expect("coverage");
    assert!(workflows.len() >= 10);
    for w in workflows {
        assert_eq!(
            w["branches"]["taken"], w["branches"]["total"],
            "{}: {w}",
            w["workflow"]
        );
        assert_eq!(
            w["statements"]["run"], w["statements"]["total"],
            "{}: {w}",
            w["workflow"]
        );
    }
}

/// A field or event that only tests use is still unused by the workflows.
#[test]
fn declarations_only_tests_use_are_unused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("p.flow"),
        r#"contact {
  email: string @channel(email)
  opted_in: bool = false @consent(email)
  nickname: string?
}
event ping {}
event pong {}

workflow w {  // nurture:allow(no-goal)
  when ping
  if contact.opted_in {
    send email "hi"
  }
}

test "t" {
  contact ana { email: "a@x.com", nickname: "an" }
  event ana pong
  expect ana: contact.nickname == "an"
}
"#,
    )
    .expect("write");
    let o = bin()
        .current_dir(dir.path())
        .args(["lint", "p.flow", "--format", "json"])
        .output()
        .expect("runs");
    let messages: Vec<String> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["message"].to_string())
        .collect();
    assert_eq!(
        messages,
        [
            "\"the field `nickname` is never read or written\"",
            "\"the event `pong` is never used\""
        ]
    );
}

/// `--coverage-lcov FILE`: per source file, a `DA` line per statement line
/// and a `BRDA` line per branch; the examples' are all covered.
#[test]
fn coverage_in_lcov() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lcov = dir.path().join("coverage.lcov");
    let o = bin()
        .args(["test", "--coverage-lcov"])
        .arg(&lcov)
        .arg(root().join("examples"))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = std::fs::read_to_string(&lcov).expect("lcov");
    let records: Vec<&str> = text
        .split("end_of_record\n")
        .filter(|r| !r.trim().is_empty())
        .collect();
    assert!(records.len() >= 9, "{text}");
    for r in &records {
        let file = r.lines().find_map(|l| l.strip_prefix("SF:")).expect("SF");
        assert!(file.ends_with(".flow"), "{file}");
        let value = |key: &str| -> usize {
            r.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.parse().ok())
                .expect(key)
        };
        assert_eq!(value("LF:"), value("LH:"), "{file}: a line never run");
        assert_eq!(value("BRF:"), value("BRH:"), "{file}: a branch never taken");
        assert_eq!(
            r.lines().filter(|l| l.starts_with("DA:")).count(),
            value("LF:")
        );
        assert!(r
            .lines()
            .filter(|l| l.starts_with("DA:"))
            .all(|l| l.ends_with(",1")));
    }
    assert!(text.contains("BRDA:"), "{text}");
}

/// An `else` whose block starts with an `if` is an arm of its own, unlike
/// an `else if`: 4 branches against 3.
#[test]
fn an_else_holding_an_if_is_an_arm_of_its_own() {
    let total = |body: &str| {
        let src = crate::helpers::sources(&with_schema(body));
        let a = nurture::pipeline::analyse(&src);
        let errors: Vec<_> = a.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let prog = Arc::new(nurture::runtime::compile(&a.program, &a.checked.schema));
        let cov =
            nurture::runtime::coverage::Coverage::new(prog.workflows.iter().map(|w| w.code.len()));
        testing::coverage_report(&prog, &cov)[0].branches.1
    };
    let nested = total(
        "workflow w {\n  when purchase\n  if trigger.amount > 100.0 {\n    tag \"big\"\n  } else {\n    if trigger.amount > 10.0 {\n      tag \"mid\"\n    }\n  }\n}\n",
    );
    let chained = total(
        "workflow w {\n  when purchase\n  if trigger.amount > 100.0 {\n    tag \"big\"\n  } else if trigger.amount > 10.0 {\n    tag \"mid\"\n  }\n}\n",
    );
    assert_eq!((nested, chained), (4, 3));
}

/// Claims written like their statements: `webhook "crm" with { ... }`
/// (the keys given must be equal) and `notify "team" "message"` (the
/// message as sent). A failing test lists, beside the actions sent, the
/// sends suppressed (with the reason) and those held by quiet hours now.
#[test]
fn webhook_and_notify_claims_and_the_sends_not_emitted() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("p.flow"),
        r#"contact {
  email: string @channel(email)
  phone: string = "" @channel(sms)
  first_name: string?
  opted_in: bool = true @consent(email)
  sms_ok: bool = false @consent(sms)
}

event signup { plan: string }

quiet hours 21:00 to 08:00 for email

workflow w {  // nurture:allow(no-goal, consent)
  when signup
  webhook "crm" with { plan: trigger.plan, name: contact.first_name ?? "?" }
  notify "sales" "{contact.first_name ?? "someone"} chose {trigger.plan}"
  send sms "hi"
  send email "welcome"
}

test "claims like statements" {
  at @2026-01-01T10:00:00Z
  contact ana { email: "a@x", phone: "+1", first_name: "Ana" }
  event ana signup { plan: "pro" }
  expect ana: webhook "crm" with { plan: "pro" }
  expect ana: notify "sales" "Ana chose pro"
  expect ana: no webhook "crm" with { plan: "free" }
  expect ana: send email "welcome"
}

test "what was not sent is shown" {
  at @2026-01-01T22:00:00Z
  contact bo { email: "b@x", phone: "+1" }
  event bo signup { plan: "free" }
  expect bo: send email "welcome"
}
"#,
    )
    .expect("write");
    let o = bin()
        .current_dir(dir.path())
        .args(["test", "p.flow"])
        .output()
        .expect("runs");
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("test claims like statements ... ok"), "{out}");
    assert!(
        out.contains("test what was not sent is shown ... FAILED"),
        "{out}"
    );
    assert!(out.contains("sends not emitted for `bo`:"), "{out}");
    assert!(
        out.contains("2026-01-01T22:00:00Z send sms \"hi\" suppressed: no consent (w)"),
        "{out}"
    );
    assert!(
        out.contains(
            "2026-01-01T22:00:00Z a send held by quiet hours until 2026-01-02T08:00:00Z (w)"
        ),
        "{out}"
    );
    assert!(out.contains("1 passed, 1 failed"), "{out}");
}
