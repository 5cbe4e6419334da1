//! Compiling a checked program into its executable form: fields resolved to
//! slots, events to ids, statements flattened into jump-linked instructions,
//! so the per-event path does no name lookups.

use super::input::Projection;
use super::value::{Millis, Value};
use crate::ast::{self, BinaryOp, ExprKind, HistoryKind, PathRoot, StmtKind, UnaryOp};
use crate::check::{Schema, Type};
use crate::source::Span;
use crate::vocabulary::Channel;
use std::sync::Arc;

use super::program::{
    Builtin, CExpr, CTrigger, Compiled, Criterion, Data, Every, FunnelShape, Instr, Part, Reenter,
    Retention, SplitShape, TallySpec, Until, WaitPlace, Workflow,
};

/// Whether a history filter can be judged once, as its event arrives: it
/// reads only that event's payload and constants (not the contact, the
/// clock or the trigger, which change), and holds no arithmetic (whose
/// faults belong to the journey that evaluates it).
fn tallied(f: &CExpr) -> bool {
    match f {
        CExpr::Const(_) | CExpr::Event(_) => true,
        CExpr::Contact(_) | CExpr::Trigger(_) | CExpr::Now | CExpr::History { .. } => false,
        CExpr::Neg(..) => false,
        CExpr::Bin(op, a, b, _) => {
            !matches!(
                op,
                BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div
            ) && tallied(a)
                && tallied(b)
        }
        CExpr::Not(a) | CExpr::IsSet(a, _) => tallied(a),
        CExpr::And(a, b) | CExpr::Or(a, b) => tallied(a) && tallied(b),
        CExpr::Call(_, args) | CExpr::List(args) => args.iter().all(tallied),
    }
}

/// Each stage's parent in the funnel (LANGUAGE.md section 9): the nearest
/// earlier stage that every path to every occurrence of it passes through
/// (`None`: `entered`), and the same for `converted` over every `convert`
/// and the workflow's end.
fn funnel_parents(body: &[ast::Stmt], stages: &[Arc<str>]) -> (Vec<Option<u16>>, Option<u16>) {
    use std::collections::BTreeSet;
    type Passed = Option<BTreeSet<u16>>;
    /// What every path of both passed: `None` for a path that ends.
    fn meet(a: Passed, b: Passed) -> Passed {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.intersection(&b).copied().collect()),
            (a, None) => a,
            (None, b) => b,
        }
    }
    struct Walk<'a> {
        stages: &'a [Arc<str>],
        /// Per stage, what every path to it passed (`None`: not reached).
        doms: Vec<Passed>,
        converted: Passed,
    }
    impl Walk<'_> {
        fn block(&mut self, stmts: &[ast::Stmt], mut now: Passed) -> Passed {
            for s in stmts {
                let here = now.clone()?;
                now = match &s.kind {
                    StmtKind::Stage(name) => {
                        let i = self.stages.iter().position(|n| **n == *name.value);
                        match i {
                            Some(i) => {
                                self.doms[i] = meet(self.doms[i].take(), Some(here.clone()));
                                let mut next = here;
                                next.insert(i as u16);
                                Some(next)
                            }
                            None => Some(here),
                        }
                    }
                    StmtKind::Exit => None,
                    StmtKind::Convert => {
                        self.converted = meet(self.converted.take(), Some(here));
                        None
                    }
                    StmtKind::If {
                        branches,
                        otherwise,
                    } => {
                        let mut out = None;
                        for (_, b) in branches {
                            let end = self.block(&b.stmts, Some(here.clone()));
                            out = meet(out, end);
                        }
                        let last = match otherwise {
                            Some(b) => self.block(&b.stmts, Some(here)),
                            None => Some(here),
                        };
                        meet(out, last)
                    }
                    StmtKind::WaitFor {
                        received, timeout, ..
                    } => {
                        let mut arm = |b: &Option<ast::Block>| match b {
                            Some(b) => self.block(&b.stmts, Some(here.clone())),
                            None => Some(here.clone()),
                        };
                        let a = arm(received);
                        let b = arm(timeout);
                        meet(a, b)
                    }
                    StmtKind::Split { arms, .. } => {
                        let mut out = None;
                        for a in arms {
                            let end = self.block(&a.body.stmts, Some(here.clone()));
                            out = meet(out, end);
                        }
                        out
                    }
                    _ => Some(here),
                };
            }
            now
        }
    }
    let mut walk = Walk {
        stages,
        doms: vec![None; stages.len()],
        converted: None,
    };
    let end = walk.block(body, Some(BTreeSet::new()));
    let converted = meet(walk.converted.take(), end);
    let parents = walk
        .doms
        .iter()
        .enumerate()
        .map(|(i, d)| {
            d.as_ref()
                .and_then(|d| d.iter().copied().filter(|&p| (p as usize) < i).max())
        })
        .collect();
    let converted = converted.and_then(|d| d.iter().copied().max());
    (parents, converted)
}

