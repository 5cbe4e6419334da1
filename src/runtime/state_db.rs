//! A run's state in SQLite: a [`Snapshot`] written as rows a person can
//! read with the `sqlite3` shell (values as small JSON), and read back;
//! and the checkpoints of a run, each a [`Batch`] of the contacts that
//! changed, written on a thread of their own by a [`Writer`].
//!
//! Tables: `meta` (key, value), `contacts` (one row per contact, in
//! first-seen order), `journeys` (those in flight), `workflow_counts` (per
//! workflow). The timers are not stored: each
//! waiting journey and each pending inactivity period has exactly one,
//! which the rows determine. Values are JSON: `null` for unset, numbers
//! (integers for `int`, with a fraction for `float`), strings, `{"t": ms}`
//! for datetimes, `{"d": ms}` for durations, `{"s": [...]}` for sets,
//! arrays for lists.

use super::output::{FunnelCounts, WorkflowStats};
use super::record::Payload;
use super::snapshot::{
    Changes, ContactRow, EventRow, JourneyChange, JourneyRow, Snapshot, TallyRow, Totals,
};
use super::store::NEVER;
use super::value::{write_json_str, StrSet, Value};
use rusqlite::{params, Connection, OptionalExtension, Statement};
use serde_json::{json, Value as Json};
use std::fmt::Write as _;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The layout written; a state of another layout is refused. (Format 1,
/// which kept journeys and timers in tables of their own, was never
/// released.)
pub const FORMAT: i64 = 6;

/// The oldest layout read: format 5 kept attributes by position (format 6
/// keeps them by field name, readable in the `sqlite3` shell); a run
/// rewrites a format 5 state's rows as it changes them, and its meta as 6.
pub const OLDEST_READ: i64 = 5;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
  n INTEGER PRIMARY KEY, id TEXT NOT NULL, attrs TEXT NOT NULL,
  history TEXT NOT NULL, tallies TEXT NOT NULL, last_entry TEXT NOT NULL,
  last_activity INTEGER, activity_seq INTEGER NOT NULL,
  inactive_pending INTEGER NOT NULL, cond_bits INTEGER NOT NULL, sends TEXT NOT NULL,
  dates TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journeys (
  id INTEGER PRIMARY KEY, workflow INTEGER NOT NULL, contact INTEGER NOT NULL,
  pc INTEGER NOT NULL, entered_at INTEGER NOT NULL, generation INTEGER NOT NULL,
  waiting_for INTEGER, wake_at INTEGER NOT NULL, trigger_event TEXT, received_event TEXT,
  stages INTEGER NOT NULL, arms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS workflow_counts (
  workflow INTEGER PRIMARY KEY, entered INTEGER NOT NULL, converted INTEGER NOT NULL,
  exited INTEGER NOT NULL, completed INTEGER NOT NULL, failed INTEGER NOT NULL,
  skipped INTEGER NOT NULL, suppressed TEXT NOT NULL, funnel TEXT NOT NULL,
  capped TEXT NOT NULL);
";

/// How the database is written: a write-ahead log, synced at each commit
/// only as far as a crash of the process needs (the operating system keeps
/// what was written). After a power loss the state may be an earlier
/// checkpoint, whose recorded `--out` length then cuts the file back.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 4096;",
    )
}

/// Opens a state only to read it (`nurture inspect`, the REPL). Opened for
/// writing where the file allows, with every write refused, so that closing
/// it leaves no write-ahead log files beside the database; read-only where
/// it does not.
pub fn open_to_read(path: &std::path::Path) -> Result<Connection, String> {
    use rusqlite::OpenFlags;
    if let Some(problem) = path_problem(path, false) {
        return Err(problem);
    }
    let probe = |c: Connection| -> rusqlite::Result<Connection> {
        c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(c)
    };
    let writable = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .and_then(|c| c.execute_batch("PRAGMA query_only = ON").map(|()| c))
        .and_then(probe);
    let e = match writable {
        Ok(c) => return Ok(c),
        Err(e) => e,
    };
    if busy(&e) {
        return Err(in_use(path));
    }
    let read_only =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).and_then(probe);
    match read_only {
        Ok(c) => Ok(c),
        Err(e) if busy(&e) => Err(in_use(path)),
        // A read-only file or directory (a backup, a read-only mount): the
        // WAL's shared memory cannot be made beside it. Nothing writes such
        // a state, so it is read as it is, without locks.
        Err(_) => {
            let uri = format!("file:{}?immutable=1", uri_path(path));
            Connection::open_with_flags(
                uri,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
            )
            .and_then(probe)
            .map_err(|e| format!("cannot read the state `{}`: {e}", path.display()))
        }
    }
}

fn busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn in_use(path: &std::path::Path) -> String {
    format!(
        "the state `{}` is in use by a run, which holds it until it ends; inspect it then",
        path.display()
    )
}

