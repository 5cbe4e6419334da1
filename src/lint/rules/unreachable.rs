//! `unreachable`: statements no contact can reach.

use crate::ast::{CriterionKind, Stmt, StmtKind, Workflow};
use crate::lint::walk::{entry_known, flow, stmt_always_exits, stmts};
use crate::lint::{Ctx, Level, Rule};

pub const RULE: Rule = Rule {
    name: "unreachable",
    code: "nurture::lint::unreachable",
    default: Level::Warn,
    summary: "statements after `exit`, branches whose condition is known false from the entry filter or an enclosing condition, split arms of 0%, and a `wait for` of the event that ends the journey",
    why: "Code no contact can reach is a message nobody receives: usually a condition written the wrong way round or a step placed after the journey ends.",
    bad: "workflow upgrade {\n  when purchase where contact.plan == \"paid\" and contact.opted_in\n  if contact.plan == \"free\" {\n    send email \"upgrade\"\n  }\n}\n",
    good: "workflow upgrade {\n  when purchase where contact.plan == \"free\" and contact.opted_in\n  if contact.score > 10 {\n    send email \"upgrade\"\n  }\n}\n",
    check,
};

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for wf in ctx.program.workflows() {
        after_exit(&wf.body, &mut out);
        ended_first(wf, &mut out);
        stmts(&wf.body, &mut |s| {
            if let StmtKind::Split { arms, .. } = &s.kind {
                for arm in arms.iter().filter(|a| a.percent == 0) {
                    out.push(
                        RULE.finding(arm.percent_span, "this arm of the split never runs")
                            .with_label("a share of 0%")
                            .with_help("remove the arm, or give it a share"),
                    );
                }
            }
        });
        stmts(&wf.body, &mut |s| {
            for b in crate::lint::walk::blocks(s) {
                after_exit(&b.stmts, &mut out);
            }
        });
        flow(&wf.body, entry_known(wf), true, &mut |s, known| {
            let StmtKind::If {
                branches,
                otherwise,
            } = &s.kind
            else {
                return;
            };
            let mut rest = known.clone();
            let mut decided = false;
            for (cond, _) in branches {
                if decided {
                    out.push(
                        RULE.finding(cond.span, "this branch is never reached")
                            .with_label("an earlier condition is always true here"),
                    );
                    continue;
                }
                match rest.eval(cond) {
                    Some(false) => out.push(
                        RULE.finding(cond.span, "this condition is always false here")
                            .with_label(
                                "known false from the entry filter or an enclosing condition",
                            )
                            .with_help("remove the branch, or fix the condition"),
                    ),
                    Some(true) => decided = true,
                    None => {}
                }
                rest = rest.assume(cond, false);
            }
            if let (true, Some(b)) = (decided, otherwise) {
                out.push(
                    RULE.finding(b.span, "this `else` is never reached")
                        .with_label("an earlier condition is always true here"),
                );
            }
        });
    }
    out
}

/// Statements that follow one that always ends the journey.
fn after_exit(list: &[Stmt], out: &mut Vec<crate::diagnostic::Diagnostic>) {
    if let Some(i) = list.iter().position(stmt_always_exits) {
        let ends = if matches!(list[i].kind, crate::ast::StmtKind::Convert) {
            "convert"
        } else {
            "exit"
        };
        if let (Some(first), Some(last)) = (list.get(i + 1), list.last()) {
            out.push(
                RULE.finding(
                    first.span.to(last.span),
                    format!("unreachable statements after `{ends}`"),
                )
                .with_label("no journey gets here")
                .with_related(list[i].span, "every path ends here")
                .with_help(format!("remove them, or move them before the `{ends}`")),
            );
        }
    }
}

/// A `wait for` of the event that ends the journey (its `goal`, or its
/// `exit when`, without a `where`): the journey ends before the wait can
/// receive it, so its block never runs.
fn ended_first(wf: &Workflow, out: &mut Vec<crate::diagnostic::Diagnostic>) {
    let ends: Vec<(&str, &str)> = [(&wf.goal, "goal"), (&wf.exit_when, "exit when")]
        .into_iter()
        .filter_map(|(c, what)| match &c.as_ref()?.kind {
            CriterionKind::Event(m) if m.filter.is_none() => Some((m.event.name.as_str(), what)),
            _ => None,
        })
        .collect();
    stmts(&wf.body, &mut |s| {
        let StmtKind::WaitFor {
            event,
            received: Some(block),
            ..
        } = &s.kind
        else {
            return;
        };
        if let Some((_, what)) = ends.iter().find(|(e, _)| *e == event.name) {
            out.push(
                RULE.finding(
                    block.span,
                    format!("this block never runs: `{}` ends the journey first", event.name),
                )
                .with_label(format!("the `{what} {}` of the workflow ends the journey before the wait receives it", event.name))
                .with_help("wait for another event, or move these statements elsewhere (a `stage` here is never counted)"),
            );
        }
    });
}
