//! The engine: events in, actions out, in virtual time.
//!
//! For an event at time T for contact C (LANGUAGE.md section 6):
//! timers due at or before T fire first (by due time, then creation order);
//! then C's attributes change, the event joins C's history, journeys whose
//! goal or exit matches end, journeys waiting for the event resume, and
//! workflows whose trigger matches start, in declaration order.

use super::error::RecordError;
use super::eval::{eval, Ctx, Fault};
use super::output::{FunnelCounts, Lifecycle, Output, Skip};
pub use super::output::{Outcome, WorkflowStats};
use super::program::{CTrigger, Compiled, Criterion, Instr, Reenter};
use super::record::{Input, Payload, CONTACT_CREATED, CONTACT_UPDATED};
use super::store::{Event, Journey, Store, NEVER};
use super::value::{Millis, Value};
use crate::source::Span;
use std::sync::Arc;

mod clock;
mod exec;
mod inspect;
mod schedule;
mod snapshot;
mod timers;
pub use exec::{fnv1a64, partition_of, split_bucket};

/// How many attribute-triggered journeys may start one another in a row.
pub const CASCADE_LIMIT: usize = 32;

/// A fault raised while running a journey.
#[derive(Clone, Debug)]
pub struct RunFault {
    pub at: Millis,
    pub contact: smol_str::SmolStr,
    pub workflow: Arc<str>,
    pub fault: Fault,
}

/// One journey in flight, as a person would want to see it: its
/// workflow (an index in the program), the statement it stands at (a
/// `wait` or `wait for`), the event a `wait for` awaits (a type id), when
/// the wait ends, and when the journey began.
#[derive(Clone, Debug, PartialEq)]
pub struct JourneyView {
    pub workflow: u16,
    pub at: Span,
    pub waiting_for: Option<u16>,
    pub until: Millis,
    pub entered_at: Millis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// `generation` is the timer's own sequence number: unique for the whole run,
    /// so a stale timer never matches a later journey that reuses the id.
    Journey {
        id: u32,
        generation: u64,
    },
    Inactive {
        contact: u32,
        workflow: u16,
    },
    /// A contact's date trigger (`when at`) in a workflow.
    Date {
        contact: u32,
        workflow: u16,
    },
    /// A scheduled workflow's occurrence in one zone.
    Schedule {
        workflow: u16,
        zone: u16,
    },
}

/// Ordered by due time, then creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    due: Millis,
    seq: u64,
    sub: u16,
    kind: TimerKind,
}

/// The most an input event may move the clock ahead (LANGUAGE.md section
/// 6): 366 days. `--until` and `--drain` are not limited.
pub const MAX_JUMP: Millis = 366 * 86_400_000;

/// What an event earlier than the clock gets (LANGUAGE.md sections 6 and
/// 11): refused as a bad record ("time goes backwards"; `nurture run`'s
/// default), or processed at the clock (`--late-events stamp`, and the live
/// service's wall clock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LateEvents {
    #[default]
    Refuse,
    Stamp,
}

/// What last moved the clock: said when a late event is refused.
pub(crate) type MovedBy = super::error::ClockMove;

/// The engine's state; driven through [`super::Interpreter`].
pub(crate) struct Engine {
    prog: Arc<Compiled>,
    store: Store,
    timers: timers::Timers,
    seq: u64,
    /// The virtual clock.
    now: Millis,
    started: bool,
    /// What last moved the clock, for the message refusing a late event.
    moved_by: MovedBy,
    /// What happens to an event earlier than the clock.
    late: LateEvents,
    /// Whether an event may move the clock more than [`MAX_JUMP`] ahead.
    allow_jump: bool,
    /// A scheduled occurrence under way, when a move of the clock in parts
    /// stopped in the middle of it.
    occurring: Option<schedule::Occurrence>,
    /// How many records may wait to be taken before a move of the clock in
    /// parts stops ([`Engine::advance_some`]); unbounded otherwise.
    limit: usize,
    /// A drain done in parts: the clock it began at, and the scheduled
    /// occurrences it put aside.
    drain_from: Option<Millis>,
    drain_later: Vec<Timer>,
    out: Output,
    faults: Vec<RunFault>,
    stats: Vec<WorkflowStats>,
    /// Inactivity-triggered workflows: (workflow, period).
    inactive: Vec<(u16, Millis)>,
    /// Attribute-triggered workflows started by the current cascade.
    cascade: Vec<u16>,
    /// The journey being run.
    running: u32,
    /// What ran, when asked for (`nurture test --coverage`).
    coverage: Option<Box<super::coverage::Coverage>>,
    /// Per workflow, the funnel counts of the report.
    funnel: Vec<FunnelCounts>,
    /// With scheduled workflows: the contacts by zone.
    zones: Option<schedule::ZoneGroups>,
}

