//! The rule registry: one entry per rule, each rule in its own file.

mod burst;
mod cap_below_path;
mod consent;
mod dead_end_wait;
mod no_goal;
mod redundant_condition;
mod trigger_cycle;
mod unbounded_history;
mod unfiltered_schedule;
mod unnamed_wait;
mod unreachable;
mod unused_declarations;

use super::Rule;

/// Every rule, in the order `--list-rules` shows them.
pub static RULES: &[Rule] = &[
    consent::RULE,
    burst::RULE,
    unreachable::RULE,
    redundant_condition::RULE,
    no_goal::RULE,
    unbounded_history::RULE,
    trigger_cycle::RULE,
    dead_end_wait::RULE,
    unused_declarations::RULE,
    unfiltered_schedule::RULE,
    cap_below_path::RULE,
    unnamed_wait::RULE,
];
