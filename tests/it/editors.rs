//! The editor support in `editors/`: the VS Code grammar follows the
//! language's words.

use crate::helpers::root;

/// The words the grammar's patterns match, by scope name.
fn grammar() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("editors/vscode/syntaxes/flow.tmLanguage.json"))
        .expect("the grammar");
    serde_json::from_str(&text).expect("the grammar is JSON")
}

/// Every `match` regex of the grammar, as text.
fn matches(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "match" || k == "begin" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                }
                matches(x, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|x| matches(x, out)),
        _ => {}
    }
}

#[test]
fn the_grammar_highlights_every_word_of_the_language() {
    let g = grammar();
    assert_eq!(g["scopeName"], "source.flow");
    let mut regexes = Vec::new();
    matches(&g, &mut regexes);
    let all = regexes.join("\n");
    let words = nurture::vocabulary::KEYWORDS
        .iter()
        .copied()
        .chain(nurture::vocabulary::HISTORY_FUNCTIONS)
        .chain(nurture::vocabulary::Builtin::ALL.iter().map(|b| b.name()))
        .chain(nurture::vocabulary::Channel::names())
        .chain([
            "as",
            "transactional",
            "every",
            "until",
            "limit",
            "timezone",
            "given",
            "expect",
            "advance",
            "update",
        ]);
    for w in words {
        let bounded = all.contains(&format!("|{w}|"))
            || all.contains(&format!("({w}|"))
            || all.contains(&format!("|{w})"))
            || all.contains(&format!("({w})"))
            || all.contains(&format!("\\b{w}\\b"))
            || all.contains(&format!("({w})\\b"));
        assert!(bounded, "the grammar does not highlight `{w}`");
    }
    assert!(all.contains("\\?\\?"), "the grammar highlights `??`");
    assert!(
        all.contains("quiet\\s+hours"),
        "the grammar highlights `quiet hours`"
    );
    // The package names the grammar and the language configuration.
    let pkg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("editors/vscode/package.json")).expect("package"),
    )
    .expect("JSON");
    assert_eq!(
        pkg["contributes"]["grammars"][0]["scopeName"],
        "source.flow"
    );
    assert!(root()
        .join("editors/vscode")
        .join(
            pkg["contributes"]["languages"][0]["configuration"]
                .as_str()
                .unwrap_or("")
        )
        .exists());
}

/// The tree-sitter grammar knows every keyword of the language, its
/// highlight queries name them, and its corpus covers the newer forms.
/// (`tree-sitter generate && tree-sitter test` in the grammar's folder runs
/// the corpus; docs/editors.md.)
#[test]
fn the_tree_sitter_grammar_knows_the_language() {
    let dir = root().join("editors/tree-sitter-flow");
    let grammar = std::fs::read_to_string(dir.join("grammar.js")).expect("grammar.js");
    let highlights =
        std::fs::read_to_string(dir.join("queries/highlights.scm")).expect("highlights.scm");
    for w in nurture::vocabulary::KEYWORDS.iter().copied().chain([
        "as",
        "transactional",
        "every",
        "until",
        "??",
    ]) {
        assert!(
            grammar.contains(&format!("'{w}'")),
            "grammar.js lacks `{w}`"
        );
    }
    for w in ["when", "wait", "send", "as", "transactional", "??", "is"] {
        assert!(
            highlights.contains(&format!("\"{w}\"")),
            "highlights.scm lacks `{w}`"
        );
    }
    let corpus =
        std::fs::read_to_string(dir.join("test/corpus/workflows.txt")).expect("the corpus");
    for form in [
        "transactional",
        " as later",
        "??",
        "split \"subject\"",
        "within 30d",
    ] {
        assert!(corpus.contains(form), "the corpus lacks `{form}`");
    }
}
