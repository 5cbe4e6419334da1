//! `no-goal`: a workflow whose conversions cannot be measured.

use crate::lint::{Ctx, Level, Rule};

pub const RULE: Rule = Rule {
    name: "no-goal",
    code: "nurture::lint::no-goal",
    default: Level::Warn,
    summary: "a workflow without a `goal` or a `convert`",
    why: "Without a goal the run cannot count conversions, so nobody can tell whether the workflow works; a goal also stops the messages once the contact has done what they were for.",
    bad: "workflow cart {\n  when email_opened where contact.opted_in\n  send email \"reminder\"\n  wait 1d as w1\n  tag \"reminded\"\n}\n",
    good: "workflow cart {\n  when email_opened where contact.opted_in\n  goal purchase\n  send email \"reminder\"\n  wait 1d as w1\n  tag \"reminded\"\n}\n",
    check,
};

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    ctx.program
        .workflows()
        .filter(|w| w.goal.is_none() && !converts(&w.body))
        .map(|w| {
            RULE.finding(
                w.name.span,
                format!("workflow `{}` has no goal", w.name.name),
            )
            .with_label("conversions cannot be measured")
            .with_help("add the event that means success, as in `goal purchase`, or `convert` where the journey succeeds")
        })
        .collect()
}

/// Whether a `convert` statement is among `list`, at any depth.
fn converts(list: &[crate::ast::Stmt]) -> bool {
    list.iter().any(|s| {
        matches!(s.kind, crate::ast::StmtKind::Convert)
            || s.blocks().iter().any(|b| converts(&b.stmts))
    })
}
