//! Any input lines, run through the example program: never a panic; a line
//! is accepted or refused with a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nurture::runtime::Interpreter;
use std::sync::{Arc, OnceLock};

fn program() -> &'static Arc<nurture::runtime::Compiled> {
    static PROGRAM: OnceLock<Arc<nurture::runtime::Compiled>> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let sources = nurture::source::load_sources(&root).expect("examples");
        let a = nurture::pipeline::analyse(&sources);
        Arc::new(nurture::runtime::compile(&a.program, &a.checked.schema))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut it = Interpreter::new(program().clone(), true);
    for line in text.lines().take(64) {
        let _ = it.feed_line(line);
        let _ = it.load_contact_line(line);
    }
    it.drain();
    let mut out = String::new();
    it.take_json(&mut out);
});
