//! Checking `test` blocks: their steps' literal values against the contact
//! block and the events' payloads, their claims' names and expressions.

use super::expr::{Env, ExprChecker};
use super::types::Type;
use super::unknown;
use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;

/// The program's workflow names, for the claims that name one.
pub struct Workflows<'a> {
    names: Vec<&'a str>,
    set: std::collections::HashSet<&'a str>,
}

impl<'a> Workflows<'a> {
    pub fn of(program: &'a Program) -> Workflows<'a> {
        let names: Vec<&str> = program.workflows().map(|w| w.name.name.as_str()).collect();
        Workflows {
            set: names.iter().copied().collect(),
            names,
        }
    }
}

/// The contacts a test's steps created so far, in order (for "did you
/// mean") and as a set (so a test with many contacts checks in linear
/// time).
#[derive(Default)]
struct Known {
    names: Vec<String>,
    set: std::collections::HashSet<String>,
}

impl Known {
    fn contains(&self, name: &String) -> bool {
        self.set.contains(name)
    }

    fn push(&mut self, name: String) {
        self.set.insert(name.clone());
        self.names.push(name);
    }

    fn iter(&self) -> std::slice::Iter<'_, String> {
        self.names.iter()
    }
}

/// Checks one test block; `known`: the contacts that exist before its
/// first step (none in a test; the session's in the REPL).
pub fn test(cx: &mut ExprChecker, workflows: &Workflows, t: &TestBlock, known: &[String]) {
    // The contacts the steps so far created, for claims and events on them.
    let mut known = known.iter().cloned().fold(Known::default(), |mut k, name| {
        k.push(name);
        k
    });
    let mut prev_at: Option<(i64, Span)> = None;
    for step in &t.steps {
        match &step.kind {
            StepKind::At(e) => {
                if let ExprKind::Datetime(dt) = &e.kind {
                    let ms = dt.timestamp_millis();
                    if let Some((_, span)) = prev_at.filter(|(b, _)| ms < *b) {
                        cx.diags.push(
                            Diagnostic::error(
                                Code::Mismatch,
                                e.span,
                                "`at` moves the clock back",
                            )
                            .with_label("earlier than the `at` before it")
                            .with_related(span, "the clock was moved here")
                            .with_help("steps run in order and time never goes back; use `advance` or a later time"),
                        );
                    }
                    prev_at = Some((ms, e.span));
                }
            }
            StepKind::Advance(d) => cx.positive_duration(d.seconds, d.span, "`advance`"),
            StepKind::Contact { id, fields } | StepKind::Given { id, fields } => {
                contact_fields(cx, fields, Some(id));
                if !known.contains(&id.name) {
                    known.push(id.name.clone());
                }
            }
            StepKind::Update { id, fields } => {
                named(cx, id, &known);
                contact_fields(cx, fields, None);
            }
            StepKind::Event { id, event, fields } => {
                named(cx, id, &known);
                payload(cx, event, fields);
            }
            StepKind::Expect { id, claim } => {
                named(cx, id, &known);
                self::claim(cx, claim, workflows);
            }
        }
    }
}

/// A contact named by a step must have been created by an earlier one.
fn named(cx: &mut ExprChecker, id: &Ident, known: &Known) {
    if !known.contains(&id.name) {
        cx.diags.push(unknown::at(
            &unknown::CONTACT,
            id,
            known.iter().map(String::as_str),
        ));
    }
}

/// `{ f: v, ... }` for a contact: known fields, literal values of their
/// types; for a new contact (`created`), every required field given.
fn contact_fields(cx: &mut ExprChecker, fields: &[MapEntry], created: Option<&Ident>) {
    let schema = cx.schema;
    for e in fields {
        match schema.field(&e.key.name) {
            Some(i) => {
                let f = &schema.fields[i];
                literal(
                    cx,
                    &e.value,
                    f.ty.unwrap_optional(),
                    &format!("field `{}`", f.name),
                );
            }
            None => cx
                .diags
                .push(unknown::at(&unknown::FIELD, &e.key, schema.field_names())),
        }
    }
    if let Some(id) = created {
        for f in schema.fields.iter().filter(|f| f.is_required()) {
            if !fields.iter().any(|e| e.key.name == f.name) {
                cx.diags.push(
                    Diagnostic::error(
                        Code::MissingField,
                        id.span,
                        format!("contact `{}` is created without `{}`", id.name, f.name),
                    )
                    .with_label(format!("`{}: {}` is required", f.name, f.ty))
                    .with_help(format!(
                        "give it, as in `{}: ...`, or make the field optional or defaulted",
                        f.name
                    )),
                );
            }
        }
    }
}

