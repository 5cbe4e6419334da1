//! Parsing: `.flow` text to the AST, with syntax diagnostics.
//!
//! pest recognises (`syntax/grammar.rs`), `syntax/lower.rs` builds the AST
//! and `syntax/error.rs` words the failures. A file is parsed one top-level
//! item at a time: after a syntax error, parsing resumes at the next line
//! that starts a `contact`, `event`, `workflow` or `test`, so one run reports the
//! errors of every item.

mod error;
mod grammar;
mod lower;
pub mod scan;

use crate::ast::{Expr, Item, Program};
use crate::diagnostic::Code;
use crate::diagnostic::Diagnostic;
use crate::source::{FileId, SourceMap};
use grammar::{FlowParser, Rule};
use pest::Parser;

/// How deep brackets and blocks (`(`, `[`, `{`) may nest in a file.
pub const MAX_NESTING: usize = 100;

/// The stack of the thread that parses: pest and the lowering recurse once
/// per nesting level and per chained operator, so a long chain needs room
/// before the depth limits can refuse it.
const PARSER_STACK: usize = 256 << 20;

/// Parses every file of `sources`, in order, into one program.
pub fn parse_program(sources: &SourceMap) -> (Program, Vec<Diagnostic>) {
    let mut program = Program::default();
    let mut diags = Vec::new();
    // One parser thread for the whole program.
    let parsed = with_parser_stack(|| {
        sources
            .files
            .iter()
            .enumerate()
            .map(|(id, file)| {
                let id = id as FileId;
                match nesting_error(id, &file.text) {
                    Some(d) => (Vec::new(), vec![d]),
                    None => parse_file_here(id, &file.text),
                }
            })
            .collect::<Vec<_>>()
    });
    for (items, mut d) in parsed {
        program.items.extend(items);
        diags.append(&mut d);
    }
    (program, diags)
}

/// Runs `f` on a thread with a stack large enough for any input the depth
/// limits let through (on this thread if none can be started).
fn with_parser_stack<T: Send>(f: impl Fn() -> T + Sync) -> T {
    let f = &f;
    let spawned = std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("parser".into())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, f)
            .ok()?;
        match handle.join() {
            Ok(out) => Some(out),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    spawned.unwrap_or_else(f)
}

/// A bracket or block nested deeper than [`MAX_NESTING`].
fn nesting_error(file: FileId, text: &str) -> Option<Diagnostic> {
    let mut depth = 0usize;
    for l in scan::scan(text) {
        match l {
            scan::Lexeme::Open { at, .. } => {
                depth += 1;
                if depth > MAX_NESTING {
                    let span = crate::source::Span::new(file, at, at + 1);
                    return Some(
                        Diagnostic::error(Code::NestedTooDeeply, span, "nested too deeply")
                            .with_label(format!("bracket or block number {depth} inside one another"))
                            .with_help(format!(
                                "brackets and blocks may nest at most {MAX_NESTING} deep; split the workflow or the expression"
                            )),
                    );
                }
            }
            scan::Lexeme::Close { .. } => depth = depth.saturating_sub(1),
            scan::Lexeme::Str { .. } | scan::Lexeme::Comment { .. } => {}
        }
    }
    None
}

/// Parses the items of one file; a file nested deeper than [`MAX_NESTING`]
/// gives that one error.
pub fn parse_file(file: FileId, text: &str) -> (Vec<Item>, Vec<Diagnostic>) {
    if let Some(d) = nesting_error(file, text) {
        return (Vec::new(), vec![d]);
    }
    with_parser_stack(|| parse_file_here(file, text))
}

/// Parses `text` as `rule`. pest's error detail (what was expected, in
/// which rule) costs much on every parse, so it is asked for only when a
/// parse fails, by parsing again.
fn parse_rule(
    rule: Rule,
    text: &str,
) -> Result<pest::iterators::Pairs<'_, Rule>, Box<pest::error::Error<Rule>>> {
    pest::set_error_detail(false);
    match FlowParser::parse(rule, text) {
        Ok(pairs) => Ok(pairs),
        Err(_) => {
            pest::set_error_detail(true);
            let again = FlowParser::parse(rule, text);
            pest::set_error_detail(false);
            again.map_err(Box::new)
        }
    }
}

