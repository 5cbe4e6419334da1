//! `nurture test`: a program's `test` blocks run through the runtime's front
//! door (section 8 of the language). Each test starts from no contacts with
//! the clock at 2026-01-01T00:00:00Z; its steps feed events and move the
//! clock, its claims look at what was emitted and at the state.

use crate::ast::{
    ActionPattern, Claim, Expr, ExprKind, MapEntry, PatternKind, StepKind, TestBlock,
};
use crate::check::Schema;
use crate::runtime::{compile_expr, Coverage};
use crate::runtime::{format_datetime, Action, Emitted, Lifecycle, Millis, Outcome, Value, What};
use crate::runtime::{Compiled, Interpreter};
use crate::source::Span;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// Where every test's clock starts: 2026-01-01T00:00:00Z.
pub const START: Millis = 1_767_225_600_000;

/// What became of one test.
#[derive(Clone, Debug)]
pub struct TestRun {
    pub name: String,
    /// Where the test block starts.
    pub span: Span,
    /// `None` when every claim held.
    pub failure: Option<Failure>,
    /// What the test ran, when asked for.
    pub coverage: Option<Coverage>,
}

/// Why a test failed: the step or claim, what was wrong, and the actions
/// emitted for its contact so far (with their times), as people read them.
#[derive(Clone, Debug)]
pub struct Failure {
    pub span: Span,
    pub message: String,
    pub contact: Option<String>,
    pub actions: Vec<String>,
    /// The sends not emitted for the contact: suppressed, or held now.
    pub withheld: Vec<String>,
}

/// Runs `test` on its own; with `coverage`, notes what it ran.
pub fn run(test: &TestBlock, prog: &Arc<Compiled>, coverage: bool) -> TestRun {
    let mut it = Interpreter::new(prog.clone(), true);
    if coverage {
        it.record_coverage();
    }
    it.start_clock(START);
    let mut claims = Claims::default();
    let failure = test.steps.iter().find_map(|step| {
        let result = Stepper {
            it: &mut it,
            start: START,
            claims: &mut claims,
        }
        .step(&step.kind);
        for r in it.take_emitted() {
            claims.observe(&r);
        }
        result.err().map(|(message, contact)| Failure {
            span: step.span,
            actions: contact
                .as_deref()
                .map(|c| claims.actions_of(&it, c))
                .unwrap_or_default(),
            withheld: contact
                .as_deref()
                .map(|c| claims.withheld_of(&it, c))
                .unwrap_or_default(),
            contact,
            message,
        })
    });
    TestRun {
        name: test.name.value.clone(),
        span: test.span,
        failure,
        coverage: it.coverage().cloned(),
    }
}

/// One workflow's coverage by a set of tests.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowCoverage {
    pub name: String,
    /// Statements run, of all.
    pub statements: (usize, usize),
    /// Branches taken, of all: each `if`/`else if` arm and the `else` (an
    /// absent one too), each `split` arm, a `wait for`'s received and
    /// timeout paths.
    pub branches: (usize, usize),
    /// Each statement: where it is, and whether it ran.
    pub statement_spans: Vec<(Span, bool)>,
    /// Each branch: where its choice is, and whether it was taken.
    pub branch_spans: Vec<(Span, bool)>,
}

impl WorkflowCoverage {
    /// The statements never run.
    pub fn never_run(&self) -> impl Iterator<Item = Span> + '_ {
        self.statement_spans
            .iter()
            .filter(|(_, ran)| !ran)
            .map(|(s, _)| *s)
    }
}

/// Per workflow, what `cov` (merged over the tests) ran of `prog`.
pub fn coverage_report(prog: &Compiled, cov: &Coverage) -> Vec<WorkflowCoverage> {
    cov.by_place(prog)
        .into_iter()
        .map(|r| {
            let count = |v: &[(Span, bool)]| (v.iter().filter(|(_, b)| *b).count(), v.len());
            WorkflowCoverage {
                name: r.workflow.to_string(),
                statements: count(&r.statements),
                branches: count(&r.branches),
                statement_spans: r.statements,
                branch_spans: r.branches,
            }
        })
        .collect()
}

/// An action emitted, and whether a claim has matched it.
struct Seen {
    emitted: Emitted,
    matched: bool,
}

