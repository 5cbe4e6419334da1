//! `nurture run --state DB`: the state a run starts from and leaves for
//! the next one (`docs/state.md`).

use crate::ast::Program;
use crate::check::Schema;
use crate::runtime::snapshot::Snapshot;
use crate::runtime::state_db;
use crate::source::SourceMap;
use rusqlite::Connection;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

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
/// `lines` lines, whose SHA-256 is `sha256`.
#[derive(Clone, Debug, PartialEq)]
pub struct InputPos {
    pub bytes: u64,
    pub lines: u64,
    pub sha256: String,
}

/// An open state: locked for this run.
pub struct StateFile {
    conn: Connection,
    path: PathBuf,
    /// The state to start from (none for a new one).
    pub snapshot: Option<Snapshot>,
    input: Option<InputPos>,
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
        let conn = Connection::open(path)
            .map_err(|e| refused(format!("cannot open the state `{shown}`: {e}")))?;
        let _ = conn.busy_timeout(std::time::Duration::ZERO);
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;")
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
                        sha256: v["sha256"].as_str()?.to_string(),
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
    pub fn resume(&self, file: &mut std::fs::File) -> std::io::Result<(u64, u64)> {
        let Some(pos) = &self.input else {
            return Ok((0, 0));
        };
        let (read, _, _, sha256) = digest((&mut *file).take(pos.bytes))?;
        let same = read == pos.bytes && sha256 == pos.sha256;
        if same {
            Ok((pos.bytes, pos.lines))
        } else {
            file.seek(SeekFrom::Start(0))?;
            Ok((0, 0))
        }
    }

    /// Writes the state the run leaves, with where the input was read to
    /// (`None` for standard input: it is never skipped).
    pub fn save(
        &mut self,
        snap: &Snapshot,
        program: &ProgramInfo,
        input: Option<InputPos>,
        files: Lengths,
    ) -> Result<(), String> {
        let input = input.or_else(|| self.input.clone());
        let mut extra = vec![("program", program.to_json())];
        if let Some(n) = files.out {
            extra.push(("out", n.to_string()));
        }
        if let Some(n) = files.rejects {
            extra.push(("rejects", n.to_string()));
        }
        if let Some(i) = &input {
            extra.push((
                "input",
                json!({ "bytes": i.bytes, "lines": i.lines, "sha256": i.sha256 }).to_string(),
            ));
        }
        state_db::save_with(&mut self.conn, snap, &extra)
            .map_err(|e| format!("cannot write the state `{}`: {e}", self.path.display()))
    }
}

/// The position after reading the first `bytes` bytes of the file at
/// `path` (read a block at a time, never held whole).
pub fn position(path: &Path, bytes: u64) -> std::io::Result<InputPos> {
    let (read, lines, last, sha256) = digest(std::fs::File::open(path)?.take(bytes))?;
    Ok(InputPos {
        bytes: read,
        lines: lines + u64::from(last.is_some_and(|b| b != b'\n')),
        sha256,
    })
}

/// Bytes read, newlines, the last byte and the SHA-256 of `reader`.
fn digest(mut reader: impl Read) -> std::io::Result<(u64, u64, Option<u8>, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let (mut read, mut lines, mut last) = (0u64, 0u64, None);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        read += n as u64;
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        last = Some(buf[n - 1]);
    }
    Ok((read, lines, last, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
