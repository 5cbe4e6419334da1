//! Taking a snapshot of the engine's state, and an engine from one.

use super::super::output::{FunnelCounts, WorkflowStats};
use super::super::program::Compiled;
use super::super::snapshot::{Changes, Snapshot, Totals};
use super::super::store::Store;
use super::{timers::Timers, Engine, Timer, TimerKind};
use crate::runtime::output::Output;
use crate::runtime::value::Millis;
use std::sync::Arc;

impl Engine {
    /// The state between two inputs (`events`: the count the caller keeps).
    pub fn snapshot(&self, events: u64) -> Snapshot {
        let (contacts, journeys, free) = self.store.export();
        Snapshot {
            totals: self.totals(events, free),
            contacts,
            journeys,
        }
    }

    /// From now on, keep what changes, for [`Engine::take_changes`].
    pub fn track_changes(&mut self) {
        self.store.track_changes();
    }

    /// Hands what changed since the last call (or since tracking began) to
    /// `into`; returns the totals, which are written whole.
    pub fn take_changes(&mut self, events: u64, into: &mut dyn Changes) -> Totals {
        into.fields(&self.field_names());
        self.store.take_changes(into);
        self.totals(events, self.store.free_ids().to_vec())
    }

    fn totals(&self, events: u64, free: Vec<u32>) -> Totals {
        Totals {
            clock: self.clock(),
            seq: self.seq,
            events,
            free,
            stats: self.stats.clone(),
            funnel: self.funnel.clone(),
            actions: self.out.counts,
            fields: self.field_names(),
        }
    }

    /// The contact fields' names, by slot.
    fn field_names(&self) -> Vec<Arc<str>> {
        self.prog
            .schema
            .fields
            .iter()
            .map(|f| Arc::from(f.name.as_str()))
            .collect()
    }

    /// An engine that goes on from `snap` with `prog` (the program that
    /// made it); an error when the snapshot does not fit the program.
    /// Workflows added after the snapshot's own start with no history.
    pub fn restore(prog: Arc<Compiled>, trace: bool, snap: Snapshot) -> Result<Engine, String> {
        let Snapshot {
            mut totals,
            mut contacts,
            journeys,
        } = snap;
        let workflows = prog.workflows.len();
        if totals.stats.len() > workflows {
            return Err(format!(
                "the state is of a program with {} workflows, this one has {workflows}",
                totals.stats.len()
            ));
        }
        totals.stats.resize(workflows, WorkflowStats::default());
        for c in &mut contacts {
            c.last_entry.resize(workflows, crate::runtime::store::NEVER);
        }
        let fields = prog.schema.fields.len();
        if let Some(c) = contacts.iter().find(|c| c.attrs.len() != fields) {
            return Err(format!(
                "contact `{}` has {} attributes, the contact block {fields}",
                c.id,
                c.attrs.len()
            ));
        }
        let store = Store::import(workflows, contacts, journeys, totals.free)?;
        let inactive = super::inactive_workflows(&prog);
        let timers = timers_of(&store, &inactive)?;
        let mut out = Output::new(trace);
        out.counts = totals.actions;
        let mut funnel = std::mem::take(&mut totals.funnel);
        funnel.resize(workflows, FunnelCounts::default());
        let funnel = funnel
            .into_iter()
            .zip(&prog.workflows)
            .map(|(f, w)| f.fit(&w.funnel))
            .collect();
        Ok(Engine {
            prog,
            store,
            timers,
            seq: totals.seq,
            now: totals.clock.unwrap_or(Millis::MIN),
            started: totals.clock.is_some(),
            moved_by: super::MovedBy::State,
            late: super::LateEvents::Refuse,
            allow_jump: false,
            out,
            faults: Vec::new(),
            stats: totals.stats,
            inactive,
            cascade: Vec::new(),
            running: u32::MAX,
            coverage: None,
            funnel,
            zones: None,
        }
        .with_schedules())
    }
}

/// The pending timers of a store: one per waiting journey (due when its
/// wait ends, ordered by its generation, the timer's sequence number) and
/// one per pending inactivity period (due a period after the contact's last
/// activity, ordered by that activity). The engine fires a timer only while
/// it is the one these rows name, so these are all that can fire.
fn timers_of(store: &Store, inactive: &[(u16, Millis)]) -> Result<Timers, String> {
    let mut timers = Timers::default();
    for (id, j) in store.active_journeys() {
        if j.generation != 0 {
            timers.push(Timer {
                due: j.wake_at,
                seq: j.generation,
                sub: 0,
                kind: TimerKind::Journey {
                    id,
                    generation: j.generation,
                },
            });
        }
    }
    for (c, contact) in store.contacts().iter().enumerate() {
        for (w, (due, seq)) in contact.dates.iter().flat_map(|d| d.iter()).enumerate() {
            if *due != crate::runtime::value::NEVER {
                timers.push(Timer {
                    due: *due,
                    seq: *seq,
                    sub: w as u16,
                    kind: TimerKind::Date {
                        contact: c as u32,
                        workflow: w as u16,
                    },
                });
            }
        }
        let mut pending = contact.inactive_pending;
        while pending != 0 {
            let bit = pending.trailing_zeros() as usize;
            pending &= pending - 1;
            let Some(&(workflow, period)) = inactive.get(bit) else {
                return Err(format!(
                    "contact `{}` waits on an inactivity workflow the program does not have",
                    contact.id
                ));
            };
            timers.push(Timer {
                due: contact.last_activity.saturating_add(period),
                seq: contact.activity_seq,
                sub: workflow,
                kind: TimerKind::Inactive {
                    contact: c as u32,
                    workflow,
                },
            });
        }
    }
    Ok(timers)
}
