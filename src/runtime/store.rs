//! Contact and journey state: plain, serialisable data behind one interface.

use super::value::{Millis, Value};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use std::collections::VecDeque;
use std::sync::Arc;

/// One event as the runtime keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub ty: u16,
    pub at: Millis,
    /// Payload values, in the order the event declares its fields.
    pub payload: Box<[Value]>,
}

/// Marks "never entered" in [`Contact::last_entry`].
pub const NEVER: Millis = Millis::MIN;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Contact {
    /// Ids of up to 23 bytes are stored inline, with no pointer to chase.
    pub id: SmolStr,
    /// Attribute values by field slot.
    pub attrs: Vec<Value>,
    /// Past events that `seen`/`count` may look at, oldest first.
    pub history: VecDeque<Arc<Event>>,
    /// Time of the contact's last event.
    pub last_activity: Option<Millis>,
    /// Creation order of the last activity, for inactivity timers.
    pub activity_seq: u64,
    /// Bit per inactivity-triggered workflow: a timer is pending.
    pub inactive_pending: u64,
    /// Active journeys (ids into the journey table).
    pub active: Vec<u32>,
    /// Entry time of the latest journey per workflow, or [`NEVER`].
    pub last_entry: Vec<Millis>,
    /// Last value of each attribute-trigger condition, one bit each.
    pub cond_bits: u64,
}

/// One contact's progress through one workflow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Journey {
    pub workflow: u16,
    pub contact: u32,
    /// The next instruction to run.
    pub pc: u32,
    pub entered_at: Millis,
    /// Bumped whenever the journey stops waiting, so stale timers are ignored.
    pub generation: u32,
    /// The event a `wait for` waits for.
    pub waiting_for: Option<u16>,
    /// When the current wait ends.
    pub wake_at: Millis,
    pub trigger: Option<Arc<Event>>,
    /// The event a `wait for` received, for `event.F` in its block.
    pub received: Option<Arc<Event>>,
}

/// All run-time state of contacts and journeys.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Store {
    pub contacts: Vec<Contact>,
    index: FxHashMap<SmolStr, u32>,
    journeys: Vec<Option<Journey>>,
    free: Vec<u32>,
}

impl Store {
    pub fn contact_id(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    pub fn add_contact(&mut self, id: &str, attrs: Vec<Value>, workflows: usize) -> u32 {
        let id = SmolStr::new(id);
        let n = self.contacts.len() as u32;
        self.contacts.push(Contact {
            id: id.clone(),
            attrs,
            history: VecDeque::new(),
            last_activity: None,
            activity_seq: 0,
            inactive_pending: 0,
            active: Vec::new(),
            last_entry: vec![NEVER; workflows],
            cond_bits: 0,
        });
        self.index.insert(id, n);
        n
    }

    pub fn journey(&self, id: u32) -> Option<&Journey> {
        self.journeys.get(id as usize).and_then(Option::as_ref)
    }

    pub fn journey_mut(&mut self, id: u32) -> Option<&mut Journey> {
        self.journeys.get_mut(id as usize).and_then(Option::as_mut)
    }

    pub fn insert_journey(&mut self, j: Journey) -> u32 {
        let contact = j.contact;
        let id = match self.free.pop() {
            Some(id) => {
                self.journeys[id as usize] = Some(j);
                id
            }
            None => {
                self.journeys.push(Some(j));
                (self.journeys.len() - 1) as u32
            }
        };
        // INVARIANT: `active` is sorted by workflow (declaration order).
        let wf = self.journeys[id as usize]
            .as_ref()
            .map_or(0, |j| j.workflow);
        let journeys = &self.journeys;
        let active = &mut self.contacts[contact as usize].active;
        let at = active.partition_point(|a| {
            journeys[*a as usize]
                .as_ref()
                .is_some_and(|j| j.workflow < wf)
        });
        active.insert(at, id);
        id
    }

    /// Takes a journey out to run it; [`Store::put`] puts it back.
    pub fn take(&mut self, id: u32) -> Option<Journey> {
        self.journeys.get_mut(id as usize)?.take()
    }

    pub fn put(&mut self, id: u32, j: Journey) {
        if let Some(slot) = self.journeys.get_mut(id as usize) {
            *slot = Some(j);
        }
    }

    /// Forgets a journey that was taken out and has ended.
    pub fn finish(&mut self, id: u32, contact: u32) {
        self.contacts[contact as usize].active.retain(|a| *a != id);
        self.free.push(id);
    }

    /// Removes a finished journey.
    pub fn remove_journey(&mut self, id: u32) -> Option<Journey> {
        let j = self.journeys.get_mut(id as usize)?.take()?;
        self.contacts[j.contact as usize]
            .active
            .retain(|a| *a != id);
        self.free.push(id);
        Some(j)
    }

    /// Journeys still in flight.
    pub fn active_journeys(&self) -> impl Iterator<Item = (u32, &Journey)> {
        self.journeys
            .iter()
            .enumerate()
            .filter_map(|(i, j)| j.as_ref().map(|j| (i as u32, j)))
    }
}
