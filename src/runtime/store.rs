//! Contact and journey state: plain, serialisable data behind one interface.
//!
//! Laid out for the per-event path: a contact's journeys and last entry
//! times live in one flat table of per-workflow slots, so handling an event
//! touches few cache lines.

use super::value::{Millis, Value};
use smol_str::SmolStr;
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Arc;

mod index;
use index::IdIndex;

pub use super::record::Event;

fn hash_id(id: &str) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(id)
}

fn id_str(id: &SmolStr) -> &str {
    id.as_str()
}

/// Asks the CPU to load the cache lines holding `at` (its first and last
/// bytes: a record may straddle two lines).
#[inline]
fn prefetch<T>(at: &T) {
    let first = (at as *const T).cast::<u8>();
    prefetch_line(first);
    prefetch_line(first.wrapping_add(std::mem::size_of::<T>().saturating_sub(1)));
}

/// Asks the CPU to load the cache line holding address `at`.
#[inline]
#[cfg_attr(
    target_arch = "x86_64",
    expect(
        unsafe_code,
        reason = "the crate's one unsafe block: `_mm_prefetch` is marked unsafe, though a prefetch \
              reads nothing and cannot fault; prefetching contacts saves about a fifth of a \
              large run, and the safe `core::hint::prefetch_read` is not stable yet"
    )
)]
fn prefetch_line(at: *const u8) {
    // SAFETY: SSE is part of every x86_64 CPU, and a prefetch is a hint:
    // it reads nothing into the program and never faults, whatever the
    // address (here, always within one live record).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// Past events of one contact, oldest first, and the running tallies of the
/// program's tallied history predicates; nothing is allocated until the
/// first (most programs keep none, and a contact record stays small).
#[derive(Clone, Debug, Default)]
pub struct History(Option<Box<Past>>);

#[derive(Clone, Debug, Default)]
struct Past {
    events: VecDeque<Arc<Event>>,
    /// By tally index (see `Compiled::tallies`); empty until one counts.
    tallies: Vec<Tally>,
}

/// The matching events of one tallied predicate: how many, or, for a
/// predicate with `within`, their times (the ones still in reach).
#[derive(Clone, Debug)]
pub enum Tally {
    Count(u64),
    Times(VecDeque<Millis>),
}

impl History {
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<Event>> {
        self.0.iter().flat_map(|past| past.events.iter())
    }

    pub fn push(&mut self, event: Arc<Event>) {
        self.0
            .get_or_insert_with(Box::default)
            .events
            .push_back(event);
    }

    /// Forgets the events before `since`.
    pub fn forget_before(&mut self, since: Millis) {
        if let Some(past) = &mut self.0 {
            while past.events.front().is_some_and(|e| e.at < since) {
                past.events.pop_front();
            }
        }
    }

    /// Counts a matching event at `at` in tally `i` (of `n`); with
    /// `within`, times that can no longer count are dropped.
    pub fn count(&mut self, i: u16, n: usize, at: Millis, within: Option<Millis>) {
        let past = self.0.get_or_insert_with(Box::default);
        if past.tallies.len() < n {
            past.tallies.resize(n, Tally::Count(0));
        }
        let tally = &mut past.tallies[i as usize];
        match (tally, within) {
            (Tally::Count(c), None) => *c += 1,
            // The first match of a tally with a window.
            (t @ Tally::Count(_), Some(_)) => *t = Tally::Times(VecDeque::from([at])),
            (Tally::Times(times), w) => {
                times.push_back(at);
                if let Some(w) = w {
                    let since = at.saturating_sub(w);
                    while times.front().is_some_and(|t| *t < since) {
                        times.pop_front();
                    }
                }
            }
        }
    }

    /// How many events tally `i` counted, those at or after `since`.
    pub fn tallied(&self, i: u16, since: Millis) -> u64 {
        match self.0.as_ref().and_then(|p| p.tallies.get(i as usize)) {
            None => 0,
            Some(Tally::Count(c)) => *c,
            Some(Tally::Times(times)) => {
                (times.len() - times.partition_point(|t| *t < since)) as u64
            }
        }
    }
}

/// Marks "never entered" in [`Slot::last_entry`].
pub use super::value::NEVER;

/// Marks an empty [`Slot::journey`].
pub const NO_JOURNEY: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub struct Contact {
    /// Ids of up to 23 bytes are stored inline, with no pointer to chase.
    pub id: SmolStr,
    /// Attribute values by field slot.
    pub attrs: Box<[Value]>,
    /// Past events that `seen`/`count` may look at, oldest first.
    pub history: History,
    /// Time of the contact's last event, or [`NEVER`].
    pub last_activity: Millis,
    /// Creation order of the last activity, for inactivity timers.
    pub activity_seq: u64,
    /// Bit per inactivity-triggered workflow: a timer is pending.
    pub inactive_pending: u64,
    /// Last value of each attribute-trigger condition, one bit each.
    pub cond_bits: u64,
    /// Per channel with a `limit`, the times of the sends still in its
    /// window; nothing is allocated until the first.
    pub sends: Option<Box<Sends>>,
    /// Per workflow, the pending date trigger (`when at`): its instant and
    /// the order it was set in; (`NEVER`, 0) for none. Allocated at the
    /// first.
    pub dates: Option<Box<[(Millis, u64)]>>,
}

/// Per channel (`Channel as usize`), the times of recent sends, oldest
/// first.
pub type Sends = [VecDeque<Millis>; crate::vocabulary::Channel::ALL.len()];

/// A contact's standing in one workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The active journey, or [`NO_JOURNEY`].
    pub journey: u32,
    /// Entry time of the latest journey, or [`NEVER`].
    pub last_entry: Millis,
}

