//! Checking workflows statement by statement, tracking which optional
//! values are known to be set on each path.

use super::expr::{facts_false, facts_true, Env, ExprChecker, Facts};
use super::schema::Schema;
use super::types::Type;
use super::unknown;
use crate::ast::walk::{paths, Domain, Visit};
use crate::ast::*;
use crate::diagnostic::Code;
use crate::diagnostic::Diagnostic;
use crate::vocabulary::Channel;

/// Checks one workflow.
pub fn workflow(cx: &mut ExprChecker, wf: &Workflow) {
    split_names(cx, &wf.body, &mut Vec::new());
    wait_names(cx, &wf.body, &mut Vec::new());
    let mut env = Env::default();
    if let Some(trigger) = &wf.trigger {
        match &trigger.kind {
            TriggerKind::Event(m) => {
                env.trigger = cx.event_ref(&m.event);
                if let Some(f) = &m.filter {
                    let fenv = Env {
                        event: env.trigger,
                        ..env.clone()
                    };
                    cx.expect(&fenv, f, &Type::Bool, "a `where` condition");
                    env.facts = facts_true(f);
                }
            }
            TriggerKind::Inactive(d) => {
                cx.positive_duration(d.seconds, d.span, "an inactivity period")
            }
            TriggerKind::Condition(c) => {
                cx.expect(&env, c, &Type::Bool, "a trigger condition");
                attributes_only(cx, c);
                env.facts = facts_true(c);
            }
            TriggerKind::At(e) => {
                // An unset field sets no instant: optional fields may be read.
                let all_set = Env {
                    facts: Facts::every_field(cx.schema),
                    ..env.clone()
                };
                let ty = cx.expr(&all_set, e);
                if !matches!(ty.unwrap_optional(), Type::Datetime | Type::Error) {
                    cx.diags.push(
                        Diagnostic::error(
                            Code::Mismatch,
                            e.span,
                            format!("`when at` needs a datetime, found {ty}"),
                        )
                        .with_label(format!("this is {ty}"))
                        .with_help("compute the instant from a datetime field, as in `when at contact.trial_ends_at - 3d`"),
                    );
                }
                attributes_only(cx, e);
            }
            TriggerKind::Every(s) => {
                clock_time(cx, &s.at);
                match &s.every {
                    Every::Month { day, span } if !(1..=28).contains(day) => cx.diags.push(
                        Diagnostic::error(
                            Code::BadClockTime,
                            *span,
                            format!("`month on {day}` is not a day every month has"),
                        )
                        .with_label("days run from 1 to 28")
                        .with_help("every month has days 1 to 28; for the month's end, schedule on day 28 or on the 1st"),
                    ),
                    Every::Year(f) => match cx.schema.field(&f.name) {
                        Some(i) if matches!(cx.schema.fields[i].ty.unwrap_optional(), Type::Datetime) => {}
                        Some(i) => {
                            let ty = cx.schema.fields[i].ty.clone();
                            cx.diags.push(
                                Diagnostic::error(
                                    Code::Mismatch,
                                    f.span,
                                    format!("`every year on` needs a datetime field, but `{}` is {ty}", f.name),
                                )
                                .with_label("not a datetime")
                                .with_help("name a `datetime` or `datetime?` field, such as a birthday"),
                            );
                        }
                        None => cx.diags.push(unknown::at(&unknown::FIELD, f, cx.schema.field_names())),
                    },
                    _ => {}
                }
                if let Some(f) = &s.filter {
                    cx.expect(&env, f, &Type::Bool, "a `where` condition");
                    env.facts = facts_true(f);
                }
            }
        }
    }
    for crit in wf.goal.iter().chain(&wf.exit_when) {
        match &crit.kind {
            CriterionKind::Event(m) => {
                let id = cx.event_ref(&m.event);
                if let Some(f) = &m.filter {
                    let fenv = Env {
                        event: id,
                        trigger: env.trigger,
                        facts: Facts::default(),
                    };
                    cx.expect(&fenv, f, &Type::Bool, "a `where` condition");
                }
            }
            CriterionKind::Condition(c) => {
                let cenv = Env {
                    facts: Facts::default(),
                    ..env.clone()
                };
                cx.expect(&cenv, c, &Type::Bool, "a goal or exit condition");
            }
        }
    }
    if let Some(Reenter {
        kind: ReenterKind::After(d),
        ..
    }) = &wf.reenter
    {
        cx.positive_duration(d.seconds, d.span, "a reentry delay");
    }
    block(cx, env, &wf.body);
}