/// A path as the path of a `file:` URI: absolute, with `%`, `?` and `#`
/// escaped.
fn uri_path(path: &std::path::Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::new();
    for c in abs.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// Why `path` cannot be a state, said before SQLite is asked (which would
/// say "disk I/O error" or take a name as an in-memory database): an
/// SQLite special name, a directory, a pipe or device, an empty or too
/// short file, a file that cannot be read, or (`write`) written.
pub fn path_problem(path: &std::path::Path, write: bool) -> Option<String> {
    let shown = path.display();
    let name = path.to_string_lossy();
    if name == ":memory:" || name.starts_with("file:") || name.is_empty() {
        return Some(format!(
            "`{shown}` is not a file name: a state is a database file on disk (SQLite's `:memory:` and `file:` names are not taken)"
        ));
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(format!("cannot use the state `{shown}`: {e}")),
    };
    if meta.is_dir() {
        return Some(format!("`{shown}` is a directory, not a state file"));
    }
    if !meta.is_file() {
        return Some(format!(
            "`{shown}` is not a regular file (a pipe or a device?): a state is a database file"
        ));
    }
    if meta.len() == 0 {
        return Some(format!(
            "`{shown}` is empty (0 bytes): not a state; remove it to begin a new state there"
        ));
    }
    if meta.len() < 100 {
        return Some(format!(
            "`{shown}` is not a database ({} bytes, shorter than a database's header)",
            meta.len()
        ));
    }
    if let Err(e) = std::fs::File::open(path) {
        return Some(format!("cannot read the state `{shown}`: {e}"));
    }
    if write {
        if let Err(e) = std::fs::OpenOptions::new().append(true).open(path) {
            return Some(if e.kind() == std::io::ErrorKind::PermissionDenied {
                format!("the state `{shown}` is read-only: a run writes it (`nurture inspect` reads it)")
            } else {
                format!("cannot write the state `{shown}`: {e}")
            });
        }
    }
    None
}

/// Writes `snap` as the whole state, in one transaction.
pub fn save(conn: &mut Connection, snap: &Snapshot) -> rusqlite::Result<()> {
    save_with(conn, snap, &[])
}

/// [`save`], with the driver's own entries (`extra`, key and text) kept in
/// `meta` by the same transaction; [`meta`] reads them back.
pub fn save_with(
    conn: &mut Connection,
    snap: &Snapshot,
    extra: &[(&str, String)],
) -> rusqlite::Result<()> {
    let mut batch = Batch::default();
    batch.fields(&snap.totals.fields);
    for (n, c) in snap.contacts.iter().enumerate() {
        batch.contact(n as u32, c);
    }
    for j in &snap.journeys {
        batch.journey(j.id, JourneyChange::Started(j));
    }
    write(conn, &batch, &snap.totals, extra, true)
}

/// Writes a batch of changed contacts over the state the database holds,
/// with the totals and the driver's `extra` entries of `meta`, in one
/// transaction. `whole`: the batch is the whole state, and replaces what
/// the database holds.
pub fn write(
    conn: &mut Connection,
    batch: &Batch,
    totals: &Totals,
    extra: &[(&str, String)],
    whole: bool,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(SCHEMA)?;
    if whole {
        tx.execute_batch(
            "DELETE FROM meta; DELETE FROM contacts; DELETE FROM journeys; DELETE FROM workflow_counts;",
        )?;
    }
    batch.write(&tx)?;
    write_totals(&tx, totals, extra)?;
    tx.commit()
}

fn write_totals(tx: &Connection, t: &Totals, extra: &[(&str, String)]) -> rusqlite::Result<()> {
    let meta = [
        ("format", FORMAT.to_string()),
        ("clock", json!(t.clock).to_string()),
        ("seq", t.seq.to_string()),
        ("events", t.events.to_string()),
        ("free", json!(t.free).to_string()),
        ("actions", json!(t.actions).to_string()),
        (
            "fields",
            json!(t.fields.iter().map(|f| &**f).collect::<Vec<&str>>()).to_string(),
        ),
    ];
    let mut put = tx.prepare_cached("INSERT OR REPLACE INTO meta VALUES (?1, ?2)")?;
    for (k, v) in meta
        .iter()
        .map(|(k, v)| (*k, v))
        .chain(extra.iter().map(|(k, v)| (*k, v)))
    {
        put.execute(params![k, v])?;
    }
    let mut put = tx.prepare_cached(
        "INSERT OR REPLACE INTO workflow_counts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (w, s) in t.stats.iter().enumerate() {
        let funnel = t.funnel.get(w).cloned().unwrap_or_default();
        put.execute(params![
            w as i64,
            s.entered as i64,
            s.converted as i64,
            s.exited as i64,
            s.completed as i64,
            s.failed as i64,
            s.skipped as i64,
            json!(s.suppressed).to_string(),
            json!({ "stages": funnel.stages, "arms": funnel.arms }).to_string(),
            json!(s.capped).to_string()
        ])?;
    }
    Ok(())
}

/// Changed rows encoded as the database keeps them: what a checkpoint
/// writes, compact (the text columns of every row in one buffer) and ready
/// to bind. Filled one row at a time, as a [`Changes`].
#[derive(Debug, Default)]
pub struct Batch {
    text: String,
    /// The contact fields' names, by slot (attributes are written by name).
    fields: Vec<Arc<str>>,
    contacts: Vec<ContactCols>,
    /// Journeys started: written whole.
    journeys: Vec<JourneyCols>,
    /// Journeys that moved on: their changing columns updated.
    moved: Vec<JourneyCols>,
    /// Journeys that ended.
    gone: Vec<u32>,
}

/// Where a column's text lies in [`Batch::text`].
type Span = (usize, usize);

#[derive(Debug)]
struct ContactCols {
    n: u32,
    /// `id`, `attrs`, `history`, `tallies`, `last_entry`, `sends`, `dates`.
    text: [Span; 7],
    last_activity: i64,
    activity_seq: u64,
    inactive_pending: u64,
    cond_bits: u64,
}

#[derive(Debug)]
struct JourneyCols {
    id: u32,
    workflow: u16,
    waiting_for: Option<u16>,
    contact: u32,
    pc: u32,
    entered_at: i64,
    generation: u64,
    wake_at: i64,
    trigger: Option<Span>,
    received: Option<Span>,
    stages: u64,
    arms: u64,
}

impl Changes for Batch {
    fn fields(&mut self, names: &[Arc<str>]) {
        if self.fields.len() != names.len() || self.fields.iter().zip(names).any(|(a, b)| a != b) {
            self.fields = names.to_vec();
        }
    }

    fn expect(&mut self, contacts: usize, journeys: usize) {
        // About 120 bytes of text a contact, 50 a journey (its trigger).
        self.text.reserve(contacts * 120 + journeys * 50);
        self.contacts.reserve(contacts);
        self.journeys.reserve(journeys);
    }

    fn contact(&mut self, n: u32, c: &ContactRow) {
        let text = [
            self.column(|t| t.push_str(&c.id)),
            {
                let fields = std::mem::take(&mut self.fields);
                let col = self.column(|t| write_attrs(t, &fields, &c.attrs));
                self.fields = fields;
                col
            },
            self.column(|t| write_list(t, &c.history, |t, e| write_event(t, e))),
            self.column(|t| write_list(t, &c.tallies, write_tally)),
            self.column(|t| write_list(t, &c.last_entry, |t, at| write_time(t, *at))),
            self.column(|t| {
                if c.sends.iter().all(Vec::is_empty) {
                    t.push_str("[]");
                } else {
                    write_list(t, &c.sends, |t, times| {
                        write_list(t, times, |t, at| int(t, *at))
                    });
                }
            }),
            self.column(|t| {
                write_list(t, &c.dates, |t, (at, seq)| {
                    t.push('[');
                    write_time(t, *at);
                    t.push(',');
                    int(t, *seq);
                    t.push(']');
                })
            }),
        ];
        self.contacts.push(ContactCols {
            n,
            text,
            last_activity: c.last_activity,
            activity_seq: c.activity_seq,
            inactive_pending: c.inactive_pending,
            cond_bits: c.cond_bits,
        });
    }

    fn journey(&mut self, id: u32, change: JourneyChange<'_>) {
        let (j, started) = match change {
            JourneyChange::Started(j) => (j, true),
            JourneyChange::Moved(j) => (j, false),
            JourneyChange::Ended => {
                self.gone.push(id);
                return;
            }
        };
        // A journey's trigger never changes: written when it starts.
        let trigger = match &j.trigger {
            Some(e) if started => Some(self.column(|t| write_event(t, e))),
            _ => None,
        };
        let received = j
            .received
            .as_ref()
            .map(|e| self.column(|t| write_event(t, e)));
        let to = if started {
            &mut self.journeys
        } else {
            &mut self.moved
        };
        to.push(JourneyCols {
            id,
            workflow: j.workflow,
            waiting_for: j.waiting_for,
            contact: j.contact,
            pc: j.pc,
            entered_at: j.entered_at,
            generation: j.generation,
            wake_at: j.wake_at,
            trigger,
            received,
            stages: j.stages,
            arms: j.arms,
        });
    }
}

impl Batch {
    /// Rows in the batch: contacts and journeys changed, journeys ended.
    pub fn len(&self) -> usize {
        self.contacts.len() + self.journeys.len() + self.moved.len() + self.gone.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the batch, keeping its memory for the next unless it grew
    /// past what a checkpoint of a run needs (the first write of a large
    /// state); whether it is worth keeping.
    fn clear(&mut self) -> bool {
        const KEEP: usize = 16 << 20;
        self.text.clear();
        self.contacts.clear();
        self.journeys.clear();
        self.moved.clear();
        self.gone.clear();
        self.text.capacity() <= KEEP
            && self.contacts.capacity() * std::mem::size_of::<ContactCols>() <= KEEP
    }

    /// Encodes one column with `f`; where it lies.
    fn column(&mut self, f: impl FnOnce(&mut String)) -> Span {
        let start = self.text.len();
        f(&mut self.text);
        (start, self.text.len())
    }

    fn write(&self, tx: &Connection) -> rusqlite::Result<()> {
        let text = |(a, b): Span| &self.text[a..b];
        rows(
            tx,
            "INSERT OR REPLACE INTO contacts VALUES ",
            12,
            "",
            &self.contacts,
            |put, i, c| {
                let [id, attrs, history, tallies, last_entry, sends, dates] = c.text.map(text);
                put.raw_bind_parameter(i + 1, c.n)?;
                put.raw_bind_parameter(i + 2, id)?;
                put.raw_bind_parameter(i + 3, attrs)?;
                put.raw_bind_parameter(i + 4, history)?;
                put.raw_bind_parameter(i + 5, tallies)?;
                put.raw_bind_parameter(i + 6, last_entry)?;
                put.raw_bind_parameter(
                    i + 7,
                    (c.last_activity != NEVER).then_some(c.last_activity),
                )?;
                put.raw_bind_parameter(i + 8, c.activity_seq as i64)?;
                put.raw_bind_parameter(i + 9, c.inactive_pending as i64)?;
                put.raw_bind_parameter(i + 10, c.cond_bits as i64)?;
                put.raw_bind_parameter(i + 11, sends)?;
                put.raw_bind_parameter(i + 12, dates)
            },
        )?;
        let journey = |put: &mut Statement, i: usize, j: &JourneyCols| {
            put.raw_bind_parameter(i + 1, j.id)?;
            put.raw_bind_parameter(i + 2, j.workflow)?;
            put.raw_bind_parameter(i + 3, j.contact)?;
            put.raw_bind_parameter(i + 4, j.pc)?;
            put.raw_bind_parameter(i + 5, j.entered_at)?;
            put.raw_bind_parameter(i + 6, j.generation as i64)?;
            put.raw_bind_parameter(i + 7, j.waiting_for)?;
            put.raw_bind_parameter(i + 8, j.wake_at)?;
            put.raw_bind_parameter(i + 9, j.trigger.map(text))?;
            put.raw_bind_parameter(i + 10, j.received.map(text))?;
            put.raw_bind_parameter(i + 11, j.stages as i64)?;
            put.raw_bind_parameter(i + 12, j.arms as i64)
        };
        rows(
            tx,
            "INSERT OR REPLACE INTO journeys VALUES ",
            12,
            "",
            &self.journeys,
            journey,
        )?;
        // A journey that moved on keeps its trigger (not in the batch): the
        // row is there, so only the columns that move are set.
        rows(
            tx,
            "INSERT INTO journeys VALUES ",
            12,
            " ON CONFLICT (id) DO UPDATE SET pc = excluded.pc, generation = excluded.generation, \
             waiting_for = excluded.waiting_for, wake_at = excluded.wake_at, \
             received_event = excluded.received_event, stages = excluded.stages, arms = excluded.arms",
            &self.moved,
            journey,
        )?;
        rows(
            tx,
            "DELETE FROM journeys WHERE id IN ",
            0,
            "",
            &self.gone,
            |put, i, id| put.raw_bind_parameter(i + 1, id),
        )
    }
}

/// Rows a statement writes at once: one statement per row costs SQLite
/// about as much again as the row itself.
const ROWS: usize = 32;

/// Runs `head` followed by the rows of `items` (`cols` parameters each, or
/// one for a `cols` of 0, written `(?, ?, ...)`) then `tail`, [`ROWS`] rows
/// a statement; `bind` binds an item's parameters after the `i` first.
fn rows<T>(
    tx: &Connection,
    head: &str,
    cols: usize,
    tail: &str,
    items: &[T],
    bind: impl Fn(&mut Statement, usize, &T) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let sql = |n: usize| {
        let row = match cols {
            0 => "?".to_string(),
            c => format!("({})", vec!["?"; c].join(", ")),
        };
        let list = vec![row; n].join(", ");
        match cols {
            0 => format!("{head}({list}){tail}"),
            _ => format!("{head}{list}{tail}"),
        }
    };
    let width = cols.max(1);
    let mut chunks = items.chunks_exact(ROWS);
    if chunks.len() > 0 {
        let mut put = tx.prepare_cached(&sql(ROWS))?;
        for chunk in chunks.by_ref() {
            for (k, item) in chunk.iter().enumerate() {
                bind(&mut put, k * width, item)?;
            }
            put.raw_execute()?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut put = tx.prepare(&sql(rest.len()))?;
        for (k, item) in rest.iter().enumerate() {
            bind(&mut put, k * width, item)?;
        }
        put.raw_execute()?;
    }
    Ok(())
}

/// Reads the state back; `None` when the database holds none yet.
pub fn load(conn: &Connection) -> Result<Option<Snapshot>, String> {
    let has_meta: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| format!("cannot read the state: {e}"))?;
    if has_meta.is_none() {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        // An empty database is a state not begun; anything else is not ours.
        return if tables == 0 {
            Ok(None)
        } else {
            Err("the database is not a nurture state (it has no `meta` table)".into())
        };
    }
    let meta = |key: &str| -> Result<String, String> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .map_err(|e| format!("the state has no `{key}`: {e}"))
    };
    let format: i64 = meta("format")?
        .parse()
        .map_err(|_| "a bad `format`".to_string())?;
    if format > FORMAT {
        return Err(format!(
            "the state is of format {format}, newer than this nurture reads ({FORMAT})"
        ));
    }
    if format < OLDEST_READ {
        return Err(format!(
            "the state is of format {format}, an unreleased layout this nurture does not read (it reads {OLDEST_READ} to {FORMAT}); start a new state"
        ));
    }
    let parse = |s: String| serde_json::from_str::<Json>(&s).map_err(|e| e.to_string());
    let clock = match parse(meta("clock")?).map_err(|e| format!("table meta, row clock: {e}"))? {
        Json::Null => None,
        Json::Number(n) if n.as_i64().is_some() => n.as_i64(),
        other => {
            return Err(format!(
                "table meta, row clock: expected null (not started) or an integer of milliseconds, found {}",
                crate::suggest::echo(&other.to_string())
            ))
        }
    };
    let seq = meta("seq")?
        .parse()
        .map_err(|_| "a bad `seq`".to_string())?;
    let events = meta("events")?
        .parse()
        .map_err(|_| "a bad `events`".to_string())?;
    let free: Vec<u32> = serde_json::from_str(&meta("free")?).map_err(|e| e.to_string())?;
    let actions = serde_json::from_str(&meta("actions")?).map_err(|e| e.to_string())?;
    // Format 6 names the fields; format 5 kept attributes by slot.
    let fields: Vec<Arc<str>> = match meta("fields") {
        Ok(text) => serde_json::from_str::<Vec<String>>(&text)
            .map_err(|e| format!("a bad `fields`: {e}"))?
            .into_iter()
            .map(Arc::from)
            .collect(),
        Err(_) if format < 6 => Vec::new(),
        Err(e) => return Err(e),
    };
    let err = |e: rusqlite::Error| e.to_string();
    let mut contacts = Vec::new();
    let mut stmt = conn
        .prepare("SELECT id, attrs, history, tallies, last_entry, last_activity, activity_seq, inactive_pending, cond_bits, sends, dates FROM contacts ORDER BY n")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    while let Some(r) = rows.next().map_err(err)? {
        let n = contacts.len();
        // Every error names the table, the row and the column.
        let at = |col: &'static str| {
            move |e: String| format!("table contacts, row {n}, column {col}: {e}")
        };
        let text =
            |i: usize| -> Result<Json, String> { parse(r.get::<_, String>(i).map_err(err)?) };
        let list = |i: usize| -> Result<Vec<Json>, String> { array(&text(i)?).cloned() };
        let int = |i: usize| -> Result<i64, String> { r.get::<_, i64>(i).map_err(err) };
        contacts.push(ContactRow {
            id: r.get::<_, String>(0).map_err(err).map_err(at("id"))?.into(),
            attrs: text(1)
                .and_then(|j| attrs(&j, &fields))
                .map_err(at("attrs"))?,
            history: list(2)
                .and_then(|l| l.iter().map(event_row).collect::<Result<_, _>>())
                .map_err(at("history"))?,
            tallies: list(3)
                .and_then(|l| l.iter().map(tally_row).collect::<Result<_, _>>())
                .map_err(at("tallies"))?,
            last_entry: list(4)
                .and_then(|l| l.iter().map(time).collect::<Result<_, _>>())
                .map_err(at("last_entry"))?,
            last_activity: r
                .get::<_, Option<i64>>(5)
                .map_err(err)
                .map_err(at("last_activity"))?
                .unwrap_or(NEVER),
            activity_seq: int(6).map_err(at("activity_seq"))? as u64,
            inactive_pending: int(7).map_err(at("inactive_pending"))? as u64,
            cond_bits: int(8).map_err(at("cond_bits"))? as u64,
            sends: text(9)
                .and_then(|j| serde_json::from_value(j).map_err(|e| e.to_string()))
                .map_err(at("sends"))?,
            dates: list(10)
                .and_then(|l| {
                    l.iter()
                        .map(|d| -> Result<(i64, u64), String> {
                            let pair = array(d)?;
                            let at = pair.first().map_or(Ok(NEVER), time)?;
                            let seq = pair
                                .get(1)
                                .and_then(Json::as_u64)
                                .ok_or("a bad date trigger")?;
                            Ok((at, seq))
                        })
                        .collect::<Result<_, _>>()
                })
                .map_err(at("dates"))?,
        });
    }
    let mut journeys = Vec::new();
    let mut stmt = conn
        .prepare("SELECT id, workflow, contact, pc, entered_at, generation, waiting_for, wake_at, trigger_event, received_event, stages, arms FROM journeys ORDER BY id")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    const COLUMNS: [&str; 12] = [
        "id",
        "workflow",
        "contact",
        "pc",
        "entered_at",
        "generation",
        "waiting_for",
        "wake_at",
        "trigger_event",
        "received_event",
        "stages",
        "arms",
    ];
    while let Some(r) = rows.next().map_err(err)? {
        let row = r
            .get::<_, i64>(0)
            .map_or_else(|_| format!("{}", journeys.len()), |id| id.to_string());
        let at = |i: usize| {
            let row = row.clone();
            move |e: String| format!("table journeys, row {row}, column {}: {e}", COLUMNS[i])
        };
        // Integers in range for their column ("out of range", not "invalid
        // type"), by column.
        let get =
            |i: usize| -> Result<i64, String> { r.get::<_, i64>(i).map_err(err).map_err(at(i)) };
        let small = |i: usize, max: i64| -> Result<i64, String> {
            let v = get(i)?;
            if v < 0 || v > max {
                return Err(at(i)(format!("{v} is out of range (0 to {max})")));
            }
            Ok(v)
        };
        let ev = |i: usize| -> Result<Option<Arc<EventRow>>, String> {
            match r.get::<_, Option<String>>(i).map_err(err).map_err(at(i))? {
                Some(s) => Ok(Some(parse(s).and_then(|j| event_row(&j)).map_err(at(i))?)),
                None => Ok(None),
            }
        };
        let waiting_for = match r.get::<_, Option<i64>>(6).map_err(err).map_err(at(6))? {
            None => None,
            Some(v) if (0..=u16::MAX as i64).contains(&v) => Some(v as u16),
            Some(v) => return Err(at(6)(format!("{v} is out of range (0 to {})", u16::MAX))),
        };
        journeys.push(JourneyRow {
            id: small(0, u32::MAX as i64)? as u32,
            workflow: small(1, u16::MAX as i64)? as u16,
            contact: small(2, u32::MAX as i64)? as u32,
            pc: small(3, u32::MAX as i64)? as u32,
            entered_at: get(4)?,
            generation: get(5)? as u64,
            waiting_for,
            wake_at: get(7)?,
            trigger: ev(8)?,
            received: ev(9)?,
            stages: get(10)? as u64,
            arms: get(11)? as u64,
        });
    }
    let mut stats = Vec::new();
    let mut funnel = Vec::new();
    let mut stmt = conn
        .prepare("SELECT entered, converted, exited, completed, failed, skipped, suppressed, funnel, capped FROM workflow_counts ORDER BY workflow")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    while let Some(r) = rows.next().map_err(err)? {
        let n = |i: usize| -> Result<u64, String> { Ok(r.get::<_, i64>(i).map_err(err)? as u64) };
        stats.push(WorkflowStats {
            entered: n(0)?,
            converted: n(1)?,
            exited: n(2)?,
            completed: n(3)?,
            failed: n(4)?,
            skipped: n(5)?,
            suppressed: serde_json::from_str(&r.get::<_, String>(6).map_err(err)?)
                .map_err(|e| e.to_string())?,
            capped: serde_json::from_str(&r.get::<_, String>(8).map_err(err)?)
                .map_err(|e| e.to_string())?,
        });
        let f = parse(r.get::<_, String>(7).map_err(err)?)?;
        funnel.push(FunnelCounts {
            stages: serde_json::from_value(f["stages"].clone()).map_err(|e| e.to_string())?,
            arms: serde_json::from_value(f["arms"].clone()).map_err(|e| e.to_string())?,
        });
    }
    Ok(Some(Snapshot {
        totals: Totals {
            clock,
            seq,
            events,
            free,
            stats,
            funnel,
            actions,
            fields,
        },
        contacts,
        journeys,
    }))
}

