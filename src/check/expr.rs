//! Typing of expressions, with the narrowing facts that `is set` establishes.

use super::schema::{enum_member_error, Schema};
use super::types::Type;
use super::unknown;
use crate::ast::{BinaryOp, Expr, ExprKind, HistoryKind, Ident, PathRoot, UnaryOp};
use crate::diagnostic::Code;
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::suggest;
use crate::vocabulary::{Builtin, HISTORY_FUNCTIONS};
use std::collections::BTreeSet;

/// Paths known to be set on the current control-flow path; on a path no
/// journey takes (after `exit`), everything is, so unreachable statements
/// get no narrowing errors (the `unreachable` lint reports them instead).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    set: BTreeSet<(PathRoot, String)>,
    unreachable: bool,
}

impl Facts {
    pub fn contains(&self, root: PathRoot, field: &str) -> bool {
        self.unreachable || self.set.contains(&(root, field.to_string()))
    }

    pub fn union(&self, other: &Facts) -> Facts {
        Facts {
            set: self.set.union(&other.set).cloned().collect(),
            unreachable: self.unreachable || other.unreachable,
        }
    }

    pub fn intersect(&self, other: &Facts) -> Facts {
        Facts {
            set: self.set.intersection(&other.set).cloned().collect(),
            unreachable: self.unreachable && other.unreachable,
        }
    }

    /// Facts about the contact end when the journey waits: attributes can change meanwhile.
    pub fn forget_contact(&mut self) {
        self.set.retain(|(root, _)| *root != PathRoot::Contact);
    }

    /// The facts of a path no journey takes.
    pub fn unreachable(&self) -> Facts {
        Facts {
            set: self.set.clone(),
            unreachable: true,
        }
    }

    /// Every contact field taken as set: a test's claim reads the contact
    /// as it is, and an unset field makes the claim fail at run time (with
    /// the field's value shown) rather than the test fail to check.
    pub fn every_field(schema: &Schema) -> Facts {
        Facts {
            set: schema
                .fields
                .iter()
                .map(|f| (PathRoot::Contact, f.name.clone()))
                .collect(),
            unreachable: false,
        }
    }

    fn one(root: PathRoot, field: &str) -> Facts {
        Facts {
            set: BTreeSet::from([(root, field.to_string())]),
            unreachable: false,
        }
    }
}

/// What facts hold when `e` is true.
pub fn facts_true(e: &Expr) -> Facts {
    match &e.kind {
        ExprKind::IsSet {
            operand,
            negated: false,
        } => path_fact(operand),
        ExprKind::IsSet {
            operand: _,
            negated: true,
        } => Facts::default(),
        ExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => facts_true(lhs).union(&facts_true(rhs)),
        ExprKind::Binary {
            op: BinaryOp::Or,
            lhs,
            rhs,
        } => facts_true(lhs).intersect(&facts_true(rhs)),
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => facts_false(operand),
        _ => Facts::default(),
    }
}

/// What facts hold when `e` is false.
pub fn facts_false(e: &Expr) -> Facts {
    match &e.kind {
        ExprKind::IsSet {
            operand,
            negated: true,
        } => path_fact(operand),
        ExprKind::Binary {
            op: BinaryOp::Or,
            lhs,
            rhs,
        } => facts_false(lhs).union(&facts_false(rhs)),
        ExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => facts_false(lhs).intersect(&facts_false(rhs)),
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => facts_true(operand),
        _ => Facts::default(),
    }
}

fn path_fact(e: &Expr) -> Facts {
    match &e.kind {
        ExprKind::Path { root, field } => Facts::one(*root, &field.name),
        _ => Facts::default(),
    }
}

/// What an expression may refer to at one point of a workflow.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// The event `event.F` reads, if any.
    pub event: Option<usize>,
    /// The event `trigger.F` reads, if the workflow is event-triggered.
    pub trigger: Option<usize>,
    pub facts: Facts,
}

impl Env {
    fn with_facts(&self, extra: &Facts) -> Env {
        Env {
            facts: self.facts.union(extra),
            ..self.clone()
        }
    }
}

/// Types expressions, pushing diagnostics.
pub struct ExprChecker<'a> {
    pub schema: &'a Schema,
    pub diags: &'a mut Vec<Diagnostic>,
}

