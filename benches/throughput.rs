//! End-to-end throughput of `nurture run` on the seed-001 lead-nurturing
//! workflow over the generated workload, against a bare serde_json pass that
//! only parses the same lines, in one process, plus memory per contact.
//!
//! Run: `cargo bench --bench throughput` (release mode). Each pass runs three
//! times, interleaved, and the best time is reported. Sizes can be set with
//! NURTURE_BENCH_CONTACTS / NURTURE_BENCH_EVENTS.

#[path = "workload.rs"]
mod workload;

use nurture::runtime::input::parse_event_kept;
use nurture::runtime::{BadRecord, Compiled, Driver, Interpreter, Progress, StreamOptions};
use nurture::source::SourceMap;
use std::io::{BufRead, BufReader, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const RUNS: usize = 3;

/// The same allocator as the `nurture` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn proc_status(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn open(path: &Path) -> std::io::Result<BufReader<std::fs::File>> {
    Ok(BufReader::with_capacity(
        1 << 16,
        std::fs::File::open(path)?,
    ))
}

/// Parses every line into a `serde_json::Value`; returns the line count.
fn bare_parse(path: &Path) -> std::io::Result<u64> {
    let mut r = open(path)?;
    let mut line = String::new();
    let mut n = 0;
    while r.read_line(&mut line)? > 0 {
        let v: serde_json::Value = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        std::hint::black_box(&v);
        n += 1;
        line.clear();
    }
    Ok(n)
}

/// Parses and validates every line against the schema, without the engine.
fn parse_validate(path: &Path, prog: &Compiled) -> std::io::Result<()> {
    let mut r = open(path)?;
    let mut line = String::new();
    while r.read_line(&mut line)? > 0 {
        let input = parse_event_kept(line.trim_end(), &prog.schema, &prog.projection)
            .map_err(std::io::Error::other)?;
        std::hint::black_box(&input);
        line.clear();
    }
    Ok(())
}

/// Everything `nurture run` does, on one thread: for comparison with the
/// two-thread pipeline.
fn one_thread(path: &Path, prog: &Arc<Compiled>) -> std::io::Result<()> {
    let mut r = open(path)?;
    let mut it = Interpreter::new(prog.clone(), false);
    let mut sink = Counted(0);
    let mut line = String::new();
    while r.read_line(&mut line)? > 0 {
        it.feed_line_kept(line.trim_end())
            .map_err(std::io::Error::other)?;
        if it.pending() >= 1024 {
            it.write_json(&mut sink)?;
        }
        line.clear();
    }
    it.write_json(&mut sink)
}

struct EndToEnd {
    /// Resident growth and journeys in flight right after the contacts are
    /// created (at the first batch boundary past them).
    mid: (u64, u64),
    /// The same halfway through creating them: the difference is what the
    /// second half of the contacts cost, without the fixed overheads.
    half: (u64, u64),
    end_kib: u64,
    contacts: usize,
    in_flight: u64,
    actions: u64,
    output_bytes: usize,
}

/// A sink that counts the bytes written to it.
struct Counted(usize);

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bench's driver: writes the output to a sink, samples memory as
/// the contacts are created, and treats any bad record as a failure.
struct Bench {
    sink: Counted,
    rss_before: u64,
    contacts: u64,
    mid: Option<(u64, u64)>,
    half: Option<(u64, u64)>,
    bad: Option<String>,
}

impl Bench {
    fn sample(&self, it: &Interpreter) -> (u64, u64) {
        (
            proc_status("VmRSS:").saturating_sub(self.rss_before),
            it.stats().waiting.iter().sum(),
        )
    }
}

impl Driver for Bench {
    fn bad_record(&mut self, _: &mut Interpreter, bad: BadRecord) -> ControlFlow<()> {
        self.bad = Some(format!("bad record at line {}: {}", bad.line, bad.reason));
        ControlFlow::Break(())
    }