/// What a run emitted, as claims look at it: the actions (and which a
/// claim matched) and the latest outcome per contact and workflow.
#[derive(Default)]
pub struct Claims {
    actions: Vec<Seen>,
    outcomes: HashMap<(String, u16), Outcome>,
    /// Sends not emitted: suppressed (consent, a cap), in order.
    suppressed: Vec<Emitted>,
    /// Sends held by quiet hours now, per contact and workflow: until when.
    held: HashMap<(String, u16), Emitted>,
}

impl Claims {
    /// Notes one emitted record.
    pub fn observe(&mut self, r: &Emitted) {
        // A held send is no longer held once its journey moves on.
        if !matches!(r.what, What::Lifecycle(Lifecycle::Held { .. })) && !self.held.is_empty() {
            self.held.remove(&(r.contact.to_string(), r.workflow));
        }
        match &r.what {
            What::Lifecycle(Lifecycle::Suppressed { .. }) => self.suppressed.push(r.clone()),
            What::Lifecycle(Lifecycle::Held { .. }) => {
                self.held
                    .insert((r.contact.to_string(), r.workflow), r.clone());
            }
            What::Action(_) => self.actions.push(Seen {
                emitted: r.clone(),
                matched: false,
            }),
            What::Lifecycle(Lifecycle::End(outcome)) => {
                self.outcomes
                    .insert((r.contact.to_string(), r.workflow), *outcome);
            }
            What::Lifecycle(_) => {}
        }
    }

    /// The sends not emitted for `id`: those suppressed (with the reason),
    /// then those held by quiet hours now (until when), as people read them.
    pub fn withheld_of(&self, it: &Interpreter, id: &str) -> Vec<String> {
        let prog = it.program();
        let workflow = |w: u16| {
            prog.workflows
                .get(w as usize)
                .map_or(String::new(), |w| w.name.to_string())
        };
        let mut out: Vec<String> = self
            .suppressed
            .iter()
            .filter(|r| r.contact == id)
            .filter_map(|r| match &r.what {
                What::Lifecycle(Lifecycle::Suppressed {
                    channel,
                    template,
                    reason,
                }) => Some(format!(
                    "{} send {channel} {} suppressed: {} ({})",
                    format_datetime(r.at),
                    crate::pretty::string(template),
                    match reason {
                        crate::runtime::Suppression::Consent => "no consent",
                        crate::runtime::Suppression::FrequencyCap => "frequency cap",
                    },
                    workflow(r.workflow)
                )),
                _ => None,
            })
            .collect();
        let mut held: Vec<&Emitted> = self
            .held
            .iter()
            .filter(|((c, _), _)| c == id)
            .map(|(_, r)| r)
            .collect();
        held.sort_by_key(|r| (r.at, r.workflow));
        for r in held {
            if let What::Lifecycle(Lifecycle::Held { until }) = &r.what {
                out.push(format!(
                    "{} a send held by quiet hours until {} ({})",
                    format_datetime(r.at),
                    format_datetime(*until),
                    workflow(r.workflow)
                ));
            }
        }
        out
    }

    /// Every action emitted for `id`, in order, as people read them.
    pub fn actions_of(&self, it: &Interpreter, id: &str) -> Vec<String> {
        self.actions
            .iter()
            .filter(|s| s.emitted.contact == id)
            .map(|s| {
                format!(
                    "{}{}",
                    describe(it, &s.emitted),
                    if s.matched { " [matched]" } else { "" }
                )
            })
            .collect()
    }
}

/// What a step did to the run, for a driver that keeps its inputs (the
/// REPL replays them when the program changes).
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// An input record was fed (the line, as `nurture run` reads it).
    Fed(String),
    /// A contact was loaded (the line, as `--contacts` reads it).
    Loaded(String),
    /// The clock moved to this time.
    Moved(Millis),
    /// A claim held.
    Held,
}

/// Runs steps on an interpreter whose emitted records the caller hands to
/// `claims` after each step.
pub struct Stepper<'a> {
    pub it: &'a mut Interpreter,
    /// Where the clock starts when a step finds it not started (the
    /// interpreter's clock is the only one: the steps move it).
    pub start: Millis,
    pub claims: &'a mut Claims,
}

/// A failed step: the message, and the contact it was about.
type StepError = (String, Option<String>);

