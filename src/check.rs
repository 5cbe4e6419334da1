//! Checking: program structure, then types, in one pass over the AST.
//!
//! `check/schema.rs` resolves the contact fields and events,
//! `check/expr.rs` types expressions and narrowing, `check/flow.rs` walks
//! workflows statement by statement. Nothing is evaluated here.

mod expr;
mod flow;
pub mod schema;
mod tests;
pub mod types;

use crate::ast::{Item, Program};
use crate::diagnostic::Code;
use crate::diagnostic::{self, Diagnostic};
use crate::source::Span;
pub use schema::Schema;
pub use types::Type;

/// The result of checking: the resolved schema and every diagnostic, in source order.
pub struct Checked {
    pub schema: Schema,
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks a parsed program.
pub fn check(program: &Program) -> Checked {
    let mut diags = Vec::new();
    let contacts: Vec<_> = program.contacts().collect();
    match contacts.as_slice() {
        [] => diags.push(
            Diagnostic::error(
                Code::NoContactBlock,
                program.items.first().map_or(Span::default(), item_span_start),
                "the program has no `contact` block",
            )
            .with_label("expected a contact schema in the program")
            .with_help("declare the contact's fields once, as in `contact { email: string @channel(email) }`"),
        ),
        [_] => {}
        [first, rest @ ..] => {
            for extra in rest {
                diags.push(
                    Diagnostic::error(
                        Code::MultipleContactBlocks,
                        Span { end: extra.span.start + 7, ..extra.span },
                        "the program has more than one `contact` block",
                    )
                    .with_label("second contact block")
                    .with_related(Span { end: first.span.start + 7, ..first.span }, "first one here")
                    .with_help("merge the fields into one `contact { ... }` block"),
                );
            }
        }
    }
    let events: Vec<_> = program.events().collect();
    let schema = Schema::build(contacts.first().copied(), &events, &mut diags);
    let mut seen: Vec<&crate::ast::Ident> = Vec::new();
    for wf in program.workflows() {
        if let Some(prev) = seen.iter().find(|p| p.name == wf.name.name) {
            diags.push(
                Diagnostic::error(
                    Code::DuplicateName,
                    wf.name.span,
                    format!("the workflow `{}` is declared twice", wf.name.name),
                )
                .with_label("declared again here")
                .with_related(prev.span, "first declared here")
                .with_help("workflow names must be unique across all files of the program"),
            );
        }
        seen.push(&wf.name);
        let mut cx = expr::ExprChecker {
            schema: &schema,
            diags: &mut diags,
        };
        flow::workflow(&mut cx, wf);
    }
    zones(program, &mut diags);
    sending_rules(program, &mut diags);
    // The workflows' names, collected once: checking is linear in the
    // number of tests.
    let workflows = tests::Workflows::of(program);
    for t in program.tests() {
        let mut cx = expr::ExprChecker {
            schema: &schema,
            diags: &mut diags,
        };
        tests::test(&mut cx, &workflows, t, &[]);
    }
    limits(program, &mut diags);
    if contacts.is_empty() {
        // Without a schema every field is unknown: the missing block says it once.
        diags.retain(|d| {
            !matches!(
                d.code,
                Code::UnknownField | Code::NoChannelField | Code::NoTagsField
            )
        });
    }
    diagnostic::sort(&mut diags);
    Checked {
        schema,
        diagnostics: diags,
    }
}

/// `timezone "Zone/Name"`: a known IANA zone, given once.
fn zones(program: &Program, diags: &mut Vec<Diagnostic>) {
    let mut first: Option<Span> = None;
    for item in &program.items {
        let crate::ast::Item::Timezone(z) = item else {
            continue;
        };
        if z.value.parse::<chrono_tz::Tz>().is_err() {
            diags.push(Diagnostic::unknown(
                &unknown::TIMEZONE,
                &z.value,
                z.span,
                chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()),
            ));
        }
        match first {
            Some(prev) => diags.push(
                Diagnostic::error(
                    Code::DuplicateName,
                    z.span,
                    "the program's time zone is set twice",
                )
                .with_label("second `timezone`")
                .with_related(prev, "first set here")
                .with_help("keep one `timezone` line"),
            ),
            None => first = Some(z.span),
        }
    }
}

