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

/// #11: a line without end (`--events /dev/zero`) is an error naming the
/// line, after the lines before it ran, not an out-of-memory abort; the
/// same for `--contacts`.
#[test]
fn f11_a_line_without_end_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (prog, events) = (dir.path().join("p.flow"), dir.path().join("e.jsonl"));
    std::fs::write(
        &prog,
        "contact {\n  email: string @channel(email)\n}\n\nworkflow w {  // nurture:allow(no-goal, consent)\n  when contact_created\n  send email \"hi\"\n}\n",
    )
    .expect("write");
    let mut text = String::from(
        "{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"a\",\"type\":\"contact_created\",\"attributes\":{\"email\":\"a\"}}\n",
    );
    text.push_str(&"a".repeat(nurture::runtime::MAX_LINE + 10));
    std::fs::write(&events, &text).expect("write");
    let contacts = dir.path().join("c.jsonl");
    let mut text = String::from("{\"id\":\"a\",\"email\":\"a\"}\n");
    text.push_str(&"a".repeat(nurture::runtime::MAX_LINE + 10));
    std::fs::write(&contacts, &text).expect("write");
    for flag in ["--events", "--contacts"] {
        let mut cmd = bin();
        cmd.arg("run").arg(&prog);
        if flag == "--contacts" {
            cmd.arg("--contacts")
                .arg(&contacts)
                .args(["--events", "/dev/null"]);
        } else {
            cmd.arg("--events").arg(&events);
        }
        let o = cmd.output().expect("runs");
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(".jsonl:2:")
                && stderr(&o).contains("the line is longer than 64 MiB"),
            "{flag}: {}",
            stderr(&o)
        );
        if flag == "--events" {
            assert_eq!(stdout(&o).lines().count(), 1, "the line before it ran");
        }
    }
}

/// #13: a file name holding a line break cannot forge lcov records: the
/// report is refused, naming the file.
#[test]
fn f13_lcov_refuses_a_file_name_with_a_line_break() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p");
    std::fs::create_dir(&p).expect("dir");
    std::fs::write(
        p.join("we ird\nSF:x,1:2\nend_of_record .flow"),
        "contact {\n  email: string @channel(email)\n}\n\nworkflow w {  // nurture:allow(no-goal, consent)\n  when contact_created\n  send email \"hi\"\n}\n\ntest \"t\" {\n  contact a { email: \"a\" }\n  expect a: send email \"hi\"\n}\n",
    )
    .expect("write");
    let lcov = dir.path().join("c.lcov");
    let o = bin()
        .arg("test")
        .arg(&p)
        .arg("--coverage-lcov")
        .arg(&lcov)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("holds a control character") && stderr(&o).contains("we ird\\nSF:x"),
        "{}",
        stderr(&o)
    );
    assert!(!lcov.exists(), "no forged report written");
}

/// #14: control and bidirectional characters in test and stage names are
/// escaped on the terminal and in the page (where text is isolated in
/// `<bdi>`).
#[test]
fn f14_control_characters_in_names_are_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = dir.path().join("p.flow");
    std::fs::write(
        &prog,
        "contact {\n  email: string @channel(email)\n}\n\nworkflow w {  // nurture:allow(no-goal, consent)\n  when contact_created\n  stage \"st\u{1b}[31mage\u{202e}x\"\n  send email \"hi\"\n}\n\ntest \"bell\u{7} and \u{1b}[2J\" {\n  contact a { email: \"a\" }\n  expect a: send email \"hi\"\n}\n",
    )
    .expect("write");
    let o = bin().arg("test").arg(&prog).output().expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(
        out.contains("test bell\\u{7} and \\u{1b}[2J ... ok"),
        "{out}"
    );

    let events = dir.path().join("e.jsonl");
    std::fs::write(
        &events,
        "{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"a\",\"type\":\"contact_created\",\"attributes\":{\"email\":\"a\"}}\n",
    )
    .expect("write");
    let page = dir.path().join("r.html");
    let o = bin()
        .arg("run")
        .arg(&prog)
        .arg("--events")
        .arg(&events)
        .arg("--report")
        .arg(&page)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        !err.contains('\u{1b}') && !err.contains('\u{202e}'),
        "{err:?}"
    );
    assert!(err.contains("st\\u{1b}[31mage\\u{202e}x"), "{err}");
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(!html.contains('\u{1b}') && !html.contains('\u{202e}'));
    assert!(
        html.contains("<bdi>st\\u{1b}[31mage\\u{202e}x</bdi>"),
        "{html}"
    );
}

