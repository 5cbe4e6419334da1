//! The owner's thread: announces the process (a heartbeat), claims its
//! fair share of partitions with session advisory locks, runs each owned
//! partition's inbox and timers, and commits each partition's progress in
//! one transaction fenced by the partition's epoch.

use super::{connect, db, InboxRow, Meta, Part, Ran, Runs, Stored};
use crate::runtime::Millis;
use crate::serve::{wall_ms, ClockKind, Loaded};
use postgres::Client;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often owned partitions are polled for new inbox rows.
const POLL: Duration = Duration::from_millis(10);
/// A snapshot of a partition is taken at least this often while it runs
/// (`NURTURE_SNAPSHOT_MS` may ask for more often: the tests of a new
/// owner starting from a snapshot).
fn snapshot_every() -> Duration {
    std::env::var("NURTURE_SNAPSHOT_MS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(Duration::from_secs(10), |ms| {
            Duration::from_millis(ms).min(Duration::from_secs(10))
        })
}

pub struct Owner {
    /// What this process owns, for its sinks.
    pub owned: crate::serve::Owned,
    pub shared: Arc<crate::serve::Shared>,
    pub url: String,
    pub id: String,
    pub meta: Meta,
    pub loaded: Arc<Loaded>,
    pub clock: ClockKind,
    pub trace: bool,
    pub failover: Duration,
    pub stop: Arc<AtomicBool>,
}

struct Owned {
    part: Part,
    epoch: i64,
    last_snapshot: Instant,
}

