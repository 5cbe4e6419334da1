//! `unnamed-wait`: a wait without a name in a workflow whose journeys wait
//! long enough to be there when the workflow is edited.

use crate::ast::{Stmt, StmtKind, WaitKind, Workflow};
use crate::lint::walk::stmts;
use crate::lint::{Ctx, Level, Rule};

pub const RULE: Rule = Rule {
    name: "unnamed-wait",
    code: "nurture::lint::unnamed-wait",
    default: Level::Warn,
    summary: "a wait without a name, in a workflow whose journeys wait a day or more",
    why: "Journeys wait for days; the workflow will be edited while they do. A changed workflow moves the journeys at a named wait to the wait of the same name in the new version; at an unnamed one they can only be exited, left to finish in the old version, or the change is refused.",
    bad: "workflow welcome {\n  when contact_created where contact.opted_in\n  goal purchase\n  send email \"welcome\"\n  wait 2d\n  tag \"welcomed\"\n}\n",
    good: "workflow welcome {\n  when contact_created where contact.opted_in\n  goal purchase\n  send email \"welcome\"\n  wait 2d as settling_in\n  tag \"welcomed\"\n}\n",
    check,
};

/// A day: waits this long or longer hold journeys when a workflow is edited.
const LONG: i64 = 86_400;

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for w in ctx.program.workflows() {
        if !waits_long(w) {
            continue;
        }
        stmts(&w.body, &mut |s| {
            if s.name.is_some() || !is_wait(s) {
                return;
            }
            let (what, example) = match &s.kind {
                StmtKind::WaitFor { event, within, .. } => (
                    format!(
                        "wait for {} within {}",
                        event.name,
                        crate::pretty::duration(within.seconds)
                    ),
                    format!(
                        "wait for {} within {} as {}_wait",
                        event.name,
                        crate::pretty::duration(within.seconds),
                        event.name
                    ),
                ),
                _ => ("wait".to_string(), "wait 2d as settling_in".to_string()),
            };
            let head = crate::source::Span::new(
                s.span.file,
                s.span.start as usize,
                s.span.start as usize + 4,
            );
            out.push(
                RULE.finding(head, format!("this `{what}` has no name"))
                    .with_label("unnamed wait")
                    .with_help(format!(
                        "name it after its time, as in `{example}`: journeys waiting here can then move to the new version when `{}` is edited",
                        w.name.name
                    )),
            );
        });
    }
    out
}

fn is_wait(s: &Stmt) -> bool {
    matches!(s.kind, StmtKind::Wait(_) | StmtKind::WaitFor { .. })
}

/// Whether some wait of the workflow may last a day or more (a computed
/// one may).
fn waits_long(w: &Workflow) -> bool {
    let mut long = false;
    stmts(&w.body, &mut |s| {
        long |= match &s.kind {
            StmtKind::Wait(WaitKind::For(d)) => d.seconds >= LONG,
            StmtKind::Wait(WaitKind::Clock(_)) => false,
            StmtKind::Wait(_) => true,
            StmtKind::WaitFor { within, .. } => within.seconds >= LONG,
            _ => false,
        };
    });
    long
}