/// #2: two of `--state`, `--events`, `--contacts`, `--out`, `--rejects` and
/// `--report` naming one file (by path, by another name, or a link) are
/// refused before anything is written.
#[test]
fn f2_one_file_for_two_flags_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = dir.path().join("p.flow");
    std::fs::write(&prog, "contact {\n  email: string @channel(email)\n}\n").expect("write");
    let events = dir.path().join("e.jsonl");
    let line = "{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"a\",\"type\":\"contact_created\",\"attributes\":{\"email\":\"a\"}}\n";
    std::fs::write(&events, line).expect("write");
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(&events, &link).expect("link");
    let state = dir.path().join("s.db");
    let s = |p: &std::path::Path| p.to_str().unwrap_or("").to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--out".into(), s(&events)], "--events"),
        (vec!["--report".into(), s(&link)], "are the same file"),
        (
            vec!["--state".into(), s(&state), "--out".into(), s(&state)],
            "--state and --out name the same file",
        ),
        (
            vec![
                "--on-error".into(),
                "skip".into(),
                "--out".into(),
                s(&dir.path().join("x.jsonl")),
                "--rejects".into(),
                format!("{}/./x.jsonl", s(dir.path())),
            ],
            "--out and --rejects name the same file",
        ),
    ];
    for (flags, says) in cases {
        let o = bin()
            .arg("run")
            .arg(&prog)
            .arg("--events")
            .arg(&events)
            .args(&flags)
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{flags:?}: {}", stderr(&o));
        assert_eq!(
            std::fs::read_to_string(&events).expect("read"),
            line,
            "input untouched"
        );
        assert!(!state.exists(), "nothing written");
    }
    // /dev/null for two outputs loses nothing.
    let o = bin()
        .arg("run")
        .arg(&prog)
        .arg("--events")
        .arg(&events)
        .args([
            "--on-error",
            "skip",
            "--out",
            "/dev/null",
            "--rejects",
            "/dev/null",
        ])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// #5: the unterminated last line of a growing log (its writer mid-line)
/// is left unread, not rejected: the next run with the state reads it
/// whole, and the output equals one run over the finished file.
#[test]
fn f5_a_half_written_last_line_is_left_for_the_next_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (prog, log, db) = (
        dir.path().join("p.flow"),
        dir.path().join("log.jsonl"),
        dir.path().join("s.db"),
    );
    std::fs::write(
        &prog,
        "contact {\n  email: string @channel(email)\n}\n\nworkflow w {  // nurture:allow(no-goal, consent)\n  when contact_created\n  send email \"hi\"\n}\n",
    )
    .expect("write");
    let first = "{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"a\",\"type\":\"contact_created\",\"attributes\":{\"email\":\"a\"}}\n";
    let second = "{\"at\":\"2026-01-01T01:00:00Z\",\"contact\":\"b\",\"type\":\"contact_created\",\"attributes\":{\"email\":\"b\"}}\n";
    let cut = second.len() / 2;
    std::fs::write(&log, format!("{first}{}", &second[..cut])).expect("write");
    let run = || {
        bin()
            .arg("run")
            .arg(&prog)
            .arg("--events")
            .arg(&log)
            .arg("--state")
            .arg(&db)
            .args(["--on-error", "skip"])
            .output()
            .expect("runs")
    };
    let o = run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(":2: the last line has no newline and is not a whole record"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("0 rejected"), "{}", stderr(&o));
    let mut out = stdout(&o);
    std::fs::write(&log, format!("{first}{second}")).expect("write");
    let o = run();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    out.push_str(&stdout(&o));
    let whole = crate::helpers::run_program(
        &std::fs::read_to_string(&prog).expect("read"),
        &format!("{first}{second}"),
        &[],
    );
    assert_eq!(out, stdout(&whole));
    assert_eq!(out.lines().count(), 2);
}