impl Compiled {
    /// The program compiled: [`compile`].
    pub fn of(program: &ast::Program, schema: &Schema) -> Compiled {
        compile(program, schema)
    }
}

/// Compiles a program that checked without errors.
pub fn compile(program: &ast::Program, schema: &Schema) -> Compiled {
    let mut cx = Cx::new(schema);
    let mut workflows = Vec::new();
    let mut by_event = vec![Vec::new(); schema.events.len()];
    let mut condition_count = 0;
    for (wi, wf) in program.workflows().enumerate() {
        cx.splits = 0;
        cx.funnel = FunnelShape::default();
        cx.event_scope = None;
        cx.trigger_scope = None;
        cx.reads_trigger = false;
        cx.reads_received = false;
        let trigger = match wf.trigger.as_ref().map(|t| &t.kind) {
            Some(ast::TriggerKind::Event(m)) => match schema.event(&m.event.name) {
                Some(ev) => {
                    by_event[ev].push(wi as u16);
                    cx.trigger_scope = Some(ev);
                    CTrigger::Event {
                        event: ev as u16,
                        filter: m.filter.as_ref().map(|f| cx.expr_in(Some(ev), f)),
                    }
                }
                None => CTrigger::Never,
            },
            Some(ast::TriggerKind::Inactive(d)) => CTrigger::Inactive(d.seconds * 1000),
            Some(ast::TriggerKind::At(e)) => CTrigger::At(cx.expr(e)),
            Some(ast::TriggerKind::Every(s)) => CTrigger::Schedule {
                every: match &s.every {
                    ast::Every::Day => Every::Day,
                    ast::Every::Weekday(d) => Every::Weekday(d.from_monday()),
                    ast::Every::Month { day, .. } => Every::Month(*day as u32),
                    ast::Every::Year(f) => Every::Year(schema.field(&f.name).unwrap_or(0) as u16),
                },
                hour: s.at.hour,
                minute: s.at.minute,
                filter: s.filter.as_ref().map(|f| cx.expr(f)),
            },
            Some(ast::TriggerKind::Condition(c)) => {
                condition_count += 1;
                CTrigger::Condition {
                    cond: cx.expr(c),
                    bit: condition_count - 1,
                }
            }
            None => CTrigger::Never,
        };
        let goal = wf.goal.as_ref().map(|c| cx.criterion(c));
        let exit_when = wf.exit_when.as_ref().map(|c| cx.criterion(c));
        let reenter = match wf.reenter.as_ref().map(|r| &r.kind) {
            None | Some(ast::ReenterKind::Never) => Reenter::Never,
            Some(ast::ReenterKind::Always) => Reenter::Always,
            Some(ast::ReenterKind::After(d)) => Reenter::After(d.seconds * 1000),
        };
        let mut code = Code::default();
        cx.block(&mut code, &wf.body);
        code.push(Instr::End, wf.span);
        workflows.push(Workflow {
            name: Arc::from(wf.name.name.as_str()),
            trigger,
            goal,
            exit_when,
            reenter,
            code: code.instrs,
            spans: code.spans,
            waits: code.waits,
            on_change: wf.on_change.as_ref().map(|c| c.kind),
            keeps_trigger: cx.reads_trigger,
            keeps_received: cx.reads_received,
            funnel: {
                let mut shape = FunnelShape {
                    converts: cx.funnel.converts || wf.goal.is_some(),
                    ..std::mem::take(&mut cx.funnel)
                };
                let (parents, converted) = funnel_parents(&wf.body, &shape.stages);
                shape.parents = parents;
                shape.converted_parent = converted;
                shape
            },
        });
    }
    // What an event type can affect, so the engine skips the rest.
    let mut ends_on = vec![false; schema.events.len()];
    let mut ends_on_condition = false;
    let mut waited_for = vec![false; schema.events.len()];
    for w in &workflows {
        for c in w.goal.iter().chain(&w.exit_when) {
            match c {
                Criterion::Event { event, .. } => ends_on[*event as usize] = true,
                Criterion::Condition(_) => ends_on_condition = true,
            }
        }
        for i in &w.code {
            if let Instr::WaitFor { event, .. } = i {
                waited_for[*event as usize] = true;
            }
        }
    }
    let defaults = schema
        .fields
        .iter()
        .map(|f| default_value(f.default.as_ref(), &f.ty))
        .collect();
    Compiled {
        schema: schema.clone(),
        workflows,
        defaults,
        retention: cx.retention,
        tallies_by_event: {
            let mut by = vec![Vec::new(); schema.events.len()];
            for (i, t) in cx.tallies.iter().enumerate() {
                by[t.event as usize].push(i as u16);
            }
            by
        },
        tallies: cx.tallies,
        history_events: cx.history_events,
        by_event,
        condition_count,
        ends_on,
        ends_on_condition,
        waited_for,
        projection: Projection::only(cx.payload_read),
        zone: program
            .items
            .iter()
            .find_map(|i| match i {
                ast::Item::Timezone(z) => super::calendar::zone(&z.value),
                _ => None,
            })
            .unwrap_or(chrono_tz::UTC),
        zone_field: schema
            .fields
            .iter()
            .position(|f| f.timezone)
            .map(|i| i as u16),
        caps: sending_caps(program),
        quiet: quiet_hours(program),
    }
}

