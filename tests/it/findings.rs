//! Regressions from the robustness campaign
//! (`shared/fuzz-findings/turn3/INDEX.md`), one test per finding.

use crate::helpers::{bin, run_program, stderr, stdout};

/// #8: a wait, a `wait until` or a quiet-hours release that would end past
/// the year 9999 faults the journey at its statement, as an expression out
/// of range does, instead of stamping `+19965-12-24T00:00:00Z`.
#[test]
fn f8_a_wait_past_year_9999_faults_the_journey() {
    let program = r#"contact {
  email: string @channel(email)
  opted_in: bool = true @consent(email)
  at: datetime?
}
event ping {}
event late {}
quiet hours 21:00 to 08:00

workflow far {  // nurture:allow(no-goal)
  when ping
  if contact.at is set {
    wait until contact.at
    send email "reached"
    wait 520000w
    send email "plus_10000y"
  }
}

workflow quiet {  // nurture:allow(no-goal)
  when late
  send email "at_night"
}
"#;
    let events = r#"{"at":"2026-01-01T00:00:00Z","contact":"g","type":"contact_created","attributes":{"email":"g","at":"9999-12-31T12:00:00Z"}}
{"at":"2026-01-01T00:00:00Z","contact":"g","type":"ping"}
"#;
    let o = run_program(program, events, &["--drain", "--trace"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("+1"), "no stamp past 9999: {out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let sends: Vec<&str> = lines
        .iter()
        .filter(|l| l["action"] == "send")
        .filter_map(|l| l["template"].as_str())
        .collect();
    assert_eq!(sends, ["reached"]);
    let end = lines
        .iter()
        .rfind(|l| l["action"] == "end")
        .expect("an end");
    assert_eq!(end["outcome"], "failed");
    assert!(
        stderr(&o).contains("the wait would end past the year 9999"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(":15:"),
        "the wait's line: {}",
        stderr(&o)
    );

    // Quiet hours on the last night of 9999: the release would fall in
    // the year 10000.
    let events = r#"{"at":"2026-01-01T00:00:00Z","contact":"g","type":"contact_created","attributes":{"email":"g"}}
{"at":"9999-12-31T22:00:00Z","contact":"g","type":"late"}
"#;
    let o = run_program(program, events, &["--drain", "--allow-clock-jump"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "", "nothing sent past 9999");
    assert!(
        stderr(&o).contains("the wait would end past the year 9999"),
        "{}",
        stderr(&o)
    );
}

/// #4 (its guard): an event more than 366 days after the clock is a bad
/// record naming both times, unless `--allow-clock-jump`; `--until` is not
/// limited.
#[test]
fn f4_a_mistyped_year_does_not_move_the_clock() {
    let program = "contact {\n  email: string @channel(email)\n}\n";
    let events = r#"{"at":"2026-01-01T00:00:00Z","contact":"a","type":"contact_created","attributes":{"email":"a"}}
{"at":"3026-01-01T00:00:00Z","contact":"b","type":"contact_created","attributes":{"email":"b"}}
{"at":"2027-01-01T00:00:00Z","contact":"c","type":"contact_created","attributes":{"email":"c"}}
"#;
    let o = run_program(program, events, &["--on-error", "skip"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains(":2: the clock would jump from 2026-01-01T00:00:00Z to 3026-01-01T00:00:00Z"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("2 events read, 1 rejected"),
        "{}",
        stderr(&o)
    );
    let o = run_program(program, events, &["--allow-clock-jump"]);
    assert_eq!(o.status.code(), Some(2), "the 2027 event is then late");
    let o = run_program(
        program,
        &events[..events.find("\n{\"at\":\"3026").unwrap_or(0) + 1],
        &["--until", "4000-01-01T00:00:00Z"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
