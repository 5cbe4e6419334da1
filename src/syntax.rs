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

use crate::ast::{Expr, Item, Program};
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
                diags.push(d);
                match resume {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    (items, diags)
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
                    "nurture::syntax::unexpected-token",
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