/// One contact's progress through one workflow.
#[derive(Clone, Debug)]
pub struct Journey {
    pub workflow: u16,
    pub contact: u32,
    /// The next instruction to run.
    pub pc: u32,
    pub entered_at: Millis,
    /// The sequence number of the timer the journey waits on (0 when it is
    /// not waiting), so stale timers are ignored.
    pub generation: u64,
    /// The event a `wait for` waits for.
    pub waiting_for: Option<u16>,
    /// When the current wait ends.
    pub wake_at: Millis,
    pub trigger: Option<Arc<Event>>,
    /// The event a `wait for` received, for `event.F` in its block.
    pub received: Option<Arc<Event>>,
    /// A bit per distinct stage reached (the funnel counts each once).
    pub stages: u64,
    /// A bit per split arm taken (the workflow's arms in source order).
    pub arms: u64,
}

/// What changed since changes were last taken: contacts by index and
/// journeys by id, each listed once. Kept only while `on`, for incremental
/// checkpoints.
#[derive(Clone, Debug, Default)]
struct Dirty {
    on: bool,
    contacts: Marks,
    journeys: Marks,
    /// Journeys started since: written whole, where the others are only
    /// updated.
    started: Marks,
}

/// Indices listed once each (a bit per index says whether it is listed).
#[derive(Clone, Debug, Default)]
struct Marks {
    list: Vec<u32>,
    bits: Vec<u64>,
}

impl Marks {
    #[inline]
    fn mark(&mut self, i: u32) {
        let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & bit == 0 {
            self.bits[word] |= bit;
            self.list.push(i);
        }
    }

    /// The list, sorted, and cleared.
    fn take(&mut self) -> Vec<u32> {
        let mut list = std::mem::take(&mut self.list);
        for &i in &list {
            self.bits[(i / 64) as usize] = 0;
        }
        list.sort_unstable();
        list
    }
}

impl Dirty {
    #[inline]
    fn contact(&mut self, c: u32) {
        if self.on {
            self.contacts.mark(c);
        }
    }

    #[inline]
    fn journey(&mut self, id: u32) {
        if self.on {
            self.journeys.mark(id);
        }
    }

    #[inline]
    fn started(&mut self, id: u32) {
        if self.on {
            self.journeys.mark(id);
            self.started.mark(id);
        }
    }
}