/// `event ID TYPE { f: v, ... }`: a declared event, its payload's fields.
fn payload(cx: &mut ExprChecker, event: &Ident, fields: &[MapEntry]) {
    let Some(ty) = cx.event_ref(event) else {
        return;
    };
    let schema = cx.schema;
    let decl = &schema.events[ty];
    if decl.builtin {
        cx.diags.push(
            Diagnostic::error(
                Code::Mismatch,
                event.span,
                format!(
                    "`{}` is sent by the `contact` and `update` steps",
                    event.name
                ),
            )
            .with_label("a built-in event")
            .with_help(
                "write `contact ID { ... }` to create a contact, `update ID { ... }` to change one",
            ),
        );
        return;
    }
    for e in fields {
        match decl.field(&e.key.name) {
            Some((_, t)) => {
                let t = t.unwrap_optional().clone();
                literal(cx, &e.value, &t, &format!("field `{}`", e.key.name));
            }
            None => cx.diags.push(
                unknown::at(
                    &unknown::PAYLOAD,
                    &e.key,
                    decl.fields.iter().map(|(n, _)| n.as_str()),
                )
                .with_label(format!("`{}` has no such field", decl.name)),
            ),
        }
    }
    for (name, t) in decl.fields.iter().filter(|(_, t)| !t.is_optional()) {
        if !fields.iter().any(|e| e.key.name == *name) {
            cx.diags.push(
                Diagnostic::error(
                    Code::MissingField,
                    event.span,
                    format!("the event `{}` is sent without `{name}`", decl.name),
                )
                .with_label(format!("`{name}: {t}` is required"))
                .with_help(format!("give it, as in `{} {{ {name}: ... }}`", decl.name)),
            );
        }
    }
}

/// A literal value of type `want`.
fn literal(cx: &mut ExprChecker, e: &Expr, want: &Type, what: &str) {
    if !is_literal(e) {
        cx.diags.push(
            Diagnostic::error(
                Code::TestNotLiteral,
                e.span,
                format!("{what} must be given a literal value"),
            )
            .with_label("not a literal")
            .with_help(
                "write the value itself, such as `\"ES\"`, `42`, `true` or `@2026-03-01T09:00:00Z`",
            ),
        );
        return;
    }
    cx.expect(&Env::default(), e, want, what);
}

fn is_literal(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Str(_)
        | ExprKind::Bool(_)
        | ExprKind::Duration(_)
        | ExprKind::Datetime(_) => true,
        ExprKind::List(items) => items.iter().all(is_literal),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => matches!(operand.kind, ExprKind::Int(_) | ExprKind::Float(_)),
        _ => false,
    }
}

fn claim(cx: &mut ExprChecker, c: &Claim, workflows: &Workflows) {
    match c {
        Claim::Action { pattern: p, .. } | Claim::No(p) => self::pattern(cx, p),
        Claim::NothingElse => {}
        Claim::In { workflow, .. } | Claim::Outcome { workflow, .. } => {
            if !workflows.set.contains(workflow.name.as_str()) {
                cx.diags.push(unknown::at(
                    &unknown::WORKFLOW,
                    workflow,
                    workflows.names.iter().copied(),
                ));
            }
        }
        Claim::Holds(e) => {
            if let Some(span) = out_of_scope(e) {
                cx.diags.push(
                    Diagnostic::error(
                        Code::EventOutOfScope,
                        span,
                        "a claim reads the contact and `now`, not an event",
                    )
                    .with_label("no event here")
                    .with_help(
                        "claim what the event changed on the contact, or that an action was sent",
                    ),
                );
                return;
            }
            let env = Env {
                facts: super::expr::Facts::every_field(cx.schema),
                ..Env::default()
            };
            cx.expect(&env, e, &Type::Bool, "a claim");
        }
    }
}

/// The first `event.F` or `trigger.F` in `e`.
fn out_of_scope(e: &Expr) -> Option<Span> {
    let mut found = None;
    e.walk(&mut |x| {
        if let ExprKind::Path { root, .. } = &x.kind {
            if *root != PathRoot::Contact && found.is_none() {
                found = Some(x.span);
            }
        }
    });
    found
}

fn pattern(cx: &mut ExprChecker, p: &ActionPattern) {
    match &p.kind {
        PatternKind::Webhook { data, .. } => {
            for e in data.iter().flatten() {
                if !is_literal(&e.value) {
                    literal(cx, &e.value, &Type::Unknown, &format!("`{}`", e.key.name));
                }
            }
        }
        PatternKind::Send { channel, data, .. } => {
            if let Some(c) = channel {
                if crate::vocabulary::Channel::from_name(&c.name).is_none() {
                    cx.diags.push(unknown::at(
                        &unknown::CHANNEL,
                        c,
                        crate::vocabulary::Channel::names(),
                    ));
                }
            }
            for e in data.iter().flatten() {
                if !is_literal(&e.value) {
                    literal(cx, &e.value, &Type::Unknown, &format!("`{}`", e.key.name));
                }
            }
        }
        PatternKind::Set { field, value } => match cx.schema.field(&field.name) {
            Some(i) => {
                if let Some(v) = value {
                    let f = &cx.schema.fields[i];
                    let (ty, name) = (f.ty.unwrap_optional().clone(), f.name.clone());
                    literal(cx, v, &ty, &format!("field `{name}`"));
                }
            }
            None => cx
                .diags
                .push(unknown::at(&unknown::FIELD, field, cx.schema.field_names())),
        },
        _ => {}
    }
}
