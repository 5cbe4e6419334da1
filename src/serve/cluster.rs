//! Many machines (LANGUAGE.md section 12): several `nurture serve --store
//! postgres://...` processes share one PostgreSQL database. Contacts are
//! spread over P partitions (`partition_of`, FNV-1a); any process accepts
//! events into the partitions' inboxes (`front.rs`); each partition is run
//! by one process at a time, its owner (`owner.rs`), which holds the
//! partition's session advisory lock and fences every write with the
//! partition's epoch. The tables are keyed by partition first.
//!
//! A partition's state is its inbox run in order: the owner commits, in one
//! transaction, how far it has run the inbox, the records that emitted
//! (the outbox, numbered per partition) and the partition's clock; now and
//! then a snapshot of the engine's state with the inbox position it
//! reflects, so a new owner (or a reader) starts from the snapshot and runs
//! only the inbox after it.

pub mod front;
pub mod owner;

use super::posted::Posted;
use crate::runtime::state::{ProgramRecord, StateError};
use crate::runtime::{format_datetime, Compiled, Interpreter, Millis};
use postgres::{Client, NoTls};
use std::io::Write;
use std::sync::Arc;

/// Starts a cluster process's front (the HTTP API's commands) and owner
/// (the partitions it runs); the returned thread ends when both have.
pub fn spawn(
    cfg: &Arc<super::Config>,
    url: String,
    meta: Meta,
    loaded: super::Loaded,
    shared: Arc<super::Shared>,
) -> std::io::Result<(
    super::engine::Handle,
    std::thread::JoinHandle<()>,
    super::sinks::Sinks,
)> {
    let loaded = Arc::new(loaded);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let owned = super::Owned::default();
    let id = format!(
        "{}-{}-{:08x}",
        hostname(),
        std::process::id(),
        fastrand::u32(..)
    );
    let owner = owner::Owner {
        owned: owned.clone(),
        shared: shared.clone(),
        url: url.clone(),
        id: id.clone(),
        meta: meta.clone(),
        loaded: loaded.clone(),
        clock: cfg.clock,
        trace: cfg.trace,
        failover: cfg.failover,
        stop: stop.clone(),
    };
    let front = front::Front {
        url,
        meta,
        loaded,
        clock: cfg.clock,
        trace: cfg.trace,
        shared: shared.clone(),
        stop_owner: stop,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = super::engine::Handle::new(tx);
    let sinks = super::sinks::start_cluster(cfg, handle.clone(), shared.clone(), owned.clone());
    let owner_thread = std::thread::Builder::new()
        .name("nurture-owner".into())
        .spawn(move || owner.run())?;
    let thread = std::thread::Builder::new()
        .name("nurture-front".into())
        .spawn(move || {
            front.serve(rx);
            let _ = owner_thread.join();
        })?;
    tracing::info!("process {id} joins the cluster");
    Ok((handle, thread, sinks))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into())
}

/// The schema's version, kept in `nurture_meta`.
pub const SCHEMA_VERSION: u32 = 1;

const SCHEMA: &str = "
CREATE TABLE nurture_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE nurture_partitions (
  partition int PRIMARY KEY,
  epoch bigint NOT NULL DEFAULT 0,
  owner text,
  inbox_head bigint NOT NULL DEFAULT 0,
  inbox_pos bigint NOT NULL DEFAULT 0,
  outbox_pos bigint NOT NULL DEFAULT 0,
  clock bigint,
  snapshot bytea,
  snap_inbox bigint NOT NULL DEFAULT 0,
  snap_outbox bigint NOT NULL DEFAULT 0);
CREATE TABLE nurture_inbox (
  partition int NOT NULL, seq bigint NOT NULL, kind text NOT NULL,
  line text NOT NULL, at bigint, PRIMARY KEY (partition, seq));
CREATE TABLE nurture_ids (
  partition int NOT NULL, client_id text NOT NULL, at bigint NOT NULL,
  PRIMARY KEY (partition, client_id));
