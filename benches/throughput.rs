//! End-to-end throughput of `nurture run` on the seed-001 lead-nurturing
//! workflow over the generated workload, against a bare serde_json pass that
//! only parses the same lines, in one process, plus memory per contact.
//!
//! Run: `cargo bench --bench throughput` (release mode). Sizes can be set
//! with NURTURE_BENCH_CONTACTS / NURTURE_BENCH_EVENTS.

#[path = "workload.rs"]
mod workload;

use nurture::runtime::engine::Engine;
use nurture::runtime::input::parse_event;
use nurture::source::SourceMap;
use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    proc_status("VmRSS:")
}

fn proc_status(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() -> std::io::Result<()> {
    let contacts = env("NURTURE_BENCH_CONTACTS", 100_000);
    let events = env("NURTURE_BENCH_EVENTS", 1_000_000);
    let dir = std::env::temp_dir().join("nurture-bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("workload-{contacts}-{events}.jsonl"));
    if !path.exists() {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        workload::generate(&mut f, contacts, events, 42)?;
        f.flush()?;
    }
    let bytes = std::fs::metadata(&path)?.len();

    // The program: the shared schema and the seed-001 lead nurturing.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut sources = SourceMap::default();
    for f in ["00_schema.flow", "lead_nurturing.flow"] {
        sources.add(f, std::fs::read_to_string(root.join(f))?);
    }
    let analysis = nurture::pipeline::analyse(&sources);
    assert!(
        analysis.diagnostics.is_empty(),
        "{:#?}",
        analysis.diagnostics
    );
    let compiled = Arc::new(nurture::runtime::compile(
        &analysis.program,
        &analysis.checked.schema,
    ));

    // 1. Bare serde_json: parse every line into a `serde_json::Value`.
    let start = Instant::now();
    let mut n = 0u64;
    let mut line = String::new();
    let mut r = BufReader::with_capacity(1 << 16, std::fs::File::open(&path)?);
    while r.read_line(&mut line)? > 0 {
        let v: serde_json::Value = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        std::hint::black_box(&v);
        n += 1;
        line.clear();
    }
    let bare = start.elapsed().as_secs_f64();

    // 2. End to end: read, parse, validate, run, write actions (to a sink).
    let rss_before = rss_kib();
    let start = Instant::now();
    let mut engine = Engine::new(compiled, false);
    let mut sink = std::io::BufWriter::with_capacity(1 << 16, std::io::sink());
    let mut r = BufReader::with_capacity(1 << 16, std::fs::File::open(&path)?);
    let mut actions_bytes = 0usize;
    let mut seen = 0u64;
    let mut mid = (0u64, 0u64);
    while r.read_line(&mut line)? > 0 {
        seen += 1;
        if seen == contacts + 1 {
            // Every contact is created and the opted-in ones wait in the workflow.
            mid = (
                rss_kib().saturating_sub(rss_before),
                engine.waiting_counts().iter().sum(),
            );
        }
        let input =
            parse_event(line.trim_end(), &engine.prog.schema).map_err(std::io::Error::other)?;
        engine.accept(input).map_err(std::io::Error::other)?;
        if engine.out.buf.len() > 1 << 16 {
            actions_bytes += engine.out.buf.len();
            sink.write_all(engine.out.buf.as_bytes())?;
            engine.out.buf.clear();
        }
        line.clear();
    }
    actions_bytes += engine.out.buf.len();
    sink.write_all(engine.out.buf.as_bytes())?;
    sink.flush()?;
    let full = start.elapsed().as_secs_f64();
    let rss_after = rss_kib();
    let in_flight = engine.waiting_counts().iter().sum::<u64>();
    let actions: u64 = engine.out.counts.iter().sum();

    println!(
        "workload: {contacts} contacts, {n} events, {:.1} MiB ({})",
        bytes as f64 / 1048576.0,
        path.display()
    );
    println!(
        "bare serde_json parse:  {:.3} s  {:>12.0} events/s",
        bare,
        n as f64 / bare
    );
    println!("nurture end to end:     {:.3} s  {:>12.0} events/s  ({actions} actions, {:.1} MiB of output)", full, n as f64 / full, actions_bytes as f64 / 1048576.0);
    println!("ratio end-to-end / bare parse: {:.2}x", full / bare);
    println!(
        "memory after the contacts are created: {} KiB for {contacts} contacts with {} journeys in flight: {:.0} bytes per contact",
        mid.0,
        mid.1,
        (mid.0 * 1024) as f64 / contacts.max(1) as f64
    );
    println!(
        "memory at the end: {} KiB for {} contacts ({in_flight} journeys in flight): {:.0} bytes per contact; peak resident {} KiB",
        rss_after.saturating_sub(rss_before),
        engine.store.contacts.len(),
        (rss_after.saturating_sub(rss_before) * 1024) as f64 / engine.store.contacts.len().max(1) as f64,
        proc_status("VmHWM:")
    );
    Ok(())
}
