//! `nurture repl [PATH]`

use crate::repl::{editor, Session};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ReplArgs {
    /// A `.flow` file or directory to load (an empty program when left out).
    pub path: Option<PathBuf>,
    /// Start from a `--state` database, read-only (as `:state DB`).
    #[arg(long, value_name = "DB")]
    pub state: Option<PathBuf>,
}

pub fn run(args: &ReplArgs) -> ExitCode {
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let color = tty && std::env::var_os("NO_COLOR").is_none();
    let mut session = match Session::new(args.path.clone(), color) {
        Ok(s) => s,
        Err(e) => {
            say!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(db) = &args.state {
        match session.open_state(&db.to_string_lossy()) {
            Ok(text) => say_raw!("{text}"),
            Err(e) => {
                say_raw!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let result = if tty {
        editor::interactive(session)
            .map(|()| true)
            .map_err(|e| e.to_string())
    } else {
        let stdin = std::io::stdin();
        editor::piped(session, stdin.lock(), std::io::stdout().lock()).map_err(|e| e.to_string())
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        // A piped session in which an input was refused.
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            say!("error: {e}");
            ExitCode::from(2)
        }
    }
}
