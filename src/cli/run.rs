//! `nurture run PATH --events FILE`

use super::{emit, Format};
use crate::runtime::engine::{Engine, RunFault};
use crate::runtime::input::parse_contact;
use crate::runtime::output::ACTION_KINDS;
use crate::runtime::value::parse_datetime;
use crate::source::load_sources;
use crate::source::SourceMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A `.flow` file, or a directory whose `*.flow` files form one program.
    pub path: PathBuf,
    /// Input events, as JSON Lines (`at`, `contact`, `type` and payload fields).
    #[arg(long, value_name = "FILE")]
    pub events: PathBuf,
    /// Contacts to load before the events, as JSON Lines (`id` and attributes).
    /// Loading fires no trigger.
    #[arg(long, value_name = "FILE")]
    pub contacts: Option<PathBuf>,
    /// After the input, fire the timers due up to this RFC 3339 time (inclusive).
    #[arg(long, value_name = "DATETIME", conflicts_with = "drain")]
    pub until: Option<String>,
    /// After the input, fire every pending timer.
    #[arg(long)]
    pub drain: bool,
    /// Interleave lifecycle records (enter, stage, wait, resume, end) with the actions.
    #[arg(long)]
    pub trace: bool,
    /// What to do with a bad input record: stop with exit code 2, or skip it.
    #[arg(long, value_enum, default_value_t = OnError::Abort)]
    pub on_error: OnError,
    /// With `--on-error skip`, write the rejected lines to this file.
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnError {
    Abort,
    Skip,
}

struct Run {
    engine: Engine,
    sources: SourceMap,
    stdout: BufWriter<std::io::Stdout>,
    rejects: Option<BufWriter<File>>,
    read: u64,
    rejected: u64,
}