/// `quiet hours` and `limit` lines: known channels, times of day, a
/// channel in at most one line of each kind.
fn sending_rules(program: &Program, diags: &mut Vec<Diagnostic>) {
    use crate::ast::{ClockTime, Item};
    use crate::vocabulary::Channel;
    let clock = |c: &ClockTime, diags: &mut Vec<Diagnostic>| {
        if c.hour > 23 || c.minute > 59 {
            diags.push(
                Diagnostic::error(
                    Code::BadClockTime,
                    c.span,
                    format!(
                        "`{:02}:{:02}` is not a time of day",
                        c.hour.min(99),
                        c.minute.min(99)
                    ),
                )
                .with_label("hours run from 00 to 23, minutes from 00 to 59")
                .with_help("write a time from 00:00 to 23:59"),
            );
        }
    };
    let mut quiet: Vec<(Option<String>, Span)> = Vec::new();
    let mut limited: Vec<(String, Span)> = Vec::new();
    for item in &program.items {
        match item {
            Item::Quiet(q) => {
                clock(&q.start, diags);
                clock(&q.end, diags);
                let names: Vec<Option<&crate::ast::Ident>> = if q.channels.is_empty() {
                    vec![None]
                } else {
                    q.channels.iter().map(Some).collect()
                };
                for name in names {
                    if let Some(c) = name {
                        if Channel::from_name(&c.name).is_none() {
                            diags.push(unknown::at(&unknown::CHANNEL, c, Channel::names()));
                            continue;
                        }
                    }
                    let key = name.map(|c| c.name.clone());
                    let span = name.map_or(q.span, |c| c.span);
                    let clash = quiet
                        .iter()
                        .find(|(k, _)| k.is_none() || key.is_none() || *k == key);
                    if let Some((_, prev)) = clash {
                        diags.push(
                            Diagnostic::error(
                                Code::DuplicateName,
                                span,
                                match &key {
                                    Some(k) => format!("`{k}` has quiet hours twice"),
                                    None => "quiet hours for every channel, and other quiet hours"
                                        .to_string(),
                                },
                            )
                            .with_label("quiet hours again")
                            .with_related(*prev, "already here")
                            .with_help("a channel has one window of quiet hours"),
                        );
                    }
                    quiet.push((key, span));
                }
            }
            Item::Limit(l) => {
                if Channel::from_name(&l.channel.name).is_none() {
                    diags.push(unknown::at(&unknown::CHANNEL, &l.channel, Channel::names()));
                }
                if let Some((_, prev)) = limited.iter().find(|(k, _)| *k == l.channel.name) {
                    diags.push(
                        Diagnostic::error(
                            Code::DuplicateName,
                            l.channel.span,
                            format!("`{}` is limited twice", l.channel.name),
                        )
                        .with_label("a second limit")
                        .with_related(*prev, "first limit here")
                        .with_help("a channel has one limit; keep the one you mean"),
                    );
                }
                limited.push((l.channel.name.clone(), l.channel.span));
                if l.count < 1 {
                    diags.push(
                        Diagnostic::error(
                            Code::Mismatch,
                            l.count_span,
                            "a limit allows at least one send",
                        )
                        .with_label("zero sends")
                        .with_help("to send nothing on a channel, remove its sends"),
                    );
                }
                if l.per.seconds <= 0 {
                    diags.push(
                        Diagnostic::error(
                            Code::NonPositiveDuration,
                            l.per.span,
                            "a limit's window must be longer than zero",
                        )
                        .with_label("zero duration")
                        .with_help("write a window such as `1d` or `1w`"),
                    );
                }
            }
            _ => {}
        }
    }
}

/// Checks test steps typed outside a program's files (the REPL), where
/// the contacts `known` exist already.
pub fn check_steps(
    program: &Program,
    schema: &Schema,
    t: &crate::ast::TestBlock,
    known: &[String],
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut cx = expr::ExprChecker {
        schema,
        diags: &mut diags,
    };
    tests::test(&mut cx, &tests::Workflows::of(program), t, known);
    diags
}

/// The type of a standalone expression against a schema, as the REPL types
/// what is typed at its prompt: no event in scope, no narrowing facts.
/// Diagnostics (errors) are returned beside the type.
pub fn type_of_expr(schema: &Schema, e: &crate::ast::Expr) -> (Type, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let ty = expr::ExprChecker {
        schema,
        diags: &mut diags,
    }
    .expr(&expr::Env::default(), e);
    (ty, diags)
}

/// The runtime keeps one bit per condition- and per inactivity-triggered
/// workflow for each contact: at most 64 of each.
const MAX_BIT_TRIGGERS: usize = 64;

/// Most distinct stages, and split arms in all, a workflow's funnel counts
/// (a journey keeps a bit for each).
pub const MAX_FUNNEL_BITS: usize = 64;

