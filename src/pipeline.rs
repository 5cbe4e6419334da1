//! The passes chained: parse, then check, as every command runs them.

use crate::ast::Program;
use crate::check::{self, Checked};
use crate::diagnostic::Code;
use crate::diagnostic::{self, Diagnostic};
use crate::source::SourceMap;
use crate::syntax;

/// A program that parsed (possibly with errors) and was checked.
pub struct Analysis {
    pub program: Program,
    pub checked: Checked,
    /// Syntax and type diagnostics together, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses and checks. Type checking runs even after syntax errors, on the
/// items that did parse, so one run reports as much as it can.
pub fn analyse(sources: &SourceMap) -> Analysis {
    let (program, mut diags) = syntax::parse_program(sources);
    let checked = check::check(&program);
    let syntax_failed = diags.iter().any(Diagnostic::is_error);
    diags.extend(
        checked
            .diagnostics
            .iter()
            .filter(|d| {
                // After a syntax error some names may be missing only because their
                // declaration failed to parse: keep the type errors that do not depend on that.
                !syntax_failed || !matches!(d.code, Code::UnknownEvent | Code::NoContactBlock)
            })
            .cloned(),
    );
    diagnostic::sort(&mut diags);
    Analysis {
        program,
        checked,
        diagnostics: diags,
    }
}

/// Diagnostics and a one-line description of the program.
pub fn check_sources(sources: &SourceMap) -> (Vec<Diagnostic>, String) {
    let a = analyse(sources);
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let user_events = a
        .checked
        .schema
        .events
        .iter()
        .filter(|e| !e.builtin)
        .count();
    let summary = format!(
        "{}, {}, {}",
        plural(sources.files.len(), "file"),
        plural(a.program.workflows().count(), "workflow"),
        plural(user_events, "event"),
    );
    (a.diagnostics, summary)
}