/// All run-time state of contacts and journeys.
#[derive(Clone, Debug, Default)]
pub struct Store {
    contacts: Vec<Contact>,
    /// Contact indices by id: record numbers and hash bits, 8 bytes a slot
    /// (the ids live in the contacts), so it stays small for the CPU caches.
    index: IdIndex,
    /// `workflows` slots per contact, contact after contact.
    slots: Vec<Slot>,
    workflows: usize,
    journeys: Vec<Option<Journey>>,
    free: Vec<u32>,
    dirty: Dirty,
}

impl Store {
    pub fn new(workflows: usize) -> Store {
        Store {
            workflows,
            ..Store::default()
        }
    }

    /// From now on, keep what changes, for [`Store::take_changes`].
    pub fn track_changes(&mut self) {
        self.dirty.on = true;
    }

    pub fn contacts(&self) -> &[Contact] {
        &self.contacts
    }

    pub fn contact(&self, c: u32) -> &Contact {
        &self.contacts[c as usize]
    }

    /// A contact to change (noted as changed).
    pub fn contact_mut(&mut self, c: u32) -> &mut Contact {
        self.dirty.contact(c);
        &mut self.contacts[c as usize]
    }

    pub fn contact_id(&self, id: &str) -> Option<u32> {
        let contacts = &self.contacts;
        self.index
            .find(hash_id(id), |i| contacts[i as usize].id == id)
    }

    /// Prefetching, step 1 (some events ahead): starts loading the index
    /// slot of contact `id` into the CPU cache.
    pub fn prefetch_index(&self, id: &str) {
        if let Some(slot) = self.index.home_slot(hash_id(id)) {
            prefetch(slot);
        }
    }

    /// Prefetching, step 2 (fewer events ahead, once the slot is cached):
    /// starts loading what handling an event of contact `id` reads, its
    /// record and its workflow slots. Hints only: a wrong guess (a hash
    /// collision) costs a wasted load, never a wrong result.
    pub fn prefetch_contact(&self, id: &str) {
        let Some(i) = self.index.likely(hash_id(id)) else {
            return;
        };
        let i = i as usize;
        if let Some(c) = self.contacts.get(i) {
            prefetch(c);
        }
        if let Some(s) = self.slots.get(i * self.workflows) {
            prefetch(s);
        }
    }

    pub fn add_contact(&mut self, id: &str, attrs: Vec<Value>) -> u32 {
        let id = SmolStr::new(id);
        let n = self.contacts.len() as u32;
        self.contacts.push(Contact {
            id: id.clone(),
            attrs: attrs.into_boxed_slice(),
            history: History::default(),
            last_activity: NEVER,
            activity_seq: 0,
            inactive_pending: 0,
            cond_bits: 0,
            sends: None,
            dates: None,
        });
        self.slots.extend(std::iter::repeat_n(
            Slot {
                journey: NO_JOURNEY,
                last_entry: NEVER,
            },
            self.workflows,
        ));
        let contacts = &self.contacts;
        self.index
            .insert(hash_id(id_str(&contacts[n as usize].id)), n, |j| {
                hash_id(&contacts[j as usize].id)
            });
        self.dirty.contact(n);
        n
    }

    /// The per-workflow slots of a contact, in declaration order.
    pub fn slots(&self, contact: u32) -> &[Slot] {
        let at = contact as usize * self.workflows;
        &self.slots[at..at + self.workflows]
    }

    pub fn slot_mut(&mut self, contact: u32, workflow: u16) -> &mut Slot {
        self.dirty.contact(contact);
        &mut self.slots[contact as usize * self.workflows + workflow as usize]
    }

    /// Whether the contact has any journey in flight.
    pub fn has_journeys(&self, contact: u32) -> bool {
        self.slots(contact).iter().any(|s| s.journey != NO_JOURNEY)
    }

    pub fn journey(&self, id: u32) -> Option<&Journey> {
        self.journeys.get(id as usize).and_then(Option::as_ref)
    }

    pub fn journey_mut(&mut self, id: u32) -> Option<&mut Journey> {
        self.dirty.journey(id);
        self.journeys.get_mut(id as usize).and_then(Option::as_mut)
    }

    pub fn insert_journey(&mut self, j: Journey) -> u32 {
        let (contact, workflow) = (j.contact, j.workflow);
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
        self.slot_mut(contact, workflow).journey = id;
        self.dirty.started(id);
        id
    }

