//! The passes chained: parse, then check, as every command runs them.

use crate::ast::{Item, Program};
use crate::check::{self, Checked};
use crate::diagnostic::Code;
use crate::diagnostic::{self, Diagnostic};
use crate::source::{FileId, SourceMap};
use crate::syntax;
use std::sync::Arc;

/// A program that parsed (possibly with errors) and was checked.
pub struct Analysis {
    pub program: Program,
    pub checked: Checked,
    /// Syntax and type diagnostics together, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

/// Files parsed before, by file id and text: a session that adds a file
/// at a time (the REPL) parses each once.
#[derive(Default)]
pub struct ParseCache(std::collections::HashMap<(FileId, Arc<str>), Parsed>);

impl ParseCache {
    /// The parses kept.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One file's items and syntax diagnostics.
type Parsed = (Vec<Item>, Vec<Diagnostic>);

/// Parses and checks. Type checking runs even after syntax errors, on the
/// items that did parse, so one run reports as much as it can.
pub fn analyse(sources: &SourceMap) -> Analysis {
    let (program, diags) = syntax::parse_program(sources);
    check_parsed(program, diags)
}

/// [`analyse`], parsing only the files `cache` has not seen.
pub fn analyse_cached(sources: &SourceMap, cache: &mut ParseCache) -> Analysis {
    let mut program = Program::default();
    let mut diags = Vec::new();
    for (id, file) in sources.files.iter().enumerate() {
        let key = (id as FileId, Arc::clone(&file.text));
        let (items, d) = cache
            .0
            .entry(key)
            .or_insert_with(|| syntax::parse_file(id as FileId, &file.text));
        program.items.extend(items.iter().cloned());
        diags.extend(d.iter().cloned());
    }
    check_parsed(program, diags)
}

/// Adds the last file of `sources` to an analysed program: only that file
/// is parsed; the whole program is checked again. When there are errors,
/// `analysis` is left as it was and the diagnostics are returned.
pub fn add_last_file(analysis: &mut Analysis, sources: &SourceMap) -> Result<(), Vec<Diagnostic>> {
    let id = sources.files.len() - 1;
    let (items, syntax) = syntax::parse_file(id as FileId, &sources.files[id].text);
    let before = analysis.program.items.len();
    analysis.program.items.extend(items);
    let program = std::mem::take(&mut analysis.program);
    let next = check_parsed(program, syntax);
    if next.diagnostics.iter().any(Diagnostic::is_error) {
        let Analysis {
            mut program,
            diagnostics,
            ..
        } = next;
        program.items.truncate(before);
        analysis.program = program;
        return Err(diagnostics);
    }
    *analysis = next;
    Ok(())
}

fn check_parsed(program: Program, mut diags: Vec<Diagnostic>) -> Analysis {
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

/// What a state records of `program` as compiled: the runtime's typed
/// record, with what only the front end knows (each workflow's fingerprint,
/// each instruction's and each wait's `file:line`, each wait's text).
pub fn program_record(
    program: &Program,
    sources: &SourceMap,
    compiled: &crate::runtime::Compiled,
) -> crate::runtime::state::ProgramRecord {
    // The file's own name: a state does not depend on where the program
    // was run from.
    let place = |s: &crate::source::Span| {
        let f = sources.file(s.file);
        let name = std::path::Path::new(&f.name)
            .file_name()
            .map_or(f.name.clone(), |n| n.to_string_lossy().into_owned());
        format!("{name}:{}", f.line_col(s.start as usize).0)
    };
    let places = compiled
        .workflows
        .iter()
        .map(|w| w.spans.iter().map(place).collect())
        .collect();
    // Each wait statement's text, by its span.
    let mut texts = std::collections::HashMap::new();
    for w in program.workflows() {
        crate::ast::walk::each_stmt(&w.body, &mut |s| {
            if let Some(text) = crate::fmt::wait_head(s) {
                let unnamed = crate::fmt::wait_head(&crate::ast::Stmt {
                    name: None,
                    ..s.clone()
                })
                .unwrap_or_default();
                texts.insert((s.span.file, s.span.start), (text, unnamed));
            }
        });
    }
    let waits = compiled
        .workflows
        .iter()
        .map(|w| {
            w.waits
                .iter()
                .map(|wait| {
                    let (text, unnamed) = texts
                        .get(&(wait.span.file, wait.span.start))
                        .cloned()
                        .unwrap_or_default();
                    crate::runtime::state::WaitRecord {
                        name: wait.name.as_ref().map(|n| n.to_string()),
                        stands: wait.stands,
                        place: place(&wait.span),
                        text,
                        unnamed,
                    }
                })
                .collect()
        })
        .collect();
    crate::runtime::state::ProgramRecord::new(
        compiled,
        crate::fmt::workflow_fingerprints(program, sources),
        places,
        waits,
    )
}