/// A driver's entry of `meta`, if the state has one.
pub fn meta(conn: &Connection, key: &str) -> Result<Option<String>, String> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(|e| format!("cannot read the state: {e}"))
}

fn array(j: &Json) -> Result<&Vec<Json>, String> {
    j.as_array()
        .ok_or_else(|| format!("expected a JSON array, found {j}"))
}

/// An integer, without the formatting machinery (a checkpoint writes
/// millions).
fn int(buf: &mut String, i: impl itoa::Integer) {
    buf.push_str(itoa::Buffer::new().format(i));
}

fn write_list<T>(buf: &mut String, items: &[T], mut each: impl FnMut(&mut String, &T)) {
    buf.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        each(buf, item);
    }
    buf.push(']');
}

/// A contact's attributes by field name (unset ones left out), or by slot
/// when the names are not known.
fn write_attrs(buf: &mut String, names: &[Arc<str>], vs: &[Value]) {
    if names.len() != vs.len() {
        return write_values(buf, vs);
    }
    buf.push('{');
    let mut first = true;
    for (name, v) in names.iter().zip(vs) {
        if matches!(v, Value::Unset) {
            continue;
        }
        if !first {
            buf.push(',');
        }
        first = false;
        write_json_str(buf, name);
        buf.push(':');
        write_value(buf, v);
    }
    buf.push('}');
}

