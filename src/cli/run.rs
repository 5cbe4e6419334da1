//! `nurture run PATH --events FILE`

use super::{emit, Format};
use crate::runtime::{parse_datetime, ActionKind, RunFault};
use crate::runtime::{BadRecord, Driver, Interpreter, Progress, StreamEnd, StreamOptions};
use crate::source::{load_sources, SourceMap};
use crate::vocabulary::Channel;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A `.flow` file, or a directory whose `*.flow` files form one program.
    pub path: PathBuf,
    /// Input events, as JSON Lines (`at`, `contact`, `type` and payload
    /// fields); `-` reads standard input, running each line as it arrives.
    /// With `--state`, it may be left out to only move the clock.
    #[arg(long, value_name = "FILE", required_unless_present = "state")]
    pub events: Option<PathBuf>,
    /// Start from the state in this SQLite file (created if missing) and
    /// leave the run's state there for the next run: contacts, journeys,
    /// the clock, counts, and how far the events file was read (a file that
    /// begins with what was read is read on from there). Checkpoints are
    /// taken every 100,000 events and every second: a killed run loses only
    /// what came after the last one.
    #[arg(long, value_name = "DB")]
    pub state: Option<PathBuf>,
    /// Append the actions to this file instead of standard output. With
    /// `--state`, the file's length is recorded with each state written, and
    /// a run that finds it longer (killed after writing) cuts it back first:
    /// once a run exits 0 the file holds every action exactly once.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Contacts to load before the events, as JSON Lines (`id` and attributes).
    /// Loading fires no trigger. With `--state`, a contact the state already
    /// holds is replaced: its attributes become the record's, its journeys
    /// and history stay.
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
    /// At the end of the run, write the funnel and experiment report of
    /// every journey counted (with --state, since the state began): JSON
    /// for a FILE ending in `.json`, one self-contained page for `.html`.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// What an event earlier than the clock gets: `refuse` makes it a bad
    /// record ("time goes backwards"), `stamp` processes it at the clock
    /// (for a batch that arrives after a `--until` tick moved the clock past
    /// some of its events).
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = Late::Refuse)]
    pub late_events: Late,
    /// Accept an input event more than 366 days after the clock (by default
    /// a bad record: a mistyped year would move the clock, and a state,
    /// centuries ahead). `--until` and `--drain` are never limited.
    #[arg(long)]
    pub allow_clock_jump: bool,
}

/// `--late-events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Late {
    Refuse,
    Stamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnError {
    Abort,
    Skip,
}

/// The driver's side of a run: where output, rejects and messages go.
struct Sink {
    sources: SourceMap,
    /// Where the actions go: standard output, or the `--out` file.
    stdout: BufWriter<Box<dyn Write>>,
    /// The `--out` file, for its length and to sync it.
    out_file: Option<File>,
    /// What the actions are written to, for messages.
    out_name: String,
    rejects: Option<BufWriter<File>>,
    /// The rejects file, for its length and to sync it.
    rejects_file: Option<File>,
    rejected: u64,
    on_error: OnError,
    /// The file being read, for messages.
    path: PathBuf,
    /// Set when a bad record stopped the run.
    stopped: bool,
    /// Standard output is a pipe or a terminal: actions are flushed after
    /// each batch of input, so a reader sees them while the input goes on.
    live: bool,
    /// The first output that could not be written, and where it went.
    write_failed: Option<(String, std::io::Error)>,
    /// Lines of the events file skipped (read by an earlier run), for messages.
    line_base: u64,
    /// Events the state had accepted before this run (the summary counts
    /// this run's).
    events_before: u64,
    actions_before: [u64; ActionKind::ALL.len()],
    /// With a bad record stopping the run: where its line starts (the input
    /// is handled up to there).
    stopped_at: Option<u64>,
    /// With `--state`: the checkpoints.
    checkpoints: Option<super::state::Checkpoints>,
    /// Reading an events file: the bytes before the stream (read by an
    /// earlier run); none for standard input.
    input_base: Option<u64>,
    /// Why the state could not be written.
    state_failed: Option<String>,
}

