//! The REPL: scripted sessions piped through stdin against golden output,
//! and the real binary in a pseudo-terminal.

use crate::helpers::{bin, root, stderr};
use std::io::Write;
use std::process::Stdio;

/// Runs `nurture repl examples` with `script` on stdin; returns stdout.
fn session(script: &str) -> String {
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = bin()
        .args(["repl", "examples"])
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
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn golden(name: &str) {
    let dir = root().join("tests").join("repl");
    let script = std::fs::read_to_string(dir.join(format!("{name}.txt"))).expect("script");
    let got = session(&script);
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
