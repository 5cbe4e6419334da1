//! The runtime's guarantees of LANGUAGE.md sections 6 and 10: no message
//! without consent, and no matching trigger dropped without a record.

use crate::helpers::{bin, root, stderr, stdout, with_schema};

/// Runs `program` over `events` with `flags`; (stdout lines, stderr).
fn run(program: &str, events: &str, flags: &[&str]) -> (Vec<serde_json::Value>, String) {
    let o = crate::helpers::run_program(program, events, flags);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    (lines, stderr(&o))
}

fn of_kind<'a>(lines: &'a [serde_json::Value], action: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["action"] == action).collect()
}

const OPT_OUT_LATER: &str = r#"{"at":"2026-03-01T09:00:00Z","contact":"c1","type":"contact_created","attributes":{"email":"a@x.com","phone":"+34600","opted_in":true,"country":"ES"}}
{"at":"2026-03-01T11:00:00Z","contact":"c1","type":"contact_updated","attributes":{"opted_in":false}}
"#;

/// The issue's case: opted in at creation, opted out two hours later; the
/// journey's later sends are suppressed, traced and counted.
#[test]
fn a_send_without_consent_at_that_instant_is_suppressed() {
    let program = with_schema(
        r#"workflow w {
  when contact_created where contact.opted_in
  send email "intro"
  wait 1d
  if contact.phone is set {
    send sms "check_inbox"
  }
  tag "after"
  send email "part2"
}
"#,
    );
    let (lines, err) = run(&program, OPT_OUT_LATER, &["--drain", "--trace"]);
    let sends: Vec<_> = of_kind(&lines, "send")
        .iter()
        .map(|l| l["template"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(sends, ["intro"], "only the send made with consent");
    let suppressed = of_kind(&lines, "suppressed");
    assert_eq!(suppressed.len(), 2, "{lines:?}");
    assert_eq!(
        suppressed[0].as_object().map(|o| o.len()),
        Some(7),
        "at, contact, workflow, action, channel, template, reason: {}",
        suppressed[0]
    );
    assert_eq!(suppressed[0]["channel"], "sms");
    assert_eq!(suppressed[0]["template"], "check_inbox");
    assert_eq!(suppressed[0]["reason"], "consent");
    assert_eq!(suppressed[0]["at"], "2026-03-02T09:00:00Z");
    assert_eq!(suppressed[1]["template"], "part2");
    // The journey goes on past a suppressed send.
    assert_eq!(of_kind(&lines, "tag").len(), 1);
    assert!(
        err.contains("sends suppressed for want of consent: w email 1, w sms 1"),
        "{err}"
    );
}

/// Without `--trace`, a suppressed send leaves no line on stdout.
#[test]
fn suppressed_sends_are_trace_records_only() {
    let program = with_schema(
        r#"workflow w {
  when contact_created where contact.opted_in
  wait 1d
  send email "late"
}
"#,
    );
    let (lines, err) = run(&program, OPT_OUT_LATER, &["--drain"]);
    assert!(lines.is_empty(), "{lines:?}");
    assert!(err.contains("w email 1"), "{err}");
}

/// A channel with no `@consent` field is not guarded.
#[test]
fn a_channel_without_a_consent_field_is_not_guarded() {
    let program = r#"contact {
  email: string @channel(email)
  phone: string? @channel(sms)
  opted_in: bool = false @consent(email)
}

workflow w {
  when contact_created
  send email "e"
  if contact.phone is set {
    send sms "s"
  }
}
"#;
    let events = r#"{"at":"2026-03-01T09:00:00Z","contact":"c1","type":"contact_created","attributes":{"email":"a@x.com","phone":"+1"}}
"#;
    let (lines, _) = run(program, events, &["--trace"]);
    let sent: Vec<_> = of_kind(&lines, "send")
        .iter()
        .map(|l| l["channel"].clone())
        .collect();
    assert_eq!(sent, ["sms"]);
    assert_eq!(of_kind(&lines, "suppressed")[0]["channel"], "email");
}