fn write_values(buf: &mut String, vs: &[Value]) {
    write_list(buf, vs, write_value);
}

/// A value as the state keeps it: `null` for unset, numbers, strings,
/// `{"t": ms}`, `{"d": ms}`, `{"s": [...]}`, arrays for lists.
fn write_value(buf: &mut String, v: &Value) {
    match v {
        Value::Unset => buf.push_str("null"),
        Value::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            int(buf, *i);
        }
        // Finite floats keep a fraction or an exponent, so they read back
        // as floats; JSON has no other floats.
        Value::Float(f) if f.is_finite() => {
            let _ = write!(buf, "{f:?}");
        }
        Value::Float(_) => buf.push_str("null"),
        Value::Str(s) => write_json_str(buf, s),
        Value::Datetime(t) => {
            buf.push_str("{\"t\":");
            int(buf, *t);
            buf.push('}');
        }
        Value::Duration(d) => {
            buf.push_str("{\"d\":");
            int(buf, *d);
            buf.push('}');
        }
        Value::Set(s) => {
            buf.push_str("{\"s\":");
            let items: Vec<&str> = s.iter().map(|x| &**x).collect();
            write_list(buf, &items, |buf, x| write_json_str(buf, x));
            buf.push('}');
        }
        Value::List(items) => write_values(buf, items),
    }
}