const ONE_CONTACT: &str = "{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"a\",\"type\":\"contact_created\",\"attributes\":{\"email\":\"a\"}}\n";

/// #15 and #9: a state that is not a file on disk, or not a database, is
/// refused with words for it (it was taken as a new state, or SQLite said
/// "disk I/O error"), by `run` and by `inspect`.
#[test]
fn f15_f9_bad_state_paths_are_refused_in_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = dir.path().join("p.flow");
    std::fs::write(&prog, "contact {\n  email: string @channel(email)\n}\n").expect("write");
    let events = dir.path().join("e.jsonl");
    std::fs::write(&events, ONE_CONTACT).expect("write");
    std::fs::write(dir.path().join("empty.db"), "").expect("write");
    std::fs::write(dir.path().join("one.db"), "x").expect("write");
    std::fs::create_dir(dir.path().join("adir")).expect("dir");
    let cases = [
        ("empty.db", "is empty (0 bytes): not a state"),
        ("one.db", "is not a database (1 bytes"),
        ("adir", "is a directory, not a state file"),
        (":memory:", "is not a file name"),
        ("file:x.db?mode=memory", "is not a file name"),
    ];
    for (state, says) in cases {
        let o = bin()
            .current_dir(dir.path())
            .arg("run")
            .arg(&prog)
            .arg("--events")
            .arg(&events)
            .args(["--state", state])
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{state}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{state}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{state}: nothing ran");
    }
    for (state, says) in &cases[..3] {
        let o = bin()
            .current_dir(dir.path())
            .args(["inspect", "--state", state])
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{state}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{state}: {}", stderr(&o));
    }
    assert_eq!(
        std::fs::metadata(dir.path().join("empty.db"))
            .map(|m| m.len())
            .ok(),
        Some(0)
    );
}

/// #9: `inspect` while a run holds the state says so.
#[test]
fn f9_inspect_during_a_run_says_the_state_is_in_use() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = dir.path().join("p.flow");
    std::fs::write(&prog, "contact {\n  email: string @channel(email)\n}\n").expect("write");
    let db = dir.path().join("s.db");
    let mut child = bin()
        .arg("run")
        .arg(&prog)
        .args(["--events", "-", "--state"])
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(ONE_CONTACT.as_bytes()).expect("written");
    stdin.flush().expect("flushed");
    // The run holds the state from its start: wait for the file to be there.
    let mut said = String::new();
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let o = bin()
            .args(["inspect", "--state"])
            .arg(&db)
            .output()
            .expect("runs");
        said = stderr(&o);
        if said.contains("in use by a run") {
            break;
        }
    }
    drop(stdin);
    let _ = child.wait();
    assert!(
        said.contains("is in use by a run, which holds it until it ends"),
        "{said}"
    );
}

/// #10: `--events` a pipe (`<(zcat ...)`, a FIFO) with `--state` is read as
/// standard input is (never skipped or resumed), not "Illegal seek".
#[test]
fn f10_a_pipe_with_a_state_is_read_as_a_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = dir.path().join("p.flow");
    std::fs::write(
        &prog,
        "contact {\n  email: string @channel(email)\n}\n\nworkflow w {  // nurture:allow(no-goal, consent)\n  when contact_created\n  send email \"hi\"\n}\n",
    )
    .expect("write");
    let fifo = dir.path().join("events.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(&fifo, ONE_CONTACT).expect("written"))
    };
    let o = bin()
        .arg("run")
        .arg(&prog)
        .arg("--events")
        .arg(&fifo)
        .arg("--state")
        .arg(dir.path().join("s.db"))
        .output()
        .expect("runs");
    writer.join().expect("writer");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1);
}

