//! Walking workflows for the lint rules: expressions, statement paths and the
//! conditions known to hold on them.

use crate::ast::walk::{paths, Domain, Visit};
use crate::ast::*;
use rpds::HashTrieMap;

/// Calls `f` on every expression of a workflow (headers and statements), outermost first.
pub fn exprs<'a>(wf: &'a Workflow, f: &mut dyn FnMut(&'a Expr)) {
    if let Some(t) = &wf.trigger {
        match &t.kind {
            TriggerKind::Event(m) => m.filter.iter().for_each(|e| expr_tree(e, f)),
            TriggerKind::Condition(c) => expr_tree(c, f),
            TriggerKind::Every(s) => s.filter.iter().for_each(|e| expr_tree(e, f)),
            TriggerKind::At(e) => expr_tree(e, f),
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
    crate::ast::walk::each_stmt(list, f);
}

/// The blocks directly inside a statement.
pub fn blocks(s: &Stmt) -> Vec<&Block> {
    s.blocks()
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
    e.walk(f);
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
        TriggerKind::Every(s) => s.filter.as_ref(),
        TriggerKind::Inactive(_) | TriggerKind::At(_) => None,
    }
}

/// Conditions known to hold on a path: each atom (a condition that is not
/// `and`/`or`/`not`, in canonical form: `x != y` as `x == y`, `is not set`
/// as `is set`) with its known truth. Atoms are keyed by expression, spans
/// aside. The maps are persistent: a copy for a branch shares what it does
/// not change, so a chain of `else if`s costs linear time and memory.
#[derive(Clone, Debug, Default)]
pub struct Known {
    atoms: HashTrieMap<Expr, bool>,
    /// For each `x == literal` known true: `x` and the literal.
    equal_to: HashTrieMap<Expr, Expr>,
}

impl PartialEq for Known {
    fn eq(&self, other: &Known) -> bool {
        self.atoms == other.atoms
    }
}

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
                if t {
                    if let Some((lhs, rhs)) = equality(&atom).filter(|(_, r)| is_literal(r)) {
                        self.equal_to.insert_mut(lhs.clone(), rhs.clone());
                    }
                }
                self.atoms.insert_mut(atom, t);
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
                if let Some(known) = self.atoms.get(&atom) {
                    return Some(*known == t);
                }
                // `x == "a"` is false where `x == "b"` is known true.
                let (lhs, rhs) = equality(&atom)?;
                if !is_literal(rhs) {
                    return None;
                }
                let other = self.equal_to.get(lhs).is_some_and(|r| r != rhs);
                other.then_some(!t)
            }
        }
    }

    /// Facts that survive a wait: those about the trigger's payload. Facts
    /// that read the contact, the clock, the history or the received event
    /// end there.
    pub fn after_wait(&self) -> Known {
        let survives = |a: &Expr| {
            !a.any(&mut |x| {
                matches!(
                    x.kind,
                    ExprKind::Now
                        | ExprKind::History { .. }
                        | ExprKind::Path {
                            root: PathRoot::Contact | PathRoot::Event,
                            ..
                        }
                )
            })
        };
        let mut k = Known::default();
        for (a, t) in self.atoms.iter().filter(|(a, _)| survives(a)) {
            k.add_atom(a.clone(), *t);
        }
        k
    }

    fn add_atom(&mut self, atom: Expr, truth: bool) {
        if truth {
            if let Some((lhs, rhs)) = equality(&atom).filter(|(_, r)| is_literal(r)) {
                self.equal_to.insert_mut(lhs.clone(), rhs.clone());
            }
        }
        self.atoms.insert_mut(atom, truth);
    }

    /// Facts true on both paths: read from the smaller side.
    pub fn meet(&self, other: &Known) -> Known {
        let (small, large) = if self.atoms.size() <= other.atoms.size() {
            (self, other)
        } else {
            (other, self)
        };
        let mut k = Known::default();
        for (a, t) in small.atoms.iter() {
            if large.atoms.get(a) == Some(t) {
                k.add_atom(a.clone(), *t);
            }
        }
        k
    }

    /// How many atoms are known (for tests of the linter's cost).
    pub fn len(&self) -> usize {
        self.atoms.size()
    }

    pub fn is_empty(&self) -> bool {
        self.atoms.is_empty()
    }

    /// Whether the contact field `field` (a bool) is known true: as
    /// `contact.F` or `contact.F == true`.
    pub fn holds_field(&self, field: &str) -> bool {
        self.atoms.iter().any(|(a, truth)| {
            let is_field = |e: &Expr| {
                matches!(&e.kind, ExprKind::Path { root: PathRoot::Contact, field: f } if f.name == field)
            };
            match &a.kind {
                ExprKind::Path { .. } => *truth && is_field(a),
                ExprKind::Binary {
                    op: BinaryOp::Eq,
                    lhs,
                    rhs,
                } => *truth && is_field(lhs) && matches!(rhs.kind, ExprKind::Bool(true)),
                _ => false,
            }
        })
    }
}

