//! What a state records of the program that wrote it: for the program
//! change rule, and for `nurture inspect`, which reads a state without the
//! program. Serde-typed: a record missing a part, or with a part of the
//! wrong shape, is refused, never read as empty.

use super::super::program::{CTrigger, Compiled, FunnelShape};
use serde::{Deserialize, Serialize};

/// The layout of the record this release writes. 1: the layout before it
/// was versioned (no `version` key); 2: `version`, `instruction_set` and
/// `funnels`; 3: `waits` and `on_change`.
pub const RECORD_VERSION: u32 = 3;

fn first() -> u32 {
    1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgramRecord {
    #[serde(default = "first")]
    pub version: u32,
    /// The compiler's instruction set ([`super::super::program::INSTRUCTION_SET`]).
    #[serde(default = "first")]
    pub instruction_set: u32,
    /// Each workflow's name and fingerprint (its canonical text's hash), in
    /// declaration order.
    pub workflows: Vec<(String, String)>,
    /// Each contact field, `name: type`, in slot order.
    pub fields: Vec<String>,
    /// Event type names, by id.
    pub events: Vec<String>,
    /// Per event type, its fields, `name: type`.
    pub event_fields: Vec<Vec<String>>,
    /// The tallied history predicates, in their compiled form.
    pub tallies: Vec<String>,
    /// Per workflow, its trigger's per-contact bit: `condition N`,
    /// `inactive N`, or empty.
    pub triggers: Vec<String>,
    /// Per workflow, the `file:line` of each instruction.
    pub places: Vec<Vec<String>>,
    /// Per workflow, what its funnel counts, by name (absent before
    /// version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funnels: Option<Vec<FunnelRecord>>,
    /// Per workflow, its waits in source order (absent before version 3:
    /// every journey then counts as standing at an unnamed wait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits: Option<Vec<Vec<WaitRecord>>>,
    /// Per workflow, its `on change` line: `exit`, `finish` or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_change: Option<Vec<Option<String>>>,
}

/// A wait as a state records it, for moving journeys to a changed
/// program (LANGUAGE.md section 13).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaitRecord {
    /// `as NAME`.
    pub name: Option<String>,
    /// The place (`pc`) of a journey standing at it.
    pub stands: u32,
    /// `file:line`.
    pub place: String,
    /// The statement as the formatter writes its first line (`wait 2d as
    /// cool`).
    pub text: String,
    /// The same without its name: what tells an unnamed wait given a name.
    pub unnamed: String,
}

/// A workflow's funnel as a state records it: its stages by name, and its
/// splits by key (`"name"` for a named split, `split N` for the N-th split
/// otherwise) with their arms' labels (`A`, `B`, ... when unlabelled).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunnelRecord {
    pub stages: Vec<String>,
    pub splits: Vec<(String, Vec<String>)>,
}

impl FunnelRecord {
    pub fn of(shape: &FunnelShape) -> FunnelRecord {
        FunnelRecord {
            stages: shape.stages.iter().map(|s| s.to_string()).collect(),
            splits: shape
                .splits
                .iter()
                .enumerate()
                .map(|(i, sp)| {
                    let key = match &sp.name {
                        Some(n) => format!("\"{n}\""),
                        None => format!("split {i}"),
                    };
                    let arms = (0..sp.labels.len()).map(|a| sp.arm_label(a)).collect();
                    (key, arms)
                })
                .collect(),
        }
    }

    /// Where each of this funnel's counts was in `old`'s: per stage, per
    /// split arm (in slot order).
    pub fn map_from(&self, old: &FunnelRecord) -> super::super::snapshot::FunnelMap {
        let stages = self
            .stages
            .iter()
            .map(|s| old.stages.iter().position(|o| o == s))
            .collect();
        let mut old_slots = std::collections::HashMap::new();
        let mut slot = 0;
        for (key, arms) in &old.splits {
            for arm in arms {
                old_slots.insert((key.as_str(), arm.as_str()), slot);
                slot += 1;
            }
        }
        let arms = self
            .splits
            .iter()
            .flat_map(|(key, arms)| arms.iter().map(move |a| (key, a)))
            .map(|(key, arm)| old_slots.get(&(key.as_str(), arm.as_str())).copied())
            .collect();
        super::super::snapshot::FunnelMap { stages, arms }
    }
}

