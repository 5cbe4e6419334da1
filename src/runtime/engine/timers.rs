//! The timer queue, ordered by due time, then creation order.
//!
//! Nearly every timer is due a fixed delay after the moment it is set (a
//! `wait 2d`, a `within 3d`, an inactivity period), and the clock never goes
//! back, so the timers of one delay come due in the order they were set.
//! Each delay gets a first-in first-out lane, and the next timer is the
//! earliest of the lanes' fronts: no heap to sift through for the common
//! case, and memory read in order. Timers of any other due time, and any
//! that would break a lane's order, go to a binary heap beside the lanes.

use super::Timer;
use crate::runtime::value::Millis;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// More distinct delays than this share the heap.
const MAX_LANES: usize = 32;

#[derive(Debug, Default)]
pub(super) struct Timers {
    /// A lane per delay: timers in due order.
    lanes: Vec<(Millis, VecDeque<Timer>)>,
    heap: BinaryHeap<Reverse<Timer>>,
}

/// Where the earliest timer is.
#[derive(Clone, Copy)]
enum Source {
    Lane(usize),
    Heap,
}

impl Timers {
    /// Adds a timer due `delay` after the moment it is set.
    pub fn push_after(&mut self, delay: Millis, timer: Timer) {
        let lane = match self.lanes.iter().position(|(d, _)| *d == delay) {
            Some(i) => i,
            None if self.lanes.len() < MAX_LANES => {
                self.lanes.push((delay, VecDeque::new()));
                self.lanes.len() - 1
            }
            None => return self.push(timer),
        };
        let queue = &mut self.lanes[lane].1;
        if queue.back().is_some_and(|last| *last > timer) {
            self.push(timer);
        } else {
            queue.push_back(timer);
        }
    }

    /// Adds a timer of any due time.
    pub fn push(&mut self, timer: Timer) {
        self.heap.push(Reverse(timer));
    }

    fn earliest(&self) -> Option<(Timer, Source)> {
        let mut best = self.heap.peek().map(|Reverse(t)| (*t, Source::Heap));
        for (i, (_, queue)) in self.lanes.iter().enumerate() {
            if let Some(t) = queue.front() {
                if best.is_none_or(|(b, _)| *t < b) {
                    best = Some((*t, Source::Lane(i)));
                }
            }
        }
        best
    }

    /// The earliest timer, left in place.
    pub fn peek(&self) -> Option<Timer> {
        self.earliest().map(|(t, _)| t)
    }

    /// Removes and returns the earliest timer if it is due at or before `t`.
    pub fn pop_due(&mut self, t: Millis) -> Option<Timer> {
        let (timer, source) = self.earliest()?;
        if timer.due > t {
            return None;
        }
        match source {
            Source::Heap => {
                self.heap.pop();
            }
            Source::Lane(i) => {
                self.lanes[i].1.pop_front();
            }
        }
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Timer, TimerKind};
    use super::*;

    fn timer(due: Millis, seq: u64) -> Timer {
        Timer {
            due,
            seq,
            sub: 0,
            kind: TimerKind::Journey {
                id: seq as u32,
                generation: seq,
            },
        }
    }

    #[test]
    fn timers_come_out_in_due_then_creation_order() {
        // Set at non-decreasing times with a few delays, plus odd ones; the
        // order out must be that of a plain sort.
        let mut timers = Timers::default();
        let mut all = Vec::new();
        let mut seq = 0;
        for now in [0, 0, 5, 7, 7, 20, 21, 40] {
            for delay in [10, 3, 10, 25] {
                seq += 1;
                let t = timer(now + delay, seq);
                timers.push_after(delay, t);
                all.push(t);
            }
            seq += 1;
            let odd = timer(now + (seq as Millis % 7), seq);
            timers.push(odd);
            all.push(odd);
        }
        // A timer set out of order in its lane still comes out in order.
        let late = timer(1, 1000);
        timers.push_after(10, late);
        all.push(late);
        all.sort();
        let mut out = Vec::new();
        while let Some(t) = timers.pop_due(30) {
            out.push(t);
        }
        assert!(out.iter().all(|t| t.due <= 30));
        while let Some(t) = timers.pop_due(Millis::MAX) {
            out.push(t);
        }
        assert_eq!(out, all);
    }
}
