//! The virtual clock: timers for waits and inactivity, fired in order.

use super::super::output::Lifecycle;
use super::super::program::Instr;
use super::super::value::Millis;
use super::{Engine, Timer, TimerKind, NEVER};

impl Engine {
    /// Fires every timer due at or before `t`.
    pub fn advance_to(&mut self, t: Millis) {
        self.advance_some(t, usize::MAX);
    }

    /// Fires the timers due at or before `t` until `limit` records wait to
    /// be taken (so a driver can write them out: one clock advance may emit
    /// millions); true when every one due has fired and the clock is at `t`.
    pub fn advance_some(&mut self, t: Millis, limit: usize) -> bool {
        if !self.started {
            // Nothing is due before the clock starts.
            return true;
        }
        self.limit = limit;
        let done = loop {
            // An occurrence under way goes on before any later timer.
            if self.occurring.is_some() {
                self.go_on_occurring();
                if self.occurring.is_some() {
                    break false;
                }
            }
            if self.out.records.len() >= limit {
                break false;
            }
            let Some(timer) = self.timers.pop_due(t) else {
                self.now = self.now.max(t);
                break true;
            };
            if self.live(timer) {
                self.now = self.now.max(timer.due);
                self.fire(timer);
            }
        };
        self.limit = usize::MAX;
        done
    }

    /// Whether `ev` moves the clock far (an hour or more) past timers that
    /// are due, and would be accepted: then they may be fired first, a part
    /// at a time ([`Engine::advance_some`]), with the same result. (Small
    /// moves, the usual case, fire as part of the event.)
    pub fn due_before(&self, ev: &crate::runtime::record::Input) -> bool {
        const FAR: Millis = 3_600_000;
        self.started
            && ev.at.saturating_sub(self.now) >= FAR
            && self.timers.peek().is_some_and(|t| t.due <= ev.at)
            && self.resolve(ev).is_ok()
    }

    /// Fires every pending timer; the clock stays at the last one fired
    /// (a run that goes on later starts from there).
    pub fn drain(&mut self) {
        self.drain_some(usize::MAX);
    }

    /// [`Engine::drain`] until `limit` records wait to be taken; true when
    /// it is done.
    pub fn drain_some(&mut self, limit: usize) -> bool {
        // Scheduled occurrences after the last input are not in flight:
        // they wait for `--until` or the next run.
        let last = *self.drain_from.get_or_insert(self.now);
        self.limit = limit;
        loop {
            if self.occurring.is_some() {
                self.go_on_occurring();
                if self.occurring.is_some() {
                    self.limit = usize::MAX;
                    return false;
                }
            }
            let Some(timer) = self.timers.pop_due(Millis::MAX) else {
                break;
            };
            if matches!(timer.kind, TimerKind::Schedule { .. }) && timer.due > last {
                self.drain_later.push(timer);
                continue;
            }
            if self.live(timer) {
                self.now = self.now.max(timer.due);
                self.fire(timer);
            }
            if self.out.records.len() >= limit {
                self.limit = usize::MAX;
                return false;
            }
        }
        self.limit = usize::MAX;
        self.drain_from = None;
        let later = std::mem::take(&mut self.drain_later);
        // They are set again after the clock, as a run going on from a
        // state sets them: the occurrences drained past are not owed.
        if let Some(groups) = self.zones.as_mut() {
            for t in later {
                if let TimerKind::Schedule { workflow, zone } = t.kind {
                    groups.forget(workflow, zone);
                }
            }
        }
        self.arm_all(self.now, true);
        true
    }

