//! `nurture test PATH`: runs the program's `test` blocks.

use super::{emit, Format};
use crate::diagnostic::{Code, Diagnostic};
use crate::runtime::Coverage;
use crate::source::{load_sources, SourceMap};
use crate::testing::{self, TestRun, WorkflowCoverage};
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
    /// Report per workflow the statements run by some test out of all, the
    /// branches taken out of all (each `if`/`else if`/`else` arm, an absent
    /// `else` too, each `split` arm, a `wait for`'s received and timeout
    /// paths), and the lines never run.
    #[arg(long)]
    pub coverage: bool,
    /// Write the coverage in lcov format to FILE, for editors and CI
    /// services (implies --coverage).
    #[arg(long, value_name = "FILE")]
    pub coverage_lcov: Option<PathBuf>,
}

pub fn run(args: &TestArgs) -> ExitCode {
    let sources = match load_sources(&args.path) {
        Ok(s) => s,
        Err(e) => {
            say!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let analysis = crate::pipeline::analyse(&sources);
    if analysis.diagnostics.iter().any(Diagnostic::is_error) {
        emit(&analysis.diagnostics, &sources, Format::Human);
        say!(
            "error: `{}` has errors; no test was run",
            args.path.display()
        );
        return ExitCode::from(2);
    }
    let cover = args.coverage || args.coverage_lcov.is_some();
    let prog = Arc::new(crate::runtime::Compiled::of(
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
        .map(|t| testing::run(t, &prog, cover))
        .collect();
    let failed = runs.iter().filter(|r| r.failure.is_some()).count();
    let report = cover.then(|| {
        let mut all = Coverage::new(prog.workflows.iter().map(|w| w.code.len()));
        for c in runs.iter().filter_map(|r| r.coverage.as_ref()) {
            all.merge(c);
        }
        testing::coverage_report(&prog, &all)
    });
    if let (Some(path), Some(report)) = (&args.coverage_lcov, &report) {
        // lcov has no escapes: a file name with a line break (or another
        // control character) would forge records of its own.
        // A name that was not UTF-8 reads with U+FFFD in it: lcov would
        // name no file.
        if let Some(f) = sources
            .files
            .iter()
            .find(|f| f.name.chars().any(|c| c.is_control() || c == '\u{fffd}'))
        {
            say!(
                "error: cannot write `{}`: the file name `{}` holds a control character (a line break?) or bytes that are not UTF-8, which lcov cannot carry; rename the file",
                path.display(),
                crate::suggest::echo(&f.name)
            );
            return ExitCode::from(2);
        }
        if let Err(e) = std::fs::write(path, lcov(report, &sources)) {
            say!("error: cannot write `{}`: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    match args.format {
        Format::Human => human(&runs, report.as_deref(), &sources),
        Format::Json => json(&runs, report.as_deref(), &sources),
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn human(runs: &[TestRun], report: Option<&[WorkflowCoverage]>, sources: &SourceMap) {
    use std::io::Write as _;
    let mut out = String::new();
    for r in runs {
        let verdict = if r.failure.is_some() { "FAILED" } else { "ok" };
        out.push_str(&format!(
            "test {} ... {verdict}\n",
            crate::suggest::echo_whole(&r.name)
        ));
    }
    let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
    for r in runs {
        let Some(f) = &r.failure else { continue };
        out.push_str(&format!(
            "\n---- {} ----\n",
            crate::suggest::echo_whole(&r.name)
        ));
        let mut d = Diagnostic::error(Code::TestFailed, f.span, f.message.clone())
            .with_label("this failed");
        if let Some(c) = &f.contact {
            let list = |items: &[String]| {
                items
                    .iter()
                    .map(|a| format!("  {a}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let mut help = if f.actions.is_empty() {
                format!("no action was emitted for `{c}`")
            } else {
                format!("actions emitted for `{c}`:\n{}", list(&f.actions))
            };
            if !f.withheld.is_empty() {
                help.push_str(&format!(
                    "\nsends not emitted for `{c}`:\n{}",
                    list(&f.withheld)
                ));
            }
            d = d.with_help(help);
        }
        out.push_str(&d.render(sources, color, 100));
    }
    if let Some(report) = report {
        out.push_str("\ncoverage:\n");
        let width = report.iter().map(|w| w.name.len()).max().unwrap_or(8);
        for w in report {
            out.push_str(&format!(
                "  {:width$}  statements {:>3}/{:<3} {:>6}   branches {:>3}/{:<3} {:>6}\n",
                w.name,
                w.statements.0,
                w.statements.1,
                percent(w.statements),
                w.branches.0,
                w.branches.1,
                percent(w.branches),
            ));
            let never = never_run(w, sources);
            if !never.is_empty() {
                out.push_str(&format!("    never run: {}\n", never.join(", ")));
            }
        }
    }
    let passed = runs.len() - runs.iter().filter(|r| r.failure.is_some()).count();
    out.push_str(&format!(
        "\n{passed} passed, {} failed\n",
        runs.len() - passed
    ));
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
}

fn json(runs: &[TestRun], report: Option<&[WorkflowCoverage]>, sources: &SourceMap) {
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
    if let Some(report) = report {
        let workflows: Vec<serde_json::Value> = report
            .iter()
            .map(|w| {
                serde_json::json!({
                    "workflow": w.name,
                    "statements": { "run": w.statements.0, "total": w.statements.1 },
                    "branches": { "taken": w.branches.0, "total": w.branches.1 },
                    "never_run": never_run(w, sources),
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "coverage": workflows }));
    }
}

fn percent((done, all): (usize, usize)) -> String {
    if all == 0 {
        "-".into()
    } else {
        format!("{:.1}%", done as f64 * 100.0 / all as f64)
    }
}

/// The lines of the statements never run, per file, in order, runs of
/// lines joined: `lead_nurturing.flow:16, 24, 33-41`.
fn never_run(w: &WorkflowCoverage, sources: &SourceMap) -> Vec<String> {
    let mut lines: Vec<(crate::source::FileId, usize)> = w
        .never_run()
        .map(|s| (s.file, sources.file(s.file).line_col(s.start as usize).0))
        .collect();
    lines.sort_unstable();
    lines.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let file = lines[i].0;
        let mut runs: Vec<String> = Vec::new();
        while i < lines.len() && lines[i].0 == file {
            let start = lines[i].1;
            let mut end = start;
            while i + 1 < lines.len() && lines[i + 1].0 == file && lines[i + 1].1 == end + 1 {
                end += 1;
                i += 1;
            }
            runs.push(if end > start {
                format!("{start}-{end}")
            } else {
                start.to_string()
            });
            i += 1;
        }
        out.push(format!("{}:{}", sources.file(file).name, runs.join(", ")));
    }
    out
}

/// The coverage in lcov's format: per source file, a `DA` line per line
/// holding a statement and a `BRDA` line per branch.
fn lcov(report: &[WorkflowCoverage], sources: &SourceMap) -> String {
    use std::collections::BTreeMap;
    // file -> line -> ran; file -> [(line, block, branch, taken)]
    let mut lines: BTreeMap<crate::source::FileId, BTreeMap<usize, bool>> = BTreeMap::new();
    let mut branches: BTreeMap<crate::source::FileId, Vec<(usize, usize, usize, bool)>> =
        BTreeMap::new();
    let line = |s: crate::source::Span| sources.file(s.file).line_col(s.start as usize).0;
    for w in report {
        for (span, ran) in &w.statement_spans {
            *lines
                .entry(span.file)
                .or_default()
                .entry(line(*span))
                .or_default() |= *ran;
        }
        let mut block = 0;
        // Spans compare equal whatever their place (the tree's equality is
        // structural): the place itself tells one choice from the next.
        let mut last: Option<(crate::source::FileId, u32)> = None;
        let mut index = 0;
        for (span, taken) in &w.branch_spans {
            if last != Some((span.file, span.start)) {
                block += 1;
                index = 0;
                last = Some((span.file, span.start));
            }
            branches
                .entry(span.file)
                .or_default()
                .push((line(*span), block, index, *taken));
            index += 1;
        }
    }
    let mut out = String::from("TN:\n");
    for (file, ls) in &lines {
        out.push_str(&format!("SF:{}\n", sources.file(*file).name));
        let bs = branches.get(file).map(Vec::as_slice).unwrap_or(&[]);
        for (l, block, branch, taken) in bs {
            out.push_str(&format!("BRDA:{l},{block},{branch},{}\n", u8::from(*taken)));
        }
        out.push_str(&format!(
            "BRF:{}\nBRH:{}\n",
            bs.len(),
            bs.iter().filter(|b| b.3).count()
        ));
        for (l, ran) in ls {
            out.push_str(&format!("DA:{l},{}\n", u8::from(*ran)));
        }
        out.push_str(&format!(
            "LF:{}\nLH:{}\nend_of_record\n",
            ls.len(),
            ls.values().filter(|r| **r).count()
        ));
    }
    out
}

/// `file:line:column` of a span.
fn file_line(sources: &SourceMap, span: crate::source::Span) -> String {
    let f = sources.file(span.file);
    let (line, col) = f.line_col(span.start as usize);
    format!("{}:{line}:{col}", f.name)
}
