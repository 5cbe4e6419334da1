//! Formatting keeps a program's meaning and is idempotent: for any text
//! that parses, fmt(text) parses to the same program, and fmt(fmt(text))
//! equals fmt(text).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(once) = nurture::fmt::format_source(text) else {
        return;
    };
    let twice = nurture::fmt::format_source(&once).expect("formatted text parses");
    assert_eq!(once, twice, "fmt is not idempotent");
    let (before, _) = nurture::syntax::parse_file(0, text);
    let (after, _) = nurture::syntax::parse_file(0, &once);
    assert_eq!(before, after, "fmt changed the program");
});
