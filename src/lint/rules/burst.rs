//! `burst`: two messages on one channel with no wait between them.

use crate::ast::{EventMatch, Stmt, StmtKind, TriggerKind, Workflow};
use crate::lint::walk::Known;
use crate::lint::{Ctx, Level, Rule};
use crate::source::Span;
use std::collections::BTreeMap;

pub const RULE: Rule = Rule {
    name: "burst",
    code: "nurture::lint::burst",
    default: Level::Warn,
    summary: "two `send`s on the same channel with no `wait` between them on some path, in one workflow or in two started by the same event",
    why: "Two emails (or SMS) in the same second read as spam, get the second one ignored or the sender flagged, and usually mean a missing `wait` or a branch that falls through into another send.",
    bad: "workflow welcome {\n  when email_opened where contact.opted_in\n  send email \"welcome\"\n  send email \"tips\"\n}\n",
    good: "workflow welcome {\n  when email_opened where contact.opted_in\n  send email \"welcome\"\n  wait 2d as w1\n  if contact.opted_in {\n    send email \"tips\"\n  }\n}\n",
    check,
};

/// Channels sent on since the last wait, with the first such send.
type Sent = BTreeMap<String, Span>;

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    let mut opening = Vec::new();
    for wf in ctx.program.workflows() {
        opening.push((wf, walk(&wf.body, Sent::new(), &mut out)));
    }
    across(&opening, &mut out);
    out.sort_by_key(|d| d.span.start);
    out.dedup_by_key(|d| d.span.start);
    out
}

/// Workflows started by the same event whose first sends, before any
/// wait, use one channel: a new contact gets both in the same second.
fn across(opening: &[(&Workflow, Sent)], out: &mut Vec<crate::diagnostic::Diagnostic>) {
    // The sends each workflow makes before its first wait, on some path.
    let firsts: Vec<(&Workflow, Sent)> = opening
        .iter()
        .map(|(wf, _)| (*wf, before_wait(&wf.body)))
        .collect();
    for (i, (later, sends)) in firsts.iter().enumerate() {
        let Some(m) = trigger_event(later) else {
            continue;
        };
        for (earlier, earlier_sends) in &firsts[..i] {
            let Some(e) = trigger_event(earlier) else {
                continue;
            };
            if e.event.name != m.event.name || exclusive(e, m) {
                continue;
            }
            for (channel, span) in sends {
                if let Some(first) = earlier_sends.get(channel) {
                    out.push(
                        RULE.finding(
                            *span,
                            format!(
                                "`send {channel}` in the same second as workflow `{}`'s",
                                earlier.name.name
                            ),
                        )
                        .with_label(format!("both workflows start on `{}`", m.event.name))
                        .with_related(*first, "the other send")
                        .with_help(
                            "wait before one of them (`wait 1d`), or merge the two messages",
                        ),
                    );
                }
            }
        }
    }
}

fn trigger_event(wf: &Workflow) -> Option<&EventMatch> {
    match &wf.trigger.as_ref()?.kind {
        TriggerKind::Event(m) => Some(m),
        TriggerKind::Inactive(_)
        | TriggerKind::Condition(_)
        | TriggerKind::Every(_)
        | TriggerKind::At(_) => None,
    }
}

/// Whether the two triggers' `where`s cannot both hold.
fn exclusive(a: &EventMatch, b: &EventMatch) -> bool {
    let (Some(fa), Some(fb)) = (&a.filter, &b.filter) else {
        return false;
    };
    Known::default().assume(fa, true).eval(fb) == Some(false)
}

/// The channels sent on before the first wait, on some path.
fn before_wait(list: &[Stmt]) -> Sent {
    let mut sent = Sent::new();
    for s in list {
        match &s.kind {
            StmtKind::Send { channel, .. } => {
                sent.entry(channel.name.clone()).or_insert(channel.span);
            }
            StmtKind::Wait(_) | StmtKind::WaitFor { .. } | StmtKind::Exit | StmtKind::Convert => {
                return sent
            }
            StmtKind::If { .. } | StmtKind::Split { .. } => {
                // Without an `else`, one path goes on past the `if`.
                let mut ends = !matches!(
                    &s.kind,
                    StmtKind::If {
                        otherwise: None,
                        ..
                    }
                );
                for b in s.blocks() {
                    for (c, span) in before_wait(&b.stmts) {
                        sent.entry(c).or_insert(span);
                    }
                    ends &= crate::lint::walk::always_exits(&b.stmts) || waits(&b.stmts);
                }
                if ends {
                    return sent;
                }
            }
            _ => {}
        }
    }
    sent
}

/// Whether every path through `list` waits (or ends) somewhere.
fn waits(list: &[Stmt]) -> bool {
    list.iter().any(|s| {
        matches!(
            s.kind,
            StmtKind::Wait(_) | StmtKind::WaitFor { .. } | StmtKind::Exit | StmtKind::Convert
        )
    })
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
            StmtKind::Split { arms, .. } => {
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
