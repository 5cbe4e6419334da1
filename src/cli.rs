//! The command line: argument parsing and dispatch, one file per subcommand.

/// `eprintln!` that never panics: when the reader of standard error has
/// gone away (`nurture run ... 2>&1 | head`), the message is dropped, as
/// output to a closed standard output is, instead of aborting the run.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that never panics (see `say!`).
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod check;
mod diff;
mod fmt;
mod inspect;
mod lint;
mod lsp;
mod repl;
mod run;
mod serve;
mod state;
mod test;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// Workflows as code for marketing automation: check, lint, run and explore
/// `.flow` programs.
#[derive(Parser, Debug)]
#[command(name = "nurture", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and type-check a program (a `.flow` file or a directory of them).
    ///
    /// Exits 0 when the program is clean, 1 when it has errors and 2 when it
    /// cannot be read. Warnings do not change the exit code.
    Check(check::CheckArgs),
    /// Check a program, then run the lint rules for marketing mistakes.
    ///
    /// Exits 1 on errors, or on warnings with `--deny warnings`. Rules can be
    /// silenced with `// nurture:allow(rule)` and given levels in a
    /// `nurture.toml` beside the program.
    #[command(
        override_usage = "nurture lint [OPTIONS] PATH\n       nurture lint --list-rules\n       nurture lint --explain RULE"
    )]
    Lint(lint::LintArgs),
    /// Run a program against contact events in virtual time.
    ///
    /// Actions go to stdout as JSON Lines, in order of emission; a summary
    /// goes to stderr. Exits 1 when the program has errors and 2 on a bad
    /// input record (with --on-error abort) or an unreadable file.
    Run(run::RunArgs),
    /// Try workflows interactively: contacts, events and virtual time.
    ///
    /// Type `:help` for the commands. Without a terminal (input piped on
    /// stdin) it prints the same replies without prompts, for scripts.
    Repl(repl::ReplArgs),
    /// Rewrite `.flow` files in the one canonical layout, keeping comments.
    ///
    /// With --check nothing is written: the files that would change are
    /// listed and the exit code is 1 if there are any.
    Fmt(fmt::FmtArgs),
    /// Show what a `--state` database holds: the clock, the program's
    /// fingerprint, how far the input was read, the contacts, and per
    /// workflow the journeys in flight by where they stand; with a contact
    /// id, that contact's attributes, journeys and kept history.
    Inspect(inspect::InspectArgs),
    /// Run the program's `test` blocks: each from no contacts, the clock at
    /// 2026-01-01T00:00:00Z, its steps feeding events and moving the clock,
    /// its claims checked against what was emitted.
    ///
    /// Exits 0 when every test passes, 1 when one fails and 2 when the
    /// program does not check.
    Test(test::TestArgs),
    /// The language server, on standard input and output, for any editor:
    /// the check and lint diagnostics of the program an open file belongs
    /// to (its folder's `.flow` files) as you type, formatting as `nurture
    /// fmt` does, and the workflows and waits of a document.
    Lsp(lsp::LspArgs),
    /// The live service: events over HTTP, timers on the wall clock,
    /// actions delivered by sinks (docs/serve.md).
    ///
    /// Every accepted event is journaled in the state before `202`; a
    /// service killed at any moment and started again with the same command
    /// loses none and delivers no action twice to a sink that dedupes by
    /// id. SIGTERM or SIGINT stop it cleanly (exit 0); SIGHUP reloads the
    /// program.
    Serve(serve::ServeArgs),
    /// Write the events a `nurture serve` state has accepted, as stamped,
    /// as JSON Lines: `nurture run PATH --events -` over them gives the
    /// service's actions.
    Journal(serve::JournalArgs),
    /// What a program change changes, and what it does to the journeys in
    /// flight (LANGUAGE.md section 13).
    ///
    /// OLD and NEW are `.flow` files, directories, or `git:REV:PATH`. Per
    /// workflow: the triggers, waits, conditions and actions added, removed
    /// or changed, in the language's words with `file:line` on both sides
    /// (comments and layout are no change). With --state, how many journeys
    /// stand at each wait and whether they move to a wait of the same
    /// name, exit (`on change exit`), finish in the old version (`on change
    /// finish`) or refuse the change. Exits 0 when the change would be
    /// accepted, 1 when refused, 2 on an error.
    Diff(diff::DiffArgs),
}

/// How diagnostics are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Rendered for people, with the source and a label (to stderr).
    #[default]
    Human,
    /// One JSON object per line: file, line, column, code, severity, message (to stdout).
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Lint(args) => lint::run(&args),
        Command::Repl(args) => repl::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Lsp(args) => lsp::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Journal(args) => serve::journal(&args),
        Command::Diff(args) => diff::run(&args),
    }
}

/// Whether to colour output written to stderr.
pub fn stderr_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Prints diagnostics in the chosen format.
pub fn emit(
    diags: &[crate::diagnostic::Diagnostic],
    sources: &crate::source::SourceMap,
    format: Format,
) {
    use std::io::Write;
    match format {
        Format::Human => {
            let color = stderr_color();
            let mut err = std::io::stderr().lock();
            for d in diags {
                let _ = write!(err, "{}", d.render(sources, color, 100));
                let _ = writeln!(err);
            }
        }
        Format::Json => {
            let mut out = std::io::stdout().lock();
            for d in diags {
                let _ = writeln!(out, "{}", d.to_json(sources));
            }
        }
    }
}

/// "2 errors, 1 warning"
pub fn count_summary(diags: &[crate::diagnostic::Diagnostic]) -> String {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => "no problems".to_string(),
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}