enum Step {
    Next,
    Jump(u32),
    Suspend,
    End(Outcome),
}

/// The inactivity-triggered workflows of a program, with their periods.
fn inactive_workflows(prog: &Compiled) -> Vec<(u16, Millis)> {
    prog.workflows
        .iter()
        .enumerate()
        .filter_map(|(i, w)| match w.trigger {
            CTrigger::Inactive(d) => Some((i as u16, d)),
            _ => None,
        })
        .collect()
}

impl Engine {
    pub fn new(prog: Arc<Compiled>, trace: bool) -> Engine {
        let workflows = prog.workflows.len();
        let inactive = inactive_workflows(&prog);
        let funnel = prog
            .workflows
            .iter()
            .map(|w| FunnelCounts::of(&w.funnel))
            .collect();
        Engine {
            stats: vec![WorkflowStats::default(); prog.workflows.len()],
            prog,
            store: Store::new(workflows),
            timers: timers::Timers::default(),
            seq: 0,
            now: Millis::MIN,
            started: false,
            moved_by: MovedBy::Event,
            late: LateEvents::Refuse,
            allow_jump: false,
            drain_from: None,
            drain_later: Vec::new(),
            occurring: None,
            limit: usize::MAX,
            out: Output::new(trace),
            faults: Vec::new(),
            inactive,
            cascade: Vec::new(),
            running: u32::MAX,
            coverage: None,
            funnel,
            zones: None,
        }
        .with_schedules()
    }

    /// Keeps contacts by zone when a workflow is scheduled.
    fn with_schedules(mut self) -> Engine {
        if self
            .prog
            .workflows
            .iter()
            .any(|w| matches!(w.trigger, CTrigger::Schedule { .. }))
        {
            self.zones = Some(schedule::ZoneGroups::new());
            for c in 0..self.store.contacts().len() as u32 {
                self.group(c);
            }
            if self.started {
                self.arm_all(self.now, true);
            }
        }
        self
    }

    /// From now on, note what runs (see [`super::coverage::Coverage`]).
    pub fn record_coverage(&mut self) {
        let sizes = self.prog.workflows.iter().map(|w| w.code.len());
        self.coverage = Some(Box::new(super::coverage::Coverage::new(sizes)));
    }

