//! Walking the AST: every sub-expression of an expression, and the
//! control-flow paths through a workflow's statements with what is known on
//! each. The checker's narrowing and the linter's facts both walk paths
//! with [`paths`]; they differ only in what they know ([`Domain`]).

use super::{Block, Expr, ExprKind, Stmt, StmtKind};

/// The sub-expressions directly inside an expression kind, shared (`&`) or
/// not (`&mut`): one list of the kinds for both.
macro_rules! children_of {
    ($kind:expr, $iter:ident, $($r:tt)+) => {
        match $kind {
            ExprKind::List(items) | ExprKind::Call { args: items, .. } => items.$iter().collect(),
            ExprKind::History { filter, .. } => filter.$iter().map(|f| $($r)+ **f).collect(),
            ExprKind::Unary { operand, .. } | ExprKind::IsSet { operand, .. } => {
                vec![$($r)+ **operand]
            }
            ExprKind::Binary { lhs, rhs, .. } => vec![$($r)+ **lhs, $($r)+ **rhs],
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::Duration(_)
            | ExprKind::Datetime(_)
            | ExprKind::Now
            | ExprKind::Path { .. } => Vec::new(),
        }
    };
}

impl ExprKind {
    /// The sub-expressions directly inside (a history filter included).
    pub fn children(&self) -> Vec<&Expr> {
        children_of!(self, iter, &)
    }

    pub fn children_mut(&mut self) -> Vec<&mut Expr> {
        children_of!(self, iter_mut, &mut)
    }
}

impl Expr {
    /// Calls `f` on this expression and every sub-expression, outermost first.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        for c in self.kind.children() {
            c.walk(f);
        }
    }

    /// Whether `f` holds for this expression or any sub-expression.
    pub fn any(&self, f: &mut dyn FnMut(&Expr) -> bool) -> bool {
        let mut found = false;
        self.walk(&mut |e| found = found || f(e));
        found
    }
}

impl StmtKind {
    /// Whether the statement is one line, holding no block.
    pub fn is_simple(&self) -> bool {
        match self {
            StmtKind::Send { .. }
            | StmtKind::Tag(_)
            | StmtKind::Untag(_)
            | StmtKind::Set { .. }
            | StmtKind::List { .. }
            | StmtKind::Notify { .. }
            | StmtKind::Webhook { .. }
            | StmtKind::Wait(_)
            | StmtKind::Stage(_)
            | StmtKind::Exit
            | StmtKind::Convert => true,
            StmtKind::WaitFor { .. } | StmtKind::If { .. } | StmtKind::Split { .. } => false,
        }
    }
}

/// Calls `f` on every statement of `list`, nested ones too, in source
/// order.
pub fn each_stmt<'a>(list: &'a [Stmt], f: &mut dyn FnMut(&'a Stmt)) {
    for s in list {
        f(s);
        for b in s.blocks() {
            each_stmt(&b.stmts, f);
        }
    }
}

impl Stmt {
    /// The blocks directly inside this statement.
    pub fn blocks(&self) -> Vec<&Block> {
        match &self.kind {
            StmtKind::If {
                branches,
                otherwise,
            } => branches.iter().map(|(_, b)| b).chain(otherwise).collect(),
            StmtKind::WaitFor {
                received, timeout, ..
            } => received.iter().chain(timeout).collect(),
            StmtKind::Split { arms, .. } => arms.iter().map(|a| &a.body).collect(),
            kind if kind.is_simple() => Vec::new(),
            kind => unreachable!("{kind:?} holds blocks"),
        }
    }
}

/// What a pass knows on a control-flow path, and how it changes.
pub trait Domain: Clone {
    /// What is known once `cond` is found to be `truth`.
    fn assume(&self, cond: &Expr, truth: bool) -> Self;
    /// What survives a `wait`: the journey sleeps, so attributes (and
    /// time) may change meanwhile.
    fn wait(&self) -> Self;
    /// What survives a `wait for` (`stmt`), on both of its paths and after it.
    fn wait_for(&self, _stmt: &Stmt) -> Self {
        self.wait()
    }
    /// At the start of a `wait for`'s received block (`stmt` is the `wait for`).
    fn received(&self, _stmt: &Stmt) -> Self {
        self.clone()
    }
    /// At the start of its timeout block.
    fn timed_out(&self, _stmt: &Stmt) -> Self {
        self.clone()
    }
    /// What is known on both of two paths that join.
    fn meet(&self, other: &Self) -> Self;
    /// What the statements after an `exit` (which no journey reaches) are
    /// visited with.
    fn unreachable(&self) -> Self {
        self.clone()
    }
}

/// What [`paths`] shows its visitor.
#[derive(Clone, Copy, Debug)]
pub enum Visit<'a> {
    /// A statement, before it runs.
    Stmt(&'a Stmt),
    /// An `if` or `else if` condition, where it is evaluated (the earlier
    /// conditions of the chain known false).
    Condition(&'a Expr),
}

/// Walks the statements along their control-flow paths with what is known
/// before each; `visit` sees every statement (nested ones included) and
/// every `if` condition, and may return what is known after a statement
/// without blocks (a `set`, say), replacing what was known. Returns what is
/// known at the end, or `None` when every path ends with `exit`. Statements
/// after an `exit` are still visited (with what was known before it), so a
/// pass can check them too.
pub fn paths<'a, D: Domain>(
    list: &'a [Stmt],
    known: D,
    visit: &mut dyn FnMut(Visit<'a>, &D) -> Option<D>,
) -> Option<D> {
    let mut k = known;
    let mut ended = false;
    for s in list {
        let after = visit(Visit::Stmt(s), &k);
        let next = match &s.kind {
            StmtKind::Exit | StmtKind::Convert => None,
            StmtKind::Wait(_) => Some(k.wait()),
            StmtKind::WaitFor {
                received, timeout, ..
            } => {
                let base = k.wait_for(s);
                let got = match received {
                    Some(b) => paths(&b.stmts, base.received(s), visit),
                    None => Some(base.clone()),
                };
                let lapsed = match timeout {
                    Some(b) => paths(&b.stmts, base.timed_out(s), visit),
                    None => Some(base.clone()),
                };
                meet_all([got, lapsed])
            }
            StmtKind::If {
                branches,
                otherwise,
            } => {
                let mut outs = Vec::new();
                let mut rest = k.clone();
                for (cond, body) in branches {
                    visit(Visit::Condition(cond), &rest);
                    outs.push(paths(&body.stmts, rest.assume(cond, true), visit));
                    rest = rest.assume(cond, false);
                }
                outs.push(match otherwise {
                    Some(b) => paths(&b.stmts, rest, visit),
                    None => Some(rest),
                });
                meet_all(outs)
            }
            StmtKind::Split { arms, .. } => meet_all(
                arms.iter()
                    .map(|a| paths(&a.body.stmts, k.clone(), visit))
                    .collect::<Vec<_>>(),
            ),
            kind if kind.is_simple() => Some(after.unwrap_or_else(|| k.clone())),
            kind => unreachable!("{kind:?} holds blocks"),
        };
        match next {
            Some(n) => k = n,
            None if !ended => {
                ended = true;
                k = k.unreachable();
            }
            None => {}
        }
    }
    (!ended).then_some(k)
}

fn meet_all<D: Domain>(outs: impl IntoIterator<Item = Option<D>>) -> Option<D> {
    outs.into_iter().flatten().reduce(|a, b| a.meet(&b))
}