/// #1: the state records which `--out` file it wrote. Another file with
/// something in it is refused, naming both, and left as it was (it was cut
/// back to the recorded length); a new or empty file is a rotation: the
/// old file is cut back to what the state recorded, and the new one takes
/// the actions from there, each once.
#[test]
fn f1_the_state_knows_its_out_file_and_rotations_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = dir.path().join("p.flow");
    std::fs::write(
        &prog,
        "contact {\n  email: string @channel(email)\n}\n\nworkflow w {  // nurture:allow(no-goal, consent)\n  when contact_created\n  send email \"hi\"\n}\n",
    )
    .expect("write");
    let db = dir.path().join("s.db");
    let created = |c: &str, h: u32| {
        format!("{{\"at\":\"2026-01-01T{h:02}:00:00Z\",\"contact\":\"{c}\",\"type\":\"contact_created\",\"attributes\":{{\"email\":\"{c}\"}}}}\n")
    };
    let run = |events: &str, out: &std::path::Path| {
        let e = dir.path().join("e.jsonl");
        std::fs::write(&e, events).expect("write");
        bin()
            .arg("run")
            .arg(&prog)
            .arg("--events")
            .arg(&e)
            .arg("--state")
            .arg(&db)
            .arg("--out")
            .arg(out)
            .output()
            .expect("runs")
    };
    let day1 = dir.path().join("day1.jsonl");
    let o = run(&created("a", 1), &day1);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let day1_text = std::fs::read_to_string(&day1).expect("read");
    assert_eq!(day1_text.lines().count(), 1);

    // Another file with something in it: refused, untouched.
    let important = dir.path().join("important.txt");
    std::fs::write(&important, "1\n2\n3\n".repeat(1000)).expect("write");
    let o = run(&created("b", 2), &important);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("important.txt` is not the file this state wrote to")
            && stderr(&o).contains("day1.jsonl"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&important).expect("read").len(),
        6000
    );

    // A killed run left an action past the checkpoint in day1; rotating to
    // day2 cuts it back, and day2 gets b's action once.
    std::fs::write(&day1, format!("{day1_text}{{\"half\":\"written\"}}\n")).expect("write");
    let day2 = dir.path().join("day2.jsonl");
    let o = run(&created("b", 2), &day2);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&day1).expect("read"), day1_text);
    let day2_text = std::fs::read_to_string(&day2).expect("read");
    assert_eq!(day2_text.lines().count(), 1);
    assert!(day2_text.contains("\"contact\":\"b\""));
    // And the state goes on with day2.
    let o = run(&created("c", 3), &day2);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&day2)
            .expect("read")
            .lines()
            .count(),
        2
    );
}

