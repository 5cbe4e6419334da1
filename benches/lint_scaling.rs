//! How `nurture lint`'s cost grows with a program: an `else if` chain of
//! N arms (the shape that once made the linter quadratic), and N sends in
//! a row. Prints the best of 3 per size and the time per arm; linear means
//! the per-arm figure stays flat as N doubles.
//!
//! Run: `cargo bench --bench lint_scaling`.

use nurture::lint::{self, Config};
use nurture::source::SourceMap;
use std::time::Instant;

fn else_if_chain(n: usize) -> String {
    let mut s = String::from("contact {\n  a: int = 0\n}\n\nworkflow w {\n  when contact.a > 0\n  if contact.a == 0 {\n  }");
    for i in 1..n {
        s.push_str(&format!(" else if contact.a == {i} {{\n  }}"));
    }
    s.push_str("\n}\n");
    s
}

fn sends(n: usize) -> String {
    let mut s = String::from(
        "contact {\n  email: string @channel(email)\n  opted_in: bool = false @consent(email)\n}\n\nworkflow w {\n  when contact_created where contact.opted_in\n",
    );
    for i in 0..n {
        s.push_str(&format!("  send email \"m{i}\"\n"));
    }
    s.push_str("}\n");
    s
}

/// Parses, checks and lints `text`; the best of 3, in seconds.
fn best(text: &str) -> f64 {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let mut sources = SourceMap::default();
            sources.add("bench.flow", text);
            let a = nurture::pipeline::analyse(&sources);
            let diags = lint::lint(&a.program, &a.checked.schema, &sources, &Config::default());
            let rendered: usize = diags
                .iter()
                .map(|d| d.render(&sources, false, 100).len())
                .sum();
            std::hint::black_box(rendered);
            start.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    for (what, make) in [
        ("else-if arms", else_if_chain as fn(usize) -> String),
        ("sends in a row", sends),
    ] {
        for n in [2_500, 5_000, 10_000, 20_000] {
            let secs = best(&make(n));
            println!(
                "{what:>15}: {n:>6}  {:>8.1} ms  {:>6.2} µs each",
                secs * 1e3,
                secs * 1e6 / n as f64
            );
        }
    }
}
