//! Scheduled triggers at scale: 1,000,000 contacts in 20 time zones, a
//! daily trigger with a `where`, a week of virtual time. Reports the
//! occurrences (per workflow and zone) per second and the cost per
//! contact that entered.
//!
//! Run: `cargo bench --bench calendar` (release mode). The number of
//! contacts can be set with NURTURE_BENCH_CONTACTS.

// Only its `env` is used here.
#[allow(dead_code)]
#[path = "workload.rs"]
mod workload;

use nurture::runtime::value::{parse_datetime, Value};
use nurture::runtime::Interpreter;
use nurture::source::SourceMap;
use std::sync::Arc;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PROGRAM: &str = r#"timezone "UTC"

contact {
  email: string @channel(email)
  zone: string? @timezone
  opted_in: bool = true @consent(email)
  score: int = 0
}

event ping {}

workflow digest {  // nurture:allow(no-goal)
  when every day at 09:00 where contact.score >= 50
  reenter always
  send email "digest"
}
"#;

const ZONES: [&str; 20] = [
    "UTC",
    "Europe/London",
    "Europe/Madrid",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let contacts = workload::env("NURTURE_BENCH_CONTACTS", 1_000_000);
    let mut sources = SourceMap::default();
    sources.add("calendar.flow", PROGRAM);
    let a = nurture::pipeline::analyse(&sources);
    if a.diagnostics.iter().any(|d| d.is_error()) {
        return Err("the bench program does not check".into());
    }
    let prog = Arc::new(nurture::runtime::compile(&a.program, &a.checked.schema));
    let slot = |name: &str| {
        a.checked
            .schema
            .field(name)
            .map(|i| i as u16)
            .ok_or("no field")
    };
    let (email, zone, score) = (slot("email")?, slot("zone")?, slot("score")?);
    let mut it = Interpreter::new(prog, false);
    let start = Instant::now();
    for i in 0..contacts {
        let attrs = vec![
            (email, Value::Str(Arc::from(format!("c{i}@example.com")))),
            (zone, Value::Str(Arc::from(ZONES[(i % 20) as usize]))),
            // A tenth of the contacts pass the `where`.
            (score, Value::Int(if i % 10 == 0 { 60 } else { 10 })),
        ];
        it.load_contact(&format!("c{i}"), attrs)?;
    }
    let load = start.elapsed().as_secs_f64();
    // The clock starts with an event; then a week of virtual time.
    let t0 = parse_datetime("2026-03-02T00:00:00Z").ok_or("a date")?;
    it.feed_line(r#"{"at":"2026-03-02T00:00:00Z","contact":"c0","type":"ping"}"#)?;
    let week = t0 + 7 * 86_400_000;
    let start = Instant::now();
    let mut emitted = 0usize;
    let mut t = t0;
    // A day at a time, taking the output as a run does.
    while t < week {
        t += 86_400_000;
        it.advance_to(t);
        emitted += it.take_emitted().len();
    }
    let run = start.elapsed().as_secs_f64();
    let stats = it.stats();
    let entered = stats.workflows[0].entered;
    let occurrences = 7 * ZONES.len();
    println!(
        "{contacts} contacts in {} zones loaded in {load:.2} s",
        ZONES.len()
    );
    println!(
        "a week of a daily trigger with a `where`: {occurrences} occurrences (workflow and zone), \
         {entered} journeys entered, {emitted} actions, in {run:.3} s"
    );
    println!(
        "{:.0} occurrences per second; {:.2} µs per contact that entered; {:.3} µs per contact visited",
        occurrences as f64 / run,
        run * 1e6 / entered.max(1) as f64,
        run * 1e6 / (contacts as f64 * 7.0)
    );
    Ok(())
}