/// A `when COND` trigger is judged only when attributes change, so it may
/// read only attributes: `now`, `seen` and `count` change without one.
fn attributes_only(cx: &mut ExprChecker, c: &Expr) {
    let mut first = None;
    c.walk(&mut |e| {
        if first.is_none() && matches!(e.kind, ExprKind::Now | ExprKind::History { .. }) {
            first = Some(e);
        }
    });
    let Some(e) = first else { return };
    let what = match &e.kind {
        ExprKind::History {
            kind: HistoryKind::Seen,
            ..
        } => "`seen(...)` reads the event history",
        ExprKind::History { .. } => "`count(...)` reads the event history",
        _ => "`now` moves on without any change",
    };
    cx.diags.push(
        Diagnostic::error(
            Code::TriggerReadsTime,
            e.span,
            "a `when` condition may read only the contact's attributes",
        )
        .with_label(format!("{what}, but the condition is judged only when an attribute changes"))
        .with_help(
            "for time, use a calendar trigger (`when every day at 09:00 where ...`) or `when inactive for 30d`; \
             for history, an event trigger's `where` (`when purchase where count(purchase within 30d) >= 3`)",
        ),
    );
}

/// What the checker knows on a path: the event in scope and the values
/// known to be set (narrowing).
#[derive(Clone)]
struct Known<'s> {
    schema: &'s Schema,
    env: Env,
}

impl Domain for Known<'_> {
    fn assume(&self, cond: &Expr, truth: bool) -> Self {
        let facts = if truth {
            facts_true(cond)
        } else {
            facts_false(cond)
        };
        self.with(|env| env.facts = env.facts.union(&facts))
    }

    /// Attributes can change while the journey waits.
    fn wait(&self) -> Self {
        self.with(|env| env.facts.forget_contact())
    }

    /// After a `wait for`, and in its timeout block, no event is in scope.
    fn wait_for(&self, _: &Stmt) -> Self {
        self.with(|env| {
            env.facts.forget_contact();
            env.event = None;
        })
    }

    /// In the received block, `event` is the event received.
    fn received(&self, s: &Stmt) -> Self {
        let StmtKind::WaitFor { event, .. } = &s.kind else {
            return self.clone();
        };
        let id = self.schema.event(&event.name);
        self.with(|env| env.event = id)
    }

    fn unreachable(&self) -> Self {
        self.with(|env| env.facts = env.facts.unreachable())
    }

    fn meet(&self, other: &Self) -> Self {
        self.with(|env| {
            env.facts = env.facts.intersect(&other.env.facts);
            if env.event != other.env.event {
                env.event = None;
            }
        })
    }
}

impl Known<'_> {
    fn with(&self, change: impl FnOnce(&mut Env)) -> Self {
        let mut k = self.clone();
        change(&mut k.env);
        k
    }
}

/// Checks statements along their paths; returns the facts at the end, or
/// `None` when every path through them ends with `exit`.
fn block(cx: &mut ExprChecker, env: Env, stmts: &[Stmt]) -> Option<Facts> {
    let schema = cx.schema;
    let start = Known { schema, env };
    let end = paths(stmts, start, &mut |visit, known| match visit {
        Visit::Condition(c) => {
            cx.expect(&known.env, c, &Type::Bool, "an `if` condition");
            None
        }
        Visit::Stmt(s) => stmt(cx, &known.env, s).map(|facts| Known {
            schema,
            env: Env {
                facts,
                ..known.env.clone()
            },
        }),
    });
    end.map(|k| k.env.facts)
}