    /// Takes a journey out to run it; [`Store::put`] puts it back.
    pub fn take(&mut self, id: u32) -> Option<Journey> {
        self.journeys.get_mut(id as usize)?.take()
    }

    pub fn put(&mut self, id: u32, j: Journey) {
        self.dirty.journey(id);
        if let Some(slot) = self.journeys.get_mut(id as usize) {
            *slot = Some(j);
        }
    }

    /// Forgets a journey that was taken out and has ended.
    pub fn finish(&mut self, id: u32, j: &Journey) {
        let slot = self.slot_mut(j.contact, j.workflow);
        if slot.journey == id {
            slot.journey = NO_JOURNEY;
        }
        self.dirty.journey(id);
        self.free.push(id);
    }

    /// Journey ids free for reuse, the next one last.
    pub fn free_ids(&self) -> &[u32] {
        &self.free
    }

    /// Journeys still in flight.
    pub fn active_journeys(&self) -> impl Iterator<Item = (u32, &Journey)> {
        self.journeys
            .iter()
            .enumerate()
            .filter_map(|(i, j)| j.as_ref().map(|j| (i as u32, j)))
    }
}

// ------------------------------------------------------------------ snapshots

use super::snapshot::{Changes, ContactRow, EventRow, JourneyChange, JourneyRow, TallyRow};

fn journey_row(id: u32, j: &Journey) -> JourneyRow {
    JourneyRow {
        id,
        workflow: j.workflow,
        contact: j.contact,
        pc: j.pc,
        entered_at: j.entered_at,
        generation: j.generation,
        waiting_for: j.waiting_for,
        wake_at: j.wake_at,
        trigger: j.trigger.clone(),
        received: j.received.clone(),
        stages: j.stages,
        arms: j.arms,
    }
}

impl History {
    /// The kept events and tallies as rows, into `events` and `tallies`.
    fn export(&self, events: &mut Vec<Arc<EventRow>>, tallies: &mut Vec<TallyRow>) {
        events.clear();
        tallies.clear();
        let Some(past) = &self.0 else {
            return;
        };
        events.extend(past.events.iter().cloned());
        tallies.extend(past.tallies.iter().map(|t| match t {
            Tally::Count(n) => TallyRow::Count(*n),
            Tally::Times(times) => TallyRow::Times(times.iter().copied().collect()),
        }));
    }

    fn import(events: Vec<Arc<EventRow>>, tallies: Vec<TallyRow>) -> History {
        if events.is_empty() && tallies.is_empty() {
            return History::default();
        }
        History(Some(Box::new(Past {
            events: events.into(),
            tallies: tallies
                .into_iter()
                .map(|t| match t {
                    TallyRow::Count(n) => Tally::Count(n),
                    TallyRow::Times(times) => Tally::Times(times.into()),
                })
                .collect(),
        })))
    }
}

impl Store {
    /// The contacts, the journeys in flight and the free journey ids.
    pub(crate) fn export(&self) -> (Vec<ContactRow>, Vec<JourneyRow>, Vec<u32>) {
        let contacts = (0..self.contacts.len() as u32)
            .map(|c| {
                let mut row = ContactRow::default();
                self.contact_row(c, &mut row);
                row
            })
            .collect();
        let journeys = self
            .active_journeys()
            .map(|(id, j)| journey_row(id, j))
            .collect();
        (contacts, journeys, self.free.clone())
    }

    /// Hands what changed since the last call (or since tracking began) to
    /// `into`: the changed contacts by index, then the changed journeys by
    /// id (`None` for one that ended), each in ascending order.
    pub(crate) fn take_changes(&mut self, into: &mut dyn Changes) {
        // One row, refilled for each contact: no allocation per contact.
        let mut row = ContactRow::default();
        let contacts = self.dirty.contacts.take();
        let journeys = self.dirty.journeys.take();
        into.expect(contacts.len(), journeys.len());
        for c in contacts {
            self.contact_row(c, &mut row);
            into.contact(c, &row);
        }
        let started = self.dirty.started.take();
        for id in journeys {
            let change = match self.journey(id).map(|j| journey_row(id, j)) {
                Some(row) if started.binary_search(&id).is_ok() => {
                    into.journey(id, JourneyChange::Started(&row));
                    continue;
                }
                Some(row) => {
                    into.journey(id, JourneyChange::Moved(&row));
                    continue;
                }
                None => JourneyChange::Ended,
            };
            into.journey(id, change);
        }
    }

