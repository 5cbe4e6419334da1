//! A cluster process's front: the commands of the HTTP API, answered over
//! PostgreSQL. Ingest takes the commands waiting together into one
//! transaction (one commit for every request of the group); reads rebuild
//! each partition from its snapshot and inbox, to where its owner has
//! committed.

use super::owner::{catch_up, rebuild};
use super::{connect, db, Meta, Part, Runs, Stored};
use crate::runtime::{format_datetime, parse_event, partition_of, Millis};
use crate::serve::engine::{After, BadRecord, Cmd, IngestReply, Refusal};
use crate::serve::journal::Row;
use crate::serve::posted::Posted;
use crate::serve::{wall_ms, ClockKind, Loaded, Shared};
use postgres::Client;
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub struct Front {
    pub url: String,
    pub meta: Meta,
    pub loaded: Arc<Loaded>,
    pub clock: ClockKind,
    pub trace: bool,
    pub shared: Arc<Shared>,
    pub stop_owner: Arc<std::sync::atomic::AtomicBool>,
}

/// One record ready to be written to its partition's inbox.
struct Ready {
    partition: u32,
    line: String,
    at: Millis,
    client_id: Option<String>,
}

impl Front {
    pub fn serve(self, rx: mpsc::Receiver<Cmd>) {
        let mut c = match connect(&self.url) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{e}");
                self.shared.failed.store(true, Ordering::Release);
                self.shared.failed_notify.notify_one();
                return;
            }
        };
        self.shared.ready.store(true, Ordering::Release);
        let mut state = FrontState {
            last_stamp: Millis::MIN,
            replicas: BTreeMap::new(),
        };
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while let Ok(cmd) = rx.try_recv() {
                group.push(cmd);
                if group.len() >= 512 {
                    break;
                }
            }
            let mut ingests = Vec::new();
            for cmd in group {
                match cmd {
                    Cmd::Ingest { records, reply } => ingests.push((records, reply)),
                    Cmd::Stop { reply } => {
                        self.ingest(&mut c, &mut state, std::mem::take(&mut ingests));
                        self.stop_owner.store(true, Ordering::Release);
                        let _ = reply.send(());
                        return;
                    }
                    other => {
                        self.ingest(&mut c, &mut state, std::mem::take(&mut ingests));
                        if let Err(e) = self.handle(&mut c, &mut state, other) {
                            tracing::error!("{e}");
                            if c.is_closed() {
                                match connect(&self.url) {
                                    Ok(n) => c = n,
                                    Err(e) => tracing::error!("{e}"),
                                }
                            }
                        }
                    }
                }
            }
            self.ingest(&mut c, &mut state, ingests);
        }
        self.stop_owner.store(true, Ordering::Release);
    }

    fn handle(&self, c: &mut Client, st: &mut FrontState, cmd: Cmd) -> Result<(), String> {
        match cmd {
            Cmd::Ingest { .. } | Cmd::Stop { .. } => {}
            Cmd::Clock { until, reply } => self.move_clock(c, until, reply)?,
            Cmd::Contact { id, reply } => {
                let p = partition_of(&id, self.meta.partitions);
                self.refresh(c, st, &[p])?;
                let answer = st.replicas.get(&p).and_then(|part| {
                    if !part.it.has_contact(&id) {
                        return None;
                    }
                    let snap = part.it.snapshot();
                    let n = snap.contacts.iter().position(|r| r.id == id)?;
                    let prog = crate::inspect::Program::of(self.loaded.record.clone());
                    Some(crate::inspect::contact(&snap, n, &prog))
                });
                let _ = reply.send(answer);
            }
            Cmd::State { reply } => {
                let all: Vec<u32> = (0..self.meta.partitions).collect();
                self.refresh(c, st, &all)?;
                let mut merged: Option<crate::runtime::Snapshot> = None;
                for part in st.replicas.values() {
                    let snap = part.it.snapshot();
                    match &mut merged {
                        None => merged = Some(snap),
                        Some(m) => {
                            let base = m.contacts.len() as u32;
                            m.contacts.extend(snap.contacts);
                            m.journeys.extend(snap.journeys.into_iter().map(|mut j| {
                                j.contact += base;
                                j
                            }));
                            m.totals.clock = m.totals.clock.max(snap.totals.clock);
                        }
                    }
                }
                let prog = crate::inspect::Program::of(self.loaded.record.clone());
                let v = merged.map_or(Json::Null, |m| {
                    let mut v = crate::inspect::overview(&m, &prog, &Json::Null);
                    v["partitions"] = json!(self.meta.partitions);
                    v
                });
                let _ = reply.send(v);
            }
            Cmd::Report { html, reply } => {
                let all: Vec<u32> = (0..self.meta.partitions).collect();
                self.refresh(c, st, &all)?;
                let mut stats: Option<crate::runtime::RunStats> = None;
                for part in st.replicas.values() {
                    let s = part.it.stats();
                    match &mut stats {
                        None => stats = Some(s),
                        Some(t) => t.absorb(&s),
                    }
                }
                let text = match stats {
                    Some(s) => {
                        let report =
                            crate::report::build(&self.loaded.compiled, &s, &self.loaded.sources);
                        if html {
                            crate::report::to_html(&report)
                        } else {
                            format!("{}\n", crate::report::to_json(&report))
                        }
                    }
                    None => String::new(),
                };
                let _ = reply.send(text);
            }
            Cmd::Outbox {
                after,
                limit,
                partition,
                reply,
            } => {
                let p = partition.unwrap_or(0) as i32;
                let from = match after {
                    After::Row(seq) => seq as i64,
                    After::Action(id) => c
                        .query_one(
                            "SELECT COALESCE(MAX(seq), 0) FROM nurture_outbox WHERE partition = $1 AND action IS NOT NULL AND action <= $2",
                            &[&p, &(id as i64)],
                        )
                        .map_err(db)?
                        .get(0),
                };
                let rows = c
                    .query(
                        "SELECT seq, action, at, line FROM nurture_outbox WHERE partition = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                        &[&p, &from, &(limit as i64)],
                    )
                    .map_err(db)?;
                let rows = rows
                    .iter()
                    .map(|r| Row {
                        seq: r.get::<_, i64>(0) as u64,
                        action: r.get::<_, Option<i64>>(1).map(|a| a as u64),
                        at: r.get(2),
                        line: r.get(3),
                    })
                    .collect();
                let _ = reply.send(rows);
            }
            Cmd::Rejects { reply } => {
                let rows = c
                    .query(
                        "SELECT partition, seq, reason, line FROM nurture_rejects ORDER BY partition, seq",
                        &[],
                    )
                    .map_err(db)?;
                let mut text = String::new();
                for r in rows {
                    let line: String = r.get(3);
                    let record: Json = serde_json::from_str(&line).unwrap_or(Json::Null);
                    text.push_str(
                        &json!({
                            "partition": r.get::<_, i32>(0),
                            "seq": r.get::<_, i64>(1),
                            "reason": r.get::<_, String>(2),
                            "record": record,
                        })
                        .to_string(),
                    );
                    text.push('\n');
                }
                let _ = reply.send(text);
            }
            Cmd::SinkPosition {
                name,
                partition,
                reply,
            } => {
                let p = partition.unwrap_or(0) as i32;
                let row = c
                    .query_opt(
                        "SELECT delivered FROM nurture_sinks WHERE partition = $1 AND sink = $2",
                        &[&p, &name],
                    )
                    .map_err(db)?;
                let _ = reply.send((row.map_or(0, |r| r.get::<_, i64>(0) as u64), None));
            }
            Cmd::Delivered {
                name,
                seq,
                partition: Some((p, epoch)),
                ..
            } => {
                // Fenced: only while the partition's epoch is the one its
                // owner delivered under.
                c.execute(
                    "INSERT INTO nurture_sinks SELECT $1, $2, $3 WHERE EXISTS
                       (SELECT 1 FROM nurture_partitions WHERE partition = $1 AND epoch = $4)
                     ON CONFLICT (partition, sink) DO UPDATE SET delivered = excluded.delivered",
                    &[&(p as i32), &name, &(seq as i64), &epoch],
                )
                .map_err(db)?;
            }
            Cmd::Delivered { .. } => {}
            Cmd::Reload { reply } => {
                tracing::warn!(
                    "reload refused, the running program stays: a cluster's processes change programs together by a restart of each with the new program (docs/scaling.md)"
                );
                let _ = reply.send(());
            }
            Cmd::Checkpoint { reply } => {
                let _ = reply.send(0);
            }
        }
        Ok(())
    }

    /// Brings the read copies of partitions up to their owners' commits.
    fn refresh(&self, c: &mut Client, st: &mut FrontState, parts: &[u32]) -> Result<(), String> {
        let ids: Vec<i32> = parts.iter().map(|p| *p as i32).collect();
        let rows = c
            .query(
                "SELECT partition, inbox_pos, clock FROM nurture_partitions WHERE partition = ANY($1)",
                &[&ids],
            )
            .map_err(db)?;
        for r in rows {
            let p = r.get::<_, i32>(0) as u32;
            let to: i64 = r.get(1);
            let clock: Option<i64> = r.get(2);
            match st.replicas.get_mut(&p) {
                Some(part) => catch_up(c, part, to, clock)?,
                None => {
                    // The snapshot and the positions it reflects, read in
                    // one snapshot of the database (an owner may commit a
                    // newer one meanwhile).
                    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                        .map_err(db)?;
                    let s = c
                        .query_one(
                            "SELECT snap_inbox, snap_outbox FROM nurture_partitions WHERE partition = $1",
                            &[&(p as i32)],
                        )
                        .map_err(db)?;
                    let stored = Stored::load(c, p, s.get(0), s.get(1))?;
                    c.batch_execute("COMMIT").map_err(db)?;
                    let runs = Runs::of(&self.loaded, self.trace, self.clock, &self.meta);
                    let part = rebuild(c, p, &runs, &stored, to, clock)?;
                    st.replicas.insert(p, part);
                }
            }
        }
        Ok(())
    }

    /// Validates every batch of the group (against the schema), then writes
    /// the valid ones to the inboxes in one transaction.
    fn ingest(
        &self,
        c: &mut Client,
        st: &mut FrontState,
        batches: Vec<(Vec<Posted>, IngestReply)>,
    ) {
        if batches.is_empty() {
            return;
        }
        let wall = wall_ms();
        let mut valid = Vec::new();
        for (records, reply) in batches {
            let mut bad = Vec::new();
            let mut ready = Vec::new();
            for (index, p) in records.iter().enumerate() {
                match self.prepare(p, wall, st.last_stamp) {
                    Ok(r) => ready.push(r),
                    Err((field, reason)) => bad.push(BadRecord {
                        index,
                        field,
                        reason,
                    }),
                }
            }
            if bad.is_empty() {
                valid.push((ready, reply));
            } else {
                metrics::counter!("nurture_events_refused_total").increment(bad.len() as u64);
                let _ = reply.send(Ok(Err(bad)));
            }
        }
        if valid.is_empty() {
            return;
        }
        let mut tries = 0;
        let stamps = loop {
            tries += 1;
            match write_inboxes(c, &valid) {
                Ok(s) => break Ok(s),
                Err(e) if tries < 5 && retryable(&e) => continue,
                Err(e) => break Err(db(e)),
            }
        };
        match stamps {
            Ok(stamps) => {
                let mut n = 0;
                for ((ready, reply), stamps) in valid.into_iter().zip(stamps) {
                    n += ready.len() as u64;
                    for r in &ready {
                        st.last_stamp = st.last_stamp.max(r.at);
                    }
                    let _ = reply.send(Ok(Ok(stamps.into_iter().map(format_datetime).collect())));
                }
                metrics::counter!("nurture_events_accepted_total").increment(n);
            }
            Err(e) => {
                tracing::error!("ingest failed: {e}");
                for (_, reply) in valid {
                    let _ = reply.send(Err(Refusal::Unavailable("the database failed")));
                }
                if c.is_closed() {
                    if let Ok(n) = connect(&self.url) {
                        *c = n;
                    }
                }
            }
        }
    }

    /// Stamps and validates one record (against the schema only: whether
    /// its contact exists is its partition's to say).
    fn prepare(
        &self,
        p: &Posted,
        wall: Millis,
        last: Millis,
    ) -> Result<Ready, (Option<String>, String)> {
        // A virtual clock's floor is each partition's, which its owner
        // keeps: a late event runs at the partition's clock.
        let floor = (self.clock == ClockKind::Virtual).then_some(None);
        let at = p
            .stamp(wall, last, floor)
            .map_err(|reason| (Some("at".to_string()), reason))?;
        let line = p.line_with_at(&format_datetime(at));
        let input = parse_event(&line, &self.loaded.compiled.schema).map_err(|reason| {
            let field = crate::serve::engine::field_of(&reason);
            (field, reason)
        })?;
        Ok(Ready {
            partition: partition_of(&input.contact, self.meta.partitions),
            line,
            at,
            client_id: p.get("id").map(str::to_string),
        })
    }

    /// `POST /v1/clock`: an `until` (or `drain`) row in every partition's
    /// inbox; answered once every owner has run it.
    fn move_clock(
        &self,
        c: &mut Client,
        until: Option<Millis>,
        reply: oneshot::Sender<Result<Option<Millis>, Refusal>>,
    ) -> Result<(), String> {
        if self.clock != ClockKind::Virtual {
            let _ = reply.send(Err(Refusal::Conflict(
                "the clock is the wall clock: `POST /v1/clock` needs --clock virtual".into(),
            )));
            return Ok(());
        }
        let n = self.meta.partitions as i32;
        let mut tx = c.transaction().map_err(db)?;
        tx.query(
            "SELECT partition FROM nurture_partitions ORDER BY partition FOR UPDATE",
            &[],
        )
        .map_err(db)?;
        let heads = tx
            .query(
                "UPDATE nurture_partitions SET inbox_head = inbox_head + 1 RETURNING partition, inbox_head",
                &[],
            )
            .map_err(db)?;
        let (kind, line) = match until {
            Some(t) => ("until", format_datetime(t)),
            None => ("drain", String::new()),
        };
        let mut seqs: HashMap<i32, i64> = HashMap::new();
        for h in &heads {
            let p: i32 = h.get(0);
            let seq: i64 = h.get(1);
            seqs.insert(p, seq);
            tx.execute(
                "INSERT INTO nurture_inbox VALUES ($1, $2, $3, $4, $5)",
                &[&p, &seq, &kind, &line, &until],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        let url = self.url.clone();
        // Waited for on a thread of its own: the front goes on meanwhile.
        std::thread::spawn(move || {
            let answer = (|| -> Result<Option<Millis>, String> {
                let mut c = connect(&url)?;
                let started = Instant::now();
                loop {
                    let rows = c
                        .query(
                            "SELECT partition, inbox_pos, clock FROM nurture_partitions",
                            &[],
                        )
                        .map_err(db)?;
                    let done = rows.len() as i32 == n
                        && rows.iter().all(|r| {
                            r.get::<_, i64>(1)
                                >= seqs.get(&r.get::<_, i32>(0)).copied().unwrap_or(0)
                        });
                    if done {
                        return Ok(rows.iter().filter_map(|r| r.get::<_, Option<i64>>(2)).max());
                    }
                    if started.elapsed() > Duration::from_secs(60) {
                        return Err("some partition has no owner running it".into());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })();
            let _ = reply.send(answer.map_err(|e| {
                tracing::warn!("POST /v1/clock: {e}");
                Refusal::Unavailable("a partition did not move its clock within 60 s")
            }));
        });
        Ok(())
    }
}

struct FrontState {
    last_stamp: Millis,
    replicas: BTreeMap<u32, Part>,
}

fn retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// One transaction: client ids deduplicated, partitions' heads moved (the
/// partitions locked in order), inbox rows written. Per batch, the stamps.
fn write_inboxes(
    c: &mut Client,
    batches: &[(Vec<Ready>, IngestReply)],
) -> Result<Vec<Vec<Millis>>, postgres::Error> {
    let mut tx = c.transaction()?;
    // Client ids: the first of each accepted here is new unless the table
    // has it; the others answer with the stamp it was accepted with.
    let mut first_of: HashMap<(u32, &str), (usize, usize)> = HashMap::new();
    let mut id_parts = Vec::new();
    let mut id_keys = Vec::new();
    let mut id_ats = Vec::new();
    for (b, (ready, _)) in batches.iter().enumerate() {
        for (i, r) in ready.iter().enumerate() {
            if let Some(id) = &r.client_id {
                if first_of
                    .insert((r.partition, id.as_str()), (b, i))
                    .is_none()
                {
                    id_parts.push(r.partition as i32);
                    id_keys.push(id.as_str());
                    id_ats.push(r.at);
                }
            }
        }
    }
    let mut seen: HashMap<(u32, String), Millis> = HashMap::new();
    if !id_keys.is_empty() {
        let inserted = tx.query(
            "INSERT INTO nurture_ids SELECT * FROM unnest($1::int[], $2::text[], $3::bigint[])
             ON CONFLICT DO NOTHING RETURNING partition, client_id",
            &[&id_parts, &id_keys, &id_ats],
        )?;
        let new: std::collections::HashSet<(u32, String)> = inserted
            .iter()
            .map(|r| (r.get::<_, i32>(0) as u32, r.get::<_, String>(1)))
            .collect();
        let old = tx.query(
            "SELECT i.partition, i.client_id, i.at FROM nurture_ids i
             JOIN unnest($1::int[], $2::text[]) AS k(partition, client_id)
             ON i.partition = k.partition AND i.client_id = k.client_id",
            &[&id_parts, &id_keys],
        )?;
        for r in old {
            let key = (r.get::<_, i32>(0) as u32, r.get::<_, String>(1));
            if !new.contains(&key) {
                seen.insert(key, r.get(2));
            }
        }
    }
    // Which records are written, and each batch's stamps.
    let mut stamps: Vec<Vec<Millis>> = Vec::new();
    let mut rows: Vec<(u32, &Ready)> = Vec::new();
    for (b, (ready, _)) in batches.iter().enumerate() {
        let mut s = Vec::new();
        for (i, r) in ready.iter().enumerate() {
            match &r.client_id {
                Some(id) => {
                    if let Some(at) = seen.get(&(r.partition, id.clone())) {
                        s.push(*at);
                    } else if first_of.get(&(r.partition, id.as_str())) != Some(&(b, i)) {
                        // A second record with an id accepted in this group.
                        s.push(
                            first_of
                                .get(&(r.partition, id.as_str()))
                                .map_or(r.at, |(fb, fi)| batches[*fb].0[*fi].at),
                        );
                    } else {
                        s.push(r.at);
                        rows.push((r.partition, r));
                    }
                }
                None => {
                    s.push(r.at);
                    rows.push((r.partition, r));
                }
            }
        }
        stamps.push(s);
    }
    if !rows.is_empty() {
        let mut counts: BTreeMap<u32, i64> = BTreeMap::new();
        for (p, _) in &rows {
            *counts.entry(*p).or_default() += 1;
        }
        let parts: Vec<i32> = counts.keys().map(|p| *p as i32).collect();
        let ns: Vec<i64> = counts.values().copied().collect();
        tx.query(
            "SELECT partition FROM nurture_partitions WHERE partition = ANY($1) ORDER BY partition FOR UPDATE",
            &[&parts],
        )?;
        let heads = tx.query(
            "UPDATE nurture_partitions p SET inbox_head = p.inbox_head + v.n
             FROM unnest($1::int[], $2::bigint[]) AS v(partition, n)
             WHERE p.partition = v.partition RETURNING p.partition, p.inbox_head",
            &[&parts, &ns],
        )?;
        let mut next: HashMap<u32, i64> = HashMap::new();
        for h in heads {
            let p = h.get::<_, i32>(0) as u32;
            let head: i64 = h.get(1);
            next.insert(p, head - counts[&p] + 1);
        }
        let mut ps = Vec::with_capacity(rows.len());
        let mut seqs = Vec::with_capacity(rows.len());
        let mut lines = Vec::with_capacity(rows.len());
        let mut ats = Vec::with_capacity(rows.len());
        for (p, r) in &rows {
            let seq = next.entry(*p).or_insert(1);
            ps.push(*p as i32);
            seqs.push(*seq);
            *seq += 1;
            lines.push(r.line.as_str());
            ats.push(r.at);
        }
        tx.execute(
            "INSERT INTO nurture_inbox SELECT p, s, 'event', l, a FROM unnest($1::int[], $2::bigint[], $3::text[], $4::bigint[]) AS u(p, s, l, a)",
            &[&ps, &seqs, &lines, &ats],
        )?;
    }
    tx.commit()?;
    Ok(stamps)
}