/// Per channel, its `limit`: (sends, window in milliseconds).
fn sending_caps(program: &ast::Program) -> [Option<(u32, Millis)>; Channel::ALL.len()] {
    let mut caps = [None; Channel::ALL.len()];
    for item in &program.items {
        if let ast::Item::Limit(l) = item {
            if let Some(c) = Channel::from_name(&l.channel.name) {
                let count = u32::try_from(l.count).unwrap_or(u32::MAX);
                caps[c as usize] = Some((count, l.per.seconds * 1000));
            }
        }
    }
    caps
}

/// Per channel, its quiet hours: (start, end) in minutes of the day.
fn quiet_hours(program: &ast::Program) -> [Option<(u32, u32)>; Channel::ALL.len()] {
    let mut quiet = [None; Channel::ALL.len()];
    for item in &program.items {
        if let ast::Item::Quiet(q) = item {
            let window = (
                q.start.hour * 60 + q.start.minute,
                q.end.hour * 60 + q.end.minute,
            );
            if q.channels.is_empty() {
                quiet = [Some(window); Channel::ALL.len()];
            }
            for c in &q.channels {
                if let Some(c) = Channel::from_name(&c.name) {
                    quiet[c as usize] = Some(window);
                }
            }
        }
    }
    quiet
}

/// Compiles one expression over the contact (the REPL's bare expressions).
pub fn compile_expr(e: &ast::Expr, schema: &Schema) -> CExpr {
    let mut cx = Cx::new(schema);
    cx.expr(e)
}

