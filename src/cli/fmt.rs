//! `nurture fmt PATH [--check]`

use super::{emit, Format};
use crate::source::SourceMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct FmtArgs {
    /// A `.flow` file, or a directory whose `*.flow` files are formatted.
    pub path: PathBuf,
    /// Change nothing; list the files that would change and exit 1 if any.
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: &FmtArgs) -> ExitCode {
    let sources = match crate::source::load_sources(&args.path) {
        Ok(s) => s,
        Err(e) => {
            say!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut changed = Vec::new();
    let mut failed = false;
    for file in &sources.files {
        match crate::fmt::format_source(&file.text) {
            Ok(out) if out == *file.text => {}
            Ok(out) => {
                if !args.check {
                    if let Err(e) = std::fs::write(&file.name, &out) {
                        say!("error: cannot write `{}`: {e}", file.name);
                        failed = true;
                        continue;
                    }
                }
                changed.push(file.name.clone());
            }
            Err(diags) => {
                let mut one = SourceMap::default();
                one.add(file.name.clone(), file.text.clone());
                emit(&diags, &one, Format::Human);
                say!(
                    "error: `{}` has syntax errors and was not formatted",
                    file.name
                );
                failed = true;
            }
        }
    }
    if args.check {
        for f in &changed {
            println!("{f}");
        }
        if !changed.is_empty() {
            say!(
                "{} of {} files would be reformatted",
                changed.len(),
                sources.files.len()
            );
        }
    } else {
        say!(
            "formatted {} of {} files",
            changed.len(),
            sources.files.len()
        );
    }
    if failed || (args.check && !changed.is_empty()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
