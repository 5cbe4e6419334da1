//! The engine's thread: the one owner of the [`Interpreter`] and of the
//! state's database. It takes commands in groups (every command waiting
//! when it wakes): the events of a group are validated, run, and journaled
//! with what they emitted in one transaction (one sync for every request
//! of the group) before any of them is answered. Between groups it fires
//! the timers the wall clock has reached and takes checkpoints.
//!
//! Recovery: the state's last checkpoint records the journal row and the
//! outbox row it reflects; the journal after it is run again, which emits
//! the same records with the same ids (rows already in the outbox are kept
//! as they are).

use super::journal::{self, Entry, Row};
use super::posted::Posted;
use super::{wall_ms, ClockKind, Config, Loaded, Loader, Shared, Start};
use crate::runtime::state::take_up;
use crate::runtime::{
    format_datetime, parse_event, write_state, Batch, Driver, Interpreter, Millis, RecordError,
    What,
};
use rusqlite::Connection;
use serde_json::{json, Value as Json};
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A checkpoint is taken at least this often while anything changed...
const EVERY: Duration = Duration::from_secs(1);
/// ... and after this many events.
const EVERY_EVENTS: u64 = 10_000;
/// Commands taken in one group, at most.
const GROUP: usize = 512;
/// Records handled before the outbox is written out during one long move
/// of the clock.
const CHUNK: usize = 1024;

/// A bad record of a refused batch.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BadRecord {
    pub index: usize,
    pub field: Option<String>,
    pub reason: String,
}

/// A batch's answer: the stamps, or every bad record.
pub type Ingested = Result<Vec<String>, Vec<BadRecord>>;

/// Where a batch's answer goes.
pub type IngestReply = oneshot::Sender<Result<Ingested, Refusal>>;

/// Why a command could not be done.
#[derive(Debug)]
pub enum Refusal {
    /// Not ready (recovering) or stopping: 503.
    Unavailable(&'static str),
    /// A request the service's mode does not allow: 409.
    Conflict(String),
}

pub enum Cmd {
    Ingest {
        records: Vec<Posted>,
        reply: oneshot::Sender<Result<Ingested, Refusal>>,
    },
    Clock {
        until: Option<Millis>,
        reply: oneshot::Sender<Result<Option<Millis>, Refusal>>,
    },
    Contact {
        id: String,
        reply: oneshot::Sender<Option<Json>>,
    },
    State {
        reply: oneshot::Sender<Json>,
    },
    Report {
        html: bool,
        reply: oneshot::Sender<String>,
    },
    /// Outbox rows after a row, or after an action id.
    Outbox {
        after: After,
        limit: usize,
        /// With many machines, the partition whose outbox is read.
        partition: Option<u32>,
        reply: oneshot::Sender<Vec<Row>>,
    },
    /// The records accepted and then refused by their partition (many
    /// machines), as JSON Lines.
    Rejects {
        reply: oneshot::Sender<String>,
    },
    SinkPosition {
        name: String,
        /// With many machines, the partition.
        partition: Option<u32>,
        reply: oneshot::Sender<(u64, Option<u64>)>,
    },
    Delivered {
        name: String,
        seq: u64,
        file_len: Option<u64>,
        /// With many machines, the partition and the epoch its owner holds
        /// (the write is fenced by it).
        partition: Option<(u32, i64)>,
    },
    Reload {
        reply: oneshot::Sender<()>,
    },
    Checkpoint {
        reply: oneshot::Sender<u64>,
    },
    Stop {
        reply: oneshot::Sender<()>,
    },
}

/// Where a read of the outbox starts.
#[derive(Clone, Copy, Debug)]
pub enum After {
    Row(u64),
    Action(u64),
}

/// The HTTP side's and the sinks' handle on the engine.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Cmd>,
}

impl Handle {
    pub fn new(tx: mpsc::Sender<Cmd>) -> Handle {
        Handle { tx }
    }

