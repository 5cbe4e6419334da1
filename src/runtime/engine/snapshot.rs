//! Taking a snapshot of the engine's state, and an engine from one.

use super::super::output::WorkflowStats;
use super::super::program::Compiled;
use super::super::snapshot::{Snapshot, TimerRow, TimerTarget};
use super::super::store::Store;
use super::{timers::Timers, Engine, Timer, TimerKind};
use crate::runtime::output::Output;
use std::sync::Arc;

impl Engine {
    /// The state between two inputs (`events`: the count the caller keeps).
    pub fn snapshot(&self, events: u64) -> Snapshot {
        let (contacts, journeys, free) = self.store.export();
        Snapshot {
            clock: self.clock(),
            seq: self.seq,
            events,
            contacts,
            journeys,
            free,
            timers: self.timers.all().into_iter().map(timer_row).collect(),
            stats: self.stats.clone(),
            actions: self.out.counts,
        }
    }

    /// An engine that goes on from `snap` with `prog` (the program that
    /// made it); an error when the snapshot does not fit the program.
    /// Workflows added after the snapshot's own start with no history.
    pub fn restore(prog: Arc<Compiled>, trace: bool, mut snap: Snapshot) -> Result<Engine, String> {
        let workflows = prog.workflows.len();
        if snap.stats.len() > workflows {
            return Err(format!(
                "the state is of a program with {} workflows, this one has {workflows}",
                snap.stats.len()
            ));
        }
        snap.stats.resize(workflows, WorkflowStats::default());
        for c in &mut snap.contacts {
            c.last_entry.resize(workflows, crate::runtime::store::NEVER);
        }
        let fields = prog.schema.fields.len();
        if let Some(c) = snap.contacts.iter().find(|c| c.attrs.len() != fields) {
            return Err(format!(
                "contact `{}` has {} attributes, the contact block {fields}",
                c.id,
                c.attrs.len()
            ));
        }
        let store = Store::import(workflows, snap.contacts, snap.journeys, snap.free)?;
        let mut timers = Timers::default();
        for t in snap.timers {
            timers.push(Timer {
                due: t.due,
                seq: t.seq,
                sub: t.sub,
                kind: match t.kind {
                    TimerTarget::Journey { id, generation } => {
                        TimerKind::Journey { id, generation }
                    }
                    TimerTarget::Inactive { contact, workflow } => {
                        TimerKind::Inactive { contact, workflow }
                    }
                },
            });
        }
        let mut out = Output::new(trace);
        out.counts = snap.actions;
        let inactive = super::inactive_workflows(&prog);
        Ok(Engine {
            prog,
            store,
            timers,
            seq: snap.seq,
            now: snap.clock.unwrap_or(crate::runtime::value::Millis::MIN),
            started: snap.clock.is_some(),
            out,
            faults: Vec::new(),
            stats: snap.stats,
            inactive,
            cascade: Vec::new(),
            running: u32::MAX,
        })
    }
}

fn timer_row(t: Timer) -> TimerRow {
    TimerRow {
        due: t.due,
        seq: t.seq,
        sub: t.sub,
        kind: match t.kind {
            TimerKind::Journey { id, generation } => TimerTarget::Journey { id, generation },
            TimerKind::Inactive { contact, workflow } => {
                TimerTarget::Inactive { contact, workflow }
            }
        },
    }
}