CREATE TABLE nurture_outbox (
  partition int NOT NULL, seq bigint NOT NULL, action bigint, at bigint NOT NULL,
  line text NOT NULL, PRIMARY KEY (partition, seq));
CREATE TABLE nurture_rejects (
  partition int NOT NULL, seq bigint NOT NULL, reason text NOT NULL, line text NOT NULL,
  PRIMARY KEY (partition, seq));
CREATE TABLE nurture_sinks (
  partition int NOT NULL, sink text NOT NULL, delivered bigint NOT NULL,
  PRIMARY KEY (partition, sink));
CREATE TABLE nurture_processes (
  id text PRIMARY KEY, backend_pid int, heartbeat timestamptz NOT NULL,
  started timestamptz NOT NULL);
";

/// What a cluster's database says of itself.
#[derive(Clone, Debug)]
pub struct Meta {
    pub partitions: u32,
    /// The cluster's advisory lock space, drawn at `--init`:
    /// `pg_try_advisory_lock(lock_key, partition)`. Clusters in other
    /// schemas of one database draw their own.
    pub lock_key: i32,
    /// The wall clock at `--init`: every partition's clock starts there.
    pub epoch: Millis,
}

/// Connects, with a message that says what to check.
pub fn connect(url: &str) -> Result<Client, String> {
    Client::connect(url, NoTls).map_err(|e| format!("cannot connect to {}: {e}", shown(url)))
}

/// The URL without a password.
pub fn shown(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let user = &url[s + 3..at];
            let user = user.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// `--init --partitions P`: creates the schema once. `Ok(false)` when it
/// already exists with the same P; an error when with another.
pub fn init(url: &str, partitions: u32) -> Result<bool, String> {
    let mut c = connect(url)?;
    if let Some(meta) = read_meta(&mut c)? {
        if meta.partitions != partitions {
            return Err(format!(
                "{} already holds a cluster of {} partitions; P never changes (use another database or schema for {partitions})",
                shown(url),
                meta.partitions
            ));
        }
        return Ok(false);
    }
    let mut tx = c.transaction().map_err(db)?;
    tx.batch_execute(SCHEMA).map_err(db)?;
    let epoch = super::wall_ms();
    for (k, v) in [
        ("schema_version", SCHEMA_VERSION.to_string()),
        ("partitions", partitions.to_string()),
        ("epoch", epoch.to_string()),
        ("lock_key", fastrand::i32(..).to_string()),
    ] {
        tx.execute("INSERT INTO nurture_meta VALUES ($1, $2)", &[&k, &v])
            .map_err(db)?;
    }
    tx.execute(
        "INSERT INTO nurture_partitions (partition) SELECT generate_series(0, $1 - 1)",
        &[&(partitions as i32)],
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok(true)
}

pub fn db(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("PostgreSQL: {}", d.message()),
        None => format!("PostgreSQL: {e}"),
    }
}

/// The cluster's meta rows, or `None` before `--init`.
pub fn read_meta(c: &mut Client) -> Result<Option<Meta>, String> {
    let exists: bool = c
        .query_one("SELECT to_regclass('nurture_meta') IS NOT NULL", &[])
        .map_err(db)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let rows = c
        .query("SELECT key, value FROM nurture_meta", &[])
        .map_err(db)?;
    let get = |k: &str| {
        rows.iter()
            .find(|r| r.get::<_, &str>(0) == k)
            .map(|r| r.get::<_, String>(1))
    };
    let version: u32 = get("schema_version")
        .and_then(|v| v.parse().ok())
        .ok_or("the cluster's schema has no version")?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "the cluster's schema is of version {version}, newer than this nurture reads ({SCHEMA_VERSION}); use the release that made it"
        ));
    }
    Ok(Some(Meta {
        partitions: get("partitions")
            .and_then(|v| v.parse().ok())
            .ok_or("the cluster has no partition count")?,
        epoch: get("epoch")
            .and_then(|v| v.parse().ok())
            .ok_or("the cluster has no epoch")?,
        lock_key: get("lock_key")
            .and_then(|v| v.parse().ok())
            .ok_or("the cluster has no lock key")?,
    }))
}

