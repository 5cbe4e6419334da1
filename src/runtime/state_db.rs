//! A run's state in SQLite: a [`Snapshot`] written as rows a person can
//! read with the `sqlite3` shell (values as small JSON), and read back.
//!
//! Tables: `meta` (key, value), `contacts` (one row per contact, in
//! first-seen order), `journeys` (those in flight), `timers` (in firing
//! order), `workflow_counts` (per workflow). Values are JSON: `null` for
//! unset, numbers (integers for `int`, with a fraction for `float`),
//! strings, `{"t": ms}` for datetimes, `{"d": ms}` for durations, `{"s":
//! [...]}` for sets, arrays for lists.

use super::output::WorkflowStats;
use super::record::Payload;
use super::snapshot::{
    ContactRow, EventRow, JourneyRow, Snapshot, TallyRow, TimerRow, TimerTarget,
};
use super::value::{StrSet, Value};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value as Json};
use std::sync::Arc;

/// The layout written; a state of a newer layout is refused.
pub const FORMAT: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
  n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, attrs TEXT NOT NULL,
  last_activity INTEGER NOT NULL, activity_seq INTEGER NOT NULL,
  inactive_pending INTEGER NOT NULL, cond_bits INTEGER NOT NULL,
  last_entry TEXT NOT NULL, history TEXT NOT NULL, tallies TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journeys (
  id INTEGER PRIMARY KEY, workflow INTEGER NOT NULL, contact INTEGER NOT NULL,
  pc INTEGER NOT NULL, entered_at INTEGER NOT NULL, generation INTEGER NOT NULL,
  waiting_for INTEGER, wake_at INTEGER NOT NULL, trigger_event TEXT, received_event TEXT);
CREATE TABLE IF NOT EXISTS timers (
  due INTEGER NOT NULL, seq INTEGER NOT NULL, sub INTEGER NOT NULL,
  journey INTEGER, generation INTEGER, contact INTEGER, workflow INTEGER);
CREATE TABLE IF NOT EXISTS workflow_counts (
  workflow INTEGER PRIMARY KEY, entered INTEGER NOT NULL, converted INTEGER NOT NULL,
  exited INTEGER NOT NULL, completed INTEGER NOT NULL, failed INTEGER NOT NULL,
  skipped INTEGER NOT NULL, suppressed TEXT NOT NULL);
