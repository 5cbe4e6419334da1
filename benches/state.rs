//! Durable state: writing a 100,000-contact state to SQLite, its size, and
//! the time from opening it to running the next event (resume).
//!
//! Run: `cargo bench --bench state` (release mode). Sizes can be set with
//! NURTURE_BENCH_CONTACTS / NURTURE_BENCH_EVENTS.

#[path = "workload.rs"]
mod workload;

use nurture::runtime::{state_db, Interpreter};
use nurture::source::SourceMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let contacts = workload::env("NURTURE_BENCH_CONTACTS", 100_000);
    let events = workload::env("NURTURE_BENCH_EVENTS", 1_000_000);
    let mut bytes = Vec::new();
    workload::generate(&mut bytes, contacts, events, 42)?;
    let text = String::from_utf8(bytes)?;
    let lines: Vec<&str> = text.lines().collect();

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut sources = SourceMap::default();
    for f in ["00_schema.flow", "lead_nurturing.flow"] {
        sources.add(f, std::fs::read_to_string(root.join(f))?);
    }
    let prog = prog_of(&sources);

    // The state right after the contacts were created, when the most
    // journeys are in flight (the workload creates them first).
    let cut = (contacts as usize).min(lines.len() - 1);
    let mut it = Interpreter::new(prog.clone(), false);
    let start = Instant::now();
    for line in &lines[..cut] {
        it.feed_line_kept(line)?;
        it.take_emitted();
    }
    let run = start.elapsed().as_secs_f64();
    let dir = std::env::temp_dir().join("nurture-bench");
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("state.db");
    let _ = std::fs::remove_file(&db);

    let start = Instant::now();
    let snap = it.snapshot();
    let snapshot = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut conn = rusqlite::Connection::open(&db)?;
    state_db::save(&mut conn, &snap)?;
    drop(conn);
    let save = start.elapsed().as_secs_f64();
    let size = std::fs::metadata(&db)?.len();

    // Resume: open, load, restore, run the next event.
    let start = Instant::now();
    let conn = rusqlite::Connection::open(&db)?;
    let loaded = state_db::load(&conn)?.ok_or("no state")?;
    let mut again = Interpreter::restore(prog, false, loaded)?;
    again.feed_line_kept(lines[cut])?;
    let resume = start.elapsed().as_secs_f64();

    println!(
        "{} contacts, {} events run in {run:.3} s; {} journeys in flight",
        snap.contacts.len(),
        cut,
        snap.journeys.len()
    );
    println!("snapshot: {snapshot:.3} s; written to SQLite: {save:.3} s");
    println!(
        "database: {:.1} MiB, {:.0} bytes per contact",
        size as f64 / 1048576.0,
        size as f64 / snap.contacts.len().max(1) as f64
    );
    println!("resume (open, load, restore, run the next event): {resume:.3} s");

    // Checkpoints: the whole workload run with a checkpoint every 100,000
    // events, each batch of changed rows written as one transaction, timed
    // apart from the run.
    let mut it = Interpreter::new(prog_of(&sources), false);
    it.track_changes();
    let mut batches = Vec::new();
    let start = Instant::now();
    let mut encode = 0.0;
    for (i, line) in lines.iter().enumerate() {
        it.feed_line_kept(line)?;
        it.take_emitted();
        if (i + 1) % 100_000 == 0 || i + 1 == lines.len() {
            let t = Instant::now();
            let mut batch = state_db::Batch::default();
            let totals = it.take_changes(&mut batch);
            encode += t.elapsed().as_secs_f64();
            batches.push((batch, totals));
        }
    }
    let run = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&db);
    let _ = std::fs::remove_file(db.with_extension("db-wal"));
    let mut conn = rusqlite::Connection::open(&db)?;
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE")?;
    state_db::configure(&conn)?;
    let start = Instant::now();
    let rows: usize = batches.iter().map(|(b, _)| b.len()).sum();
    for (batch, totals) in &batches {
        state_db::write(&mut conn, batch, totals, &[], false)?;
    }
    drop(conn);
    let write = start.elapsed().as_secs_f64();
    println!(
        "checkpoints every 100,000 events: {} checkpoints, {rows} rows; taking them {encode:.3} s (of a {run:.3} s run), writing them {write:.3} s ({:.2} µs a row)",
        batches.len(),
        write * 1e6 / rows.max(1) as f64
    );
    Ok(())
}

fn prog_of(sources: &SourceMap) -> Arc<nurture::runtime::Compiled> {
    let a = nurture::pipeline::analyse(sources);
    Arc::new(nurture::runtime::compile(&a.program, &a.checked.schema))
}
