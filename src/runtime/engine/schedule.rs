//! Scheduled triggers (`when every day at 09:00 ...`): contacts grouped by
//! the zone their local times are read in, and per scheduled workflow and
//! zone one timer at the next occurrence. An occurrence visits the
//! contacts of the zones it falls in, not every contact, and no timer runs
//! between occurrences.

use super::super::calendar;
use super::super::program::{CTrigger, Every};
use super::super::value::{Millis, Value};
use super::{Engine, Timer, TimerKind};
use chrono::{Datelike, TimeZone};
use chrono_tz::Tz;
use std::collections::{BTreeSet, HashSet};

/// The contacts of each zone in use, in first-seen order.
#[derive(Debug, Default)]
pub(crate) struct ZoneGroups {
    zones: Vec<Tz>,
    members: Vec<BTreeSet<u32>>,
    /// Per contact, its zone's index.
    of: Vec<u16>,
    /// The (workflow, zone) pairs with an occurrence timer pending.
    armed: HashSet<(u16, u16)>,
}

const NONE: u16 = u16::MAX;

impl Engine {
    /// The workflows with a scheduled trigger, in declaration order.
    fn scheduled(&self) -> impl Iterator<Item = u16> + '_ {
        self.prog
            .workflows
            .iter()
            .enumerate()
            .filter(|(_, w)| matches!(w.trigger, CTrigger::Schedule { .. }))
            .map(|(i, _)| i as u16)
    }

    /// Puts contact `c` in its zone's group (after it was created or its
    /// zone field may have changed); a zone that gains its first contact
    /// gets its occurrence timers once the clock runs.
    pub(super) fn group(&mut self, c: u32) {
        if self.zones.is_none() {
            return;
        }
        let tz = self.zone_of(c);
        let Some(groups) = self.zones.as_mut() else {
            return;
        };
        let z = match groups.zones.iter().position(|t| *t == tz) {
            Some(z) => z as u16,
            None => {
                groups.zones.push(tz);
                groups.members.push(BTreeSet::new());
                (groups.zones.len() - 1) as u16
            }
        };
        if groups.of.len() <= c as usize {
            groups.of.resize(c as usize + 1, NONE);
        }
        let old = groups.of[c as usize];
        if old == z {
            return;
        }
        if old != NONE {
            groups.members[old as usize].remove(&c);
        }
        groups.of[c as usize] = z;
        groups.members[z as usize].insert(c);
        if self.started {
            let now = self.now;
            for wf in self.scheduled().collect::<Vec<_>>() {
                self.arm(wf, z, now, true);
            }
        }
    }

    /// Sets the timer of `wf`'s next occurrence in zone `z`, after `from`
    /// (at or after it unless `strict`), unless one is pending.
    pub(super) fn arm(&mut self, wf: u16, z: u16, from: Millis, strict: bool) {
        let Some(groups) = self.zones.as_mut() else {
            return;
        };
        if groups.armed.contains(&(wf, z)) || groups.members[z as usize].is_empty() {
            return;
        }
        let CTrigger::Schedule {
            every,
            hour,
            minute,
            ..
        } = &self.prog.workflows[wf as usize].trigger
        else {
            return;
        };
        let Some(due) = next_occurrence(
            from,
            groups.zones[z as usize],
            every,
            *hour,
            *minute,
            strict,
        ) else {
            return;
        };
        groups.armed.insert((wf, z));
        // After every other timer of its instant, in workflow order.
        self.timers.push(Timer {
            due,
            seq: u64::MAX,
            sub: wf,
            kind: TimerKind::Schedule {
                workflow: wf,
                zone: z,
            },
        });
    }

    /// Arms every scheduled workflow in every zone in use: when the clock
    /// starts (occurrences at its first instant count) or goes on from a
    /// state (they fired already).
    pub(super) fn arm_all(&mut self, from: Millis, strict: bool) {
        let Some(zones) = self.zones.as_ref().map(|g| g.zones.len()) else {
            return;
        };
        for wf in self.scheduled().collect::<Vec<_>>() {
            for z in 0..zones as u16 {
                self.arm(wf, z, from, strict);
            }
        }
    }

    /// An occurrence of `wf` at `due` in `zones` (every zone whose occurrence
    /// falls at that instant): their contacts enter in first-seen order,
    /// those the `where` lets in; then each zone's next occurrence is set.
    pub(super) fn occur(&mut self, wf: u16, due: Millis, zones: &[u16]) {
        let Some(groups) = self.zones.as_mut() else {
            return;
        };
        let mut contacts: Vec<u32> = Vec::new();
        for z in zones {
            groups.armed.remove(&(wf, *z));
            contacts.extend(groups.members[*z as usize].iter().copied());
        }
        contacts.sort_unstable();
        self.occurring = Some(Occurrence {
            wf,
            due,
            zones: zones.to_vec(),
            contacts,
            next: 0,
        });
        self.go_on_occurring();
    }

    /// Goes on with the occurrence under way, contact by contact, until it
    /// is over or [`Engine::limit`] records wait to be taken (a daily
    /// schedule over a million contacts in one zone then leaves in parts).
    pub(super) fn go_on_occurring(&mut self) {
        let Some(mut o) = self.occurring.take() else {
            return;
        };
        let (wf, due) = (o.wf, o.due);
        let prog = self.prog.clone();
        let CTrigger::Schedule { every, filter, .. } = &prog.workflows[wf as usize].trigger else {
            return;
        };
        while o.next < o.contacts.len() {
            if self.out.records.len() >= self.limit {
                self.occurring = Some(o);
                return;
            }
            let c = o.contacts[o.next];
            o.next += 1;
            if let Every::Year(slot) = every {
                if !self.birthday(c, *slot, due) {
                    continue;
                }
            }
            if let Some(f) = filter {
                match super::super::eval::eval(f, &self.ctx(c, None, None)) {
                    Ok(v) if v.as_bool() => {}
                    Ok(_) => continue,
                    Err(fault) => {
                        self.report(c, wf, fault);
                        continue;
                    }
                }
            }
            self.try_start(c, wf, None);
        }
        for z in &o.zones {
            self.arm(wf, *z, due, true);
        }
    }

    /// Whether the month and day of contact `c`'s datetime field `slot`,
    /// in its zone, are today's there (Feb 29 falls on Feb 28 in years
    /// without one).
    fn birthday(&self, c: u32, slot: u16, now: Millis) -> bool {
        let Some(Value::Datetime(t)) = self.store.contact(c).attrs.get(slot as usize) else {
            return false;
        };
        let tz = self.zone_of(c);
        let (Some(born), Some(today)) = (
            tz.timestamp_millis_opt(*t).single(),
            tz.timestamp_millis_opt(now).single(),
        ) else {
            return false;
        };
        let (month, mut day) = (born.month(), born.day());
        let leap = chrono::NaiveDate::from_ymd_opt(today.year(), 2, 29).is_some();
        if month == 2 && day == 29 && !leap {
            day = 28;
        }
        today.month() == month && today.day() == day
    }
}

