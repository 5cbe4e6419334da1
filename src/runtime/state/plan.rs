//! The program change rule (LANGUAGE.md sections 7 and 13): whether a
//! state can go on with a changed program, what becomes of each journey in
//! flight, and how the state's places map to the new program's. One
//! planner for every driver: `nurture run --state`, the REPL, a live
//! service's reload, `nurture diff --state`.

use super::record::{ProgramRecord, WaitRecord};
use super::StateError;
use crate::runtime::program::{Compiled, INSTRUCTION_SET};
use crate::runtime::snapshot::{JourneyMove, Migration, Snapshot};
use std::collections::BTreeMap;

/// The journeys in flight, counted by (workflow, place) in the stored
/// program.
pub type Standing = BTreeMap<(u16, u32), usize>;

/// Counts a snapshot's journeys in flight by where they stand.
pub fn standing(snap: &Snapshot) -> Standing {
    let mut out = Standing::new();
    for j in &snap.journeys {
        *out.entry((j.workflow, j.pc)).or_default() += 1;
    }
    out
}

/// What a program change does to the journeys standing at one place of a
/// stored workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitFate {
    /// The workflow's name, and its index in the stored and the new program.
    pub workflow: String,
    pub old_workflow: u16,
    pub new_workflow: Option<u16>,
    /// The wait's name in the stored program.
    pub wait: Option<String>,
    /// The stored program's `file:line` of the wait (or of the held `send`).
    pub place: String,
    /// The statement (`wait 2d`), as the formatter writes its first line.
    pub text: String,
    /// The place a journey standing there has.
    pub stands: u32,
    pub journeys: usize,
    pub fate: Fate,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Fate {
    /// The workflow is unchanged (but for comments, layout, wait names and
    /// its `on change` line): the journeys stay where they are.
    Stay,
    /// To the new version's wait `to` (its index among the workflow's
    /// waits): the journeys keep their deadlines.
    Moved { to: usize, name: Option<String> },
    /// `on change exit`: the journeys end, outcome `exited`.
    Exited,
    /// `on change finish`: they finish in the version they began in.
    Finish,
    /// No `on change` line: the change is refused.
    Refused,
}

impl Fate {
    /// The word `nurture diff --format json` uses.
    pub fn word(&self) -> &'static str {
        match self {
            Fate::Stay | Fate::Moved { .. } => "moved",
            Fate::Exited => "exited",
            Fate::Finish => "finish",
            Fate::Refused => "refused",
        }
    }
}

/// What becomes of each group of journeys in flight when the program
/// recorded as `stored` is followed by `now` (section 13): in the order of
/// the stored workflows and places.
pub fn fates(stored: &ProgramRecord, now: &ProgramRecord, standing: &Standing) -> Vec<WaitFate> {
    let mut out = Vec::new();
    for (&(w, pc), &journeys) in standing {
        let Some((wname, print)) = stored.workflows.get(w as usize) else {
            continue;
        };
        let new_w = now.workflows.iter().position(|(n, _)| n == wname);
        let old_waits = stored.waits_of(w as usize);
        let old_wait = old_waits.iter().find(|x| x.stands == pc);
        let place = old_wait.map(|x| x.place.clone()).unwrap_or_else(|| {
            stored
                .places
                .get(w as usize)
                .and_then(|p| p.get(pc as usize))
                .cloned()
                .unwrap_or_default()
        });
        let text = old_wait.map_or_else(
            || "send (held by quiet hours)".to_string(),
            |x| x.text.clone(),
        );
        let unchanged = new_w.is_some_and(|n| now.workflows[n].1 == *print);
        let fate = if unchanged {
            Fate::Stay
        } else {
            let new_waits = new_w.map_or(&[][..], |n| now.waits_of(n));
            match old_wait.and_then(|x| moved_to(x, old_waits, new_waits)) {
                Some(to) => Fate::Moved {
                    to,
                    name: new_waits[to].name.clone(),
                },
                None => {
                    // The new version's line decides; a removed workflow's,
                    // the old version's.
                    let line = match new_w {
                        Some(n) => now.on_change_of(n),
                        None => stored.on_change_of(w as usize),
                    };
                    match line {
                        Some("exit") => Fate::Exited,
                        Some("finish") => Fate::Finish,
                        _ => Fate::Refused,
                    }
                }
            }
        };
        out.push(WaitFate {
            workflow: wname.clone(),
            old_workflow: w,
            new_workflow: new_w.map(|n| n as u16),
            wait: old_wait.and_then(|x| x.name.clone()),
            place,
            text,
            stands: pc,
            journeys,
            fate,
        });
    }
    out
}

/// The new version's wait a journey at `old` moves to: the one of the same
/// name; for an unnamed wait, the one new wait that is the same statement
/// given a name the old version did not use, when no other unnamed wait of
/// the old version is that statement.
fn moved_to(old: &WaitRecord, old_waits: &[WaitRecord], new_waits: &[WaitRecord]) -> Option<usize> {
    if let Some(name) = &old.name {
        return new_waits
            .iter()
            .position(|n| n.name.as_deref() == Some(name.as_str()));
    }
    let old_names: Vec<&str> = old_waits.iter().filter_map(|x| x.name.as_deref()).collect();
    let twins = old_waits
        .iter()
        .filter(|x| x.name.is_none() && x.unnamed == old.unnamed)
        .count();
    let mut candidates = new_waits.iter().enumerate().filter(|(_, n)| {
        n.name
            .as_deref()
            .is_some_and(|name| !old_names.contains(&name))
            && n.unnamed == old.unnamed
    });
    match (candidates.next(), candidates.next(), twins) {
        (Some((i, _)), None, 1) => Some(i),
        _ => None,
    }
}

