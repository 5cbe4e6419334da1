//! The whole state of a run as plain rows: what a durable store writes and
//! reads back, so that a run continued from a snapshot emits exactly what
//! the uninterrupted run would have (same records, same order).

use super::output::{ActionKind, WorkflowStats};
use super::record::Payload;
use super::value::{Millis, Value};
use smol_str::SmolStr;

/// A run's state at a moment between two inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The clock, once the first event has set it.
    pub clock: Option<Millis>,
    /// The last sequence number given to a timer or an activity.
    pub seq: u64,
    /// Events accepted so far.
    pub events: u64,
    /// Contacts in first-seen order.
    pub contacts: Vec<ContactRow>,
    /// Journeys in flight, by id.
    pub journeys: Vec<JourneyRow>,
    /// Free journey ids, in the order they are reused.
    pub free: Vec<u32>,
    pub timers: Vec<TimerRow>,
    /// Per workflow, in declaration order.
    pub stats: Vec<WorkflowStats>,
    pub actions: [u64; ActionKind::ALL.len()],
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContactRow {
    pub id: SmolStr,
    /// By field slot.
    pub attrs: Vec<Value>,
    /// The kept past events, oldest first.
    pub history: Vec<EventRow>,
    /// The running tallies of history predicates, by tally index.
    pub tallies: Vec<TallyRow>,
    pub last_activity: Millis,
    pub activity_seq: u64,
    pub inactive_pending: u64,
    pub cond_bits: u64,
    /// Per workflow: the last entry time (`Millis::MIN` for never).
    pub last_entry: Vec<Millis>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub ty: u16,
    pub at: Millis,
    pub payload: Payload,
}

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
    pub trigger: Option<EventRow>,
    pub received: Option<EventRow>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerRow {
    pub due: Millis,
    pub seq: u64,
    pub sub: u16,
    pub kind: TimerTarget,
}

/// What a timer wakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerTarget {
    /// A journey's wait (stale when the journey's generation moved on).
    Journey { id: u32, generation: u64 },
    /// A contact's inactivity period for an inactivity-triggered workflow.
    Inactive { contact: u32, workflow: u16 },
}
