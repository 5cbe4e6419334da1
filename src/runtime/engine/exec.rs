//! Running a journey's instructions: actions, waits, branches and splits.

use super::super::eval::{arithmetic, eval, Fault};
use super::super::output::{Action, DataMap, Lifecycle, Suppression};
use super::super::program::{CExpr, Compiled, Data, Instr, Part, Until};
use super::super::store::Journey;
use super::super::value::{Millis, Value};
use super::{Engine, Outcome, Step, Timer, TimerKind};
use crate::ast::{AssignOp, BinaryOp, ListOp};
use std::sync::Arc;

impl Engine {
    /// Runs one instruction; `prog` is the engine's program, passed in so
    /// the per-instruction path does not touch its reference count.
    pub(super) fn exec(
        &mut self,
        prog: &Compiled,
        j: &mut Journey,
        instr: &Instr,
        changed: &mut bool,
    ) -> Result<Step, Fault> {
        let c = j.contact as usize;
        let wf_name = &prog.workflows[j.workflow as usize].name;
        let eval_here = |engine: &Engine, e: &CExpr| {
            eval(
                e,
                &engine.ctx(j.contact, j.received.as_deref(), j.trigger.as_deref()),
            )
        };
        match instr {
            Instr::Send {
                channel,
                channel_id,
                template,
                data,
                consent,
                transactional,
            } => {
                let transactional = *transactional;
                let attrs = &self.store.contact(c as u32).attrs;
                let consented = consent
                    .iter()
                    .all(|slot| matches!(attrs[*slot as usize], Value::Bool(true)));
                if !consented {
                    let stats = &mut self.stats[j.workflow as usize];
                    stats.suppressed[*channel_id as usize] += 1;
                    if self.out.trace {
                        let what = Lifecycle::Suppressed {
                            channel: channel.clone(),
                            template: template.clone(),
                            reason: Suppression::Consent,
                        };
                        self.life(j.contact, j.workflow, what);
                    }
                    return Ok(Step::Next);
                }
                // Then the channel's frequency cap: the sends it emitted to
                // the contact in [now - D, now], across all workflows.
                let ch = *channel_id as usize;
                let cap = prog.caps[ch].filter(|_| !transactional);
                if let Some((cap, window)) = cap {
                    let since = self.now.saturating_sub(window);
                    let sent = match &mut self.store.contact_mut(c as u32).sends {
                        Some(sends) => {
                            let times = &mut sends[ch];
                            while times.front().is_some_and(|t| *t < since) {
                                times.pop_front();
                            }
                            times.len()
                        }
                        None => 0,
                    };
                    if sent >= cap as usize {
                        self.stats[j.workflow as usize].capped[ch] += 1;
                        if self.out.trace {
                            let what = Lifecycle::Suppressed {
                                channel: channel.clone(),
                                template: template.clone(),
                                reason: Suppression::FrequencyCap,
                            };
                            self.life(j.contact, j.workflow, what);
                        }
                        return Ok(Step::Next);
                    }
                }
                // Then quiet hours: the send waits for the window's end in
                // the contact's zone, and is judged again then.
                if let Some((start, end)) = prog.quiet[ch].filter(|_| !transactional) {
                    let tz = self.zone_of(j.contact);
                    if let Some(until) =
                        super::super::calendar::quiet_until(self.now, tz, start, end)
                    {
                        let until = in_range(prog, j, until)?;
                        self.hold(j, until);
                        return Ok(Step::Suspend);
                    }
                }
                let data = eval_data(data, |e| eval_here(self, e))?;
                self.emit(
                    j,
                    Action::Send {
                        channel: channel.clone(),
                        template: template.clone(),
                        data,
                    },
                );
                if cap.is_some() {
                    let now = self.now;
                    self.store
                        .contact_mut(c as u32)
                        .sends
                        .get_or_insert_with(Box::default)[ch]
                        .push_back(now);
                }
            }
            Instr::Tag(e) | Instr::Untag(e) => {
                let tag = match eval_here(self, e)? {
                    Value::Str(s) => s,
                    _ => Arc::from(""),
                };
                let add = matches!(instr, Instr::Tag(_));
                if let Some(slot) = prog.schema.field("tags") {
                    if let Value::Set(set) = &mut self.store.contact_mut(c as u32).attrs[slot] {
                        let set = Arc::make_mut(set);
                        if add {
                            set.insert(tag.clone());
                        } else {
                            set.remove(&tag);
                        }
                    }
                }
                *changed = true;
                self.emit(
                    j,
                    if add {
                        Action::Tag(tag)
                    } else {
                        Action::Untag(tag)
                    },
                );
            }
            Instr::Set { field, op, value } => {
                let v = eval_here(self, value)?;
                let slot = *field as usize;
                let old = &self.store.contact(c as u32).attrs[slot];
                let new = assign(
                    *op,
                    old,
                    v,
                    &prog.schema.fields[slot].ty,
                    prog.workflows[j.workflow as usize].spans[j.pc as usize],
                )?;
                self.store.contact_mut(c as u32).attrs[slot] = new.clone();
                *changed = true;
                self.emit(
                    j,
                    Action::Set {
                        field: *field,
                        value: new,
                    },
                );
            }
            Instr::List { op, name } => {
                let name = name.clone();
                let action = match op {
                    ListOp::AddToList => Action::AddToList(name),
                    ListOp::RemoveFromList => Action::RemoveFromList(name),
                    ListOp::AddToAudience => Action::AddToAudience(name),
                };
                self.emit(j, action);
            }
            Instr::Notify { to, parts } => {
                let mut text = String::new();
                for p in parts.iter() {
                    match p {
                        Part::Text(t) => text.push_str(t),
                        Part::Expr(e) => eval_here(self, e)?.write_text(&mut text),
                    }
                }
                self.emit(
                    j,
                    Action::Notify {
                        to: to.clone(),
                        message: text,
                    },
                );
            }
            Instr::Webhook { name, data } => {
                let data = eval_data(data, |e| eval_here(self, e))?;
                self.emit(
                    j,
                    Action::Webhook {
                        name: name.clone(),
                        data,
                    },
                );
            }
            Instr::Wait(d) => {
                let end = in_range(prog, j, self.now.saturating_add(*d))?;
                j.pc += 1;
                self.suspend(j, end, None);
                return Ok(Step::Suspend);
            }
            Instr::WaitUntil(until) => {
                let end = match until {
                    Until::Duration(e) => match eval_here(self, e)? {
                        Value::Duration(d) => Some(self.now.saturating_add(d)),
                        _ => None,
                    },
                    Until::Instant(e) => match eval_here(self, e)? {
                        Value::Datetime(t) => Some(t),
                        _ => None,
                    },
                    Until::Local {
                        hour,
                        minute,
                        weekday,
                    } => super::super::calendar::next(
                        self.now,
                        self.zone_of(j.contact),
                        *hour,
                        *minute,
                        *weekday,
                    ),
                };
                let end = end.map(|end| in_range(prog, j, end)).transpose()?;
                j.pc += 1;
                // A wait whose end is not in the future goes straight on.
                match end {
                    Some(end) if end > self.now => {
                        self.suspend_until(j, end);
                        return Ok(Step::Suspend);
                    }
                    _ => return Ok(Step::Jump(j.pc)),
                }
            }
            Instr::WaitFor { event, within, .. } => {
                let end = in_range(prog, j, self.now.saturating_add(*within))?;
                self.suspend(j, end, Some(*event));
                return Ok(Step::Suspend);
            }
            Instr::Branch {
                cond, otherwise, ..
            } => {
                if !eval_here(self, cond)?.as_bool() {
                    return Ok(Step::Jump(*otherwise));
                }
            }
            Instr::Jump(t) => return Ok(Step::Jump(*t)),
            Instr::Split { index, arms } => {
                let bucket = split_bucket(&self.store.contact(c as u32).id, wf_name, *index);
                let arm = arms
                    .iter()
                    .position(|(bound, _)| bucket < *bound)
                    .unwrap_or(arms.len().saturating_sub(1));
                let Some((_, target)) = arms.get(arm) else {
                    return Ok(Step::Next);
                };
                let shape = &prog.workflows[j.workflow as usize].funnel;
                if let Some(s) = shape.splits.get(*index as usize) {
                    let slot = s.base as usize + arm;
                    if slot < 64 {
                        j.arms |= 1 << slot;
                        if let Some(a) = self.funnel[j.workflow as usize].arms.get_mut(slot) {
                            a.0 += 1;
                        }
                    }
                }
                return Ok(Step::Jump(*target));
            }
            Instr::Stage { name, index } => {
                let bit = 1u64 << (*index as u32).min(63);
                if *index < 64 && j.stages & bit == 0 {
                    j.stages |= bit;
                    if let Some(n) = self.funnel[j.workflow as usize]
                        .stages
                        .get_mut(*index as usize)
                    {
                        *n += 1;
                    }
                }
                if self.out.trace {
                    self.life(j.contact, j.workflow, Lifecycle::Stage(name.clone()));
                }
            }
            Instr::Exit => return Ok(Step::End(Outcome::Exited)),
            Instr::Convert => return Ok(Step::End(Outcome::Converted)),
            Instr::End => return Ok(Step::End(Outcome::Completed)),
        }
        Ok(Step::Next)
    }

