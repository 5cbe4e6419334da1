//! Parsing: `.flow` text to the AST, with syntax diagnostics.
//!
//! pest recognises (`syntax/grammar.rs`), `syntax/lower.rs` builds the AST
//! and `syntax/error.rs` words the failures. A file is parsed one top-level
//! item at a time: after a syntax error, parsing resumes at the next line
//! that starts a `contact`, `event` or `workflow`, so one run reports the
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

/// Parses every file of `sources`, in order, into one program.
pub fn parse_program(sources: &SourceMap) -> (Program, Vec<Diagnostic>) {
    let mut program = Program::default();
    let mut diags = Vec::new();
    for (id, file) in sources.files.iter().enumerate() {
        let (items, mut d) = parse_file(id as FileId, &file.text);
        program.items.extend(items);
        diags.append(&mut d);
    }
    (program, diags)
}

/// Parses the items of one file.
pub fn parse_file(file: FileId, text: &str) -> (Vec<Item>, Vec<Diagnostic>) {
    pest::set_error_detail(true);
    let mut items = Vec::new();
    let mut diags = Vec::new();
    let mut pos = 0;
    while pos <= text.len() {
        match FlowParser::parse(Rule::item_or_end, &text[pos..]) {
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
        match FlowParser::parse(Rule::item_or_end, &copy[start..]) {
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
    pest::set_error_detail(true);
    match FlowParser::parse(Rule::expr_only, text) {
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
        for kw in ["workflow", "event", "contact"] {
            if let Some(rest) = trimmed.strip_prefix(kw) {
                if rest.starts_with([' ', '\t', '{']) {
                    return Some(line_start + (line.len() - trimmed.len()));
                }
            }
        }
        line_start += line.find('\n')? + 1;
    }
}
