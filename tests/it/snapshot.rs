//! A run continued from a snapshot emits exactly what the uninterrupted run
//! would have: every example's events cut at every line (and in three parts
//! at many pairs of lines), with `--trace`-level records and a final drain.

use crate::helpers::root;
use nurture::runtime::{Compiled, Interpreter};
use std::sync::Arc;

fn program() -> Arc<Compiled> {
    let sources = nurture::source::load_sources(&root().join("examples")).expect("examples");
    let a = nurture::pipeline::analyse(&sources);
    Arc::new(nurture::runtime::compile(&a.program, &a.checked.schema))
}

/// The JSON of feeding `lines` in parts cut at `cuts`, a snapshot taken and
/// restored at each cut, then draining.
fn run_in_parts(prog: &Arc<Compiled>, lines: &[&str], cuts: &[usize]) -> String {
    let mut out = String::new();
    let mut it = Interpreter::new(prog.clone(), true);
    let mut from = 0;
    for &cut in cuts.iter().chain([&lines.len()]) {
        for line in &lines[from..cut] {
            // Bad lines are refused as in one run; the state stays.
            let _ = it.feed_line(line);
        }
        it.take_json(&mut out);
        if cut < lines.len() {
            let snap = it.snapshot();
            it = Interpreter::restore(prog.clone(), true, snap).expect("restores");
        }
        from = cut;
    }
    it.drain();
    it.take_json(&mut out);
    out
}

#[test]
fn a_run_continued_from_a_snapshot_is_the_same_run() {
    let prog = program();
    let dir = root().join("examples").join("events");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("events")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 7);
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let whole = run_in_parts(&prog, &lines, &[]);
        assert!(whole.lines().count() > 5, "{}", f.display());
        for a in 0..=lines.len() {
            let two = run_in_parts(&prog, &lines, &[a]);
            assert_eq!(two, whole, "{} cut at line {a}", f.display());
            for b in (a..=lines.len()).step_by(3) {
                let three = run_in_parts(&prog, &lines, &[a, b]);
                assert_eq!(three, whole, "{} cut at lines {a} and {b}", f.display());
            }
        }
    }
}

/// A snapshot keeps the counts the summary shows.
#[test]
fn a_snapshot_keeps_the_counts() {
    let prog = program();
    let text =
        std::fs::read_to_string(root().join("examples/events/lead_nurturing.jsonl")).expect("read");
    let mut it = Interpreter::new(prog.clone(), false);
    for line in text.lines() {
        let _ = it.feed_line(line);
    }
    let before = it.stats();
    let again = Interpreter::restore(prog.clone(), false, it.snapshot()).expect("restores");
    assert_eq!(again.stats(), before);
    assert_eq!(again.now(), it.now());
    assert_eq!(again.snapshot(), it.snapshot(), "a snapshot round-trips");
}

/// A snapshot from another program is refused with a reason.
#[test]
fn a_snapshot_of_another_program_is_refused() {
    let prog = program();
    let mut sources = nurture::source::SourceMap::default();
    sources.add("p.flow", "contact {\n  n: int = 0\n}\n");
    let a = nurture::pipeline::analyse(&sources);
    let small = Arc::new(nurture::runtime::compile(&a.program, &a.checked.schema));
    let snap = Interpreter::new(prog, false).snapshot();
    let Err(e) = Interpreter::restore(small, false, snap) else {
        panic!("restored into another program");
    };
    assert!(e.contains("workflows"), "{e}");
}

#[path = "../../benches/workload.rs"]
mod workload;

/// The same on a generated workload (2,000 contacts, 20,000 events of the
/// lead-nurturing seed), cut in four parts.
#[test]
fn a_generated_workload_continues_from_snapshots() {
    let prog = program();
    let mut bytes = Vec::new();
    workload::generate(&mut bytes, 2_000, 20_000, 7).expect("generated");
    let text = String::from_utf8(bytes).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    let whole = run_in_parts(&prog, &lines, &[]);
    assert!(whole.lines().count() > 1_000);
    let parts = run_in_parts(&prog, &lines, &[1_999, 7_777, 15_001]);
    assert!(parts == whole, "the runs differ");
}