/// The value of a constant default, or the implicit default of the type.
fn default_value(default: Option<&ast::Expr>, ty: &Type) -> Value {
    let Some(e) = default else {
        return match ty {
            Type::Set(_) => Value::Set(Arc::new(super::value::StrSet::default())),
            Type::List(_) => Value::List(Arc::new(Vec::new())),
            _ => Value::Unset,
        };
    };
    constant(e).unwrap_or(Value::Unset).stored_as(ty)
}

fn constant(e: &ast::Expr) -> Option<Value> {
    Some(match &e.kind {
        ExprKind::Int(i) => Value::Int(*i),
        ExprKind::Float(f) => Value::Float(*f),
        ExprKind::Str(s) => Value::str(s),
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::Duration(s) => Value::Duration(s * 1000),
        ExprKind::Datetime(dt) => Value::Datetime(dt.timestamp_millis()),
        ExprKind::List(items) => Value::List(Arc::new(
            items.iter().map(constant).collect::<Option<Vec<_>>>()?,
        )),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => match constant(operand)? {
            Value::Int(i) => Value::Int(i.checked_neg()?),
            Value::Float(f) => Value::Float(-f),
            Value::Duration(d) => Value::Duration(-d),
            _ => return None,
        },
        _ => return None,
    })
}

#[derive(Default)]
struct Code {
    instrs: Vec<Instr>,
    spans: Vec<Span>,
    waits: Vec<WaitPlace>,
}

impl Code {
    fn push(&mut self, i: Instr, span: Span) -> usize {
        self.instrs.push(i);
        self.spans.push(span);
        self.instrs.len() - 1
    }

    fn here(&self) -> u32 {
        self.instrs.len() as u32
    }

    /// Points the jump target of instruction `at` to `target`.
    fn patch(&mut self, at: usize, target: u32) {
        match &mut self.instrs[at] {
            Instr::Jump(t) => *t = target,
            Instr::Branch { otherwise, .. } => *otherwise = target,
            Instr::WaitFor { timeout, .. } => *timeout = target,
            _ => {}
        }
    }
}

struct Cx<'a> {
    schema: &'a Schema,
    retention: Retention,
    history_events: Vec<bool>,
    tallies: Vec<TallySpec>,
    splits: u32,
    /// The funnel of the workflow being compiled.
    funnel: FunnelShape,
    event_scope: Option<usize>,
    trigger_scope: Option<usize>,
    /// Per event type, a bit per payload field some expression reads.
    payload_read: Vec<u64>,
    /// The workflow being compiled reads `trigger.F`.
    reads_trigger: bool,
    /// ... reads `event.F` in a `wait for` block.
    reads_received: bool,
    /// Compiling the block of a `wait for`.
    in_received: bool,
}