impl ExprChecker<'_> {
    /// The type of `e`, which may be optional.
    pub fn expr(&mut self, env: &Env, e: &Expr) -> Type {
        match &e.kind {
            ExprKind::Int(_) => Type::Int,
            ExprKind::Float(_) => Type::Float,
            ExprKind::Str(_) => Type::Str,
            ExprKind::Bool(_) => Type::Bool,
            ExprKind::Duration(_) => Type::Duration,
            ExprKind::Datetime(_) | ExprKind::Now => Type::Datetime,
            ExprKind::List(items) => self.list(env, items),
            ExprKind::Path { root, field } => self.path(env, *root, field, true),
            ExprKind::Call { func, args } => self.call(env, func, args, e.span),
            ExprKind::History {
                kind,
                event,
                filter,
                within,
            } => {
                if let Some(id) = self.event_ref(event) {
                    if let Some(f) = filter {
                        let inner = Env {
                            event: Some(id),
                            ..env.clone()
                        };
                        self.expect(&inner, f, &Type::Bool, "a `where` condition");
                    }
                }
                if let Some(w) = within {
                    self.positive_duration(w.seconds, w.span, "a `within` window");
                }
                match kind {
                    HistoryKind::Seen => Type::Bool,
                    HistoryKind::Count => Type::Int,
                }
            }
            ExprKind::Unary { op, operand } => self.unary(env, *op, operand),
            ExprKind::Binary { op, lhs, rhs } => self.binary(env, *op, lhs, rhs, e.span),
            ExprKind::IsSet { operand, negated } => {
                let declared = match &operand.kind {
                    ExprKind::Path { root, field } => self.path(env, *root, field, false),
                    _ => self.expr(env, operand),
                };
                if !declared.is_optional() && !declared.is_error() {
                    let check = if *negated { "is not set" } else { "is set" };
                    self.diags.push(
                        Diagnostic::warning(
                            Code::AlwaysSet,
                            e.span,
                            format!("`{check}` on a value that is always set"),
                        )
                        .with_label(format!("this is {declared}, never unset"))
                        .with_help("only optional (`T?`) fields can be unset; remove the check"),
                    );
                }
                Type::Bool
            }
        }
    }

    /// The type of `e` where a value is needed: an optional is an error unless narrowed.
    pub fn value(&mut self, env: &Env, e: &Expr) -> Type {
        let t = self.expr(env, e);
        match t {
            Type::Optional(inner) => {
                let what = describe(e);
                self.diags.push(
                    Diagnostic::error(
                        Code::OptionalUnchecked,
                        e.span,
                        format!("{what} may be unset here"),
                    )
                    .with_label(format!("this is {inner}?, which may be unset"))
                    .with_help(format!(
                        "check it first, as in `if {} is set {{ ... }}`; checks made before a `wait` no longer hold after it",
                        crate::pretty::expr(e)
                    )),
                );
                *inner
            }
            t => t,
        }
    }

    /// Checks that `e` has type `want`, for `what` (used in the message).
    pub fn expect(&mut self, env: &Env, e: &Expr, want: &Type, what: &str) -> Type {
        let t = self.value(env, e);
        if let (Type::Enum(members), ExprKind::Str(s)) = (want, &e.kind) {
            if !members.contains(s) {
                self.diags.push(enum_member_error(s, members, e.span));
            }
            return want.clone();
        }
        if !t.assignable_to(want) {
            let mut d = Diagnostic::error(
                Code::Mismatch,
                e.span,
                format!("{what} must be {want}, found {t}"),
            )
            .with_label(format!("this is {t}"));
            if let Some(h) = super::schema::numeric_hint(&t, want) {
                d = d.with_help(h);
            } else if *want == Type::Bool {
                d = d.with_help("compare it to make a condition, as in `x == ...` or `x > ...`");
            } else {
                d = d.with_help(format!("write a value of type {want}"));
            }
            self.diags.push(d);
        }
        t
    }

    pub fn positive_duration(&mut self, seconds: i64, span: Span, what: &str) {
        if seconds <= 0 {
            self.diags.push(
                Diagnostic::error(
                    Code::NonPositiveDuration,
                    span,
                    format!("{what} must be longer than zero"),
                )
                .with_label("zero duration")
                .with_help("write a positive duration such as `1h` or `2d`"),
            );
        }
    }

    /// Resolves an event name, reporting unknown ones.
    pub fn event_ref(&mut self, name: &Ident) -> Option<usize> {
        let found = self.schema.event(&name.name);
        if found.is_none() {
            self.diags.push(unknown::at(
                &unknown::EVENT,
                name,
                self.schema.event_names(),
            ));
        }
        found
    }

    fn path(&mut self, env: &Env, root: PathRoot, field: &Ident, narrow: bool) -> Type {
        let ty = match root {
            PathRoot::Contact => match self.schema.field(&field.name) {
                Some(i) => self.schema.fields[i].ty.clone(),
                None => {
                    self.diags.push(unknown::at(
                        &unknown::FIELD,
                        field,
                        self.schema.field_names(),
                    ));
                    return Type::Error;
                }
            },
            PathRoot::Event | PathRoot::Trigger => {
                let scope = if root == PathRoot::Event {
                    env.event
                } else {
                    env.trigger
                };
                let Some(ev) = scope else {
                    self.diags
                        .push(out_of_scope(root, field.span.to(field.span)));
                    return Type::Error;
                };
                let event = &self.schema.events[ev];
                match event.field(&field.name) {
                    Some((_, t)) => t.clone(),
                    None => {
                        let names = event.fields.iter().map(|(n, _)| n.as_str());
                        let help = if event.fields.is_empty() {
                            format!("`{}` carries no payload", event.name)
                        } else {
                            suggest::help(&field.name, names, "payload field")
                        };
                        self.diags.push(
                            Diagnostic::error(
                                Code::UnknownPayloadField,
                                field.span,
                                format!("the event `{}` has no field `{}`", event.name, field.name),
                            )
                            .with_label("unknown field")
                            .with_help(help),
                        );
                        return Type::Error;
                    }
                }
            }
        };
        match ty {
            Type::Optional(inner) if narrow && env.facts.contains(root, &field.name) => *inner,
            t => t,
        }
    }

    fn list(&mut self, env: &Env, items: &[Expr]) -> Type {
        let mut elem = Type::Unknown;
        for item in items {
            let t = self.value(env, item);
            if elem.is_error() {
                elem = t;
            } else if elem.is_numeric() && t.is_numeric() {
                if t == Type::Float {
                    elem = Type::Float;
                }
            } else if elem.is_stringy() && t.is_stringy() {
                elem = Type::Str;
            } else if !t.assignable_to(&elem) {
                self.diags.push(
                    Diagnostic::error(
                        Code::Mismatch,
                        item.span,
                        format!("list elements must all be {elem}, found {t}"),
                    )
                    .with_label(format!("this is {t}"))
                    .with_help("a list holds values of one type"),
                );
            }
        }
        Type::List(Box::new(elem))
    }

    fn call(&mut self, env: &Env, func: &Ident, args: &[Expr], span: Span) -> Type {
        let Some(builtin) = Builtin::from_name(&func.name) else {
            for a in args {
                self.value(env, a);
            }
            let names = Builtin::ALL
                .iter()
                .map(|b| b.name())
                .chain(HISTORY_FUNCTIONS);
            self.diags
                .push(unknown::at(&unknown::FUNCTION, func, names));
            return Type::Error;
        };
        let (name, arity, sig) = (builtin.name(), builtin.arity(), builtin.signature());
        if args.len() != arity {
            self.diags.push(
                Diagnostic::error(
                    Code::Arity,
                    span,
                    format!(
                        "`{name}` takes {arity} argument{}, found {}",
                        if arity == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .with_label("wrong number of arguments")
                .with_help(format!("the signature is `{sig}`")),
            );
            return Type::Error;
        }
        let what = |i: usize| format!("argument {} of `{name}`", i + 1);
        match builtin {
            Builtin::Len => {
                let t = self.value(env, &args[0]);
                if !matches!(t, Type::Str | Type::Enum(_) | Type::Set(_) | Type::List(_))
                    && !t.is_error()
                {
                    self.diags.push(
                        Diagnostic::error(
                            Code::Mismatch,
                            args[0].span,
                            format!("`len` needs a string, set or list, found {t}"),
                        )
                        .with_label(format!("this is {t}"))
                        .with_help(format!("the signature is `{sig}`")),
                    );
                }
                Type::Int
            }
            Builtin::Lower | Builtin::Upper => {
                self.expect(env, &args[0], &Type::Str, &what(0));
                Type::Str
            }
            Builtin::Contains | Builtin::StartsWith => {
                self.expect(env, &args[0], &Type::Str, &what(0));
                self.expect(env, &args[1], &Type::Str, &what(1));
                Type::Bool
            }
            Builtin::Days => {
                self.expect(env, &args[0], &Type::Duration, &what(0));
                Type::Float
            }
        }
    }

    fn unary(&mut self, env: &Env, op: UnaryOp, operand: &Expr) -> Type {
        match op {
            UnaryOp::Not => {
                self.expect(env, operand, &Type::Bool, "the operand of `not`");
                Type::Bool
            }
            UnaryOp::Neg => {
                let t = self.value(env, operand);
                if !t.is_numeric() && t != Type::Duration {
                    self.diags.push(bad_operand("-", &t, &t, operand.span));
                    return Type::Error;
                }
                t
            }
        }
    }

    fn binary(&mut self, env: &Env, op: BinaryOp, lhs: &Expr, rhs: &Expr, span: Span) -> Type {
        match op {
            BinaryOp::And | BinaryOp::Or => {
                self.expect(
                    env,
                    lhs,
                    &Type::Bool,
                    &format!("the left side of `{}`", op.as_str()),
                );
                let extra = if op == BinaryOp::And {
                    facts_true(lhs)
                } else {
                    facts_false(lhs)
                };
                self.expect(
                    &env.with_facts(&extra),
                    rhs,
                    &Type::Bool,
                    &format!("the right side of `{}`", op.as_str()),
                );
                Type::Bool
            }
            BinaryOp::Eq | BinaryOp::Ne => {
                let l = self.value(env, lhs);
                let r = self.value(env, rhs);
                if self.enum_literal(&l, rhs) || self.enum_literal(&r, lhs) {
                    return Type::Bool;
                }
                if !l.comparable(&r) {
                    self.diags.push(
                        Diagnostic::error(
                            Code::Mismatch,
                            span,
                            format!("cannot compare {l} with {r}"),
                        )
                        .with_label(format!("{l} {} {r}", op.as_str()))
                        .with_help("both sides of a comparison must have the same type"),
                    );
                }
                Type::Bool
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let l = self.value(env, lhs);
                let r = self.value(env, rhs);
                let ok = (l.is_numeric() && r.is_numeric())
                    || l.is_error()
                    || r.is_error()
                    || (l == r && matches!(l, Type::Datetime | Type::Duration | Type::Str));
                if !ok {
                    self.diags.push(
                        Diagnostic::error(
                            Code::Mismatch,
                            span,
                            format!("cannot order {l} and {r} with `{}`", op.as_str()),
                        )
                        .with_label(format!("{l} {} {r}", op.as_str()))
                        .with_help("`<`, `<=`, `>` and `>=` compare two numbers, datetimes, durations or strings"),
                    );
                }
                Type::Bool
            }
            BinaryOp::In => self.membership(env, lhs, rhs),
            BinaryOp::Coalesce => self.coalesce(env, lhs, rhs),
            _ => {
                let l = self.value(env, lhs);
                let r = self.value(env, rhs);
                match arithmetic(op, &l, &r) {
                    Some(t) => t,
                    None => {
                        self.diags.push(bad_operand(op.as_str(), &l, &r, span));
                        Type::Error
                    }
                }
            }
        }
    }

    /// `x in [..]`, `x in contact.tags`.
    /// `X ?? Y`: X optional (or narrowed to set), Y of X's type; the
    /// result is never unset.
    fn coalesce(&mut self, env: &Env, lhs: &Expr, rhs: &Expr) -> Type {
        let l = self.expr(env, lhs);
        let inner = l.unwrap_optional().clone();
        if inner.is_error() {
            self.value(env, rhs);
            return Type::Error;
        }
        let r = self.expect(env, rhs, &inner, "the right side of `??`");
        // An int fallback for a float stays a float.
        if inner.is_numeric() && r == Type::Float {
            return Type::Float;
        }
        inner
    }

    fn membership(&mut self, env: &Env, lhs: &Expr, rhs: &Expr) -> Type {
        let l = self.value(env, lhs);
        let r = self.value(env, rhs);
        let elem = match &r {
            Type::List(e) | Type::Set(e) => (**e).clone(),
            Type::Error => return Type::Bool,
            other => {
                self.diags.push(
                    Diagnostic::error(
                        Code::Mismatch,
                        rhs.span,
                        format!("`in` needs a list or a set on its right, found {other}"),
                    )
                    .with_label(format!("this is {other}"))
                    .with_help("write a list such as `[\"ES\", \"PT\"]` or a set field such as `contact.tags`"),
                );
                return Type::Bool;
            }
        };
        if let (Type::Enum(_), ExprKind::List(items)) = (&l, &rhs.kind) {
            for item in items {
                self.enum_literal(&l, item);
            }
            return Type::Bool;
        }
        if !l.comparable(&elem) {
            self.diags.push(
                Diagnostic::error(
                    Code::Mismatch,
                    lhs.span,
                    format!("cannot look for {l} in a collection of {elem}"),
                )
                .with_label(format!("this is {l}"))
                .with_help("the value and the elements must have the same type"),
            );
        }
        Type::Bool
    }

    /// When `ty` is an enum and `other` a string literal, checks membership; true if it applied.
    fn enum_literal(&mut self, ty: &Type, other: &Expr) -> bool {
        if let (Type::Enum(members), ExprKind::Str(s)) = (ty, &other.kind) {
            if !members.contains(s) {
                self.diags.push(enum_member_error(s, members, other.span));
            }
            return true;
        }
        false
    }
}

/// The result type of an arithmetic operator, or `None` when it does not apply.
pub fn arithmetic(op: BinaryOp, l: &Type, r: &Type) -> Option<Type> {
    use Type::*;
    if l.is_error() || r.is_error() {
        return Some(Error);
    }
    match (op, l, r) {
        (_, Int, Int) => Some(Int),
        (_, Int | Float, Int | Float) => Some(Float),
        (BinaryOp::Add, Str | Enum(_), Str | Enum(_)) => Some(Str),
        (BinaryOp::Add | BinaryOp::Sub, Datetime, Duration) => Some(Datetime),
        (BinaryOp::Add, Duration, Datetime) => Some(Datetime),
        (BinaryOp::Sub, Datetime, Datetime) => Some(Duration),
        (BinaryOp::Add | BinaryOp::Sub, Duration, Duration) => Some(Duration),
        (BinaryOp::Mul | BinaryOp::Div, Duration, Int | Float) => Some(Duration),
        (BinaryOp::Mul, Int | Float, Duration) => Some(Duration),
        _ => None,
    }
}

fn bad_operand(op: &str, l: &Type, r: &Type, span: Span) -> Diagnostic {
    let msg = if l == r {
        format!("cannot apply `{op}` to {l}")
    } else {
        format!("cannot apply `{op}` to {l} and {r}")
    };
    Diagnostic::error(Code::BadOperand, span, msg)
        .with_label("here")
        .with_help(
            "arithmetic works on numbers, on a datetime with a duration, and `+` joins strings",
        )
}

fn out_of_scope(root: PathRoot, span: Span) -> Diagnostic {
    let (msg, help) = if root == PathRoot::Event {
        (
            "`event` is not available here",
            "`event.F` can be read in the `where` of an event and in the block that runs when `wait for` receives its event",
        )
    } else {
        (
            "`trigger` is not available here",
            "`trigger.F` reads the payload of the event that started the workflow; this workflow is not started by an event",
        )
    };
    Diagnostic::error(
        if root == PathRoot::Event {
            Code::EventOutOfScope
        } else {
            Code::TriggerOutOfScope
        },
        span,
        msg,
    )
    .with_label("no event here")
    .with_help(help)
}

fn describe(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Path { root, field } => format!("`{}.{}`", root.as_str(), field.name),
        _ => "this value".to_string(),
    }
}
