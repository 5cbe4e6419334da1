//! `nurture run --state DB`: runs that continue one another.

use crate::helpers::{bin, root, stderr, stdout};
use std::path::Path;

/// Runs the examples over `events` (a file) with `flags`; (exit code, stdout, stderr).
fn run_examples(events: Option<&Path>, flags: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = bin();
    cmd.arg("run").arg(root().join("examples"));
    if let Some(e) = events {
        cmd.arg("--events").arg(e);
    }
    let o = cmd.args(flags).output().expect("runs");
    (o.status.code(), stdout(&o), stderr(&o))
}

fn write(path: &Path, lines: &[&str]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).expect("write");
}

/// Every example's events cut in two at every line, run one part after the
/// other with one state, give the whole run's output.
#[test]
fn consecutive_parts_give_the_whole_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = root().join("examples").join("events");
    for name in [
        "lead_nurturing",
        "cart_abandonment",
        "welcome",
        "re_engagement",
    ] {
        let file = events.join(format!("{name}.jsonl"));
        let text = std::fs::read_to_string(&file).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        let (_, whole, _) = run_examples(Some(&file), &["--trace", "--drain"]);
        for cut in 0..=lines.len() {
            let db = dir.path().join(format!("{name}-{cut}.db"));
            let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
            write(&a, &lines[..cut]);
            write(&b, &lines[cut..]);
            let state = db.to_str().unwrap_or("");
            let (c1, out1, err1) = run_examples(Some(&a), &["--trace", "--state", state]);
            assert_eq!(c1, Some(0), "{err1}");
            let (c2, out2, err2) =
                run_examples(Some(&b), &["--trace", "--drain", "--state", state]);
            assert_eq!(c2, Some(0), "{err2}");
            assert!(
                out1.clone() + &out2 == whole,
                "{name} cut at line {cut}:\n{out1}---\n{out2}"
            );
        }
    }
}

/// A finished file run again writes nothing; lines appended to it are the
/// only ones read next time; line numbers in messages count from the file's
/// start.
#[test]
fn re_reading_a_file_reads_only_what_is_new() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let state = db.to_str().unwrap_or("");
    let file = dir.path().join("events.jsonl");
    let all = std::fs::read_to_string(root().join("examples/events/welcome.jsonl")).expect("read");
    let lines: Vec<&str> = all.lines().collect();
    write(&file, &lines[..3]);
    let (c, first, err) = run_examples(Some(&file), &["--state", state]);
    assert_eq!(c, Some(0));
    assert!(!err.contains("resumed:"), "nothing read before: {err}");
    assert!(!first.is_empty());
    let (c, again, err) = run_examples(Some(&file), &["--state", state]);
    assert_eq!(c, Some(0), "{err}");
    assert_eq!(again, "", "a finished file read again");
    assert!(err.contains("summary: 0 events read"), "{err}");
    assert!(
        err.contains("resumed: the first 3 lines of `") && err.contains("events.jsonl` were read"),
        "{err}"
    );
    // The log grows, with a bad line at line 5.
    let mut grown: Vec<&str> = lines.clone();
    grown.insert(4, "not json");
    write(&file, &grown);
    let (c, third, err) = run_examples(Some(&file), &["--state", state]);
    assert_eq!(c, Some(2), "{err}");
    assert!(err.contains("events.jsonl:5: malformed JSON"), "{err}");
    // Fixed, the file is read on from the bad line: nothing before it twice.
    write(&file, &lines);
    let (c, rest, err) = run_examples(Some(&file), &["--state", state]);
    assert_eq!(c, Some(0), "{err}");
    let (_, whole, _) = run_examples(Some(&root().join("examples/events/welcome.jsonl")), &[]);
    assert!(!third.is_empty() && !rest.is_empty());
    assert_eq!(
        first + &third + &rest,
        whole,
        "the runs together are the whole run"
    );
}

/// Without `--events`, a state run only moves the clock.
#[test]
fn a_state_run_without_events_moves_the_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let state = db.to_str().unwrap_or("");
    let file = root().join("examples/events/welcome.jsonl");
    let (_, whole, _) = run_examples(Some(&file), &["--drain"]);
    let (c, first, err) = run_examples(Some(&file), &["--state", state]);
    assert_eq!(c, Some(0), "{err}");
    let (c, later, err) = run_examples(None, &["--state", state, "--drain"]);
    assert_eq!(c, Some(0), "{err}");
    assert!(!later.is_empty(), "the pending waits fired");
    assert_eq!(first + &later, whole);
    let (c, _, err) = run_examples(None, &[]);
    assert_eq!(c, Some(2), "--events is required without --state: {err}");
}

