//! The semantic difference of two programs (LANGUAGE.md section 13): per
//! workflow, the triggers, waits, conditions and actions added, removed or
//! changed, in the language's words (as `nurture fmt` writes them, so
//! comments and layout are no change), with `file:line` on both sides;
//! and what the change does to the journeys in flight.

use crate::ast::{Program, Stmt, StmtKind, Workflow};
use crate::runtime::state::{self, Fate, ProgramRecord, Standing};
use crate::runtime::Compiled;
use crate::source::{SourceMap, Span};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// One side of a diff: a program that checked, compiled, and its record.
pub struct Side {
    pub program: Program,
    pub sources: SourceMap,
    pub compiled: Compiled,
    pub record: ProgramRecord,
}

impl Side {
    /// `file:line` of `span`, the file by its own name (as a state's
    /// places are).
    fn place(&self, span: Span) -> String {
        let f = self.sources.file(span.file);
        let name = std::path::Path::new(&f.name)
            .file_name()
            .map_or(f.name.clone(), |n| n.to_string_lossy().into_owned());
        format!("{name}:{}", f.line_col(span.start as usize).0)
    }

    fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.program.workflows().find(|w| w.name.name == name)
    }
}

/// A workflow's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Added,
    Removed,
    Changed,
    Unchanged,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Changed => "changed",
            Status::Unchanged => "unchanged",
        }
    }
}

/// One line of a workflow that differs.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// `trigger`, `goal`, `exit when`, `reenter`, `on change`, `wait`,
    /// `condition`, `split`, `stage` or `action`.
    pub kind: &'static str,
    /// The old and the new line (the formatter's words).
    pub old_text: Option<String>,
    pub new_text: Option<String>,
    /// Where the line is, when it is not at the workflow's top level
    /// (`the timeout of \`wait for ...\``).
    pub within: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl Change {
    /// In words: `added \`send email "hi"\``, `\`wait 5d\` became \`wait 4d\``.
    pub fn text(&self) -> String {
        let what = match (&self.old_text, &self.new_text) {
            (None, Some(n)) => format!("added `{n}`"),
            (Some(o), None) => format!("removed `{o}`"),
            (Some(o), Some(n)) => format!("`{o}` became `{n}`"),
            (None, None) => String::new(),
        };
        match &self.within {
            Some(w) => format!("{what} (in {w})"),
            None => what,
        }
    }
}

/// The journeys standing at one wait, and their fate.
#[derive(Clone, Debug, PartialEq)]
pub struct InFlight {
    pub wait: Option<String>,
    pub text: String,
    pub place: String,
    pub line: u32,
    pub journeys: usize,
    pub fate: Fate,
    /// Whether the workflow is gone from the new program.
    pub removed: bool,
    /// The wait they move to: its name, text and new `file:line`.
    pub to: Option<(Option<String>, String, String)>,
}

#[derive(Clone, Debug)]
pub struct WorkflowDiff {
    pub name: String,
    pub status: Status,
    pub changes: Vec<Change>,
    pub in_flight: Vec<InFlight>,
}

/// The whole difference.
#[derive(Clone, Debug)]
pub struct Diff {
    pub accepted: bool,
    pub workflows: Vec<WorkflowDiff>,
    /// Why the change would be refused.
    pub problems: Vec<String>,
    /// Whether the journeys were counted from a state (else every wait of
    /// a changed workflow counts as one where journeys may stand).
    pub with_state: bool,
}