fn limits(program: &Program, diags: &mut Vec<Diagnostic>) {
    use crate::ast::TriggerKind;
    for (what, pick) in [
        (
            "a condition (`when COND`)",
            (|k: &TriggerKind| matches!(k, TriggerKind::Condition(_))) as fn(&TriggerKind) -> bool,
        ),
        ("inactivity (`when inactive for`)", |k: &TriggerKind| {
            matches!(k, TriggerKind::Inactive(_))
        }),
    ] {
        let over: Vec<_> = program
            .workflows()
            .filter(|w| w.trigger.as_ref().is_some_and(|t| pick(&t.kind)))
            .skip(MAX_BIT_TRIGGERS)
            .collect();
        if let Some(first) = over.first() {
            diags.push(
                Diagnostic::error(
                    Code::TooManyTriggers,
                    first.name.span,
                    format!("at most {MAX_BIT_TRIGGERS} workflows can be triggered by {what}"),
                )
                .with_label(format!(
                    "workflow number {} of this kind",
                    MAX_BIT_TRIGGERS + 1
                ))
                .with_help("merge some of these workflows, or trigger them by events"),
            );
        }
    }
    // The funnel keeps a bit per distinct stage and split arm of a journey.
    for w in program.workflows() {
        let mut stages: Vec<&str> = Vec::new();
        let mut arms = 0;
        let mut at = None;
        crate::ast::walk::each_stmt(&w.body, &mut |s| match &s.kind {
            crate::ast::StmtKind::Stage(name) if !stages.contains(&name.value.as_str()) => {
                stages.push(&name.value);
                if stages.len() + arms > MAX_FUNNEL_BITS && at.is_none() {
                    at = Some(name.span);
                }
            }
            crate::ast::StmtKind::Split { arms: a, .. } => {
                arms += a.len();
                if stages.len() + arms > MAX_FUNNEL_BITS && at.is_none() {
                    at = Some(s.span);
                }
            }
            _ => {}
        });
        if let Some(span) = at {
            diags.push(
                Diagnostic::error(
                    Code::TooManyStages,
                    span,
                    format!(
                        "workflow `{}` has more than {} distinct stages and split arms",
                        w.name.name,
                        MAX_FUNNEL_BITS
                    ),
                )
                .with_label("one too many")
                .with_help("the report counts at most 64 per workflow: merge stages, or split the workflow"),
            );
        }
    }
}

fn item_span_start(item: &Item) -> Span {
    let span = item.span();
    Span {
        end: span.start,
        ..span
    }
}

/// The kinds of name the checker resolves.
pub(crate) mod unknown {
    use crate::ast::Ident;
    use crate::diagnostic::{Code, Diagnostic, Unknown};

    /// `name` is not a known name of this kind.
    pub fn at<'a>(
        kind: &Unknown,
        name: &Ident,
        candidates: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Diagnostic {
        Diagnostic::unknown(kind, &name.name, name.span, candidates)
    }

    const fn kind(
        code: Code,
        message: &'static str,
        label: &'static str,
        what: &'static str,
    ) -> Unknown {
        Unknown {
            code,
            message,
            label,
            what,
        }
    }

    pub const EVENT: Unknown = kind(Code::UnknownEvent, "unknown event", "not declared", "event");
    pub const FIELD: Unknown = kind(
        Code::UnknownField,
        "the contact has no field",
        "unknown field",
        "field",
    );
    pub const CHANNEL: Unknown = kind(
        Code::UnknownChannel,
        "unknown channel",
        "not a channel",
        "channel",
    );
    pub const FUNCTION: Unknown = kind(
        Code::UnknownFunction,
        "unknown function",
        "not a built-in",
        "function",
    );
    pub const TYPE: Unknown = kind(Code::UnknownType, "unknown type", "not a type", "type");
    pub const TIMEZONE: Unknown = kind(
        Code::UnknownTimezone,
        "unknown time zone",
        "not an IANA zone name",
        "zone",
    );
    pub const WORKFLOW: Unknown = kind(
        Code::UnknownWorkflow,
        "unknown workflow",
        "no such workflow",
        "workflow",
    );
    pub const CONTACT: Unknown = kind(
        Code::TestUnknownContact,
        "no contact of this test is named",
        "not created by an earlier step",
        "contact",
    );
    pub const PAYLOAD: Unknown = kind(
        Code::UnknownPayloadField,
        "the event has no field",
        "unknown field",
        "field",
    );
}