/// #3 and #7: a state is checked against the program and itself before a
/// run: a bad row is refused with exit 2 naming table, row and column,
/// never a panic, a huge allocation, or a silent run with wrong values.
#[test]
fn f3_f7_bad_rows_are_refused_by_table_row_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = dir.path().join("p.flow");
    std::fs::write(
        &prog,
        "contact {\n  email: string @channel(email)\n  opted_in: bool = true @consent(email)\n  plan: \"free\" | \"paid\" = \"free\"\n}\n\nevent ping {}\n\nworkflow w {  // nurture:allow(no-goal)\n  when contact_created\n  send email \"hi\"\n  wait for ping within 1d\n  wait 2d\n  send email \"later\"\n}\n",
    )
    .expect("write");
    let base = dir.path().join("base.db");
    let events = dir.path().join("e.jsonl");
    let mut lines = String::new();
    for c in ["a", "b", "c"] {
        lines.push_str(&format!("{{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"{c}\",\"type\":\"contact_created\",\"attributes\":{{\"email\":\"{c}@x\"}}}}\n"));
    }
    std::fs::write(&events, lines).expect("write");
    let o = bin()
        .arg("run")
        .arg(&prog)
        .arg("--events")
        .arg(&events)
        .arg("--state")
        .arg(&base)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cases = [
        (
            "UPDATE contacts SET attrs = json_set(attrs, '$.email', 5) WHERE id = 'a'",
            "table contacts, row 0 (contact `a`), column attrs: field `email` holds 5, which is not string",
        ),
        (
            "UPDATE contacts SET attrs = json_set(attrs, '$.plan', 'gold') WHERE id = 'b'",
            "field `plan` holds \"gold\"",
        ),
        (
            "UPDATE contacts SET attrs = json_remove(attrs, '$.email') WHERE id = 'c'",
            "field `email` holds null, which is not string",
        ),
        ("UPDATE meta SET value = '-1' WHERE key = 'clock'", "table meta, row clock: the clock (1969-12-31T23:59:59.999Z) is before"),
        ("UPDATE journeys SET pc = 99 WHERE id = 0", "table journeys, row 0, column pc: 99 is past the"),
        ("UPDATE journeys SET pc = 0 WHERE id = 0", "table journeys, row 0, column pc: instruction 0 of `w` is not where a journey waits"),
        ("UPDATE journeys SET id = 4000000000 WHERE id = 1", "table journeys, row 4000000000, column id: 4000000000 is past the journeys' ids"),
        ("UPDATE meta SET value = '[1]' WHERE key = 'free'", "table meta, row free, element 0: id 1 is in use by a journey or free twice"),
        ("UPDATE journeys SET contact = 7 WHERE id = 2", "table journeys, row 2, column contact: contact 7 is not in the state"),
    ];
    for (edit, says) in cases {
        let db = dir.path().join("bad.db");
        std::fs::copy(&base, &db).expect("copy");
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute_batch(edit).expect("edited");
        drop(conn);
        let o = bin()
            .arg("run")
            .arg(&prog)
            .arg("--state")
            .arg(&db)
            .arg("--drain")
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{edit}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{edit}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{edit}: nothing ran");
        // `inspect`, without the program, checks the rows against
        // themselves: ids, contacts, free ids, the clock.
        if !says.contains("field `") && !says.contains("is not where a journey waits") {
            let o = bin()
                .args(["inspect", "--state"])
                .arg(&db)
                .output()
                .expect("runs");
            assert_eq!(o.status.code(), Some(2), "inspect {edit}: {}", stdout(&o));
            assert!(stderr(&o).contains(says), "inspect {edit}: {}", stderr(&o));
        }
    }
}

/// #16: a state's JSON errors name table, row and column; a clock that is
/// not a time is refused, not read as "not started"; input numbers out of
/// range for int say so; a contact id that is not a string says that.
#[test]
fn f16_errors_name_where_and_what() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = dir.path().join("p.flow");
    std::fs::write(
        &prog,
        "contact {\n  email: string @channel(email)\n}\n\nevent visit { seconds: int }\n",
    )
    .expect("write");
    let events = dir.path().join("e.jsonl");
    std::fs::write(
        &events,
        format!(
            "{ONE_CONTACT}{{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"a\",\"type\":\"visit\",\"seconds\":9223372036854775808}}\n{{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"a\",\"type\":\"visit\",\"seconds\":1e3}}\n"
        ),
    )
    .expect("write");
    let base = dir.path().join("base.db");
    let o = bin()
        .arg("run")
        .arg(&prog)
        .arg("--events")
        .arg(&events)
        .args(["--on-error", "skip", "--state"])
        .arg(&base)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(":2: field `seconds` of `visit` is out of range for int"),
        "{err}"
    );
    assert!(err.contains(":3: field `seconds` of `visit` must be int, found 1000.0 (a number written with a fraction"), "{err}");
    for (edit, says) in [
        (
            "UPDATE contacts SET history = '[{\"type\":' WHERE id = 'a'",
            "table contacts, row 0, column history:",
        ),
        (
            "UPDATE meta SET value = '1e300' WHERE key = 'clock'",
            "table meta, row clock: expected null (not started) or an integer",
        ),
        (
            "UPDATE meta SET value = '\"abc\"' WHERE key = 'clock'",
            "table meta, row clock: expected null",
        ),
    ] {
        let db = dir.path().join("bad.db");
        std::fs::copy(&base, &db).expect("copy");
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute_batch(edit).expect("edited");
        drop(conn);
        for args in [vec!["run", "--drain"], vec!["inspect"]] {
            let mut cmd = bin();
            cmd.arg(args[0]);
            if args[0] == "run" {
                cmd.arg(&prog);
            }
            let o = cmd
                .arg("--state")
                .arg(&db)
                .args(&args[1..])
                .output()
                .expect("runs");
            assert_eq!(o.status.code(), Some(2), "{edit} {args:?}: {}", stderr(&o));
            assert!(stderr(&o).contains(says), "{edit} {args:?}: {}", stderr(&o));
        }
    }
    let contacts = dir.path().join("c.jsonl");
    std::fs::write(&contacts, "{\"id\":5,\"email\":\"x\"}\n").expect("write");
    let o = bin()
        .arg("run")
        .arg(&prog)
        .arg("--contacts")
        .arg(&contacts)
        .args(["--events", "/dev/null"])
        .output()
        .expect("runs");
    assert!(
        stderr(&o).contains(":1: `id` (the contact's id) must be a string, found 5"),
        "{}",
        stderr(&o)
    );
}

