//! `nurture run --state DB`: the state a run starts from and leaves for
//! the next one (`docs/state.md`).

use crate::ast::Program;
use crate::check::Schema;
use crate::runtime::snapshot::Snapshot;
use crate::runtime::state_db::{self, Batch, Entries, Writer};
use crate::source::SourceMap;
use rusqlite::Connection;
use serde_json::json;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A checkpoint is taken at least this often during a run...
const EVERY: Duration = Duration::from_secs(1);
/// ... and at least every this many events.
const EVERY_EVENTS: u64 = 100_000;

/// What a state records of the program that made it: for the change rule,
/// and for `nurture inspect`, which reads a state without the program.
pub struct ProgramInfo {
    /// Each workflow's name and fingerprint, in declaration order.
    workflows: Vec<(String, String)>,
    /// Each contact field, `name: type`, in order.
    fields: Vec<String>,
    /// Event type names, by id.
    events: Vec<String>,
    /// Per workflow, the `file:line` of each instruction.
    places: Vec<Vec<String>>,
}

impl ProgramInfo {
    pub fn of(
        program: &Program,
        schema: &Schema,
        sources: &SourceMap,
        compiled: &crate::runtime::Compiled,
    ) -> ProgramInfo {
        ProgramInfo {
            workflows: crate::fmt::workflow_fingerprints(program, sources),
            fields: schema
                .fields
                .iter()
                .map(|f| format!("{}: {}", f.name, f.ty))
                .collect(),
            events: schema.events.iter().map(|e| e.name.clone()).collect(),
            places: compiled
                .workflows
                .iter()
                .map(|w| {
                    w.spans
                        .iter()
                        .map(|s| {
                            // The file's own name: a state does not depend on
                            // where the program was run from.
                            let f = sources.file(s.file);
                            let name = Path::new(&f.name)
                                .file_name()
                                .map_or(f.name.clone(), |n| n.to_string_lossy().into_owned());
                            format!("{name}:{}", f.line_col(s.start as usize).0)
                        })
                        .collect()
                })
                .collect(),
        }
    }

    fn to_json(&self) -> String {
        json!({
            "workflows": self.workflows,
            "fields": self.fields,
            "events": self.events,
            "places": self.places,
        })
        .to_string()
    }
}

/// How far the last events file was read: its first `bytes` bytes, holding
/// `lines` lines, whose BLAKE3 hash is `hash`.
#[derive(Clone, Debug, PartialEq)]
pub struct InputPos {
    pub bytes: u64,
    pub lines: u64,
    pub hash: String,
}

/// An open state: locked for this run.
pub struct StateFile {
    conn: Connection,
    path: PathBuf,
    /// The state to start from (none for a new one).
    pub snapshot: Option<Snapshot>,
    input: Option<InputPos>,
    /// The events file's bytes read by earlier runs, when this run's file
    /// begins with them ([`StateFile::resume`]).
    resumed: Option<ReadSoFar>,
    /// The length of the `--out` file when the state was written.
    pub out_len: Option<u64>,
    /// The same for the `--rejects` file.
    pub rejects_len: Option<u64>,
    /// The database held no state: this run begins it.
    pub fresh: bool,
}

/// The lengths of the `--out` and `--rejects` files a state records.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lengths {
    pub out: Option<u64>,
    pub rejects: Option<u64>,
}

/// Why a state cannot be used: the message, and whether the program is at
/// fault (exit 1) or the state file (exit 2).
pub struct Refused {
    pub message: String,
    pub program_changed: bool,
}

fn refused(message: String) -> Refused {
    Refused {
        message,
        program_changed: false,
    }
}