    /// Whether a timer still stands for what it was set for. A journey's is
    /// stale once the journey ended or its wait ended otherwise (its
    /// generation moved on); an inactivity timer is put off, set again at
    /// the period after the contact's last activity, when the contact was
    /// active since it was set. The live timers are exactly those a
    /// snapshot's rows determine, so a run continued from one fires the same
    /// timers in the same order, and moves its clock the same way.
    fn live(&mut self, timer: Timer) -> bool {
        match timer.kind {
            TimerKind::Journey { id, generation } => self
                .store
                .journey(id)
                .is_some_and(|j| j.generation == generation),
            TimerKind::Schedule { .. } => true,
            TimerKind::Date { contact, workflow } => {
                self.date_is_set(contact, workflow, timer.due, timer.seq)
            }
            TimerKind::Inactive { contact, workflow } => {
                let Some(&(_, period)) = self.inactive.iter().find(|(w, _)| *w == workflow) else {
                    return false;
                };
                let ct = self.store.contact(contact);
                if ct.last_activity == NEVER {
                    return true;
                }
                let due = ct.last_activity.saturating_add(period);
                if (due, ct.activity_seq) > (timer.due, timer.seq) {
                    self.timers.push(Timer {
                        due,
                        seq: ct.activity_seq,
                        sub: workflow,
                        kind: timer.kind,
                    });
                    return false;
                }
                true
            }
        }
    }

    /// Records activity: arms the inactivity timers. Without inactivity
    /// workflows nothing reads the time of the last activity, and it is not
    /// kept (an event then changes a contact's stored state only when the
    /// contact changes).
    pub(super) fn touch(&mut self, c: u32) {
        if self.inactive.is_empty() {
            return;
        }
        let seq = self.next_seq();
        let now = self.now;
        let contact = self.store.contact_mut(c);
        contact.last_activity = now;
        contact.activity_seq = seq;
        for (bit, &(wf, period)) in self.inactive.iter().enumerate() {
            if contact.inactive_pending & (1 << bit) == 0 {
                contact.inactive_pending |= 1 << bit;
                let timer = Timer {
                    due: now.saturating_add(period),
                    seq,
                    sub: wf,
                    kind: TimerKind::Inactive {
                        contact: c,
                        workflow: wf,
                    },
                };
                self.timers.push_after(period, timer);
            }
        }
    }

    fn fire(&mut self, timer: Timer) {
        match timer.kind {
            TimerKind::Date { contact, workflow } => self.date_fires(contact, workflow),
            TimerKind::Schedule { workflow, zone } => {
                // Every zone whose occurrence of this workflow falls at this
                // instant: their timers come next in order.
                let mut zones = vec![zone];
                while let Some(next) = self.timers.peek() {
                    match next.kind {
                        TimerKind::Schedule {
                            workflow: w,
                            zone: z,
                        } if w == workflow && next.due == timer.due => {
                            self.timers.pop_due(next.due);
                            zones.push(z);
                        }
                        _ => break,
                    }
                }
                self.occur(workflow, timer.due, &zones);
            }
            TimerKind::Journey { id, generation } => {
                let Some(j) = self.store.journey_mut(id) else {
                    return;
                };
                if j.generation != generation {
                    return;
                }
                j.generation = 0;
                let timed_out = j.waiting_for.take().is_some();
                if let (true, Some(c)) = (timed_out, &mut self.coverage) {
                    c.took(j.workflow, j.pc, crate::runtime::coverage::NO);
                }
                if timed_out {
                    j.received = None;
                    if let Instr::WaitFor { timeout, .. } =
                        &self.prog.workflows[j.workflow as usize].code[j.pc as usize]
                    {
                        j.pc = *timeout;
                    }
                }
                let (wf, c) = (j.workflow, j.contact);
                self.life(
                    c,
                    wf,
                    Lifecycle::Resume {
                        event: None,
                        timeout: timed_out,
                    },
                );
                self.run(id);
            }
            TimerKind::Inactive { contact, workflow } => {
                let Some(bit) = self.inactive.iter().position(|(w, _)| *w == workflow) else {
                    return;
                };
                self.store.contact_mut(contact).inactive_pending &= !(1 << bit);
                self.try_start(contact, workflow, None);
            }
        }
    }
}
