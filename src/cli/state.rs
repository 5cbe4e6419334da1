//! `nurture run --state DB`: the state a run starts from and leaves for
//! the next one (`docs/state.md`).

use crate::runtime::state::{ProgramRecord, SqliteStore, StateError, StateStore};
use crate::runtime::Snapshot;
use crate::runtime::{Entries, Writer};
use serde_json::json;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A checkpoint is taken at least this often during a run...
const EVERY: Duration = Duration::from_secs(1);
/// ... and at least every this many events (`NURTURE_CHECKPOINT_EVENTS`
/// may ask for more often).
const EVERY_EVENTS: u64 = 100_000;

/// Events between checkpoints: [`EVERY_EVENTS`], or fewer when the
/// environment asks (tests of crash safety, runs that want to lose less).
fn every_events() -> u64 {
    std::env::var("NURTURE_CHECKPOINT_EVENTS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .map_or(EVERY_EVENTS, |n| n.min(EVERY_EVENTS))
}

/// What a state records of the program that made it: the runtime's typed
/// record, with what only the front end knows (each workflow's
/// fingerprint, each instruction's `file:line`).
pub type ProgramInfo = ProgramRecord;

/// Which file an output file is: its absolute path, device and inode.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    /// The file at `path` now, if there is one.
    pub fn of(path: &Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileId {
            path: std::fs::canonicalize(path).ok()?,
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Whether `path` names this file now.
    pub fn is(&self, path: &Path) -> bool {
        FileId::of(path).is_some_and(|f| f.dev == self.dev && f.ino == self.ino)
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
    store: SqliteStore,
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
    /// The state was moved to a changed program's places: the run writes
    /// it whole before its first event, so no row keeps the old places.
    pub migrated: bool,
    /// The journeys the program change ends, for the run to record before
    /// anything else runs.
    pub change_exits: Vec<crate::runtime::ChangeExit>,
    /// Which files the last run's `--out` and `--rejects` were.
    pub out_file: Option<FileId>,
    pub rejects_file: Option<FileId>,
    /// This run's, recorded with every checkpoint.
    files: Vec<(&'static str, String)>,
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
    pub fn open(
        path: &Path,
        program: &ProgramInfo,
        compiled: &crate::runtime::Compiled,
    ) -> Result<StateFile, Refused> {
        let shown = path.display();
        let mut store = SqliteStore::open_for_run(path).map_err(|e| refused(e.to_string()))?;
        let snapshot = store
            .load()
            .map_err(|e| refused(format!("`{shown}`: {e}")))?;
        let mut state = StateFile {
            store,
            path: path.to_path_buf(),
            snapshot,
            input: None,
            resumed: None,
            out_len: None,
            rejects_len: None,
            fresh: false,
            migrated: false,
            change_exits: Vec::new(),
            out_file: None,
            rejects_file: None,
            files: Vec::new(),
        };
        state.fresh = state.snapshot.is_none();
        if let Some(snap) = state.snapshot.take() {
            let stored = state.stored_program()?;
            let taken = crate::runtime::state::take_up(&stored, program, compiled, snap)
                .map_err(|e| state.refusal(e))?;
            state.snapshot = Some(taken.snapshot);
            state.migrated = taken.rewritten;
            state.change_exits = taken.exits;
            let length = |key: &str| -> Result<Option<u64>, Refused> {
                Ok(state
                    .store
                    .entry(key)
                    .map_err(|e| refused(format!("`{shown}`: {e}")))?
                    .and_then(|t| t.parse().ok()))
            };
            state.out_len = length("out")?;
            state.rejects_len = length("rejects")?;
            let file = |key: &str| -> Result<Option<FileId>, Refused> {
                match state
                    .store
                    .entry(key)
                    .map_err(|e| refused(format!("`{shown}`: {e}")))?
                {
                    None => Ok(None),
                    Some(t) => serde_json::from_str(&t)
                        .map(Some)
                        .map_err(|e| refused(format!("`{shown}`: a bad `{key}` record: {e}"))),
                }
            };
            state.out_file = file("out_file")?;
            state.rejects_file = file("rejects_file")?;
            state.input = state
                .store
                .entry("input")
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

    /// The program record the state keeps, read strictly.
    fn stored_program(&self) -> Result<ProgramRecord, Refused> {
        let text = self
            .store
            .entry("program")
            .map_err(|e| self.refusal(e))?
            .ok_or_else(|| self.refusal(StateError::NoProgram))?;
        ProgramRecord::parse(&text).map_err(|e| self.refusal(e))
    }

    /// A state error as the run says it: naming the state, and whether the
    /// program is at fault (exit 1) or the state (exit 2).
    fn refusal(&self, e: StateError) -> Refused {
        Refused {
            message: format!("`{}`: {e}", self.path.display()),
            program_changed: e.is_program_change(),
        }
    }

    /// The database, for a driver that writes it itself (the live service).
    pub fn into_connection(self) -> rusqlite::Connection {
        self.store.into_connection()
    }

    /// Records which files this run writes its actions and rejects to.
    pub fn identify_files(&mut self, out: Option<&Path>, rejects: Option<&Path>) {
        self.files.clear();
        for (key, path) in [("out_file", out), ("rejects_file", rejects)] {
            if let Some(id) = path.and_then(FileId::of) {
                self.files
                    .push((key, serde_json::to_string(&id).unwrap_or_default()));
            }
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
        let mut files_meta = Some(self.files.clone());
        let before = move |mark: Mark| -> Result<Entries, String> {
            let failed = |e: std::io::Error| format!("cannot write the state `{shown}`: {e}");
            for f in files.iter().flatten() {
                f.sync_data().map_err(failed)?;
            }
            let mut entries = Vec::new();
            if let Some(p) = program.take() {
                entries.push(("program", p));
            }
            entries.extend(files_meta.take().into_iter().flatten());
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
        let writer = Writer::spawn(self.store.into_connection(), before)
            .map_err(|e| format!("cannot write the state `{path}`: {e}"))?;
        Ok(Checkpoints {
            writer,
            path,
            since: Instant::now(),
            events: 0,
            every: every_events(),
        })
    }

    /// Writes the state whole, at once: a new state, or one moved to a
    /// changed program's places, with the files' lengths before the run and
    /// the input position it recorded.
    pub fn save(
        &mut self,
        snap: &Snapshot,
        program: &ProgramInfo,
        files: Lengths,
    ) -> Result<(), String> {
        let mut extra = vec![("program", program.to_json())];
        extra.extend(self.files.iter().cloned());
        if let Some(input) = &self.input {
            extra.push(("input", input.to_json()));
        }
        if let Some(n) = files.out {
            extra.push(("out", n.to_string()));
        }
        if let Some(n) = files.rejects {
            extra.push(("rejects", n.to_string()));
        }
        self.store
            .write_whole(snap, &extra)
            .map_err(|e| e.to_string())
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
    /// Events between checkpoints.
    every: u64,
}

impl Checkpoints {
    /// Whether a checkpoint is due, with `events` accepted so far.
    pub fn due(&self, events: u64) -> bool {
        events.saturating_sub(self.events) >= self.every || self.since.elapsed() >= EVERY
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
        let mut checkpoint = self.writer.checkpoint();
        let totals = it.take_changes(&mut checkpoint);
        let events = totals.events;
        let sent = checkpoint.commit(totals, Mark { consumed, files });
        self.events = events;
        self.since = Instant::now();
        sent.map_err(|e| self.failed(e))
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