impl StateFile {
    /// Opens (or creates) the state at `path` for this run alone, and checks
    /// that `program` may go on from it.
    pub fn open(path: &Path, program: &ProgramInfo) -> Result<StateFile, Refused> {
        let shown = path.display();
        // One thread uses the connection at a time (it moves to the
        // checkpoint writer): SQLite's own locking is not needed.
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| refused(format!("cannot open the state `{shown}`: {e}")))?;
        let _ = conn.busy_timeout(std::time::Duration::ZERO);
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;")
            .and_then(|()| state_db::configure(&conn))
            .map_err(|e| {
                let busy = matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                );
                refused(if busy {
                    format!("the state `{shown}` is in use by another run")
                } else {
                    format!("cannot use the state `{shown}`: {e}")
                })
            })?;
        let snapshot = state_db::load(&conn).map_err(|e| refused(format!("`{shown}`: {e}")))?;
        let mut state = StateFile {
            conn,
            path: path.to_path_buf(),
            snapshot,
            input: None,
            resumed: None,
            out_len: None,
            rejects_len: None,
            fresh: false,
        };
        state.fresh = state.snapshot.is_none();
        if state.snapshot.is_some() {
            state.check_program(program)?;
            let length = |key: &str| -> Result<Option<u64>, Refused> {
                Ok(state_db::meta(&state.conn, key)
                    .map_err(|e| refused(format!("`{shown}`: {e}")))?
                    .and_then(|t| t.parse().ok()))
            };
            state.out_len = length("out")?;
            state.rejects_len = length("rejects")?;
            state.input = state_db::meta(&state.conn, "input")
                .map_err(|e| refused(format!("`{shown}`: {e}")))?
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|v| {
                    Some(InputPos {
                        bytes: v["bytes"].as_u64()?,
                        lines: v["lines"].as_u64()?,
                        hash: v["blake3"].as_str()?.to_string(),
                    })
                });
        }
        Ok(state)
    }

    /// The program change rule: the contact block as it was, the stored
    /// workflows in their places (new ones may follow them), and every
    /// workflow with journeys in flight unchanged but for comments and layout.
    fn check_program(&self, now: &ProgramInfo) -> Result<(), Refused> {
        let Some(text) = state_db::meta(&self.conn, "program").map_err(refused)? else {
            return Err(refused(format!(
                "`{}` was not written by `nurture run`",
                self.path.display()
            )));
        };
        let stored: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            refused(format!(
                "`{}`: a bad program record: {e}",
                self.path.display()
            ))
        })?;
        let changed = |message: String| Refused {
            message,
            program_changed: true,
        };
        let fields: Vec<String> =
            serde_json::from_value(stored["fields"].clone()).unwrap_or_default();
        if fields != now.fields {
            let first = fields
                .iter()
                .zip(&now.fields)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("`{a}` is now `{b}`"))
                .unwrap_or_else(|| "fields were added or removed".to_string());
            return Err(changed(format!(
                "the contact block changed since the state was written ({first}); the stored contacts no longer fit it"
            )));
        }
        let workflows: Vec<(String, String)> =
            serde_json::from_value(stored["workflows"].clone()).unwrap_or_default();
        let snap = self.snapshot.as_ref();
        let in_flight = |w: usize| {
            snap.map_or(0, |s| {
                s.journeys
                    .iter()
                    .filter(|j| j.workflow as usize == w)
                    .count()
            })
        };
        let mut problems = Vec::new();
        for (i, (name, print)) in workflows.iter().enumerate() {
            match now.workflows.get(i) {
                Some((n, p)) if n == name => {
                    if p != print && in_flight(i) > 0 {
                        problems.push(format!(
                            "workflow `{name}` changed, with {} journeys in flight",
                            in_flight(i)
                        ));
                    }
                }
                _ => problems.push(format!(
                    "workflow `{name}` was removed, renamed or moved (new workflows go after the existing ones), with {} journeys in flight",
                    in_flight(i)
                )),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(changed(format!(
                "the program cannot go on from `{}`: {}",
                self.path.display(),
                problems.join("; ")
            )))
        }
    }

    /// Where to read `file` from: past the bytes the last run read when the
    /// file begins with exactly those (a re-run, or a log that grew), else
    /// from its start. Returns the bytes and lines skipped.
    pub fn resume(&mut self, file: &mut File) -> std::io::Result<(u64, u64)> {
        let Some(pos) = &self.input else {
            return Ok((0, 0));
        };
        let mut digest = ReadSoFar::default();
        digest.read(&mut *file, pos.bytes)?;
        if digest.position() == *pos {
            self.resumed = Some(digest);
            Ok((pos.bytes, pos.lines))
        } else {
            file.seek(SeekFrom::Start(0))?;
            Ok((0, 0))
        }
    }

    /// Hands the state to a writer of checkpoints on its own thread, which
    /// records with each one the program, the files' lengths (syncing the
    /// files first) and how far `events` was read.
    pub fn checkpoints(
        self,
        program: &ProgramInfo,
        events: Option<&Path>,
        files: [Option<File>; 2],
    ) -> Result<Checkpoints, String> {
        let shown = self.path.display().to_string();
        let mut input = match events {
            Some(path) => {
                let digest = self.resumed.unwrap_or_default();
                let mut file = File::open(path)
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
                file.seek(SeekFrom::Start(digest.bytes))
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
                Some((file, digest))
            }
            None => None,
        };
        let mut program = Some(program.to_json());
        let before = move |mark: Mark| -> Result<Entries, String> {
            let failed = |e: std::io::Error| format!("cannot write the state `{shown}`: {e}");
            for f in files.iter().flatten() {
                f.sync_data().map_err(failed)?;
            }
            let mut entries = Vec::new();
            if let Some(p) = program.take() {
                entries.push(("program", p));
            }
            if let Some(n) = mark.files.out {
                entries.push(("out", n.to_string()));
            }
            if let Some(n) = mark.files.rejects {
                entries.push(("rejects", n.to_string()));
            }
            if let (Some(consumed), Some((file, digest))) = (mark.consumed, &mut input) {
                let to = consumed.saturating_sub(digest.bytes);
                digest.read(&mut *file, to).map_err(failed)?;
                entries.push(("input", digest.position().to_json()));
            }
            Ok(entries)
        };
        let path = self.path.display().to_string();
        let writer = Writer::spawn(self.conn, before)
            .map_err(|e| format!("cannot write the state `{path}`: {e}"))?;
        Ok(Checkpoints {
            writer,
            path,
            since: Instant::now(),
            events: 0,
        })
    }

    /// Writes the state whole, at once: a new state, with the files'
    /// lengths before the run.
    pub fn save(
        &mut self,
        snap: &Snapshot,
        program: &ProgramInfo,
        files: Lengths,
    ) -> Result<(), String> {
        let mut extra = vec![("program", program.to_json())];
        if let Some(n) = files.out {
            extra.push(("out", n.to_string()));
        }
        if let Some(n) = files.rejects {
            extra.push(("rejects", n.to_string()));
        }
        state_db::save_with(&mut self.conn, snap, &extra)
            .map_err(|e| format!("cannot write the state `{}`: {e}", self.path.display()))
    }
}