    /// Sends a command and waits for its answer; `None` when the engine
    /// has stopped.
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).ok()?;
        rx.await.ok()
    }

    pub fn tell(&self, cmd: Cmd) {
        let _ = self.tx.send(cmd);
    }

    pub async fn reload(&self) {
        self.ask(|reply| Cmd::Reload { reply }).await;
    }

    /// Takes a checkpoint; the last outbox row written.
    pub async fn checkpoint(&self) -> u64 {
        self.ask(|reply| Cmd::Checkpoint { reply })
            .await
            .unwrap_or(0)
    }

    pub async fn stop(&self) {
        self.ask(|reply| Cmd::Stop { reply }).await;
    }
}

/// Starts the engine's thread: it recovers, then serves commands.
pub fn spawn(
    cfg: Arc<Config>,
    start: Start,
    shared: Arc<Shared>,
) -> std::io::Result<(Handle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("nurture-engine".into())
        .spawn(move || {
            let failed = shared.clone();
            let mut engine = Engine::new(cfg, start, shared);
            if let Err(e) = engine.recover().and_then(|()| engine.serve(&rx)) {
                tracing::error!("{e}");
                failed.failed.store(true, Ordering::Release);
                failed.failed_notify.notify_one();
                // Commands still coming find the channel closed.
                drop(rx);
            }
        })?;
    Ok((Handle { tx }, thread))
}

struct Engine {
    cfg: Arc<Config>,
    it: Interpreter,
    conn: Connection,
    loaded: Loaded,
    loader: Loader,
    shared: Arc<Shared>,
    write_whole: bool,
    /// The last journal row written (and run).
    journal_seq: u64,
    /// The outbox rows of the group under way, and the last row's number.
    out: OutboxBuf,
    /// The last stamp given: stamps never go back.
    last_stamp: Millis,
    /// Rows of the group under way, written with its transaction.
    journal_rows: Vec<(u64, Entry, Option<String>)>,
    /// Client ids of the group under way, with their stamps.
    group_ids: HashMap<String, Millis>,
    /// Answers held until the group's transaction is committed.
    held: Vec<Box<dyn FnOnce() + Send>>,
    accepted_in_group: u64,
    last_checkpoint: Instant,
    events_since: u64,
    changed: bool,
}

/// What the engine could not do: the service stops.
type Fatal = String;

impl Engine {
    fn new(cfg: Arc<Config>, start: Start, shared: Arc<Shared>) -> Engine {
        let Start {
            mut it,
            conn,
            loaded,
            loader,
            write_whole,
        } = start;
        it.set_action_ids(true);
        it.set_trace(cfg.trace);
        if cfg.allow_clock_jump || cfg.clock == ClockKind::Wall {
            // The wall clock moves as it moves: a service down for a year
            // comes back a year later.
            it.allow_clock_jump();
        }
        Engine {
            cfg,
            it,
            conn,
            loaded,
            loader,
            shared,
            write_whole,
            journal_seq: 0,
            out: OutboxBuf::default(),
            last_stamp: Millis::MIN,
            journal_rows: Vec::new(),
            group_ids: HashMap::new(),
            held: Vec::new(),
            accepted_in_group: 0,
            last_checkpoint: Instant::now(),
            events_since: 0,
            changed: false,
        }
    }

    fn db(&self, e: rusqlite::Error) -> Fatal {
        format!("cannot write the state `{}`: {e}", self.cfg.state.display())
    }