/// A contact's attributes: by name (an object), or by slot (an array,
/// format 5).
fn attrs(j: &Json, fields: &[Arc<str>]) -> Result<Vec<Value>, String> {
    match j {
        Json::Object(m) => {
            let mut out = vec![Value::Unset; fields.len()];
            for (k, v) in m {
                let slot = fields.iter().position(|f| **f == **k).ok_or_else(|| {
                    format!(
                        "no field `{}` in the state's fields",
                        crate::suggest::echo(k)
                    )
                })?;
                out[slot] = value(v)?;
            }
            Ok(out)
        }
        Json::Array(items) => items.iter().map(value).collect(),
        other => Err(format!("expected the attributes, found {other}")),
    }
}

fn value(j: &Json) -> Result<Value, String> {
    Ok(match j {
        Json::Null => Value::Unset,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) if n.is_f64() => Value::Float(n.as_f64().unwrap_or_default()),
        Json::Number(n) => Value::Int(n.as_i64().ok_or_else(|| format!("a bad integer {n}"))?),
        Json::String(s) => Value::Str(Arc::from(s.as_str())),
        Json::Array(items) => {
            Value::List(Arc::new(items.iter().map(value).collect::<Result<_, _>>()?))
        }
        Json::Object(o) => match (o.get("t"), o.get("d"), o.get("s")) {
            (Some(t), _, _) => Value::Datetime(t.as_i64().ok_or("a bad datetime")?),
            (_, Some(d), _) => Value::Duration(d.as_i64().ok_or("a bad duration")?),
            (_, _, Some(Json::Array(items))) => {
                let mut set = StrSet::default();
                for i in items {
                    set.insert(Arc::from(i.as_str().ok_or("a set holds strings")?));
                }
                Value::Set(Arc::new(set))
            }
            _ => return Err(format!("an unknown value {j}")),
        },
    })
}

