//! Walking workflows for the lint rules: expressions, statement paths and the
//! conditions known to hold on them.

use crate::ast::*;
use std::collections::BTreeMap;

/// Calls `f` on every expression of a workflow (headers and statements), outermost first.
pub fn exprs<'a>(wf: &'a Workflow, f: &mut dyn FnMut(&'a Expr)) {
    if let Some(t) = &wf.trigger {
        match &t.kind {
            TriggerKind::Event(m) => m.filter.iter().for_each(|e| expr_tree(e, f)),
            TriggerKind::Condition(c) => expr_tree(c, f),
            TriggerKind::Inactive(_) => {}
        }
    }
    for c in wf.goal.iter().chain(&wf.exit_when) {
        match &c.kind {
            CriterionKind::Event(m) => m.filter.iter().for_each(|e| expr_tree(e, f)),
            CriterionKind::Condition(e) => expr_tree(e, f),
        }
    }
    stmts(&wf.body, &mut |s| stmt_exprs(s, f));
}

/// Calls `f` on every statement, nested ones included, in source order.
pub fn stmts<'a>(list: &'a [Stmt], f: &mut dyn FnMut(&'a Stmt)) {
    for s in list {
        f(s);
        for b in blocks(s) {
            stmts(&b.stmts, f);
        }
    }
}

/// The blocks directly inside a statement.
pub fn blocks(s: &Stmt) -> Vec<&Block> {
    match &s.kind {
        StmtKind::If {
            branches,
            otherwise,
        } => branches.iter().map(|(_, b)| b).chain(otherwise).collect(),
        StmtKind::WaitFor {
            received, timeout, ..
        } => received.iter().chain(timeout).collect(),
        StmtKind::Split(arms) => arms.iter().map(|a| &a.body).collect(),
        _ => Vec::new(),
    }
}

/// The expressions directly in a statement (not in its nested blocks).
pub fn stmt_exprs<'a>(s: &'a Stmt, f: &mut dyn FnMut(&'a Expr)) {
    match &s.kind {
        StmtKind::Send { data, .. } | StmtKind::Webhook { data, .. } => {
            for e in data.iter().flatten() {
                expr_tree(&e.value, f);
            }
        }
        StmtKind::Tag(e) | StmtKind::Untag(e) => expr_tree(e, f),
        StmtKind::Set { value, .. } => expr_tree(value, f),
        StmtKind::Notify { message, .. } => {
            for p in &message.parts {
                if let TemplatePart::Expr(e) = p {
                    expr_tree(e, f);
                }
            }
        }
        StmtKind::WaitFor { filter, .. } => filter.iter().for_each(|e| expr_tree(e, f)),
        StmtKind::If { branches, .. } => branches.iter().for_each(|(c, _)| expr_tree(c, f)),
        _ => {}
    }
}

/// Calls `f` on `e` and every sub-expression.
pub fn expr_tree<'a>(e: &'a Expr, f: &mut dyn FnMut(&'a Expr)) {
    f(e);
    match &e.kind {
        ExprKind::List(items) => items.iter().for_each(|i| expr_tree(i, f)),
        ExprKind::Call { args, .. } => args.iter().for_each(|a| expr_tree(a, f)),
        ExprKind::History { filter, .. } => filter.iter().for_each(|x| expr_tree(x, f)),
        ExprKind::Unary { operand, .. } | ExprKind::IsSet { operand, .. } => expr_tree(operand, f),
        ExprKind::Binary { lhs, rhs, .. } => {
            expr_tree(lhs, f);
            expr_tree(rhs, f);
        }
        _ => {}
    }
}

/// The contact fields an expression reads.
pub fn contact_reads(e: &Expr) -> Vec<&str> {
    let mut out = Vec::new();
    expr_tree(e, &mut |x| {
        if let ExprKind::Path {
            root: PathRoot::Contact,
            field,
        } = &x.kind
        {
            out.push(field.name.as_str());
        }
    });
    out
}

