//! The whole state of a run as plain rows: what a durable store writes and
//! reads back, so that a run continued from a snapshot emits exactly what
//! the uninterrupted run would have (same records, same order).

use super::output::{ActionKind, WorkflowStats};
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
    /// A contact added or changed: its first-seen index and the contact (a
    /// row the caller reuses for the next one).
    fn contact(&mut self, n: u32, row: &ContactRow);
    /// A journey started or changed, or `None` for one that ended.
    fn journey(&mut self, id: u32, row: Option<&JourneyRow>);
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
    pub actions: [u64; ActionKind::ALL.len()],
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
}