impl Stepper<'_> {
    /// The clock: the interpreter's, or where it will start.
    pub fn now(&self) -> Millis {
        self.it.now().unwrap_or(self.start)
    }

    /// Runs one step; every step but a claim starts the clock first.
    pub fn step(&mut self, step: &StepKind) -> Result<Effect, StepError> {
        if !matches!(step, StepKind::Expect { .. }) {
            self.it.start_clock(self.start);
        }
        match step {
            StepKind::At(e) => {
                let t = match &e.kind {
                    ExprKind::Datetime(dt) => dt.timestamp_millis(),
                    _ => return Err(("`at` needs a datetime".into(), None)),
                };
                if t < self.now() {
                    return Err((
                        format!(
                            "`at` would move the clock back, from {} to {}",
                            format_datetime(self.now()),
                            format_datetime(t)
                        ),
                        None,
                    ));
                }
                self.move_to(t);
                Ok(Effect::Moved(t))
            }
            StepKind::Advance(d) => {
                let t = self.now().saturating_add(d.seconds.saturating_mul(1000));
                self.move_to(t);
                Ok(Effect::Moved(t))
            }
            StepKind::Contact { id, fields } => {
                self.feed(&id.name, "contact_created", Some(fields), &[])
            }
            StepKind::Update { id, fields } => {
                self.feed(&id.name, "contact_updated", Some(fields), &[])
            }
            StepKind::Event { id, event, fields } => self.feed(&id.name, &event.name, None, fields),
            StepKind::Given { id, fields } => {
                let mut line = format!("{{\"id\":{}", json_str(&id.name));
                for e in fields {
                    let _ = write!(line, ",{}:{}", json_str(&e.key.name), self.json(&e.value)?);
                }
                line.push('}');
                self.it
                    .load_contact_line(&line)
                    .map_err(|e| (e.to_string(), Some(id.name.clone())))?;
                Ok(Effect::Loaded(line))
            }
            StepKind::Expect { id, claim } => self
                .claim(&id.name, claim)
                .map(|()| Effect::Held)
                .map_err(|e| (e, Some(id.name.clone()))),
        }
    }

    /// Moves the clock to `t`, firing the timers due up to it, included.
    fn move_to(&mut self, t: Millis) {
        self.it.advance_to(t);
    }

    /// Feeds one input record, as `nurture run` reads it, at the clock.
    fn feed(
        &mut self,
        id: &str,
        ty: &str,
        attributes: Option<&[MapEntry]>,
        payload: &[MapEntry],
    ) -> Result<Effect, StepError> {
        let mut line = format!(
            "{{\"at\":\"{}\",\"contact\":{},\"type\":{}",
            format_datetime(self.now()),
            json_str(id),
            json_str(ty)
        );
        if let Some(fields) = attributes {
            line.push_str(",\"attributes\":{");
            for (i, e) in fields.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let _ = write!(line, "{}:{}", json_str(&e.key.name), self.json(&e.value)?);
            }
            line.push('}');
        }
        for e in payload {
            let _ = write!(line, ",{}:{}", json_str(&e.key.name), self.json(&e.value)?);
        }
        line.push('}');
        self.it
            .feed_line(&line)
            .map_err(|e| (e.to_string(), Some(id.to_string())))?;
        Ok(Effect::Fed(line))
    }

    /// A literal's value.
    fn value(&self, e: &Expr) -> Result<Value, StepError> {
        self.it
            .eval(
                None,
                &compile_expr(e, &self.it.program().schema),
                self.now(),
            )
            .map_err(|f| (f.message, None))
    }

    /// A literal as JSON, as an input record holds it.
    fn json(&self, e: &Expr) -> Result<String, StepError> {
        let mut out = String::new();
        match self.value(e)? {
            // Input records hold durations as whole seconds.
            Value::Duration(ms) => out.push_str(&(ms / 1000).to_string()),
            v => v.write_json(&mut out),
        }
        Ok(out)
    }

    fn claim(&mut self, id: &str, claim: &Claim) -> Result<(), String> {
        match claim {
            Claim::Action { pattern, at } => {
                let at = match at {
                    Some(e) => Some(self.value(e).map_err(|e| e.0)?),
                    None => None,
                };
                let at = at.and_then(|v| match v {
                    Value::Datetime(t) => Some(t),
                    _ => None,
                });
                let found = self.claims.actions.iter().position(|s| {
                    !s.matched
                        && s.emitted.contact == id
                        && at.is_none_or(|t| s.emitted.at == t)
                        && self.matches(pattern, &s.emitted)
                });
                match found {
                    Some(i) => {
                        self.claims.actions[i].matched = true;
                        Ok(())
                    }
                    None => Err(format!(
                        "no action for `{id}` matches `{}`{}",
                        crate::fmt::pattern_text(pattern),
                        at.map(|t| format!(" at {}", format_datetime(t)))
                            .unwrap_or_default()
                    )),
                }
            }
            Claim::No(pattern) => {
                let found = self.claims.actions.iter().find(|s| {
                    !s.matched && s.emitted.contact == id && self.matches(pattern, &s.emitted)
                });
                match found {
                    Some(s) => Err(format!(
                        "an action for `{id}` matches `{}`: {}",
                        crate::fmt::pattern_text(pattern),
                        describe(self.it, &s.emitted)
                    )),
                    None => Ok(()),
                }
            }
            Claim::NothingElse => {
                let left: Vec<String> = self
                    .claims
                    .actions
                    .iter()
                    .filter(|s| !s.matched && s.emitted.contact == id)
                    .map(|s| describe(self.it, &s.emitted))
                    .collect();
                if left.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "{} action{} for `{id}` matched by no claim: {}",
                        left.len(),
                        if left.len() == 1 { "" } else { "s" },
                        left.join("; ")
                    ))
                }
            }
            Claim::In { workflow, negated } => {
                let w = self.workflow(&workflow.name)?;
                let inside = self
                    .it
                    .journeys(id)
                    .is_some_and(|js| js.iter().any(|j| j.workflow == w));
                match (inside, negated) {
                    (true, false) | (false, true) => Ok(()),
                    (false, false) => Err(format!(
                        "`{id}` has no journey in flight in `{}`",
                        workflow.name
                    )),
                    (true, true) => Err(format!(
                        "`{id}` has a journey in flight in `{}`",
                        workflow.name
                    )),
                }
            }
            Claim::Outcome { workflow, outcome } => {
                let w = self.workflow(&workflow.name)?;
                match self.claims.outcomes.get(&(id.to_string(), w)) {
                    Some(o) if o.as_str() == outcome.name => Ok(()),
                    Some(o) => Err(format!(
                        "`{id}`'s latest journey in `{}` ended {}, not {}",
                        workflow.name,
                        o.as_str(),
                        outcome.name
                    )),
                    None if self
                        .it
                        .journeys(id)
                        .is_some_and(|js| js.iter().any(|j| j.workflow == w)) =>
                    {
                        Err(format!(
                            "`{id}`'s journey in `{}` is still in flight",
                            workflow.name
                        ))
                    }
                    None => Err(format!(
                        "`{id}` has had no journey in `{}` end",
                        workflow.name
                    )),
                }
            }
            Claim::Holds(e) => {
                let c = compile_expr(e, &self.it.program().schema);
                match self.it.eval(Some(id), &c, self.now()) {
                    Ok(Value::Bool(true)) => Ok(()),
                    Ok(_) => Err(format!(
                        "`{}` is false{}",
                        crate::pretty::expr(e),
                        self.values_in(id, e)
                    )),
                    Err(f) => Err(f.message),
                }
            }
        }
    }

    /// The contact fields `e` reads, and their values: `(contact.score is 3)`.
    fn values_in(&self, id: &str, e: &Expr) -> String {
        let mut parts: Vec<String> = Vec::new();
        e.walk(&mut |x| {
            if let ExprKind::Path { field, .. } = &x.kind {
                let text = format!("contact.{}", field.name);
                if parts.iter().any(|p| p.starts_with(&format!("{text} "))) {
                    return;
                }
                if let Ok(v) = self.it.eval(
                    Some(id),
                    &compile_expr(x, &self.it.program().schema),
                    self.now(),
                ) {
                    parts.push(format!("{text} is {}", show(&v)));
                }
            }
        });
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }

    fn workflow(&self, name: &str) -> Result<u16, String> {
        self.it
            .program()
            .workflows
            .iter()
            .position(|w| &*w.name == name)
            .map(|w| w as u16)
            .ok_or_else(|| format!("unknown workflow `{name}`"))
    }

    /// The keys a pattern's `with { }` gives are in the action's data, with
    /// equal values (keys it leaves off match anything).
    fn data_matches(&self, want: &Option<Vec<MapEntry>>, got: &crate::runtime::DataMap) -> bool {
        want.iter().flatten().all(|e| {
            let got = got
                .iter()
                .flatten()
                .find(|(k, _)| **k == *e.key.name)
                .map(|(_, v)| v);
            match (got, self.value(&e.value)) {
                (Some(got), Ok(want)) => same(got, &want),
                _ => false,
            }
        })
    }

    fn matches(&self, p: &ActionPattern, r: &Emitted) -> bool {
        let What::Action(a) = &r.what else {
            return false;
        };
        let text = |want: &Option<crate::ast::StrLit>, got: &str| {
            want.as_ref().is_none_or(|w| w.value == got)
        };
        match (&p.kind, a) {
            (
                PatternKind::Send {
                    channel,
                    template,
                    data,
                },
                Action::Send {
                    channel: c,
                    template: t,
                    data: d,
                },
            ) => {
                channel.as_ref().is_none_or(|w| w.name == **c)
                    && text(template, t)
                    && self.data_matches(data, d)
            }
            (PatternKind::Webhook { name, data }, Action::Webhook { name: n, data: d }) => {
                text(name, n) && self.data_matches(data, d)
            }
            (
                PatternKind::Notify { to, message },
                Action::Notify {
                    to: t, message: m, ..
                },
            ) => text(to, t) && text(message, m),
            (PatternKind::Tag(w), Action::Tag(t)) | (PatternKind::Untag(w), Action::Untag(t)) => {
                text(w, t)
            }
            (PatternKind::Set { field, value }, Action::Set { field: f, value: v }) => {
                self.it.program().schema.field(&field.name) == Some(*f as usize)
                    && value
                        .as_ref()
                        .is_none_or(|e| self.value(e).is_ok_and(|want| same(v, &want)))
            }
            (PatternKind::AddToList(w), Action::AddToList(n))
            | (PatternKind::RemoveFromList(w), Action::RemoveFromList(n))
            | (PatternKind::AddToAudience(w), Action::AddToAudience(n)) => text(w, n),
            _ => false,
        }
    }
}