/// The difference from `old` to `new`; with `state`, the journeys in
/// flight of a state written by `old` and what becomes of them.
pub fn diff(old: &Side, new: &Side, state: Option<&Standing>) -> Diff {
    let mut workflows = Vec::new();
    let mut names: Vec<String> = old
        .program
        .workflows()
        .map(|w| w.name.name.clone())
        .collect();
    for w in new.program.workflows() {
        if !names.contains(&w.name.name) {
            names.push(w.name.name.clone());
        }
    }
    for name in &names {
        let (o, n) = (old.workflow(name), new.workflow(name));
        let changes = match (o, n) {
            (Some(o), Some(n)) => workflow_changes(old, o, new, n),
            _ => Vec::new(),
        };
        let status = match (o, n) {
            (None, _) => Status::Added,
            (_, None) => Status::Removed,
            _ if changes.is_empty() => Status::Unchanged,
            _ => Status::Changed,
        };
        workflows.push(WorkflowDiff {
            name: name.clone(),
            status,
            changes,
            in_flight: Vec::new(),
        });
    }

    // The journeys: those of a state, or, without one, none at every wait
    // of every changed or removed workflow (what would happen to journeys
    // there).
    let standing = match state {
        Some(s) => s.clone(),
        None => {
            let mut s = Standing::new();
            for (w, (name, print)) in old.record.workflows.iter().enumerate() {
                let same = new
                    .record
                    .workflows
                    .iter()
                    .any(|(n, p)| n == name && p == print);
                if !same {
                    for wait in old.record.waits_of(w) {
                        s.insert((w as u16, wait.stands), 0);
                    }
                }
            }
            s
        }
    };
    let fates = state::fates(&old.record, &new.record, &standing);
    let mut problems = match state {
        Some(s) => match state::plan(&old.record, &new.record, &new.compiled, s) {
            Ok(_) => Vec::new(),
            Err(state::StateError::ProgramRefused(p)) => p,
            Err(e) => vec![e.to_string()],
        },
        None => state::refusals(&fates)
            .into_iter()
            .map(|r| r.replace("0 journeys at", "journeys at"))
            .collect(),
    };
    if state.is_none() {
        // Without a state, `finish` cannot be done by this release either.
        for f in fates.iter().filter(|f| f.fate == Fate::Finish) {
            problems.push(format!(
                "workflow `{}` says `on change finish`, which this release cannot do yet: journeys at `{}` ({}) would have to finish in the old version",
                f.workflow, f.text, f.place
            ));
        }
    }
    for f in fates {
        let Some(wd) = workflows.iter_mut().find(|w| w.name == f.workflow) else {
            continue;
        };
        let new_waits = f
            .new_workflow
            .map_or(&[][..], |n| new.record.waits_of(n as usize));
        let to = match &f.fate {
            Fate::Moved { to, .. } => new_waits
                .get(*to)
                .map(|w| (w.name.clone(), w.text.clone(), w.place.clone())),
            Fate::Stay => {
                // The same place in an unchanged workflow.
                new_waits
                    .iter()
                    .find(|w| w.stands == f.stands)
                    .map(|w| (w.name.clone(), w.text.clone(), w.place.clone()))
            }
            _ => None,
        };
        let line = f
            .place
            .rsplit_once(':')
            .and_then(|(_, l)| l.parse().ok())
            .unwrap_or(0);
        wd.in_flight.push(InFlight {
            wait: f.wait.clone(),
            text: f.text.clone(),
            place: f.place.clone(),
            line,
            journeys: f.journeys,
            fate: f.fate.clone(),
            removed: f.new_workflow.is_none(),
            to,
        });
    }
    Diff {
        accepted: problems.is_empty(),
        workflows,
        problems,
        with_state: state.is_some(),
    }
}

/// A line of a workflow's body: its kind, text, span, and the block it is
/// in (by position, and in words).
#[derive(Clone, Debug)]
struct Line {
    kind: &'static str,
    text: String,
    span: Span,
    context: String,
    within: Option<String>,
    /// A wait's name: named waits are matched by name.
    wait: Option<String>,
}

fn kind_of(s: &Stmt) -> &'static str {
    match &s.kind {
        StmtKind::Wait(_) | StmtKind::WaitFor { .. } => "wait",
        StmtKind::If { .. } => "condition",
        StmtKind::Split { .. } => "split",
        StmtKind::Stage(_) => "stage",
        _ => "action",
    }
}