/// Checks the program against the one the cluster runs, recording it when
/// the cluster has none: every process of a cluster runs one program.
pub fn check_program(c: &mut Client, record: &ProgramRecord) -> Result<(), String> {
    let text = record.to_json();
    c.execute(
        "INSERT INTO nurture_meta VALUES ('program', $1) ON CONFLICT DO NOTHING",
        &[&text],
    )
    .map_err(db)?;
    let stored: String = c
        .query_one("SELECT value FROM nurture_meta WHERE key = 'program'", &[])
        .map_err(db)?
        .get(0);
    let stored = ProgramRecord::parse(&stored).map_err(|e| e.to_string())?;
    if stored.fingerprint() != record.fingerprint() {
        return Err(format!(
            "the cluster runs program {}, this one is {}: every process of a cluster runs the same program",
            stored.fingerprint(),
            record.fingerprint()
        ));
    }
    Ok(())
}

/// A partition's engine, as its owner or a reader builds it: from the
/// partition's snapshot, with the inbox after it run again.
pub struct Part {
    pub partition: u32,
    pub it: Interpreter,
    /// The last inbox row run.
    pub pos: i64,
    /// The last outbox row made.
    pub out_seq: i64,
    /// The inbox row and the clock of the last commit (an owner's).
    pub committed: i64,
    pub committed_clock: Option<Millis>,
}

/// One inbox row.
pub struct InboxRow {
    pub seq: i64,
    pub kind: String,
    pub line: String,
    pub at: Option<i64>,
}

pub fn inbox_after(c: &mut Client, p: u32, after: i64, to: i64) -> Result<Vec<InboxRow>, String> {
    let rows = c
        .query(
            "SELECT seq, kind, line, at FROM nurture_inbox WHERE partition = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT 5000",
            &[&(p as i32), &after, &to],
        )
        .map_err(db)?;
    Ok(rows
        .iter()
        .map(|r| InboxRow {
            seq: r.get(0),
            kind: r.get(1),
            line: r.get(2),
            at: r.get(3),
        })
        .collect())
}

/// What running one inbox row did.
pub enum Ran {
    /// Run, at this time (later than the row's stamp when the partition's
    /// clock had passed it).
    Event(Millis),
    /// Refused by the partition (an unknown contact): the reason.
    Rejected(String),
    /// A move of the clock.
    Clock,
}

/// How every partition's engine runs.
pub struct Runs {
    pub compiled: Arc<Compiled>,
    pub trace: bool,
    /// The wall clock: the clock starts at the cluster's epoch.
    pub wall: bool,
    pub epoch: Millis,
}

/// A partition's last snapshot, and the inbox and outbox rows it reflects.
pub struct Stored {
    pub snapshot: Option<crate::runtime::Snapshot>,
    pub inbox: i64,
    pub outbox: i64,
}

impl Runs {
    pub fn of(loaded: &super::Loaded, trace: bool, clock: super::ClockKind, meta: &Meta) -> Runs {
        Runs {
            compiled: loaded.compiled.clone(),
            trace,
            wall: clock == super::ClockKind::Wall,
            epoch: meta.epoch,
        }
    }
}

impl Stored {
    /// A partition's last snapshot, through the storage trait, with the
    /// inbox and outbox rows it reflects (`inbox`, `outbox`, read by the
    /// caller in the same transaction or under the partition's epoch).
    pub fn load(c: &mut Client, p: u32, inbox: i64, outbox: i64) -> Result<Stored, String> {
        use crate::runtime::state::StateStore;
        let snapshot = PartitionStore::new(c, p)
            .load()
            .map_err(|e| format!("partition {p}: {e}"))?;
        Ok(Stored {
            snapshot,
            inbox,
            outbox,
        })
    }
}