    /// Fills `row` with contact `c`.
    fn contact_row(&self, c: u32, row: &mut ContactRow) {
        let contact = &self.contacts[c as usize];
        row.id = contact.id.clone();
        row.attrs.clear();
        row.attrs.extend_from_slice(&contact.attrs);
        contact.history.export(&mut row.history, &mut row.tallies);
        row.last_activity = contact.last_activity;
        row.activity_seq = contact.activity_seq;
        row.inactive_pending = contact.inactive_pending;
        row.cond_bits = contact.cond_bits;
        row.dates.clear();
        if let Some(d) = &contact.dates {
            row.dates.extend_from_slice(d);
        }
        row.sends.clear();
        if let Some(s) = &contact.sends {
            row.sends
                .extend(s.iter().map(|q| q.iter().copied().collect::<Vec<_>>()));
        }
        row.last_entry.clear();
        row.last_entry
            .extend(self.slots(c).iter().map(|s| s.last_entry));
    }

    /// A store holding exactly what [`Store::export`] gave; an error when
    /// the rows do not fit `workflows` or one another.
    pub(crate) fn import(
        workflows: usize,
        contacts: Vec<ContactRow>,
        journeys: Vec<JourneyRow>,
        free: Vec<u32>,
    ) -> Result<Store, String> {
        let mut store = Store::new(workflows);
        for c in contacts {
            if c.last_entry.len() != workflows {
                return Err(format!(
                    "contact `{}` has entries for {} workflows, not {workflows}",
                    c.id,
                    c.last_entry.len()
                ));
            }
            if store.contact_id(&c.id).is_some() {
                return Err(format!("contact `{}` is stored twice", c.id));
            }
            let n = store.add_contact(&c.id, c.attrs);
            let contact = &mut store.contacts[n as usize];
            contact.history = History::import(c.history, c.tallies);
            contact.last_activity = c.last_activity;
            contact.activity_seq = c.activity_seq;
            contact.inactive_pending = c.inactive_pending;
            contact.cond_bits = c.cond_bits;
            if c.dates.iter().any(|(t, _)| *t != NEVER) {
                let mut dates = vec![(NEVER, 0); workflows];
                for (w, d) in c.dates.iter().enumerate().take(workflows) {
                    dates[w] = *d;
                }
                contact.dates = Some(dates.into_boxed_slice());
            }
            if c.sends.iter().any(|s| !s.is_empty()) {
                let mut sends: Sends = Default::default();
                for (q, times) in sends.iter_mut().zip(c.sends) {
                    *q = times.into();
                }
                contact.sends = Some(Box::new(sends));
            }
            for (w, at) in c.last_entry.into_iter().enumerate() {
                store.slot_mut(n, w as u16).last_entry = at;
            }
        }
        let slots = journeys
            .iter()
            .map(|j| j.id)
            .max()
            .map_or(0, |m| m as usize + 1);
        let slots = slots.max(free.iter().map(|f| *f as usize + 1).max().unwrap_or(0));
        store.journeys = (0..slots).map(|_| None).collect();
        for j in journeys {
            if j.contact as usize >= store.contacts.len() || j.workflow as usize >= workflows {
                return Err(format!(
                    "journey {} names no stored contact or workflow",
                    j.id
                ));
            }
            store.slot_mut(j.contact, j.workflow).journey = j.id;
            store.journeys[j.id as usize] = Some(Journey {
                workflow: j.workflow,
                contact: j.contact,
                pc: j.pc,
                entered_at: j.entered_at,
                generation: j.generation,
                waiting_for: j.waiting_for,
                wake_at: j.wake_at,
                trigger: j.trigger,
                received: j.received,
                stages: j.stages,
                arms: j.arms,
            });
        }
        store.free = free;
        Ok(store)
    }
}