/// A time that may be "never" ([`NEVER`], written `null`).
fn write_time(buf: &mut String, t: i64) {
    if t == NEVER {
        buf.push_str("null");
    } else {
        int(buf, t);
    }
}

fn time(j: &Json) -> Result<i64, String> {
    match j {
        Json::Null => Ok(NEVER),
        _ => j.as_i64().ok_or_else(|| format!("a bad time {j}")),
    }
}

fn write_event(buf: &mut String, e: &EventRow) {
    buf.push_str("{\"type\":");
    int(buf, e.ty);
    buf.push_str(",\"at\":");
    int(buf, e.at);
    buf.push_str(",\"payload\":");
    write_values(buf, &e.payload);
    buf.push('}');
}

fn event_row(j: &Json) -> Result<Arc<EventRow>, String> {
    let payload: Payload = array(&j["payload"])?
        .iter()
        .map(value)
        .collect::<Result<_, _>>()?;
    Ok(Arc::new(EventRow {
        ty: j["type"]
            .as_u64()
            .and_then(|t| u16::try_from(t).ok())
            .ok_or("a bad event type")?,
        at: j["at"].as_i64().ok_or("a bad event time")?,
        payload,
    }))
}

fn write_tally(buf: &mut String, t: &TallyRow) {
    match t {
        TallyRow::Count(n) => {
            int(buf, *n);
        }
        TallyRow::Times(times) => write_list(buf, times, |buf, t| {
            int(buf, *t);
        }),
    }
}

