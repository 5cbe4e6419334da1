//! The runtime's front door, driven as every driver does: feed records,
//! move the clock, take what was emitted, look at contacts and journeys.

use crate::helpers::{sources, with_schema};
use nurture::runtime::output::{Action, ActionKind, Lifecycle, What};
use nurture::runtime::value::parse_datetime;
use nurture::runtime::{BadRecord, Driver, Interpreter, Progress, StreamOptions};
use std::ops::ControlFlow;
use std::sync::Arc;

const PROGRAM: &str = r#"
workflow welcome {
  when contact_created
  send email "hello"
  wait 2d
  tag "welcomed"
  wait for email_opened within 1d {
    send email "thanks"
  }
}
"#;

fn interpreter(trace: bool) -> Interpreter {
    let src = sources(&with_schema(PROGRAM));
    let a = nurture::pipeline::analyse(&src);
    assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
    let prog = nurture::runtime::compile(&a.program, &a.checked.schema);
    Interpreter::new(Arc::new(prog), trace)
}

fn at(t: &str) -> i64 {
    parse_datetime(t).expect("datetime")
}

const CREATED: &str = r#"{"at":"2026-01-01T09:00:00Z","contact":"ann","type":"contact_created","attributes":{"email":"a@x.com","country":"FR","opted_in":true}}"#;

#[test]
fn feeding_an_event_emits_typed_actions() {
    let mut it = interpreter(false);
    it.feed_line(CREATED).expect("accepted");
    let got = it.take_emitted();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].contact, "ann");
    assert_eq!(got[0].at, at("2026-01-01T09:00:00Z"));
    match &got[0].what {
        What::Action(Action::Send {
            channel, template, ..
        }) => assert_eq!((&**channel, &**template), ("email", "hello")),
        other => panic!("expected a send, got {other:?}"),
    }
    assert!(it.take_emitted().is_empty(), "taking empties the queue");
    assert_eq!(it.now(), Some(at("2026-01-01T09:00:00Z")));
}

#[test]
fn moving_the_clock_fires_due_timers_only() {
    let mut it = interpreter(false);
    it.feed_line(CREATED).expect("accepted");
    it.take_emitted();
    it.advance_to(at("2026-01-03T08:59:59Z"));
    assert!(it.take_emitted().is_empty(), "the wait of 2d is not over");
    it.advance_to(at("2026-01-03T09:00:00Z"));
    let got = it.take_emitted();
    assert!(
        matches!(&got[..], [r] if matches!(&r.what, What::Action(Action::Tag(t)) if &**t == "welcomed")),
        "{got:?}"
    );
    assert_eq!(it.stats().actions[ActionKind::Tag as usize], 1);
    assert_eq!(it.stats().actions[ActionKind::Send as usize], 1);
}

#[test]
fn a_journey_can_be_inspected_where_it_waits() {
    let mut it = interpreter(false);
    it.feed_line(CREATED).expect("accepted");
    let j = it.journeys("ann").expect("known contact");
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].workflow, 0);
    assert_eq!(j[0].waiting_for, None);
    assert_eq!(j[0].until, at("2026-01-03T09:00:00Z"));
    it.advance_to(at("2026-01-03T09:00:00Z"));
    let j = it.journeys("ann").expect("known contact");
    let opened = it.program().schema.event("email_opened").expect("declared");
    assert_eq!(j[0].waiting_for, Some(opened as u16));
    assert_eq!(j[0].until, at("2026-01-04T09:00:00Z"));
    it.drain();
    // The clock stays at the last timer fired (the `wait for` timing out).
    assert_eq!(it.now(), Some(at("2026-01-04T09:00:00Z")));
    assert_eq!(it.journeys("ann"), Some(vec![]));
    assert_eq!(it.journeys("bob"), None);
    assert_eq!(it.stats().workflows[0].completed, 1);
}

