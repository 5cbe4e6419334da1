//! The REPL: scripted sessions piped through stdin against golden output,
//! and the real binary in a pseudo-terminal.

use crate::helpers::{bin, root, stderr};
use std::io::Write;
use std::process::Stdio;

/// Runs `nurture repl examples` with `script` on stdin; returns stdout.
fn session(script: &str) -> String {
    session_ending(script).1
}

/// The exit code and stdout of a piped session.
fn session_ending(script: &str) -> (Option<i32>, String) {
    let out = piped(&["examples"], script);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs `nurture repl ARGS` from the project's root with `script` on stdin,
/// a fresh home for its history.
pub fn piped(args: &[&str], script: &str) -> std::process::Output {
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = bin()
        .arg("repl")
        .args(args)
        .current_dir(root())
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

/// A piped session exits 1 when one of its inputs was refused, 0 otherwise.
#[test]
fn a_piped_session_exits_1_after_a_refused_input() {
    let (code, _) =
        session_ending(":contact a {\"email\": \"a@x.com\", \"country\": \"ES\"}\n:time\n");
    assert_eq!(code, Some(0));
    let (code, out) = session_ending(":event nobody purchase {}\n:time\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("unknown contact `nobody`"), "{out}");
    assert!(
        out.contains("create it first with `:contact nobody"),
        "{out}"
    );
    assert!(!out.contains("--contacts"), "{out}");
}

/// `:time DATETIME` sets the clock before the first event; after it, the
/// clock only moves forward.
#[test]
fn time_sets_the_clock_before_the_first_event() {
    let out = session(
        ":time 2026-06-01T08:00:00Z\n:contact a {\"email\": \"a@x.com\", \"country\": \"ES\"}\n:time\n:time 2026-01-01T00:00:00Z\n:time 2026-06-03T00:00:00Z\n:time nonsense\n",
    );
    assert!(out.contains("now 2026-06-01T08:00:00Z"), "{out}");
    assert!(out.contains("2026-06-01T08:00:00Z\n"), "{out}");
    assert!(
        out.contains("the clock cannot go back to 2026-01-01T00:00:00Z"),
        "{out}"
    );
    assert!(out.contains("now 2026-06-03T00:00:00Z"), "{out}");
    assert!(out.contains("expected an RFC 3339 datetime"), "{out}");
}

/// A long multi-line input is read in linear time: 100,000 lines of `{`
/// (the bracket depth is kept line by line; the answer is one error).
#[test]
fn a_long_open_input_ends_in_one_reply() {
    let script = "workflow w {\n".to_string() + &"{\n".repeat(100_000);
    let (code, out) = session_ending(&script);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("nested too deeply"),
        "{}",
        &out[..out.len().min(400)]
    );
}

fn golden(name: &str) {
    let dir = root().join("tests").join("repl");
    let script = std::fs::read_to_string(dir.join(format!("{name}.txt"))).expect("script");
    let (code, got) = session_ending(&script);
    // The errors and walkthrough sessions show refused inputs too.
    assert_eq!(code, Some(if name == "multiline" { 0 } else { 1 }), "{got}");
    crate::helpers::assert_golden(name, &dir.join(format!("{name}.out")), &got);
}

#[test]
fn walkthrough_session() {
    golden("walkthrough");
}

#[test]
fn errors_session() {
    golden("errors");
}

#[test]
fn multiline_session() {
    golden("multiline");
}

#[test]
fn bare_expression_prints_value_and_type() {
    let out = session(
        r#":contact a {"email": "a@x.com", "country": "ES", "score": 5}
contact.score + 10
"#,
    );
    assert!(out.lines().any(|l| l == "15 : int"), "{out}");
}

#[test]
fn errors_never_end_the_session() {
    let out = session(
        r"contact.
:event nope
{{{
}}}
:time
",
    );
    assert!(out.trim_end().ends_with("2026-01-01T00:00:00Z"), "{out}");
}

/// Types in a real terminal: a command, tab completion of a command and a field.
#[test]
fn terminal_session_with_tab_completion() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_nurture"));
    cmd.args(["repl", "examples"])
        .current_dir(root())
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(10_000)).expect("spawn in a pty");
    p.exp_string("`:help` lists the commands").expect("banner");
    p.exp_string("[2026-01-01T00:00:00Z]> ")
        .expect("prompt with the clock");
    // `:sch` + Tab completes to `:schema`.
    p.send(":sch").expect("type");
    p.send("\t").expect("tab");
    p.send_line("").expect("enter");
    p.exp_string("plan: \"free\" | \"trial\" | \"paid\"")
        .expect("schema printed");
    p.send_line(":contact ana {\"email\": \"a@x.com\", \"country\": \"ES\", \"score\": 41}")
        .expect("type");
    p.exp_string("[2026-01-01T00:00:00Z ana]> ")
        .expect("prompt with the contact");
    // `contact.sco` + Tab completes to `contact.score`.
    p.send("contact.sco").expect("type");
    p.send("\t").expect("tab");
    p.send_line(" + 1").expect("enter");
    p.exp_string("42 : int").expect("evaluated");
    // A multi-line declaration continues while the brace is open.
    p.send_line("workflow w {").expect("type");
    p.send_line("  when contact_created").expect("type");
    p.send_line("}").expect("type");
    p.exp_string("added workflow w").expect("declaration added");
    p.send_line(":quit").expect("quit");
    p.exp_eof().expect("exits");
    // History was written to the user's data directory.
    let history = std::fs::read_to_string(home.path().join("nurture").join("history.txt"))
        .unwrap_or_default();
    assert!(history.contains(":schema"), "{history}");
}

