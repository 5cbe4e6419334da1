//! Taking a snapshot of the engine's state, and an engine from one.

use super::super::output::{FunnelCounts, WorkflowStats};
use super::super::program::Compiled;
use super::super::snapshot::{Changes, Snapshot, Totals};
use super::super::store::Store;
use super::{timers::Timers, Engine, Timer, TimerKind};
use crate::check::Type;
use crate::runtime::output::Output;
use crate::runtime::value::{Millis, Value};
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
        validate(Some(&prog), &totals, &contacts, &journeys)?;
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
            drain_from: None,
            drain_later: Vec::new(),
            occurring: None,
            limit: usize::MAX,
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

/// Whether `v` is a value of type `ty` (unset only for an optional).
fn fits(v: &Value, ty: &Type) -> bool {
    match (v, ty) {
        (Value::Unset, Type::Optional(_)) => true,
        (v, Type::Optional(inner)) => fits(v, inner),
        (Value::Str(s), Type::Enum(members)) => members.iter().any(|m| **m == **s),
        (Value::Str(_), Type::Str)
        | (Value::Int(_), Type::Int)
        | (Value::Float(_), Type::Float)
        | (Value::Bool(_), Type::Bool)
        | (Value::Datetime(_), Type::Datetime)
        | (Value::Duration(_), Type::Duration)
        | (Value::Set(_), Type::Set(_)) => true,
        (Value::List(items), Type::List(inner)) => items.iter().all(|x| fits(x, inner)),
        _ => false,
    }
}

/// A state's rows checked against the program and against themselves
/// before anything runs on them: each attribute against its field's type,
/// each journey's workflow, contact and place (within the code, at a wait),
/// the journey ids (dense, none twice, none both free and in use), and the
/// clock (within the years a datetime holds, not before the rows' times).
/// A bad row is named by table, row and column.
impl Snapshot {
    /// The checks a state's rows pass against themselves, without the
    /// program (what `nurture inspect` can check): journey ids, contacts
    /// and free ids, and the clock. A bad row is named by table, row and
    /// column.
    pub fn check_rows(&self) -> Result<(), String> {
        validate(None, &self.totals, &self.contacts, &self.journeys)
    }

    /// [`Snapshot::check_rows`], and each journey's workflow and place
    /// against the lengths of the workflows' code (what a state's program
    /// record says of them: a place per instruction).
    pub fn check_rows_against(&self, code_lengths: &[usize]) -> Result<(), String> {
        self.check_rows()?;
        for j in &self.journeys {
            let at = |col: &str, why: String| {
                Err(format!("table journeys, row {}, column {col}: {why}", j.id))
            };
            let Some(&len) = code_lengths.get(j.workflow as usize) else {
                return at(
                    "workflow",
                    format!("workflow {} is not in the program", j.workflow),
                );
            };
            if j.pc as usize >= len {
                return at(
                    "pc",
                    format!("{} is past the workflow's code ({len} instructions)", j.pc),
                );
            }
        }
        Ok(())
    }
}

fn validate(
    prog: Option<&Compiled>,
    totals: &crate::runtime::snapshot::Totals,
    contacts: &[crate::runtime::snapshot::ContactRow],
    journeys: &[crate::runtime::snapshot::JourneyRow],
) -> Result<(), String> {
    use crate::runtime::eval::DATETIMES;
    use crate::runtime::program::Instr;
    let no_fields = Vec::new();
    let fields = prog.map_or(&no_fields, |p| &p.schema.fields);
    let mut latest = Millis::MIN;
    for (n, c) in contacts.iter().enumerate() {
        for (f, v) in fields.iter().zip(&c.attrs) {
            if !fits(v, &f.ty) {
                let mut shown = String::new();
                v.write_json(&mut shown);
                return Err(format!(
                    "table contacts, row {n} (contact `{}`), column attrs: field `{}` holds {}, which is not {}",
                    crate::suggest::echo(&c.id),
                    f.name,
                    crate::suggest::echo(&shown),
                    f.ty
                ));
            }
        }
        if let Some(e) = c.history.last() {
            latest = latest.max(e.at);
        }
    }
    let rows = journeys.len() + totals.free.len();
    let mut used = vec![false; rows];
    for j in journeys {
        let at = |col: &str, why: String| {
            Err(format!("table journeys, row {}, column {col}: {why}", j.id))
        };
        let Some(slot) = used.get_mut(j.id as usize) else {
            return at(
                "id",
                format!(
                    "{} is past the journeys' ids (0 to {})",
                    j.id,
                    rows.saturating_sub(1)
                ),
            );
        };
        if std::mem::replace(slot, true) {
            return at("id", "the id is given twice".into());
        }
        if j.contact as usize >= contacts.len() {
            return at(
                "contact",
                format!(
                    "contact {} is not in the state ({} contacts)",
                    j.contact,
                    contacts.len()
                ),
            );
        }
        latest = latest.max(j.entered_at);
        let Some(prog) = prog else {
            continue;
        };
        let Some(wf) = prog.workflows.get(j.workflow as usize) else {
            return at(
                "workflow",
                format!("workflow {} is not in the program", j.workflow),
            );
        };
        let pc = j.pc as usize;
        if pc >= wf.code.len() {
            return at(
                "pc",
                format!(
                    "{pc} is past the code of `{}` ({} instructions)",
                    wf.name,
                    wf.code.len()
                ),
            );
        }
        // A journey in flight waits: for an event at a `wait for`, held at
        // a send, or just past a timed wait.
        let waits = match j.waiting_for {
            Some(e) => matches!(&wf.code[pc], Instr::WaitFor { event, .. } if *event == e),
            None => {
                matches!(wf.code[pc], Instr::Send { .. })
                    || pc > 0 && matches!(wf.code[pc - 1], Instr::Wait(_) | Instr::WaitUntil(_))
            }
        };
        if !waits {
            return at(
                "pc",
                format!(
                    "instruction {pc} of `{}` is not where a journey waits",
                    wf.name
                ),
            );
        }
    }
    for (i, id) in totals.free.iter().enumerate() {
        let Some(slot) = used.get_mut(*id as usize) else {
            return Err(format!(
                "table meta, row free, element {i}: id {id} is past the journeys' ids (0 to {})",
                rows.saturating_sub(1)
            ));
        };
        if std::mem::replace(slot, true) {
            return Err(format!(
                "table meta, row free, element {i}: id {id} is in use by a journey or free twice"
            ));
        }
    }
    if let Some(clock) = totals.clock {
        if !DATETIMES.contains(&clock) {
            return Err(format!(
                "table meta, row clock: {clock} is not a time the clock can hold (years 0000 to 9999)"
            ));
        }
        if clock < latest {
            return Err(format!(
                "table meta, row clock: the clock ({}) is before the rows' latest time ({})",
                crate::runtime::value::format_datetime(clock),
                crate::runtime::value::format_datetime(latest)
            ));
        }
    }
    Ok(())
}
