//! The whole state of a run as plain rows: what a durable store writes and
//! reads back, so that a run continued from a snapshot emits exactly what
//! the uninterrupted run would have (same records, same order).

use super::output::{ActionKind, FunnelCounts, WorkflowStats};
use super::record::Payload;
use super::value::{Millis, Value};
use smol_str::SmolStr;
use std::sync::Arc;

/// A run's state at a moment between two inputs. The timers are not
/// kept: each journey waiting and each pending inactivity period has exactly
/// one, which [`Snapshot`]'s rows determine (due time and order).
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub totals: Totals,
    /// Contacts in first-seen order.
    pub contacts: Vec<ContactRow>,
    /// Journeys in flight, by id.
    pub journeys: Vec<JourneyRow>,
}

/// Takes the rows of a state that changed, one at a time (see
/// [`super::Interpreter::take_changes`]).
pub trait Changes {
    /// How many contacts and journeys are about to come (to reserve room).
    fn expect(&mut self, _contacts: usize, _journeys: usize) {}

    /// The contact fields' names by slot, before any contact: the
    /// attributes are written by name.
    fn fields(&mut self, _names: &[Arc<str>]) {}
    /// A contact added or changed: its first-seen index and the contact (a
    /// row the caller reuses for the next one).
    fn contact(&mut self, n: u32, row: &ContactRow);
    /// A journey started, moved on, or ended.
    fn journey(&mut self, id: u32, change: JourneyChange<'_>);
}

/// What became of a journey since changes were last taken.
#[derive(Clone, Copy, Debug)]
pub enum JourneyChange<'a> {
    /// It started (its id may be that of one that ended since).
    Started(&'a JourneyRow),
    /// It moved on: only its place, wait and received event changed.
    Moved(&'a JourneyRow),
    Ended,
}

/// The run's clock and counters: small, and written whole every time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    /// The clock, once the first event has set it.
    pub clock: Option<Millis>,
    /// The last sequence number given to a timer or an activity.
    pub seq: u64,
    /// Events accepted so far.
    pub events: u64,
    /// Free journey ids, in the order they are reused.
    pub free: Vec<u32>,
    /// Per workflow, in declaration order.
    pub stats: Vec<WorkflowStats>,
    /// Per workflow, the funnel counts of the report.
    pub funnel: Vec<FunnelCounts>,
    pub actions: [u64; ActionKind::ALL.len()],
    /// The contact fields' names, by slot: a state keeps attributes by name.
    pub fields: Vec<Arc<str>>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContactRow {
    pub id: SmolStr,
    /// By field slot.
    pub attrs: Vec<Value>,
    /// The kept past events, oldest first.
    pub history: Vec<Arc<EventRow>>,
    /// The running tallies of history predicates, by tally index.
    pub tallies: Vec<TallyRow>,
    pub last_activity: Millis,
    pub activity_seq: u64,
    pub inactive_pending: u64,
    pub cond_bits: u64,
    /// Per channel, the times of the sends a `limit` still counts.
    pub sends: Vec<Vec<Millis>>,
    /// Per workflow, a pending date trigger: (instant, order set), or
    /// (`NEVER`, 0); empty for none at all.
    pub dates: Vec<(Millis, u64)>,
    /// Per workflow: the last entry time (`Millis::MIN` for never).
    pub last_entry: Vec<Millis>,
}

/// An event as a state keeps it (type id, time, payload by field slot).
pub use super::record::Event as EventRow;

#[derive(Clone, Debug, PartialEq)]
pub enum TallyRow {
    Count(u64),
    Times(Vec<Millis>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct JourneyRow {
    pub id: u32,
    pub workflow: u16,
    pub contact: u32,
    pub pc: u32,
    pub entered_at: Millis,
    pub generation: u64,
    pub waiting_for: Option<u16>,
    pub wake_at: Millis,
    pub trigger: Option<Arc<EventRow>>,
    pub received: Option<Arc<EventRow>>,
    /// Bits of the stages reached and the split arms taken.
    pub stages: u64,
    pub arms: u64,
}

/// Where a workflow's funnel counts were in the old program: per stage, the
/// old stage of the same name; per split arm slot, the old slot of the same
/// split and arm.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunnelMap {
    pub stages: Vec<Option<usize>>,
    pub arms: Vec<Option<usize>>,
}

/// How a state written by one program goes on with a changed one: each
/// thing the state numbers by its place in the program (contact fields,
/// workflows, events and their fields, tallied history predicates, the
/// bits of attribute and inactivity triggers), the new place's old one, or
/// `None` for a new one. Built by matching names (`nurture run` matches
/// fields, workflows and events by name, predicates by their compiled form).
#[derive(Clone, Debug, Default)]
pub struct Migration {
    /// Journeys in flight of a changed workflow, by (old workflow, place):
    /// where they go (LANGUAGE.md section 13). Those of an unchanged
    /// workflow are not here: they stay where they are.
    pub journeys: std::collections::BTreeMap<(u16, u32), JourneyMove>,
    /// Per new field: the old field, or `None` (then `defaults`).
    pub fields: Vec<Option<usize>>,
    /// Per new field, its default (`Unset` for an optional field).
    pub defaults: Vec<Value>,
    /// Per new workflow: the old workflow.
    pub workflows: Vec<Option<usize>>,
    /// Per new workflow: where its funnel counts were (none: they start
    /// from zero).
    pub funnels: Vec<Option<FunnelMap>>,
    /// Per old event type: the new one, or `None` (its events are dropped).
    pub events: Vec<Option<u16>>,
    /// Per new event type: per field, the old field's slot.
    pub event_fields: Vec<Vec<Option<usize>>>,
    /// Per new tally: the old tally (a new one counts from the change on).
    pub tallies: Vec<Option<usize>>,
    /// Per new attribute-trigger bit: the old bit (a new one starts false).
    pub condition_bits: Vec<Option<u32>>,
    /// Per new inactivity bit: the old bit.
    pub inactive_bits: Vec<Option<u32>>,
}

/// What a program change does to a journey in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JourneyMove {
    /// To the new version's wait standing at `pc` (waiting for
    /// `waiting_for`, or a timed wait), keeping its deadline and its
    /// timer's place among ties.
    To { pc: u32, waiting_for: Option<u16> },
    /// It ends, outcome `exited`, reason `program_change`.
    Exit,
}

/// A journey a program change ended: what its `end` record and the
/// report need.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeExit {
    pub contact: SmolStr,
    /// The workflow's name, and its index in the new program (none when
    /// the change removed it).
    pub workflow: Arc<str>,
    pub new_workflow: Option<u16>,
    pub entered_at: Millis,
}

impl Migration {
    /// Whether journeys in flight move or end (the state's journey rows
    /// change even when no place does).
    pub fn moves_journeys(&self) -> bool {
        !self.journeys.is_empty()
    }
}

impl Snapshot {
    /// The state in the new program's places (see [`Migration`]). Journeys
    /// of workflows the new program lacks, and events of types it lacks,
    /// are dropped: the caller refuses a change that would drop a journey.
    /// Journeys a change ends are taken out (their ids freed) and returned
    /// in the order they entered; `names` are the old program's workflow
    /// names.
    pub fn migrate(self, m: &Migration, names: &[String]) -> (Snapshot, Vec<ChangeExit>) {
        let Snapshot {
            mut totals,
            contacts,
            journeys,
        } = self;
        let old_workflow = |new: usize| m.workflows.get(new).copied().flatten();
        let new_workflow: Vec<Option<u16>> = {
            let olds = m.workflows.iter().flatten().max().map_or(0, |w| w + 1);
            let mut map = vec![None; olds.max(totals.stats.len())];
            for (new, old) in m.workflows.iter().enumerate() {
                if let Some(old) = old {
                    map[*old] = Some(new as u16);
                }
            }
            map
        };
        let event = |e: &Arc<EventRow>| -> Option<Arc<EventRow>> {
            let ty = m.events.get(e.ty as usize).copied().flatten()?;
            let slots = m.event_fields.get(ty as usize)?;
            let mut payload: Payload = slots
                .iter()
                .map(|old| {
                    old.and_then(|o| e.payload.get(o).cloned())
                        .unwrap_or_default()
                })
                .collect();
            while payload.last().is_some_and(|v| matches!(v, Value::Unset)) {
                payload.pop();
            }
            Some(Arc::new(EventRow {
                ty,
                at: e.at,
                payload,
            }))
        };
        let bits = |from: u64, map: &[Option<u32>]| -> u64 {
            map.iter().enumerate().fold(0, |acc, (new, old)| match old {
                Some(o) if from & (1 << o) != 0 => acc | 1 << new,
                _ => acc,
            })
        };
        let contacts: Vec<ContactRow> = contacts
            .into_iter()
            .map(|c| ContactRow {
                id: c.id,
                attrs: m
                    .fields
                    .iter()
                    .zip(&m.defaults)
                    .map(|(old, default)| match old {
                        Some(o) => c.attrs.get(*o).cloned().unwrap_or_else(|| default.clone()),
                        None => default.clone(),
                    })
                    .collect(),
                history: c.history.iter().filter_map(event).collect(),
                tallies: m
                    .tallies
                    .iter()
                    .map(|old| {
                        old.and_then(|o| c.tallies.get(o).cloned())
                            .unwrap_or(TallyRow::Count(0))
                    })
                    .collect(),
                last_activity: c.last_activity,
                activity_seq: c.activity_seq,
                inactive_pending: bits(c.inactive_pending, &m.inactive_bits),
                cond_bits: bits(c.cond_bits, &m.condition_bits),
                sends: c.sends,
                dates: if c.dates.is_empty() {
                    Vec::new()
                } else {
                    (0..m.workflows.len())
                        .map(|new| {
                            old_workflow(new)
                                .and_then(|o| c.dates.get(o).copied())
                                .unwrap_or((super::value::NEVER, 0))
                        })
                        .collect()
                },
                last_entry: (0..m.workflows.len())
                    .map(|new| {
                        old_workflow(new)
                            .and_then(|o| c.last_entry.get(o).copied())
                            .unwrap_or(super::value::NEVER)
                    })
                    .collect(),
            })
            .collect();
        // A funnel's stage bits and split arm slots, from the old
        // workflow's numbering to the new one's.
        let remap = |bits: u64, map: &[Option<usize>]| -> u64 {
            map.iter().enumerate().fold(0, |acc, (new, old)| match old {
                Some(o) if *o < 64 && bits & (1 << o) != 0 => acc | 1 << new,
                _ => acc,
            })
        };
        let mut exits = Vec::new();
        let mut ended = Vec::new();
        let journeys = journeys
            .into_iter()
            .filter_map(|j| {
                let change = m.journeys.get(&(j.workflow, j.pc)).copied();
                let target = new_workflow.get(j.workflow as usize).copied().flatten();
                let j = match change {
                    None => j,
                    Some(JourneyMove::Exit) => {
                        exits.push((
                            j.entered_at,
                            j.contact,
                            j.workflow,
                            ChangeExit {
                                contact: contacts
                                    .get(j.contact as usize)
                                    .map(|c| c.id.clone())
                                    .unwrap_or_default(),
                                workflow: Arc::from(
                                    names.get(j.workflow as usize).map_or("", |n| n.as_str()),
                                ),
                                new_workflow: target,
                                entered_at: j.entered_at,
                            },
                        ));
                        ended.push(j.id);
                        return None;
                    }
                    Some(JourneyMove::To { pc, waiting_for }) => {
                        let funnel = target.and_then(|t| m.funnels.get(t as usize)?.as_ref());
                        JourneyRow {
                            pc,
                            waiting_for,
                            stages: funnel.map_or(0, |f| remap(j.stages, &f.stages)),
                            arms: funnel.map_or(0, |f| remap(j.arms, &f.arms)),
                            // Moved in the new program's event numbering
                            // already.
                            ..j
                        }
                    }
                };
                let moved = matches!(change, Some(JourneyMove::To { .. }));
                let workflow = target?;
                Some(JourneyRow {
                    workflow,
                    waiting_for: match j.waiting_for {
                        Some(e) if moved => Some(e),
                        Some(e) => Some(m.events.get(e as usize).copied().flatten()?),
                        None => None,
                    },
                    trigger: j.trigger.as_ref().and_then(event),
                    received: j.received.as_ref().and_then(event),
                    ..j
                })
            })
            .collect();
        totals.funnel = (0..m.workflows.len())
            .map(|new| {
                let old = old_workflow(new).and_then(|o| totals.funnel.get(o));
                match (old, m.funnels.get(new).and_then(Option::as_ref)) {
                    (Some(old), Some(map)) => FunnelCounts {
                        stages: map
                            .stages
                            .iter()
                            .map(|o| o.and_then(|o| old.stages.get(o).copied()).unwrap_or(0))
                            .collect(),
                        arms: map
                            .arms
                            .iter()
                            .map(|o| o.and_then(|o| old.arms.get(o).copied()).unwrap_or((0, 0)))
                            .collect(),
                    },
                    _ => FunnelCounts::default(),
                }
            })
            .collect();
        totals.stats = (0..m.workflows.len())
            .map(|new| {
                old_workflow(new)
                    .and_then(|o| totals.stats.get(o).copied())
                    .unwrap_or_default()
            })
            .collect();
        totals.free.extend(ended);
        exits.sort_by_key(|(at, contact, workflow, _)| (*at, *contact, *workflow));
        (
            Snapshot {
                totals,
                contacts,
                journeys,
            },
            exits.into_iter().map(|(.., e)| e).collect(),
        )
    }
}