#[test]
fn trace_records_are_lifecycle_values_rendered_in_one_place() {
    let mut it = interpreter(true);
    it.feed_line(CREATED).expect("accepted");
    let got = it.take_emitted();
    let kinds: Vec<_> = got
        .iter()
        .map(|r| match &r.what {
            What::Lifecycle(Lifecycle::Enter) => "enter",
            What::Lifecycle(Lifecycle::Wait { .. }) => "wait",
            What::Action(_) => "action",
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["enter", "action", "wait"]);
    let line = it.render(&got[2]);
    assert_eq!(
        line,
        "{\"at\":\"2026-01-01T09:00:00Z\",\"contact\":\"ann\",\"workflow\":\"welcome\",\"action\":\"wait\",\"until\":\"2026-01-03T09:00:00Z\"}\n"
    );
}

#[test]
fn a_refused_event_leaves_the_state_as_it_was() {
    let mut it = interpreter(false);
    it.feed_line(CREATED).expect("accepted");
    let err = it
        .feed_line(
            r#"{"at":"2026-01-01T08:00:00Z","contact":"ann","type":"email_opened","campaign":"x"}"#,
        )
        .expect_err("time goes backwards");
    // The kind, for a caller to act on, and the words, for people.
    assert_eq!(
        err,
        nurture::runtime::RecordError::Late {
            at: 1_767_254_400_000,
            clock: 1_767_258_000_000,
            moved_by: nurture::runtime::ClockMove::Event,
        }
    );
    assert!(err.to_string().contains("time goes backwards"), "{err}");
    assert_eq!(it.stats().events, 1);
    assert_eq!(it.attributes("ann").map(|a| a.len()), Some(10));
}

/// Collects what a stream hands to its driver.
#[derive(Default)]
struct Collect {
    bad: Vec<(u64, String)>,
    ends: Vec<u64>,
    progress: Vec<u64>,
    consumed: Vec<u64>,
    json: String,
}

impl Driver for Collect {
    fn bad_record(&mut self, _: &mut Interpreter, bad: BadRecord) -> ControlFlow<()> {
        self.bad.push((bad.line, bad.reason.to_string()));
        self.ends.push(bad.end);
        ControlFlow::Continue(())
    }

    fn progress(&mut self, it: &mut Interpreter, at: Progress) -> ControlFlow<()> {
        self.progress.push(at.line);
        self.consumed.push(at.consumed);
        it.take_json(&mut self.json);
        ControlFlow::Continue(())
    }
}

#[test]
fn a_stream_feeds_every_line_and_reports_bad_ones_by_line() {
    let input = format!(
        r"{CREATED}
not json
{}
",
        r#"{"at":"2026-01-05T00:00:00Z","contact":"bob","type":"email_opened","campaign":"x"}"#
    );
    let mut it = interpreter(false);
    let mut driver = Collect::default();
    let len = input.len() as u64;
    let second_end = (CREATED.len() + 1 + "not json\n".len()) as u64;
    let end = it
        .feed_stream(
            std::io::Cursor::new(input.into_bytes()),
            StreamOptions::default(),
            &mut driver,
        )
        .expect("readable");
    assert_eq!(end, nurture::runtime::StreamEnd::Finished { consumed: len });
    let lines: Vec<u64> = driver.bad.iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, [2, 3]);
    assert_eq!(driver.ends, [second_end, len], "where each bad record ends");
    assert!(
        driver.bad[1].1.contains("unknown contact `bob`"),
        "{:?}",
        driver.bad
    );
    assert_eq!(driver.progress.last(), Some(&3));
    assert_eq!(driver.consumed.last(), Some(&len), "every byte handled");
    assert!(
        driver.json.contains("\"template\":\"hello\""),
        "{}",
        driver.json
    );
    assert_eq!(it.stats().events, 1);
}

/// Records each write's length.
#[derive(Default)]
struct Writes(Vec<u8>, Vec<usize>);

