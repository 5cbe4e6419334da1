//! The executable form of a program: expressions and instructions with
//! fields resolved to slots and events to ids, statements flattened into
//! jump-linked instructions. `compile.rs` builds it; the engine runs it.

use super::input::Projection;
use super::value::{Millis, Value};
use crate::ast::{AssignOp, BinaryOp, ListOp};
use crate::check::Schema;
use crate::source::Span;
use std::sync::Arc;

pub use crate::vocabulary::Builtin;
use crate::vocabulary::Channel;

#[derive(Clone, Debug)]
pub enum CExpr {
    Const(Value),
    Contact(u16),
    Event(u16),
    Trigger(u16),
    Now,
    Not(Box<CExpr>),
    Neg(Box<CExpr>, Span),
    And(Box<CExpr>, Box<CExpr>),
    Or(Box<CExpr>, Box<CExpr>),
    Bin(BinaryOp, Box<CExpr>, Box<CExpr>, Span),
    IsSet(Box<CExpr>, bool),
    Call(Builtin, Box<[CExpr]>),
    History {
        count: bool,
        event: u16,
        filter: Option<Box<CExpr>>,
        within: Option<Millis>,
        /// The contact's running tally of this predicate (an index into
        /// [`Compiled::tallies`]), when its filter reads only the event:
        /// kept up to date as events arrive, read without a scan.
        tally: Option<u16>,
    },
    List(Box<[CExpr]>),
}

/// A history predicate whose filter reads only the event it looks at: each
/// contact keeps a count (or, with `within`, the times) of the matching
/// events as they arrive.
#[derive(Clone, Debug)]
pub struct TallySpec {
    pub event: u16,
    pub filter: Option<CExpr>,
    pub within: Option<Millis>,
}

#[derive(Clone, Debug)]
pub enum Part {
    Text(Arc<str>),
    Expr(CExpr),
}

pub type Data = Option<Box<[(Arc<str>, CExpr)]>>;

#[derive(Clone, Debug)]
pub enum Instr {
    Send {
        channel: Arc<str>,
        /// The channel, for the counts of suppressed sends.
        channel_id: Channel,
        template: Arc<str>,
        data: Data,
        /// The slots of the fields marked `@consent(channel)`: the send is
        /// emitted only when every one of them is `true` at that instant.
        consent: Box<[u16]>,
        /// Exempt from frequency caps and quiet hours, and not counted
        /// toward a cap.
        transactional: bool,
    },
    Tag(CExpr),
    Untag(CExpr),
    Set {
        field: u16,
        op: AssignOp,
        value: CExpr,
    },
    List {
        op: ListOp,
        name: Arc<str>,
    },
    Notify {
        to: Arc<str>,
        parts: Box<[Part]>,
    },
    Webhook {
        name: Arc<str>,
        data: Data,
    },
    Wait(Millis),
    /// A wait whose end is computed when it begins.
    WaitUntil(Until),
    /// The received block starts at the next instruction; `timeout` is where the timeout block starts.
    WaitFor {
        event: u16,
        within: Millis,
        filter: Option<CExpr>,
        timeout: u32,
    },
    /// Falls through when `cond` holds, else jumps to `otherwise`.
    Branch {
        cond: CExpr,
        otherwise: u32,
        /// An `else if` of the same `if` follows: the false way leads to
        /// it, and is no arm of its own (for coverage).
        chained: bool,
    },
    Jump(u32),
    /// `arms`: (cumulative upper bound of the bucket, first instruction).
    Split {
        index: u32,
        arms: Box<[(u32, u32)]>,
    },
    /// `index`: the stage's place among the workflow's distinct stages.
    Stage {
        name: Arc<str>,
        index: u16,
    },
    Exit,
    /// Ends the journey as a conversion.
    Convert,
    End,
}

#[derive(Clone, Debug)]
pub enum CTrigger {
    Event {
        event: u16,
        filter: Option<CExpr>,
    },
    Inactive(Millis),
    /// `bit` indexes the per-contact record of the condition's last value.
    Condition {
        cond: CExpr,
        bit: u32,
    },
    /// `when at EXPR`: a datetime from the contact's fields.
    At(CExpr),
    /// `when every ... at hour:minute [where filter]`.
    Schedule {
        every: Every,
        hour: u32,
        minute: u32,
        filter: Option<CExpr>,
    },
    /// The trigger failed to check; never fires.
    Never,
}