impl<'a> Cx<'a> {
    fn new(schema: &'a Schema) -> Cx<'a> {
        Cx {
            schema,
            retention: Retention::None,
            tallies: Vec::new(),
            history_events: vec![false; schema.events.len()],
            splits: 0,
            funnel: FunnelShape::default(),
            event_scope: None,
            trigger_scope: None,
            payload_read: vec![0; schema.events.len()],
            reads_trigger: false,
            reads_received: false,
            in_received: false,
        }
    }

    fn criterion(&mut self, c: &ast::Criterion) -> Criterion {
        match &c.kind {
            ast::CriterionKind::Event(m) => {
                let ev = self.event_id(&m.event.name);
                Criterion::Event {
                    event: ev as u16,
                    filter: m.filter.as_ref().map(|f| self.expr_in(Some(ev), f)),
                }
            }
            ast::CriterionKind::Condition(e) => Criterion::Condition(self.expr(e)),
        }
    }

    fn block(&mut self, code: &mut Code, stmts: &[ast::Stmt]) {
        for s in stmts {
            self.stmt(code, s);
        }
    }

    fn data(&mut self, data: &Option<Vec<ast::MapEntry>>) -> Data {
        data.as_ref().map(|entries| {
            entries
                .iter()
                .map(|e| (Arc::from(e.key.name.as_str()), self.expr(&e.value)))
                .collect()
        })
    }

    fn stmt(&mut self, code: &mut Code, s: &ast::Stmt) {
        let span = s.span;
        match &s.kind {
            StmtKind::Send {
                channel,
                template,
                data,
                transactional,
            } => {
                // INVARIANT: the checker accepts only known channels.
                let Some(channel_id) = Channel::from_name(&channel.name) else {
                    unreachable!("`{}` is not a channel", channel.name)
                };
                let consent = self
                    .schema
                    .consent_fields(&channel.name)
                    .map(|i| i as u16)
                    .collect();
                let i = Instr::Send {
                    channel: Arc::from(channel.name.as_str()),
                    channel_id,
                    template: Arc::from(template.value.as_str()),
                    data: self.data(data),
                    consent,
                    transactional: *transactional,
                };
                code.push(i, span);
            }
            StmtKind::Tag(e) => {
                let i = Instr::Tag(self.expr(e));
                code.push(i, span);
            }
            StmtKind::Untag(e) => {
                let i = Instr::Untag(self.expr(e));
                code.push(i, span);
            }
            StmtKind::Set { field, op, value } => {
                let i = Instr::Set {
                    field: self.field_slot(&field.name),
                    op: *op,
                    value: self.expr(value),
                };
                code.push(i, span);
            }
            StmtKind::List { op, name } => {
                code.push(
                    Instr::List {
                        op: *op,
                        name: Arc::from(name.value.as_str()),
                    },
                    span,
                );
            }
            StmtKind::Notify { to, message } => {
                let parts = message
                    .parts
                    .iter()
                    .map(|p| match p {
                        ast::TemplatePart::Text(t) => Part::Text(Arc::from(t.as_str())),
                        ast::TemplatePart::Expr(e) => Part::Expr(self.expr(e)),
                    })
                    .collect();
                code.push(
                    Instr::Notify {
                        to: Arc::from(to.value.as_str()),
                        parts,
                    },
                    span,
                );
            }
            StmtKind::Webhook { name, data } => {
                let i = Instr::Webhook {
                    name: Arc::from(name.value.as_str()),
                    data: self.data(data),
                };
                code.push(i, span);
            }
            StmtKind::Wait(w) => {
                let instr = match w {
                    ast::WaitKind::For(d) => Instr::Wait(d.seconds * 1000),
                    ast::WaitKind::Expr(e) => Instr::WaitUntil(Until::Duration(self.expr(e))),
                    ast::WaitKind::Clock(c) => Instr::WaitUntil(Until::Local {
                        hour: c.hour,
                        minute: c.minute,
                        weekday: None,
                    }),
                    ast::WaitKind::Weekday { day, at } => Instr::WaitUntil(Until::Local {
                        hour: at.as_ref().map_or(0, |c| c.hour),
                        minute: at.as_ref().map_or(0, |c| c.minute),
                        weekday: Some(day.from_monday()),
                    }),
                    ast::WaitKind::Until(e) => Instr::WaitUntil(Until::Instant(self.expr(e))),
                };
                let at = code.push(instr, span);
                code.waits.push(WaitPlace {
                    name: s.name.as_ref().map(|n| Arc::from(n.name.as_str())),
                    stands: at as u32 + 1,
                    event: None,
                    span,
                });
            }
            StmtKind::WaitFor {
                event,
                within,
                filter,
                received,
                timeout,
            } => {
                let ev = self.event_id(&event.name);
                let i = Instr::WaitFor {
                    event: ev as u16,
                    within: within.seconds * 1000,
                    filter: filter.as_ref().map(|f| self.expr_in(Some(ev), f)),
                    timeout: 0,
                };
                let at = code.push(i, span);
                code.waits.push(WaitPlace {
                    name: s.name.as_ref().map(|n| Arc::from(n.name.as_str())),
                    stands: at as u32,
                    event: Some(ev as u16),
                    span,
                });
                if let Some(b) = received {
                    self.event_scope = Some(ev);
                    let outer = std::mem::replace(&mut self.in_received, true);
                    self.block(code, &b.stmts);
                    self.in_received = outer;
                }
                let jump = code.push(Instr::Jump(0), span);
                let t = code.here();
                code.patch(at, t);
                self.event_scope = None;
                if let Some(b) = timeout {
                    self.block(code, &b.stmts);
                }
                let end = code.here();
                code.patch(jump, end);
                // After a `wait for`, `event` names nothing (the checker enforces it).
                self.event_scope = None;
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                let mut ends = Vec::new();
                for (k, (cond, body)) in branches.iter().enumerate() {
                    let i = Instr::Branch {
                        cond: self.expr(cond),
                        otherwise: 0,
                        chained: k + 1 < branches.len(),
                    };
                    let at = code.push(i, cond.span);
                    self.block(code, &body.stmts);
                    ends.push(code.push(Instr::Jump(0), body.span));
                    let next = code.here();
                    code.patch(at, next);
                }
                if let Some(b) = otherwise {
                    self.block(code, &b.stmts);
                }
                let end = code.here();
                for j in ends {
                    code.patch(j, end);
                }
            }
            StmtKind::Split { name, arms } => {
                let index = self.splits;
                self.splits += 1;
                let at = code.push(
                    Instr::Split {
                        index,
                        arms: Box::new([]),
                    },
                    span,
                );
                let mut table = Vec::new();
                let mut ends = Vec::new();
                let mut bound = 0;
                for arm in arms {
                    bound += arm.percent;
                    table.push((bound, code.here()));
                    self.block(code, &arm.body.stmts);
                    ends.push(code.push(Instr::Jump(0), arm.body.span));
                }
                let end = code.here();
                for j in ends {
                    code.patch(j, end);
                }
                let base = self
                    .funnel
                    .splits
                    .iter()
                    .map(|s| s.shares.len() as u32)
                    .sum();
                self.funnel.splits.push(SplitShape {
                    span,
                    name: name.as_ref().map(|n| Arc::from(n.value.as_str())),
                    labels: arms
                        .iter()
                        .map(|a| a.label.as_ref().map(|l| Arc::from(l.value.as_str())))
                        .collect(),
                    shares: arms.iter().map(|a| a.percent).collect(),
                    base,
                });
                code.instrs[at] = Instr::Split {
                    index,
                    arms: table.into(),
                };
            }
            StmtKind::Stage(name) => {
                let stages = &mut self.funnel.stages;
                let index = match stages.iter().position(|s| **s == *name.value) {
                    Some(i) => i,
                    None => {
                        stages.push(Arc::from(name.value.as_str()));
                        stages.len() - 1
                    }
                };
                code.push(
                    Instr::Stage {
                        name: Arc::from(name.value.as_str()),
                        index: index as u16,
                    },
                    span,
                );
            }
            StmtKind::Exit => {
                code.push(Instr::Exit, span);
            }
            StmtKind::Convert => {
                self.funnel.converts = true;
                code.push(Instr::Convert, span);
            }
        }
    }

    fn expr(&mut self, e: &ast::Expr) -> CExpr {
        if let Some(v) = constant(e) {
            return CExpr::Const(v);
        }
        match &e.kind {
            ExprKind::Now => CExpr::Now,
            ExprKind::Path { root, field } => match root {
                PathRoot::Contact => CExpr::Contact(self.field_slot(&field.name)),
                PathRoot::Event => {
                    self.reads_received |= self.in_received;
                    CExpr::Event(self.payload_slot(self.event_scope, &field.name))
                }
                PathRoot::Trigger => {
                    self.reads_trigger = true;
                    CExpr::Trigger(self.payload_slot(self.trigger_scope, &field.name))
                }
            },
            ExprKind::List(items) => CExpr::List(items.iter().map(|i| self.expr(i)).collect()),
            ExprKind::Call { func, args } => {
                // INVARIANT: the checker accepts only calls of built-ins.
                let Some(f) = Builtin::from_name(&func.name) else {
                    unreachable!("`{}` is not a built-in function", func.name)
                };
                CExpr::Call(f, args.iter().map(|a| self.expr(a)).collect())
            }
            ExprKind::History {
                kind,
                event,
                filter,
                within,
            } => {
                let ev = self.event_id(&event.name);
                let filter = filter.as_ref().map(|f| Box::new(self.expr_in(Some(ev), f)));
                let within = within.as_ref().map(|w| w.seconds * 1000);
                let tally = if filter.as_deref().is_none_or(tallied) && self.tallies.len() < 1 << 15
                {
                    self.tallies.push(TallySpec {
                        event: ev as u16,
                        filter: filter.as_deref().cloned(),
                        within,
                    });
                    Some(self.tallies.len() as u16 - 1)
                } else {
                    // The history itself is kept, and scanned.
                    self.history_events[ev] = true;
                    self.retention = match (self.retention, within) {
                        (Retention::All, _) | (_, None) => Retention::All,
                        (Retention::None, Some(w)) => Retention::Within(w),
                        (Retention::Within(a), Some(w)) => Retention::Within(a.max(w)),
                    };
                    None
                };
                CExpr::History {
                    count: *kind == HistoryKind::Count,
                    event: ev as u16,
                    filter,
                    within,
                    tally,
                }
            }
            ExprKind::Unary {
                op: UnaryOp::Not,
                operand,
            } => CExpr::Not(Box::new(self.expr(operand))),
            ExprKind::Unary {
                op: UnaryOp::Neg,
                operand,
            } => CExpr::Neg(Box::new(self.expr(operand)), e.span),
            ExprKind::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
            } => CExpr::And(Box::new(self.expr(lhs)), Box::new(self.expr(rhs))),
            ExprKind::Binary {
                op: BinaryOp::Or,
                lhs,
                rhs,
            } => CExpr::Or(Box::new(self.expr(lhs)), Box::new(self.expr(rhs))),
            ExprKind::Binary { op, lhs, rhs } => CExpr::Bin(
                *op,
                Box::new(self.expr(lhs)),
                Box::new(self.expr(rhs)),
                e.span,
            ),
            ExprKind::IsSet { operand, negated } => {
                CExpr::IsSet(Box::new(self.expr(operand)), *negated)
            }
            // Literals are constants, folded above; only a negation that
            // overflows is not, and it is compiled as `Neg`.
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::Duration(_)
            | ExprKind::Datetime(_) => unreachable!("a literal is a constant: {:?}", e.kind),
        }
    }