/// What a checkpoint records beside the state: how far the events file was
/// read (none for standard input: it is never skipped) and the files'
/// lengths.
pub struct Mark {
    consumed: Option<u64>,
    files: Lengths,
}

/// The checkpoints of a run (`docs/state.md`): taken at least every second
/// and every 100,000 events while the input is read, and at the end; each
/// written on its own thread, as one transaction of what changed.
pub struct Checkpoints {
    writer: Writer<Mark>,
    path: String,
    since: Instant,
    /// Events accepted at the last checkpoint.
    events: u64,
}

impl Checkpoints {
    /// Whether a checkpoint is due, with `events` accepted so far.
    pub fn due(&self, events: u64) -> bool {
        events.saturating_sub(self.events) >= EVERY_EVENTS || self.since.elapsed() >= EVERY
    }

    /// Hands a checkpoint to the writer: `delta` with the files' lengths
    /// (written out, not yet synced: the writer syncs them before it
    /// commits) and the bytes of the events file handled.
    pub fn take(
        &mut self,
        it: &mut crate::runtime::Interpreter,
        consumed: Option<u64>,
        files: Lengths,
    ) -> Result<(), String> {
        let mut batch = Batch::default();
        let totals = it.take_changes(&mut batch);
        self.events = totals.events;
        self.since = Instant::now();
        self.writer
            .send(batch, totals, Mark { consumed, files })
            .map_err(|e| self.failed(e))
    }

    /// Waits until every checkpoint is written.
    pub fn finish(&mut self) -> Result<(), String> {
        self.writer.finish().map_err(|e| self.failed(e))
    }

    fn failed(&self, e: String) -> String {
        if e.starts_with("cannot ") {
            e
        } else {
            format!("cannot write the state `{}`: {e}", self.path)
        }
    }
}

impl InputPos {
    fn to_json(&self) -> String {
        json!({ "bytes": self.bytes, "lines": self.lines, "blake3": self.hash }).to_string()
    }
}

/// The running digest of a file's first bytes: how many, their lines and
/// their BLAKE3 hash.
#[derive(Clone, Default)]
struct ReadSoFar {
    hasher: blake3::Hasher,
    bytes: u64,
    newlines: u64,
    last: Option<u8>,
}

impl ReadSoFar {
    /// Reads on `n` bytes of `reader` (fewer at its end).
    fn read(&mut self, reader: impl Read, n: u64) -> std::io::Result<()> {
        let mut reader = reader.take(n);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.hasher.update(&buf[..n]);
            self.bytes += n as u64;
            self.newlines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
            self.last = Some(buf[n - 1]);
        }
    }

    /// The position after the bytes read: a last line without its newline
    /// counts as a line.
    fn position(&self) -> InputPos {
        InputPos {
            bytes: self.bytes,
            lines: self.newlines + u64::from(self.last.is_some_and(|b| b != b'\n')),
            hash: self.hasher.finalize().to_hex().to_string(),
        }
    }
}
