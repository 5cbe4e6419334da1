//! The terminal front end (rustyline): completion, multi-line input,
//! history; and the plain front end for piped input.

use super::{is_complete, Session, COMMANDS};
use crate::vocabulary::{Builtin, HISTORY_FUNCTIONS};
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};
use std::io::{BufRead, Write};

/// What completion offers, refreshed after every input.
#[derive(Clone, Debug, Default)]
pub struct Names {
    pub fields: Vec<String>,
    /// Event names with their payload fields.
    pub events: Vec<(String, Vec<String>)>,
    pub workflows: Vec<String>,
    pub contacts: Vec<String>,
}

const WORDS: &[&str] = &[
    "contact.",
    "event.",
    "trigger.",
    "now",
    "and",
    "or",
    "not",
    "in",
    "is set",
    "is not set",
    "true",
    "false",
    // Calendar time.
    "until",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "timezone",
    "quiet hours",
    "limit",
    "convert",
    // Test steps and claims.
    "advance",
    "expect",
    "given",
    "update",
    "nothing else",
];

/// Candidates for the word ending at `pos`; returns the word's start.
pub fn complete(names: &Names, line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let start = before
        .rfind(|c: char| c.is_whitespace() || "{(,[".contains(c))
        .map_or(0, |i| i + 1);
    let word = &before[start..];
    let head: Vec<&str> = before.split_whitespace().collect();
    let first_word = start == 0 || before[..start].trim().is_empty();
    let pick = |items: &mut dyn Iterator<Item = String>| -> Vec<String> {
        let mut v: Vec<String> = items.filter(|c| c.starts_with(word)).collect();
        v.sort();
        v.dedup();
        v
    };
    if first_word && word.starts_with(':') {
        return (
            start,
            pick(
                &mut COMMANDS
                    .iter()
                    .map(|(c, _)| c.split(' ').next().unwrap_or(c).to_string()),
            ),
        );
    }
    if let Some(field) = word.strip_prefix("contact.") {
        let _ = field;
        return (
            start,
            pick(&mut names.fields.iter().map(|f| format!("contact.{f}"))),
        );
    }
    let command = head.first().copied().unwrap_or("");
    let arg_index = if before.ends_with(char::is_whitespace) {
        head.len()
    } else {
        head.len().saturating_sub(1)
    };
    match (command, arg_index) {
        (":use" | ":contact" | ":history" | ":journeys", 1) => {
            return (start, pick(&mut names.contacts.iter().cloned()));
        }
        (":event", 1 | 2) if !before.contains('{') => {
            let events = names.events.iter().map(|(e, _)| e.clone());
            let contacts = names.contacts.iter().cloned();
            return (start, pick(&mut events.chain(contacts)));
        }
        (":event", _) if before.contains('{') => {
            // Payload fields of the event named before the JSON, quoted.
            let ty = before[..before.find('{').unwrap_or(0)]
                .split_whitespace()
                .last()
                .unwrap_or("");
            return match names.events.iter().find(|(e, _)| e == ty) {
                Some((_, fields)) => json_keys(word, pos, fields),
                None => (start, Vec::new()),
            };
        }
        (":contact", _) if before.contains('{') => return json_keys(word, pos, &names.fields),
        (":trace", 1) => {
            return (
                start,
                pick(&mut ["on", "off"].iter().map(|s| s.to_string())),
            )
        }
        _ => {}
    }
    // A workflow's `on change exit|finish` line.
    let previous: Vec<&str> = head[..arg_index.min(head.len())]
        .iter()
        .rev()
        .take(2)
        .copied()
        .collect();
    match previous.as_slice() {
        ["on", "month" | "year"] => {}
        ["on", ..] => return (start, pick(&mut std::iter::once("change".to_string()))),
        ["change", "on", ..] => {
            return (
                start,
                pick(&mut ["exit", "finish"].iter().map(|s| s.to_string())),
            )
        }
        _ => {}
    }
    let calls = Builtin::ALL
        .iter()
        .map(|b| b.name())
        .chain(HISTORY_FUNCTIONS)
        .map(|f| format!("{f}("));
    let mut all = WORDS
        .iter()
        .map(|w| w.to_string())
        .chain(calls)
        .chain(names.workflows.iter().cloned())
        .chain(names.events.iter().map(|(e, _)| e.clone()));
    (start, pick(&mut all))
}

