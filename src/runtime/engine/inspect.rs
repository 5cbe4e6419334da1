//! Reading the engine's state and taking what it emitted, for the
//! runtime's front door.

use super::super::eval::{eval, Ctx, Fault};
use super::super::output::{ActionKind, Emitted};
use super::super::program::{CExpr, Compiled};
use super::super::store::History;
use super::super::value::{Millis, Value};
use super::{Engine, JourneyView, RunFault, WorkflowStats};
use std::sync::Arc;

impl Engine {
    /// Replaces the program by one that only adds event types (checked by
    /// the caller): ids, slots and workflows are the same.
    pub fn set_program(&mut self, prog: Arc<Compiled>) {
        self.prog = prog;
    }

    pub fn prog(&self) -> &Arc<Compiled> {
        &self.prog
    }

    pub fn set_trace(&mut self, on: bool) {
        self.out.trace = on;
    }

    /// The clock, once the first event has set it.
    pub fn clock(&self) -> Option<Millis> {
        self.started.then_some(self.now)
    }

    pub fn pending(&self) -> usize {
        self.out.records.len()
    }

    pub fn take_records(&mut self) -> Vec<Emitted> {
        std::mem::take(&mut self.out.records)
    }

    /// Hands each pending record to `f`, in order, and forgets them.
    pub fn drain_records(&mut self, mut f: impl FnMut(&Emitted)) {
        for r in self.out.records.drain(..) {
            f(&r);
        }
    }

    pub fn take_faults(&mut self) -> Vec<RunFault> {
        std::mem::take(&mut self.faults)
    }

    pub fn workflow_stats(&self) -> &[WorkflowStats] {
        &self.stats
    }

    pub fn action_counts(&self) -> [u64; ActionKind::ALL.len()] {
        self.out.counts
    }

    /// A contact's index, by id.
    pub fn contact(&self, id: &str) -> Option<u32> {
        self.store.contact_id(id)
    }

    pub fn contact_ids(&self) -> impl Iterator<Item = &str> {
        self.store.contacts().iter().map(|c| c.id.as_str())
    }

    pub fn attributes(&self, c: u32) -> &[Value] {
        &self.store.contact(c).attrs
    }

    /// The journeys of contact `c` in flight, in workflow declaration order.
    pub fn journeys(&self, c: u32) -> Vec<JourneyView> {
        self.store
            .slots(c)
            .iter()
            .filter_map(|slot| self.store.journey(slot.journey))
            .map(|j| {
                let wf = &self.prog.workflows[j.workflow as usize];
                // A plain `wait` has already moved past itself; a `wait for` has not.
                let pc = if j.waiting_for.is_some() {
                    j.pc
                } else {
                    j.pc.saturating_sub(1)
                };
                JourneyView {
                    workflow: j.workflow,
                    at: wf.spans.get(pc as usize).copied().unwrap_or_default(),
                    waiting_for: j.waiting_for,
                    until: j.wake_at,
                    entered_at: j.entered_at,
                }
            })
            .collect()
    }

    /// Per workflow, the funnel counts of the report.
    pub fn funnel_counts(&self) -> &[crate::runtime::output::FunnelCounts] {
        &self.funnel
    }

    /// Journeys still waiting, per workflow.
    /// Per workflow, per funnel step after `entered` (each stage, then
    /// `converted` when the workflow converts): the journeys in flight that
    /// reached the step's parent and not yet the step, still on their way.
    pub fn pending_counts(&self) -> Vec<Vec<u64>> {
        let mut counts: Vec<Vec<u64>> = self
            .prog
            .workflows
            .iter()
            .map(|w| vec![0; w.funnel.stages.len() + usize::from(w.funnel.converts)])
            .collect();
        let reached = |bits: u64, parent: Option<u16>| parent.is_none_or(|p| bits & (1 << p) != 0);
        for (_, j) in self.store.active_journeys() {
            let shape = &self.prog.workflows[j.workflow as usize].funnel;
            let row = &mut counts[j.workflow as usize];
            for (i, parent) in shape.parents.iter().enumerate() {
                if reached(j.stages, *parent) && j.stages & (1 << i) == 0 {
                    row[i] += 1;
                }
            }
            if shape.converts && reached(j.stages, shape.converted_parent) {
                row[shape.stages.len()] += 1;
            }
        }
        counts
    }

    pub fn waiting_counts(&self) -> Vec<u64> {
        let mut counts = vec![0; self.prog.workflows.len()];
        for (_, j) in self.store.active_journeys() {
            counts[j.workflow as usize] += 1;
        }
        counts
    }

    /// Evaluates an expression against a contact (or the schema defaults) at the current time.
    pub fn eval_for(&self, contact: Option<u32>, e: &CExpr, now: Millis) -> Result<Value, Fault> {
        let empty = History::default();
        let (attrs, history) = match contact.and_then(|c| self.store.contacts().get(c as usize)) {
            Some(ct) => (&ct.attrs[..], &ct.history),
            None => (&self.prog.defaults[..], &empty),
        };
        eval(
            e,
            &Ctx {
                attrs,
                event: None,
                trigger: None,
                now,
                history,
            },
        )
    }
}