/// Checks what a statement holds besides its blocks; returns the facts
/// after a `set`, which may make a field known to be set.
fn stmt(cx: &mut ExprChecker, env: &Env, s: &Stmt) -> Option<Facts> {
    match &s.kind {
        StmtKind::Send { channel, data, .. } => {
            send(cx, env, channel);
            if let Some(data) = data {
                map(cx, env, data);
            }
        }
        StmtKind::Tag(e) | StmtKind::Untag(e) => {
            tags_field(cx, s);
            cx.expect(env, e, &Type::Str, "a tag");
        }
        StmtKind::Set { field, op, value } => return set(cx, env, field, *op, value),
        StmtKind::List { .. } | StmtKind::Stage(_) | StmtKind::Exit | StmtKind::Convert => {}
        StmtKind::Notify { message, .. } => {
            for part in &message.parts {
                if let TemplatePart::Expr(e) = part {
                    cx.value(env, e);
                }
            }
        }
        StmtKind::Webhook { data, .. } => {
            if let Some(data) = data {
                map(cx, env, data);
            }
        }
        StmtKind::Wait(w) => match w {
            WaitKind::For(d) => cx.positive_duration(d.seconds, d.span, "a wait"),
            WaitKind::Expr(e) => {
                cx.expect(env, e, &Type::Duration, "a wait");
            }
            WaitKind::Clock(c) | WaitKind::Weekday { at: Some(c), .. } => clock_time(cx, c),
            WaitKind::Weekday { at: None, .. } => {}
            WaitKind::Until(e) => {
                cx.expect(env, e, &Type::Datetime, "`wait until`");
            }
        },
        StmtKind::WaitFor {
            event,
            within,
            filter,
            ..
        } => {
            cx.positive_duration(within.seconds, within.span, "a `within` time limit");
            let id = cx.event_ref(event);
            if let Some(f) = filter {
                let mut with_event = Env {
                    event: id,
                    ..env.clone()
                };
                with_event.facts.forget_contact();
                cx.expect(&with_event, f, &Type::Bool, "a `where` condition");
            }
        }
        // Its conditions are visited one by one, where they are evaluated.
        StmtKind::If { .. } => {}
        StmtKind::Split { arms, .. } => split(cx, s, arms),
    }
    None
}

/// Checks a split's shares.
/// A wait's name is unique in its workflow: a later version of it moves
/// journeys by name (LANGUAGE.md section 13).
fn wait_names<'a>(cx: &mut ExprChecker, stmts: &'a [Stmt], seen: &mut Vec<&'a Ident>) {
    for s in stmts {
        if let Some(name) = &s.name {
            match seen.iter().find(|f| f.name == name.name) {
                Some(first) => cx.diags.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        name.span,
                        format!("two waits of this workflow are named `{}`", name.name),
                    )
                    .with_label("named again here")
                    .with_related(first.span, "first named here")
                    .with_help("give each wait of a workflow its own name: a changed workflow moves the journeys waiting there by it"),
                ),
                None => seen.push(name),
            }
        }
        for b in s.blocks() {
            wait_names(cx, &b.stmts, seen);
        }
    }
}

/// A split's name is unique in its workflow (reports tell splits apart by
/// it), and an arm's label unique in its split.
fn split_names<'a>(cx: &mut ExprChecker, stmts: &'a [Stmt], seen: &mut Vec<&'a StrLit>) {
    for s in stmts {
        if let StmtKind::Split { name, arms } = &s.kind {
            if let Some(name) = name {
                once(
                    cx,
                    seen,
                    name,
                    "two splits of this workflow are named",
                    "named",
                    "give each split of a workflow its own name: reports tell them apart by it",
                );
            }
            let mut labels: Vec<&StrLit> = Vec::new();
            for l in arms.iter().filter_map(|a| a.label.as_ref()) {
                once(
                    cx,
                    &mut labels,
                    l,
                    "two arms of this split are labelled",
                    "labelled",
                    "give each arm its own label",
                );
            }
        }
        for b in s.blocks() {
            split_names(cx, &b.stmts, seen);
        }
    }
}