    fn progress(&mut self, it: &mut Interpreter, at: Progress) -> ControlFlow<()> {
        let line = at.line;
        if self.half.is_none() && line > self.contacts / 2 {
            self.half = Some(self.sample(it));
        }
        if self.mid.is_none() && line > self.contacts {
            self.mid = Some(self.sample(it));
        }
        if it.write_json(&mut self.sink).is_err() {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// Reads, parses and validates (on other threads, as `nurture run` does),
/// runs the engine and writes the actions (to a sink): all through the
/// runtime's front door.
fn end_to_end(path: &Path, prog: &Arc<Compiled>, contacts: u64) -> std::io::Result<EndToEnd> {
    let mut bench = Bench {
        sink: Counted(0),
        rss_before: proc_status("VmRSS:"),
        contacts,
        mid: None,
        half: None,
        bad: None,
    };
    let mut it = Interpreter::new(prog.clone(), false);
    it.feed_stream(
        std::fs::File::open(path)?,
        StreamOptions::default(),
        &mut bench,
    )
    .map_err(|e| std::io::Error::other(e.message))?;
    if let Some(bad) = bench.bad {
        return Err(std::io::Error::other(bad));
    }
    it.write_json(&mut bench.sink)?;
    let stats = it.stats();
    Ok(EndToEnd {
        mid: bench.mid.unwrap_or_default(),
        half: bench.half.unwrap_or_default(),
        end_kib: proc_status("VmRSS:").saturating_sub(bench.rss_before),
        contacts: it.contact_ids().count(),
        in_flight: stats.waiting.iter().sum(),
        actions: stats.actions.iter().sum(),
        output_bytes: bench.sink.0,
    })
}

fn timed<T>(best: &mut f64, f: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    let start = Instant::now();
    let out = f()?;
    *best = best.min(start.elapsed().as_secs_f64());
    Ok(out)
}

fn main() -> std::io::Result<()> {
    let contacts = workload::env("NURTURE_BENCH_CONTACTS", 100_000);
    let events = workload::env("NURTURE_BENCH_EVENTS", 1_000_000);
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
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
    let prog = Arc::new(nurture::runtime::compile(
        &analysis.program,
        &analysis.checked.schema,
    ));

    let (mut bare, mut parse, mut full, mut single) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let mut n = 0;
    let mut first = None;
    // NURTURE_BENCH_ONLY=e2e skips the other passes (for profiling).
    let only_e2e = std::env::var("NURTURE_BENCH_ONLY").is_ok_and(|v| v == "e2e");
    // The first end-to-end run starts from a fresh process (no memory to
    // reuse), as `nurture run` does; the later ones show the steady state.
    let mut first_full = 0.0;
    for run in 0..RUNS {
        let start = Instant::now();
        let e = end_to_end(&path, &prog, contacts)?;
        let secs = start.elapsed().as_secs_f64();
        full = full.min(secs);
        if run == 0 {
            first_full = secs;
        }
        first.get_or_insert(e);
        if !only_e2e {
            n = timed(&mut bare, || bare_parse(&path))?;
            timed(&mut parse, || parse_validate(&path, &prog))?;
            timed(&mut single, || one_thread(&path, &prog))?;
        }
    }
    let Some(e) = first else { return Ok(()) };
    let rate = |secs: f64| n as f64 / secs;
    println!(
        "workload: {contacts} contacts, {n} events, {:.1} MiB ({})",
        bytes as f64 / 1048576.0,
        path.display()
    );
    println!("best of {RUNS} runs each (end to end: also the first run, in a fresh process):");
    println!(
        "  bare serde_json parse:  {bare:.3} s  {:>10.0} events/s",
        rate(bare)
    );
    println!(
        "  nurture parse+validate: {parse:.3} s  {:>10.0} events/s",
        rate(parse)
    );
    println!(
        "  nurture on one thread:  {single:.3} s  {:>10.0} events/s",
        rate(single)
    );
    println!(
        "  nurture end to end:     {full:.3} s  {:>10.0} events/s  ({} actions, {:.1} MiB of output)",
        rate(full),
        e.actions,
        e.output_bytes as f64 / 1048576.0
    );
    println!(
        "  nurture end to end, first run: {first_full:.3} s  {:>10.0} events/s",
        rate(first_full)
    );
    println!(
        "ratio end-to-end / bare parse: {:.2}x best, {:.2}x first run",
        full / bare,
        first_full / bare
    );
    println!(
        "memory after the contacts are created: {} KiB, {} journeys in flight: {:.0} bytes per contact",
        e.mid.0,
        e.mid.1,
        (e.mid.0 * 1024) as f64 / contacts.max(1) as f64
    );
    let second_half = contacts - contacts / 2;
    println!(
        "  of which the second half of the contacts ({second_half}, {} more journeys): {} KiB, {:.0} bytes per contact",
        e.mid.1.saturating_sub(e.half.1),
        e.mid.0.saturating_sub(e.half.0),
        (e.mid.0.saturating_sub(e.half.0) * 1024) as f64 / second_half.max(1) as f64
    );
    println!(
        "memory at the end: {} KiB for {} contacts ({} journeys in flight): {:.0} bytes per contact; peak resident {} KiB",
        e.end_kib,
        e.contacts,
        e.in_flight,
        (e.end_kib * 1024) as f64 / e.contacts.max(1) as f64,
        proc_status("VmHWM:")
    );
    Ok(())
}