impl Part {
    /// A partition's engine at its last snapshot.
    pub fn from_snapshot(partition: u32, runs: &Runs, stored: &Stored) -> Result<Part, String> {
        let (compiled, trace, wall, epoch) = (&runs.compiled, runs.trace, runs.wall, runs.epoch);
        let (snap_inbox, snap_outbox) = (stored.inbox, stored.outbox);
        let mut it = match stored.snapshot.clone() {
            Some(snap) => Interpreter::restore(compiled.clone(), trace, snap)
                .map_err(|e| format!("partition {partition}: {e}"))?,
            None => {
                let mut it = Interpreter::new(compiled.clone(), trace);
                if wall {
                    it.start_clock(epoch);
                }
                it
            }
        };
        it.set_action_ids(true);
        it.set_late_events(crate::runtime::LateEvents::Stamp);
        if wall {
            it.allow_clock_jump();
        }
        Ok(Part {
            partition,
            it,
            pos: snap_inbox,
            out_seq: snap_outbox,
            committed: snap_inbox,
            committed_clock: None,
        })
    }

    /// Runs one inbox row.
    pub fn run(&mut self, row: &InboxRow) -> Ran {
        self.pos = row.seq;
        match row.kind.as_str() {
            "until" => {
                if let Some(t) = row.at {
                    if self.it.now().is_none_or(|now| t > now) {
                        self.it.advance_to(t);
                    }
                }
                Ran::Clock
            }
            "drain" => {
                self.it.drain();
                Ran::Clock
            }
            _ => {
                let mut input =
                    match crate::runtime::parse_event(&row.line, &self.it.program().schema) {
                        Ok(i) => i,
                        Err(e) => return Ran::Rejected(e),
                    };
                // A row an owner has run carries the time it ran at (later
                // than its stamp when the partition's clock had passed the
                // stamp, timers the wall clock fired included): run again,
                // it runs at that time, not at its stamp.
                if let Some(ran_at) = row.at {
                    input.at = input.at.max(ran_at);
                }
                let at = self.it.now().map_or(input.at, |now| now.max(input.at));
                match self.it.feed(input) {
                    Ok(()) => Ran::Event(at),
                    Err(e) => Ran::Rejected(e.to_string()),
                }
            }
        }
    }

    /// Takes what the engine emitted, as outbox rows numbered on from the
    /// last, each action's line carrying its partition beside its id.
    pub fn take(&mut self) -> Vec<(i64, Option<i64>, i64, String)> {
        let mut out = Vec::new();
        for r in self.it.take_emitted() {
            let mut line = self.it.render(&r);
            if line.ends_with('\n') {
                line.pop();
            }
            let action = match r.what {
                crate::runtime::What::Action(_) => {
                    if line.ends_with('}') {
                        line.pop();
                        line.push_str(&format!(",\"partition\":{}}}", self.partition));
                    }
                    Some(r.id as i64)
                }
                crate::runtime::What::Lifecycle(_) => None,
            };
            self.out_seq += 1;
            out.push((self.out_seq, action, r.at, line));
        }
        out
    }
}

/// A snapshot as bytes: an SQLite state file, as `--state` writes one.
pub fn snapshot_bytes(it: &Interpreter, record: &ProgramRecord) -> Result<Vec<u8>, String> {
    snapshot_file_bytes(&it.snapshot(), &[("program", record.to_json())])
}

/// A partition's state in the cluster's database, behind the runtime's
/// storage trait: the partition's snapshot (an SQLite state file's bytes
/// in `nurture_partitions.snapshot`) and the cluster's `nurture_meta`
/// entries. Owners and readers load a partition through it; an owner's
/// snapshots are written by its fenced commit, in the same transaction as
/// the inbox position they reflect.
pub struct PartitionStore<'a> {
    client: std::cell::RefCell<&'a mut Client>,
    partition: u32,
}

impl<'a> PartitionStore<'a> {
    pub fn new(client: &'a mut Client, partition: u32) -> PartitionStore<'a> {
        PartitionStore {
            client: std::cell::RefCell::new(client),
            partition,
        }
    }
}

impl crate::runtime::state::StateStore for PartitionStore<'_> {
    fn name(&self) -> String {
        format!("partition {}", self.partition)
    }