    /// What ran since [`Engine::record_coverage`].
    pub fn coverage(&self) -> Option<&super::coverage::Coverage> {
        self.coverage.as_deref()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Loads a contact as state: no trigger fires. A contact already known
    /// is replaced: its attributes become the record's (defaults for the
    /// rest); its journeys and history stay.
    pub fn preload(&mut self, id: &str, attrs: Vec<(u16, Value)>) -> Result<(), String> {
        let c = match self.store.contact_id(id) {
            Some(c) => {
                let mut values = self.prog.defaults.clone();
                for (slot, v) in attrs {
                    values[slot as usize] = v;
                }
                self.store.contact_mut(c).attrs = values.into_boxed_slice();
                self.group(c);
                self.date_triggers(c);
                c
            }
            None => {
                let c = self.create(id, attrs);
                // A contact loaded after the clock started: its inactivity
                // period starts now, as the others' did at the start.
                if self.started {
                    self.touch(c);
                }
                c
            }
        };
        self.eval_conditions(c);
        Ok(())
    }

    fn create(&mut self, id: &str, attrs: Vec<(u16, Value)>) -> u32 {
        let mut values = self.prog.defaults.clone();
        for (slot, v) in attrs {
            values[slot as usize] = v;
        }
        let c = self.store.add_contact(id, values);
        self.group(c);
        self.date_triggers(c);
        c
    }

    /// Starts loading the index entry of an event's contact into the CPU
    /// cache: step 1 of prefetching, some events ahead of [`Engine::accept`].
    /// Prefetching hides memory latency and changes nothing else.
    pub fn prefetch_index(&self, ev: &Input) {
        self.store.prefetch_index(&ev.contact);
    }

    /// Starts loading the state an event will touch into the CPU cache:
    /// step 2 of prefetching, fewer events ahead than step 1.
    pub fn prefetch_contact(&self, ev: &Input) {
        self.store.prefetch_contact(&ev.contact);
    }

    /// What an event earlier than the clock gets.
    pub fn set_late_events(&mut self, late: LateEvents) {
        self.late = late;
    }

    /// Lets an event move the clock more than [`MAX_JUMP`] ahead.
    pub fn allow_clock_jump(&mut self) {
        self.allow_jump = true;
    }

    /// Notes that the clock was moved by other than an event.
    pub(crate) fn moved_by(&mut self, by: MovedBy) {
        self.moved_by = by;
    }

    /// Validates and handles an event, looking the contact up once.
    pub fn accept(&mut self, mut ev: Input) -> Result<(), RecordError> {
        if self.late == LateEvents::Stamp && self.started && ev.at < self.now {
            ev.at = self.now;
        }
        let c = self.resolve(&ev)?;
        self.handle_resolved(ev, c);
        Ok(())
    }

    /// Validates an event as [`Engine::resolve`] does, with the contact's
    /// existence given (a service validating a batch whose earlier records
    /// create contacts).
    pub(crate) fn admits(&self, ev: &Input, exists: bool) -> Result<(), RecordError> {
        let previous = self.started.then_some((self.now, self.moved_by));
        admissible(previous, ev, exists)?;
        if self.started && !self.allow_jump && ev.at.saturating_sub(self.now) > MAX_JUMP {
            return Err(RecordError::ClockJump {
                from: self.now,
                to: ev.at,
            });
        }
        Ok(())
    }

    /// When the earliest pending timer is due (it may have been
    /// cancelled since: firing it then does nothing).
    pub(crate) fn next_due(&self) -> Option<Millis> {
        if self.occurring.is_some() {
            return Some(self.now);
        }
        self.timers.peek().map(|t| t.due)
    }

    /// Validates an event; returns the contact's index when it exists.
    pub(crate) fn resolve(&self, ev: &Input) -> Result<Option<u32>, RecordError> {
        let found = self.store.contact_id(&ev.contact);
        let previous = self.started.then_some((self.now, self.moved_by));
        admissible(previous, ev, found.is_some())?;
        if self.started && !self.allow_jump && ev.at.saturating_sub(self.now) > MAX_JUMP {
            return Err(RecordError::ClockJump {
                from: self.now,
                to: ev.at,
            });
        }
        Ok(found)
    }

    /// Starts the clock at `t` (LANGUAGE.md section 6: at the first input
    /// event, at `--until` in a run without one, at the tests' start): the
    /// contacts known are touched (their inactivity periods start), their
    /// date triggers computed against `t`, and the schedules armed from `t`
    /// (an occurrence at `t` fires now). Nothing when it has started.
    pub fn start_clock(&mut self, t: Millis) {
        if self.started {
            return;
        }
        self.started = true;
        self.now = t;
        for c in 0..self.store.contacts().len() as u32 {
            self.touch(c);
        }
        for c in 0..self.store.contacts().len() as u32 {
            self.date_triggers(c);
        }
        self.arm_all(t, false);
        self.advance_to(t);
    }

    fn handle_resolved(&mut self, ev: Input, found: Option<u32>) {
        self.advance_to(ev.at);
        self.now = ev.at;
        self.moved_by = MovedBy::Event;
        // The schedules start with the clock: an occurrence at this
        // instant comes before the event.
        self.start_clock(ev.at);
        // 1. Attributes.
        let c = match found {
            Some(c) => {
                for (slot, v) in ev.attrs {
                    self.store.contact_mut(c).attrs[slot as usize] = v;
                }
                self.group(c);
                self.date_triggers(c);
                c
            }
            None => self.create(&ev.contact, ev.attrs),
        };
        let edges = if ev.ty == CONTACT_CREATED || ev.ty == CONTACT_UPDATED {
            self.eval_conditions(c)
        } else {
            0
        };
        self.touch(c);
        // 2. History.
        let mut event = Shared::new(Event {
            ty: ev.ty,
            at: ev.at,
            payload: ev.payload,
        });
        self.remember(c, &mut event);
        // 3. Goals and exits.
        let ty = event.event().ty as usize;
        if self.prog.ends_on[ty] || self.prog.ends_on_condition {
            self.goals_and_exits(c, event.event());
        }
        // 4. Waiting journeys.
        if self.prog.waited_for[ty] {
            self.resume_waiting(c, &mut event);
        }
        // 5. Triggers.
        self.start_triggered(c, &mut event, edges);
    }

    fn remember(&mut self, c: u32, event: &mut Shared) {
        use super::program::Retention;
        if !self.prog.tallies_by_event[event.event().ty as usize].is_empty() {
            self.tally(c, event.event());
        }
        let keep = self.prog.retention;
        if keep == Retention::None || !self.prog.history_events[event.event().ty as usize] {
            return;
        }
        let history = &mut self.store.contact_mut(c).history;
        history.push(event.arc());
        if let Retention::Within(w) = keep {
            history.forget_before(self.now.saturating_sub(w));
        }
    }

    /// Counts the event in the tallies of the history predicates it feeds.
    fn tally(&mut self, c: u32, event: &Event) {
        let prog = self.prog.clone();
        for &i in &prog.tallies_by_event[event.ty as usize] {
            let spec = &prog.tallies[i as usize];
            // INVARIANT: a tallied filter reads only the event and holds no
            // arithmetic, so its evaluation cannot fault.
            let matches = match &spec.filter {
                Some(f) => eval(f, &self.ctx(c, Some(event), None)).is_ok_and(|v| v.as_bool()),
                None => true,
            };
            if matches {
                let history = &mut self.store.contact_mut(c).history;
                history.count(i, prog.tallies.len(), event.at, spec.within);
            }
        }
    }

    /// Re-evaluates the attribute-trigger conditions; returns those that became true.
    fn eval_conditions(&mut self, c: u32) -> u64 {
        if self.prog.condition_count == 0 {
            return 0;
        }
        let prog = self.prog.clone();
        let mut edges = 0;
        let mut bits = self.store.contact(c).cond_bits;
        for (wi, wf) in prog.workflows.iter().enumerate() {
            let CTrigger::Condition { cond, bit } = &wf.trigger else {
                continue;
            };
            let now_true = match eval(cond, &self.ctx(c, None, None)) {
                Ok(v) => v.as_bool(),
                Err(f) => {
                    self.report(c, wi as u16, f);
                    false
                }
            };
            let mask = 1u64 << bit;
            if now_true && bits & mask == 0 {
                edges |= mask;
            }
            if now_true {
                bits |= mask;
            } else {
                bits &= !mask;
            }
        }
        self.store.contact_mut(c).cond_bits = bits;
        edges
    }

    /// What an expression sees for contact `c` now: its attributes and
    /// history, the event being handled (`event.F`) and the journey's
    /// trigger event (`trigger.F`).
    fn ctx<'a>(&'a self, c: u32, event: Option<&'a Event>, trigger: Option<&'a Event>) -> Ctx<'a> {
        let contact = self.store.contact(c);
        Ctx {
            attrs: &contact.attrs,
            event,
            trigger,
            now: self.now,
            history: &contact.history,
        }
    }

    fn report(&mut self, c: u32, wf: u16, fault: Fault) {
        self.faults.push(RunFault {
            at: self.now,
            contact: self.store.contact(c).id.clone(),
            workflow: self.prog.workflows[wf as usize].name.clone(),
            fault,
        });
    }

    /// A snapshot of the journeys of `c`, in workflow declaration order
    /// (the store keeps them sorted); no allocation for up to 8.
    fn journeys_of(&self, c: u32) -> Ids {
        Ids::from_slots(self.store.slots(c))
    }

    fn matches(
        &mut self,
        c: u32,
        wf: u16,
        crit: &Criterion,
        event: &Event,
        trigger: Option<&Event>,
    ) -> bool {
        let cx = self.ctx(c, Some(event), trigger);
        let result = match crit {
            Criterion::Event { event: ty, filter } => {
                if *ty != event.ty {
                    return false;
                }
                match filter {
                    Some(f) => eval(f, &cx).map(|v| v.as_bool()),
                    None => Ok(true),
                }
            }
            Criterion::Condition(e) => eval(e, &cx).map(|v| v.as_bool()),
        };
        result.unwrap_or_else(|f| {
            self.report(c, wf, f);
            false
        })
    }

    fn goals_and_exits(&mut self, c: u32, event: &Event) {
        if !self.store.has_journeys(c) {
            return;
        }
        let prog = self.prog.clone();
        for id in self.journeys_of(c) {
            let Some(j) = self.store.journey(id) else {
                continue;
            };
            let wf = j.workflow;
            let trigger = j.trigger.clone();
            let w = &prog.workflows[wf as usize];
            let outcome = if w
                .goal
                .as_ref()
                .is_some_and(|g| self.matches(c, wf, g, event, trigger.as_deref()))
            {
                Some(super::engine::Outcome::Converted)
            } else if w
                .exit_when
                .as_ref()
                .is_some_and(|x| self.matches(c, wf, x, event, trigger.as_deref()))
            {
                Some(Outcome::Exited)
            } else {
                None
            };
            if let Some(outcome) = outcome {
                if let Some(j) = self.store.take(id) {
                    self.end(id, &j, outcome);
                }
            }
        }
    }

    fn resume_waiting(&mut self, c: u32, shared: &mut Shared) {
        if !self.store.has_journeys(c) {
            return;
        }
        let waiting = self.journeys_of(c);
        let prog = self.prog.clone();
        for id in waiting {
            let Some(j) = self.store.journey(id) else {
                continue;
            };
            if j.waiting_for != Some(shared.event().ty) {
                continue;
            }
            let (wf, pc) = (j.workflow, j.pc);
            let Instr::WaitFor { filter, .. } = &prog.workflows[wf as usize].code[pc as usize]
            else {
                continue;
            };
            if let Some(f) = filter {
                match eval(f, &self.ctx(c, Some(shared.event()), j.trigger.as_deref())) {
                    Ok(v) if v.as_bool() => {}
                    Ok(_) => continue,
                    Err(fault) => {
                        self.report(c, wf, fault);
                        if let Some(j) = self.store.take(id) {
                            self.end(id, &j, Outcome::Failed);
                        }
                        continue;
                    }
                }
            }
            let keep = prog.workflows[wf as usize].keeps_received;
            if let Some(c) = &mut self.coverage {
                c.took(wf, pc, super::coverage::YES);
            }
            if let Some(j) = self.store.journey_mut(id) {
                j.generation = 0;
                j.waiting_for = None;
                // The event received is kept only for a block that reads it.
                j.received = keep.then(|| shared.arc());
                j.pc += 1;
            }
            let event = Some(shared.event().ty);
            self.life(
                c,
                wf,
                Lifecycle::Resume {
                    event,
                    timeout: false,
                },
            );
            self.run(id);
        }
    }

    fn start_triggered(&mut self, c: u32, shared: &mut Shared, edges: u64) {
        if edges == 0 && self.prog.by_event[shared.event().ty as usize].is_empty() {
            return;
        }
        let prog = self.prog.clone();
        let all: Vec<u16>;
        let candidates: &[u16] = if edges == 0 {
            &prog.by_event[shared.event().ty as usize]
        } else {
            all = (0..prog.workflows.len() as u16).collect();
            &all
        };
        for &wf in candidates {
            let start = match &prog.workflows[wf as usize].trigger {
                CTrigger::Event { event: ty, filter } if *ty == shared.event().ty => match filter {
                    Some(f) => {
                        let event = Some(shared.event());
                        match eval(f, &self.ctx(c, event, event)) {
                            Ok(v) => v.as_bool(),
                            Err(fault) => {
                                self.report(c, wf, fault);
                                false
                            }
                        }
                    }
                    None => true,
                },
                CTrigger::Condition { bit, .. } => edges & (1 << bit) != 0,
                _ => false,
            };
            if start {
                // The trigger event is kept only for a workflow that reads it.
                let w = &prog.workflows[wf as usize];
                let trigger = (matches!(w.trigger, CTrigger::Event { .. }) && w.keeps_trigger)
                    .then(|| shared.arc());
                self.try_start(c, wf, trigger);
            }
        }
    }

    /// Starts a journey if the contact may enter; runs it to its first wait.
    fn try_start(&mut self, c: u32, wf: u16, trigger: Option<Arc<Event>>) -> bool {
        let slot = *self.store.slot_mut(c, wf);
        if slot.journey != super::store::NO_JOURNEY {
            self.skip(c, wf, Skip::Active);
            return false;
        }
        let last = slot.last_entry;
        let allowed = match self.prog.workflows[wf as usize].reenter {
            Reenter::Never => last == NEVER,
            Reenter::Always => true,
            Reenter::After(d) => last == NEVER || self.now.saturating_sub(last) >= d,
        };
        if !allowed {
            self.skip(c, wf, Skip::Reenter);
            return false;
        }
        self.store.slot_mut(c, wf).last_entry = self.now;
        self.stats[wf as usize].entered += 1;
        let id = self.store.insert_journey(Journey {
            workflow: wf,
            contact: c,
            pc: 0,
            entered_at: self.now,
            generation: 0,
            waiting_for: None,
            wake_at: self.now,
            trigger,
            received: None,
            stages: 0,
            arms: 0,
        });
        self.life(c, wf, Lifecycle::Enter);
        self.run(id);
        true
    }

    /// A trigger of `wf` matched for `c` but started no journey.
    fn skip(&mut self, c: u32, wf: u16, why: Skip) {
        self.stats[wf as usize].skipped += 1;
        self.life(c, wf, Lifecycle::Skipped(why));
    }

    /// Keeps a lifecycle record of the journey of `wf` and contact `c`, when tracing.
    fn life(&mut self, c: u32, wf: u16, what: Lifecycle) {
        let id = &self.store.contact(c).id;
        self.out.lifecycle(self.now, id, wf, what);
    }

    /// Journeys a program change ended (LANGUAGE.md section 13), already
    /// taken out of the state: counted as exited, and with `--trace` an
    /// `end` record with reason `program_change` each, at the clock.
    pub fn program_change_exits(&mut self, exits: &[super::snapshot::ChangeExit]) {
        for e in exits {
            if let Some(s) = e.new_workflow.and_then(|w| self.stats.get_mut(w as usize)) {
                s.exited += 1;
            }
            let workflow = e.new_workflow.unwrap_or(u16::MAX);
            let what = Lifecycle::ChangeExit(e.workflow.clone());
            self.out.lifecycle(self.now, &e.contact, workflow, what);
        }
    }

    fn end(&mut self, id: u32, j: &Journey, outcome: Outcome) {
        let s = &mut self.stats[j.workflow as usize];
        match outcome {
            Outcome::Completed => s.completed += 1,
            Outcome::Converted => {
                s.converted += 1;
                let arms = &mut self.funnel[j.workflow as usize].arms;
                let mut bits = j.arms;
                while bits != 0 {
                    let slot = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    if let Some(a) = arms.get_mut(slot) {
                        a.1 += 1;
                    }
                }
            }
            Outcome::Exited => s.exited += 1,
            Outcome::Failed => s.failed += 1,
        }
        self.life(j.contact, j.workflow, Lifecycle::End(outcome));
        self.store.finish(id, j);
    }

    /// Runs a journey until it waits or ends, then fires the attribute
    /// triggers its `set`s made true.
    fn run(&mut self, id: u32) {
        let Some(mut j) = self.store.take(id) else {
            return;
        };
        let prog = self.prog.clone();
        let wf = &prog.workflows[j.workflow as usize];
        let contact = j.contact;
        let mut changed = false;
        loop {
            self.running = id;
            let pc = j.pc as usize;
            let step = match self.exec(&prog, &mut j, &wf.code[pc], &mut changed) {
                Ok(step) => step,
                Err(fault) => {
                    self.report(j.contact, j.workflow, fault);
                    Step::End(Outcome::Failed)
                }
            };
            if let Some(c) = &mut self.coverage {
                c.ran(j.workflow, pc as u32);
                match (&wf.code[pc], &step) {
                    (Instr::Branch { otherwise, .. }, Step::Jump(t)) if t == otherwise => {
                        c.took(j.workflow, pc as u32, super::coverage::NO);
                    }
                    (Instr::Branch { .. }, Step::Next) => {
                        c.took(j.workflow, pc as u32, super::coverage::YES);
                    }
                    (Instr::Split { arms, .. }, Step::Jump(t)) => {
                        if let Some(arm) = arms.iter().position(|(_, start)| start == t) {
                            c.took(j.workflow, pc as u32, arm as u32);
                        }
                    }
                    _ => {}
                }
            }
            match step {
                Step::Next => j.pc += 1,
                Step::Jump(t) => j.pc = t,
                Step::Suspend => {
                    self.store.put(id, j);
                    break;
                }
                Step::End(outcome) => {
                    self.end(id, &j, outcome);
                    break;
                }
            }
        }
        if changed {
            self.group(contact);
            self.date_triggers(contact);
        }
        if changed && prog.condition_count > 0 {
            let edges = self.eval_conditions(contact);
            self.cascade(contact, edges);
        }
    }

    fn cascade(&mut self, c: u32, edges: u64) {
        if edges == 0 {
            return;
        }
        let prog = self.prog.clone();
        for (wi, wf) in prog.workflows.iter().enumerate() {
            let CTrigger::Condition { bit, .. } = wf.trigger else {
                continue;
            };
            if edges & (1 << bit) == 0 {
                continue;
            }
            if self.cascade.len() >= CASCADE_LIMIT {
                let mut chain: Vec<&str> = self
                    .cascade
                    .iter()
                    .map(|w| &*prog.workflows[*w as usize].name)
                    .collect();
                chain.push(&wf.name);
                chain.dedup();
                let message = format!(
                    "attribute triggers set one another off more than {CASCADE_LIMIT} times in a row: {}",
                    chain.join(" -> ")
                );
                let span = wf.spans.first().copied().unwrap_or_default();
                self.report(c, wi as u16, Fault { message, span });
                self.stats[wi].entered += 1;
                self.stats[wi].failed += 1;
                self.life(c, wi as u16, Lifecycle::Enter);
                self.life(c, wi as u16, Lifecycle::End(Outcome::Failed));
                continue;
            }
            self.cascade.push(wi as u16);
            self.try_start(c, wi as u16, None);
            self.cascade.pop();
        }
    }
}