/// Notes `lit` in `seen`, or reports it as given twice.
fn once<'a>(
    cx: &mut ExprChecker,
    seen: &mut Vec<&'a StrLit>,
    lit: &'a StrLit,
    message: &str,
    verb: &str,
    help: &str,
) {
    match seen.iter().find(|f| f.value == lit.value) {
        Some(first) => cx.diags.push(
            Diagnostic::error(
                Code::DuplicateName,
                lit.span,
                format!("{message} \"{}\"", lit.value),
            )
            .with_label(format!("{verb} again here"))
            .with_related(first.span, format!("first {verb} here"))
            .with_help(help),
        ),
        None => seen.push(lit),
    }
}

fn split(cx: &mut ExprChecker, s: &Stmt, arms: &[SplitArm]) {
    let mut total: u64 = 0;
    for arm in arms {
        // A 0% share is legal (the `unreachable` lint reports it).
        total += u64::from(arm.percent);
    }
    if total != 100 {
        let head = Span::new(
            s.span.file,
            s.span.start as usize,
            s.span.start as usize + 5,
        );
        let mut d = Diagnostic::error(
            Code::SplitTotal,
            head,
            format!("the shares of this split add up to {total}%, not 100%"),
        )
        .with_label(format!("{total}% in all"))
        .with_help("make the shares add up to exactly 100%");
        for arm in arms {
            d = d.with_related(arm.percent_span, format!("{}%", arm.percent));
        }
        cx.diags.push(d);
    }
}

use crate::source::Span;

fn send(cx: &mut ExprChecker, env: &Env, channel: &Ident) {
    let Some(known) = Channel::from_name(&channel.name) else {
        cx.diags
            .push(unknown::at(&unknown::CHANNEL, channel, Channel::names()));
        return;
    };
    let Some(i) = cx.schema.channel_field(&channel.name) else {
        cx.diags.push(
            Diagnostic::error(
                Code::NoChannelField,
                channel.span,
                format!("no contact field is marked `@channel({})`", channel.name),
            )
            .with_label("no address for this channel")
            .with_help(format!(
                "mark the field that holds the address, as in `{}: string? @channel({})`",
                default_address(known),
                channel.name
            )),
        );
        return;
    };
    let field = &cx.schema.fields[i];
    if field.ty.is_optional() && !env.facts.contains(PathRoot::Contact, &field.name) {
        cx.diags.push(
            Diagnostic::error(
                Code::ChannelUnset,
                channel.span,
                format!(
                    "`send {}` needs `contact.{}`, which may be unset here",
                    channel.name, field.name
                ),
            )
            .with_label(format!("the {} address may be missing", channel.name))
            .with_related(field.span, "declared optional here")
            .with_help(format!(
                "send inside `if contact.{} is set {{ ... }}`; checks made before a `wait` no longer hold after it",
                field.name
            )),
        );
    }
}

/// The usual name of the field holding a channel's address, for help lines.
fn default_address(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms => "phone",
        Channel::Push => "push_token",
        Channel::Webpush => "webpush_endpoint",
    }
}

fn map(cx: &mut ExprChecker, env: &Env, entries: &[MapEntry]) {
    for (i, entry) in entries.iter().enumerate() {
        if let Some(prev) = entries[..i].iter().find(|p| p.key.name == entry.key.name) {
            cx.diags.push(
                Diagnostic::error(
                    Code::DuplicateName,
                    entry.key.span,
                    format!("the key `{}` is given twice", entry.key.name),
                )
                .with_label("repeated key")
                .with_related(prev.key.span, "first given here")
                .with_help("remove one of the two entries"),
            );
        }
        cx.value(env, &entry.value);
    }
}

fn tags_field(cx: &mut ExprChecker, s: &Stmt) {
    let ok = cx
        .schema
        .field("tags")
        .is_some_and(|i| matches!(cx.schema.fields[i].ty, Type::Set(_)));
    if !ok {
        cx.diags.push(
            Diagnostic::error(
                Code::NoTagsField,
                s.span,
                "`tag` and `untag` need a `tags: set<string>` field in the contact block",
            )
            .with_label("no tags field")
            .with_help("declare `tags: set<string>` in `contact { ... }`"),
        );
    }
}

