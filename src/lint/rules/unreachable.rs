//! `unreachable`: statements no contact can reach.

use crate::ast::{Stmt, StmtKind};
use crate::lint::walk::{entry_known, flow, stmt_always_exits, stmts};
use crate::lint::{Ctx, Level, Rule};

pub const RULE: Rule = Rule {
    name: "unreachable",
    code: "nurture::lint::unreachable",
    default: Level::Warn,
    summary: "statements after `exit`, and branches whose condition is known false from the entry filter or an enclosing condition",
    why: "Code no contact can reach is a message nobody receives: usually a condition written the wrong way round or a step placed after the journey ends.",
    bad: "workflow upgrade {\n  when purchase where contact.plan == \"paid\" and contact.opted_in\n  if contact.plan == \"free\" {\n    send email \"upgrade\"\n  }\n}\n",
    good: "workflow upgrade {\n  when purchase where contact.plan == \"free\" and contact.opted_in\n  if contact.score > 10 {\n    send email \"upgrade\"\n  }\n}\n",
    check,
};

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for wf in ctx.program.workflows() {
        after_exit(&wf.body, &mut out);
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
        if let (Some(first), Some(last)) = (list.get(i + 1), list.last()) {
            out.push(
                RULE.finding(
                    first.span.to(last.span),
                    "unreachable statements after `exit`",
                )
                .with_label("no journey gets here")
                .with_related(list[i].span, "every path ends here")
                .with_help("remove them, or move them before the `exit`"),
            );
        }
    }
}