impl Owner {
    /// Runs until `stop`; reconnects (owning nothing) when the database
    /// goes away.
    pub fn run(self) {
        while !self.stop.load(Ordering::Acquire) {
            let ended = self.session();
            self.owned.set(BTreeMap::new());
            match ended {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!("owner: {e}; every partition given up, connecting again in 1 s");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// One database session: its advisory locks are the partitions owned.
    fn session(&self) -> Result<(), String> {
        let mut c = connect(&self.url)?;
        let mut owned: BTreeMap<u32, Owned> = BTreeMap::new();
        let mut last_beat = Instant::now() - self.failover;
        let beat_every = self.failover / 5;
        let offset = fnv(&self.id) % self.meta.partitions as u64;
        loop {
            if self.stop.load(Ordering::Acquire) {
                // A clean stop: partitions committed, locks released with
                // the session, the process's row removed.
                let _ = c.execute("DELETE FROM nurture_processes WHERE id = $1", &[&self.id]);
                return Ok(());
            }
            if last_beat.elapsed() >= beat_every {
                last_beat = Instant::now();
                self.membership(&mut c, &mut owned, offset)?;
                self.gauges(&owned);
            }
            self.owned
                .set(owned.iter().map(|(p, o)| (*p, o.epoch)).collect());
            let mut worked = false;
            let heads = heads(&mut c, &owned)?;
            let ids: Vec<u32> = owned.keys().copied().collect();
            for p in ids {
                let head = heads.get(&p).copied().unwrap_or(0);
                let Some(o) = owned.get_mut(&p) else { continue };
                match self.step(&mut c, o, head) {
                    Ok(w) => worked |= w,
                    Err(Step::Lost) => {
                        tracing::warn!(
                            "partition {p}: lost (another process claimed it); it is no longer run here"
                        );
                        owned.remove(&p);
                        let _ = c.execute(
                            "SELECT pg_advisory_unlock($1, $2)",
                            &[&self.meta.lock_key, &(p as i32)],
                        );
                    }
                    Err(Step::Failed(e)) => return Err(e),
                }
            }
            if !worked {
                std::thread::sleep(POLL);
            }
        }
    }

    /// The heartbeat, the stale processes' sessions ended, and the fair
    /// share claimed or given back.
    fn membership(
        &self,
        c: &mut Client,
        owned: &mut BTreeMap<u32, Owned>,
        offset: u64,
    ) -> Result<(), String> {
        let failover = self.failover.as_millis() as f64 / 1000.0;
        c.execute(
            "INSERT INTO nurture_processes VALUES ($1, pg_backend_pid(), now(), now())
             ON CONFLICT (id) DO UPDATE SET heartbeat = now(), backend_pid = pg_backend_pid()",
            &[&self.id],
        )
        .map_err(db)?;
        // A process silent past the failover time (dead, or paused) has its
        // session ended: its advisory locks go with it.
        let stale = c
            .query(
                "DELETE FROM nurture_processes WHERE heartbeat < now() - make_interval(secs => $1)
                 RETURNING id, backend_pid",
                &[&failover],
            )
            .map_err(db)?;
        for row in stale {
            let id: String = row.get(0);
            let pid: Option<i32> = row.get(1);
            if let Some(pid) = pid {
                let _ = c.execute("SELECT pg_terminate_backend($1)", &[&pid]);
            }
            tracing::info!("process {id} is silent past --failover: its partitions are free");
        }
        let live: i64 = c
            .query_one("SELECT count(*) FROM nurture_processes", &[])
            .map_err(db)?
            .get(0);
        let p = self.meta.partitions as usize;
        let fair = p.div_ceil(live.max(1) as usize);
        if owned.len() > fair {
            let extra: Vec<u32> = owned
                .keys()
                .rev()
                .take(owned.len() - fair)
                .copied()
                .collect();
            for q in extra {
                owned.remove(&q);
                c.execute(
                    "SELECT pg_advisory_unlock($1, $2)",
                    &[&self.meta.lock_key, &(q as i32)],
                )
                .map_err(db)?;
            }
            tracing::info!(
                "owning {} partitions (fair share of {live} processes)",
                owned.len()
            );
        } else if owned.len() < fair {
            let before = owned.len();
            for i in 0..p as u64 {
                if owned.len() >= fair {
                    break;
                }
                let q = ((i + offset) % p as u64) as u32;
                if owned.contains_key(&q) {
                    continue;
                }
                let got: bool = c
                    .query_one(
                        "SELECT pg_try_advisory_lock($1, $2)",
                        &[&self.meta.lock_key, &(q as i32)],
                    )
                    .map_err(db)?
                    .get(0);
                if got {
                    let o = self.claim(c, q)?;
                    owned.insert(q, o);
                }
            }
            if owned.len() != before {
                tracing::info!(
                    "owning {} partitions (fair share of {live} processes)",
                    owned.len()
                );
            }
        }
        Ok(())
    }

    fn runs(&self) -> Runs {
        Runs::of(&self.loaded, self.trace, self.clock, &self.meta)
    }

    /// Journeys in flight per workflow over the partitions this process
    /// owns (summed over the processes, the cluster's).
    fn gauges(&self, owned: &BTreeMap<u32, Owned>) {
        let workflows = &self.loaded.compiled.workflows;
        let mut waiting = vec![0u64; workflows.len()];
        for o in owned.values() {
            for (w, n) in waiting.iter_mut().zip(o.part.it.stats().waiting) {
                *w += n;
            }
        }
        for (w, n) in workflows.iter().zip(waiting) {
            metrics::gauge!("nurture_journeys_in_flight", "workflow" => w.name.to_string())
                .set(n as f64);
        }
    }

    /// Takes a partition over: a new epoch, its engine rebuilt.
    fn claim(&self, c: &mut Client, p: u32) -> Result<Owned, String> {
        let started = Instant::now();
        let row = c
            .query_one(
                "UPDATE nurture_partitions SET epoch = epoch + 1, owner = $2 WHERE partition = $1
                 RETURNING epoch, snap_inbox, snap_outbox, inbox_pos, outbox_pos, clock",
                &[&(p as i32), &self.id],
            )
            .map_err(db)?;
        let epoch: i64 = row.get(0);
        let stored = Stored::load(c, p, row.get(1), row.get(2))?;
        let part = rebuild(c, p, &self.runs(), &stored, row.get(3), row.get(5))?;
        let committed: i64 = row.get(4);
        if part.out_seq != committed {
            tracing::warn!(
                "partition {p}: its inbox ran again to {} outbox rows, {committed} were committed",
                part.out_seq
            );
        }
        tracing::debug!(
            "partition {p}: claimed at epoch {epoch} in {} ms",
            started.elapsed().as_millis()
        );
        Ok(Owned {
            part,
            epoch,
            last_snapshot: Instant::now(),
        })
    }

    /// Runs what is new in a partition's inbox, and the timers the wall
    /// clock has reached; commits. True when it did anything.
    fn step(&self, c: &mut Client, o: &mut Owned, head: i64) -> Result<bool, Step> {
        let p = o.part.partition;
        let mut out = Vec::new();
        let mut moved = Vec::new();
        let mut rejects = Vec::new();
        if head > o.part.pos {
            let rows = super::inbox_after(c, p, o.part.pos, head).map_err(Step::Failed)?;
            for row in &rows {
                match o.part.run(row) {
                    Ran::Event(at) => {
                        if row.at != Some(at) {
                            moved.push((row.seq, at));
                        }
                    }
                    Ran::Rejected(reason) => {
                        metrics::counter!("nurture_events_refused_total").increment(1);
                        rejects.push((row.seq, reason, row.line.clone()));
                    }
                    Ran::Clock => {}
                }
                out.extend(o.part.take());
            }
        }
        if self.clock == ClockKind::Wall {
            let now = wall_ms();
            while let Some(due) = o.part.it.next_due().filter(|d| *d <= now) {
                if o.part.it.now().is_none() {
                    break;
                }
                metrics::gauge!("nurture_timer_lag_seconds").set((now - due) as f64 / 1000.0);
                o.part.it.advance_to(due);
                out.extend(o.part.take());
                if o.part.it.next_due() == Some(due) {
                    break;
                }
            }
        }
        if out.is_empty() && !o.part.dirty() {
            return Ok(false);
        }
        let snapshot = if o.last_snapshot.elapsed() >= snapshot_every() {
            o.last_snapshot = Instant::now();
            Some(super::snapshot_bytes(&o.part.it, &self.loaded.record).map_err(Step::Failed)?)
        } else {
            None
        };
        commit(c, o, &out, &moved, &rejects, snapshot)?;
        if !out.is_empty() {
            // The sinks look again.
            self.shared.outbox.send_modify(|n| *n += 1);
        }
        metrics::counter!("nurture_actions_emitted_total")
            .increment(out.iter().filter(|r| r.1.is_some()).count() as u64);
        Ok(true)
    }
}

/// Why a step stopped.
enum Step {
    /// The partition's epoch moved on: another process owns it.
    Lost,
    /// The database failed.
    Failed(String),
}

impl Part {
    /// Whether it moved since its last commit.
    fn dirty(&self) -> bool {
        self.pos != self.committed || self.it.now() != self.committed_clock
    }
}

/// Commits a partition's progress, fenced by its epoch.
fn commit(
    c: &mut Client,
    o: &mut Owned,
    out: &[(i64, Option<i64>, i64, String)],
    moved: &[(i64, Millis)],
    rejects: &[(i64, String, String)],
    snapshot: Option<Vec<u8>>,
) -> Result<(), Step> {
    let p = o.part.partition as i32;
    let failed = |e: postgres::Error| Step::Failed(db(e));
    let mut tx = c.transaction().map_err(failed)?;
    let n = tx
        .execute(
            "UPDATE nurture_partitions SET inbox_pos = $3, outbox_pos = $4, clock = $5
             WHERE partition = $1 AND epoch = $2",
            &[&p, &o.epoch, &o.part.pos, &o.part.out_seq, &o.part.it.now()],
        )
        .map_err(failed)?;
    if n != 1 {
        let _ = tx.rollback();
        return Err(Step::Lost);
    }
    if !out.is_empty() {
        let seqs: Vec<i64> = out.iter().map(|r| r.0).collect();
        let actions: Vec<Option<i64>> = out.iter().map(|r| r.1).collect();
        let ats: Vec<i64> = out.iter().map(|r| r.2).collect();
        let lines: Vec<&str> = out.iter().map(|r| r.3.as_str()).collect();
        tx.execute(
            "INSERT INTO nurture_outbox SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[])",
            &[&p, &seqs, &actions, &ats, &lines],
        )
        .map_err(failed)?;
    }
    if !moved.is_empty() {
        let seqs: Vec<i64> = moved.iter().map(|r| r.0).collect();
        let ats: Vec<i64> = moved.iter().map(|r| r.1).collect();
        tx.execute(
            "UPDATE nurture_inbox i SET at = u.at FROM unnest($2::bigint[], $3::bigint[]) AS u(seq, at)
             WHERE i.partition = $1 AND i.seq = u.seq",
            &[&p, &seqs, &ats],
        )
        .map_err(failed)?;
    }
    if !rejects.is_empty() {
        let seqs: Vec<i64> = rejects.iter().map(|r| r.0).collect();
        let reasons: Vec<&str> = rejects.iter().map(|r| r.1.as_str()).collect();
        let lines: Vec<&str> = rejects.iter().map(|r| r.2.as_str()).collect();
        tx.execute(
            "INSERT INTO nurture_rejects SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[])",
            &[&p, &seqs, &reasons, &lines],
        )
        .map_err(failed)?;
    }
    if let Some(bytes) = snapshot {
        tx.execute(
            "UPDATE nurture_partitions SET snapshot = $2, snap_inbox = $3, snap_outbox = $4 WHERE partition = $1",
            &[&p, &bytes, &o.part.pos, &o.part.out_seq],
        )
        .map_err(failed)?;
    }
    tx.commit().map_err(failed)?;
    o.part.committed = o.part.pos;
    o.part.committed_clock = o.part.it.now();
    Ok(())
}

/// The last inbox row allocated in each owned partition.
fn heads(c: &mut Client, owned: &BTreeMap<u32, Owned>) -> Result<BTreeMap<u32, i64>, String> {
    if owned.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ids: Vec<i32> = owned.keys().map(|p| *p as i32).collect();
    let rows = c
        .query(
            "SELECT partition, inbox_head FROM nurture_partitions WHERE partition = ANY($1)",
            &[&ids],
        )
        .map_err(db)?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, i32>(0) as u32, r.get::<_, i64>(1)))
        .collect())
}