/// #4: what one move of the clock emits is handed out as it is emitted:
/// two years of daily occurrences for 300 contacts (218,100 records) never
/// waits in memory more than about a thousand at a time, before an event
/// and at `--until` alike, and nothing is lost or reordered.
#[test]
fn f4_a_long_clock_move_is_written_as_it_goes() {
    use nurture::runtime::{BadRecord, Driver, Interpreter, Progress, StreamOptions};
    use std::ops::ControlFlow;
    struct Counting {
        most: usize,
        outputs: usize,
        lines: String,
    }
    impl Driver for Counting {
        fn bad_record(&mut self, _: &mut Interpreter, b: BadRecord) -> ControlFlow<()> {
            panic!("a bad record: {}", b.reason)
        }
        fn progress(&mut self, it: &mut Interpreter, _: Progress) -> ControlFlow<()> {
            self.most = self.most.max(it.pending());
            it.take_json(&mut self.lines);
            ControlFlow::Continue(())
        }
        fn output(&mut self, it: &mut Interpreter) -> ControlFlow<()> {
            self.most = self.most.max(it.pending());
            self.outputs += 1;
            it.take_json(&mut self.lines);
            ControlFlow::Continue(())
        }
    }
    let mut sources = nurture::source::SourceMap::default();
    sources.add(
        "p.flow",
        "contact {\n  email: string @channel(email)\n}\n\nevent ping {}\n\nworkflow daily {  // nurture:allow(no-goal, unfiltered-schedule)\n  when every day at 09:00\n  reenter always\n  webhook \"digest\"\n}\n".to_string(),
    );
    let a = nurture::pipeline::analyse(&sources);
    let prog = std::sync::Arc::new(nurture::runtime::compile(&a.program, &a.checked.schema));
    let mut input = String::new();
    for i in 0..300 {
        input.push_str(&format!("{{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"c{i}\",\"type\":\"contact_created\",\"attributes\":{{\"email\":\"x\"}}}}\n"));
    }
    input.push_str("{\"at\":\"2027-01-01T00:00:00Z\",\"contact\":\"c1\",\"type\":\"ping\"}\n");
    let mut it = Interpreter::new(prog.clone(), false);
    let mut d = Counting {
        most: 0,
        outputs: 0,
        lines: String::new(),
    };
    it.feed_stream(
        std::io::Cursor::new(input.clone().into_bytes()),
        StreamOptions::default(),
        &mut d,
    )
    .expect("runs");
    let _ = it.advance_to_with(1_830_000_000_000, &mut d); // 2027-12-27
    it.take_json(&mut d.lines);
    assert!(d.outputs > 100, "handed out in parts: {}", d.outputs);
    assert!(d.most <= 1024 + 1, "at most a part waits: {}", d.most);
    // The same as one run that keeps everything.
    let mut whole = Interpreter::new(prog.clone(), false);
    for line in input.lines() {
        whole.feed_line(line).expect("fed");
    }
    whole.advance_to(1_830_000_000_000);
    let mut all = String::new();
    whole.take_json(&mut all);
    assert_eq!(
        d.lines.lines().count(),
        727 * 300,
        "a webhook a day for 727 days"
    );
    assert!(d.lines == all, "the same records in the same order");

    // One occurrence over 3,000 contacts in one zone leaves in parts too.
    let mut big = Interpreter::new(prog.clone(), false);
    let mut whole = Interpreter::new(prog, false);
    for i in 0..3000 {
        let line = format!("{{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"c{i}\",\"type\":\"contact_created\",\"attributes\":{{\"email\":\"x\"}}}}");
        big.feed_line(&line).expect("fed");
        whole.feed_line(&line).expect("fed");
    }
    let mut d = Counting {
        most: 0,
        outputs: 0,
        lines: String::new(),
    };
    let three_days = 1_767_225_600_000 + 3 * 86_400_000;
    let _ = big.advance_to_with(three_days, &mut d);
    big.take_json(&mut d.lines);
    whole.advance_to(three_days);
    let mut all = String::new();
    whole.take_json(&mut all);
    assert!(d.most <= 1024 + 1, "within an occurrence too: {}", d.most);
    assert!(d.outputs >= 8, "{}", d.outputs);
    assert_eq!(d.lines.lines().count(), 3 * 3000);
    assert!(d.lines == all, "the same records in the same order");
}