/// The words of a refusal: each workflow whose journeys cannot go on, with
/// each wait by the stored program's `file:line`, its statement and its
/// journey count.
pub fn refusals(fates: &[WaitFate]) -> Vec<String> {
    let mut by_workflow: BTreeMap<(u16, &str), Vec<&WaitFate>> = BTreeMap::new();
    for f in fates.iter().filter(|f| f.fate == Fate::Refused) {
        by_workflow
            .entry((f.old_workflow, f.workflow.as_str()))
            .or_default()
            .push(f);
    }
    by_workflow
        .into_iter()
        .map(|((_, name), waits)| {
            let (how, fix) = if waits[0].new_workflow.is_some() {
                (
                    "changed",
                    "name each such wait with `as NAME` in both versions, or add `on change exit` or `on change finish`",
                )
            } else {
                (
                    "was removed or renamed",
                    "the running version's `on change` line decides: give it `on change exit` first, or keep the workflow until its journeys end",
                )
            };
            let list: Vec<String> = waits
                .iter()
                .map(|f| {
                    format!(
                        "{} at `{}` ({})",
                        plural(f.journeys, "journey"),
                        f.text,
                        f.place
                    )
                })
                .collect();
            format!(
                "workflow `{name}` {how} and has no `on change` line: {} cannot move ({fix})",
                list.join(", ")
            )
        })
        .collect()
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Plans going on from a state written by the program `stored` with the
/// program `now` (compiled as `compiled`), `standing` counting the
/// journeys in flight where they stand.
///
/// Accepted when every journey in flight can go on (its workflow
/// unchanged, or moved to a wait of the same name, or ended or finishing
/// by the workflow's `on change` line) and every stored contact fits the
/// contact block (a new field optional or defaulted, a field's type the
/// same; a removed field's values are dropped); journeys in flight must
/// also have been compiled by this instruction set. Refused otherwise,
/// naming each problem.
pub fn plan(
    stored: &ProgramRecord,
    now: &ProgramRecord,
    compiled: &Compiled,
    standing: &Standing,
) -> Result<Migration, StateError> {
    let journeys: usize = standing.values().sum();
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

    // Journeys in flight, by where they stand.
    let fates = fates(stored, now, standing);
    problems.extend(refusals(&fates));
    let mut moves = BTreeMap::new();
    for f in &fates {
        let to = match &f.fate {
            Fate::Stay => continue,
            Fate::Moved { to, .. } => {
                let Some(wait) = f
                    .new_workflow
                    .and_then(|n| compiled.workflows.get(n as usize))
                    .and_then(|w| w.waits.get(*to))
                else {
                    problems.push(format!(
                        "workflow `{}`: the wait journeys move to is not in the compiled program",
                        f.workflow
                    ));
                    continue;
                };
                JourneyMove::To {
                    pc: wait.stands,
                    waiting_for: wait.event,
                }
            }
            Fate::Exited => JourneyMove::Exit,
            Fate::Finish => {
                problems.push(format!(
                    "workflow `{}` says `on change finish`, which this release cannot do yet: {} at `{}` ({}) would have to finish in the old version; use `on change exit` or name the wait in both versions",
                    f.workflow,
                    plural(f.journeys, "journey"),
                    f.text,
                    f.place
                ));
                continue;
            }
            Fate::Refused => continue,
        };
        moves.insert((f.old_workflow, f.stands), to);
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
        journeys: moves,
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

/// A stored state taken up by a program (LANGUAGE.md sections 7 and 13).
#[derive(Debug)]
pub struct TakenUp {
    /// The state in the new program's places.
    pub snapshot: Snapshot,
    /// The journeys the change ends, in the order they entered: the
    /// driver hands them to [`crate::runtime::Interpreter::program_change_exits`]
    /// before anything else runs.
    pub exits: Vec<crate::runtime::snapshot::ChangeExit>,
    /// Whether any row changed (places renumbered, journeys moved or
    /// ended): the state is then written whole.
    pub rewritten: bool,
}

/// [`plan`], applied: the state `snap`, written by the program `stored`,
/// as the program `now` goes on from it.
pub fn take_up(
    stored: &ProgramRecord,
    now: &ProgramRecord,
    compiled: &Compiled,
    snap: Snapshot,
) -> Result<TakenUp, StateError> {
    let migration = plan(stored, now, compiled, &standing(&snap))?;
    if stored.same_places(now) && !migration.moves_journeys() {
        return Ok(TakenUp {
            snapshot: snap,
            exits: Vec::new(),
            rewritten: false,
        });
    }
    let names: Vec<String> = stored.workflows.iter().map(|(n, _)| n.clone()).collect();
    let (snapshot, exits) = snap.migrate(&migration, &names);
    Ok(TakenUp {
        snapshot,
        exits,
        rewritten: true,
    })
}