/// A workflow with journeys in flight may not change (comments and layout
/// aside); one without may; a contact block that changed is refused.
#[test]
fn program_changes_are_checked_against_the_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = dir.path().join("prog");
    std::fs::create_dir(&prog).expect("dir");
    let schema = "contact {\n  email: string @channel(email)\n  opted_in: bool = false @consent(email)\n  tags: set<string>\n}\nevent ping {}\n";
    let w = |body: &str| {
        format!("{schema}\nworkflow waiting {{\n  when ping\n  wait 1d\n  tag \"{body}\"\n}}\n\nworkflow idle {{\n  when contact.opted_in\n  tag \"idle\"\n}}\n")
    };
    std::fs::write(prog.join("p.flow"), w("a")).expect("write");
    let events = dir.path().join("e.jsonl");
    write(
        &events,
        &[
            r#"{"at":"2026-03-01T09:00:00Z","contact":"c1","type":"contact_created","attributes":{"email":"a@x.com"}}"#,
            r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"ping"}"#,
        ],
    );
    let db = dir.path().join("state.db");
    let state = db.to_str().unwrap_or("");
    let run = |flags: &[&str]| {
        let o = bin()
            .arg("run")
            .arg(&prog)
            .arg("--state")
            .arg(state)
            .args(flags)
            .output()
            .expect("runs");
        (o.status.code(), stderr(&o))
    };
    let (c, err) = run(&["--events", events.to_str().unwrap_or("")]);
    assert_eq!(c, Some(0), "{err}");
    // Layout and comments: accepted.
    std::fs::write(
        prog.join("p.flow"),
        w("a").replace("  wait 1d", "  // a pause\n    wait   1d"),
    )
    .expect("write");
    let (c, err) = run(&[]);
    assert_eq!(c, Some(0), "{err}");
    // The waiting workflow changed: refused, naming it.
    std::fs::write(prog.join("p.flow"), w("b")).expect("write");
    let (c, err) = run(&[]);
    assert_eq!(c, Some(1), "{err}");
    assert!(
        err.contains("workflow `waiting` changed and has no `on change` line: 1 journey at `wait 1d` (p.flow:11) cannot move"),
        "{err}"
    );
    // A workflow with no journey in flight may change.
    std::fs::write(
        prog.join("p.flow"),
        w("a").replace("tag \"idle\"", "tag \"idle2\""),
    )
    .expect("write");
    let (c, err) = run(&[]);
    assert_eq!(c, Some(0), "{err}");
    // A workflow with no journey in flight may also go.
    std::fs::write(
        prog.join("p.flow"),
        w("a").replace(
            "workflow idle {\n  when contact.opted_in\n  tag \"idle\"\n}\n",
            "",
        ),
    )
    .expect("write");
    let (c, err) = run(&[]);
    assert_eq!(c, Some(0), "{err}");
}

/// The contact block may change as long as the stored contacts fit it: new
/// fields optional or defaulted, removed fields' values dropped; workflows
/// may be added anywhere and the state's journeys, counts and entries follow
/// theirs by name. A required new field or a changed type is refused.
#[test]
fn a_state_goes_on_with_a_grown_contact_block_and_moved_workflows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = dir.path().join("p.flow");
    let before = r#"contact {
  email: string @channel(email)
  nick: string?
  tags: set<string>
}
event ping {}

