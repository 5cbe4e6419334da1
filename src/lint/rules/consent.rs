//! `consent`: a message sent without checking the contact's consent.

use crate::ast::StmtKind;
use crate::lint::walk::{entry_known, flow};
use crate::lint::{Ctx, Level, Rule};

pub const RULE: Rule = Rule {
    name: "consent",
    code: "nurture::lint::consent",
    default: Level::Warn,
    summary: "a `send` on a path where the contact's consent for that channel (its `@consent` field) was not checked",
    why: "Messaging a contact who has not agreed to it breaks the law in many countries (GDPR, CAN-SPAM, TCPA) and the contact's trust. A check in the workflow's entry filter or in an enclosing `if` counts until the next wait: attributes change while a journey waits, so a contact who opted in at the start may have opted out by the next message. Check again after each wait (`if not contact.opted_in { exit }`). At run time such a send is suppressed anyway; the lint shows where the workflow relies on that.",
    bad: "workflow promo {\n  when purchase\n  send email \"upsell\"\n}\n",
    good: "workflow promo {\n  when purchase where contact.opted_in\n  send email \"upsell\"\n}\n",
    check,
};

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for wf in ctx.program.workflows() {
        flow(&wf.body, entry_known(wf), true, &mut |s, known| {
            let StmtKind::Send { channel, .. } = &s.kind else {
                return;
            };
            let fields: Vec<&str> = ctx
                .schema
                .consent_fields(&channel.name)
                .map(|i| ctx.schema.fields[i].name.as_str())
                .collect();
            if fields.is_empty() {
                return;
            }
            let checked = fields.iter().any(|f| known.holds_field(f));
            if !checked {
                let list: Vec<String> = fields.iter().map(|f| format!("`contact.{f}`")).collect();
                out.push(
                    RULE.finding(channel.span, format!("`send {}` without checking consent", channel.name))
                        .with_label(format!("{} is not known to be true here", list.join(" or ")))
                        .with_help(format!(
                            "check it in the entry filter (`when ... where contact.{}`) or before the send (`if contact.{} {{ ... }}`); a check made before a wait no longer counts after it",
                            fields[0], fields[0]
                        )),
                );
            }
        });
    }
    out
}