#[derive(Clone, Debug)]
pub enum Criterion {
    Event { event: u16, filter: Option<CExpr> },
    Condition(CExpr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reenter {
    Never,
    Always,
    After(Millis),
}

#[derive(Clone, Debug)]
pub struct Workflow {
    pub name: Arc<str>,
    pub trigger: CTrigger,
    pub goal: Option<Criterion>,
    pub exit_when: Option<Criterion>,
    pub reenter: Reenter,
    pub code: Vec<Instr>,
    /// The source span of each instruction.
    pub spans: Vec<Span>,
    /// Some expression reads `trigger.F`: journeys keep their trigger event.
    pub keeps_trigger: bool,
    /// Some `wait for` block reads `event.F`: journeys keep the event received.
    pub keeps_received: bool,
    /// What the funnel report counts.
    pub funnel: FunnelShape,
    /// Its waits, in source order: where a journey stands at each.
    pub waits: Vec<WaitPlace>,
    /// Its `on change` line.
    pub on_change: Option<crate::ast::OnChangeKind>,
}

/// A wait of a workflow, as a program change sees it (LANGUAGE.md section
/// 13): its name, and the place (`pc`) a journey has while it stands there
/// (just past a timed wait; at a `wait for`).
#[derive(Clone, Debug, PartialEq)]
pub struct WaitPlace {
    pub name: Option<Arc<str>>,
    pub stands: u32,
    /// The event a `wait for` waits for; none for a timed wait.
    pub event: Option<u16>,
    pub span: Span,
}

/// When a scheduled trigger occurs, in each contact's zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Every {
    Day,
    /// Monday 0.
    Weekday(u32),
    /// A day of the month.
    Month(u32),
    /// Every day, for the contacts whose datetime field (this slot) falls
    /// on the day.
    Year(u16),
}

/// What a computed wait waits for.
#[derive(Clone, Debug)]
pub enum Until {
    /// `wait EXPR`: a duration.
    Duration(CExpr),
    /// `wait until HH:MM` in the contact's zone, on any day or on a weekday
    /// (Monday 0).
    Local {
        hour: u32,
        minute: u32,
        weekday: Option<u32>,
    },
    /// `wait until EXPR`: a datetime.
    Instant(CExpr),
}

/// The instruction set's version: a compiler change that renumbers or
/// reshapes instructions changes it, and a state whose journeys in flight
/// were compiled by another is refused (their places would not mean the
/// same).
pub const INSTRUCTION_SET: u32 = 1;

/// The steps and experiments of a workflow's report (LANGUAGE.md section 9).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunnelShape {
    /// The distinct `stage` names, in order of first appearance.
    pub stages: Vec<Arc<str>>,
    /// The `split`s, in source order (their `index`).
    pub splits: Vec<SplitShape>,
    /// The workflow has a `goal` or a `convert`: its funnel ends with
    /// `converted`.
    pub converts: bool,
    /// Per stage, its parent step: the nearest earlier stage that every
    /// path to it passes through (`None`: `entered`).
    pub parents: Vec<Option<u16>>,
    /// `converted`'s parent, likewise.
    pub converted_parent: Option<u16>,
}

/// Most distinct stages, and split arms in all, a workflow's funnel
/// counts (a journey keeps a bit for each); the checker refuses more.
pub use crate::check::MAX_FUNNEL_BITS;

#[derive(Clone, Debug, PartialEq)]
pub struct SplitShape {
    pub span: Span,
    /// `split "name"`: what reports call it.
    pub name: Option<Arc<str>>,
    /// Each arm's `as "label"` (default `A`, `B`, ...).
    pub labels: Vec<Option<Arc<str>>>,
    /// Each arm's share, in percent.
    pub shares: Vec<u32>,
    /// The first arm's slot among the workflow's split arms.
    pub base: u32,
}

impl SplitShape {
    /// What reports and the state call arm `i`: its `as "label"`, else
    /// `A`, `B`, ... (past `Z`, its number from 1).
    pub fn arm_label(&self, i: usize) -> String {
        match self.labels.get(i) {
            Some(Some(l)) => l.to_string(),
            _ if i < 26 => ((b'A' + i as u8) as char).to_string(),
            _ => (i + 1).to_string(),
        }
    }
}

/// How much event history the program needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    None,
    Within(Millis),
    All,
}

/// A program ready to run.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub schema: Schema,
    pub workflows: Vec<Workflow>,
    /// Default value of each field (`Unset` where there is none).
    pub defaults: Vec<Value>,
    pub retention: Retention,
    /// The tallied history predicates, and per event type those it feeds.
    pub tallies: Vec<TallySpec>,
    pub tallies_by_event: Vec<Vec<u16>>,
    /// Which event types `seen`/`count` look at.
    pub history_events: Vec<bool>,
    /// Workflows started by each event type, in declaration order.
    pub by_event: Vec<Vec<u16>>,
    pub condition_count: u32,
    /// Per event type: some `goal` or `exit when` names it.
    pub ends_on: Vec<bool>,
    /// Some `goal` or `exit when` is a condition, tested at every event.
    pub ends_on_condition: bool,
    /// Per event type: some `wait for` waits for it.
    pub waited_for: Vec<bool>,
    /// The payload fields some expression reads; input drops the others.
    pub projection: Projection,
    /// The program's time zone (`timezone "..."`, else UTC).
    pub zone: chrono_tz::Tz,
    /// The contact field marked `@timezone`.
    pub zone_field: Option<u16>,
    /// Per channel (`Channel as usize`): its `limit` (sends, window).
    pub caps: [Option<(u32, Millis)>; Channel::ALL.len()],
    /// Per channel: its quiet hours, (start, end) in minutes of the day.
    pub quiet: [Option<(u32, u32)>; Channel::ALL.len()],
}
