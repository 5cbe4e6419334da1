//! `trigger-cycle`: attribute triggers that set one another off.

use crate::ast::{
    AssignOp, BinaryOp, Expr, ExprKind, Ident, PathRoot, StmtKind, TriggerKind, Workflow,
};
use crate::lint::walk::{contact_reads, stmts, Known};
use crate::lint::{Ctx, Level, Rule};

pub const RULE: Rule = Rule {
    name: "trigger-cycle",
    code: "nurture::lint::trigger-cycle",
    default: Level::Warn,
    summary: "attribute-triggered workflows that can start one another through `set` in a cycle",
    why: "A cycle can fire the same workflows again and again in one instant: duplicate messages, and at run time the cascade bound fails the journey.",
    bad: "workflow up {\n  when contact.score > 10\n  set contact.plan = \"paid\"\n}\n\nworkflow down {\n  when contact.plan == \"paid\"\n  set contact.score += 5\n}\n",
    good: "workflow up {\n  when contact.score > 10\n  set contact.plan = \"paid\"\n}\n\nworkflow down {\n  when contact.plan == \"paid\"\n  tag \"paying\"\n}\n",
    check,
};

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let wfs: Vec<&Workflow> = ctx.program.workflows().collect();
    // edges[a] = workflows whose trigger condition reads a field `a` writes,
    // with a value that can make the condition true.
    let conditions: Vec<Option<&Expr>> = wfs
        .iter()
        .map(|w| match w.trigger.as_ref().map(|t| &t.kind) {
            Some(TriggerKind::Condition(c)) => Some(c),
            _ => None,
        })
        .collect();
    let reads: Vec<Vec<&str>> = conditions
        .iter()
        .map(|c| c.map(contact_reads).unwrap_or_default())
        .collect();
    let edges: Vec<Vec<(usize, String)>> = wfs
        .iter()
        .enumerate()
        .map(|(a, w)| {
            let writes = writes_with_values(w);
            let held = still_true(conditions[a], w, &writes);
            (0..wfs.len())
                // A workflow that re-arms its own trigger is caught by `reenter`
                // and the cascade bound; a cycle here means two or more.
                .filter(|b| !std::ptr::eq(wfs[*b], *w))
                .filter_map(|b| {
                    let cond = conditions[b]?;
                    writes
                        .iter()
                        .find(|(f, v)| reads[b].contains(f) && may_start(&held, f, *v, cond))
                        .map(|(f, _)| (b, f.to_string()))
                })
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    let mut reported: Vec<Vec<usize>> = Vec::new();
    for start in 0..wfs.len() {
        if let Some(cycle) = find_cycle(start, &edges) {
            let mut key = cycle.clone();
            key.sort();
            if reported.contains(&key) {
                continue;
            }
            reported.push(key);
            let steps: Vec<String> = cycle
                .iter()
                .zip(cycle.iter().cycle().skip(1))
                .map(|(a, b)| {
                    let field = edges[*a]
                        .iter()
                        .find(|(t, _)| t == b)
                        .map_or("", |(_, f)| f.as_str());
                    format!(
                        "`{}` sets `contact.{field}`, which starts `{}`",
                        wfs[*a].name.name, wfs[*b].name.name
                    )
                })
                .collect();
            let names: Vec<String> = cycle
                .iter()
                .map(|i| format!("`{}`", wfs[*i].name.name))
                .collect();
            let names = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
                _ => names.join(""),
            };
            let mut d = RULE
                .finding(
                    wfs[cycle[0]].name.span,
                    format!("workflows {names} can set one another off in a cycle"),
                )
                .with_label("part of a trigger cycle")
                .with_help(steps.join("; "));
            for i in &cycle[1..] {
                if wfs[*i].name.span.file == wfs[cycle[0]].name.span.file {
                    d = d.with_related(wfs[*i].name.span, "also in the cycle");
                }
            }
            out.push(d);
        }
    }
    out
}

/// The contact fields a workflow writes, with the value when it is a
/// literal assigned (`set contact.plan = "paid"`).
fn writes_with_values(wf: &Workflow) -> Vec<(&str, Option<&Expr>)> {
    let literal = |e: &Expr| {
        matches!(
            e.kind,
            ExprKind::Str(_) | ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_)
        )
    };
    let mut out = Vec::new();
    stmts(&wf.body, &mut |s| match &s.kind {
        StmtKind::Set {
            field,
            op: AssignOp::Assign,
            value,
        } if literal(value) => out.push((field.name.as_str(), Some(value))),
        StmtKind::Set { field, .. } => out.push((field.name.as_str(), None)),
        StmtKind::Tag(_) | StmtKind::Untag(_) => out.push(("tags", None)),
        _ => {}
    });
    out
}

/// What is known while a workflow started by the attribute condition `cond`
/// runs its `set`s: the parts of `cond` (its `and`ed conjuncts) that read
/// no field the workflow writes, when no wait comes first (attributes can
/// change while a journey waits).
fn still_true(cond: Option<&Expr>, wf: &Workflow, writes: &[(&str, Option<&Expr>)]) -> Known {
    let mut known = Known::default();
    let Some(cond) = cond else { return known };
    let mut waits = false;
    stmts(&wf.body, &mut |s| {
        if matches!(s.kind, StmtKind::Wait(_) | StmtKind::WaitFor { .. }) {
            waits = true;
        }
    });
    if waits {
        return known;
    }
    fn conjuncts<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
        match &e.kind {
            ExprKind::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
            } => {
                conjuncts(lhs, out);
                conjuncts(rhs, out);
            }
            _ => out.push(e),
        }
    }
    let mut parts = Vec::new();
    conjuncts(cond, &mut parts);
    for part in parts {
        let reads = contact_reads(part);
        if !reads.iter().any(|r| writes.iter().any(|(w, _)| w == r)) {
            known = known.assume(part, true);
        }
    }
    known
}

/// Whether setting `contact.field` to `value` (unknown: `None`), with what
/// `held` knows, can make `cond` true: not when they decide it false.
fn may_start(held: &Known, field: &str, value: Option<&Expr>, cond: &Expr) -> bool {
    let Some(value) = value else {
        return held.eval(cond) != Some(false);
    };
    let path = Expr {
        kind: ExprKind::Path {
            root: PathRoot::Contact,
            field: Ident {
                name: field.to_string(),
                span: value.span,
            },
        },
        span: value.span,
    };
    let set = Expr {
        kind: ExprKind::Binary {
            op: BinaryOp::Eq,
            lhs: Box::new(path),
            rhs: Box::new(value.clone()),
        },
        span: value.span,
    };
    held.assume(&set, true).eval(cond) != Some(false)
}

/// A cycle through `start`, as the list of workflows from `start`.
fn find_cycle(start: usize, edges: &[Vec<(usize, String)>]) -> Option<Vec<usize>> {
    let mut stack = vec![(start, vec![start])];
    let mut seen = vec![false; edges.len()];
    while let Some((node, path)) = stack.pop() {
        for (next, _) in &edges[node] {
            if *next == start {
                return Some(path);
            }
            if !seen[*next] {
                seen[*next] = true;
                let mut p = path.clone();
                p.push(*next);
                stack.push((*next, p));
            }
        }
    }
    None
}
