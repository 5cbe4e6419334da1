//! What a run executed, for `nurture test --coverage`: per workflow, the
//! instructions that ran and the outcomes its choices took (a condition's
//! true and false, a split's arms, a `wait for`'s received and timeout).

use std::collections::BTreeSet;

/// An outcome of a choice: a condition held (0) or not (1); a split's arm
/// by position; a `wait for` received its event (0) or timed out (1).
pub type Taken = (u32, u32);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Per workflow, per instruction: whether it ran.
    pub ran: Vec<Vec<bool>>,
    /// Per workflow: (instruction, outcome) pairs taken.
    pub taken: Vec<BTreeSet<Taken>>,
}

/// A held condition, or a `wait for` that received its event.
pub const YES: u32 = 0;
/// A condition that did not hold, or a `wait for` that timed out.
pub const NO: u32 = 1;

impl Coverage {
    /// Nothing run yet, for workflows of these instruction counts.
    pub fn new(sizes: impl Iterator<Item = usize>) -> Coverage {
        let ran: Vec<Vec<bool>> = sizes.map(|n| vec![false; n]).collect();
        let taken = vec![BTreeSet::new(); ran.len()];
        Coverage { ran, taken }
    }

    pub fn ran(&mut self, workflow: u16, pc: u32) {
        if let Some(r) = self
            .ran
            .get_mut(workflow as usize)
            .and_then(|w| w.get_mut(pc as usize))
        {
            *r = true;
        }
    }

    pub fn took(&mut self, workflow: u16, pc: u32, outcome: u32) {
        if let Some(t) = self.taken.get_mut(workflow as usize) {
            t.insert((pc, outcome));
        }
    }

    /// Adds what `other` ran (of the same program).
    pub fn merge(&mut self, other: &Coverage) {
        for (mine, theirs) in self.ran.iter_mut().zip(&other.ran) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m |= *t;
            }
        }
        for (mine, theirs) in self.taken.iter_mut().zip(&other.taken) {
            mine.extend(theirs.iter().copied());
        }
    }
}

/// What one workflow ran, by place: each statement with whether it ran,
/// each way of each choice with whether it was taken (an `if`/`else if`
/// arm and the `else`, absent or not; each `split` arm; a `wait for`'s
/// received and timeout paths).
pub struct WorkflowRan {
    pub workflow: std::sync::Arc<str>,
    pub statements: Vec<(crate::source::Span, bool)>,
    pub branches: Vec<(crate::source::Span, bool)>,
}

impl Coverage {
    /// What ran of each workflow of `prog`, by place.
    pub fn by_place(&self, prog: &super::program::Compiled) -> Vec<WorkflowRan> {
        use super::program::Instr;
        prog.workflows
            .iter()
            .enumerate()
            .map(|(w, wf)| {
                let ran = self.ran.get(w).map(Vec::as_slice).unwrap_or(&[]);
                let taken = self.taken.get(w);
                let is_taken =
                    |pc: usize, o: u32| taken.is_some_and(|t| t.contains(&(pc as u32, o)));
                let mut statements = Vec::new();
                let mut branches = Vec::new();
                for (pc, instr) in wf.code.iter().enumerate() {
                    let span = wf.spans[pc];
                    if !matches!(instr, Instr::Jump(_) | Instr::End) {
                        statements.push((span, ran.get(pc).copied().unwrap_or(false)));
                    }
                    match instr {
                        Instr::Branch { chained, .. } => {
                            branches.push((span, is_taken(pc, YES)));
                            // The false way is an arm of its own unless an
                            // `else if` of the same `if` follows.
                            if !chained {
                                branches.push((span, is_taken(pc, NO)));
                            }
                        }
                        Instr::Split { arms, .. } => {
                            for arm in 0..arms.len() {
                                branches.push((span, is_taken(pc, arm as u32)));
                            }
                        }
                        Instr::WaitFor { .. } => {
                            branches.push((span, is_taken(pc, YES)));
                            branches.push((span, is_taken(pc, NO)));
                        }
                        _ => {}
                    }
                }
                WorkflowRan {
                    workflow: wf.name.clone(),
                    statements,
                    branches,
                }
            })
            .collect()
    }
}