    /// Goes on from the last checkpoint: the journal after it is run again.
    fn recover(&mut self) -> Result<(), Fatal> {
        let started = Instant::now();
        self.conn
            .execute_batch(journal::SCHEMA)
            .and_then(|()| self.conn.execute_batch("PRAGMA synchronous = FULL"))
            .map_err(|e| self.db(e))?;
        // A new state has no rows yet (written whole below).
        let has_meta = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.db(e))?
            > 0;
        let meta = |key: &str| match has_meta {
            false => Ok(None),
            true => crate::runtime::state_meta(&self.conn, key)
                .map_err(|e| format!("`{}`: {e}", self.cfg.state.display())),
        };
        let pos = meta("serve")?.and_then(|t| serde_json::from_str::<Json>(&t).ok());
        let stored = meta("program")?;
        let (journal_at, outbox_at) = match &pos {
            Some(p) => (
                p["journal"].as_u64().unwrap_or(0),
                p["outbox"].as_u64().unwrap_or(0),
            ),
            None => (0, 0),
        };
        self.journal_seq = journal_at;
        self.out.seq = outbox_at;
        if self.write_whole {
            // A program changed while the service was down: the events
            // journaled after the last checkpoint were run by the program
            // that accepted them, which is not here to run them again.
            let changed = stored.is_some_and(|t| {
                crate::runtime::state::ProgramRecord::parse(&t).map_or(true, |r| {
                    r.fingerprint() != self.loaded.record.fingerprint()
                })
            });
            let pending = journal::after(&self.conn, journal_at)
                .map_err(|e| self.db(e))?
                .len();
            if changed && pending > 0 {
                return Err(format!(
                    "`{}` has {pending} journaled events after its last checkpoint, accepted by the program it was written by: start once with that program (it checkpoints when stopped), then change the program (or send SIGHUP)",
                    self.cfg.state.display()
                ));
            }
            // The `end` records of journeys the change ended, in the outbox
            // before the state that no longer holds them.
            self.take_output();
            self.commit()?;
            self.save_whole()?;
        }
        for line in &self.cfg.contacts {
            self.it
                .load_contact_line(line)
                .map_err(|e| format!("--contacts: {e}"))?;
        }
        if !self.cfg.contacts.is_empty() {
            self.save_whole()?;
        }
        self.it.track_changes();
        let rows = journal::after(&self.conn, journal_at).map_err(|e| self.db(e))?;
        let replayed = rows.len();
        for (seq, entry) in rows {
            self.run_entry(&entry)?;
            self.journal_seq = seq;
            self.take_output();
            if self.out.rows.len() >= CHUNK {
                let conn = &self.conn;
                self.out.write(conn).map_err(|e| self.db(e))?;
            }
        }
        self.commit()?;
        let (last, last_at) = journal::last(&self.conn).map_err(|e| self.db(e))?;
        self.journal_seq = self.journal_seq.max(last);
        self.last_stamp = last_at
            .unwrap_or(Millis::MIN)
            .max(self.it.now().unwrap_or(Millis::MIN));
        if replayed > 0 {
            self.checkpoint()?;
        }
        self.shared.outbox.send_replace(self.out.seq);
        self.shared.ready.store(true, Ordering::Release);
        tracing::info!(
            "recovered `{}`: {} contacts, clock {}, {replayed} journal entries replayed in {} ms",
            self.cfg.state.display(),
            self.it.contact_ids().count(),
            self.it.now().map_or("not started".into(), format_datetime),
            started.elapsed().as_millis()
        );
        Ok(())
    }

    /// Runs one journal entry again (recovery).
    fn run_entry(&mut self, entry: &Entry) -> Result<(), Fatal> {
        match entry {
            Entry::Event { line, .. } => {
                let input = parse_event(line, &self.it.program().schema)
                    .map_err(|e| format!("the journal holds a record the program refuses: {e}"))?;
                if let Err(e) = self.it.feed(input) {
                    tracing::warn!("a journaled event was not run again: {e}");
                }
                self.events_since += 1;
            }
            Entry::Until(t) => self.advance(*t)?,
            Entry::Drain => self.drain()?,
        }
        self.changed = true;
        Ok(())
    }

    fn serve(&mut self, rx: &mpsc::Receiver<Cmd>) -> Result<(), Fatal> {
        loop {
            let wait = self.sleep();
            let first = match rx.recv_timeout(wait) {
                Ok(c) => Some(c),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.checkpoint(),
            };
            if let Some(first) = first {
                let mut group = vec![first];
                while group.len() < GROUP {
                    match rx.try_recv() {
                        Ok(c) => group.push(c),
                        Err(_) => break,
                    }
                }
                for cmd in group {
                    if let Some(reply) = self.handle(cmd)? {
                        self.commit()?;
                        self.checkpoint()?;
                        let _ = reply.send(());
                        return Ok(());
                    }
                }
                self.commit()?;
            }
            if self.cfg.clock == ClockKind::Wall && !self.shared.stopping.load(Ordering::Acquire) {
                self.fire_due()?;
            }
            if self.changed
                && (self.last_checkpoint.elapsed() >= EVERY || self.events_since >= EVERY_EVENTS)
            {
                self.checkpoint()?;
            }
        }
    }

    /// How long to wait for a command: until the next timer is due (wall
    /// clock) or the next checkpoint.
    fn sleep(&self) -> Duration {
        let mut wait = EVERY;
        if self.cfg.clock == ClockKind::Wall {
            if let Some(due) = self.it.next_due() {
                let ms = due.saturating_sub(wall_ms()).max(0) as u64;
                wait = wait.min(Duration::from_millis(ms));
            }
        }
        wait
    }

    /// Handles one command; `Some` when it was a stop.
    fn handle(&mut self, cmd: Cmd) -> Result<Option<oneshot::Sender<()>>, Fatal> {
        match cmd {
            Cmd::Ingest { records, reply } => {
                let answer = self.ingest(records)?;
                self.hold(reply, answer);
            }
            Cmd::Clock { until, reply } => {
                let answer = self.move_clock(until)?;
                self.hold(reply, answer);
            }
            Cmd::Contact { id, reply } => {
                let _ = reply.send(self.contact(&id));
            }
            Cmd::State { reply } => {
                let _ = reply.send(self.state());
            }
            Cmd::Report { html, reply } => {
                let report =
                    crate::report::build(self.it.program(), &self.it.stats(), &self.loaded.sources);
                let _ = reply.send(if html {
                    crate::report::to_html(&report)
                } else {
                    format!("{}\n", crate::report::to_json(&report))
                });
            }
            Cmd::Rejects { reply } => {
                // One process refuses a bad record before accepting it.
                let _ = reply.send(String::new());
            }
            Cmd::Outbox {
                after,
                limit,
                reply,
                ..
            } => {
                self.commit()?;
                let rows = match after {
                    After::Row(seq) => Ok(seq),
                    After::Action(id) => journal::seq_of_action(&self.conn, id),
                }
                .and_then(|seq| journal::outbox_after(&self.conn, seq, limit))
                .map_err(|e| self.db(e))?;
                let _ = reply.send(rows);
            }
            Cmd::SinkPosition { name, reply, .. } => {
                let pos = journal::sink_position(&self.conn, &name).map_err(|e| self.db(e))?;
                let _ = reply.send(pos);
            }
            Cmd::Delivered {
                name,
                seq,
                file_len,
                ..
            } => {
                journal::set_sink_position(&self.conn, &name, seq, file_len)
                    .map_err(|e| self.db(e))?;
            }
            Cmd::Reload { reply } => {
                self.commit()?;
                self.reload()?;
                let _ = reply.send(());
            }
            Cmd::Checkpoint { reply } => {
                self.commit()?;
                self.checkpoint()?;
                let _ = reply.send(self.out.seq);
            }
            Cmd::Stop { reply } => return Ok(Some(reply)),
        }
        Ok(None)
    }

    /// Keeps an answer until the group's rows are committed.
    fn hold<T: Send + 'static>(&mut self, reply: oneshot::Sender<T>, answer: T) {
        self.held.push(Box::new(move || {
            let _ = reply.send(answer);
        }));
    }

    /// Validates a batch whole, then runs and journals it.
    fn ingest(&mut self, records: Vec<Posted>) -> Result<Result<Ingested, Refusal>, Fatal> {
        if !self.shared.ready.load(Ordering::Acquire) {
            return Ok(Err(Refusal::Unavailable("recovering")));
        }
        let virtual_clock = self.cfg.clock == ClockKind::Virtual;
        let wall = wall_ms();
        let mut floor = self.last_stamp.max(self.it.now().unwrap_or(Millis::MIN));
        let mut bad = Vec::new();
        let mut created: HashSet<String> = HashSet::new();
        // Per record: its line and input, or the stamp of the event with
        // its client id already accepted.
        let mut ready = Vec::new();
        let mut batch_ids: HashMap<String, Millis> = HashMap::new();
        for (index, p) in records.iter().enumerate() {
            let mut fail = |field: Option<&str>, reason: String| {
                bad.push(BadRecord {
                    index,
                    field: field.map(String::from),
                    reason,
                })
            };
            let client_id = p.get("id").map(str::to_string);
            if let Some(id) = &client_id {
                let seen = match batch_ids.get(id).or_else(|| self.group_ids.get(id)) {
                    Some(t) => Some(*t),
                    None => journal::seen(&self.conn, id).map_err(|e| self.db(e))?,
                };
                if let Some(t) = seen {
                    ready.push(Prepared::Seen(t));
                    continue;
                }
            }
            let floor_if_virtual = virtual_clock.then_some(Some(floor));
            let stamp = match p.stamp(wall, floor, floor_if_virtual) {
                Ok(t) => t,
                Err(reason) => {
                    fail(Some("at"), reason);
                    continue;
                }
            };
            let stamp_text = format_datetime(stamp);
            let line = p.line_with_at(&stamp_text);
            let input = match parse_event(&line, &self.it.program().schema) {
                Ok(i) => i,
                Err(reason) => {
                    fail(field_of(&reason).as_deref(), reason);
                    continue;
                }
            };
            let exists = self.it.has_contact(&input.contact) || created.contains(&*input.contact);
            if let Err(e) = self.it.admits(&input, exists) {
                let field = match &e {
                    RecordError::Late { .. } | RecordError::ClockJump { .. } => Some("at"),
                    RecordError::UnknownContact(_) | RecordError::ContactExists(_) => {
                        Some("contact")
                    }
                    RecordError::Invalid(_) => None,
                };
                fail(field, e.to_string());
                continue;
            }
            if !exists {
                created.insert(input.contact.to_string());
            }
            floor = stamp;
            if let Some(id) = &client_id {
                batch_ids.insert(id.clone(), stamp);
            }
            ready.push(Prepared::New {
                line,
                input,
                stamp,
                client_id,
            });
        }
        if !bad.is_empty() {
            metrics::counter!("nurture_events_refused_total").increment(bad.len() as u64);
            return Ok(Ok(Err(bad)));
        }
        let mut stamps = Vec::with_capacity(ready.len());
        for p in ready {
            match p {
                Prepared::Seen(t) => stamps.push(format_datetime(t)),
                Prepared::New {
                    line,
                    input,
                    stamp,
                    client_id,
                } => {
                    if let Err(e) = self.it.feed(input) {
                        // Validated above: never expected.
                        tracing::warn!("an accepted event was not run: {e}");
                    }
                    self.journal_seq += 1;
                    if let Some(id) = &client_id {
                        self.group_ids.insert(id.clone(), stamp);
                    }
                    self.journal_rows.push((
                        self.journal_seq,
                        Entry::Event { line, at: stamp },
                        client_id,
                    ));
                    self.last_stamp = self.last_stamp.max(stamp);
                    self.events_since += 1;
                    self.accepted_in_group += 1;
                    self.changed = true;
                    stamps.push(format_datetime(stamp));
                    self.take_output();
                }
            }
        }
        Ok(Ok(Ok(stamps)))
    }

    /// `POST /v1/clock`.
    fn move_clock(
        &mut self,
        until: Option<Millis>,
    ) -> Result<Result<Option<Millis>, Refusal>, Fatal> {
        if self.cfg.clock != ClockKind::Virtual {
            return Ok(Err(Refusal::Conflict(
                "the clock is the wall clock: `POST /v1/clock` needs --clock virtual".into(),
            )));
        }
        if !self.shared.ready.load(Ordering::Acquire) {
            return Ok(Err(Refusal::Unavailable("recovering")));
        }
        let entry = match until {
            Some(t) if self.it.now().is_some_and(|now| t <= now) => return Ok(Ok(self.it.now())),
            Some(t) => Entry::Until(t),
            None => Entry::Drain,
        };
        self.commit()?;
        self.run_entry(&entry)?;
        self.journal_seq += 1;
        self.journal_rows.push((self.journal_seq, entry, None));
        if let Some(t) = until {
            self.last_stamp = self.last_stamp.max(t);
        }
        Ok(Ok(self.it.now()))
    }

    /// Moves the clock to `t`, writing out what it emits as it goes.
    fn advance(&mut self, t: Millis) -> Result<(), Fatal> {
        let mut d = OutDriver {
            buf: &mut self.out,
            conn: &self.conn,
            failed: None,
        };
        let _ = self.it.advance_to_with(t, &mut d);
        let failed = d.failed.take();
        self.take_output();
        failed.map_or(Ok(()), |e| Err(self.db(e)))
    }

    fn drain(&mut self) -> Result<(), Fatal> {
        let mut d = OutDriver {
            buf: &mut self.out,
            conn: &self.conn,
            failed: None,
        };
        let _ = self.it.drain_with(&mut d);
        let failed = d.failed.take();
        self.take_output();
        failed.map_or(Ok(()), |e| Err(self.db(e)))
    }

    /// Fires the timers the wall clock has reached, with their due times.
    fn fire_due(&mut self) -> Result<(), Fatal> {
        let now = wall_ms();
        let Some(due) = self.it.next_due() else {
            return Ok(());
        };
        if due > now || self.it.now().is_none() {
            return Ok(());
        }
        metrics::gauge!("nurture_timer_lag_seconds").set((now - due) as f64 / 1000.0);
        // Only as far as the last timer due: the clock otherwise moves with
        // the stamps, so a run over the journal moves it the same way.
        let mut to = due;
        while let Some(next) = self.it.next_due().filter(|d| *d <= now) {
            to = next;
            self.advance(to)?;
        }
        let _ = to;
        self.changed = true;
        self.commit()
    }

    /// Takes what the engine emitted into the outbox rows of the group.
    fn take_output(&mut self) {
        self.out.take(&mut self.it);
    }

    /// Writes the group's journal and outbox rows in one transaction (one
    /// sync), then answers the group's requests.
    fn commit(&mut self) -> Result<(), Fatal> {
        if !self.journal_rows.is_empty() || !self.out.rows.is_empty() {
            let tx = self.conn.unchecked_transaction().map_err(|e| self.db(e))?;
            for (seq, entry, id) in &self.journal_rows {
                journal::append(&tx, *seq, entry, id.as_deref()).map_err(|e| self.db(e))?;
            }
            for row in &self.out.rows {
                journal::put_outbox(&tx, row).map_err(|e| self.db(e))?;
            }
            tx.commit().map_err(|e| self.db(e))?;
            self.journal_rows.clear();
            self.out.rows.clear();
            self.shared.outbox.send_replace(self.out.seq);
        }
        self.group_ids.clear();
        if self.accepted_in_group > 0 {
            metrics::counter!("nurture_events_accepted_total").increment(self.accepted_in_group);
            self.accepted_in_group = 0;
            self.gauges();
        }
        for answer in self.held.drain(..) {
            answer();
        }
        Ok(())
    }

    fn gauges(&self) {
        let stats = self.it.stats();
        for (w, n) in self.it.program().workflows.iter().zip(&stats.waiting) {
            metrics::gauge!("nurture_journeys_in_flight", "workflow" => w.name.to_string())
                .set(*n as f64);
        }
    }

    fn position(&self) -> String {
        json!({ "journal": self.journal_seq, "outbox": self.out.seq }).to_string()
    }

    /// Writes what changed since the last checkpoint, with the journal and
    /// outbox rows it reflects.
    fn checkpoint(&mut self) -> Result<(), Fatal> {
        self.commit()?;
        let mut batch = Batch::default();
        let totals = self.it.take_changes(&mut batch);
        let entries = [("serve", self.position())];
        write_state(&mut self.conn, &batch, &totals, &entries, false).map_err(|e| self.db(e))?;
        self.last_checkpoint = Instant::now();
        self.events_since = 0;
        self.changed = false;
        Ok(())
    }

    /// Writes the state whole (a new state, a moved one, a reload).
    fn save_whole(&mut self) -> Result<(), Fatal> {
        let entries = [
            ("program", self.loaded.record.to_json()),
            ("serve", self.position()),
        ];
        crate::runtime::save_state(&mut self.conn, &self.it.snapshot(), &entries)
            .map_err(|e| self.db(e))?;
        self.write_whole = false;
        Ok(())
    }

    fn contact(&self, id: &str) -> Option<Json> {
        if !self.it.has_contact(id) {
            return None;
        }
        let snap = self.it.snapshot();
        let n = snap.contacts.iter().position(|c| c.id == id)?;
        let p = crate::inspect::Program::of(self.loaded.record.clone());
        Some(crate::inspect::contact(&snap, n, &p))
    }

    fn state(&self) -> Json {
        let snap = self.it.snapshot();
        let p = crate::inspect::Program::of(self.loaded.record.clone());
        crate::inspect::overview(&snap, &p, &Json::Null)
    }

    /// SIGHUP: the program read again, under section 7's rule. Exactly one
    /// log line, accepted or refused.
    fn reload(&mut self) -> Result<(), Fatal> {
        let new = match (self.loader)() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("reload refused, the running program stays: {e}");
                return Ok(());
            }
        };
        let snap = self.it.snapshot();
        let taken = match take_up(&self.loaded.record, &new.record, &new.compiled, snap) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("reload refused, the running program stays: {e}");
                return Ok(());
            }
        };
        let exits = taken.exits.len();
        let mut it =
            match Interpreter::restore(new.compiled.clone(), self.cfg.trace, taken.snapshot) {
                Ok(it) => it,
                Err(e) => {
                    tracing::warn!("reload refused, the running program stays: {e}");
                    return Ok(());
                }
            };
        it.program_change_exits(&taken.exits);
        let before = self.loaded.record.fingerprint();
        self.it = it;
        self.it.set_action_ids(true);
        if self.cfg.allow_clock_jump || self.cfg.clock == ClockKind::Wall {
            self.it.allow_clock_jump();
        }
        self.loaded = new;
        // The `end` records of journeys the change ended, in the outbox
        // before the state that no longer holds them.
        self.take_output();
        self.commit()?;
        self.save_whole()?;
        self.it.track_changes();
        tracing::info!(
            "reloaded: program {} (was {}); {exits} journeys ended by the change",
            self.loaded.record.fingerprint(),
            before
        );
        Ok(())
    }
}