workflow waiting {
  when ping
  wait 1d
  tag "a"
}
"#;
    std::fs::write(&prog, before).expect("write");
    let db = dir.path().join("state.db");
    let run = |events: &[&str]| {
        let e = dir.path().join("e.jsonl");
        write(&e, events);
        let o = bin()
            .arg("run")
            .arg(&prog)
            .arg("--state")
            .arg(&db)
            .arg("--events")
            .arg(&e)
            .output()
            .expect("runs");
        (o.status.code(), stdout(&o), stderr(&o))
    };
    let (c, out, err) = run(&[
        r#"{"at":"2026-03-01T09:00:00Z","contact":"c1","type":"contact_created","attributes":{"email":"a@x.com","nick":"n1"}}"#,
        r#"{"at":"2026-03-01T10:00:00Z","contact":"c1","type":"ping"}"#,
    ]);
    assert_eq!(c, Some(0), "{err}");
    assert_eq!(out, "", "the journey waits");
    // `nick` goes, `score` and `plan` come; a workflow goes before `waiting`.
    let after = before
        .replace("  nick: string?\n", "  score: int = 7\n  plan: string?\n")
        .replace(
            "workflow waiting {",
            "workflow first {\n  when ping\n  tag \"first\"\n}\n\nworkflow waiting {",
        );
    std::fs::write(&prog, &after).expect("write");
    let (c, out, err) = run(&[r#"{"at":"2026-03-02T12:00:00Z","contact":"c1","type":"ping"}"#]);
    assert_eq!(c, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains(r#""at":"2026-03-02T10:00:00Z""#)
            && lines[0].contains(r#""workflow":"waiting""#)
            && lines[0].contains(r#""tag":"a""#),
        "the journey from before ends as it would have: {out}"
    );
    assert!(
        lines[1].contains(r#""workflow":"first""#),
        "the new workflow runs: {out}"
    );
    assert!(
        err.contains("first") && err.contains("waiting"),
        "the summary counts both: {err}"
    );
    let o = bin()
        .args(["inspect", "--format", "json", "--state"])
        .arg(&db)
        .arg("c1")
        .output()
        .expect("inspects");
    let c1: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(
        c1["attributes"],
        serde_json::json!({"email": "a@x.com", "score": 7, "plan": null, "tags": ["a", "first"]}),
        "{c1}"
    );

    // A required new field, or a field whose type changed: refused.
    for (change, says) in [
        (
            after.replace("  plan: string?\n", "  plan: string?\n  region: string\n"),
            "new field `region: string` is required",
        ),
        (
            after.replace("score: int = 7", "score: string = \"7\""),
            "field `score: int` is now `score: string`",
        ),
    ] {
        std::fs::write(&prog, &change).expect("write");
        let (c, _, err) = run(&[]);
        assert_eq!(c, Some(1), "{err}");
        assert!(err.contains(says), "{err}");
    }
}

/// A state in use, a file that is not a state and one that is not a
/// database are clear errors (exit 2), never a panic.
#[test]
fn bad_states_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = root().join("examples/events/welcome.jsonl");
    let locked = dir.path().join("locked.db");
    let (c, _, _) = run_examples(Some(&file), &["--state", locked.to_str().unwrap_or("")]);
    assert_eq!(c, Some(0));
    let holder = rusqlite::Connection::open(&locked).expect("open");
    holder
        .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
        .expect("lock");
    let (c, _, err) = run_examples(Some(&file), &["--state", locked.to_str().unwrap_or("")]);
    assert_eq!(c, Some(2), "{err}");
    assert!(err.contains("is in use by another run"), "{err}");
    drop(holder);

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .expect("open")
        .execute_batch("CREATE TABLE t (x INTEGER);")
        .expect("table");
    let (c, _, err) = run_examples(Some(&file), &["--state", other.to_str().unwrap_or("")]);
    assert_eq!(c, Some(2), "{err}");
    assert!(err.contains("not a nurture state"), "{err}");

    let text = dir.path().join("text.db");
    std::fs::write(&text, "not a database\n".repeat(200)).expect("write");
    let (c, _, err) = run_examples(Some(&file), &["--state", text.to_str().unwrap_or("")]);
    assert_eq!(c, Some(2), "{err}");
    assert!(err.starts_with("error: "), "{err}");
}

/// `inspect` shows what a state holds; two runs that read the same input,
/// one whole and one as a log that grew, leave states it shows the same.
#[test]
fn inspect_shows_the_same_state_for_the_same_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = root().join("examples/events/lead_nurturing.jsonl");
    let text = std::fs::read_to_string(&events).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let whole_db = dir.path().join("whole.db");
    let (c, _, err) = run_examples(Some(&events), &["--state", whole_db.to_str().unwrap_or("")]);
    assert_eq!(c, Some(0), "{err}");
    let grown_db = dir.path().join("grown.db");
    let log = dir.path().join("log.jsonl");
    write(&log, &lines[..4]);
    let (c, _, _) = run_examples(Some(&log), &["--state", grown_db.to_str().unwrap_or("")]);
    assert_eq!(c, Some(0));
    write(&log, &lines);
    let (c, _, _) = run_examples(Some(&log), &["--state", grown_db.to_str().unwrap_or("")]);
    assert_eq!(c, Some(0));
    let inspect = |db: &Path, extra: &[&str]| {
        let o = bin()
            .args(["inspect", "--state"])
            .arg(db)
            .args(extra)
            .args(["--format", "json"])
            .output()
            .expect("runs");
        (o.status.code(), stdout(&o), stderr(&o))
    };
    let (c, a, err) = inspect(&whole_db, &[]);
    assert_eq!(c, Some(0), "{err}");
    let (_, b, _) = inspect(&grown_db, &[]);
    assert_eq!(a, b);
    // Reading a state leaves nothing beside it.
    let beside: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("whole.db") && n != "whole.db")
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
    let v: serde_json::Value = serde_json::from_str(&a).expect("json");
    assert_eq!(v["contacts"], 4, "{a}");
    assert_eq!(v["clock"], "2026-03-09T09:00:00Z", "{a}");
    assert_eq!(v["input"]["lines"], lines.len(), "{a}");
    let nps = v["workflows"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["workflow"] == "nps_omnichannel"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(nps["in_flight"], 1, "{a}");
    assert!(
        nps["waiting"][0]["at"]
            .as_str()
            .unwrap_or("")
            .starts_with("nps_omnichannel.flow:"),
        "{a}"
    );
    let (c, ana, _) = inspect(&whole_db, &["ana"]);
    assert_eq!(c, Some(0));
    let ana: serde_json::Value = serde_json::from_str(&ana).expect("json");
    assert_eq!(ana["attributes"]["email"], "ana@example.com");
    assert_eq!(ana["journeys"][0]["workflow"], "nps_omnichannel");
    let (c, _, err) = inspect(&whole_db, &["nobody"]);
    assert_eq!(c, Some(2));
    assert!(err.contains("no contact `nobody`"), "{err}");
    // For people: aligned, attributes by name, unset values said so.
    let human = |extra: &[&str]| {
        let o = bin()
            .args(["inspect", "--state"])
            .arg(&whole_db)
            .args(extra)
            .output()
            .expect("runs");
        stdout(&o)
    };
    let text = human(&[]);
    assert!(
        text.starts_with("clock     2026-03-09T09:00:00Z\nprogram   "),
        "{text}"
    );
    assert!(text.contains("\ncontacts  4\n"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("nps_omnichannel    1          1 at nps_omnichannel.flow:")),
        "{text}"
    );
    let text = human(&["ana"]);
    assert!(text.starts_with("contact ana\n\nattributes\n"), "{text}");
    assert!(
        text.contains("\n  email           ana@example.com\n"),
        "{text}"
    );
    assert!(text.contains("\n  phone           (unset)\n"), "{text}");
    assert!(
        text.contains("\n  tags            [\"nurtured\", \"welcomed\"]\n"),
        "{text}"
    );
    let (c, _, err) = inspect(&dir.path().join("missing.db"), &[]);
    assert_eq!(c, Some(2));
    assert!(err.contains("there is no state"), "{err}");
}

/// `--contacts` replaces a contact the state holds: its attributes become
/// the record's, no trigger fires, and later events see the new values.
#[test]
fn contacts_replace_those_in_the_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let state = db.to_str().unwrap_or("");
    let created = dir.path().join("created.jsonl");
    write(
        &created,
        &[
            r#"{"at":"2026-03-01T09:00:00Z","contact":"zoe","type":"contact_created","attributes":{"email":"zoe@x.com","opted_in":false}}"#,
        ],
    );
    let (c, out, err) = run_examples(Some(&created), &["--state", state]);
    assert_eq!(c, Some(0), "{err}");
    assert!(!out.contains("\"send\""), "not opted in: {out}");
    let contacts = dir.path().join("contacts.jsonl");
    write(
        &contacts,
        &[r#"{"id":"zoe","email":"zoe@x.com","opted_in":true,"country":"ES"}"#],
    );
    let purchase = dir.path().join("purchase.jsonl");
    write(
        &purchase,
        &[
            r#"{"at":"2026-03-02T09:00:00Z","contact":"zoe","type":"purchase","order_id":"o1","amount":10.0,"category":"shoes"}"#,
        ],
    );
    let (c, out, err) = run_examples(
        Some(&purchase),
        &[
            "--state",
            state,
            "--contacts",
            contacts.to_str().unwrap_or(""),
            "--drain",
        ],
    );
    assert_eq!(c, Some(0), "{err}");
    assert!(out.contains("\"contact\":\"zoe\""), "{out}");
    assert!(out.contains("\"send\""), "opted in now: {out}");
    let o = bin()
        .args(["inspect", "--state", state, "zoe", "--format", "json"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["attributes"]["country"], "ES");
}

/// The REPL opens a state read-only: its contacts and journeys are there,
/// the session's own inputs change nothing in the database.
#[test]
fn the_repl_opens_a_state_read_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let state = db.to_str().unwrap_or("");
    let events = root().join("examples/events/lead_nurturing.jsonl");
    let (c, _, err) = run_examples(Some(&events), &["--state", state]);
    assert_eq!(c, Some(0), "{err}");
    let before = std::fs::read(&db).expect("read");
    let o = crate::repl::piped(
        &["examples", "--state", state],
        ":journeys ana\n:event ana email_opened {\"campaign\": \"x\"}\n:time\n",
    );
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(err.contains("(read only): 4 contacts"), "{err}");
    assert!(out.contains("nps_omnichannel  waits until"), "{out}");
    assert_eq!(
        std::fs::read(&db).expect("read"),
        before,
        "the database is unchanged"
    );
}

/// Killed with SIGKILL at 30 moments, each time started again with the same
/// command until it exits 0, a `--state --out --drain` run leaves an output
/// file byte-identical to an uninterrupted run's, and the same state.
/// (`benches/crash.sh` runs the long version, with more kills.)
#[test]
fn a_run_killed_at_any_moment_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.jsonl");
    let mut bytes = Vec::new();
    crate::snapshot::workload::generate(&mut bytes, 10_000, 100_000, 3).expect("generated");
    std::fs::write(&events, bytes).expect("write");
    let command = |db: &Path, out: &Path| {
        let mut c = bin();
        c.arg("run")
            .arg(root().join("examples"))
            .arg("--events")
            .arg(&events)
            .arg("--state")
            .arg(db)
            .arg("--out")
            .arg(out)
            .arg("--drain")
            // A checkpoint every 5,000 events: kills land after many.
            .env("NURTURE_CHECKPOINT_EVENTS", "5000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let (ref_db, ref_out) = (dir.path().join("ref.db"), dir.path().join("ref.out"));
    let status = command(&ref_db, &ref_out).status().expect("runs");
    assert_eq!(status.code(), Some(0));

    let (db, out) = (dir.path().join("crash.db"), dir.path().join("crash.out"));
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut kills = 0;
    let mut midway = 0;
    let size = std::fs::metadata(&events).expect("size").len();
    while kills < 30 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let wait = std::time::Duration::from_millis((seed >> 33) % 1_500);
        let mut child = command(&db, &out).spawn().expect("spawns");
        std::thread::sleep(wait);
        if child.try_wait().expect("status").is_some() {
            // It finished before the kill: start over from scratch for
            // the next kill, so every kill lands in a run.
            std::fs::remove_file(&db).expect("remove");
            std::fs::remove_file(&out).expect("remove");
            continue;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        kills += 1;
        // Where the last checkpoint before the kill left the input.
        if let Ok(conn) = rusqlite::Connection::open(&db) {
            let input: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = 'input'", [], |r| {
                    r.get(0)
                })
                .ok();
            if let Some(bytes) = input
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["bytes"].as_u64())
            {
                if bytes > 0 && bytes < size {
                    midway += 1;
                }
            }
        }
    }
    assert!(
        midway > 0,
        "no kill came after a checkpoint in the middle of the input"
    );
    let status = command(&db, &out).status().expect("runs");
    assert_eq!(status.code(), Some(0));
    let (a, b) = (
        std::fs::read(&ref_out).expect("read"),
        std::fs::read(&out).expect("read"),
    );
    assert!(a.len() > 1_000_000);
    assert!(
        a == b,
        "the outputs differ ({} and {} bytes)",
        a.len(),
        b.len()
    );
    let inspect = |db: &Path| {
        let o = bin()
            .args(["inspect", "--format", "json", "--state"])
            .arg(db)
            .output()
            .expect("runs");
        stdout(&o)
    };
    assert_eq!(inspect(&ref_db), inspect(&db));
}

/// With `--state`, `--rejects` follows the rule of `--out`: appended to,
/// its length recorded, a longer file cut back (a run killed after writing).
#[test]
fn rejects_are_written_once_with_a_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let rejects = dir.path().join("rejects.jsonl");
    let events = dir.path().join("events.jsonl");
    write(
        &events,
        &[
            r#"{"at":"2026-03-01T09:00:00Z","contact":"c1","type":"contact_created","attributes":{"email":"a@x.com"}}"#,
            "not json",
        ],
    );
    let flags = [
        "--state",
        db.to_str().unwrap_or(""),
        "--on-error",
        "skip",
        "--rejects",
        rejects.to_str().unwrap_or(""),
    ];
    let (c, _, err) = run_examples(Some(&events), &flags);
    assert_eq!(c, Some(0), "{err}");
    assert_eq!(
        std::fs::read_to_string(&rejects).expect("read"),
        "not json\n"
    );
    // As if a run had been killed after writing a reject, before its state.
    std::fs::write(&rejects, "not json\nhalf a line from a killed run\n").expect("write");
    write(
        &events,
        &[
            r#"{"at":"2026-03-01T09:00:00Z","contact":"c1","type":"contact_created","attributes":{"email":"a@x.com"}}"#,
            "not json",
            "also not json",
        ],
    );
    let (c, _, err) = run_examples(Some(&events), &flags);
    assert_eq!(c, Some(0), "{err}");
    assert_eq!(
        std::fs::read_to_string(&rejects).expect("read"),
        "not json\nalso not json\n"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    /// Every golden example's events cut into three consecutive parts at
    /// random lines, run one after another with one state, give the whole
    /// run's output.
    #[test]
    fn three_parts_at_random_cuts_give_the_whole_run(
        a in 0.0f64..=1.0,
        b in 0.0f64..=1.0,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let events = root().join("examples").join("events");
        for name in ["lead_nurturing", "cart_abandonment", "welcome", "re_engagement"] {
            let file = events.join(format!("{name}.jsonl"));
            let text = std::fs::read_to_string(&file).expect("read");
            let lines: Vec<&str> = text.lines().collect();
            let n = lines.len() as f64;
            let (mut c1, mut c2) = ((a * n) as usize, (b * n) as usize);
            if c1 > c2 {
                std::mem::swap(&mut c1, &mut c2);
            }
            let (_, whole, _) = run_examples(Some(&file), &["--trace", "--drain"]);
            let db = dir.path().join(format!("{name}.db"));
            let state = db.to_str().unwrap_or("");
            let mut joined = String::new();
            for (i, part) in [&lines[..c1], &lines[c1..c2], &lines[c2..]].iter().enumerate() {
                let f = dir.path().join(format!("{name}-{i}.jsonl"));
                write(&f, part);
                let flags: &[&str] = if i == 2 {
                    &["--trace", "--drain", "--state", state]
                } else {
                    &["--trace", "--state", state]
                };
                let (code, out, err) = run_examples(Some(&f), flags);
                proptest::prop_assert_eq!(code, Some(0), "{}", err);
                joined += &out;
            }
            proptest::prop_assert!(joined == whole, "{} cut at {} and {}", name, c1, c2);
        }
    }
}

/// The cron pattern: a tick with `--until` moves the clock, then a batch
/// arrives holding an event from before the tick. By default it is a bad
/// record whose message names what moved the clock; with
/// `--late-events stamp` it is processed at the clock.
#[test]
fn late_events_are_refused_or_stamped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (prog, first, batch, db) = (
        dir.path().join("p.flow"),
        dir.path().join("first.jsonl"),
        dir.path().join("batch.jsonl"),
        dir.path().join("s.db"),
    );
    std::fs::write(
        &prog,
        "contact {\n  email: string @channel(email)\n}\n\nevent ping {}\n\nworkflow w {  // nurture:allow(no-goal)\n  when ping\n  reenter always\n  send email \"p\"\n}\n",
    )
    .expect("write");
    write(
        &first,
        &[
            r#"{"at":"2026-01-01T09:00:00Z","contact":"a","type":"contact_created","attributes":{"email":"a@x"}}"#,
        ],
    );
    write(
        &batch,
        &[
            r#"{"at":"2026-01-01T09:30:00Z","contact":"a","type":"ping"}"#,
            r#"{"at":"2026-01-01T11:00:00Z","contact":"a","type":"ping"}"#,
        ],
    );
    let run = |events: &Path, flags: &[&str]| {
        bin()
            .arg("run")
            .arg(&prog)
            .arg("--events")
            .arg(events)
            .arg("--state")
            .arg(&db)
            .args(flags)
            .output()
            .expect("runs")
    };
    let o = run(&first, &["--until", "2026-01-01T10:00:00Z"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&batch, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(":1: time goes backwards: 2026-01-01T09:30:00Z is before the clock at 2026-01-01T10:00:00Z, where the state's last run left it"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "");
    let o = run(&batch, &["--late-events", "stamp"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ats: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["at"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert_eq!(ats, ["2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z"]);
}

/// Without a state, the message names the event that moved the clock, or
/// `--until` (in a run whose events ended before it, the clock is the
/// until's only for the timers; a late event is then the input's own).
#[test]
fn a_late_event_names_the_previous_event() {
    let o = crate::helpers::run_program(
        "contact {\n  email: string @channel(email)\n}\n",
        "{\"at\":\"2026-01-01T09:00:00Z\",\"contact\":\"a\",\"type\":\"contact_created\",\"attributes\":{\"email\":\"a@x\"}}\n{\"at\":\"2026-01-01T08:00:00Z\",\"contact\":\"b\",\"type\":\"contact_created\",\"attributes\":{\"email\":\"b@x\"}}\n",
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(":2: time goes backwards: 2026-01-01T08:00:00Z is before the previous event at 2026-01-01T09:00:00Z"),
        "{}",
        stderr(&o)
    );
}

/// A program change that moves the state's places (a field and a workflow
/// added before the others) rewrites every row at the start of the run: a
/// contact the run does not touch keeps its values and its per-workflow
/// facts (here `reenter never`), and the rows name attributes by field.
#[test]
fn a_moved_program_leaves_no_row_in_the_old_places() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (v1, v2, db) = (
        dir.path().join("v1.flow"),
        dir.path().join("v2.flow"),
        dir.path().join("s.db"),
    );
    let workflow = "workflow w1 {  // nurture:allow(no-goal, consent)\n  when ping\n  set contact.score += 1\n}\n";
    std::fs::write(
        &v1,
        format!("contact {{\n  email: string @channel(email)\n  score: int = 0\n}}\n\nevent ping {{}}\n\n{workflow}"),
    )
    .expect("write");
    std::fs::write(
        &v2,
        format!("contact {{\n  age: int = 3\n  email: string @channel(email)\n  score: int = 0\n}}\n\nevent ping {{}}\nevent pong {{}}\n\nworkflow w0 {{  // nurture:allow(no-goal, consent)\n  when pong\n  set contact.age = 9\n}}\n\n{workflow}"),
    )
    .expect("write");
    let run = |prog: &Path, lines: &[&str]| {
        let e = dir.path().join("e.jsonl");
        write(&e, lines);
        let o = bin()
            .arg("run")
            .arg(prog)
            .arg("--events")
            .arg(&e)
            .arg("--state")
            .arg(&db)
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stdout(&o)
    };
    run(
        &v1,
        &[
            r#"{"at":"2026-01-01T00:00:00Z","contact":"a","type":"contact_created","attributes":{"email":"a@x"}}"#,
            r#"{"at":"2026-01-01T00:00:00Z","contact":"a","type":"ping"}"#,
        ],
    );
    let out = run(
        &v2,
        &[
            r#"{"at":"2026-01-02T00:00:00Z","contact":"b","type":"contact_created","attributes":{"email":"b@x"}}"#,
            r#"{"at":"2026-01-02T00:00:00Z","contact":"a","type":"ping"}"#,
        ],
    );
    assert_eq!(out, "", "a entered w1 before: reenter never holds");
    let o = bin()
        .args(["inspect", "--state"])
        .arg(&db)
        .args(["a", "--format", "json"])
        .output()
        .expect("runs");
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        a["attributes"],
        serde_json::json!({"age": 3, "email": "a@x", "score": 1})
    );
    let conn = rusqlite::Connection::open(&db).expect("open");
    let attrs: String = conn
        .query_row("SELECT attrs FROM contacts WHERE id = 'a'", [], |r| {
            r.get(0)
        })
        .expect("a row");
    assert_eq!(attrs, r#"{"age":3,"email":"a@x","score":1}"#);
}

/// A state of the previous release's format (5: attributes by slot) is
/// read, and goes on in format 6; an older one is refused naming both.
#[test]
fn a_format_5_state_is_read_and_an_older_one_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (prog, db) = (dir.path().join("p.flow"), dir.path().join("s.db"));
    std::fs::write(
        &prog,
        "contact {\n  email: string @channel(email)\n  score: int = 0\n}\n\nevent ping {}\n\nworkflow w1 {  // nurture:allow(no-goal, consent)\n  when ping\n  reenter always\n  set contact.score += 1\n}\n",
    )
    .expect("write");
    let e = dir.path().join("e.jsonl");
    let run = |lines: &[&str]| {
        write(&e, lines);
        bin()
            .arg("run")
            .arg(&prog)
            .arg("--events")
            .arg(&e)
            .arg("--state")
            .arg(&db)
            .output()
            .expect("runs")
    };
    let o = run(&[
        r#"{"at":"2026-01-01T00:00:00Z","contact":"a","type":"contact_created","attributes":{"email":"a@x"}}"#,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Make it format 5: attributes by slot, no field names.
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute_batch(
        "UPDATE meta SET value = '5' WHERE key = 'format'; DELETE FROM meta WHERE key = 'fields'; UPDATE contacts SET attrs = '[\"a@x\",7]';",
    )
    .expect("made format 5");
    drop(conn);
    let o = run(&[r#"{"at":"2026-01-02T00:00:00Z","contact":"a","type":"ping"}"#]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(r#""field":"score","value":8"#),
        "{}",
        stdout(&o)
    );
    let conn = rusqlite::Connection::open(&db).expect("open");
    let format: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
            r.get(0)
        })
        .expect("format");
    assert_eq!(format, "6");
    conn.execute_batch("UPDATE meta SET value = '4' WHERE key = 'format';")
        .expect("made format 4");
    drop(conn);
    let o = run(&[r#"{"at":"2026-01-03T00:00:00Z","contact":"a","type":"ping"}"#]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the state is of format 4") && stderr(&o).contains("it reads 5 to 6"),
        "{}",
        stderr(&o)
    );
}

/// The program record is read strictly: a record missing a part, or of the
/// wrong shape, is refused (it could once pass the change rule as empty
/// and make the migration drop every journey); a newer record version, and
/// journeys in flight compiled by another instruction set, are refused
/// with what to do. Nothing runs on a refused state.
#[test]
fn a_bad_or_foreign_program_record_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = dir.path().join("p.flow");
    std::fs::write(
        &prog,
        "contact {\n  email: string @channel(email)\n}\n\nworkflow w {  // nurture:allow(no-goal, consent)\n  when contact_created\n  wait 1d\n  send email \"later\"\n}\n",
    )
    .expect("write");
    let events = dir.path().join("e.jsonl");
    write(
        &events,
        &[
            r#"{"at":"2026-01-01T00:00:00Z","contact":"a","type":"contact_created","attributes":{"email":"a"}}"#,
        ],
    );
    let base = dir.path().join("base.db");
    let run = |db: &Path| {
        bin()
            .arg("run")
            .arg(&prog)
            .arg("--events")
            .arg(&events)
            .arg("--state")
            .arg(db)
            .arg("--drain")
            .output()
            .expect("runs")
    };
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
    let edit = |sql: &str| {
        let db = dir.path().join("bad.db");
        std::fs::copy(&base, &db).expect("copy");
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute_batch(sql).expect("edited");
        db
    };
    for (sql, code, says) in [
        (
            "UPDATE meta SET value = json_remove(value, '$.workflows') WHERE key = 'program'",
            2,
            "a bad program record: missing field `workflows`",
        ),
        (
            "UPDATE meta SET value = json_set(value, '$.workflows', 'none') WHERE key = 'program'",
            2,
            "a bad program record: invalid type",
        ),
        (
            "UPDATE meta SET value = json_set(value, '$.triggers', json('[]')) WHERE key = 'program'",
            2,
            "a bad program record: 1 workflows, but 0 triggers",
        ),
        (
            "UPDATE meta SET value = json_set(value, '$.version', 9) WHERE key = 'program'",
            2,
            "its program record is of version 9, newer than this nurture reads (3)",
        ),
        (
            "UPDATE meta SET value = json_set(value, '$.instruction_set', 7) WHERE key = 'program'",
            2,
            "its 1 journeys in flight were compiled by instruction set 7, this nurture runs 1",
        ),
        ("DELETE FROM meta WHERE key = 'program'", 2, "it was not written by `nurture run`"),
    ] {
        let db = edit(sql);
        let o = run(&db);
        assert_eq!(o.status.code(), Some(code), "{sql}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{sql}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{sql}: nothing ran");
    }
    // Another instruction set without journeys in flight is no matter.
    let o = run(&base);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let db = edit(
        "UPDATE meta SET value = json_set(value, '$.instruction_set', 7) WHERE key = 'program'",
    );
    let o = run(&db);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Named waits (LANGUAGE.md section 13): `as NAME` after every wait form,
/// unique in a workflow, written back by `fmt`; naming a wait changes
/// nothing a journey does, so a workflow with journeys in flight may be
/// given names (its fingerprint ignores them), while any other change is
/// still refused.
#[test]
fn waits_can_be_named_while_journeys_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (prog, db) = (dir.path().join("p.flow"), dir.path().join("s.db"));
    let body = |wait: &str| {
        format!("contact {{\n  email: string @channel(email)\n  opted_in: bool = true @consent(email)\n  tags: set<string>\n}}\n\nevent opened {{}}\n\nworkflow w {{  // nurture:allow(no-goal)\n  when contact_created\n  {wait}\n  tag \"later\"\n}}\n")
    };
    let run = |wait: &str, lines: &[&str]| {
        std::fs::write(&prog, body(wait)).expect("write");
        let e = dir.path().join("e.jsonl");
        write(&e, lines);
        bin()
            .arg("run")
            .arg(&prog)
            .arg("--events")
            .arg(&e)
            .arg("--state")
            .arg(&db)
            .output()
            .expect("runs")
    };
    let o = run(
        "wait for opened within 2d",
        &[
            r#"{"at":"2026-01-01T00:00:00Z","contact":"a","type":"contact_created","attributes":{"email":"a"}}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Named: accepted, and the journey goes on.
    let o = run(
        "wait for opened within 2d as first_open",
        &[r#"{"at":"2026-01-01T01:00:00Z","contact":"a","type":"opened"}"#],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"tag\":\"later\""), "{}", stdout(&o));
    // fmt keeps the name, every form takes one, names are unique.
    let text = nurture::fmt::format_source(&body("wait until 09:00 as  morning")).expect("formats");
    assert!(text.contains("  wait until 09:00 as morning\n"), "{text}");
    let (diags, rendered) =
        crate::helpers::diagnostics(&body("wait 1d as n\n  wait contact.email == \"x\" as n"));
    assert!(!diags.is_empty(), "{rendered}");
    let (diags, rendered) = crate::helpers::diagnostics(&body("wait 1d as n\n  wait 2d as n"));
    assert_eq!(diags.len(), 1, "{rendered}");
    assert!(
        rendered.contains("two waits of this workflow are named `n`"),
        "{rendered}"
    );
}