pub fn run(args: &RunArgs) -> ExitCode {
    let sources = match load_sources(&args.path) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    let analysis = crate::pipeline::analyse(&sources);
    if analysis.diagnostics.iter().any(|d| d.is_error()) {
        emit(&analysis.diagnostics, &sources, Format::Human);
        say!(
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
    if args.rejects.is_some() && args.on_error == OnError::Abort {
        return usage_error("--rejects needs --on-error skip");
    }
    if let Err(e) = distinct_files(args) {
        return usage_error(&e);
    }
    let report_kind = match args
        .report
        .as_deref()
        .map(|p| p.extension().and_then(|e| e.to_str()))
    {
        None => None,
        Some(Some("json")) => Some(false),
        Some(Some("html" | "htm")) => Some(true),
        Some(_) => {
            return usage_error(&format!(
                "--report `{}` must end in `.json` or `.html`",
                args.report.as_deref().unwrap_or(Path::new("")).display()
            ))
        }
    };
    let compiled = Arc::new(crate::runtime::Compiled::of(
        &analysis.program,
        &analysis.checked.schema,
    ));
    let info = crate::pipeline::program_record(&analysis.program, &sources, &compiled);
    let mut state = match &args.state {
        Some(p) => match super::state::StateFile::open(p, &info, &compiled) {
            Ok(s) => Some(s),
            Err(r) => {
                say!("error: {}", r.message);
                return ExitCode::from(if r.program_changed { 1 } else { 2 });
            }
        },
        None => None,
    };
    let mut it = match state.as_mut().and_then(|s| s.snapshot.take()) {
        Some(snap) => match Interpreter::restore(compiled, args.trace, snap) {
            Ok(it) => it,
            Err(e) => {
                say!(
                    "error: the state `{}` cannot be run: {e}",
                    args.state.as_deref().unwrap_or(Path::new("")).display()
                );
                return ExitCode::from(2);
            }
        },
        None => Interpreter::new(compiled, args.trace),
    };
    if let Some(s) = state.as_mut() {
        it.program_change_exits(&std::mem::take(&mut s.change_exits));
    }
    if args.late_events == Late::Stamp {
        it.set_late_events(crate::runtime::LateEvents::Stamp);
    }
    if args.allow_clock_jump {
        it.allow_clock_jump();
    }
    // Which file the state's recorded lengths are of: the same file goes on
    // (cut back to its length), a new or empty one starts a rotation, any
    // other is refused.
    let mut out_len = state.as_ref().and_then(|s| s.out_len);
    let mut rejects_len = state.as_ref().and_then(|s| s.rejects_len);
    let mut rotated = false;
    if let Some(s) = &state {
        for (flag, path, id, len) in [
            ("--out", args.out.as_deref(), &s.out_file, &mut out_len),
            (
                "--rejects",
                args.rejects.as_deref(),
                &s.rejects_file,
                &mut rejects_len,
            ),
        ] {
            if let (Some(path), Some(id)) = (path, id) {
                match same_or_rotated(flag, path, id, *len) {
                    Ok(true) => {}
                    Ok(false) => {
                        *len = None;
                        rotated = true;
                    }
                    Err(e) => return usage_error(&e),
                }
            }
        }
    }
    let (mut out, out_file, out_name): (Box<dyn Write>, Option<File>, String) = match &args.out {
        None => (Box::new(std::io::stdout()), None, "standard output".into()),
        Some(p) => match open_out(p, out_len) {
            Ok(f) => match f.try_clone() {
                Ok(clone) => (Box::new(f), Some(clone), format!("`{}`", p.display())),
                Err(e) => return usage_error(&format!("cannot write `{}`: {e}", p.display())),
            },
            Err(e) => return usage_error(&e),
        },
    };
    // With a state, the rejects file is appended to and cut back as `--out`
    // is; without, it is written anew.
    let (rejects, rejects_file) = match &args.rejects {
        None => (None, None),
        Some(p) => {
            let opened = match &state {
                Some(_) => open_out(p, rejects_len),
                None => {
                    File::create(p).map_err(|e| format!("cannot create `{}`: {e}", p.display()))
                }
            };
            match opened.and_then(|f| {
                let clone = f
                    .try_clone()
                    .map_err(|e| format!("cannot write `{}`: {e}", p.display()))?;
                Ok((f, clone))
            }) {
                Ok((f, clone)) => (Some(BufWriter::new(f)), Some(clone)),
                Err(e) => return usage_error(&e),
            }
        }
    };
    let live_out = args.out.is_none() && !stdout_is_a_file();
    // A new state is written at once, with the files' lengths: a run killed
    // before its first checkpoint is then cut back to them, never appended
    // twice. A state moved to a changed program's places is written whole
    // too: no row may keep the old places.
    if let Some(s) = state.as_mut() {
        s.identify_files(args.out.as_deref(), args.rejects.as_deref());
    }
    // A rotation to a new output file is recorded at once too: a run killed
    // before its first checkpoint then goes on with the new file.
    if let Some(s) = state.as_mut().filter(|s| s.fresh || s.migrated || rotated) {
        // What taking up a changed program emitted (the `end` records of
        // journeys it exited) is written before the state that no longer
        // holds those journeys, and counted in the recorded length: a run
        // killed in between is cut back and takes the change up again.
        let written = it
            .write_json(&mut out)
            .and_then(|()| out.flush())
            .and_then(|()| out_file.as_ref().map_or(Ok(()), |f| f.sync_data()));
        if let Err(e) = written {
            say!("error: cannot write {out_name}: {e}");
            return ExitCode::from(2);
        }
        let saved = file_lengths(out_file.as_ref(), rejects_file.as_ref())
            .map_err(|e| format!("cannot read the output files: {e}"))
            .and_then(|files| s.save(&it.snapshot(), &info, files));
        if let Err(e) = saved {
            say!("error: {e}");
            return ExitCode::from(2);
        }
        // The crash tests' fixed moment: dead just after a changed program
        // was taken up and recorded.
        if s.migrated && std::env::var_os("NURTURE_ABORT_AFTER_TAKE_UP").is_some() {
            std::process::abort();
        }
    }
    // Where the events are read from: with a state, a file that begins with
    // what earlier runs read is read on from there.
    let mut input = None;
    let (mut skipped, mut line_base) = (0, 0);
    if let Some(path) = &args.events {
        if path.as_path() == Path::new("-") {
            input = Some(Input::Stdin);
        } else {
            let mut file = match File::open(path) {
                Ok(f) => f,
                Err(e) => return usage_error(&format!("cannot read `{}`: {e}", path.display())),
            };
            let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
            if !regular {
                // A pipe (`<(zcat log.gz)`, a FIFO) cannot be read again: it
                // is read as standard input is, never skipped or resumed.
                input = Some(Input::Pipe(file, path.clone()));
            } else {
                if let Some(s) = &mut state {
                    match s.resume(&mut file) {
                        Ok((bytes, lines)) => (skipped, line_base) = (bytes, lines),
                        Err(e) => {
                            return usage_error(&format!("cannot read `{}`: {e}", path.display()))
                        }
                    }
                }
                input = Some(Input::File(file, path.clone()));
            }
        }
    }
    // From here on the state is written by checkpoints, on their own thread.
    let checkpoints = match state {
        Some(s) => {
            it.track_changes();
            let events = match &input {
                Some(Input::File(_, path)) => Some(path.as_path()),
                _ => None,
            };
            let clone = |f: &Option<File>| f.as_ref().and_then(|f| f.try_clone().ok());
            match s.checkpoints(&info, events, [clone(&out_file), clone(&rejects_file)]) {
                Ok(c) => Some(c),
                Err(e) => {
                    say!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let mut sink = Sink {
        sources,
        stdout: BufWriter::with_capacity(1 << 16, out),
        out_file,
        rejects_file,
        out_name,
        rejects,
        rejected: 0,
        on_error: args.on_error,
        path: PathBuf::new(),
        stopped: false,
        live: live_out,
        write_failed: None,
        line_base,
        stopped_at: None,
        events_before: it.stats().events,
        actions_before: it.stats().actions,
        checkpoints,
        input_base: None,
        state_failed: None,
    };
    if let Some(path) = &args.contacts {
        if let Err(code) = sink.contacts(&mut it, path) {
            return code;
        }
    }
    let mut consumed = None;
    if let Some(input) = input {
        let stdin = matches!(input, Input::Stdin | Input::Pipe(..));
        match sink.events(&mut it, input, skipped) {
            Ok(pos) => consumed = pos,
            Err((code, pos)) => {
                // The state keeps what ran before the bad record, when it
                // is known where that record starts (standard input is
                // never read again, so its state is kept as is).
                if sink.write_failed.is_none()
                    && sink.state_failed.is_none()
                    && (pos.is_some() || stdin)
                {
                    if let Err(e) = sink.last_checkpoint(&mut it, pos) {
                        say!("error: {e}");
                    }
                }
                return code;
            }
        }
    }
    // The records of a long move of the clock are written as they come.
    if args.drain {
        let _ = it.drain_with(&mut sink);
    } else if let Some(t) = until {
        let _ = it.advance_to_with(t, &mut sink);
    }
    sink.flush(&mut it);
    if sink.write_failed.is_some() {
        return sink.write_exit();
    }
    if let Err(e) = sink.last_checkpoint(&mut it, consumed) {
        say!("error: {e}");
        return ExitCode::from(2);
    }
    let report = crate::report::build(it.program(), &it.stats(), &sink.sources);
    if let (Some(path), Some(html)) = (&args.report, report_kind) {
        let text = if html {
            crate::report::to_html(&report)
        } else {
            format!("{}\n", crate::report::to_json(&report))
        };
        if let Err(e) = std::fs::write(path, text) {
            say!("error: cannot write the report `{}`: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    sink.summary(&it);
    say_raw!("{}", crate::report::summary(&report));
    // Nothing reads the state past this point: the process's exit returns
    // its memory at once, where dropping it would free every contact's
    // allocations one by one (a few percent of a large run).
    std::mem::forget(it);
    ExitCode::SUCCESS
}

/// The events to run.
enum Input {
    Stdin,
    File(File, PathBuf),
    /// A file that is not a regular one (a pipe): read as a stream, never
    /// skipped or resumed.
    Pipe(File, PathBuf),
}

/// The lengths of the `--out` and `--rejects` files, as written so far.
fn file_lengths(
    out: Option<&File>,
    rejects: Option<&File>,
) -> std::io::Result<super::state::Lengths> {
    let len = |f: Option<&File>| f.map(|f| f.metadata().map(|m| m.len())).transpose();
    Ok(super::state::Lengths {
        out: len(out)?,
        rejects: len(rejects)?,
    })
}

/// Opens the `--out` file for appending; with a recorded length (from a
/// state), a longer file is cut back to it first (a run killed after
/// writing and before its state was written), and a shorter one refused.
fn open_out(path: &Path, recorded: Option<u64>) -> Result<File, String> {
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|e| format!("cannot write `{shown}`: {e}"))?;
    if let Some(n) = recorded {
        let len = file
            .metadata()
            .map_err(|e| format!("cannot read `{shown}`: {e}"))?
            .len();
        if len < n {
            return Err(format!(
                "`{shown}` is shorter ({len} bytes) than the state recorded ({n} bytes): it was changed outside nurture"
            ));
        }
        if len > n {
            file.set_len(n)
                .map_err(|e| format!("cannot cut `{shown}` back to {n} bytes: {e}"))?;
        }
    }
    Ok(file)
}

/// Whether standard output is a regular file (not a pipe or a terminal).
fn stdout_is_a_file() -> bool {
    std::fs::metadata("/dev/stdout").is_ok_and(|m| m.is_file())
}

fn usage_error(msg: &str) -> ExitCode {
    say!("error: {msg}");
    ExitCode::from(2)
}

impl Driver for Sink {
    fn bad_record(&mut self, it: &mut Interpreter, bad: BadRecord) -> ControlFlow<()> {
        let line = bad.line + self.line_base;
        if self.reject(it, line, bad.reason, bad.raw).is_err() {
            self.stopped = true;
            self.stopped_at = Some(bad.start);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn output(&mut self, it: &mut Interpreter) -> ControlFlow<()> {
        if let Err(e) = it.write_json(&mut self.stdout) {
            let what = format!("the actions to {}", self.out_name);
            self.failed(&what, e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn partial_line(&mut self, _it: &mut Interpreter, line: u64, reason: &str) {
        say!(
            "{}:{}: the last line has no newline and is not a whole record ({reason}): left unread; a writer may be adding to it, and a run with --state reads it whole next time",
            self.path.display(),
            line + self.line_base
        );
    }

    fn progress(&mut self, it: &mut Interpreter, at: Progress) -> ControlFlow<()> {
        let written = it.write_json(&mut self.stdout).and_then(|()| {
            if self.live {
                self.stdout.flush()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            let what = format!("the actions to {}", self.out_name);
            self.failed(&what, e);
            return ControlFlow::Break(());
        }
        if self
            .checkpoints
            .as_ref()
            .is_some_and(|c| c.due(it.events()))
        {
            let consumed = self.input_base.map(|base| base + at.consumed);
            if let Err(e) = self.checkpoint(it, consumed) {
                self.state_failed = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

impl Sink {
    fn contacts(&mut self, it: &mut Interpreter, path: &Path) -> Result<(), ExitCode> {
        self.lines(it, path, |it, line| {
            it.load_contact_line(line).map_err(|e| e.to_string())
        })
    }

    /// Runs the events, parsed on other threads while the engine works.
    /// Returns how far an events file was read (`skipped`: the bytes before
    /// the stream, read by an earlier run; none for standard input), also
    /// beside the exit code of a run that stopped.
    fn events(
        &mut self,
        it: &mut Interpreter,
        input: Input,
        skipped: u64,
    ) -> Result<Option<u64>, (ExitCode, Option<u64>)> {
        let options = StreamOptions {
            keep_raw: self.rejects.is_some(),
        };
        let fed = match input {
            Input::Stdin => {
                self.path = PathBuf::from("<stdin>");
                it.feed_stream(std::io::stdin(), options, self)
            }
            Input::File(file, path) => {
                self.path = path;
                self.input_base = Some(skipped);
                it.feed_stream(file, options, self)
            }
            Input::Pipe(file, path) => {
                self.path = path;
                it.feed_stream(file, options, self)
            }
        };
        let position = |read: u64| self.input_base.map(|base| base + read);
        let path = self.path.clone();
        match fed {
            // A bad record stopped the run (and said why).
            Ok(_) if self.stopped => Err((ExitCode::from(2), self.stopped_at.and_then(position))),
            Ok(_) if self.write_failed.is_some() => Err((self.write_exit(), None)),
            Ok(_) if self.state_failed.is_some() => {
                if let Some(e) = &self.state_failed {
                    say!("error: {e}");
                }
                Err((ExitCode::from(2), None))
            }
            Ok(StreamEnd::Finished { consumed }) => Ok(position(consumed)),
            Ok(StreamEnd::Stopped { consumed }) => Ok(position(consumed)),
            Err(e) => {
                self.flush(it);
                match e.line {
                    Some(n) => {
                        say!("{}:{}: {}", path.display(), n + self.line_base, e.message)
                    }
                    None => say!("{}: {}", path.display(), e.message),
                }
                Err((ExitCode::from(2), None))
            }
        }
    }

    /// Reports a bad record; stops the run unless bad records are skipped.
    fn reject(
        &mut self,
        it: &mut Interpreter,
        n: u64,
        reason: &str,
        raw: Option<&[u8]>,
    ) -> Result<(), ExitCode> {
        self.flush(it);
        say!("{}:{n}: {reason}", self.path.display());
        if self.on_error == OnError::Abort {
            say!("error: stopped at the first bad record (use --on-error skip to go on)");
            self.summary(it);
            return Err(ExitCode::from(2));
        }
        self.rejected += 1;
        if let (Some(r), Some(raw)) = (&mut self.rejects, raw) {
            let mut written = r.write_all(raw);
            if !raw.ends_with(b"\n") {
                written = written.and_then(|()| writeln!(r));
            }
            if let Err(e) = written {
                self.failed("the rejected lines", e);
                return Err(self.write_exit());
            }
        }
        Ok(())
    }

    /// Takes a checkpoint (with `--state`): the output written out, then
    /// what changed in the state handed to the writer with the files'
    /// lengths and `consumed`, the bytes of the events file handled.
    fn checkpoint(&mut self, it: &mut Interpreter, consumed: Option<u64>) -> Result<(), String> {
        let Some(checkpoints) = &mut self.checkpoints else {
            return Ok(());
        };
        let files = self
            .stdout
            .flush()
            .and_then(|()| self.rejects.as_mut().map_or(Ok(()), |r| r.flush()))
            .and_then(|()| file_lengths(self.out_file.as_ref(), self.rejects_file.as_ref()))
            .map_err(|e| format!("cannot write {}: {e}", self.out_name))?;
        checkpoints.take(it, consumed, files)
    }

    /// The checkpoint that ends a run, once every one before it is written.
    fn last_checkpoint(
        &mut self,
        it: &mut Interpreter,
        consumed: Option<u64>,
    ) -> Result<(), String> {
        self.checkpoint(it, consumed)?;
        match &mut self.checkpoints {
            Some(c) => c.finish(),
            None => Ok(()),
        }
    }

    /// Keeps the first write failure.
    fn failed(&mut self, what: &str, e: std::io::Error) {
        if self.write_failed.is_none() {
            self.write_failed = Some((what.to_string(), e));
        }
    }

    /// How a run whose output failed ends: exit 2, with one line saying the
    /// run did not finish (when the reader of standard output went away,
    /// `| head`, no more than that: no summary nobody asked to read, and a
    /// state is left at its last checkpoint, which the same command resumes).
    fn write_exit(&mut self) -> ExitCode {
        match &self.write_failed {
            Some((_, e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                say!(
                    "nurture run: stopped: the reader of {} went away before the run finished",
                    self.out_name
                );
                ExitCode::from(2)
            }
            Some((what, e)) => {
                say!("error: cannot write {what}: {e}; the run stopped there");
                ExitCode::from(2)
            }
            None => ExitCode::SUCCESS,
        }
    }

    /// Streams a JSON Lines file through `each`, handling bad records.
    fn lines(
        &mut self,
        it: &mut Interpreter,
        path: &Path,
        mut each: impl FnMut(&mut Interpreter, &str) -> Result<(), String>,
    ) -> Result<(), ExitCode> {
        let file = File::open(path)
            .map_err(|e| usage_error(&format!("cannot read `{}`: {e}", path.display())))?;
        self.path = path.to_path_buf();
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut bytes = Vec::new();
        let mut n = 0u64;
        loop {
            bytes.clear();
            let limit = crate::runtime::MAX_LINE as u64 + 1;
            match std::io::Read::take(&mut reader, limit).read_until(b'\n', &mut bytes) {
                Ok(0) => return Ok(()),
                Ok(got) if got as u64 == limit && bytes.last() != Some(&b'\n') => {
                    self.flush(it);
                    say!(
                        "{}:{}: the line is longer than {} MiB (no newline in it): not JSON Lines?",
                        path.display(),
                        n + 1,
                        crate::runtime::MAX_LINE >> 20
                    );
                    return Err(ExitCode::from(2));
                }
                Ok(_) => {}
                Err(e) => {
                    self.flush(it);
                    say!("{}:{}: cannot read: {e}", path.display(), n + 1);
                    return Err(ExitCode::from(2));
                }
            }
            let utf8 = std::str::from_utf8(&bytes);
            n += 1;
            let text = utf8.unwrap_or("").trim_end_matches(['\n', '\r']);
            // A byte-order mark at the start of the file is not part of it.
            let text = if n == 1 {
                text.strip_prefix('\u{feff}').unwrap_or(text)
            } else {
                text
            };
            if utf8.is_ok() && text.trim().is_empty() {
                continue;
            }
            let result = match utf8 {
                Ok(_) => each(it, text),
                Err(e) => Err(format!(
                    "the line is not valid UTF-8 (byte {})",
                    e.valid_up_to() + 1
                )),
            };
            if let Err(reason) = result {
                let raw = std::mem::take(&mut bytes);
                self.reject(it, n, &reason, Some(&raw))?;
                bytes = raw;
            }
        }
    }

    /// Writes pending actions and reports faults.
    fn flush(&mut self, it: &mut Interpreter) {
        if self.write_failed.is_none() {
            let written = it
                .write_json(&mut self.stdout)
                .and_then(|()| self.stdout.flush());
            if let Err(e) = written {
                let what = format!("the actions to {}", self.out_name);
                self.failed(&what, e);
            }
        }
        for f in it.take_faults() {
            self.report(&f);
        }
        if let Some(r) = &mut self.rejects {
            if let Err(e) = r.flush() {
                self.failed("the rejected lines", e);
            }
        }
    }

    fn report(&self, f: &RunFault) {
        let loc = if f.fault.span.end > 0 {
            format!(" at {}", self.sources.location(f.fault.span))
        } else {
            String::new()
        };
        say!(
            "runtime error{loc}: {} (contact `{}`, workflow `{}`, {}); the journey ended as failed",
            f.fault.message,
            f.contact,
            f.workflow,
            crate::runtime::format_datetime(f.at)
        );
    }

    fn summary(&mut self, it: &Interpreter) {
        let _ = self.stdout.flush();
        let stats = it.stats();
        // This run's events and actions; the journey counts below are the
        // state's, from its first run.
        let actions: Vec<u64> = stats
            .actions
            .iter()
            .zip(self.actions_before)
            .map(|(n, before)| n - before)
            .collect();
        let total: u64 = actions.iter().sum();
        let kinds: Vec<String> = ActionKind::ALL
            .iter()
            .zip(actions)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{} {n}", k.as_str()))
            .collect();
        let mut s = format!(
            "summary: {} events read, {} rejected, {} actions",
            stats.events - self.events_before,
            self.rejected,
            total
        );
        if !kinds.is_empty() {
            s.push_str(&format!(" ({})", kinds.join(", ")));
        }
        s.push('\n');
        if self.line_base > 0 {
            // A state skipped what earlier runs read: say so, or "0 events
            // read" on a re-run looks like an empty file.
            let n = self.line_base;
            s.push_str(&format!(
                "resumed: the first {n} line{} of `{}` were read by an earlier run with this state\n",
                if n == 1 { "" } else { "s" },
                self.path.display()
            ));
        }
        let prog = it.program();
        let width = prog
            .workflows
            .iter()
            .map(|w| w.name.len())
            .max()
            .unwrap_or(8)
            .max(8);
        s.push_str(&format!(
            "  {:width$}  {:>8} {:>9} {:>7} {:>9} {:>7} {:>8} {:>8}\n",
            "workflow",
            "entered",
            "converted",
            "exited",
            "completed",
            "failed",
            "waiting",
            "skipped"
        ));
        for (i, w) in prog.workflows.iter().enumerate() {
            let st = stats.workflows[i];
            s.push_str(&format!(
                "  {:width$}  {:>8} {:>9} {:>7} {:>9} {:>7} {:>8} {:>8}\n",
                w.name,
                st.entered,
                st.converted,
                st.exited,
                st.completed,
                st.failed,
                stats.waiting[i],
                st.skipped
            ));
        }
        let suppressed: Vec<String> = prog
            .workflows
            .iter()
            .zip(&stats.workflows)
            .flat_map(|(w, st)| {
                Channel::ALL
                    .iter()
                    .zip(st.suppressed)
                    .filter(|(_, n)| *n > 0)
                    .map(move |(c, n)| format!("{} {} {n}", w.name, c.name()))
            })
            .collect();
        if !suppressed.is_empty() {
            s.push_str(&format!(
                "  sends suppressed for want of consent: {}\n",
                suppressed.join(", ")
            ));
        }
        let capped: Vec<String> = prog
            .workflows
            .iter()
            .zip(&stats.workflows)
            .flat_map(|(w, st)| {
                Channel::ALL
                    .iter()
                    .zip(st.capped)
                    .filter(|(_, n)| *n > 0)
                    .map(move |(c, n)| format!("{} {} {n}", w.name, c.name()))
            })
            .collect();
        let unknown = it.unknown_zones();
        if unknown > 0 {
            s.push_str(&format!(
                "  contacts whose time zone is unknown (the program's zone was used): {unknown}\n"
            ));
        }
        if !capped.is_empty() {
            s.push_str(&format!(
                "  sends suppressed by frequency caps: {}\n",
                capped.join(", ")
            ));
        }
        say_raw!("{s}");
    }
}

/// Refuses, before anything is written, two of `--state`, `--events`,
/// `--contacts`, `--out`, `--rejects` and `--report` that name one file
/// (the same path, a link to it, or another name of it): each would
/// overwrite or cut what another reads or keeps.
fn distinct_files(args: &RunArgs) -> Result<(), String> {
    let named: Vec<(&str, &Path)> = [
        ("--state", args.state.as_deref()),
        (
            "--events",
            args.events.as_deref().filter(|p| *p != Path::new("-")),
        ),
        ("--contacts", args.contacts.as_deref()),
        ("--out", args.out.as_deref()),
        ("--rejects", args.rejects.as_deref()),
        ("--report", args.report.as_deref()),
    ]
    .into_iter()
    .filter_map(|(flag, p)| p.map(|p| (flag, p)))
    .collect();
    for (i, (a, pa)) in named.iter().enumerate() {
        for (b, pb) in &named[i + 1..] {
            if same_file(pa, pb) {
                return Err(if pa == pb {
                    format!("{a} and {b} name the same file `{}`", pa.display())
                } else {
                    format!(
                        "{a} `{}` and {b} `{}` are the same file",
                        pa.display(),
                        pb.display()
                    )
                });
            }
        }
    }
    Ok(())
}

/// Whether two paths name one file: the same device and inode when both
/// exist (a regular file), else the same absolute path (a file not made
/// yet).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            // `/dev/null` twice loses nothing.
            return x.is_file() && x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    let absolute = |p: &Path| -> Option<PathBuf> {
        let parent = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(std::fs::canonicalize(parent).ok()?.join(p.file_name()?))
    };
    a == b || matches!((absolute(a), absolute(b)), (Some(x), Some(y)) if x == y)
}

/// Whether `path` is the file `id` a state recorded for `flag` (then its
/// recorded length applies), or a new or empty file that takes over from it
/// (a rotation: the old file is first cut back to the recorded length, so
/// the actions after the last checkpoint are written once, to the new one).
/// Another file with something in it is refused: cutting it back would
/// lose what it holds.
fn same_or_rotated(
    flag: &str,
    path: &Path,
    id: &super::state::FileId,
    len: Option<u64>,
) -> Result<bool, String> {
    if id.is(path) {
        return Ok(true);
    }
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size > 0 {
        return Err(format!(
            "{flag} `{}` is not the file this state wrote to (`{}`) and is not empty ({size} bytes): name that file to go on with it, or a new (missing or empty) one to start another",
            path.display(),
            id.path.display()
        ));
    }
    if let Some(n) = len {
        if id.is(&id.path) {
            let old = std::fs::OpenOptions::new()
                .write(true)
                .open(&id.path)
                .map_err(|e| format!("cannot cut `{}` back: {e}", id.path.display()))?;
            let now = old.metadata().map(|m| m.len()).unwrap_or(0);
            if now > n {
                old.set_len(n).map_err(|e| {
                    format!("cannot cut `{}` back to {n} bytes: {e}", id.path.display())
                })?;
            }
        }
    }
    Ok(false)
}
