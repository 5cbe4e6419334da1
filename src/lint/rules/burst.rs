//! `burst`: two messages on one channel with no wait between them.

use crate::ast::{Stmt, StmtKind};
use crate::lint::{Ctx, Level, Rule};
use crate::source::Span;
use std::collections::BTreeMap;

pub const RULE: Rule = Rule {
    name: "burst",
    code: "nurture::lint::burst",
    default: Level::Warn,
    summary: "two `send`s on the same channel with no `wait` between them on some path",
    why: "Two emails (or SMS) in the same second read as spam, get the second one ignored or the sender flagged, and usually mean a missing `wait` or a branch that falls through into another send.",
    bad: "workflow welcome {\n  when email_opened where contact.opted_in\n  send email \"welcome\"\n  send email \"tips\"\n}\n",
    good: "workflow welcome {\n  when email_opened where contact.opted_in\n  send email \"welcome\"\n  wait 2d\n  if contact.opted_in {\n    send email \"tips\"\n  }\n}\n",
    check,
};

/// Channels sent on since the last wait, with the first such send.
type Sent = BTreeMap<String, Span>;

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for wf in ctx.program.workflows() {
        walk(&wf.body, Sent::new(), &mut out);
    }
    out.sort_by_key(|d| d.span.start);
    out.dedup_by_key(|d| d.span.start);
    out
}

fn walk(list: &[Stmt], mut sent: Sent, out: &mut Vec<crate::diagnostic::Diagnostic>) -> Sent {
    for s in list {
        sent = match &s.kind {
            StmtKind::Send { channel, .. } => {
                if let Some(first) = sent.get(&channel.name) {
                    out.push(
                        RULE.finding(channel.span, format!("a second `send {}` with no wait since the first", channel.name))
                            .with_label("sent at the same moment")
                            .with_related(*first, "first send")
                            .with_help("put a `wait` between the two messages, or send one of them on another path"),
                    );
                } else {
                    sent.insert(channel.name.clone(), channel.span);
                }
                sent
            }
            StmtKind::Wait(_) => Sent::new(),
            StmtKind::WaitFor {
                received, timeout, ..
            } => {
                let mut after = Sent::new();
                for b in [received, timeout].into_iter().flatten() {
                    after.extend(walk(&b.stmts, Sent::new(), out));
                }
                after
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                let mut after = if otherwise.is_none() {
                    sent.clone()
                } else {
                    Sent::new()
                };
                for b in branches.iter().map(|(_, b)| b).chain(otherwise) {
                    after.extend(walk(&b.stmts, sent.clone(), out));
                }
                after
            }
            StmtKind::Split(arms) => {
                let mut after = Sent::new();
                for a in arms {
                    after.extend(walk(&a.body.stmts, sent.clone(), out));
                }
                after
            }
            _ => sent,
        };
    }
    sent
}