/// The first occurrence after `from` (at or after unless `strict`) of
/// `every` at `hour:minute` in `tz`.
fn next_occurrence(
    from: Millis,
    tz: Tz,
    every: &Every,
    hour: u32,
    minute: u32,
    strict: bool,
) -> Option<Millis> {
    let today = tz.timestamp_millis_opt(from).single()?.date_naive();
    (-1..=62).find_map(|k| {
        let day = today.checked_add_signed(chrono::Duration::days(k))?;
        let fits = match every {
            Every::Day | Every::Year(_) => true,
            Every::Weekday(w) => day.weekday().num_days_from_monday() == *w,
            Every::Month(d) => day.day() == *d,
        };
        if !fits {
            return None;
        }
        calendar::instant(tz, day, hour, minute)
            .filter(|t| if strict { *t > from } else { *t >= from })
    })
}

impl Engine {
    /// Computes contact `c`'s date triggers (`when at EXPR`) again, after
    /// it was created or its fields may have changed: an instant after the
    /// clock is set (a new timer when it moved); one not after it, or none
    /// (an unset field), clears what was set.
    pub(super) fn date_triggers(&mut self, c: u32) {
        if !self.started {
            return;
        }
        let prog = self.prog.clone();
        for (w, wf) in prog.workflows.iter().enumerate() {
            let CTrigger::At(e) = &wf.trigger else {
                continue;
            };
            let due = match super::super::eval::eval(e, &self.ctx(c, None, None)) {
                Ok(Value::Datetime(t)) if t > self.now => Some(t),
                _ => None,
            };
            let workflows = prog.workflows.len();
            let set = self
                .store
                .contact(c)
                .dates
                .as_ref()
                .and_then(|d| d.get(w).copied())
                .filter(|(t, _)| *t != super::NEVER);
            if set.map(|(t, _)| t) == due {
                continue;
            }
            let entry = match due {
                Some(t) => {
                    let seq = self.next_seq();
                    self.timers.push(Timer {
                        due: t,
                        seq,
                        sub: w as u16,
                        kind: TimerKind::Date {
                            contact: c,
                            workflow: w as u16,
                        },
                    });
                    (t, seq)
                }
                None => (super::NEVER, 0),
            };
            let dates = self
                .store
                .contact_mut(c)
                .dates
                .get_or_insert_with(|| vec![(super::NEVER, 0); workflows].into_boxed_slice());
            if let Some(d) = dates.get_mut(w) {
                *d = entry;
            }
        }
    }

    /// Whether a date trigger's timer is the one its contact has set.
    pub(super) fn date_is_set(&self, contact: u32, workflow: u16, due: Millis, seq: u64) -> bool {
        self.store
            .contacts()
            .get(contact as usize)
            .and_then(|c| c.dates.as_ref())
            .and_then(|d| d.get(workflow as usize))
            == Some(&(due, seq))
    }

    /// A date trigger fires: it is cleared, and the contact enters.
    pub(super) fn date_fires(&mut self, contact: u32, workflow: u16) {
        if let Some(d) = self
            .store
            .contact_mut(contact)
            .dates
            .as_mut()
            .and_then(|d| d.get_mut(workflow as usize))
        {
            *d = (super::NEVER, 0);
        }
        self.try_start(contact, workflow, None);
    }
}

impl ZoneGroups {
    pub(super) fn new() -> ZoneGroups {
        ZoneGroups::default()
    }

    /// The (workflow, zone) timer is gone: it may be set again.
    pub(super) fn forget(&mut self, workflow: u16, zone: u16) {
        self.armed.remove(&(workflow, zone));
    }
}

/// A scheduled occurrence under way: the contacts it visits, in order, and
/// the next one.
pub(crate) struct Occurrence {
    wf: u16,
    due: Millis,
    zones: Vec<u16>,
    contacts: Vec<u32>,
    next: usize,
}
