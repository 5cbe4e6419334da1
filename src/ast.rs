//! The typed syntax tree of a `.flow` program: plain data, every node spanned.

use crate::source::Span;

pub mod walk;
use chrono::{DateTime, Utc};

/// A whole program: the items of all its files, in file order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a program holds few items; boxing buys nothing"
)]
pub enum Item {
    Contact(ContactBlock),
    Event(EventDecl),
    Workflow(Workflow),
    Test(TestBlock),
    /// `timezone "Europe/Madrid"`.
    Timezone(StrLit),
    /// `quiet hours 21:00 to 08:00 [for sms, push]`.
    Quiet(QuietHours),
    /// `limit email to 2 per 1d`.
    Limit(Limit),
}

#[derive(Clone, Debug, PartialEq)]
pub struct QuietHours {
    pub start: ClockTime,
    pub end: ClockTime,
    /// Empty: every channel.
    pub channels: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    pub channel: Ident,
    pub count: i64,
    pub count_span: Span,
    pub per: DurationLit,
    pub span: Span,
}

impl Program {
    pub fn contacts(&self) -> impl Iterator<Item = &ContactBlock> {
        self.items.iter().filter_map(|i| match i {
            Item::Contact(c) => Some(c),
            _ => None,
        })
    }

    pub fn events(&self) -> impl Iterator<Item = &EventDecl> {
        self.items.iter().filter_map(|i| match i {
            Item::Event(e) => Some(e),
            _ => None,
        })
    }

    pub fn workflows(&self) -> impl Iterator<Item = &Workflow> {
        self.items.iter().filter_map(|i| match i {
            Item::Workflow(w) => Some(w),
            _ => None,
        })
    }

    pub fn tests(&self) -> impl Iterator<Item = &TestBlock> {
        self.items.iter().filter_map(|i| match i {
            Item::Test(t) => Some(t),
            _ => None,
        })
    }
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Contact(c) => c.span,
            Item::Event(e) => e.span,
            Item::Workflow(w) => w.span,
            Item::Test(t) => t.span,
            Item::Timezone(z) => z.span,
            Item::Quiet(q) => q.span,
            Item::Limit(l) => l.span,
        }
    }
}

/// A name written in the source.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A string literal (escapes resolved).
#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// A duration literal, in whole seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct DurationLit {
    pub seconds: i64,
    pub span: Span,
}

// ------------------------------------------------------------------ schema

#[derive(Clone, Debug, PartialEq)]
pub struct ContactBlock {
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    pub annotations: Vec<Annotation>,
    pub span: Span,
}