    fn event_id(&self, name: &str) -> usize {
        // INVARIANT: the checker resolved every event name.
        match self.schema.event(name) {
            Some(ev) => ev,
            None => unreachable!("event `{name}` is not declared"),
        }
    }

    fn field_slot(&self, name: &str) -> u16 {
        // INVARIANT: the checker resolved every contact field.
        match self.schema.field(name) {
            Some(slot) => slot as u16,
            None => unreachable!("contact field `{name}` is not declared"),
        }
    }

    /// The slot of a payload field in the event the scope names; the field
    /// is marked as read, so input keeps it.
    fn payload_slot(&mut self, scope: Option<usize>, name: &str) -> u16 {
        // INVARIANT: the checker resolved `event.F` / `trigger.F` in this scope.
        let Some((ev, slot)) =
            scope.and_then(|ev| Some((ev, self.schema.events[ev].field(name)?.0)))
        else {
            unreachable!("payload field `{name}` is not in scope")
        };
        if slot < 64 {
            self.payload_read[ev] |= 1 << slot;
        }
        slot as u16
    }

    /// Compiles `e` with `event` naming event `ev`.
    fn expr_in(&mut self, ev: Option<usize>, e: &ast::Expr) -> CExpr {
        let saved = std::mem::replace(&mut self.event_scope, ev);
        let out = self.expr(e);
        self.event_scope = saved;
        out
    }
}