/// The examples' lead nurturing: a contact who opts out two hours after
/// signing up gets nothing more from it.
#[test]
fn the_examples_send_nothing_after_an_opt_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = dir.path().join("events.jsonl");
    std::fs::write(&e, OPT_OUT_LATER).expect("write");
    let o = bin()
        .arg("run")
        .arg(root().join("examples"))
        .arg("--events")
        .arg(&e)
        .arg("--drain")
        .output()
        .expect("runs");
    let out = stdout(&o);
    // The opt-out is at 11:00; any send after it is a breach.
    let late: Vec<&str> = out
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["action"] == "send" && v["at"].as_str().unwrap_or("") >= "2026-03-01T11:00:00Z"
        })
        .collect();
    assert!(
        out.contains("nurture_intro"),
        "the intro went before: {out}"
    );
    assert!(late.is_empty(), "sent after the opt-out: {late:#?}");
}

const THREE_DOWNLOADS: &str = r#"{"at":"2026-03-01T09:00:00Z","contact":"c1","type":"contact_created","attributes":{"email":"a@x.com","opted_in":true,"country":"ES"}}
{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"purchase","order_id":"o1","amount":1.0,"category":"x"}
{"at":"2026-03-01T10:30:00Z","contact":"c1","type":"purchase","order_id":"o2","amount":1.0,"category":"x"}
{"at":"2026-03-01T11:00:00Z","contact":"c1","type":"purchase","order_id":"o3","amount":1.0,"category":"x"}
"#;

/// Three matching events within a journey's wait: one journey, two
/// `skipped` records (`active`), counted in the summary.
#[test]
fn a_trigger_that_starts_no_journey_writes_a_skipped_record() {
    let program = with_schema(
        r#"workflow w {
  when purchase
  reenter always
  wait 1d
  tag "thanks"
}
"#,
    );
    let (lines, err) = run(&program, THREE_DOWNLOADS, &["--trace"]);
    let skipped = of_kind(&lines, "skipped");
    assert_eq!(skipped.len(), 2, "{lines:?}");
    assert_eq!(skipped[0]["reason"], "active");
    assert_eq!(skipped[0]["at"], "2026-03-01T10:30:00Z");
    assert_eq!(skipped[0].as_object().map(|o| o.len()), Some(5));
    let row = err
        .lines()
        .find(|l| l.trim_start().starts_with("w "))
        .unwrap_or("");
    assert_eq!(
        row.split_whitespace().last(),
        Some("2"),
        "the skipped column: {err}"
    );
}

/// `reenter never` after the first journey ended: `reason` is `reenter`.
#[test]
fn a_reentry_refused_is_skipped_for_reenter() {
    let program = with_schema(
        r#"workflow w {
  when purchase
  tag "first"
}
"#,
    );
    let (lines, _) = run(&program, THREE_DOWNLOADS, &["--trace"]);
    let reasons: Vec<_> = of_kind(&lines, "skipped")
        .iter()
        .map(|l| l["reason"].clone())
        .collect();
    assert_eq!(reasons, ["reenter", "reenter"]);
}

/// A `where` that does not hold writes nothing.
#[test]
fn a_false_where_writes_no_skipped_record() {
    let program = with_schema(
        r#"workflow w {
  when purchase where event.order_id == "none"
  tag "x"
}
"#,
    );
    let (lines, _) = run(&program, THREE_DOWNLOADS, &["--trace"]);
    assert!(of_kind(&lines, "skipped").is_empty(), "{lines:?}");
}

/// Output that cannot be written stops the run with an error, never exit 0.
#[test]
fn output_that_cannot_be_written_is_an_error() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let o = bin()
        .arg("run")
        .arg(root().join("examples"))
        .arg("--events")
        .arg(root().join("examples/events/lead_nurturing.jsonl"))
        .arg("--drain")
        .stdout(full)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot write the actions to standard output"),
        "{}",
        stderr(&o)
    );
}

