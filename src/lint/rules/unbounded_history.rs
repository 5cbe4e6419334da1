//! `unbounded-history`: `seen`/`count` over all of a contact's past.

use crate::ast::ExprKind;
use crate::lint::walk::exprs;
use crate::lint::{Ctx, Level, Rule};

pub const RULE: Rule = Rule {
    name: "unbounded-history",
    code: "nurture::lint::unbounded-history",
    default: Level::Warn,
    summary: "`seen(...)` or `count(...)` without `within`",
    why: "Without a window the runtime must keep every event of that type for every contact forever, and a purchase from five years ago counts like one from yesterday.",
    bad: "workflow loyal {\n  when purchase where count(purchase) >= 3\n  tag \"loyal\"\n}\n",
    good: "workflow loyal {\n  when purchase where count(purchase within 90d) >= 3\n  tag \"loyal\"\n}\n",
    check,
};

fn check(ctx: &Ctx) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for wf in ctx.program.workflows() {
        exprs(wf, &mut |e| {
            if let ExprKind::History {
                event,
                within: None,
                ..
            } = &e.kind
            {
                out.push(
                    RULE.finding(
                        e.span,
                        format!("this looks at every `{}` the contact ever had", event.name),
                    )
                    .with_label("no `within`")
                    .with_help("bound it, as in `within 30d`"),
                );
            }
        });
    }
    out
}