/// A record of a batch, checked and ready to run.
enum Prepared {
    /// Its client id was accepted before, with this stamp.
    Seen(Millis),
    New {
        line: String,
        input: crate::runtime::Input,
        stamp: Millis,
        client_id: Option<String>,
    },
}

/// The outbox rows not yet written, and the last row's number.
#[derive(Default)]
struct OutboxBuf {
    seq: u64,
    rows: Vec<Row>,
}

impl OutboxBuf {
    /// Takes what the interpreter emitted, as rows.
    fn take(&mut self, it: &mut Interpreter) {
        for r in it.take_emitted() {
            let mut line = it.render(&r);
            if line.ends_with('\n') {
                line.pop();
            }
            self.seq += 1;
            let action = match r.what {
                What::Action(_) => Some(r.id),
                What::Lifecycle(_) => None,
            };
            if action.is_some() {
                metrics::counter!("nurture_actions_emitted_total").increment(1);
            }
            self.rows.push(Row {
                seq: self.seq,
                action,
                at: r.at,
                line,
            });
        }
    }

    /// Writes the rows out (a long move of the clock: they are made again
    /// the same should the process die before the journal row).
    fn write(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let tx = conn.unchecked_transaction()?;
        for row in &self.rows {
            journal::put_outbox(&tx, row)?;
        }
        tx.commit()?;
        self.rows.clear();
        Ok(())
    }
}

/// Hands records out of a long move of the clock to the outbox as they come.
struct OutDriver<'a> {
    buf: &'a mut OutboxBuf,
    conn: &'a Connection,
    failed: Option<rusqlite::Error>,
}

impl Driver for OutDriver<'_> {
    fn bad_record(&mut self, _: &mut Interpreter, _: crate::runtime::BadRecord) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }

    fn progress(&mut self, _: &mut Interpreter, _: crate::runtime::Progress) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }

    fn output(&mut self, it: &mut Interpreter) -> ControlFlow<()> {
        self.buf.take(it);
        if self.buf.rows.len() >= CHUNK {
            if let Err(e) = self.buf.write(self.conn) {
                self.failed = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

/// The field a validation message names, when it names one.
pub(crate) fn field_of(reason: &str) -> Option<String> {
    if reason.starts_with("unknown event type") {
        return Some("type".into());
    }
    [
        "has no field `",
        "missing field `",
        "field `",
        "attribute `",
        "`",
    ]
    .iter()
    .find_map(|prefix| {
        let rest = &reason[reason.find(prefix)? + prefix.len()..];
        rest.split('`').next().map(String::from)
    })
}