fn parse_file_here(file: FileId, text: &str) -> (Vec<Item>, Vec<Diagnostic>) {
    let mut items = Vec::new();
    let mut diags = Vec::new();
    let mut pos = 0;
    while pos <= text.len() {
        match parse_rule(Rule::item_or_end, &text[pos..]) {
            Ok(mut pairs) => {
                let Some(entry) = pairs.next() else { break };
                let end = entry.as_span().end();
                let Some(item) = entry.into_inner().find(|p| p.as_rule() != Rule::EOI) else {
                    break;
                };
                let mut lower = lower::Lower::new(file, pos);
                if let Some(item) = lower.lower_item(item) {
                    items.push(item);
                }
                diags.append(&mut lower.diags);
                if end == 0 {
                    break;
                }
                pos += end;
            }
            Err(e) => {
                let d = error::syntax_error(file, text, pos, &e);
                let resume = resume_point(text, (d.span.start as usize).max(pos));
                let end = resume.unwrap_or(text.len());
                diags.push(d);
                more_errors(file, text, pos, end, &mut diags);
                match resume {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    (items, diags)
}

/// Finds further syntax errors in the item at `start..end` after its first
/// one: the failing line is blanked out (offsets stay the same) and the item
/// parsed again, as long as the blanked line holds balanced braces (so the
/// blanking cannot invent an error) and the errors move forward.
fn more_errors(file: FileId, text: &str, start: usize, end: usize, diags: &mut Vec<Diagnostic>) {
    const MAX_PER_ITEM: usize = 10;
    let mut copy = text[..end].to_string();
    for _ in 0..MAX_PER_ITEM {
        let Some(last) = diags.last() else { return };
        let at = last.span.start as usize;
        let line_start = copy[..at.min(copy.len())].rfind('\n').map_or(0, |i| i + 1);
        let line_end = copy[line_start..]
            .find('\n')
            .map_or(copy.len(), |i| line_start + i);
        let line = &copy[line_start..line_end];
        let opens = line.matches(['{', '[', '(']).count();
        let closes = line.matches(['}', ']', ')']).count();
        let blank: String = if line_start < start {
            return;
        } else if opens == closes {
            // Same byte length, so every offset stays put.
            " ".repeat(line.len())
        } else if closes == 0 && opens == 1 && line.trim_end().ends_with('{') && line.len() >= 9 {
            // A line that opens a block becomes `if true {`, so the block still parses.
            format!("if true{}{{", " ".repeat(line.len() - 8))
        } else {
            return;
        };
        copy.replace_range(line_start..line_end, &blank);
        match parse_rule(Rule::item_or_end, &copy[start..]) {
            Ok(_) => return,
            Err(e) => {
                let d = error::syntax_error(file, &copy, start, &e);
                // The same expectation again means the blanked line did not hold the mistake.
                let expects = |m: &str| m.split(", found").next().unwrap_or("").to_string();
                let same = diags
                    .last()
                    .is_some_and(|l| expects(&l.message) == expects(&d.message));
                if (d.span.start as usize) <= line_end || d.code == Code::UnclosedBrace || same {
                    return;
                }
                diags.push(d);
            }
        }
    }
}

/// Parses a single expression (the REPL's bare expressions).
pub fn parse_expr(file: FileId, text: &str) -> Result<Expr, Box<Diagnostic>> {
    if let Some(d) = nesting_error(file, text) {
        return Err(Box::new(d));
    }
    with_parser_stack(|| parse_expr_here(file, text))
}

fn parse_expr_here(file: FileId, text: &str) -> Result<Expr, Box<Diagnostic>> {
    match parse_rule(Rule::expr_only, text) {
        Ok(mut pairs) => {
            let expr = pairs
                .next()
                .and_then(|p| p.into_inner().find(|p| p.as_rule() == Rule::expr));
            let mut lower = lower::Lower::new(file, 0);
            let out = expr.map(|e| lower.lower_expr(e));
            if let Some(d) = lower.diags.into_iter().next() {
                return Err(Box::new(d));
            }
            out.ok_or_else(|| {
                Box::new(Diagnostic::error(
                    Code::UnexpectedToken,
                    crate::source::Span::new(file, 0, text.len()),
                    "expected an expression",
                ))
            })
        }
        Err(e) => Err(Box::new(error::syntax_error(file, text, 0, &e))),
    }
}

/// The start of the first line after `after` that begins a top-level item.
fn resume_point(text: &str, after: usize) -> Option<usize> {
    let mut line_start = text[after..].find('\n').map(|i| after + i + 1)?;
    loop {
        let line = &text[line_start..];
        let trimmed = line.trim_start();
        for kw in [
            "workflow", "event", "contact", "test", "timezone", "quiet", "limit",
        ] {
            if let Some(rest) = trimmed.strip_prefix(kw) {
                if rest.starts_with([' ', '\t', '{']) {
                    return Some(line_start + (line.len() - trimmed.len()));
                }
            }
        }
        line_start += line.find('\n')? + 1;
    }
}
