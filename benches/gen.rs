//! `nurture-gen`: writes the benchmark workload as JSON Lines to stdout.
//!
//! Usage: cargo run --release --example nurture-gen -- [CONTACTS] [EVENTS] [SEED]
//! (defaults: 100000 1000000 42)

#[path = "workload.rs"]
mod workload;

fn main() -> std::io::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let contacts = args.first().copied().unwrap_or(100_000);
    let events = args.get(1).copied().unwrap_or(1_000_000);
    let seed = args.get(2).copied().unwrap_or(42);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    workload::generate(&mut out, contacts, events, seed)
}