impl std::io::Write for Writes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        self.1.push(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A burst of timers firing at once is written in chunks, and the text is
/// the same as rendering the records in one piece.
#[test]
fn a_burst_of_output_is_written_in_chunks() {
    let run = || {
        let mut it = interpreter(true);
        for i in 0..2000 {
            let line = CREATED.replace("\"ann\"", &format!("\"c{i}\""));
            it.feed_line(&line).expect("accepted");
        }
        it.take_emitted();
        it.drain();
        it
    };
    let mut whole = String::new();
    run().take_json(&mut whole);
    let mut writes = Writes::default();
    run().write_json(&mut writes).expect("written");
    assert_eq!(String::from_utf8(writes.0).expect("utf-8"), whole);
    assert!(writes.1.len() > 2, "{:?}", writes.1);
    assert!(
        writes.1.iter().all(|n| *n < (1 << 16) + 512),
        "{:?}",
        writes.1
    );
}

/// Stops at the first bad record.
struct StopAtBad;

impl Driver for StopAtBad {
    fn bad_record(&mut self, _: &mut Interpreter, _: BadRecord) -> ControlFlow<()> {
        ControlFlow::Break(())
    }

    fn progress(&mut self, _: &mut Interpreter, _: Progress) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// A stream stopped at a bad record says how much of the input it handled:
/// through that record, not a byte further.
#[test]
fn a_stopped_stream_says_how_far_it_read() {
    let input = format!("{CREATED}\nnot json\n{CREATED}\n");
    let mut it = interpreter(false);
    let end = it
        .feed_stream(
            std::io::Cursor::new(input.into_bytes()),
            StreamOptions::default(),
            &mut StopAtBad,
        )
        .expect("readable");
    let through_bad = (CREATED.len() + 1 + "not json\n".len()) as u64;
    assert_eq!(
        end,
        nurture::runtime::StreamEnd::Stopped {
            consumed: through_bad
        }
    );
    assert_eq!(it.stats().events, 1);
}

/// Each way a record is refused is its own kind of error.
#[test]
fn refused_records_are_typed() {
    use nurture::runtime::RecordError;
    let mut it = interpreter(false);
    it.feed_line(CREATED).expect("accepted");
    let kind = |it: &mut nurture::runtime::Interpreter, line: &str| {
        it.feed_line(line).expect_err("refused")
    };
    assert!(matches!(kind(&mut it, CREATED), RecordError::ContactExists(c) if c == "ann"));
    assert!(matches!(
        kind(&mut it, r#"{"at":"2026-01-01T09:00:00Z","contact":"bob","type":"email_opened","campaign":"x"}"#),
        RecordError::UnknownContact(c) if c == "bob"
    ));
    assert!(matches!(
        kind(
            &mut it,
            r#"{"at":"2029-01-01T09:00:00Z","contact":"ann","type":"email_opened","campaign":"x"}"#
        ),
        RecordError::ClockJump { .. }
    ));
    assert!(matches!(
        kind(
            &mut it,
            r#"{"at":"2026-01-01T09:00:00Z","contact":"ann","type":"nope"}"#
        ),
        RecordError::Invalid(_)
    ));
    assert_eq!(it.stats().events, 1);
}

/// Every action gets an id, its 1-based place in the emission order of all
/// the actions the state has emitted: shown with `set_action_ids`, never on
/// a lifecycle record, and going on across a snapshot and a restore.
#[test]
fn actions_are_numbered_across_runs() {
    let mut it = interpreter(true);
    it.set_action_ids(true);
    it.feed_line(CREATED).expect("accepted");
    let mut first = String::new();
    it.take_json(&mut first);
    let ids = |text: &str| -> Vec<Option<u64>> {
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                v.get("id").and_then(serde_json::Value::as_u64)
            })
            .collect()
    };
    let got = ids(&first);
    let actions: Vec<u64> = got.iter().flatten().copied().collect();
    assert!(!actions.is_empty(), "{first}");
    assert_eq!(
        actions,
        (1..=actions.len() as u64).collect::<Vec<_>>(),
        "{first}"
    );
    assert!(
        got.iter().any(Option::is_none),
        "lifecycle records have none: {first}"
    );
    // Restored from a snapshot, the numbering goes on.
    let snap = it.snapshot();
    let mut again = nurture::runtime::Interpreter::restore(it.program().clone(), false, snap)
        .expect("restored");
    again.set_action_ids(true);
    again.drain();
    let mut second = String::new();
    again.take_json(&mut second);
    let next: Vec<u64> = ids(&second).into_iter().flatten().collect();
    assert!(!next.is_empty(), "{second}");
    assert_eq!(next[0], actions.len() as u64 + 1, "{second}");
    // Without ids the output is `nurture run`'s.
    assert!(!second.is_empty());
    let mut plain =
        nurture::runtime::Interpreter::restore(it.program().clone(), false, it.snapshot())
            .expect("restored");
    plain.drain();
    let mut third = String::new();
    plain.take_json(&mut third);
    assert!(!third.contains("\"id\""), "{third}");
}

/// A contact's partition (LANGUAGE.md section 12): FNV-1a 64-bit over the
/// id's UTF-8 bytes, modulo P; checked against the published FNV-1a test
/// values and a hand computation.
#[test]
fn partitions_follow_fnv1a64() {
    use nurture::runtime::engine::fnv1a64;
    assert_eq!(fnv1a64(*b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(*b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(*b"foobar"), 0x8594_4171_f739_67e8);
    let p = nurture::runtime::partition_of("foobar", 64);
    assert_eq!(p, (0x8594_4171_f739_67e8_u64 % 64) as u32);
    assert_eq!(nurture::runtime::partition_of("ana", 1), 0);
    // Every partition gets contacts.
    let mut seen = [false; 16];
    for i in 0..1000 {
        seen[nurture::runtime::partition_of(&format!("c{i}"), 16) as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
}