/// Keys of a JSON object being typed: the names starting with what follows
/// the opening quote, completed with `": `.
fn json_keys(word: &str, pos: usize, names: &[String]) -> (usize, Vec<String>) {
    let quoted = word.trim_start_matches('"');
    let mut v: Vec<String> = names
        .iter()
        .filter(|f| f.starts_with(quoted))
        .map(|f| format!("{f}\": "))
        .collect();
    v.sort();
    (pos - quoted.len(), v)
}

struct FlowHelper {
    names: Names,
    files: FilenameCompleter,
}

impl Completer for FlowHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        if line.trim_start().starts_with(":load ") {
            return self.files.complete(line, pos, ctx);
        }
        let (start, words) = complete(&self.names, line, pos);
        let pairs = words
            .into_iter()
            .map(|w| Pair {
                display: w.clone(),
                replacement: w,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for FlowHelper {
    type Hint = String;
}

impl Highlighter for FlowHelper {}

impl Validator for FlowHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Helper for FlowHelper {}

fn history_path() -> Option<std::path::PathBuf> {
    let dir = dirs::data_dir()?.join("nurture");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history.txt"))
}

/// The interactive loop on a terminal.
pub fn interactive(mut session: Session) -> rustyline::Result<()> {
    let mut rl: Editor<FlowHelper, rustyline::history::DefaultHistory> = Editor::new()?;
    rl.set_helper(Some(FlowHelper {
        names: session.names(),
        files: FilenameCompleter::new(),
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!("nurture repl: `:help` lists the commands, Ctrl-D leaves");
    loop {
        match rl.readline(&session.prompt()) {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(line.as_str());
                if let Some(h) = &history {
                    let _ = rl.append_history(h);
                }
                let reply = session.eval(&line);
                print!("{}", reply.text);
                let _ = std::io::stdout().flush();
                if reply.quit {
                    break;
                }
                if let Some(helper) = rl.helper_mut() {
                    helper.names = session.names();
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The plain loop for piped input: no prompt, the same replies.
/// Runs a piped session; `Ok(false)` when some input was refused.
pub fn piped(
    mut session: Session,
    input: impl BufRead,
    mut out: impl Write,
) -> std::io::Result<bool> {
    let mut pending = String::new();
    // The bracket depth of `pending`, kept line by line so a long input
    // is scanned once, not again at every line.
    let mut depth: i64 = 0;
    let mut all_ok = true;
    for line in input.lines() {
        let line = line?;
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(&line);
        depth += depth_change(&line);
        if depth > 0 {
            continue;
        }
        depth = 0;
        let reply = session.eval(&pending);
        all_ok &= !reply.failed;
        out.write_all(reply.text.as_bytes())?;
        pending.clear();
        if reply.quit {
            return Ok(all_ok);
        }
    }
    if !pending.trim().is_empty() {
        let reply = session.eval(&pending);
        all_ok &= !reply.failed;
        out.write_all(reply.text.as_bytes())?;
    }
    Ok(all_ok)
}

/// How much a line opens (positive) or closes brackets, outside strings
/// and comments (which end with their line).
fn depth_change(line: &str) -> i64 {
    crate::syntax::scan::scan(line)
        .map(|l| match l {
            crate::syntax::scan::Lexeme::Open { .. } => 1,
            crate::syntax::scan::Lexeme::Close { .. } => -1,
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            fields: vec!["email".into(), "score".into(), "phone".into()],
            events: vec![("purchase".into(), vec!["amount".into(), "order_id".into()])],
            workflows: vec!["welcome".into()],
            contacts: vec!["ana".into(), "ben".into()],
        }
    }

    #[test]
    fn completes_an_on_change_line() {
        let names = Names::default();
        let line = "workflow w { when signup on ";
        assert_eq!(complete(&names, line, line.len()).1, ["change"]);
        let line = "workflow w { when signup on change f";
        assert_eq!(complete(&names, line, line.len()).1, ["finish"]);
    }

    #[test]
    fn completes_what_each_position_takes() {
        let n = names();
        let cases: &[(&str, usize, &[&str])] = &[
            (":sch", 0, &[":schema"]),
            ("contact.sc", 0, &["contact.score"]),
            (":use a", 5, &["ana"]),
            (":event pu", 7, &["purchase"]),
            (":event purchase {\"am", 18, &["amount\": "]),
            (":contact ana {\"ph", 15, &["phone\": "]),
            (":trace o", 7, &["off", "on"]),
            ("wel", 0, &["welcome"]),
        ];
        for (line, start, want) in cases {
            let (s, got) = complete(&n, line, line.len());
            assert_eq!(
                (s, got.as_slice()),
                (
                    *start,
                    &want.iter().map(|w| w.to_string()).collect::<Vec<_>>()[..]
                ),
                "{line}"
            );
        }
    }
}
