//! The service's tables beside the state's rows, in the same database: the
//! journal of accepted events (and of moves of a virtual clock), the outbox
//! of emitted records, and each sink's delivered position.

use rusqlite::{params, Connection, OptionalExtension};
use std::io::Write;
use std::path::Path;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS serve_journal (
  seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, line TEXT NOT NULL,
  at INTEGER, client_id TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS serve_journal_client ON serve_journal (client_id)
  WHERE client_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS serve_outbox (
  seq INTEGER PRIMARY KEY, action INTEGER, at INTEGER NOT NULL, line TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS serve_outbox_action ON serve_outbox (action)
  WHERE action IS NOT NULL;
CREATE TABLE IF NOT EXISTS serve_sinks (
  name TEXT PRIMARY KEY, delivered INTEGER NOT NULL, file_len INTEGER);
";

/// What a journal row records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// An accepted event, as stamped: a line of `nurture run`'s input.
    Event { line: String, at: i64 },
    /// `POST /v1/clock {"until": T}` (a virtual clock).
    Until(i64),
    /// `POST /v1/clock {"drain": true}`.
    Drain,
}

impl Entry {
    fn kind(&self) -> &'static str {
        match self {
            Entry::Event { .. } => "event",
            Entry::Until(_) => "until",
            Entry::Drain => "drain",
        }
    }
}

/// Appends a journal row.
pub(crate) fn append(
    conn: &Connection,
    seq: u64,
    entry: &Entry,
    client_id: Option<&str>,
) -> rusqlite::Result<()> {
    let (line, at) = match entry {
        Entry::Event { line, at } => (line.clone(), Some(*at)),
        Entry::Until(t) => (crate::runtime::format_datetime(*t), Some(*t)),
        Entry::Drain => (String::new(), None),
    };
    conn.prepare_cached(
        "INSERT INTO serve_journal (seq, kind, line, at, client_id) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![seq as i64, entry.kind(), line, at, client_id])?;
    Ok(())
}

/// The stamp an event with this client id was accepted with, if one was.
pub(crate) fn seen(conn: &Connection, client_id: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT at FROM serve_journal WHERE client_id = ?1")?
        .query_row([client_id], |r| r.get(0))
        .optional()
}

/// The journal rows after `seq`, in order.
pub(crate) fn after(conn: &Connection, seq: u64) -> rusqlite::Result<Vec<(u64, Entry)>> {
    let mut q =
        conn.prepare("SELECT seq, kind, line, at FROM serve_journal WHERE seq > ?1 ORDER BY seq")?;
    let rows = q.query_map([seq as i64], |r| {
        let seq: i64 = r.get(0)?;
        let kind: String = r.get(1)?;
        let line: String = r.get(2)?;
        let at: Option<i64> = r.get(3)?;
        Ok((seq as u64, kind, line, at))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, kind, line, at) = row?;
        let entry = match kind.as_str() {
            "event" => Entry::Event {
                line,
                at: at.unwrap_or(0),
            },
            "until" => Entry::Until(at.unwrap_or(0)),
            _ => Entry::Drain,
        };
        out.push((seq, entry));
    }
    Ok(out)
}

/// The last journal row's sequence number and the latest stamp.
pub(crate) fn last(conn: &Connection) -> rusqlite::Result<(u64, Option<i64>)> {
    conn.query_row(
        "SELECT COALESCE(MAX(seq), 0), MAX(at) FROM serve_journal",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
    )
}

/// One outbox row: its place, the action's id (none for a lifecycle
/// record), its time and its JSON line (without the newline).
#[derive(Clone, Debug)]
pub struct Row {
    pub seq: u64,
    pub action: Option<u64>,
    pub at: i64,
    pub line: String,
}

pub(crate) fn put_outbox(conn: &Connection, row: &Row) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO serve_outbox VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            row.seq as i64,
            row.action.map(|a| a as i64),
            row.at,
            row.line
        ])?;
    Ok(())
}

/// Up to `limit` outbox rows after `seq`.
pub(crate) fn outbox_after(
    conn: &Connection,
    seq: u64,
    limit: usize,
) -> rusqlite::Result<Vec<Row>> {
    let mut q = conn.prepare_cached(
        "SELECT seq, action, at, line FROM serve_outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = q.query_map(params![seq as i64, limit as i64], |r| {
        Ok(Row {
            seq: r.get::<_, i64>(0)? as u64,
            action: r.get::<_, Option<i64>>(1)?.map(|a| a as u64),
            at: r.get(2)?,
            line: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// The outbox row an action id stands at: the last row whose action is
/// at most `action` (0 when none).
pub(crate) fn seq_of_action(conn: &Connection, action: u64) -> rusqlite::Result<u64> {
    conn.prepare_cached(
        "SELECT COALESCE(MAX(seq), 0) FROM serve_outbox WHERE action IS NOT NULL AND action <= ?1",
    )?
    .query_row([action as i64], |r| r.get::<_, i64>(0).map(|n| n as u64))
}

/// A sink's delivered position (outbox row) and, for a file, its length.
pub(crate) fn sink_position(conn: &Connection, name: &str) -> rusqlite::Result<(u64, Option<u64>)> {
    Ok(conn
        .prepare_cached("SELECT delivered, file_len FROM serve_sinks WHERE name = ?1")?
        .query_row([name], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, Option<i64>>(1)?.map(|n| n as u64),
            ))
        })
        .optional()?
        .unwrap_or((0, None)))
}

pub(crate) fn set_sink_position(
    conn: &Connection,
    name: &str,
    delivered: u64,
    file_len: Option<u64>,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO serve_sinks VALUES (?1, ?2, ?3)")?
        .execute(params![name, delivered as i64, file_len.map(|n| n as i64)])?;
    Ok(())
}

/// `nurture journal --state DB`: the accepted events, as stamped, as JSON
/// Lines (`nurture run`'s input format).
pub fn write_out(state: &Path, out: &mut dyn Write) -> Result<u64, String> {
    let shown = state.display();
    if !state.exists() {
        return Err(format!("there is no state `{shown}`"));
    }
    let conn = crate::runtime::open_state_to_read(state)?;
    let has: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'serve_journal'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| format!("`{shown}`: {e}"))?
        > 0;
    if !has {
        return Err(format!(
            "`{shown}` has no journal: it was not written by `nurture serve`"
        ));
    }
    let mut q = conn
        .prepare("SELECT line FROM serve_journal WHERE kind = 'event' ORDER BY seq")
        .map_err(|e| format!("`{shown}`: {e}"))?;
    let rows = q
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| format!("`{shown}`: {e}"))?;
    let mut n = 0;
    for row in rows {
        let line = row.map_err(|e| format!("`{shown}`: {e}"))?;
        writeln!(out, "{line}").map_err(|e| format!("cannot write the journal: {e}"))?;
        n += 1;
    }
    Ok(n)
}
