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
    assert!(e.to_string().contains("workflows"), "{e}");
}

#[path = "../../benches/workload.rs"]
pub mod workload;

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

/// A snapshot written to SQLite and read back is the same snapshot, and a
/// run continued from it is the same run.
#[test]
fn a_snapshot_round_trips_through_sqlite() {
    use nurture::runtime::state_db;
    let prog = program();
    let mut bytes = Vec::new();
    workload::generate(&mut bytes, 300, 3_000, 11).expect("generated");
    let text = String::from_utf8(bytes).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    let whole = run_in_parts(&prog, &lines, &[]);

    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let mut out = String::new();
    let mut it = Interpreter::new(prog.clone(), true);
    for line in &lines[..1_234] {
        let _ = it.feed_line(line);
    }
    it.take_json(&mut out);
    let snap = it.snapshot();
    {
        let mut conn = rusqlite::Connection::open(&db).expect("open");
        assert_eq!(
            state_db::load(&conn),
            Ok(None),
            "an empty database holds no state"
        );
        state_db::save(&mut conn, &snap).expect("saved");
    }
    let conn = rusqlite::Connection::open(&db).expect("open again");
    let back = state_db::load(&conn).expect("loads").expect("a state");
    assert!(back == snap, "the snapshot changed through SQLite");
    let mut it = Interpreter::restore(prog.clone(), true, back).expect("restores");
    for line in &lines[1_234..] {
        let _ = it.feed_line(line);
    }
    it.drain();
    it.take_json(&mut out);
    assert!(out == whole, "the continued run differs");
}

/// Databases that are not a nurture state, or of a newer format, are
/// refused with a reason, never taken for an empty state.
#[test]
fn other_databases_are_refused() {
    use nurture::runtime::state_db;
    let dir = tempfile::tempdir().expect("tempdir");
    let other = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&other).expect("open");
    conn.execute_batch("CREATE TABLE t (x INTEGER);")
        .expect("table");
    let e = state_db::load(&conn).expect_err("not a state");
    assert!(e.contains("not a nurture state"), "{e}");

    let text = dir.path().join("text.db");
    std::fs::write(
        &text,
        "this is not a database at all, just some text\n".repeat(100),
    )
    .expect("write");
    let conn = rusqlite::Connection::open(&text).expect("open");
    let e = state_db::load(&conn).expect_err("not a database");
    assert!(e.contains("cannot read the state"), "{e}");

    let newer = dir.path().join("newer.db");
    let mut conn = rusqlite::Connection::open(&newer).expect("open");
    state_db::save(&mut conn, &Interpreter::new(program(), false).snapshot()).expect("saved");
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'format'", [])
        .expect("update");
    let e = state_db::load(&conn).expect_err("newer");
    assert!(e.contains("format 99, newer"), "{e}");
}

