//! `trigger-cycle`: attribute triggers that set one another off.

use crate::ast::{TriggerKind, Workflow};
use crate::lint::walk::{contact_reads, contact_writes};
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
    // edges[a] = workflows whose trigger condition reads a field `a` writes.
    let reads: Vec<Vec<&str>> = wfs
        .iter()
        .map(|w| match w.trigger.as_ref().map(|t| &t.kind) {
            Some(TriggerKind::Condition(c)) => contact_reads(c),
            _ => Vec::new(),
        })
        .collect();
    let edges: Vec<Vec<(usize, String)>> = wfs
        .iter()
        .map(|w| {
            let writes = contact_writes(w);
            (0..wfs.len())
                // A workflow that re-arms its own trigger is caught by `reenter`
                // and the cascade bound; a cycle here means two or more.
                .filter(|b| !std::ptr::eq(wfs[*b], *w))
                .filter_map(|b| {
                    writes
                        .iter()
                        .find(|(f, _)| reads[b].contains(f))
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
