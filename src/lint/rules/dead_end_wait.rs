//! `dead-end-wait`: a `wait for` that leaves silent contacts nowhere.

use crate::ast::{Stmt, StmtKind};
use crate::lint::{Ctx, Level, Rule};

pub const RULE: Rule = Rule {
    name: "dead-end-wait",
    code: "nurture::lint::dead-end-wait",
    default: Level::Warn,
    summary: "a `wait for` with no `timeout` block and nothing after it",
    why: "Contacts who never do the awaited thing simply stop: no follow-up, no fallback channel, and nothing in the reports says so.",
    bad: "workflow intro {\n  when email_opened where contact.opted_in\n  goal purchase\n  send email \"intro\"\n  wait for email_opened within 7d as w1 {\n    tag \"engaged\"\n  }\n}\n",
    good: "workflow intro {\n  when email_opened where contact.opted_in\n  goal purchase\n  send email \"intro\"\n  wait for email_opened within 7d as w1 {\n    tag \"engaged\"\n  } timeout {\n    add to audience \"retarget\"\n  }\n}\n",
    check,
};

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for wf in ctx.program.workflows() {
        walk(&wf.body, true, &mut out);
    }
    out
}

/// `tail`: nothing runs after this list of statements.
fn walk(list: &[Stmt], tail: bool, out: &mut Vec<crate::diagnostic::Diagnostic>) {
    for (i, s) in list.iter().enumerate() {
        let last = tail && i + 1 == list.len();
        if let StmtKind::WaitFor {
            event,
            timeout: None,
            ..
        } = &s.kind
        {
            if last {
                out.push(
                    RULE.finding(
                        s.span,
                        format!(
                            "contacts who never send `{}` stop here silently",
                            event.name
                        ),
                    )
                    .with_label("no `timeout` block and nothing after it")
                    .with_help("add `timeout { ... }` with a follow-up, or a step after the wait"),
                );
            }
        }
        for b in crate::lint::walk::blocks(s) {
            walk(&b.stmts, last, out);
        }
    }
}
