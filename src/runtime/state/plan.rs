//! The program change rule (LANGUAGE.md section 7): whether a state can go
//! on with a changed program, and how its places map to the new program's.
//! One planner for every driver: `nurture run --state`, the REPL, a reload.

use super::record::ProgramRecord;
use super::StateError;
use crate::runtime::program::{Compiled, INSTRUCTION_SET};
use crate::runtime::snapshot::Migration;

/// Plans going on from a state written by the program `stored` with the
/// program `now` (compiled as `compiled`), `in_flight(w)` being the
/// journeys in flight in the stored program's workflow `w`.
///
/// Accepted when every workflow with journeys in flight is unchanged (the
/// same fingerprint) and every stored contact fits the contact block (a
/// new field optional or defaulted, a field's type the same; a removed
/// field's values are dropped); journeys in flight must also have been
/// compiled by this instruction set. Refused otherwise, naming each
/// problem.
pub fn plan(
    stored: &ProgramRecord,
    now: &ProgramRecord,
    compiled: &Compiled,
    in_flight: impl Fn(usize) -> usize,
) -> Result<Migration, StateError> {
    let journeys: usize = (0..stored.workflows.len()).map(&in_flight).sum();
    if stored.instruction_set != INSTRUCTION_SET && journeys > 0 {
        return Err(StateError::InstructionSet {
            stored: stored.instruction_set,
            current: INSTRUCTION_SET,
            journeys,
        });
    }
    let mut problems = Vec::new();

    // Contact fields, by name.
    let name = |f: &str| f.split_once(": ").map_or(f, |(n, _)| n).to_string();
    let mut field_map = Vec::new();
    for (i, f) in now.fields.iter().enumerate() {
        let old = stored.fields.iter().position(|o| name(o) == name(f));
        let required = compiled
            .schema
            .fields
            .get(i)
            .is_some_and(|f| f.is_required());
        match old {
            Some(o) if stored.fields[o] != *f => problems.push(format!(
                "field `{}` is now `{f}`; the stored contacts' values do not fit it",
                stored.fields[o]
            )),
            None if required => problems.push(format!(
                "new field `{f}` is required (neither optional nor defaulted); the stored contacts have no value for it"
            )),
            _ => {}
        }
        field_map.push(old);
    }

    // Workflows, by name: those with journeys in flight unchanged.
    for (i, (wname, print)) in stored.workflows.iter().enumerate() {
        let n = in_flight(i);
        if n == 0 {
            continue;
        }
        match now.workflows.iter().find(|(w, _)| w == wname) {
            Some((_, p)) if p == print => {}
            Some(_) => problems.push(format!(
                "workflow `{wname}` changed, with {n} journeys in flight"
            )),
            None => problems.push(format!(
                "workflow `{wname}` was removed or renamed, with {n} journeys in flight"
            )),
        }
    }
    if !problems.is_empty() {
        return Err(StateError::ProgramRefused(problems));
    }
    let old_of = |w: &str| stored.workflows.iter().position(|(n, _)| n == w);
    let workflow_map: Vec<Option<usize>> = now.workflows.iter().map(|(w, _)| old_of(w)).collect();

    // Events and their fields, by name.
    let event_map = stored
        .events
        .iter()
        .map(|e| now.events.iter().position(|n| n == e).map(|n| n as u16))
        .collect();
    let event_field_map = now
        .events
        .iter()
        .zip(&now.event_fields)
        .map(|(e, fs)| {
            let old = stored
                .events
                .iter()
                .position(|o| o == e)
                .and_then(|o| stored.event_fields.get(o));
            fs.iter()
                .map(|f| old.and_then(|old| old.iter().position(|o| o == f)))
                .collect()
        })
        .collect();

    // Tallies by their compiled form; trigger bits by workflow.
    let tally_map = now
        .tallies
        .iter()
        .map(|t| stored.tallies.iter().position(|o| o == t))
        .collect();
    let bit_map = |kind: &str| -> Vec<Option<u32>> {
        let bit = |t: &str| {
            t.strip_prefix(kind)
                .and_then(|b| b.trim().parse::<u32>().ok())
        };
        let mut map = Vec::new();
        for (i, (w, print)) in now.workflows.iter().enumerate() {
            let Some(new) = now.triggers.get(i).and_then(|t| bit(t)) else {
                continue;
            };
            // An attribute condition's last value is kept only for an
            // unchanged workflow; a pending inactivity period for any
            // workflow of the same name.
            let old = old_of(w).filter(|&o| kind != "condition" || stored.workflows[o].1 == *print);
            let old = old
                .and_then(|o| stored.triggers.get(o))
                .and_then(|t| bit(t));
            if map.len() <= new as usize {
                map.resize(new as usize + 1, None);
            }
            map[new as usize] = old;
        }
        map
    };

    // Funnel counts by stage name and split arm; a state from before
    // funnels were recorded keeps an unchanged workflow's counts as they
    // are.
    let now_funnels = now.funnels.as_deref().unwrap_or(&[]);
    let funnel_maps = now
        .workflows
        .iter()
        .enumerate()
        .map(|(i, (w, print))| {
            let o = old_of(w)?;
            let new = now_funnels.get(i)?;
            match &stored.funnels {
                Some(old) => Some(new.map_from(old.get(o)?)),
                None if stored.workflows[o].1 == *print => Some(new.map_from(new)),
                None => None,
            }
        })
        .collect();
    Ok(Migration {
        fields: field_map,
        defaults: compiled.defaults.clone(),
        workflows: workflow_map,
        funnels: funnel_maps,
        events: event_map,
        event_fields: event_field_map,
        tallies: tally_map,
        condition_bits: bit_map("condition"),
        inactive_bits: bit_map("inactive"),
    })
}