pub fn run(args: &RunArgs) -> ExitCode {
    let sources = match load_sources(&args.path) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    let analysis = crate::pipeline::analyse(&sources);
    if analysis.diagnostics.iter().any(|d| d.is_error()) {
        emit(&analysis.diagnostics, &sources, Format::Human);
        eprintln!(
            "error: `{}` has errors; nothing was run",
            args.path.display()
        );
        return ExitCode::FAILURE;
    }
    let until = match &args.until {
        Some(t) => match parse_datetime(t) {
            Some(t) => Some(t),
            None => return usage_error(&format!("--until `{t}` is not an RFC 3339 datetime")),
        },
        None => None,
    };
    let rejects = match (&args.rejects, args.on_error) {
        (Some(p), OnError::Skip) => match File::create(p) {
            Ok(f) => Some(BufWriter::new(f)),
            Err(e) => return usage_error(&format!("cannot create `{}`: {e}", p.display())),
        },
        (Some(_), OnError::Abort) => return usage_error("--rejects needs --on-error skip"),
        _ => None,
    };
    let compiled = Arc::new(crate::runtime::compile(
        &analysis.program,
        &analysis.checked.schema,
    ));
    let mut run = Run {
        engine: Engine::new(compiled, args.trace),
        sources,
        stdout: BufWriter::with_capacity(1 << 16, std::io::stdout()),
        rejects,
        read: 0,
        rejected: 0,
    };
    if let Some(path) = &args.contacts {
        if let Err(code) = run.contacts(path, args.on_error) {
            return code;
        }
    }
    if let Err(code) = run.events(&args.events, args.on_error) {
        return code;
    }
    if args.drain {
        run.engine.drain();
    } else if let Some(t) = until {
        run.engine.advance_to(t);
    }
    run.flush();
    run.summary();
    // Nothing reads the state past this point: the process's exit returns
    // its memory at once, where dropping it would free every contact's
    // allocations one by one (a few percent of a large run).
    let Run { engine, .. } = run;
    std::mem::forget(engine);
    ExitCode::SUCCESS
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

impl Run {
    fn contacts(&mut self, path: &Path, on_error: OnError) -> Result<(), ExitCode> {
        let schema = self.engine.prog.schema.clone();
        self.lines(path, on_error, |run, line| {
            let (id, attrs) = parse_contact(line, &schema)?;
            run.engine.preload(&id, attrs)
        })
    }

    /// Runs the events, parsed on two other threads while the engine works,
    /// prefetching each contact's state a few records ahead.
    fn events(&mut self, path: &Path, on_error: OnError) -> Result<(), ExitCode> {
        use crate::runtime::stream::{prefetch_ahead, prefetch_first, spawn, Record};
        let file = File::open(path)
            .map_err(|e| usage_error(&format!("cannot read `{}`: {e}", path.display())))?;
        let keep_raw = self.rejects.is_some();
        let prog = self.engine.prog.clone();
        let (mut batches, reader) = spawn(file, prog, keep_raw);
        while let Some(mut batch) = batches.next() {
            prefetch_first(&self.engine, &batch);
            let mut records = batch.drain(..);
            while let Some((n, record)) = records.next() {
                prefetch_ahead(&self.engine, records.as_slice());
                let (reason, raw) = match record {
                    Record::Event(input, raw) => match self.engine.accept(input) {
                        Ok(()) => {
                            self.read += 1;
                            if self.engine.out.buf.len() > 1 << 16 {
                                self.flush();
                            }
                            continue;
                        }
                        Err(reason) => (reason, raw),
                    },
                    Record::Bad { reason, raw } => (reason, Some(raw)),
                    Record::Unreadable(e) => {
                        self.flush();
                        eprintln!("{}:{n}: cannot read: {e}", path.display());
                        return Err(ExitCode::from(2));
                    }
                };
                self.reject(path, n, &reason, raw.as_deref(), on_error)?;
            }
            drop(records);
            batches.recycle(batch);
        }
        if let Err(e) = reader.join() {
            self.flush();
            eprintln!("{}: {e}", path.display());
            return Err(ExitCode::from(2));
        }
        Ok(())
    }

    /// Reports a bad record; stops the run unless bad records are skipped.
    fn reject(
        &mut self,
        path: &Path,
        n: u64,
        reason: &str,
        raw: Option<&[u8]>,
        on_error: OnError,
    ) -> Result<(), ExitCode> {
        self.flush();
        eprintln!("{}:{n}: {reason}", path.display());
        if on_error == OnError::Abort {
            eprintln!("error: stopped at the first bad record (use --on-error skip to go on)");
            self.summary();
            return Err(ExitCode::from(2));
        }
        self.rejected += 1;
        if let (Some(r), Some(raw)) = (&mut self.rejects, raw) {
            let _ = r.write_all(raw);
            if !raw.ends_with(b"\n") {
                let _ = writeln!(r);
            }
        }
        Ok(())
    }

    /// Streams a JSON Lines file through `each`, handling bad records.
    fn lines(
        &mut self,
        path: &Path,
        on_error: OnError,
        mut each: impl FnMut(&mut Run, &str) -> Result<(), String>,
    ) -> Result<(), ExitCode> {
        let file = File::open(path)
            .map_err(|e| usage_error(&format!("cannot read `{}`: {e}", path.display())))?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut bytes = Vec::new();
        let mut n = 0u64;
        loop {
            bytes.clear();
            match reader.read_until(b'\n', &mut bytes) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    self.flush();
                    eprintln!("{}:{}: cannot read: {e}", path.display(), n + 1);
                    return Err(ExitCode::from(2));
                }
            }
            let utf8 = std::str::from_utf8(&bytes);
            n += 1;
            let text = utf8.unwrap_or("").trim_end_matches(['\n', '\r']);
            if utf8.is_ok() && text.trim().is_empty() {
                continue;
            }
            let result = match utf8 {
                Ok(_) => each(self, text),
                Err(e) => Err(format!(
                    "the line is not valid UTF-8 (byte {})",
                    e.valid_up_to() + 1
                )),
            };
            if let Err(reason) = result {
                self.flush();
                eprintln!("{}:{n}: {reason}", path.display());
                if on_error == OnError::Abort {
                    eprintln!(
                        "error: stopped at the first bad record (use --on-error skip to go on)"
                    );
                    self.summary();
                    return Err(ExitCode::from(2));
                }
                self.rejected += 1;
                if let Some(r) = &mut self.rejects {
                    let _ = r.write_all(&bytes);
                    if !bytes.ends_with(b"\n") {
                        let _ = writeln!(r);
                    }
                }
            }
        }
    }

    /// Writes pending actions and reports faults.
    fn flush(&mut self) {
        let _ = self.stdout.write_all(self.engine.out.buf.as_bytes());
        self.engine.out.buf.clear();
        let _ = self.stdout.flush();
        for f in std::mem::take(&mut self.engine.faults) {
            self.report(&f);
        }
        if let Some(r) = &mut self.rejects {
            let _ = r.flush();
        }
    }

    fn report(&self, f: &RunFault) {
        let loc = if f.fault.span.end > 0 {
            format!(" at {}", self.sources.location(f.fault.span))
        } else {
            String::new()
        };
        eprintln!(
            "runtime error{loc}: {} (contact `{}`, workflow `{}`, {}); the journey ended as failed",
            f.fault.message,
            f.contact,
            f.workflow,
            crate::runtime::value::format_datetime(f.at)
        );
    }

    fn summary(&mut self) {
        let _ = self.stdout.flush();
        let e = &self.engine;
        let total: u64 = e.out.counts.iter().sum();
        let kinds: Vec<String> = ACTION_KINDS
            .iter()
            .zip(e.out.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let mut s = format!(
            "summary: {} events read, {} rejected, {} actions",
            self.read, self.rejected, total
        );
        if !kinds.is_empty() {
            s.push_str(&format!(" ({})", kinds.join(", ")));
        }
        s.push('\n');
        let width = e
            .prog
            .workflows
            .iter()
            .map(|w| w.name.len())
            .max()
            .unwrap_or(8)
            .max(8);
        s.push_str(&format!(
            "  {:width$}  {:>8} {:>9} {:>7} {:>9} {:>7} {:>8}\n",
            "workflow", "entered", "converted", "exited", "completed", "failed", "waiting"
        ));
        let waiting = e.waiting_counts();
        for (i, w) in e.prog.workflows.iter().enumerate() {
            let st = e.stats[i];
            s.push_str(&format!(
                "  {:width$}  {:>8} {:>9} {:>7} {:>9} {:>7} {:>8}\n",
                w.name, st.entered, st.converted, st.exited, st.completed, st.failed, waiting[i]
            ));
        }
        eprint!("{s}");
    }
}