/// The contact fields a workflow writes (`set`, and `tags` for `tag`/`untag`).
pub fn contact_writes(wf: &Workflow) -> Vec<(&str, crate::source::Span)> {
    let mut out = Vec::new();
    stmts(&wf.body, &mut |s| match &s.kind {
        StmtKind::Set { field, .. } => out.push((field.name.as_str(), s.span)),
        StmtKind::Tag(_) | StmtKind::Untag(_) => out.push(("tags", s.span)),
        _ => {}
    });
    out
}

/// The entry filter of a workflow: its trigger's `where` or condition.
pub fn entry_filter(wf: &Workflow) -> Option<&Expr> {
    match &wf.trigger.as_ref()?.kind {
        TriggerKind::Event(m) => m.filter.as_ref(),
        TriggerKind::Condition(c) => Some(c),
        TriggerKind::Inactive(_) => None,
    }
}

/// Conditions known to hold on a path: each atom (a condition that is not
/// `and`/`or`/`not`, by its canonical text) with its known truth.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Known(BTreeMap<String, bool>);

impl Known {
    /// What is known after `e` is found to be `truth`.
    pub fn assume(&self, e: &Expr, truth: bool) -> Known {
        let mut k = self.clone();
        k.add(e, truth);
        k
    }

    fn add(&mut self, e: &Expr, truth: bool) {
        match &e.kind {
            ExprKind::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
            } if truth => {
                self.add(lhs, true);
                self.add(rhs, true);
            }
            ExprKind::Binary {
                op: BinaryOp::Or,
                lhs,
                rhs,
            } if !truth => {
                self.add(lhs, false);
                self.add(rhs, false);
            }
            ExprKind::Unary {
                op: UnaryOp::Not,
                operand,
            } => self.add(operand, !truth),
            ExprKind::Binary {
                op: BinaryOp::And | BinaryOp::Or,
                ..
            } => {}
            _ => {
                let (atom, t) = atom(e, truth);
                self.0.insert(atom, t);
            }
        }
    }

    /// The truth of `e` if the known facts decide it.
    pub fn eval(&self, e: &Expr) -> Option<bool> {
        match &e.kind {
            ExprKind::Bool(b) => Some(*b),
            ExprKind::Unary {
                op: UnaryOp::Not,
                operand,
            } => self.eval(operand).map(|b| !b),
            ExprKind::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
            } => match (self.eval(lhs), self.eval(rhs)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            ExprKind::Binary {
                op: BinaryOp::Or,
                lhs,
                rhs,
            } => match (self.eval(lhs), self.eval(rhs)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            _ => {
                let (atom, t) = atom(e, true);
                if let Some(known) = self.0.get(&atom) {
                    return Some(*known == t);
                }
                // `x == "a"` is false where `x == "b"` is known true.
                let (lhs, rhs) = atom.split_once(" == ")?;
                let literal = |s: &str| {
                    s.starts_with('"') || s.parse::<f64>().is_ok() || s == "true" || s == "false"
                };
                if !literal(rhs) {
                    return None;
                }
                let other = self.0.iter().any(|(a, truth)| {
                    *truth
                        && a.split_once(" == ")
                            .is_some_and(|(l, r)| l == lhs && r != rhs && literal(r))
                });
                other.then_some(!t)
            }
        }
    }

    /// Facts that survive a wait: those about the trigger's payload.
    pub fn after_wait(&self) -> Known {
        Known(
            self.0
                .iter()
                .filter(|(a, _)| {
                    !a.contains("contact.")
                        && !a.contains("now")
                        && !a.contains("seen(")
                        && !a.contains("count(")
                        && !a.contains("event.")
                })
                .map(|(a, t)| (a.clone(), *t))
                .collect(),
        )
    }

    /// Facts true on both paths.
    pub fn meet(&self, other: &Known) -> Known {
        Known(
            self.0
                .iter()
                .filter(|(a, t)| other.0.get(*a) == Some(t))
                .map(|(a, t)| (a.clone(), *t))
                .collect(),
        )
    }
}