    fn load(&mut self) -> Result<Option<crate::runtime::Snapshot>, StateError> {
        let p = self.partition as i32;
        let row = self
            .client
            .get_mut()
            .query_one(
                "SELECT snapshot FROM nurture_partitions WHERE partition = $1",
                &[&p],
            )
            .map_err(|e| StateError::Store(db(e)))?;
        let bytes: Option<Vec<u8>> = row.get(0);
        bytes
            .map(|b| snapshot_from_bytes(&b))
            .transpose()
            .map_err(StateError::BadRows)
    }

    fn entry(&self, key: &str) -> Result<Option<String>, StateError> {
        let row = self
            .client
            .borrow_mut()
            .query_opt("SELECT value FROM nurture_meta WHERE key = $1", &[&key])
            .map_err(|e| StateError::Store(db(e)))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn write_whole(
        &mut self,
        snap: &crate::runtime::Snapshot,
        entries: &[(&str, String)],
    ) -> Result<(), StateError> {
        let bytes = snapshot_file_bytes(snap, entries).map_err(StateError::Store)?;
        let p = self.partition as i32;
        self.client
            .get_mut()
            .execute(
                "UPDATE nurture_partitions SET snapshot = $2 WHERE partition = $1",
                &[&p, &bytes],
            )
            .map_err(|e| StateError::Store(db(e)))?;
        Ok(())
    }
}

/// A state as an SQLite file's bytes.
fn snapshot_file_bytes(
    snap: &crate::runtime::Snapshot,
    entries: &[(&str, String)],
) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a snapshot: {e}"))?;
    let path = dir.path().join("snapshot.db");
    let mut conn =
        rusqlite::Connection::open(&path).map_err(|e| format!("cannot make a snapshot: {e}"))?;
    crate::runtime::save_state(&mut conn, snap, entries)
        .map_err(|e| format!("cannot make a snapshot: {e}"))?;
    drop(conn);
    std::fs::read(&path).map_err(|e| format!("cannot make a snapshot: {e}"))
}

fn snapshot_from_bytes(bytes: &[u8]) -> Result<crate::runtime::Snapshot, String> {
    use crate::runtime::state::StateStore;
    let dir = tempfile::tempdir().map_err(|e| format!("cannot read a snapshot: {e}"))?;
    let path = dir.path().join("snapshot.db");
    std::fs::write(&path, bytes).map_err(|e| format!("cannot read a snapshot: {e}"))?;
    let mut store = crate::runtime::state::SqliteStore::open_to_read(&path)
        .map_err(|e| format!("cannot read a snapshot: {e}"))?;
    store
        .load()
        .map_err(|e| format!("a bad snapshot: {e}"))?
        .ok_or_else(|| "an empty snapshot".to_string())
}

/// `nurture journal --store URL [--partition P]`: the inboxes' events as
/// JSON Lines, each with the time its partition ran it, merged in time
/// order (each partition's own order kept).
pub fn write_journal(
    url: &str,
    partition: Option<u32>,
    out: &mut dyn Write,
) -> Result<u64, String> {
    let mut c = connect(url)?;
    let Some(meta) = read_meta(&mut c)? else {
        return Err(format!(
            "{} holds no cluster: make one with `nurture serve --store URL --init`",
            shown(url)
        ));
    };
    if let Some(p) = partition.filter(|p| *p >= meta.partitions) {
        return Err(format!(
            "--partition {p}: the cluster has partitions 0 to {}",
            meta.partitions - 1
        ));
    }
    let rows = c
        .query(
            "SELECT line, at FROM nurture_inbox WHERE kind = 'event' AND ($1::int IS NULL OR partition = $1) ORDER BY at, partition, seq",
            &[&partition.map(|p| p as i32)],
        )
        .map_err(db)?;
    let mut n = 0;
    for r in rows {
        let line: String = r.get(0);
        let at: Option<i64> = r.get(1);
        let line = match (Posted::parse(&line), at) {
            (Ok(p), Some(at)) => p.line_with_at(&format_datetime(at)),
            _ => line,
        };
        writeln!(out, "{line}").map_err(|e| format!("cannot write the journal: {e}"))?;
        n += 1;
    }
    Ok(n)
}