/// Many contacts created, one line each.
fn many_contacts(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"at\":\"2026-03-01T09:00:00Z\",\"contact\":\"c{i}\",\"type\":\"contact_created\",\"attributes\":{{\"email\":\"c{i}@x.com\",\"opted_in\":true}}}}\n"))
        .collect()
}

/// A reader that goes away (`| head -1`) ends the run promptly, with one
/// line saying it did not finish and a non-zero exit (a scheduler must not
/// take it for a finished run).
#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let e = dir.path().join("events.jsonl");
    std::fs::write(&e, many_contacts(200_000)).expect("write");
    let mut child = bin()
        .arg("run")
        .arg(root().join("examples"))
        .arg("--events")
        .arg(&e)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("a line");
    // The reader is dropped here: the pipe closes.
    assert!(first.contains("\"action\""), "{first}");
    let o = child.wait_with_output().expect("ends");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "nurture run: stopped: the reader of standard output went away before the run finished\n",
        "no summary of actions nobody read"
    );
}

/// A reader of standard error that goes away (`2>&1 | head -1`) is no
/// error: the run neither panics nor stops for it.
#[test]
fn a_closed_stderr_is_no_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = dir.path().join("events.jsonl");
    // Bad records too, so that the run writes to stderr as it goes.
    let mut events = many_contacts(2_000);
    events.push_str("not json\n{\"at\":\"x\"}\n");
    std::fs::write(&e, events).expect("write");
    for _ in 0..5 {
        let mut child = bin()
            .arg("run")
            .arg(root().join("examples"))
            .arg("--events")
            .arg(&e)
            .args(["--on-error", "skip", "--rejects"])
            .arg(dir.path().join("rejects.jsonl"))
            .arg("--out")
            .arg(dir.path().join("out.jsonl"))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("runs");
        // Closed before the run writes its first message.
        drop(child.stderr.take());
        let status = child.wait().expect("ends");
        assert_eq!(status.code(), Some(0), "no panic (101), no stop");
    }
}

/// With `--events -`, an action is written while the input is still open.
#[test]
fn actions_come_out_while_the_input_is_still_open() {
    use std::io::{BufRead, BufReader, Write};
    let mut child = bin()
        .arg("run")
        .arg(root().join("examples"))
        .args(["--events", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    // Should the action never come, the run is killed and the test fails
    // instead of hanging.
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(30));
        let _ = std::process::Command::new("kill").arg(&pid).status();
    });
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(many_contacts(1).as_bytes())
        .expect("written");
    stdin.flush().expect("flushed");
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    out.read_line(&mut first)
        .expect("a line before the input ends");
    assert!(first.contains("\"contact\":\"c0\""), "{first}");
    drop(stdin);
    let o = child.wait_with_output().expect("ends");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 events read"), "{}", stderr(&o));
}

/// User text in a message is escaped and cut: an event type holding a
/// newline or an ESC, or ten million characters long.
#[test]
fn user_text_in_messages_is_escaped_and_cut() {
    let long = "e".repeat(10_000_000);
    for (ty, must) in [
        (
            "ping\u{1b}[31mred\nsummary: forged",
            "ping\\u{1b}[31mred\\nsummary: forged",
        ),
        (long.as_str(), "... (10000000 characters in all)"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = dir.path().join("events.jsonl");
        let line = serde_json::json!({"at": "2026-03-01T10:00:00Z", "contact": "c1", "type": ty});
        std::fs::write(&e, format!("{line}\n")).expect("write");
        let o = bin()
            .arg("run")
            .arg(root().join("examples"))
            .arg("--events")
            .arg(&e)
            .output()
            .expect("runs");
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(must), "{}", &err[..err.len().min(500)]);
        assert!(!err.contains('\u{1b}'), "no raw ESC: {err:?}");
        assert!(err.len() < 2_000, "cut: {} bytes", err.len());
    }
}

