//! Properties: the parser and checker never panic, whatever the input.

use proptest::prelude::*;

fn examples() -> Vec<String> {
    let dir = crate::helpers::root().join("examples");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("examples") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "flow") {
            out.push(std::fs::read_to_string(p).expect("read"));
        }
    }
    out.sort();
    out
}

fn analyse(text: &str) {
    let mut s = nurture::source::SourceMap::default();
    s.add("p.flow", text);
    let a = nurture::pipeline::analyse(&s);
    // Rendering must not panic either.
    for d in &a.diagnostics {
        let _ = d.render(&s, false, 80);
        let _ = d.to_json(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        analyse(&text);
    }

    #[test]
    fn token_soup_never_panics(words in prop::collection::vec(prop::sample::select(vec![
        "workflow", "w", "{", "}", "when", "contact", ".", "email", "send", "sms", "\"x\"", "wait", "for",
        "within", "2d", "if", "else", "is", "set", "not", "and", "==", "=", "+=", "(", ")", "[", "]", ",",
        "split", "50%", "timeout", "event", ":", "int", "?", "@channel", "seen", "count", "\n", "exit",
    ]), 0..60)) {
        analyse(&words.join(" "));
    }

    #[test]
    fn mutated_examples_never_panic(idx in 0usize..8, cut in 0usize..4000, len in 0usize..40, insert in "\\PC{0,8}") {
        let ex = examples();
        let text = &ex[idx % ex.len()];
        let mut chars: Vec<char> = text.chars().collect();
        let at = cut.min(chars.len());
        let end = (at + len).min(chars.len());
        chars.splice(at..end, insert.chars());
        analyse(&chars.into_iter().collect::<String>());
    }
}

/// The examples' program, compiled once for all cases.
fn example_program() -> &'static std::sync::Arc<nurture::runtime::Compiled> {
    static PROGRAM: std::sync::OnceLock<std::sync::Arc<nurture::runtime::Compiled>> =
        std::sync::OnceLock::new();
    PROGRAM.get_or_init(|| {
        let src = nurture::source::load_sources(&crate::helpers::root().join("examples"))
            .expect("examples");
        let a = nurture::pipeline::analyse(&src);
        std::sync::Arc::new(nurture::runtime::compile(&a.program, &a.checked.schema))
    })
}

fn example_schema() -> &'static nurture::check::Schema {
    &example_program().schema
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Input lines never panic the reader, whatever they hold.
    #[test]
    fn arbitrary_input_lines_never_panic(line in "\\PC{0,120}") {
        let schema = example_schema();
        let _ = nurture::runtime::input::parse_event(&line, schema);
        let _ = nurture::runtime::input::parse_contact(&line, schema);
    }

    /// Nor do mutations of real event lines.
    #[test]
    fn mutated_event_lines_never_panic(idx in 0usize..40, cut in 0usize..200, len in 0usize..12, insert in "\\PC{0,6}") {
        let schema = example_schema();
        let text = std::fs::read_to_string(crate::helpers::root().join("examples/events/lead_nurturing.jsonl")).expect("events");
        let lines: Vec<&str> = text.lines().collect();
        let mut chars: Vec<char> = lines[idx % lines.len()].chars().collect();
        let at = cut.min(chars.len());
        let end = (at + len).min(chars.len());
        chars.splice(at..end, insert.chars());
        let line: String = chars.into_iter().collect();
        if let Ok(input) = nurture::runtime::input::parse_event(&line, schema) {
            // Whatever validates must also run without a panic.
            let mut it = nurture::runtime::Interpreter::new(example_program().clone(), true);
            let _ = it.feed(input);
            it.drain();
        }
    }
}