/// The two sides of an `==` atom.
fn equality(e: &Expr) -> Option<(&Expr, &Expr)> {
    match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::Eq,
            lhs,
            rhs,
        } => Some((lhs, rhs)),
        _ => None,
    }
}

fn is_literal(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Str(_) | ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) => true,
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => matches!(operand.kind, ExprKind::Int(_) | ExprKind::Float(_)),
        _ => false,
    }
}

/// An atom's canonical form and truth: `x != y` is the negation of `x == y`,
/// `x is not set` of `x is set`.
fn atom(e: &Expr, truth: bool) -> (Expr, bool) {
    match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::Ne,
            lhs,
            rhs,
        } => (
            Expr {
                kind: ExprKind::Binary {
                    op: BinaryOp::Eq,
                    lhs: lhs.clone(),
                    rhs: rhs.clone(),
                },
                span: e.span,
            },
            !truth,
        ),
        ExprKind::IsSet {
            operand,
            negated: true,
        } => (
            Expr {
                kind: ExprKind::IsSet {
                    operand: operand.clone(),
                    negated: false,
                },
                span: e.span,
            },
            !truth,
        ),
        _ => (e.clone(), truth),
    }
}

/// A linter's path: what is known, and whether facts about the contact end
/// at waits (the checker's rule) or are kept (for rules that trust an entry
/// filter for the whole journey).
#[derive(Clone)]
struct LintPath {
    known: Known,
    forget: bool,
}

impl Domain for LintPath {
    fn assume(&self, cond: &Expr, truth: bool) -> Self {
        LintPath {
            known: self.known.assume(cond, truth),
            forget: self.forget,
        }
    }

    fn wait(&self) -> Self {
        if !self.forget {
            return self.clone();
        }
        LintPath {
            known: self.known.after_wait(),
            forget: true,
        }
    }

    fn meet(&self, other: &Self) -> Self {
        LintPath {
            known: self.known.meet(&other.known),
            forget: self.forget,
        }
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
    let start = LintPath { known, forget };
    paths(list, start, &mut |v, path| {
        if let Visit::Stmt(s) = v {
            visit(s, &path.known);
        }
        None
    })
    .map(|p| p.known)
}

/// What the entry filter makes known at the start of the body.
/// In a trigger's `where`, `event` is the trigger event: facts about it are
/// recorded as facts about `trigger`, which the body reads.
pub fn entry_known(wf: &Workflow) -> Known {
    match entry_filter(wf) {
        Some(f) => {
            let facts = Known::default().assume(f, true);
            let mut k = Known::default();
            for (a, t) in facts.atoms.iter() {
                let mut a = a.clone();
                event_as_trigger(&mut a);
                k.add_atom(a, *t);
            }
            k
        }
        None => Known::default(),
    }
}

/// Rewrites `event.F` as `trigger.F` throughout `e`, but in history
/// filters, whose `event` is the past event they look at.
fn event_as_trigger(e: &mut Expr) {
    match &mut e.kind {
        ExprKind::Path { root, .. } if *root == PathRoot::Event => *root = PathRoot::Trigger,
        ExprKind::History { .. } => {}
        kind => kind.children_mut().into_iter().for_each(event_as_trigger),
    }
}

/// Whether every path through the statements ends with `exit`.
pub fn always_exits(list: &[Stmt]) -> bool {
    list.iter().any(stmt_always_exits)
}

pub fn stmt_always_exits(s: &Stmt) -> bool {
    match &s.kind {
        StmtKind::Exit | StmtKind::Convert => true,
        StmtKind::If {
            branches,
            otherwise: Some(e),
        } => branches.iter().all(|(_, b)| always_exits(&b.stmts)) && always_exits(&e.stmts),
        StmtKind::Split { arms, .. } => {
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