/// One action as a line people read: time, statement, workflow.
fn describe(it: &Interpreter, r: &Emitted) -> String {
    let prog = it.program();
    let what = match &r.what {
        What::Action(a) => action_text(a, &prog.schema),
        What::Lifecycle(_) => String::new(),
    };
    let workflow = prog
        .workflows
        .get(r.workflow as usize)
        .map_or("", |w| &w.name);
    format!("{} {what} ({workflow})", format_datetime(r.at))
}

/// An action written like the statement that emitted it.
pub fn action_text(a: &Action, schema: &Schema) -> String {
    let s = |t: &str| crate::pretty::string(t);
    match a {
        Action::Send {
            channel,
            template,
            data,
        } => {
            let mut out = format!("send {channel} {}", s(template));
            if let Some(d) = data {
                let parts: Vec<String> =
                    d.iter().map(|(k, v)| format!("{k}: {}", show(v))).collect();
                let _ = write!(out, " with {{ {} }}", parts.join(", "));
            }
            out
        }
        Action::Tag(t) => format!("tag {}", s(t)),
        Action::Untag(t) => format!("untag {}", s(t)),
        Action::Set { field, value } => format!(
            "set contact.{} = {}",
            schema
                .fields
                .get(*field as usize)
                .map_or("?", |f| f.name.as_str()),
            show(value)
        ),
        Action::AddToList(n) => format!("add to list {}", s(n)),
        Action::RemoveFromList(n) => format!("remove from list {}", s(n)),
        Action::AddToAudience(n) => format!("add to audience {}", s(n)),
        Action::Notify { to, message } => format!("notify {} {}", s(to), s(message)),
        Action::Webhook { name, .. } => format!("webhook {}", s(name)),
    }
}

/// A value as the language writes it.
fn show(v: &Value) -> String {
    match v {
        Value::Unset => "unset".into(),
        Value::Str(t) => crate::pretty::string(t),
        Value::Datetime(t) => format!("@{}", format_datetime(*t)),
        Value::Duration(d) => crate::runtime::format_duration(*d),
        _ => {
            let mut out = String::new();
            v.write_text(&mut out);
            out
        }
    }
}

/// Equal values; an integer and a float equal when their numbers are.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(i), Value::Float(f)) | (Value::Float(f), Value::Int(i)) => *i as f64 == *f,
        _ => a == b,
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::new();
    crate::runtime::write_json_str(&mut out, s);
    out
}