/// A declaration of new event types keeps the session's state as it is (no
/// replay); a workflow declaration replays the session's inputs.
#[test]
fn an_event_declaration_does_not_replay_the_session() {
    let out = session(
        ":contact a {\"email\": \"a@x.com\", \"country\": \"ES\"}\nevent ping { n: int }\n:event a ping {\"n\": 1}\nevent pong {}\nworkflow pinged {\n  when ping\n  tag \"pinged\"\n}\n",
    );
    assert!(out.contains("added event ping\n"), "{out}");
    assert!(out.contains("added event pong\n"), "{out}");
    assert!(
        out.contains("added workflow pinged (replayed 2 inputs)"),
        "{out}"
    );
}

/// The REPL takes a test's steps and claims, so a session can be pasted
/// into a test, and the steps are replayed when the program is reloaded.
#[test]
fn the_repl_takes_test_steps_and_claims() {
    let test =
        std::fs::read_to_string(root().join("examples/lead_nurturing.test.flow")).expect("read");
    // The steps of the first test, as typed in a session.
    let steps: String = test
        .split("test \"an opener gets parts 2 and 3\" {")
        .nth(1)
        .and_then(|rest| rest.split("\n}\n").next())
        .expect("the test")
        .lines()
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    let (code, out) = session_ending(&steps);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.matches("ok: the claim holds").count(), 7, "{out}");
    // A claim that does not hold is refused with what was emitted; a
    // reload keeps the session's steps.
    let (code, out) = session_ending(
        "contact ana { email: \"ana@example.com\", opted_in: true }\n\
         expect ana: send sms\n\
         :reload\n\
         advance 1h\n\
         expect ana: send email \"nurture_intro\"\n\
         expect ana: welcome completed\n",
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("no action for `ana` matches `send sms`"),
        "{out}"
    );
    assert!(out.contains("actions emitted for `ana`:"), "{out}");
    assert!(out.contains("replayed 1 inputs"), "{out}");
    assert_eq!(out.matches("ok: the claim holds").count(), 1, "{out}");
    assert!(out.contains("still in flight"), "{out}");
}

/// `:time` shows the current contact's local time in its zone.
#[test]
fn time_shows_the_contacts_local_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = format!(
        "timezone \"Asia/Tokyo\"\n\n{}",
        std::fs::read_to_string(root().join("examples/00_schema.flow")).expect("schema")
    );
    let path = dir.path().join("p.flow");
    std::fs::write(&path, program).expect("write");
    let out = piped(
        &[path.to_str().unwrap_or("")],
        ":contact ana {\"email\": \"a@x.com\"}\n:time\n",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2026-01-01T00:00:00Z (ana: 2026-01-01 09:00 Thu Asia/Tokyo)"),
        "{text}"
    );
}

/// `??` in the REPL: the fallback's value for an unset field, typed as the
/// field's type without `?`.
#[test]
fn coalesce_in_the_repl() {
    let out = session(
        ":contact ana {\"email\": \"ana@example.com\", \"opted_in\": true, \"country\": \"ES\"}\ncontact.phone ?? \"none\"\ncontact.email ?? \"none\"\n",
    );
    assert!(out.contains("\"none\" : string\n"), "{out}");
    assert!(out.contains("\"ana@example.com\" : string\n"), "{out}");
}

/// The REPL has one clock, the interpreter's: it starts where the session's
/// is at the first input, so a `given` contact gets the scheduled
/// occurrences from there, as in `nurture test`; a reload replays it alike.
#[test]
fn schedules_fire_for_given_contacts_in_the_repl() {
    let (code, out) = session_ending(
        "given ana { email: \"ana@example.com\", opted_in: true, country: \"ES\" }\n:advance 32d\n:reload\n:time\n",
    );
    assert_eq!(code, Some(0), "{out}");
    let refreshes = |text: &str| text.matches("\"name\":\"crm_refresh\"").count();
    assert_eq!(refreshes(&out), 2, "January 1st and February 1st: {out}");
    assert!(out.contains("\"at\":\"2026-01-01T03:00:00Z\""), "{out}");
    assert!(out.contains("(replayed 2 inputs)"), "{out}");
    assert!(out.ends_with("2026-02-02T00:00:00Z\n"), "{out}");
}

/// A bad field in a `:contact` or `:event` record is underlined alone.
#[test]
fn a_bad_field_is_underlined_where_it_is() {
    let (code, out) = session_ending(
        ":contact bob {\"email\": \"b@x\", \"opted_in\": \"yes\", \"country\": \"ES\"}\n",
    );
    assert_eq!(code, Some(1), "{out}");
    let piped = piped(
        &["examples"],
        ":contact bob {\"email\": \"b@x\", \"opted_in\": \"yes\", \"country\": \"ES\"}\n",
    );
    let err = String::from_utf8_lossy(&piped.stderr).into_owned() + &out;
    assert!(err.contains("<input>:1:31"), "the field's column: {err}");
}