/// The event being handled: moved into an `Arc` only when something keeps it.
enum Shared {
    Owned(Event),
    Kept(Arc<Event>),
}

impl Shared {
    fn new(event: Event) -> Shared {
        Shared::Owned(event)
    }

    fn event(&self) -> &Event {
        match self {
            Shared::Owned(e) => e,
            Shared::Kept(e) => e,
        }
    }

    fn arc(&mut self) -> Arc<Event> {
        let empty = Shared::Owned(Event {
            ty: 0,
            at: 0,
            payload: Payload::new(),
        });
        let arc = match std::mem::replace(self, empty) {
            Shared::Owned(e) => Arc::new(e),
            Shared::Kept(a) => a,
        };
        *self = Shared::Kept(arc.clone());
        arc
    }
}

/// A small copy of journey ids, on the stack when there are few.
enum Ids {
    Inline(usize, [u32; 8]),
    Heap(Vec<u32>),
}

impl Ids {
    fn from_slots(slots: &[super::store::Slot]) -> Ids {
        let mut buf = [0; 8];
        let mut n = 0;
        let mut spill = Vec::new();
        for s in slots
            .iter()
            .filter(|s| s.journey != super::store::NO_JOURNEY)
        {
            if n < 8 {
                buf[n] = s.journey;
                n += 1;
            } else {
                if spill.is_empty() {
                    spill.extend_from_slice(&buf);
                }
                spill.push(s.journey);
            }
        }
        if spill.is_empty() {
            Ids::Inline(n, buf)
        } else {
            Ids::Heap(spill)
        }
    }
}

impl Iterator for Ids {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        match self {
            Ids::Inline(n, buf) => {
                if *n == 0 {
                    return None;
                }
                let first = buf[0];
                buf.copy_within(1.., 0);
                *n -= 1;
                Some(first)
            }
            Ids::Heap(v) => (!v.is_empty()).then(|| v.remove(0)),
        }
    }
}

/// What the state decides about an input event: time must not go backwards
/// (`previous` is the time of the last event accepted), the contact must exist,
/// except for `contact_created`, which must name a new one.
fn admissible(
    previous: Option<(Millis, MovedBy)>,
    ev: &Input,
    exists: bool,
) -> Result<(), RecordError> {
    if let Some((clock, moved_by)) = previous {
        if ev.at < clock {
            return Err(RecordError::Late {
                at: ev.at,
                clock,
                moved_by,
            });
        }
    }
    if ev.ty == CONTACT_CREATED && exists {
        return Err(RecordError::ContactExists(ev.contact.to_string()));
    }
    if ev.ty != CONTACT_CREATED && !exists {
        return Err(RecordError::UnknownContact(ev.contact.to_string()));
    }
    Ok(())
}