    fn emit(&mut self, j: &Journey, action: Action) {
        let id = &self.store.contact(j.contact).id;
        self.out.action(self.now, id, j.workflow, action);
    }

    fn suspend(&mut self, j: &mut Journey, until: Millis, event: Option<u16>) {
        let seq = self.next_seq();
        j.generation = seq;
        j.waiting_for = event;
        j.wake_at = until;
        let id = self.running;
        let timer = Timer {
            due: until,
            seq,
            sub: 0,
            kind: TimerKind::Journey {
                id,
                generation: j.generation,
            },
        };
        // Waits are set `until - now` ahead: one lane per delay.
        self.timers.push_after(until - self.now, timer);
        self.life(j.contact, j.workflow, Lifecycle::Wait { until, event });
    }

    /// Suspends a journey until a computed instant: its timer goes with
    /// those of any due time.
    fn suspend_until(&mut self, j: &mut Journey, until: Millis) {
        let seq = self.next_seq();
        j.generation = seq;
        j.waiting_for = None;
        j.wake_at = until;
        let timer = Timer {
            due: until,
            seq,
            sub: 0,
            kind: TimerKind::Journey {
                id: self.running,
                generation: seq,
            },
        };
        self.timers.push(timer);
        self.life(
            j.contact,
            j.workflow,
            Lifecycle::Wait { until, event: None },
        );
    }

