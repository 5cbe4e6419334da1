//! Parse, check and lint any text: never a panic, a stack overflow or a
//! hang; every diagnostic renders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nurture::lint::{self, Config};
use nurture::source::SourceMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut sources = SourceMap::default();
    sources.add("fuzz.flow", text);
    let analysis = nurture::pipeline::analyse(&sources);
    for d in &analysis.diagnostics {
        let _ = d.render(&sources, false, 80);
        let _ = d.to_json(&sources);
    }
    if analysis.diagnostics.iter().any(|d| d.is_error()) {
        return;
    }
    for d in lint::lint(&analysis.program, &analysis.checked.schema, &sources, &Config::default()) {
        let _ = d.render(&sources, false, 80);
    }
});
