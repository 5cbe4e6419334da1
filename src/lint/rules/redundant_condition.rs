//! `redundant-condition`: testing what is already known to be true.

use crate::ast::{BinaryOp, Expr, ExprKind, StmtKind};
use crate::lint::walk::{entry_known, flow, Known};
use crate::lint::{Ctx, Level, Rule};

pub const RULE: Rule = Rule {
    name: "redundant-condition",
    code: "nurture::lint::redundant-condition",
    default: Level::Warn,
    summary: "an `if` condition (or a part of an `and`) that is already known true on that path",
    why: "A condition that cannot fail suggests the author expected something else to be tested: a copy-paste slip, or a check that belongs before a `wait` (where it would matter).",
    bad: "workflow nudge {\n  when email_opened where contact.opted_in\n  if contact.opted_in {\n    send email \"nudge\"\n  }\n}\n",
    good: "workflow nudge {\n  when email_opened where contact.opted_in\n  wait 1d as w1\n  if contact.opted_in {\n    send email \"nudge\"\n  }\n}\n",
    check,
};

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for wf in ctx.program.workflows() {
        flow(&wf.body, entry_known(wf), true, &mut |s, known| {
            let StmtKind::If { branches, .. } = &s.kind else {
                return;
            };
            let mut rest = known.clone();
            for (cond, _) in branches {
                match rest.eval(cond) {
                    Some(true) => out.push(always_true(cond)),
                    Some(false) => break,
                    None => conjuncts(cond, &rest, &mut out),
                }
                rest = rest.assume(cond, false);
            }
        });
    }
    out
}

fn always_true(e: &Expr) -> crate::diagnostic::Diagnostic {
    RULE.finding(e.span, "this condition is always true here")
        .with_label("already known from the entry filter or an enclosing condition")
        .with_help("drop the test; or, if the value may have changed, test it after a `wait`")
}

/// Parts of an `and` that are already known true.
fn conjuncts(e: &Expr, known: &Known, out: &mut Vec<crate::diagnostic::Diagnostic>) {
    if let ExprKind::Binary {
        op: BinaryOp::And,
        lhs,
        rhs,
    } = &e.kind
    {
        for part in [lhs, rhs] {
            match known.eval(part) {
                Some(true) => out.push(always_true(part)),
                _ => conjuncts(part, known, out),
            }
        }
    }
}
