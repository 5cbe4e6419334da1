//! `unfiltered-schedule`: a scheduled trigger without `where` in a program
//! of several workflows: every contact enters at every occurrence.

use crate::ast::TriggerKind;
use crate::lint::{Ctx, Level, Rule};

pub const RULE: Rule = Rule {
    name: "unfiltered-schedule",
    code: "nurture::lint::unfiltered-schedule",
    default: Level::Warn,
    summary: "a scheduled trigger without `where`, beside other workflows",
    why: "`when every day at 09:00` with no `where` starts a journey for every contact at every occurrence: every contact, every day, on top of what the other workflows send. That is rarely meant; a `where` says who the schedule is for (subscribers, a segment, those who have not bought).",
    bad: "workflow welcome {\n  when email_opened\n  goal purchase\n  tag \"opened\"\n}\n\nworkflow digest {\n  when every day at 09:00\n  goal purchase\n  tag \"digest\"\n}\n",
    good: "workflow welcome {\n  when email_opened\n  goal purchase\n  tag \"opened\"\n}\n\nworkflow digest {\n  when every day at 09:00 where contact.opted_in\n  goal purchase\n  tag \"digest\"\n}\n",
    check,
};

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    if ctx.program.workflows().count() < 2 {
        return Vec::new();
    }
    ctx.program
        .workflows()
        .filter_map(|w| {
            let trigger = w.trigger.as_ref()?;
            let TriggerKind::Every(s) = &trigger.kind else {
                return None;
            };
            s.filter.is_none().then(|| {
                RULE.finding(
                    trigger.span,
                    format!("workflow `{}` starts for every contact at every occurrence", w.name.name),
                )
                .with_label("no `where`")
                .with_help("say who the schedule is for, as in `when every day at 09:00 where contact.opted_in`")
            })
        })
        .collect()
}