fn set(
    cx: &mut ExprChecker,
    env: &Env,
    field: &Ident,
    op: AssignOp,
    value: &Expr,
) -> Option<Facts> {
    let Some(i) = cx.schema.field(&field.name) else {
        cx.value(env, value);
        cx.diags
            .push(unknown::at(&unknown::FIELD, field, cx.schema.field_names()));
        return Some(env.facts.clone());
    };
    let target = cx.schema.fields[i].ty.clone();
    let name = cx.schema.fields[i].name.clone();
    let mut facts = env.facts.clone();
    match op {
        AssignOp::Assign => {
            let t = cx.expr(env, value);
            if let (Type::Enum(members), ExprKind::Str(s)) = (target.unwrap_optional(), &value.kind)
            {
                if !members.contains(s) {
                    cx.diags
                        .push(super::schema::enum_member_error(s, members, value.span));
                }
            } else if !t.assignable_to(&target) {
                let mut d = Diagnostic::error(
                    Code::BadAssign,
                    value.span,
                    format!("`contact.{name}` is {target}, but this value is {t}"),
                )
                .with_label(format!("this is {t}"))
                .with_related(cx.schema.fields[i].span, format!("declared {target} here"));
                d = d.with_help(match super::schema::numeric_hint(&t, &target) {
                    Some(h) => h,
                    None if t.is_optional() => format!(
                        "an optional value can only be stored in an optional field; check it with `is set` first or declare `{name}: {target}?`"
                    ),
                    None => format!("assign a value of type {target}"),
                });
                cx.diags.push(d);
            }
            if !t.is_optional() {
                facts = facts.union(&one_fact(&name));
            }
        }
        AssignOp::Add | AssignOp::Sub => {
            let t = cx.value(env, value);
            let sym = if op == AssignOp::Add { "+=" } else { "-=" };
            let current = if target.is_optional() && !env.facts.contains(PathRoot::Contact, &name) {
                cx.diags.push(
                    Diagnostic::error(
                        Code::OptionalUnchecked,
                        field.span,
                        format!("`contact.{name}` may be unset here, so `{sym}` has nothing to update"),
                    )
                    .with_label(format!("this is {target}"))
                    .with_help(format!("check it first with `if contact.{name} is set {{ ... }}`, or assign with `=`")),
                );
                target.unwrap_optional().clone()
            } else {
                target.unwrap_optional().clone()
            };
            let ok = match (&current, &t) {
                (Type::Set(_), v) => v.is_stringy(),
                (Type::Int, Type::Int) | (Type::Float, Type::Int | Type::Float) => true,
                (Type::Duration | Type::Datetime, Type::Duration) => true,
                (_, Type::Error) | (Type::Error, _) => true,
                _ => false,
            };
            if !ok {
                cx.diags.push(
                    Diagnostic::error(
                        Code::BadCompoundAssign,
                        value.span,
                        format!("cannot `{sym}` {t} to `contact.{name}`, which is {target}"),
                    )
                    .with_label(format!("this is {t}"))
                    .with_help(match (&current, &t) {
                        (Type::Int, Type::Float) => "this field holds whole numbers; add an int".to_string(),
                        _ => "`+=` and `-=` update numbers (and datetimes or durations by a duration, sets by a string)".to_string(),
                    }),
                );
            }
        }
    }
    Some(facts)
}

fn one_fact(field: &str) -> Facts {
    let e = Expr {
        kind: ExprKind::IsSet {
            operand: Box::new(Expr {
                kind: ExprKind::Path {
                    root: PathRoot::Contact,
                    field: Ident {
                        name: field.to_string(),
                        span: Span::default(),
                    },
                },
                span: Span::default(),
            }),
            negated: false,
        },
        span: Span::default(),
    };
    facts_true(&e)
}

/// `HH:MM` within a day: hours 0 to 23, minutes 0 to 59.
fn clock_time(cx: &mut ExprChecker, c: &ClockTime) {
    if c.hour > 23 || c.minute > 59 {
        cx.diags.push(
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
}