fn tally_row(j: &Json) -> Result<TallyRow, String> {
    match j {
        Json::Number(n) => Ok(TallyRow::Count(n.as_u64().ok_or("a bad count")?)),
        Json::Array(times) => Ok(TallyRow::Times(
            times
                .iter()
                .map(|t| t.as_i64().ok_or("a bad time"))
                .collect::<Result<_, _>>()?,
        )),
        _ => Err(format!("a bad tally {j}")),
    }
}

/// Writes checkpoints on a thread of its own, so a run goes on while the
/// last one is written: each checkpoint is one transaction, written in the
/// order taken. Its rows go to the writer in parts of at most [`PART`] rows
/// as they are taken ([`Writer::checkpoint`]), so that a checkpoint of many
/// changes (a day of waits ending at one instant) never lies whole in
/// memory; at most [`QUEUE`] parts wait while another is written (a run
/// faster than its disk waits for it).
pub struct Writer<M: Send + 'static> {
    queue: Option<mpsc::SyncSender<Part<M>>>,
    /// Parts written, emptied, to be filled again: their memory is reused
    /// rather than freed on the writer's thread and allocated anew on the
    /// run's.
    spare: mpsc::Receiver<Batch>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

/// What the writer is handed: rows of the checkpoint under way, and with
/// its last rows, its totals and mark, which end its transaction.
enum Part<M> {
    Rows(Batch),
    Last(Batch, Totals, M),
}

