//! Parsing one REPL input into a command.

use crate::syntax::scan::Lexeme;

/// What a line of REPL input asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command<'a> {
    Help,
    Load(&'a str),
    Reload,
    Schema,
    Workflows,
    /// `:contact ID {json}`; `json_at` is the byte offset of the JSON in the line.
    Contact {
        id: &'a str,
        json: &'a str,
        json_at: usize,
    },
    Use(&'a str),
    /// `:event [ID] TYPE {json}`
    Event {
        id: Option<&'a str>,
        ty: &'a str,
        json: &'a str,
        json_at: usize,
    },
    Advance(&'a str),
    /// `:time` shows the clock; `:time DATETIME` sets it.
    Time(Option<&'a str>),
    Journeys(Option<&'a str>),
    History(Option<&'a str>),
    Actions,
    Type(&'a str, usize),
    Trace(&'a str),
    Reset,
    /// `:state DB`: start over from a state, read-only.
    State(&'a str),
    Quit,
    /// A `workflow`, `event` or `contact` declaration.
    Declaration(&'a str),
    /// A step or claim of a `test` block: `at`, `advance`, `contact ID {}`,
    /// `update`, `given`, `event ID TYPE`, `expect ID: CLAIM`.
    Step(&'a str),
    /// A bare expression.
    Expr(&'a str),
    Empty,
    Unknown(&'a str),
}

/// The commands, with a one-line description each, for `:help` and completion.
pub const COMMANDS: &[(&str, &str)] = &[
    (":help", "this list"),
    (
        ":load PATH",
        "load a .flow file or directory (replaces the program)",
    ),
    (":reload", "read the program's files again"),
    (":schema", "the contact fields and the events"),
    (":workflows", "the workflows and their triggers"),
    (
        ":contact ID {json}",
        "create a contact (fires contact_created) or change one (contact_updated)",
    ),
    (":use ID", "make ID the current contact"),
    (
        ":event [ID] TYPE {json}",
        "an event for ID (default: the current contact); shows the actions it caused",
    ),
    (
        ":advance DURATION",
        "move the clock forward, firing timers, such as `:advance 1d 2h`",
    ),
    (
        ":time [DATETIME]",
        "the virtual clock and the contact's local time; with a datetime, set it",
    ),
    (
        ":journeys [ID]",
        "journeys in flight: workflow, where it stands, what it waits for",
    ),
    (":history [ID]", "the events of a contact"),
    (":actions", "every action so far"),
    (":type EXPR", "the type of an expression"),
    (
        ":trace on|off",
        "show lifecycle records (enter, wait, resume, end) with the actions",
    ),
    (
        ":reset",
        "forget contacts, events and time; keep the program",
    ),
    (
        ":state DB",
        "start over from a --state database (read only: changes stay in the session)",
    ),
    (":quit", "leave (Ctrl-D also leaves)"),
];

/// Splits `:name rest` into the name and the trimmed rest with its offset.
fn split(line: &str) -> (&str, &str, usize) {
    let trimmed = line.trim_start();
    let lead = line.len() - trimmed.len();
    match trimmed.find(char::is_whitespace) {
        Some(i) => {
            let rest = &trimmed[i..];
            let rest_trim = rest.trim_start();
            let at = lead + i + (rest.len() - rest_trim.len());
            (&trimmed[..i], rest_trim.trim_end(), at)
        }
        None => (trimmed.trim_end(), "", line.len()),
    }
}

fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Whether a line is a test step: a step keyword, or `contact` and `event`
/// followed by an id (a declaration follows them with `{` or one name).
fn is_step(line: &str) -> bool {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == '{' || c == ':')
        .filter(|w| !w.is_empty())
        .collect();
    let before_brace = line.split('{').next().unwrap_or("");
    let words_before = before_brace.split_whitespace().count();
    match words.first().copied() {
        Some("at" | "advance" | "update" | "given" | "expect") => words.len() > 1,
        Some("contact") => words_before == 2,
        Some("event") => words_before == 3,
        _ => false,
    }
}

pub fn parse(line: &str) -> Command<'_> {
    let trimmed = line.trim();
    // A comment alone (as in a test pasted into the session) does nothing.
    if trimmed.is_empty() || trimmed.starts_with("//") {
        return Command::Empty;
    }
    if !trimmed.starts_with(':') {
        if is_step(trimmed) {
            return Command::Step(line);
        }
        for kw in ["workflow", "event", "contact"] {
            if let Some(rest) = trimmed.strip_prefix(kw) {
                if rest.starts_with(|c: char| c.is_whitespace() || c == '{') {
                    return Command::Declaration(line);
                }
            }
        }
        return Command::Expr(line);
    }
    let (name, rest, at) = split(line);
    match name {
        ":help" | ":h" | ":?" => Command::Help,
        ":load" => Command::Load(rest),
        ":reload" => Command::Reload,
        ":schema" => Command::Schema,
        ":workflows" => Command::Workflows,
        ":contact" => {
            let (id, json, json_at) = split(rest);
            Command::Contact {
                id,
                json,
                json_at: at + json_at,
            }
        }
        ":use" => Command::Use(rest),
        ":event" => {
            let brace = rest.find('{').unwrap_or(rest.len());
            let words: Vec<&str> = rest[..brace].split_whitespace().collect();
            let (id, ty) = match words.as_slice() {
                [ty] => (None, *ty),
                [id, ty] => (Some(*id), *ty),
                _ => return Command::Unknown(line),
            };
            Command::Event {
                id,
                ty,
                json: rest[brace..].trim(),
                json_at: at + brace,
            }
        }
        ":advance" => Command::Advance(rest),
        ":time" => Command::Time(opt(rest)),
        ":journeys" => Command::Journeys(opt(rest)),
        ":history" => Command::History(opt(rest)),
        ":actions" => Command::Actions,
        ":type" => Command::Type(rest, at),
        ":trace" => Command::Trace(rest),
        ":reset" => Command::Reset,
        ":state" => Command::State(rest),
        ":quit" | ":q" | ":exit" => Command::Quit,
        _ => Command::Unknown(name),
    }
}

/// Whether the input is complete: braces and brackets balanced outside
/// strings and comments. Multi-line input continues while it is not.
pub fn is_complete(input: &str) -> bool {
    let mut depth: i64 = 0;
    for l in crate::syntax::scan::scan(input) {
        match l {
            Lexeme::Open { .. } => depth += 1,
            Lexeme::Close { .. } => depth -= 1,
            Lexeme::Str { .. } | Lexeme::Comment { .. } => {}
        }
    }
    depth <= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse(":use c1"), Command::Use("c1"));
        assert_eq!(
            parse(":event c1 purchase {\"amount\": 1.0}"),
            Command::Event {
                id: Some("c1"),
                ty: "purchase",
                json: "{\"amount\": 1.0}",
                json_at: 19
            }
        );
        assert_eq!(
            parse(":event unsubscribed"),
            Command::Event {
                id: None,
                ty: "unsubscribed",
                json: "",
                json_at: 19
            }
        );
        assert_eq!(
            parse(":contact c1 {\"a\":1}"),
            Command::Contact {
                id: "c1",
                json: "{\"a\":1}",
                json_at: 12
            }
        );
        assert_eq!(
            parse("contact.score + 1"),
            Command::Expr("contact.score + 1")
        );
        assert_eq!(parse("workflow w {"), Command::Declaration("workflow w {"));
        assert_eq!(parse("contact {"), Command::Declaration("contact {"));
        assert_eq!(
            parse("event ping { n: int }"),
            Command::Declaration("event ping { n: int }")
        );
        assert_eq!(
            parse("event ping {}"),
            Command::Declaration("event ping {}")
        );
        for step in [
            "contact ana { email: \"a@x.com\" }",
            "event ana ping { n: 1 }",
            "event ana ping",
            "update ana { score: 1 }",
            "given ana { email: \"a@x.com\" }",
            "at @2026-03-01T09:00:00Z",
            "advance 1d",
            "expect ana: send email",
        ] {
            assert_eq!(parse(step), Command::Step(step), "{step}");
        }
        assert_eq!(parse(":frobnicate"), Command::Unknown(":frobnicate"));
    }

    #[test]
    fn completeness_follows_braces() {
        assert!(!is_complete("workflow w {"));
        assert!(is_complete("workflow w { when x }"));
        assert!(is_complete("notify \"a\" \"{ not a brace\""));
        assert!(!is_complete("workflow w { // }"));
    }
}
