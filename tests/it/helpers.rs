//! Shared helpers: parse, check and render without colour at a fixed width.

use nurture::diagnostic::Diagnostic;
use nurture::source::SourceMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn sources(text: &str) -> SourceMap {
    let mut s = SourceMap::default();
    s.add("test.flow", text);
    s
}

/// Every diagnostic of a program, rendered as a person sees it.
pub fn diagnostics(text: &str) -> (Vec<Diagnostic>, String) {
    let src = sources(text);
    let a = nurture::pipeline::analyse(&src);
    let rendered: String = a
        .diagnostics
        .iter()
        .map(|d| d.render(&src, false, 90))
        .collect();
    (a.diagnostics, rendered)
}

/// The snapshot body: the source, then what `check` prints.
pub fn snapshot_body(text: &str) -> String {
    let (_, rendered) = diagnostics(text);
    format!(
        r"{text}
---
{rendered}"
    )
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nurture"))
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A schema used by small test programs.
pub const SCHEMA: &str = r#"contact {
  email: string          @channel(email)
  phone: string?         @channel(sms)
  first_name: string?
  country: string
  opted_in: bool         @consent(email, sms)
  score: int = 0
  tags: set<string>
  plan: "free" | "trial" | "paid" = "free"
  signed_up_at: datetime?
  lifetime_value: float = 0.0
}

event email_opened  { campaign: string }
event page_visited  { url: string, seconds: int }
event purchase      { order_id: string, amount: float, category: string }
event unsubscribed  {}
"#;

/// The program `SCHEMA` + `body`.
pub fn with_schema(body: &str) -> String {
    format!("{SCHEMA}\n{body}")
}

/// Compares `got` with the golden file at `path` line by line; with
/// NURTURE_BLESS set, writes `got` there first.
pub fn assert_golden(name: &str, path: &std::path::Path, got: &str) {
    if std::env::var_os("NURTURE_BLESS").is_some() {
        std::fs::write(path, got).expect("bless");
    }
    let expected = std::fs::read_to_string(path).expect("golden file");
    for (i, (g, e)) in got.lines().zip(expected.lines()).enumerate() {
        assert_eq!(g, e, "{name}: first difference at output line {}", i + 1);
    }
    assert_eq!(
        got.lines().count(),
        expected.lines().count(),
        "{name}: line counts differ"
    );
}

/// Runs `nurture run` on `program` (a whole program) over `events`, with
/// extra flags, in a fresh directory (where relative paths in `flags` land).
/// Runs `program` over `events` cut into consecutive parts at the line
/// numbers `cuts` (ascending), one run per part with one `--state` DB; the
/// parts before the last get `flags` without `--drain`/`--until T`. Returns
/// each part's output.
pub fn run_program_in_parts(
    program: &str,
    events: &str,
    flags: &[&str],
    cuts: &[usize],
) -> Vec<Output> {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.flow");
    std::fs::write(&p, program).expect("write");
    let lines: Vec<&str> = events.split_inclusive('\n').collect();
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().map(|&c| c.min(lines.len())));
    bounds.push(lines.len());
    let mut early = Vec::new();
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        match *f {
            "--drain" => {}
            "--until" => {
                it.next();
            }
            other => early.push(other),
        }
    }
    let mut outs = Vec::new();
    for (i, w) in bounds.windows(2).enumerate() {
        let e = dir.path().join(format!("part{i}.jsonl"));
        std::fs::write(&e, lines[w[0]..w[1]].concat()).expect("write");
        let last = i + 2 == bounds.len();
        let state = dir.path().join("state.db");
        let mut part_flags: Vec<&str> = if last { flags.to_vec() } else { early.clone() };
        part_flags.extend(["--state", state.to_str().expect("utf-8 temp path")]);
        outs.push(run_files(dir.path(), &p, &e, &part_flags));
    }
    outs
}

pub fn run_program(program: &str, events: &str, flags: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.flow");
    let e = dir.path().join("events.jsonl");
    std::fs::write(&p, program).expect("write");
    std::fs::write(&e, events).expect("write");
    run_files(dir.path(), &p, &e, flags)
}

/// `nurture run PROGRAM --events EVENTS FLAGS` in `dir`.
fn run_files(dir: &Path, program: &Path, events: &Path, flags: &[&str]) -> Output {
    bin()
        .arg("run")
        .arg(program)
        .arg("--events")
        .arg(events)
        .args(flags)
        .current_dir(dir)
        .output()
        .expect("runs")
}