    /// Holds a journey at its send until `until` (quiet hours): the send
    /// runs again then.
    fn hold(&mut self, j: &mut Journey, until: Millis) {
        let seq = self.next_seq();
        j.generation = seq;
        j.waiting_for = None;
        j.wake_at = until;
        self.timers.push(Timer {
            due: until,
            seq,
            sub: 0,
            kind: TimerKind::Journey {
                id: self.running,
                generation: seq,
            },
        });
        self.life(j.contact, j.workflow, Lifecycle::Held { until });
    }

    /// The contact's time zone: its `@timezone` field when that names a
    /// known zone, else the program's.
    pub(crate) fn zone_of(&self, c: u32) -> chrono_tz::Tz {
        self.prog
            .zone_field
            .and_then(
                |slot| match self.store.contact(c).attrs.get(slot as usize) {
                    Some(Value::Str(name)) => super::super::calendar::zone(name),
                    _ => None,
                },
            )
            .unwrap_or(self.prog.zone)
    }
}

/// The entries of a `with { ... }` map, evaluated before anything is emitted.
fn eval_data(
    data: &Data,
    mut eval: impl FnMut(&CExpr) -> Result<Value, Fault>,
) -> Result<DataMap, Fault> {
    data.as_ref()
        .map(|d| d.iter().map(|(k, e)| Ok((k.clone(), eval(e)?))).collect())
        .transpose()
}

/// Applies `=`, `+=` or `-=` to a field's current value.
fn assign(
    op: AssignOp,
    old: &Value,
    v: Value,
    ty: &crate::check::Type,
    span: crate::source::Span,
) -> Result<Value, Fault> {
    Ok(match (op, old) {
        (AssignOp::Assign, _) => v.stored_as(ty),
        (_, Value::Set(set)) => {
            let mut set = (**set).clone();
            if let Value::Str(s) = v {
                if op == AssignOp::Add {
                    set.insert(s);
                } else {
                    set.remove(&s);
                }
            }
            Value::Set(Arc::new(set))
        }
        (AssignOp::Add, old) => arithmetic(BinaryOp::Add, old.clone(), v, span)?,
        (AssignOp::Sub, old) => arithmetic(BinaryOp::Sub, old.clone(), v, span)?,
    })
}

/// The bucket (0..100) of a split: FNV-1a (64-bit) over the contact id, a
/// 0xff byte, the workflow name, a 0xff byte and the split's position in the
/// workflow (0-based, 4 bytes little-endian), modulo 100.
pub fn split_bucket(contact: &str, workflow: &str, index: u32) -> u32 {
    let bytes = contact
        .bytes()
        .chain([0xff])
        .chain(workflow.bytes())
        .chain([0xff])
        .chain(index.to_le_bytes());
    (fnv1a64(bytes) % 100) as u32
}

/// FNV-1a, 64-bit, over `bytes`.
pub fn fnv1a64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .into_iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The partition a contact belongs to among `partitions` (LANGUAGE.md
/// section 12): `fnv1a64(id) mod P`, over the id's UTF-8 bytes. Contacts
/// never affect one another, so each partition can run on its own.
pub fn partition_of(contact: &str, partitions: u32) -> u32 {
    (fnv1a64(contact.bytes()) % u64::from(partitions.max(1))) as u32
}

/// The end of a wait (or of a quiet-hours hold) of journey `j`, when it is
/// a time the clock can reach: past the year 9999 the journey faults at its
/// statement, as an expression out of that range does, instead of moving
/// the clock where no input, `--until` or RFC 3339 stamp can follow.
fn in_range(prog: &Compiled, j: &Journey, end: Millis) -> Result<Millis, Fault> {
    if end <= *super::super::eval::DATETIMES.end() {
        return Ok(end);
    }
    let wf = &prog.workflows[j.workflow as usize];
    let span = wf.spans[j.pc as usize];
    Err(Fault {
        message: "the wait would end past the year 9999".into(),
        span,
    })
}