/// The body's lines in source order, each with the path of blocks it is
/// in.
fn lines(stmts: &[Stmt], context: &str, within: Option<&str>, out: &mut Vec<Line>) {
    for s in stmts {
        let head = crate::fmt::stmt_head(s);
        out.push(Line {
            kind: kind_of(s),
            text: head.clone(),
            span: s.span,
            context: context.to_string(),
            within: within.map(str::to_string),
            wait: s.name.as_ref().map(|n| n.name.clone()),
        });
        // A block is known by its statement (a wait by its name), not by
        // its position: a line added above it moves nothing inside it.
        let here = match &s.name {
            Some(n) => format!("{context}/as {}", n.name),
            None => format!("{context}/{head}"),
        };
        match &s.kind {
            StmtKind::WaitFor {
                received, timeout, ..
            } => {
                if let Some(b) = received {
                    let w = format!("the block of `{head}`");
                    lines(&b.stmts, &format!("{here}/received"), Some(&w), out);
                }
                if let Some(b) = timeout {
                    let w = format!("the timeout of `{head}`");
                    lines(&b.stmts, &format!("{here}/timeout"), Some(&w), out);
                }
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                for (k, (cond, b)) in branches.iter().enumerate() {
                    let branch = format!("if {}", crate::pretty::expr(cond));
                    if k > 0 {
                        out.push(Line {
                            kind: "condition",
                            text: format!("else {branch}"),
                            span: cond.span,
                            context: context.to_string(),
                            within: within.map(str::to_string),
                            wait: None,
                        });
                    }
                    let w = format!("`{branch}`");
                    lines(&b.stmts, &format!("{here}/{k}"), Some(&w), out);
                }
                if let Some(b) = otherwise {
                    out.push(Line {
                        kind: "condition",
                        text: "else".to_string(),
                        span: b.span,
                        context: context.to_string(),
                        within: within.map(str::to_string),
                        wait: None,
                    });
                    let w = format!("the `else` of `{head}`");
                    lines(&b.stmts, &format!("{here}/else"), Some(&w), out);
                }
            }
            StmtKind::Split { arms, .. } => {
                for (k, arm) in arms.iter().enumerate() {
                    let label = arm
                        .label
                        .as_ref()
                        .map(|l| format!(" as {}", crate::pretty::string(&l.value)))
                        .unwrap_or_default();
                    let text = format!("{}%{label}", arm.percent);
                    out.push(Line {
                        kind: "split",
                        text: text.clone(),
                        span: arm.percent_span,
                        context: format!("{here}/arms"),
                        within: Some(format!("`{head}`")),
                        wait: None,
                    });
                    let w = format!("the `{text}` arm of `{head}`");
                    lines(&arm.body.stmts, &format!("{here}/{k}"), Some(&w), out);
                }
            }
            _ => {}
        }
    }
}

