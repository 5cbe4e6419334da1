//! Turns pest's failures into diagnostics in the language's own words: the
//! expected tokens get friendly names, and a hint table recognises the
//! common mistakes (`=` for `==`, `3dayz`, a string left open, ...).

use super::grammar::Rule;
use super::scan::{scan, Lexeme};
use crate::diagnostic::Code;
use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Span};
use pest::error::{ErrorVariant, InputLocation};

/// What the parser expected at the failing position, in user terms.
struct Expected {
    items: Vec<String>,
    expression: bool,
    statement: bool,
    /// The only token that could follow was `(`: a bare name was read as a call.
    only_paren: bool,
    within: bool,
    duration: bool,
    close_brace: bool,
    open_brace: bool,
    /// An operator could have come next: the text so far is an expression.
    operator: bool,
}

/// Builds the diagnostic for a failure of parsing `text[offset..]`.
pub fn syntax_error(
    file: FileId,
    text: &str,
    offset: usize,
    err: &pest::error::Error<Rule>,
) -> Diagnostic {
    let rel = match (err.parse_attempts(), err.location.clone()) {
        (Some(a), _) => a.max_position,
        (None, InputLocation::Pos(p)) => p,
        (None, InputLocation::Span((s, _))) => s,
    };
    let mut pos = (offset + rel).min(text.len());
    // Failures inside a word (`3dayz`, `3 days`) are reported at the word's start.
    while pos > offset && text.as_bytes()[pos - 1].is_ascii_alphanumeric() {
        pos -= 1;
    }
    let expected = expected(err);
    let found = token_at(text, pos);
    let found_desc = if found.is_empty() {
        "end of file".to_string()
    } else {
        format!("`{found}`")
    };
    // At the end of the input there is no token to underline: point at the
    // last character written instead, so the label shows.
    let span = if found.is_empty() {
        let end = text[..pos].trim_end().len();
        let start = text[..end].char_indices().last().map_or(end, |(i, _)| i);
        Span::new(file, start, end)
    } else {
        Span::new(file, pos, pos + found.len())
    };

    if let Some(d) = unterminated_string(file, text, pos) {
        return d;
    }
    let prev = prev_token(text, pos);
    if expected.only_paren && is_word(&prev) && !is_keyword(&prev) {
        let start = text[..pos].trim_end().len() - prev.len();
        return Diagnostic::error(
            Code::BareName,
            Span::new(file, start, start + prev.len()),
            format!("`{prev}` is not a value"),
        )
        .with_label("a bare name")
        .with_help(format!(
            "contact attributes are written `contact.{prev}`, event fields `event.{prev}` or `trigger.{prev}`; functions are called as `{prev}(...)`"
        ));
    }
    let after = context(text, pos, &prev);
    let list = join_or(&expected.items);

    if let Some(d) = foreign_syntax(file, text, pos) {
        return d;
    }
    if expected.open_brace && after_workflow_name(&text[offset..pos]) {
        return Diagnostic::error(
            Code::UnexpectedToken,
            span,
            format!("expected `{{` after the workflow name, found {found_desc}"),
        )
        .with_label("expected `{` here")
        .with_help(
            "a workflow's headers and statements go between braces: `workflow NAME { when ... }`",
        );
    }
    if found.starts_with('=') && prev == "=" && expected.expression {
        return Diagnostic::error(
            Code::CompareInSet,
            Span::new(file, pos - 1, pos + 1),
            "`==` compares; it cannot assign",
        )
        .with_label("expected `=`")
        .with_help("to assign write `set contact.F = value`; to add or subtract, `+=` or `-=`");
    }
    // `set score = 5`: a field is written `contact.F`.
    if prev == "set" && is_word(&found) && !is_keyword(&found) {
        return Diagnostic::error(
            Code::BareName,
            span,
            format!("`set` needs a contact field, found `{found}`"),
        )
        .with_label("a bare name")
        .with_help(format!(
            "contact attributes are written `contact.{found}`: `set contact.{found} = ...`"
        ));
    }
    // `if x = 3`, `when e where event.n = 3`: an expression read so far, and
    // `=` where a comparison would go.
    if found.starts_with('=')
        && !found.starts_with("==")
        && (expected.expression || expected.open_brace || expected.operator)
    {
        return Diagnostic::error(Code::AssignInCondition, span, "`=` is not a comparison")
            .with_label("expected a comparison")
            .with_help("to compare values use `==`; `=` only assigns, in `set contact.F = ...`");
    }
    // `with { a: 1 b: 2 }`: a key and `:` where `,` or `}` was due.
    let key_follows = is_word(&found)
        && text[pos + found.len()..].trim_start().starts_with(':')
        && !text[pos + found.len()..].trim_start().starts_with("::");
    if key_follows && expected.close_brace {
        return Diagnostic::error(
            Code::UnexpectedToken,
            span,
            format!("expected `,` before `{found}:`"),
        )
        .with_label("a comma is missing before this entry")
        .with_help("entries are separated by commas: `with { a: 1, b: 2 }`");
    }
    // `send email "x" with a: 1`: the data goes in braces.
    if prev == "with" && expected.open_brace {
        return Diagnostic::error(
            Code::UnexpectedToken,
            span,
            format!("expected `{{` after `with`, found {found_desc}"),
        )
        .with_label("expected `{` here")
        .with_help("the data is written in braces: `with { key: value, ... }`");
    }
    if let Some((whole, len)) = bad_duration(text, pos, &found, &prev, expected.duration) {
        let span = Span::new(file, pos, pos + len);
        return Diagnostic::error(
            Code::BadDurationUnit,
            span,
            format!("`{whole}` is not a duration"),
        )
        .with_label(if whole.contains('.') { "not a whole number" } else { "unknown unit" })
        .with_help("durations are a whole number glued to a unit: `30s`, `15m`, `2h`, `3d`, `1w`, combinable as `1d 12h`");
    }
    let line_start = text[..pos.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let before = text.get(line_start..pos).unwrap_or("").trim_start();
    if expected.within && before.starts_with("wait for") && !before.contains('(') {
        return Diagnostic::error(
            Code::WaitForWithoutWithin,
            span,
            format!("expected `within` after `wait for {prev}`, found {found_desc}"),
        )
        .with_label("expected `within DURATION` here")
        .with_help(format!(
            "a `wait for` needs a time limit, as in `wait for {prev} within 2d`"
        ));
    }
    if found.is_empty() && expected.close_brace {
        let mut d = Diagnostic::error(
            Code::UnclosedBrace,
            span,
            "expected `}` before the end of the file",
        )
        .with_label("file ends here")
        .with_help("every `{` needs a matching `}`");
        if let Some(open) = unclosed_brace(text, offset) {
            d = d.with_related(Span::new(file, open, open + 1), "this `{` is never closed");
        }
        return d;
    }
    let mut d = Diagnostic::error(
        Code::UnexpectedToken,
        span,
        format!("expected {list}{after}, found {found_desc}"),
    )
    .with_label(if found.is_empty() {
        "unexpected end of file".to_string()
    } else {
        format!("unexpected {found_desc}")
    });
    if expected.expression && is_word(&found) && !is_keyword(&found) {
        d = d.with_help(format!(
            "contact attributes are written `contact.{found}`; event fields `event.{found}` or `trigger.{found}`"
        ));
    } else if let Some(kw) = close_keyword(&found, &expected.items, expected.statement) {
        d = d.with_help(format!("did you mean `{kw}`?"));
    } else if is_keyword(&found) && expected.items.iter().any(|i| i == "a name") {
        d = d.with_help(format!(
            "`{found}` is a keyword and cannot be used as a name"
        ));
    }
    d
}

const STATEMENT_WORDS: &[&str] = &[
    "send", "tag", "untag", "set", "add", "remove", "notify", "webhook", "wait", "if", "split",
    "stage", "exit", "convert",
];
const EXPRESSION_WORDS: &[&str] = &[
    "not", "true", "false", "now", "contact", "event", "trigger", "seen", "count",
];

fn expected(err: &pest::error::Error<Rule>) -> Expected {
    let mut items: Vec<String> = Vec::new();
    let push = |items: &mut Vec<String>, s: String| {
        if !items.contains(&s) {
            items.push(s);
        }
    };
    let mut expression = false;
    let mut statement = false;
    let mut operator = false;
    let mut category = false;
    let mut step = false;
    if let ErrorVariant::ParsingError { positives, .. } = &err.variant {
        for rule in positives {
            match rule_name(*rule) {
                Friendly::Step => step = true,
                Friendly::Name(n) => {
                    category |= !n.starts_with('`');
                    push(&mut items, n.to_string())
                }
                Friendly::Keyword(k) => push(&mut items, format!("`{k}`")),
                Friendly::Expression => expression = true,
                Friendly::Statement => statement = true,
                Friendly::Operator => operator = true,
                Friendly::Skip => {}
            }
        }
    }
    category |= expression;
    if step {
        // Inside a test, `contact` and `event` are steps, not items.
        items.retain(|i| i != TOP_LEVEL);
        items.insert(
            0,
            "a step (`at`, `advance`, `contact`, `update`, `given`, `event` or `expect`)".into(),
        );
        category = true;
    }
    let mut only_paren = false;
    if let Some(attempts) = err.parse_attempts() {
        let toks: Vec<String> = attempts
            .expected_tokens()
            .iter()
            .map(|t| t.to_string())
            .filter(|t| !t.trim().is_empty() && t != "//")
            .collect();
        only_paren = toks == ["("];
        for tok in attempts.expected_tokens() {
            let token = tok.to_string();
            if token.trim().is_empty() || token == "//" || token == "_" || token.contains("..") {
                continue;
            }
            let word = token.chars().all(|c| c.is_ascii_alphabetic());
            if word {
                let skip = category
                    || (statement && STATEMENT_WORDS.contains(&token.as_str()))
                    || (expression && EXPRESSION_WORDS.contains(&token.as_str()))
                    || token.len() == 1;
                if !skip {
                    push(&mut items, format!("`{token}`"));
                }
            } else if !matches!(
                token.as_str(),
                "+" | "-"
                    | "*"
                    | "/"
                    | "=="
                    | "!="
                    | "<"
                    | ">"
                    | "<="
                    | ">="
                    | "\""
                    | "@"
                    | "["
                    | "="
                    | "("
            ) || (token == "(" && !expression && items.is_empty())
            {
                push(&mut items, format!("`{token}`"));
            }
            if matches!(token.as_str(), "==" | "+" | "*") {
                operator = true;
            }
        }
    }
    let within = items.iter().any(|i| i == "`within`");
    let duration = items.iter().any(|i| i.starts_with("a duration"));
    let close_brace = items.iter().any(|i| i == "`}`");
    let open_brace = items.iter().any(|i| i == "`{`");
    if statement {
        items.insert(0, "a statement".into());
    }
    if expression {
        items.insert(0, "an expression".into());
    } else if operator {
        items.push("an operator".into());
    }
    if items.is_empty() {
        items.push("something else".into());
    }
    Expected {
        items,
        expression,
        statement,
        only_paren,
        within,
        duration,
        close_brace,
        open_brace,
        operator,
    }
}

/// What may start a top-level item.
const TOP_LEVEL: &str =
    "`contact`, `event`, `workflow`, `test`, `timezone`, `quiet hours` or `limit`";

enum Friendly {
    /// A step of a `test` block.
    Step,
    Name(&'static str),
    Keyword(&'static str),
    Expression,
    Statement,
    Operator,
    Skip,
}

fn rule_name(rule: Rule) -> Friendly {
    use Friendly::*;
    match rule {
        Rule::name
        | Rule::ident
        | Rule::event_ref
        | Rule::field_name
        | Rule::map_key
        | Rule::func_name => Name("a name"),
        Rule::channel => Name("a channel (`email`, `sms`, `push` or `webpush`)"),
        Rule::prim_type | Rule::type_expr | Rule::enum_type | Rule::set_type | Rule::list_type => {
            Name("a type")
        }
        Rule::string_lit | Rule::template => Name("a string in double quotes"),
        Rule::duration | Rule::duration_part => Name("a duration such as `2d`"),
        Rule::percent => Name("a share such as `50%`"),
        Rule::field_decl => Name("a field declaration (`name: type`)"),
        Rule::payload_field => Name("a payload field (`name: type`)"),
        Rule::annotation => Name("an annotation such as `@channel(email)`"),
        Rule::contact_field => Name("`contact.FIELD`"),
        Rule::assign_op => Name("`=`, `+=` or `-=`"),
        Rule::block => Name("`{`"),
        Rule::EOI => Name("end of file"),
        Rule::contact_block
        | Rule::event_decl
        | Rule::workflow
        | Rule::test_block
        | Rule::kw_contact
        | Rule::kw_event
        | Rule::kw_test
        | Rule::kw_timezone
        | Rule::timezone_decl
        | Rule::kw_quiet
        | Rule::quiet_decl
        | Rule::kw_limit
        | Rule::limit_decl
        | Rule::kw_workflow => Name(TOP_LEVEL),
        Rule::kw_at
        | Rule::kw_advance
        | Rule::kw_update
        | Rule::kw_given
        | Rule::kw_expect
        | Rule::step_at
        | Rule::step_advance
        | Rule::step_contact
        | Rule::step_update
        | Rule::step_given
        | Rule::step_event
        | Rule::step_expect => Step,
        Rule::test_id => Name("a contact id"),
        Rule::record => Name("`{`"),
        Rule::claim_action
        | Rule::claim_no
        | Rule::claim_nothing
        | Rule::claim_in
        | Rule::claim_not_in
        | Rule::claim_outcome
        | Rule::claim_expr => Name("a claim"),
        Rule::expr
        | Rule::condition
        | Rule::paren
        | Rule::list_lit
        | Rule::datetime_lit
        | Rule::float_lit
        | Rule::int_lit
        | Rule::bool_lit
        | Rule::history
        | Rule::call
        | Rule::path
        | Rule::now
        | Rule::path_root
        | Rule::op_not
        | Rule::op_neg
        | Rule::event_match => Expression,
        Rule::send_stmt
        | Rule::tag_stmt
        | Rule::untag_stmt
        | Rule::set_stmt
        | Rule::add_stmt
        | Rule::remove_stmt
        | Rule::notify_stmt
        | Rule::webhook_stmt
        | Rule::wait_for_stmt
        | Rule::wait_stmt
        | Rule::if_stmt
        | Rule::split_stmt
        | Rule::stage_stmt
        | Rule::exit_stmt => Statement,
        Rule::op_or
        | Rule::op_coalesce
        | Rule::op_and
        | Rule::op_in
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_le
        | Rule::op_ge
        | Rule::op_lt
        | Rule::op_gt
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div
        | Rule::op_is_set
        | Rule::op_is_not_set => Operator,
        Rule::kw_when | Rule::trigger => Keyword("when"),
        Rule::kw_where | Rule::where_clause => Keyword("where"),
        Rule::kw_for => Keyword("for"),
        Rule::kw_within | Rule::within_clause => Keyword("within"),
        Rule::kw_timeout | Rule::timeout_clause => Keyword("timeout"),
        Rule::kw_else | Rule::else_if | Rule::else_clause => Keyword("else"),
        Rule::kw_with | Rule::with_clause => Keyword("with"),
        Rule::kw_goal | Rule::goal => Keyword("goal"),
        Rule::kw_reenter | Rule::reenter => Keyword("reenter"),
        Rule::kw_never => Keyword("never"),
        Rule::on_change => Keyword("on change"),
        Rule::kw_change => Keyword("change"),
        Rule::kw_finish => Keyword("finish"),
        Rule::kw_always => Keyword("always"),
        Rule::kw_after | Rule::reenter_after => Keyword("after"),
        Rule::kw_inactive | Rule::trigger_inactive => Keyword("inactive"),
        Rule::kw_to => Keyword("to"),
        Rule::kw_from => Keyword("from"),
        Rule::kw_list => Keyword("list"),
        Rule::kw_audience => Keyword("audience"),
        Rule::kw_set
        | Rule::kw_send
        | Rule::kw_tag
        | Rule::kw_untag
        | Rule::kw_add
        | Rule::kw_remove
        | Rule::kw_notify
        | Rule::kw_webhook
        | Rule::kw_wait
        | Rule::kw_if
        | Rule::kw_split
        | Rule::kw_stage
        | Rule::kw_convert => Statement,
        Rule::kw_not => Keyword("not"),
        Rule::kw_exit | Rule::exit_when => Keyword("exit"),
        _ => Skip,
    }
}

/// A number followed by letters where a duration was due: `3dayz`, `3 days`,
/// or letters right after a number. Returns the text and its length from `pos`.
fn bad_duration(
    text: &str,
    pos: usize,
    found: &str,
    prev: &str,
    expected: bool,
) -> Option<(String, usize)> {
    let starts_digit = found.starts_with(|c: char| c.is_ascii_digit());
    if expected && starts_digit {
        let rest = &text[pos..];
        let mut digits = rest.chars().take_while(char::is_ascii_digit).count();
        // A fraction (`1.5d`) belongs to the number.
        if rest[digits..].starts_with('.') {
            digits += 1 + rest[digits + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .count();
        }
        let after = &rest[digits..];
        let gap = after.len() - after.trim_start_matches([' ', '\t']).len();
        let word: String = after[gap..]
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        if word.is_empty() {
            return Some((rest[..digits].to_string(), digits));
        }
        let len = digits + gap + word.len();
        return Some((rest[..len].to_string(), len));
    }
    if is_word(found) && !prev.is_empty() && prev.chars().all(|c| c.is_ascii_digit()) {
        let glued = pos > 0 && text.as_bytes()[pos - 1].is_ascii_digit();
        let whole = if glued {
            format!("{prev}{found}")
        } else {
            format!("{prev} {found}")
        };
        return Some((whole, found.len()));
    }
    None
}

/// A keyword the parser expected that `found` looks like a typo of.
fn close_keyword<'a>(found: &str, items: &'a [String], statement: bool) -> Option<&'a str> {
    if !is_word(found) {
        return None;
    }
    let mut words: Vec<&str> = items
        .iter()
        .flat_map(|i| i.split('`').skip(1).step_by(2))
        .filter(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
        .collect();
    if statement {
        words.extend(STATEMENT_WORDS);
    }
    crate::suggest::closest(found, words.iter().copied()).filter(|w| *w != found)
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

fn is_word(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
}

fn is_keyword(s: &str) -> bool {
    crate::vocabulary::KEYWORDS.contains(&s)
}

/// The token starting at `pos`: a word, a number, a two-character operator or one character.
fn token_at(text: &str, pos: usize) -> String {
    let rest = &text[pos..];
    let Some(c) = rest.chars().next() else {
        return String::new();
    };
    if c.is_alphanumeric() || c == '_' {
        return rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
    }
    for op in ["==", "!=", "<=", ">=", "+=", "-="] {
        if rest.starts_with(op) {
            return op.to_string();
        }
    }
    c.to_string()
}

/// The token that ends just before `pos`, skipping whitespace.
fn prev_token(text: &str, pos: usize) -> String {
    let before = text[..pos].trim_end();
    let Some(last) = before.chars().last() else {
        return String::new();
    };
    if last.is_alphanumeric() || last == '_' {
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
            .last()
            .map_or(before.len(), |(i, _)| i);
        before[start..].to_string()
    } else {
        last.to_string()
    }
}

/// " after the workflow name", " after `x`", or nothing.
fn context(text: &str, pos: usize, prev: &str) -> String {
    if prev.is_empty() {
        return String::new();
    }
    let before = text[..pos].trim_end();
    let head = before[..before.len() - prev.len()].trim_end();
    for (kw, what) in [("workflow", "workflow"), ("event", "event")] {
        if head.ends_with(kw) && is_word(prev) {
            return format!(" after the {what} name");
        }
    }
    if head.ends_with("contact") && prev == "contact" {
        return String::new();
    }
    format!(" after `{prev}`")
}

/// Whether `before` ends with `workflow NAME` and nothing else.
fn after_workflow_name(before: &str) -> bool {
    let words: Vec<&str> = before.split_whitespace().collect();
    matches!(words.as_slice(), [.., "workflow", name] if is_word(name))
}

/// Syntax from other languages, with the `.flow` way to write it.
const FOREIGN: &[(&str, &str, &str)] = &[
    ("&&", "`&&` is not an operator", "write `and`"),
    ("||", "`||` is not an operator", "write `or`"),
    ("=>", "`=>` is not an operator", "did you mean `>=`?"),
    ("elif", "`elif` is not a keyword", "write `else if`"),
    ("elsif", "`elsif` is not a keyword", "write `else if`"),
    (
        "#",
        "`#` does not start a comment",
        "comments start with `//`",
    ),
    (
        "!",
        "`!` is not an operator",
        "write `not` (and `!=` for \"not equal\")",
    ),
    (
        "%",
        "there is no `%` operator",
        "the operators are `+`, `-`, `*` and `/`",
    ),
];

/// A failure at a token another language uses, with a "write this" help.
fn foreign_syntax(file: FileId, text: &str, pos: usize) -> Option<Diagnostic> {
    let rest = &text[pos..];
    let (token, message, help) = FOREIGN.iter().find(|(t, _, _)| {
        rest.starts_with(t)
            && !(*t == "!" && rest.starts_with("!="))
            && !(t.starts_with('e')
                && rest[t.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    })?;
    Some(
        Diagnostic::error(
            Code::ForeignSyntax,
            Span::new(file, pos, pos + token.len()),
            *message,
        )
        .with_label("not `.flow` syntax")
        .with_help(*help),
    )
}

/// A string opened on the failing line and never closed.
fn unterminated_string(file: FileId, text: &str, pos: usize) -> Option<Diagnostic> {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    let line = &text[line_start..line_end];
    let open = scan(line).find_map(|l| match l {
        Lexeme::Str {
            start,
            closed: false,
        } => Some(start),
        _ => None,
    });
    let start = line_start + open?;
    if start > pos {
        return None;
    }
    Some(
        Diagnostic::error(
            Code::UnterminatedString,
            Span::new(file, start, line_end),
            "unterminated string",
        )
        .with_label("this string is never closed")
        .with_help("add the closing `\"` on the same line; strings cannot span lines"),
    )
}

/// The byte offset of the first `{` after `from` that is never closed.
fn unclosed_brace(text: &str, from: usize) -> Option<usize> {
    let mut stack = Vec::new();
    for l in scan(&text[from..]) {
        match l {
            Lexeme::Open { at, bracket: '{' } => stack.push(from + at),
            Lexeme::Close { bracket: '}', .. } => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.last().copied()
}