/// An atom's canonical text and truth: `x != y` is the negation of `x == y`,
/// `x is not set` of `x is set`.
fn atom(e: &Expr, truth: bool) -> (String, bool) {
    match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::Ne,
            lhs,
            rhs,
        } => (
            format!(
                "{} == {}",
                crate::pretty::expr(lhs),
                crate::pretty::expr(rhs)
            ),
            !truth,
        ),
        ExprKind::IsSet {
            operand,
            negated: true,
        } => (format!("{} is set", crate::pretty::expr(operand)), !truth),
        _ => (crate::pretty::expr(e), truth),
    }
}

impl Known {
    /// Whether the atom with this canonical text is known true.
    pub fn holds(&self, atom: &str) -> bool {
        self.0.get(atom) == Some(&true)
    }
}

/// Walks statements along their paths with what is known before each one;
/// `visit` sees every statement, nested ones included. Returns what is known
/// at the end, or `None` when every path ends with `exit`. With `forget`,
/// facts about the contact end at each wait.
pub fn flow(
    list: &[Stmt],
    known: Known,
    forget: bool,
    visit: &mut dyn FnMut(&Stmt, &Known),
) -> Option<Known> {
    let mut k = known;
    let mut ended = false;
    for s in list {
        visit(s, &k);
        match &s.kind {
            StmtKind::Exit => ended = true,
            StmtKind::Wait(_) if forget => k = k.after_wait(),
            StmtKind::WaitFor {
                received, timeout, ..
            } => {
                let base = if forget { k.after_wait() } else { k.clone() };
                let got = match received {
                    Some(b) => flow(&b.stmts, base.clone(), forget, visit),
                    None => Some(base.clone()),
                };
                let lapsed = match timeout {
                    Some(b) => flow(&b.stmts, base.clone(), forget, visit),
                    None => Some(base.clone()),
                };
                match meet_all([got, lapsed]) {
                    Some(x) => k = x,
                    None => ended = true,
                }
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                let mut outs = Vec::new();
                let mut rest = k.clone();
                for (cond, body) in branches {
                    outs.push(flow(&body.stmts, rest.assume(cond, true), forget, visit));
                    rest = rest.assume(cond, false);
                }
                outs.push(match otherwise {
                    Some(b) => flow(&b.stmts, rest, forget, visit),
                    None => Some(rest),
                });
                match meet_all(outs) {
                    Some(x) => k = x,
                    None => ended = true,
                }
            }
            StmtKind::Split(arms) => {
                let outs: Vec<_> = arms
                    .iter()
                    .map(|a| flow(&a.body.stmts, k.clone(), forget, visit))
                    .collect();
                match meet_all(outs) {
                    Some(x) => k = x,
                    None => ended = true,
                }
            }
            _ => {}
        }
    }
    (!ended).then_some(k)
}

fn meet_all(outs: impl IntoIterator<Item = Option<Known>>) -> Option<Known> {
    outs.into_iter().flatten().reduce(|a, b| a.meet(&b))
}

/// What the entry filter makes known at the start of the body.
/// In a trigger's `where`, `event` is the trigger event: facts about it are
/// recorded as facts about `trigger`, which the body reads.
pub fn entry_known(wf: &Workflow) -> Known {
    match entry_filter(wf) {
        Some(f) => {
            let k = Known::default().assume(f, true);
            Known(
                k.0.into_iter()
                    .map(|(a, t)| (a.replace("event.", "trigger."), t))
                    .collect(),
            )
        }
        None => Known::default(),
    }
}

/// Whether every path through the statements ends with `exit`.
pub fn always_exits(list: &[Stmt]) -> bool {
    list.iter().any(stmt_always_exits)
}

pub fn stmt_always_exits(s: &Stmt) -> bool {
    match &s.kind {
        StmtKind::Exit => true,
        StmtKind::If {
            branches,
            otherwise: Some(e),
        } => branches.iter().all(|(_, b)| always_exits(&b.stmts)) && always_exits(&e.stmts),
        StmtKind::Split(arms) => {
            !arms.is_empty() && arms.iter().all(|a| always_exits(&a.body.stmts))
        }
        StmtKind::WaitFor {
            received: Some(r),
            timeout: Some(t),
            ..
        } => always_exits(&r.stmts) && always_exits(&t.stmts),
        _ => false,
    }
}