/// `@channel(email)` or `@consent(email, sms)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    pub name: Ident,
    pub args: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub optional: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeKind {
    /// `string`, `int`, ...; an unknown name is reported by the checker.
    Named(Ident),
    Set(Box<TypeExpr>),
    List(Box<TypeExpr>),
    /// `"free" | "trial" | "paid"`
    Enum(Vec<StrLit>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventDecl {
    pub name: Ident,
    pub fields: Vec<PayloadField>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PayloadField {
    pub name: Ident,
    pub ty: TypeExpr,
    pub span: Span,
}

// ------------------------------------------------------------------ workflows

#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    pub name: Ident,
    pub trigger: Option<Trigger>,
    pub goal: Option<Criterion>,
    pub exit_when: Option<Criterion>,
    pub reenter: Option<Reenter>,
    /// `on change exit|finish` (LANGUAGE.md section 13).
    pub on_change: Option<OnChange>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TriggerKind {
    /// `when EVENT [where COND]`
    Event(EventMatch),
    /// `when inactive for D`
    Inactive(DurationLit),
    /// `when COND`: fires on the edge where COND becomes true.
    Condition(Expr),
    /// `when every ... at HH:MM [where COND]`.
    Every(Schedule),
    /// `when at EXPR`: the contact enters when the clock reaches EXPR's
    /// value, computed from its fields.
    At(Expr),
}

/// A scheduled trigger: every contact for whom the filter holds enters at
/// each occurrence, read in the contact's zone.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub every: Every,
    pub at: ClockTime,
    pub filter: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Every {
    Day,
    Weekday(Weekday),
    /// A day of the month, 1 to 28.
    Month {
        day: i64,
        span: Span,
    },
    /// The month and day of a contact's `datetime` field (a birthday).
    Year(Ident),
}

/// `EVENT [where COND]`
#[derive(Clone, Debug, PartialEq)]
pub struct EventMatch {
    pub event: Ident,
    pub filter: Option<Expr>,
}

/// What `goal` and `exit when` test: an event, or a condition on the contact.
#[derive(Clone, Debug, PartialEq)]
pub struct Criterion {
    pub kind: CriterionKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CriterionKind {
    Event(EventMatch),
    Condition(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reenter {
    pub kind: ReenterKind,
    pub span: Span,
}

/// `on change exit|finish`: what a program change does to a journey at a
/// wait it cannot move (unnamed, or whose name is gone).
#[derive(Clone, Debug, PartialEq)]
pub struct OnChange {
    pub kind: OnChangeKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnChangeKind {
    /// The journey ends (outcome `exited`, reason `program_change`).
    Exit,
    /// The journey finishes in the version it began in.
    Finish,
}

impl OnChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OnChangeKind::Exit => "exit",
            OnChangeKind::Finish => "finish",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ReenterKind {
    Never,
    Always,
    After(DurationLit),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
    /// A wait's name (`wait 3d as cooling_off`); no other statement has one.
    pub name: Option<Ident>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    Assign,
    Add,
    Sub,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListOp {
    AddToList,
    RemoveFromList,
    AddToAudience,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MapEntry {
    pub key: Ident,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SplitArm {
    pub percent: u32,
    pub percent_span: Span,
    /// `as "label"`: what reports call the arm (default `A`, `B`, ...).
    pub label: Option<StrLit>,
    pub body: Block,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    Send {
        channel: Ident,
        template: StrLit,
        data: Option<Vec<MapEntry>>,
        /// Exempt from frequency caps and quiet hours; consent applies.
        transactional: bool,
    },
    Tag(Expr),
    Untag(Expr),
    Set {
        field: Ident,
        op: AssignOp,
        value: Expr,
    },
    List {
        op: ListOp,
        name: StrLit,
    },
    Notify {
        to: StrLit,
        message: Template,
    },
    Webhook {
        name: StrLit,
        data: Option<Vec<MapEntry>>,
    },
    Wait(WaitKind),
    WaitFor {
        event: Ident,
        within: DurationLit,
        filter: Option<Expr>,
        received: Option<Block>,
        timeout: Option<Block>,
    },
    If {
        branches: Vec<(Expr, Block)>,
        otherwise: Option<Block>,
    },
    /// `split ["name"] { ... }`: the name (unique in the workflow) is what
    /// reports show.
    Split {
        name: Option<StrLit>,
        arms: Vec<SplitArm>,
    },
    Stage(StrLit),
    Exit,
    /// Ends the journey now as a conversion, as if its goal were reached.
    Convert,
}

/// An interpolated string: `"text {expr} text"`.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TemplatePart {
    Text(String),
    Expr(Expr),
}

// ------------------------------------------------------------------ expressions

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathRoot {
    Contact,
    Event,
    Trigger,
}

impl PathRoot {
    pub fn as_str(self) -> &'static str {
        match self {
            PathRoot::Contact => "contact",
            PathRoot::Event => "event",
            PathRoot::Trigger => "trigger",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    /// `X ?? Y`: X's value when set, else Y.
    Coalesce,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::Coalesce => "??",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HistoryKind {
    Seen,
    Count,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Duration(i64),
    Datetime(DateTime<Utc>),
    List(Vec<Expr>),
    Now,
    Path {
        root: PathRoot,
        field: Ident,
    },
    Call {
        func: Ident,
        args: Vec<Expr>,
    },
    History {
        kind: HistoryKind,
        event: Ident,
        filter: Option<Box<Expr>>,
        within: Option<DurationLit>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    IsSet {
        operand: Box<Expr>,
        negated: bool,
    },
}

/// Expressions compare by structure, spans aside (see [`Span`]); they hash
/// the same way, so a pass can key facts by expression. Float literals are
/// never NaN, so equality is an equivalence.
impl Eq for Expr {}

impl std::hash::Hash for Expr {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        std::mem::discriminant(&self.kind).hash(h);
        match &self.kind {
            ExprKind::Int(i) | ExprKind::Duration(i) => i.hash(h),
            ExprKind::Float(f) => f.to_bits().hash(h),
            ExprKind::Str(s) => s.hash(h),
            ExprKind::Bool(b) => b.hash(h),
            ExprKind::Datetime(d) => d.hash(h),
            ExprKind::List(items) => items.hash(h),
            ExprKind::Now => {}
            ExprKind::Path { root, field } => (root, &field.name).hash(h),
            ExprKind::Call { func, args } => (&func.name, args).hash(h),
            ExprKind::History {
                kind,
                event,
                filter,
                within,
            } => (
                kind,
                &event.name,
                filter,
                within.as_ref().map(|w| w.seconds),
            )
                .hash(h),
            ExprKind::Unary { op, operand } => (op, operand).hash(h),
            ExprKind::Binary { op, lhs, rhs } => (op, lhs, rhs).hash(h),
            ExprKind::IsSet { operand, negated } => (operand, negated).hash(h),
        }
    }
}

// ------------------------------------------------------------------ tests

/// `test "name" { steps }`: a run from no contacts, driven by steps and
/// checked by claims (section 8 of the language).
#[derive(Clone, Debug, PartialEq)]
pub struct TestBlock {
    pub name: StrLit,
    pub steps: Vec<TestStep>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TestStep {
    pub kind: StepKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    /// `at DATETIME`: the clock moves there (never back).
    At(Expr),
    /// `advance DURATION`.
    Advance(DurationLit),
    /// `contact ID { ... }`: a `contact_created` event, now.
    Contact { id: Ident, fields: Vec<MapEntry> },
    /// `update ID { ... }`: a `contact_updated` event, now.
    Update { id: Ident, fields: Vec<MapEntry> },
    /// `given ID { ... }`: a preloaded contact (fires nothing).
    Given { id: Ident, fields: Vec<MapEntry> },
    /// `event ID TYPE { ... }`.
    Event {
        id: Ident,
        event: Ident,
        fields: Vec<MapEntry>,
    },
    /// `expect ID: CLAIM`.
    Expect { id: Ident, claim: Claim },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// An action was emitted (and is now matched), optionally at a time.
    Action {
        pattern: ActionPattern,
        at: Option<Expr>,
    },
    /// `no PATTERN`: no unmatched action matches.
    No(ActionPattern),
    /// `nothing else`: every action so far is matched.
    NothingElse,
    /// `in WORKFLOW` / `not in WORKFLOW`.
    In { workflow: Ident, negated: bool },
    /// `WORKFLOW completed|converted|exited|failed`.
    Outcome { workflow: Ident, outcome: Ident },
    /// A `bool` expression over `contact.F` and `now`.
    Holds(Expr),
}

/// An action written like the statement that emits it, parts left off
/// matching anything.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionPattern {
    pub kind: PatternKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PatternKind {
    Send {
        channel: Option<Ident>,
        template: Option<StrLit>,
        data: Option<Vec<MapEntry>>,
    },
    Tag(Option<StrLit>),
    Untag(Option<StrLit>),
    Set {
        field: Ident,
        value: Option<Expr>,
    },
    AddToList(Option<StrLit>),
    RemoveFromList(Option<StrLit>),
    AddToAudience(Option<StrLit>),
    /// `notify ["team" ["message"]]`: the message as it was sent
    /// (interpolated), when given.
    Notify {
        to: Option<StrLit>,
        message: Option<StrLit>,
    },
    /// `webhook ["name"] [with { ... }]`: the keys given must be equal.
    Webhook {
        name: Option<StrLit>,
        data: Option<Vec<MapEntry>>,
    },
}

// ------------------------------------------------------------------ waits

/// How long a `wait` waits.
#[derive(Clone, Debug, PartialEq)]
pub enum WaitKind {
    /// `wait 2d`.
    For(DurationLit),
    /// `wait EXPR`, a `duration`.
    Expr(Expr),
    /// `wait until 09:00`: the next 09:00 in the contact's zone.
    Clock(ClockTime),
    /// `wait until monday [at 09:00]`.
    Weekday { day: Weekday, at: Option<ClockTime> },
    /// `wait until EXPR`, a `datetime`.
    Until(Expr),
}

/// A local time of day, `HH:MM`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClockTime {
    pub hour: u32,
    pub minute: u32,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Weekday::Monday => "monday",
            Weekday::Tuesday => "tuesday",
            Weekday::Wednesday => "wednesday",
            Weekday::Thursday => "thursday",
            Weekday::Friday => "friday",
            Weekday::Saturday => "saturday",
            Weekday::Sunday => "sunday",
        }
    }

    /// Days from Monday.
    pub fn from_monday(self) -> u32 {
        self as u32
    }
}