";

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
    let tx = conn.transaction()?;
    tx.execute_batch(SCHEMA)?;
    tx.execute_batch(
        "DELETE FROM meta; DELETE FROM contacts; DELETE FROM journeys; DELETE FROM timers; DELETE FROM workflow_counts;",
    )?;
    let meta = [
        ("format", FORMAT.to_string()),
        ("clock", json!(snap.clock).to_string()),
        ("seq", snap.seq.to_string()),
        ("events", snap.events.to_string()),
        ("free", json!(snap.free).to_string()),
        ("actions", json!(snap.actions).to_string()),
    ];
    for (k, v) in meta {
        tx.execute("INSERT INTO meta VALUES (?1, ?2)", params![k, v])?;
    }
    for (k, v) in extra {
        tx.execute("INSERT INTO meta VALUES (?1, ?2)", params![k, v])?;
    }
    for (n, c) in snap.contacts.iter().enumerate() {
        tx.prepare_cached("INSERT INTO contacts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?
            .execute(params![
                n as i64,
                c.id.as_str(),
                values(&c.attrs).to_string(),
                c.last_activity,
                c.activity_seq as i64,
                c.inactive_pending as i64,
                c.cond_bits as i64,
                json!(c.last_entry).to_string(),
                Json::Array(c.history.iter().map(event).collect()).to_string(),
                Json::Array(c.tallies.iter().map(tally).collect()).to_string(),
            ])?;
    }
    for j in &snap.journeys {
        tx.prepare_cached("INSERT INTO journeys VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?
            .execute(params![
                j.id,
                j.workflow,
                j.contact,
                j.pc,
                j.entered_at,
                j.generation as i64,
                j.waiting_for,
                j.wake_at,
                j.trigger.as_ref().map(|e| event(e).to_string()),
                j.received.as_ref().map(|e| event(e).to_string()),
            ])?;
    }
    for t in &snap.timers {
        let (journey, generation, contact, workflow) = match t.kind {
            TimerTarget::Journey { id, generation } => {
                (Some(id), Some(generation as i64), None, None)
            }
            TimerTarget::Inactive { contact, workflow } => {
                (None, None, Some(contact), Some(workflow))
            }
        };
        tx.prepare_cached("INSERT INTO timers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
            .execute(params![
                t.due,
                t.seq as i64,
                t.sub,
                journey,
                generation,
                contact,
                workflow
            ])?;
    }
    for (w, s) in snap.stats.iter().enumerate() {
        tx.execute(
            "INSERT INTO workflow_counts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                w as i64,
                s.entered as i64,
                s.converted as i64,
                s.exited as i64,
                s.completed as i64,
                s.failed as i64,
                s.skipped as i64,
                json!(s.suppressed).to_string()
            ],
        )?;
    }
    tx.commit()
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
    let parse = |s: String| serde_json::from_str::<Json>(&s).map_err(|e| e.to_string());
    let clock = parse(meta("clock")?)?.as_i64();
    let seq = meta("seq")?
        .parse()
        .map_err(|_| "a bad `seq`".to_string())?;
    let events = meta("events")?
        .parse()
        .map_err(|_| "a bad `events`".to_string())?;
    let free: Vec<u32> = serde_json::from_str(&meta("free")?).map_err(|e| e.to_string())?;
    let actions = serde_json::from_str(&meta("actions")?).map_err(|e| e.to_string())?;
    let err = |e: rusqlite::Error| e.to_string();
    let mut contacts = Vec::new();
    let mut stmt = conn
        .prepare("SELECT id, attrs, last_activity, activity_seq, inactive_pending, cond_bits, last_entry, history, tallies FROM contacts ORDER BY n")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    while let Some(r) = rows.next().map_err(err)? {
        let text =
            |i: usize| -> Result<Json, String> { parse(r.get::<_, String>(i).map_err(err)?) };
        contacts.push(ContactRow {
            id: r.get::<_, String>(0).map_err(err)?.into(),
            attrs: array(&text(1)?)?
                .iter()
                .map(value)
                .collect::<Result<_, _>>()?,
            last_activity: r.get(2).map_err(err)?,
            activity_seq: r.get::<_, i64>(3).map_err(err)? as u64,
            inactive_pending: r.get::<_, i64>(4).map_err(err)? as u64,
            cond_bits: r.get::<_, i64>(5).map_err(err)? as u64,
            last_entry: serde_json::from_value(text(6)?).map_err(|e| e.to_string())?,
            history: array(&text(7)?)?
                .iter()
                .map(event_row)
                .collect::<Result<_, _>>()?,
            tallies: array(&text(8)?)?
                .iter()
                .map(tally_row)
                .collect::<Result<_, _>>()?,
        });
    }
    let mut journeys = Vec::new();
    let mut stmt = conn
        .prepare("SELECT id, workflow, contact, pc, entered_at, generation, waiting_for, wake_at, trigger_event, received_event FROM journeys ORDER BY id")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    while let Some(r) = rows.next().map_err(err)? {
        let ev = |i: usize| -> Result<Option<EventRow>, String> {
            match r.get::<_, Option<String>>(i).map_err(err)? {
                Some(s) => Ok(Some(event_row(&parse(s)?)?)),
                None => Ok(None),
            }
        };
        journeys.push(JourneyRow {
            id: r.get(0).map_err(err)?,
            workflow: r.get(1).map_err(err)?,
            contact: r.get(2).map_err(err)?,
            pc: r.get(3).map_err(err)?,
            entered_at: r.get(4).map_err(err)?,
            generation: r.get::<_, i64>(5).map_err(err)? as u64,
            waiting_for: r.get(6).map_err(err)?,
            wake_at: r.get(7).map_err(err)?,
            trigger: ev(8)?,
            received: ev(9)?,
        });
    }
    let mut timers = Vec::new();
    let mut stmt = conn
        .prepare("SELECT due, seq, sub, journey, generation, contact, workflow FROM timers ORDER BY due, seq, sub")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    while let Some(r) = rows.next().map_err(err)? {
        let kind = match (
            r.get::<_, Option<u32>>(3).map_err(err)?,
            r.get::<_, Option<i64>>(4).map_err(err)?,
        ) {
            (Some(id), Some(g)) => TimerTarget::Journey {
                id,
                generation: g as u64,
            },
            _ => TimerTarget::Inactive {
                contact: r.get(5).map_err(err)?,
                workflow: r.get(6).map_err(err)?,
            },
        };
        timers.push(TimerRow {
            due: r.get(0).map_err(err)?,
            seq: r.get::<_, i64>(1).map_err(err)? as u64,
            sub: r.get(2).map_err(err)?,
            kind,
        });
    }
    let mut stats = Vec::new();
    let mut stmt = conn
        .prepare("SELECT entered, converted, exited, completed, failed, skipped, suppressed FROM workflow_counts ORDER BY workflow")
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
        });
    }
    Ok(Some(Snapshot {
        clock,
        seq,
        events,
        contacts,
        journeys,
        free,
        timers,
        stats,
        actions,
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

fn values(vs: &[Value]) -> Json {
    Json::Array(vs.iter().map(value_json).collect())
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::Unset => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::Str(s) => json!(&**s),
        Value::Datetime(t) => json!({ "t": t }),
        Value::Duration(d) => json!({ "d": d }),
        Value::Set(s) => json!({ "s": s.iter().map(|x| &**x).collect::<Vec<_>>() }),
        Value::List(items) => values(items),
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

fn event(e: &EventRow) -> Json {
    json!({ "type": e.ty, "at": e.at, "payload": values(&e.payload) })
}

fn event_row(j: &Json) -> Result<EventRow, String> {
    let payload: Payload = array(&j["payload"])?
        .iter()
        .map(value)
        .collect::<Result<_, _>>()?;
    Ok(EventRow {
        ty: j["type"]
            .as_u64()
            .and_then(|t| u16::try_from(t).ok())
            .ok_or("a bad event type")?,
        at: j["at"].as_i64().ok_or("a bad event time")?,
        payload,
    })
}

fn tally(t: &TallyRow) -> Json {
    match t {
        TallyRow::Count(n) => json!(n),
        TallyRow::Times(times) => json!(times),
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
