//! `nurture test PATH`: runs the program's `test` blocks.

use super::{emit, Format};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::{load_sources, SourceMap};
use crate::testing::{self, TestRun};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// A `.flow` file, or a directory whose `*.flow` files form one program.
    pub path: PathBuf,
    /// Run only the tests whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// `human`: a line per test, then each failure with its source and the
    /// actions the contact was sent; `json`: one object per test, a line
    /// each (`name`, `passed`, `file`, `line`, `message`).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(args: &TestArgs) -> ExitCode {
    let sources = match load_sources(&args.path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let analysis = crate::pipeline::analyse(&sources);
    if analysis.diagnostics.iter().any(Diagnostic::is_error) {
        emit(&analysis.diagnostics, &sources, Format::Human);
        eprintln!(
            "error: `{}` has errors; no test was run",
            args.path.display()
        );
        return ExitCode::from(2);
    }
    let prog = Arc::new(crate::runtime::compile(
        &analysis.program,
        &analysis.checked.schema,
    ));
    let runs: Vec<TestRun> = analysis
        .program
        .tests()
        .filter(|t| {
            args.filter
                .as_deref()
                .is_none_or(|f| t.name.value.contains(f))
        })
        .map(|t| testing::run(t, &prog))
        .collect();
    let failed = runs.iter().filter(|r| r.failure.is_some()).count();
    match args.format {
        Format::Human => human(&runs, &sources),
        Format::Json => json(&runs, &sources),
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn human(runs: &[TestRun], sources: &SourceMap) {
    use std::io::Write as _;
    let mut out = String::new();
    for r in runs {
        let verdict = if r.failure.is_some() { "FAILED" } else { "ok" };
        out.push_str(&format!("test {} ... {verdict}\n", r.name));
    }
    let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
    for r in runs {
        let Some(f) = &r.failure else { continue };
        out.push_str(&format!("\n---- {} ----\n", r.name));
        let mut d = Diagnostic::error(Code::TestFailed, f.span, f.message.clone())
            .with_label("this failed");
        if let Some(c) = &f.contact {
            d = d.with_help(if f.actions.is_empty() {
                format!("no action was emitted for `{c}`")
            } else {
                format!(
                    "actions emitted for `{c}`:\n{}",
                    f.actions
                        .iter()
                        .map(|a| format!("  {a}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            });
        }
        out.push_str(&d.render(sources, color, 100));
    }
    let passed = runs.len() - runs.iter().filter(|r| r.failure.is_some()).count();
    out.push_str(&format!(
        "\n{passed} passed, {} failed\n",
        runs.len() - passed
    ));
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
}

fn json(runs: &[TestRun], sources: &SourceMap) {
    for r in runs {
        let file = sources.file(r.span.file);
        let (line, _) = file.line_col(r.span.start as usize);
        let (fline, message) = match &r.failure {
            Some(f) => (Some(file_line(sources, f.span)), Some(f.message.clone())),
            None => (None, None),
        };
        println!(
            "{}",
            serde_json::json!({
                "name": r.name,
                "passed": r.failure.is_none(),
                "file": file.name,
                "line": line,
                "message": message,
                "failed_at": fline,
            })
        );
    }
}

/// `file:line:column` of a span.
fn file_line(sources: &SourceMap, span: crate::source::Span) -> String {
    let f = sources.file(span.file);
    let (line, col) = f.line_col(span.start as usize);
    format!("{}:{line}:{col}", f.name)
}