/// Checkpoints written one after the other, each only what changed since
/// the last, leave in SQLite exactly the state a snapshot gives at that
/// moment; a checkpoint after an event of one contact writes few rows.
#[test]
fn incremental_checkpoints_give_the_whole_state() {
    use nurture::runtime::state_db::{self, Batch};
    let prog = program();
    let mut bytes = Vec::new();
    workload::generate(&mut bytes, 400, 6_000, 5).expect("generated");
    let text = String::from_utf8(bytes).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn = rusqlite::Connection::open(dir.path().join("state.db")).expect("open");
    let mut it = Interpreter::new(prog.clone(), false);
    it.track_changes();
    // Uneven gaps between checkpoints, the first before any event.
    let mut next = 0;
    let mut gap = 1;
    let mut checkpoints = 0;
    for (i, line) in lines.iter().enumerate() {
        if i == next {
            let mut batch = Batch::default();
            let totals = it.take_changes(&mut batch);
            state_db::write(&mut conn, &batch, &totals, &[], false).expect("written");
            let back = state_db::load(&conn).expect("loads").expect("a state");
            assert!(back == it.snapshot(), "the state differs after line {i}");
            checkpoints += 1;
            gap = gap * 3 % 997 + 1;
            next += gap;
        }
        let _ = it.feed_line(line);
    }
    assert!(checkpoints > 10, "{checkpoints}");
    it.drain();
    let mut batch = Batch::default();
    let totals = it.take_changes(&mut batch);
    state_db::write(&mut conn, &batch, &totals, &[], false).expect("written");
    assert!(state_db::load(&conn).expect("loads") == Some(it.snapshot()));

    // Nothing changed: nothing to write. One event: its contact and journeys.
    let mut batch = Batch::default();
    it.take_changes(&mut batch);
    assert_eq!(batch.len(), 0);
    // At the clock's instant: no timer is due, only the event works.
    let now = nurture::runtime::value::format_datetime(it.now().expect("a clock"));
    it.feed_line(&format!(
        r#"{{"at":"{now}","contact":"c7","type":"contact_updated","attributes":{{"score":99}}}}"#
    ))
    .expect("fed");
    let mut batch = Batch::default();
    it.take_changes(&mut batch);
    // The contact, and the journeys the update started or moved on (a
    // rewrite of every contact would be 400 rows).
    assert!((1..=3).contains(&batch.len()), "{} rows", batch.len());
}

/// A checkpoint of more rows than a part goes to the writer in parts, one
/// transaction all the same: committed, the database holds the snapshot of
/// that moment; a run that stops after some parts were written but before
/// the commit leaves the checkpoint before it.
#[test]
fn a_checkpoint_in_parts_is_one_transaction() {
    use nurture::runtime::state_db::{self, Writer, PART};
    let prog = program();
    let mut bytes = Vec::new();
    // More contacts than a part holds, all created before the first
    // checkpoint: it is written in several parts.
    workload::generate(&mut bytes, 2 * PART as u64 + 500, 3 * PART as u64, 9).expect("generated");
    let text = String::from_utf8(bytes).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    let (first, rest) = lines.split_at(2 * PART + 500);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let open = || {
        let conn = rusqlite::Connection::open(&path).expect("open");
        state_db::configure(&conn).expect("configured");
        conn
    };
    let mut writer = Writer::spawn(open(), |()| Ok(Vec::new())).expect("writer");
    let mut it = Interpreter::new(prog.clone(), false);
    it.track_changes();
    for line in first {
        it.feed_line(line).expect("fed");
    }
    let mut checkpoint = writer.checkpoint();
    let totals = it.take_changes(&mut checkpoint);
    checkpoint.commit(totals, ()).expect("sent");
    let committed = it.snapshot();
    assert!(
        committed.contacts.len() > 2 * PART,
        "{}",
        committed.contacts.len()
    );

    // The next checkpoint changes many rows again, but is never committed.
    for line in rest {
        let _ = it.feed_line(line);
    }
    it.drain();
    let mut checkpoint = writer.checkpoint();
    let _ = it.take_changes(&mut checkpoint);
    drop(checkpoint);
    writer.finish().expect("written");
    let back = state_db::load(&open()).expect("loads").expect("a state");
    assert!(back == committed, "the uncommitted parts are in the state");

    // Committed this time: the state is the run's.
    let mut writer = Writer::spawn(open(), |()| Ok(Vec::new())).expect("writer");
    let mut it2 = Interpreter::restore(prog, false, back).expect("restored");
    it2.track_changes();
    for line in rest {
        let _ = it2.feed_line(line);
    }
    it2.drain();
    let mut checkpoint = writer.checkpoint();
    let totals = it2.take_changes(&mut checkpoint);
    checkpoint.commit(totals, ()).expect("sent");
    writer.finish().expect("written");
    let back = state_db::load(&open()).expect("loads").expect("a state");
    assert!(back == it.snapshot(), "the state differs from the run's");
}