impl ProgramRecord {
    /// The record of `compiled`, given what only the front end knows: each
    /// workflow's name and fingerprint, and each instruction's `file:line`.
    pub fn new(
        compiled: &Compiled,
        workflows: Vec<(String, String)>,
        places: Vec<Vec<String>>,
        waits: Vec<Vec<WaitRecord>>,
    ) -> ProgramRecord {
        let schema = &compiled.schema;
        let mut inactive = 0;
        ProgramRecord {
            version: RECORD_VERSION,
            instruction_set: super::super::program::INSTRUCTION_SET,
            workflows,
            fields: schema
                .fields
                .iter()
                .map(|f| format!("{}: {}", f.name, f.ty))
                .collect(),
            events: schema.events.iter().map(|e| e.name.clone()).collect(),
            event_fields: schema
                .events
                .iter()
                .map(|e| e.fields.iter().map(|(n, t)| format!("{n}: {t}")).collect())
                .collect(),
            tallies: compiled.tallies.iter().map(|t| format!("{t:?}")).collect(),
            triggers: compiled
                .workflows
                .iter()
                .map(|w| match &w.trigger {
                    CTrigger::Condition { bit, .. } => format!("condition {bit}"),
                    CTrigger::Inactive(_) => {
                        inactive += 1;
                        format!("inactive {}", inactive - 1)
                    }
                    _ => String::new(),
                })
                .collect(),
            places,
            funnels: Some(
                compiled
                    .workflows
                    .iter()
                    .map(|w| FunnelRecord::of(&w.funnel))
                    .collect(),
            ),
            waits: Some(waits),
            on_change: Some(
                compiled
                    .workflows
                    .iter()
                    .map(|w| w.on_change.map(|c| c.as_str().to_string()))
                    .collect(),
            ),
        }
    }

    /// Reads a stored record: every part must be there, of its shape, and
    /// the parts must agree with each other (a workflow's trigger and
    /// places for each workflow, fields for each event).
    pub fn parse(text: &str) -> Result<ProgramRecord, super::StateError> {
        let r: ProgramRecord =
            serde_json::from_str(text).map_err(|e| super::StateError::BadRecord(e.to_string()))?;
        if r.version > RECORD_VERSION {
            return Err(super::StateError::NewerRecord {
                found: r.version,
                reads: RECORD_VERSION,
            });
        }
        let bad = |what: String| Err(super::StateError::BadRecord(what));
        let n = r.workflows.len();
        if r.triggers.len() != n || r.places.len() != n {
            return bad(format!(
                "{n} workflows, but {} triggers and {} lists of places",
                r.triggers.len(),
                r.places.len()
            ));
        }
        if let Some(f) = &r.funnels {
            if f.len() != n {
                return bad(format!("{n} workflows, but {} funnels", f.len()));
            }
        }
        if let Some(w) = &r.waits {
            if w.len() != n {
                return bad(format!("{n} workflows, but {} lists of waits", w.len()));
            }
        }
        if let Some(c) = &r.on_change {
            if c.len() != n {
                return bad(format!("{n} workflows, but {} `on change` lines", c.len()));
            }
            if let Some(bad_line) = c.iter().flatten().find(|c| *c != "exit" && *c != "finish") {
                return bad(format!(
                    "`on change {bad_line}` is neither `exit` nor `finish`"
                ));
            }
        }
        if r.event_fields.len() != r.events.len() {
            return bad(format!(
                "{} events, but {} lists of event fields",
                r.events.len(),
                r.event_fields.len()
            ));
        }
        Ok(r)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether `now` keeps every place a state numbers (workflows, fields,
    /// events and their fields, tallies, trigger bits, funnel counts), so
    /// the state needs no migration.
    pub fn same_places(&self, now: &ProgramRecord) -> bool {
        let names = |r: &ProgramRecord| {
            r.workflows
                .iter()
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>()
        };
        names(self) == names(now)
            && self.fields == now.fields
            && self.events == now.events
            && self.event_fields == now.event_fields
            && self.tallies == now.tallies
            && self.triggers == now.triggers
            && self.funnels == now.funnels
    }

    /// The waits of workflow `w` (none recorded before version 3).
    pub fn waits_of(&self, w: usize) -> &[WaitRecord] {
        self.waits
            .as_ref()
            .and_then(|ws| ws.get(w))
            .map_or(&[], |v| v.as_slice())
    }

    /// Workflow `w`'s `on change` line.
    pub fn on_change_of(&self, w: usize) -> Option<&str> {
        self.on_change
            .as_ref()
            .and_then(|c| c.get(w))
            .and_then(|c| c.as_deref())
    }

    /// A fingerprint of the whole program: the hash of its workflows'.
    pub fn fingerprint(&self) -> String {
        let text = serde_json::to_string(&self.workflows).unwrap_or_default();
        blake3::hash(text.as_bytes()).to_hex().to_string()
    }
}
