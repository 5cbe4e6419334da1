//! The virtual clock: timers for waits and inactivity, fired in order.

use super::super::output::Lifecycle;
use super::super::program::Instr;
use super::super::value::Millis;
use super::{Engine, Timer, TimerKind, NEVER};

impl Engine {
    /// Fires every timer due at or before `t`.
    pub fn advance_to(&mut self, t: Millis) {
        while let Some(timer) = self.timers.pop_due(t) {
            self.now = self.now.max(timer.due);
            self.fire(timer);
        }
        if self.started {
            self.now = self.now.max(t);
        }
    }

    /// Fires every pending timer; the clock stays at the last one fired
    /// (a run that goes on later starts from there).
    pub fn drain(&mut self) {
        while let Some(timer) = self.timers.pop_due(Millis::MAX) {
            self.now = self.now.max(timer.due);
            self.fire(timer);
        }
    }

    /// Records activity: arms the inactivity timers.
    pub(super) fn touch(&mut self, c: u32) {
        if self.inactive.is_empty() {
            self.store.contacts[c as usize].last_activity = self.now;
            return;
        }
        let seq = self.next_seq();
        let now = self.now;
        let contact = &mut self.store.contacts[c as usize];
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
            TimerKind::Journey { id, generation } => {
                let Some(j) = self.store.journey_mut(id) else {
                    return;
                };
                if j.generation != generation {
                    return;
                }
                j.generation = 0;
                let timed_out = j.waiting_for.take().is_some();
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
                let period = self.inactive[bit].1;
                let ct = &mut self.store.contacts[contact as usize];
                let last = if ct.last_activity == NEVER {
                    timer.due
                } else {
                    ct.last_activity
                };
                let due = last.saturating_add(period);
                if due > timer.due {
                    self.timers.push(Timer {
                        due,
                        seq: ct.activity_seq,
                        sub: workflow,
                        kind: timer.kind,
                    });
                } else {
                    ct.inactive_pending &= !(1 << bit);
                    self.try_start(contact, workflow, None);
                }
            }
        }
    }
}
