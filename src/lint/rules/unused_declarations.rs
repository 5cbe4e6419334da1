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
    good: "workflow thanks {\n  when purchase where contact.opted_in\n  goal unsubscribed\n  send email \"thanks\" with { score: contact.score }\n  tag \"buyer\"\n  if contact.phone is set and contact.plan == \"free\" {\n    send sms \"offer\"\n  }\n  wait for email_opened within 2d as w1\n  tag \"engaged\"\n}\n",
    check,
};

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let mut events: BTreeSet<String> = BTreeSet::new();
    let mut fields: BTreeSet<String> = BTreeSet::new();
    let mut channels: BTreeSet<String> = BTreeSet::new();
    for wf in ctx.program.workflows() {
        match wf.trigger.as_ref().map(|t| &t.kind) {
            Some(TriggerKind::Event(m)) => {
                events.insert(m.event.name.clone());
            }
            Some(TriggerKind::Every(s)) => {
                if let crate::ast::Every::Year(f) = &s.every {
                    fields.insert(f.name.clone());
                }
            }
            _ => {}
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
        let unused: Vec<&crate::ast::Ident> = c
            .fields
            .iter()
            .filter(|f| {
                let address = ctx
                    .schema
                    .field(&f.name.name)
                    .and_then(|i| ctx.schema.fields[i].channel.clone());
                // A zone field is read wherever a local time is.
                let zone = ctx
                    .schema
                    .field(&f.name.name)
                    .is_some_and(|i| ctx.schema.fields[i].timezone);
                !fields.contains(&f.name.name)
                    && !zone
                    && !address.is_some_and(|ch| channels.contains(&ch))
                    && !ctx.allowed(f.name.span, RULE.name)
            })
            .map(|f| &f.name)
            .collect();
        // One finding per contact block, naming every unused field.
        let Some((first, rest)) = unused.split_first() else {
            continue;
        };
        let message = if rest.is_empty() {
            format!("the field `{}` is never read or written", first.name)
        } else {
            let names: Vec<String> = unused.iter().map(|f| format!("`{}`", f.name)).collect();
            let (last, init) = names.split_last().unwrap_or((&names[0], &[]));
            format!(
                "the fields {} and {last} are never read or written",
                init.join(", ")
            )
        };
        let mut d = RULE.finding(first.span, message).with_label("unused");
        for f in rest {
            d = d.with_related(f.span, "unused");
        }
        out.push(
            d.with_help("remove them, or check the spelling where they were meant to be used"),
        );
    }
    out
}