/// #13, its second half: a file name that is not UTF-8 would name no file
/// in lcov; the report is refused.
#[test]
fn f13_lcov_refuses_a_file_name_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p");
    std::fs::create_dir(&p).expect("dir");
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.flow");
    std::fs::write(
        p.join(name),
        "contact {\n  email: string @channel(email)\n}\n\nworkflow w {  // nurture:allow(no-goal, consent)\n  when contact_created\n  send email \"hi\"\n}\n\ntest \"t\" {\n  contact a { email: \"a\" }\n  expect a: send email \"hi\"\n}\n",
    )
    .expect("write");
    let lcov = dir.path().join("c.lcov");
    let o = bin()
        .arg("test")
        .arg(&p)
        .arg("--coverage-lcov")
        .arg(&lcov)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not UTF-8"), "{}", stderr(&o));
    assert!(!lcov.exists());
}

/// #12: `nurture check` grows with the number of test blocks as a line
/// does, not as a square (it once scanned every item per test: 8x the
/// tests took 64x the time). The bound leaves room for a noisy machine
/// while a quadratic check would be far past it.
#[test]
fn f12_check_time_grows_linearly_with_test_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timed = |n: usize, run: &str| {
        let sub = dir.path().join(format!("p{n}{run}"));
        std::fs::create_dir(&sub).expect("dir");
        for e in std::fs::read_dir(crate::helpers::root().join("examples")).expect("examples") {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("a name").to_string_lossy().to_string();
            if name.ends_with(".flow") && !name.ends_with(".test.flow") {
                std::fs::copy(&p, sub.join(&name)).expect("copy");
            }
        }
        let tests: String = (0..n).map(|i| format!("test \"t{i}\" {{}}\n")).collect();
        std::fs::write(sub.join("zz.test.flow"), tests).expect("write");
        let start = std::time::Instant::now();
        let o = bin().arg("check").arg(&sub).output().expect("run");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        start.elapsed().as_secs_f64()
    };
    let small = timed(2_000, "a").max(timed(2_000, "b"));
    let large = timed(16_000, "a");
    assert!(
        large < small * 24.0,
        "16k test blocks took {large:.2}s, 2k took {small:.2}s: worse than linear"
    );
}
