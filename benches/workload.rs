//! A seeded workload generator: contacts created over the first day, then
//! opens, visits, carts, purchases and unsubscribes over four weeks, in
//! non-decreasing time. The same seed always gives the same file.

use std::io::Write;

/// xorshift64*: small, fast and the same on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 2026-03-01T00:00:00Z in seconds.
const START: i64 = 1_772_323_200;

fn stamp(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(String::new, |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Writes `contacts` contact_created events, then events until `events` lines in all.
pub fn generate(
    out: &mut impl Write,
    contacts: u64,
    events: u64,
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = Rng::new(seed);
    let day = 86_400i64;
    let create_step = (day / contacts.max(1) as i64).max(0);
    let mut t = START;
    for c in 0..contacts {
        t += create_step;
        let opted = rng.below(10) < 8;
        let phone = if rng.below(2) == 0 {
            format!(",\"phone\":\"+3460{:07}\"", c)
        } else {
            String::new()
        };
        writeln!(
            out,
            "{{\"at\":\"{}\",\"contact\":\"c{c}\",\"type\":\"contact_created\",\"attributes\":{{\"email\":\"c{c}@example.com\",\"opted_in\":{opted},\"country\":\"ES\"{phone}}}}}",
            stamp(t)
        )?;
    }
    let rest = events.saturating_sub(contacts).max(1);
    let span = 28 * day;
    let step = span as f64 / rest as f64;
    let mut clock = (START + day) as f64;
    for _ in 0..rest {
        clock += step;
        let t = clock as i64;
        let c = rng.below(contacts.max(1));
        let at = stamp(t);
        match rng.below(100) {
            0..=44 => {
                let campaign = ["nurture_intro", "nurture_part2", "nurture_intro_resend", "newsletter"][rng.below(4) as usize];
                writeln!(out, "{{\"at\":\"{at}\",\"contact\":\"c{c}\",\"type\":\"email_opened\",\"campaign\":\"{campaign}\"}}")?
            }
            45..=84 => writeln!(
                out,
                "{{\"at\":\"{at}\",\"contact\":\"c{c}\",\"type\":\"page_visited\",\"url\":\"/p/{}\",\"seconds\":{}}}",
                rng.below(500),
                rng.below(120)
            )?,
            85..=93 => writeln!(
                out,
                "{{\"at\":\"{at}\",\"contact\":\"c{c}\",\"type\":\"cart_abandoned\",\"cart_value\":{}.5,\"items\":{}}}",
                rng.below(300),
                1 + rng.below(5)
            )?,
            94..=98 => writeln!(
                out,
                "{{\"at\":\"{at}\",\"contact\":\"c{c}\",\"type\":\"purchase\",\"order_id\":\"o{}\",\"amount\":{}.0,\"category\":\"shoes\"}}",
                rng.next() % 1_000_000,
                1 + rng.below(300)
            )?,
            _ => writeln!(out, "{{\"at\":\"{at}\",\"contact\":\"c{c}\",\"type\":\"unsubscribed\"}}")?,
        }
    }
    Ok(())
}

/// A size from the environment variable `name`, or `default`.
#[allow(dead_code)] // `gen` takes its sizes from the command line.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
