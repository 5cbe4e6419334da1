//! `nurture lint PATH`

use super::{count_summary, emit, Format};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{self, Config};
use crate::source::load_sources;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct LintArgs {
    /// A `.flow` file, or a directory whose `*.flow` files form one program.
    /// (Not needed with `--list-rules` or `--explain`.)
    #[arg(required_unless_present_any = ["list_rules", "explain"])]
    pub path: Option<PathBuf>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Make warnings fail the run: `--deny warnings`.
    #[arg(long, value_name = "warnings", value_parser = ["warnings"])]
    pub deny: Option<String>,
    /// List the rules with their default levels.
    #[arg(long)]
    pub list_rules: bool,
    /// Explain a rule: what it flags, why, and an example.
    #[arg(long, value_name = "RULE")]
    pub explain: Option<String>,
}

pub fn run(args: &LintArgs) -> ExitCode {
    if args.list_rules {
        print!("{}", lint::list());
        return ExitCode::SUCCESS;
    }
    if let Some(name) = &args.explain {
        return match lint::rule(name) {
            Some(r) => {
                print!("{}", lint::explain(r));
                ExitCode::SUCCESS
            }
            None => {
                let help = crate::suggest::help(name, lint::RULES.iter().map(|r| r.name), "rule");
                say!("error: unknown rule `{name}`; {help}");
                ExitCode::from(2)
            }
        };
    }
    let Some(path) = &args.path else {
        return ExitCode::from(2);
    };
    let sources = match load_sources(path) {
        Ok(s) => s,
        Err(e) => {
            say!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match config_for(path) {
        Ok(c) => c,
        Err(e) => {
            say!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let analysis = crate::pipeline::analyse(&sources);
    let mut diags = analysis.diagnostics.clone();
    let type_errors = diags.iter().any(Diagnostic::is_error);
    if !type_errors {
        diags.extend(lint::lint(
            &analysis.program,
            &analysis.checked.schema,
            &sources,
            &config,
        ));
        crate::diagnostic::sort(&mut diags);
    }
    emit(&diags, &sources, args.format);
    let errors = diags.iter().any(|d| d.severity == Severity::Error);
    let warnings = diags.iter().any(|d| d.severity == Severity::Warning);
    let failed = errors || (args.deny.is_some() && warnings);
    if args.format == Format::Human {
        let counts = count_summary(&diags);
        if type_errors {
            say!(
                "error: `{}` has {counts}; fix them to run the lint rules",
                path.display()
            );
        } else if failed {
            say!("error: `{}` has {counts}", path.display());
        } else {
            say!("linted `{}`: {counts}", path.display());
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The `nurture.toml` beside the program, if any.
pub(super) fn config_for(path: &Path) -> Result<Config, String> {
    let dir = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    let file = dir.join("nurture.toml");
    match std::fs::read_to_string(&file) {
        Ok(text) => Config::parse(&text).map_err(|e| format!("{}: {e}", file.display())),
        Err(_) => Ok(Config::default()),
    }
}
