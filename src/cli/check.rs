//! `nurture check PATH`

use super::{count_summary, emit, Format};
use crate::diagnostic::Diagnostic;
use crate::source::load_sources;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// A `.flow` file, or a directory whose `*.flow` files form one program.
    pub path: PathBuf,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(args: &CheckArgs) -> ExitCode {
    let sources = match load_sources(&args.path) {
        Ok(s) => s,
        Err(e) => {
            say!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (diags, summary) = crate::pipeline::check_sources(&sources);
    emit(&diags, &sources, args.format);
    let failed = diags.iter().any(Diagnostic::is_error);
    if args.format == Format::Human {
        let counts = count_summary(&diags);
        if failed {
            say!("error: `{}` has {counts}", args.path.display());
        } else {
            say!("checked `{}`: {summary}, {counts}", args.path.display());
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