fn workflow_changes(old: &Side, o: &Workflow, new: &Side, n: &Workflow) -> Vec<Change> {
    let mut out = Vec::new();
    // Header lines, by kind.
    let (oh, nh) = (crate::fmt::headers(o), crate::fmt::headers(n));
    for kind in ["trigger", "goal", "exit when", "reenter", "on change"] {
        let a = oh.iter().find(|h| h.0 == kind);
        let b = nh.iter().find(|h| h.0 == kind);
        if a.map(|h| &h.1) != b.map(|h| &h.1) {
            out.push(Change {
                kind,
                old_text: a.map(|h| h.1.clone()),
                new_text: b.map(|h| h.1.clone()),
                within: None,
                old: a.map(|h| old.place(h.2)),
                new: b.map(|h| new.place(h.2)),
            });
        }
    }
    // The body, line by line: the longest common subsequence of (block,
    // text) is unchanged; in each stretch between, a removed and an added
    // line of the same wait name, or else of the same kind and block, are
    // one line changed.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    lines(&o.body, "", None, &mut a);
    lines(&n.body, "", None, &mut b);
    let key = |l: &Line| (l.context.clone(), l.text.clone());
    let (na, nb) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; nb + 1]; na + 1];
    for i in (0..na).rev() {
        for j in (0..nb).rev() {
            lcs[i][j] = if key(&a[i]) == key(&b[j]) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut removed: Vec<&Line> = Vec::new();
    let mut added: Vec<&Line> = Vec::new();
    let flush = |removed: &mut Vec<&Line>, added: &mut Vec<&Line>, out: &mut Vec<Change>| {
        let mut pairs: Vec<(Option<&Line>, Option<&Line>)> = Vec::new();
        let mut taken = vec![false; added.len()];
        for r in removed.iter() {
            let by_name = r.wait.as_ref().and_then(|name| {
                (0..added.len()).find(|&k| !taken[k] && added[k].wait.as_ref() == Some(name))
            });
            let by_kind = || {
                (0..added.len()).find(|&k| {
                    !taken[k]
                        && added[k].kind == r.kind
                        && added[k].context == r.context
                        && (added[k].wait.is_none() || r.wait.is_none())
                })
            };
            match by_name.or_else(by_kind) {
                Some(k) => {
                    taken[k] = true;
                    pairs.push((Some(r), Some(added[k])));
                }
                None => pairs.push((Some(r), None)),
            }
        }
        for (k, a) in added.iter().enumerate() {
            if !taken[k] {
                pairs.push((None, Some(a)));
            }
        }
        for (r, a) in pairs {
            let any = r.or(a).expect("a side");
            out.push(Change {
                kind: any.kind,
                old_text: r.map(|l| l.text.clone()),
                new_text: a.map(|l| l.text.clone()),
                within: any.within.clone(),
                old: r.map(|l| old.place(l.span)),
                new: a.map(|l| new.place(l.span)),
            });
        }
        removed.clear();
        added.clear();
    };
    while i < na || j < nb {
        if i < na && j < nb && key(&a[i]) == key(&b[j]) {
            flush(&mut removed, &mut added, &mut out);
            i += 1;
            j += 1;
        } else if j < nb && (i == na || lcs[i][j + 1] >= lcs[i + 1][j]) {
            added.push(&b[j]);
            j += 1;
        } else {
            removed.push(&a[i]);
            i += 1;
        }
    }
    flush(&mut removed, &mut added, &mut out);
    out
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

impl Diff {
    /// The difference as `nurture diff --format json` prints it (section
    /// 13): one object.
    pub fn to_json(&self) -> Json {
        let workflows: Vec<Json> = self
            .workflows
            .iter()
            .map(|w| {
                let mut o = json!({
                    "name": w.name,
                    "status": w.status.as_str(),
                    "changes": w.changes.iter().map(|c| json!({
                        "kind": c.kind,
                        "text": c.text(),
                        "old": c.old,
                        "new": c.new,
                    })).collect::<Vec<_>>(),
                });
                if self.with_state {
                    o["in_flight"] = w
                        .in_flight
                        .iter()
                        .map(|f| {
                            json!({
                                "wait": f.wait,
                                "line": f.line,
                                "journeys": f.journeys,
                                "fate": f.fate.word(),
                                "to": f.to.as_ref().and_then(|t| t.0.clone()),
                            })
                        })
                        .collect();
                }
                o
            })
            .collect();
        let mut out = json!({ "accepted": self.accepted, "workflows": workflows });
        if !self.problems.is_empty() {
            out["problems"] = json!(self.problems);
        }
        out
    }

    /// The difference for people: per workflow what changed, with places
    /// on both sides, then the journeys in flight and the verdict.
    pub fn to_human(&self) -> String {
        let mut s = String::new();
        let width = self
            .workflows
            .iter()
            .flat_map(|w| &w.changes)
            .map(|c| c.text().chars().count())
            .max()
            .unwrap_or(0)
            .min(72);
        let mut unchanged = Vec::new();
        for w in &self.workflows {
            if w.status == Status::Unchanged && w.in_flight.iter().all(|f| f.journeys == 0) {
                unchanged.push(format!("`{}`", w.name));
                continue;
            }
            s.push_str(&format!("workflow `{}`: {}\n", w.name, w.status.as_str()));
            for c in &w.changes {
                let mark = match (&c.old_text, &c.new_text) {
                    (None, _) => '+',
                    (_, None) => '-',
                    _ => '~',
                };
                let at = match (&c.old, &c.new) {
                    (Some(o), Some(n)) => format!("{o} -> {n}"),
                    (Some(o), None) => format!("{o} (old)"),
                    (None, Some(n)) => format!("{n} (new)"),
                    (None, None) => String::new(),
                };
                s.push_str(&format!("  {mark} {:<width$}  {at}\n", c.text()));
            }
            let shown: Vec<&InFlight> = w
                .in_flight
                .iter()
                .filter(|f| self.with_state || f.fate != Fate::Stay)
                .collect();
            if !shown.is_empty() {
                s.push_str(if self.with_state {
                    "  journeys in flight:\n"
                } else {
                    "  journeys that would stand at its waits:\n"
                });
            }
            for f in shown {
                let who = if self.with_state {
                    format!("{} at", plural(f.journeys, "journey"))
                } else {
                    "at".to_string()
                };
                let fate = match (&f.fate, &f.to) {
                    (Fate::Stay, _) => "stay where they are".to_string(),
                    (Fate::Moved { .. }, Some((_, text, place))) => {
                        format!("move to `{text}` ({place}), deadline kept")
                    }
                    (Fate::Moved { .. }, None) => "move".to_string(),
                    (Fate::Exited, _) => "exit (`on change exit`)".to_string(),
                    (Fate::Finish, _) => {
                        "finish in the old version (`on change finish`)".to_string()
                    }
                    (Fate::Refused, _) => match &f.wait {
                        _ if f.removed => "cannot go on: the workflow is removed and its old version has no `on change` line".to_string(),
                        Some(name) => format!("cannot move: no wait is named `{name}` in the new version, and there is no `on change` line"),
                        None => "cannot move: the wait has no name, and there is no `on change` line".to_string(),
                    },
                };
                s.push_str(&format!("    {who} `{}` ({}): {fate}\n", f.text, f.place));
            }
        }
        if !unchanged.is_empty() {
            s.push_str(&format!("unchanged: {}\n", unchanged.join(", ")));
        }
        if self.accepted {
            s.push_str(if self.with_state {
                "accepted: the state can go on with the new program\n"
            } else {
                "accepted: the new program can take over whatever journeys are in flight\n"
            });
        } else {
            s.push_str("refused:\n");
            for p in &self.problems {
                s.push_str(&format!("  {p}\n"));
            }
        }
        s
    }
}

/// Which workflows differ between two records (for a state whose program
/// is not the diff's old side): named, or the contact block.
pub fn record_difference(stored: &ProgramRecord, old: &ProgramRecord) -> Vec<String> {
    let mut out = Vec::new();
    let index =
        |r: &ProgramRecord| -> BTreeMap<String, String> { r.workflows.iter().cloned().collect() };
    let (a, b) = (index(stored), index(old));
    for (name, print) in &a {
        match b.get(name) {
            None => out.push(format!(
                "the state's program has workflow `{name}`, OLD has not"
            )),
            Some(p) if p != print => out.push(format!("workflow `{name}` differs")),
            _ => {}
        }
    }
    for name in b.keys() {
        if !a.contains_key(name) {
            out.push(format!(
                "OLD has workflow `{name}`, the state's program has not"
            ));
        }
    }
    if stored.fields != old.fields {
        out.push("the contact block differs".to_string());
    }
    if stored.events != old.events {
        out.push("the events differ".to_string());
    }
    out
}