/// A history predicate whose filter reads only the event is kept as a
/// running tally; it gives what scanning the history gives (the second
/// predicate reads the contact, so it is scanned), windows included.
#[test]
fn tallied_history_predicates_agree_with_a_scan() {
    let program = with_schema(
        r#"workflow w {
  when purchase
  reenter always
  notify "t" "{count(purchase where event.amount > 10.0 within 2d)} {count(purchase where event.amount > 10.0 and contact.score > -1 within 2d)} {count(purchase)} {count(purchase where contact.score > -1)} {seen(email_opened where event.campaign == "x" within 1d)} {seen(email_opened where event.campaign == "x" and contact.score > -1 within 1d)}"
}
"#,
    );
    let mut events = vec![r#"{"at":"2026-03-01T00:00:00Z","contact":"c1","type":"contact_created","attributes":{"email":"a@x.com","opted_in":true,"country":"ES"}}"#.to_string()];
    for i in 0..200 {
        let hour = i * 3;
        let at = format!("2026-03-{:02}T{:02}:00:00Z", 1 + hour / 24, hour % 24);
        let amount = (i * 37 % 50) as f64;
        events.push(format!(r#"{{"at":"{at}","contact":"c1","type":"purchase","order_id":"o{i}","amount":{amount:.1},"category":"x"}}"#));
        if i % 9 == 0 {
            events.push(format!(
                r#"{{"at":"{at}","contact":"c1","type":"email_opened","campaign":"{}"}}"#,
                if i % 2 == 0 { "x" } else { "y" }
            ));
        }
    }
    let (lines, err) = run(&program, &(events.join("\n") + "\n"), &[]);
    let notes: Vec<_> = of_kind(&lines, "notify");
    assert_eq!(notes.len(), 200, "{err}");
    let mut windows_seen = std::collections::BTreeSet::new();
    for n in notes {
        let parts: Vec<&str> = n["message"].as_str().unwrap_or("").split(' ').collect();
        assert_eq!(parts[0], parts[1], "windowed count: {n}");
        assert_eq!(parts[2], parts[3], "whole count: {n}");
        assert_eq!(parts[4], parts[5], "windowed seen: {n}");
        windows_seen.insert(parts[0].to_string());
    }
    assert!(windows_seen.len() > 3, "the window moved: {windows_seen:?}");
}

/// A float that overflows, or a date past year 9999, is a located fault
/// (the journey fails), never a JSON `null` or an unreadable date.
#[test]
fn numbers_out_of_range_are_faults() {
    let program = with_schema(
        r#"workflow w {
  when contact_created
  set contact.lifetime_value = contact.lifetime_value * 10.0
  tag "not reached"
}

workflow d {
  when contact_created
  set contact.signed_up_at = @9999-12-31T00:00:00Z + 2d
  tag "not reached either"
}

workflow m {
  when contact_created
  set contact.score = -9223372036854775808
}
"#,
    );
    let events = r#"{"at":"2026-03-01T09:00:00Z","contact":"c1","type":"contact_created","attributes":{"email":"a@x.com","country":"ES","opted_in":true,"lifetime_value":1e308}}
"#;
    let (lines, err) = run(&program, events, &[]);
    assert!(of_kind(&lines, "tag").is_empty(), "{lines:?}");
    assert!(
        !lines
            .iter()
            .any(|l| l["value"].is_null() && l["action"] == "set"),
        "{lines:?}"
    );
    assert!(err.contains("the result is not a finite number"), "{err}");
    assert!(err.contains("the date is out of range"), "{err}");
    assert!(err.contains("p.flow:"), "located: {err}");
    let set = of_kind(&lines, "set");
    assert_eq!(set.len(), 1, "{lines:?}");
    assert_eq!(set[0]["value"], i64::MIN);
}
