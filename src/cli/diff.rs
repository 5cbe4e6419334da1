//! `nurture diff OLD NEW [--state DB] [--format json]`: what a program
//! change changes, and what it does to the journeys in flight.

use crate::diagnostic::Diagnostic;
use crate::diff::Side;
use crate::runtime::state::{ProgramRecord, SqliteStore, StateStore};
use crate::source::SourceMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The program as it runs now: a `.flow` file, a directory of them, or
    /// `git:REV:PATH` (PATH as it was at revision REV).
    pub old: String,
    /// The program as changed, in the same forms.
    pub new: String,
    /// A state written by OLD: count the journeys in flight at each wait
    /// and say what becomes of them (moved, exited, finishing, refused).
    #[arg(long, value_name = "DB")]
    pub state: Option<PathBuf>,
    /// `human` (a review, to stdout) or `json` (one object, to stdout).
    #[arg(long, value_enum, default_value_t)]
    pub format: DiffFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    /// For people: per workflow the lines added, removed and changed, with
    /// places on both sides, the journeys in flight and the verdict.
    #[default]
    Human,
    /// One JSON object: `accepted`, `workflows` (name, status, changes,
    /// and with --state in_flight).
    Json,
}

/// Exit 0 when the change would be accepted, 1 when refused, 2 when a
/// program does not check or a file or state cannot be read.
pub fn run(args: &DiffArgs) -> ExitCode {
    let load = |spec: &str| -> Result<Side, ExitCode> {
        let sources = read(spec).map_err(|e| {
            say!("error: {e}");
            ExitCode::from(2)
        })?;
        side(sources, spec).map_err(|(diags, sources)| {
            super::emit(&diags, &sources, super::Format::Human);
            say!("error: `{spec}` has errors; nothing was compared");
            ExitCode::from(2)
        })
    };
    let old = match load(&args.old) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let new = match load(&args.new) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let standing = match &args.state {
        None => None,
        Some(path) => match state_of(path, &old.record) {
            Ok(s) => Some(s),
            Err(e) => {
                say!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let d = crate::diff::diff(&old, &new, standing.as_ref());
    let text = match args.format {
        DiffFormat::Human => d.to_human(),
        DiffFormat::Json => format!("{}\n", d.to_json()),
    };
    print!("{text}");
    if d.accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The files of `spec`: a path, or `git:REV:PATH` read from git.
fn read(spec: &str) -> Result<SourceMap, String> {
    let Some(rest) = spec.strip_prefix("git:") else {
        return crate::source::load_sources(Path::new(spec));
    };
    let Some((rev, path)) = rest.split_once(':') else {
        return Err(format!(
            "`{spec}`: write `git:REV:PATH`, as in `git:HEAD~1:flows/`"
        ));
    };
    if rev.is_empty() || path.is_empty() {
        return Err(format!(
            "`{spec}`: write `git:REV:PATH`, as in `git:HEAD~1:flows/`"
        ));
    }
    let git = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("git")
            .args(args)
            .output()
            .map_err(|e| format!("`{spec}`: cannot run git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`{spec}`: git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        String::from_utf8(out.stdout)
            .map_err(|_| format!("`{spec}`: git gave text that is not UTF-8"))
    };
    // PATH as the user wrote it, relative to here (git reads `REV:./PATH`
    // relative to the working directory).
    let rel = if path.starts_with('/') || path.starts_with("./") || path.starts_with("../") {
        path.to_string()
    } else {
        format!("./{path}")
    };
    let kind = git(&["cat-file", "-t", &format!("{rev}:{rel}")])?;
    let files: Vec<String> = if kind.trim() == "tree" {
        let listed = git(&["ls-tree", "-r", "--name-only", rev, "--", path])?;
        let mut files: Vec<String> = listed
            .lines()
            .filter(|f| f.ends_with(".flow"))
            .map(str::to_string)
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format!("`{spec}`: no `.flow` files in `{path}` at `{rev}`"));
        }
        files
    } else {
        vec![path.to_string()]
    };
    let mut sources = SourceMap::default();
    for f in files {
        // `ls-tree` names files from the repository's top.
        let at = if kind.trim() == "tree" {
            format!("{rev}:{f}")
        } else {
            format!("{rev}:{rel}")
        };
        let text = git(&["show", &at])?;
        sources.add(format!("git:{rev}:{f}"), text);
    }
    Ok(sources)
}

/// A program read, checked and compiled; its diagnostics when it has errors.
fn side(sources: SourceMap, _spec: &str) -> Result<Side, (Vec<Diagnostic>, SourceMap)> {
    let a = crate::pipeline::analyse(&sources);
    if a.diagnostics.iter().any(Diagnostic::is_error) {
        return Err((a.diagnostics, sources));
    }
    let compiled = crate::runtime::Compiled::of(&a.program, &a.checked.schema);
    let record = crate::pipeline::program_record(&a.program, &sources, &compiled);
    Ok(Side {
        program: a.program,
        sources,
        compiled,
        record,
    })
}

/// The journeys in flight of the state at `path`, which OLD must have
/// written.
fn state_of(path: &Path, old: &ProgramRecord) -> Result<crate::runtime::state::Standing, String> {
    let shown = path.display();
    if !path.exists() {
        return Err(format!("there is no state `{shown}`"));
    }
    let mut store = SqliteStore::open_to_read(path).map_err(|e| format!("`{shown}`: {e}"))?;
    let snap = store
        .load()
        .map_err(|e| format!("`{shown}`: {e}"))?
        .ok_or_else(|| format!("`{shown}` holds no state yet"))?;
    let text = store
        .entry("program")
        .map_err(|e| format!("`{shown}`: {e}"))?
        .ok_or_else(|| {
            format!(
                "`{shown}`: {}",
                crate::runtime::state::StateError::NoProgram
            )
        })?;
    let stored = ProgramRecord::parse(&text).map_err(|e| format!("`{shown}`: {e}"))?;
    let differs = crate::diff::record_difference(&stored, old);
    if !differs.is_empty() {
        return Err(format!(
            "`{shown}` was not written by OLD: {}",
            differs.join("; ")
        ));
    }
    Ok(crate::runtime::state::standing(&snap))
}
