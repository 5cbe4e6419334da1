//! `unused-declarations`: events and contact fields nothing uses.

use crate::ast::{CriterionKind, ExprKind, StmtKind, TriggerKind};
use crate::lint::walk::{contact_reads, contact_writes, exprs, stmts};
use crate::lint::{Ctx, Level, Rule};
use std::collections::BTreeSet;

pub const RULE: Rule = Rule {
    name: "unused-declarations",
    code: "nurture::lint::unused-declarations",
    default: Level::Warn,
    summary: "events no workflow uses, and contact fields never read or written",
    why: "Unused declarations are usually a typo'd name elsewhere or a step someone forgot to write; they also make the schema harder to trust.",
    bad: "workflow thanks {\n  when purchase where contact.opted_in\n  goal unsubscribed\n  send email \"thanks\" with { score: contact.score }\n  tag \"buyer\"\n  if contact.phone is set and contact.plan == \"free\" {\n    send sms \"offer\"\n  }\n}\n",
    good: "workflow thanks {\n  when purchase where contact.opted_in\n  goal unsubscribed\n  send email \"thanks\" with { score: contact.score }\n  tag \"buyer\"\n  if contact.phone is set and contact.plan == \"free\" {\n    send sms \"offer\"\n  }\n  wait for email_opened within 2d\n  tag \"engaged\"\n}\n",
    check,
};

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let mut events: BTreeSet<String> = BTreeSet::new();
    let mut fields: BTreeSet<String> = BTreeSet::new();
    let mut channels: BTreeSet<String> = BTreeSet::new();
    for wf in ctx.program.workflows() {
        if let Some(TriggerKind::Event(m)) = wf.trigger.as_ref().map(|t| &t.kind) {
            events.insert(m.event.name.clone());
        }
        for c in wf.goal.iter().chain(&wf.exit_when) {
            if let CriterionKind::Event(m) = &c.kind {
                events.insert(m.event.name.clone());
            }
        }
        exprs(wf, &mut |e| {
            fields.extend(contact_reads(e).into_iter().map(str::to_string));
            if let ExprKind::History { event, .. } = &e.kind {
                events.insert(event.name.clone());
            }
        });
        fields.extend(contact_writes(wf).into_iter().map(|(f, _)| f.to_string()));
        stmts(&wf.body, &mut |s| match &s.kind {
            StmtKind::WaitFor { event, .. } => {
                events.insert(event.name.clone());
            }
            StmtKind::Send { channel, .. } => {
                channels.insert(channel.name.clone());
            }
            _ => {}
        });
    }
    let mut out = Vec::new();
    for e in ctx.program.events() {
        if !events.contains(&e.name.name) {
            out.push(
                RULE.finding(
                    e.name.span,
                    format!("the event `{}` is never used", e.name.name),
                )
                .with_label("no trigger, goal, exit, wait or history mentions it")
                .with_help("remove it, or check the spelling where it was meant to be used"),
            );
        }
    }
    for c in ctx.program.contacts() {
        for f in &c.fields {
            let address = ctx
                .schema
                .field(&f.name.name)
                .and_then(|i| ctx.schema.fields[i].channel.clone());
            let used =
                fields.contains(&f.name.name) || address.is_some_and(|ch| channels.contains(&ch));
            if !used {
                out.push(
                    RULE.finding(
                        f.name.span,
                        format!("the field `{}` is never read or written", f.name.name),
                    )
                    .with_label("unused")
                    .with_help("remove it, or check the spelling where it was meant to be used"),
                );
            }
        }
    }
    out
}