/// A partition's engine rebuilt from its snapshot and the inbox after it,
/// up to `to`, with the timers up to `clock` fired (what its owner had
/// committed). What this emits was committed before: it is dropped.
pub fn rebuild(
    c: &mut Client,
    p: u32,
    runs: &Runs,
    stored: &Stored,
    to: i64,
    clock: Option<i64>,
) -> Result<Part, String> {
    let mut part = Part::from_snapshot(p, runs, stored)?;
    catch_up(c, &mut part, to, clock)?;
    part.committed = part.pos;
    part.committed_clock = part.it.now();
    Ok(part)
}

/// Runs a partition's inbox on to `to` and its clock to `clock`, dropping
/// what it emits (committed by the owner before).
pub fn catch_up(
    c: &mut Client,
    part: &mut Part,
    to: i64,
    clock: Option<i64>,
) -> Result<(), String> {
    while part.pos < to {
        let rows: Vec<InboxRow> = super::inbox_after(c, part.partition, part.pos, to)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            part.run(row);
            part.take();
        }
    }
    if let Some(t) = clock {
        if part.it.now().is_some_and(|now| t > now) {
            part.it.advance_to(t);
            part.take();
        }
    }
    Ok(())
}

/// FNV-1a of a text: where a process starts looking for partitions.
fn fnv(s: &str) -> u64 {
    crate::runtime::partition_of(s, u32::MAX) as u64
}