/// Parts that may wait while one is written: the rows of a run's first
/// checkpoints come in a burst (every contact is new), and a queue lets the
/// run go on meanwhile, for the memory of the parts waiting.
const QUEUE: usize = 2;

/// Rows in a part: a megabyte or two.
pub const PART: usize = 5_000;

/// The `meta` entries a checkpoint's mark stands for, made on the writer's
/// thread just before the checkpoint is committed.
pub type Entries = Vec<(&'static str, String)>;

impl<M: Send + 'static> Writer<M> {
    /// Starts the writer. `before` runs on its thread before each commit:
    /// it turns the mark sent with a checkpoint into `meta` entries written
    /// by the same transaction (and may sync files the entries describe).
    pub fn spawn(
        conn: Connection,
        mut before: impl FnMut(M) -> Result<Entries, String> + Send + 'static,
    ) -> std::io::Result<Writer<M>> {
        let (queue, parts) = mpsc::sync_channel::<Part<M>>(QUEUE);
        let (done, spare) = mpsc::sync_channel::<Batch>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("nurture-state".into())
            .spawn(move || {
                let failed = |e: rusqlite::Error| e.to_string();
                let mut open = false;
                for part in parts {
                    let (mut batch, last) = match part {
                        Part::Rows(batch) => (batch, None),
                        Part::Last(batch, totals, mark) => (batch, Some((totals, mark))),
                    };
                    if !open {
                        conn.execute_batch("BEGIN")
                            .and_then(|()| conn.execute_batch(SCHEMA))
                            .map_err(failed)?;
                        open = true;
                    }
                    batch.write(&conn).map_err(failed)?;
                    if let Some((totals, mark)) = last {
                        let entries = before(mark)?;
                        write_totals(&conn, &totals, &entries)
                            .and_then(|()| conn.execute_batch("COMMIT"))
                            .map_err(failed)?;
                        open = false;
                    }
                    if batch.clear() {
                        // Full when the run has spares enough: dropped.
                        let _ = done.try_send(batch);
                    }
                }
                // A run that stopped amid a checkpoint leaves it unwritten.
                if open {
                    conn.execute_batch("ROLLBACK").map_err(failed)?;
                }
                Ok(())
            })?;
        Ok(Writer {
            queue: Some(queue),
            spare,
            thread: Some(thread),
        })
    }

    /// Takes a checkpoint: the rows handed to the [`Checkpoint`] go to the
    /// writer as they come, and [`Checkpoint::commit`] ends it.
    pub fn checkpoint(&mut self) -> Checkpoint<'_, M> {
        let batch = self.batch();
        Checkpoint {
            writer: self,
            batch,
            failed: false,
        }
    }

    /// An empty batch to fill: one written before, when there is one.
    fn batch(&self) -> Batch {
        self.spare.try_recv().unwrap_or_default()
    }

    /// Hands a part to the writer; waits while [`QUEUE`] others wait. False
    /// when the writer stopped (an earlier checkpoint failed).
    fn send(&mut self, part: Part<M>) -> bool {
        match &self.queue {
            Some(q) => q.send(part).is_ok(),
            None => false,
        }
    }

    /// Waits until every checkpoint sent is written; the first error, if any.
    pub fn finish(&mut self) -> Result<(), String> {
        self.queue = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err("the state writer stopped".into())),
            None => Err("the state writer stopped earlier".into()),
        }
    }
}

/// The rows of one checkpoint on their way to the [`Writer`], in parts.
pub struct Checkpoint<'a, M: Send + 'static> {
    writer: &'a mut Writer<M>,
    batch: Batch,
    /// The writer stopped: rows are no longer sent.
    failed: bool,
}

impl<M: Send + 'static> Checkpoint<'_, M> {
    fn row_added(&mut self) {
        if self.batch.len() >= PART && !self.failed {
            let mut next = self.writer.batch();
            next.fields(&self.batch.fields);
            let full = std::mem::replace(&mut self.batch, next);
            self.failed = !self.writer.send(Part::Rows(full));
        }
    }

    /// Ends the checkpoint with its totals and mark: the writer commits it.
    /// An error when it or an earlier one could not be written.
    pub fn commit(self, totals: Totals, mark: M) -> Result<(), String> {
        if !self.failed && self.writer.send(Part::Last(self.batch, totals, mark)) {
            Ok(())
        } else {
            self.writer.finish()
        }
    }
}

impl<M: Send + 'static> Changes for Checkpoint<'_, M> {
    fn fields(&mut self, names: &[Arc<str>]) {
        self.batch.fields(names);
    }

    fn expect(&mut self, contacts: usize, journeys: usize) {
        self.batch.expect(contacts.min(PART), journeys.min(PART));
    }

    fn contact(&mut self, n: u32, row: &ContactRow) {
        self.batch.contact(n, row);
        self.row_added();
    }

    fn journey(&mut self, id: u32, change: JourneyChange<'_>) {
        self.batch.journey(id, change);
        self.row_added();
    }
}
