//! What the engine emits, as typed records, and their one rendering to JSON
//! Lines (LANGUAGE.md section 6: actions, and with `--trace` the lifecycle
//! records).

use super::program::Compiled;
use super::value::{format_datetime, write_json_str, Millis, Value};
use smol_str::SmolStr;
use std::sync::Arc;

/// The kinds of action, in the summary's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionKind {
    Send,
    Tag,
    Untag,
    Set,
    AddToList,
    RemoveFromList,
    AddToAudience,
    Notify,
    Webhook,
}

impl ActionKind {
    pub const ALL: [ActionKind; 9] = [
        ActionKind::Send,
        ActionKind::Tag,
        ActionKind::Untag,
        ActionKind::Set,
        ActionKind::AddToList,
        ActionKind::RemoveFromList,
        ActionKind::AddToAudience,
        ActionKind::Notify,
        ActionKind::Webhook,
    ];

    /// The `action` value of the record.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Send => "send",
            ActionKind::Tag => "tag",
            ActionKind::Untag => "untag",
            ActionKind::Set => "set",
            ActionKind::AddToList => "add_to_list",
            ActionKind::RemoveFromList => "remove_from_list",
            ActionKind::AddToAudience => "add_to_audience",
            ActionKind::Notify => "notify",
            ActionKind::Webhook => "webhook",
        }
    }
}

/// A `with { ... }` map's keys and values, in the order written.
pub type DataMap = Option<Vec<(Arc<str>, Value)>>;

/// One action, with what the record carries besides its header.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Send {
        channel: Arc<str>,
        template: Arc<str>,
        data: DataMap,
    },
    Tag(Arc<str>),
    Untag(Arc<str>),
    /// `field` is the contact field's slot in the schema; `value` its new value.
    Set {
        field: u16,
        value: Value,
    },
    AddToList(Arc<str>),
    RemoveFromList(Arc<str>),
    AddToAudience(Arc<str>),
    Notify {
        to: Arc<str>,
        message: String,
    },
    Webhook {
        name: Arc<str>,
        data: DataMap,
    },
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Send { .. } => ActionKind::Send,
            Action::Tag(_) => ActionKind::Tag,
            Action::Untag(_) => ActionKind::Untag,
            Action::Set { .. } => ActionKind::Set,
            Action::AddToList(_) => ActionKind::AddToList,
            Action::RemoveFromList(_) => ActionKind::RemoveFromList,
            Action::AddToAudience(_) => ActionKind::AddToAudience,
            Action::Notify { .. } => ActionKind::Notify,
            Action::Webhook { .. } => ActionKind::Webhook,
        }
    }
}

/// Per-workflow counts for the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkflowStats {
    pub entered: u64,
    pub converted: u64,
    pub exited: u64,
    pub completed: u64,
    pub failed: u64,
    /// Trigger matches that started no journey (one was active, or
    /// `reenter` forbade it).
    pub skipped: u64,
    /// Sends not emitted for want of consent, per channel (indexed by
    /// `Channel as usize`).
    pub suppressed: [u64; crate::vocabulary::Channel::ALL.len()],
    /// Sends not emitted because the channel's `limit` was reached.
    pub capped: [u64; crate::vocabulary::Channel::ALL.len()],
}

/// A workflow's funnel counts, for the report: per distinct stage, the
/// journeys that reached it; per split arm (in source order), the journeys
/// that took it and those of them that converted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunnelCounts {
    pub stages: Vec<u64>,
    pub arms: Vec<(u64, u64)>,
}

impl FunnelCounts {
    /// Zero counts of `shape`'s size.
    pub fn of(shape: &super::program::FunnelShape) -> FunnelCounts {
        FunnelCounts {
            stages: vec![0; shape.stages.len()],
            arms: vec![(0, 0); shape.splits.iter().map(|s| s.shares.len()).sum()],
        }
    }

    /// These counts, sized to `shape` (counts past it dropped, new ones 0).
    pub fn fit(mut self, shape: &super::program::FunnelShape) -> FunnelCounts {
        let size = FunnelCounts::of(shape);
        self.stages.resize(size.stages.len(), 0);
        self.arms.resize(size.arms.len(), (0, 0));
        self
    }
}

/// How a journey ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Converted,
    Exited,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Converted => "converted",
            Outcome::Exited => "exited",
            Outcome::Failed => "failed",
        }
    }
}

/// A point in a journey's life, emitted with `--trace`.
#[derive(Clone, Debug, PartialEq)]
pub enum Lifecycle {
    Enter,
    Stage(Arc<str>),
    /// `event`: the event a `wait for` awaits (its type id).
    Wait {
        until: Millis,
        event: Option<u16>,
    },
    /// Resumed by an event (its type id), or by the clock (`timeout` when a
    /// `wait for` timed out).
    Resume {
        event: Option<u16>,
        timeout: bool,
    },
    End(Outcome),
    /// Ended by a program change (`on change exit`): outcome `exited`,
    /// reason `program_change`. Carries the workflow's name, which a
    /// removed workflow has in no other place.
    ChangeExit(Arc<str>),
    /// A `send` that was not emitted; the journey went on.
    Suppressed {
        channel: Arc<str>,
        template: Arc<str>,
        reason: Suppression,
    },
    /// A trigger matched but no journey started.
    Skipped(Skip),
    /// A send held by quiet hours until `until`, when it is judged again.
    Held {
        until: Millis,
    },
}

/// Why a `send` was not emitted (LANGUAGE.md section 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suppression {
    /// A field marked `@consent(channel)` was not `true`.
    Consent,
    /// The channel's `limit` was reached.
    FrequencyCap,
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::Consent => "consent",
            Suppression::FrequencyCap => "frequency_cap",
        }
    }
}

/// Why a matching trigger started no journey (LANGUAGE.md section 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The contact already has a journey in flight in that workflow.
    Active,
    /// Its `reenter` rule forbids another journey yet.
    Reenter,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Active => "active",
            Skip::Reenter => "reenter",
        }
    }
}

/// What a record says.
#[derive(Clone, Debug, PartialEq)]
pub enum What {
    Action(Action),
    Lifecycle(Lifecycle),
}

/// One emitted record: when, for whom, from which workflow (its index in
/// the program), and what.
#[derive(Clone, Debug, PartialEq)]
pub struct Emitted {
    pub at: Millis,
    pub contact: SmolStr,
    pub workflow: u16,
    pub what: What,
    /// An action's id: its 1-based place in the emission order of every
    /// action the state has emitted (the same input always gives the same
    /// ids); 0 for a lifecycle record, which has none.
    pub id: u64,
}

/// Records not yet taken by the driver, and the action counts of the run.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub(crate) records: Vec<Emitted>,
    /// Whether lifecycle records are kept.
    pub(crate) trace: bool,
    /// Count of each action kind, indexed by `ActionKind as usize`.
    pub(crate) counts: [u64; ActionKind::ALL.len()],
}

impl Output {
    pub(crate) fn new(trace: bool) -> Output {
        Output {
            trace,
            ..Output::default()
        }
    }

    pub(crate) fn action(&mut self, at: Millis, contact: &SmolStr, workflow: u16, a: Action) {
        self.counts[a.kind() as usize] += 1;
        self.records.push(Emitted {
            at,
            contact: contact.clone(),
            workflow,
            what: What::Action(a),
            id: self.counts.iter().sum(),
        });
    }

    /// Keeps a lifecycle record when tracing; callers that build costly
    /// records check [`Output::trace`] first.
    pub(crate) fn lifecycle(&mut self, at: Millis, contact: &SmolStr, workflow: u16, l: Lifecycle) {
        if self.trace {
            self.records.push(Emitted {
                at,
                contact: contact.clone(),
                workflow,
                what: What::Lifecycle(l),
                id: 0,
            });
        }
    }
}

/// Renders records as JSON Lines: the only place records become text.
#[derive(Debug)]
pub struct JsonWriter {
    /// The last time written, formatted: consecutive records often share it.
    time_cache: (Millis, String),
    /// Whether an action's JSON carries its `"id"` (the live service's
    /// output; `nurture run`'s does not).
    pub ids: bool,
}

impl Default for JsonWriter {
    fn default() -> JsonWriter {
        JsonWriter {
            time_cache: (Millis::MIN, String::new()),
            ids: false,
        }
    }
}

impl JsonWriter {
    /// Appends `r` as one line: `{"at":..,"contact":..,"workflow":..,"action":..,...}`.
    pub fn write(&mut self, prog: &Compiled, r: &Emitted, buf: &mut String) {
        if self.time_cache.0 != r.at {
            self.time_cache = (r.at, format_datetime(r.at));
        }
        buf.push_str("{\"at\":\"");
        buf.push_str(&self.time_cache.1);
        buf.push_str("\",\"contact\":");
        write_json_str(buf, &r.contact);
        buf.push_str(",\"workflow\":");
        let workflow = match (&r.what, prog.workflows.get(r.workflow as usize)) {
            (What::Lifecycle(Lifecycle::ChangeExit(name)), _) => name,
            (_, Some(w)) => &w.name,
            (_, None) => "",
        };
        write_json_str(buf, workflow);
        buf.push_str(",\"action\":\"");
        match &r.what {
            What::Action(a) => {
                buf.push_str(a.kind().as_str());
                buf.push('"');
                action_fields(prog, a, buf);
            }
            What::Lifecycle(l) => lifecycle_fields(prog, l, buf),
        }
        if self.ids && r.id > 0 {
            buf.push_str(",\"id\":");
            buf.push_str(itoa::Buffer::new().format(r.id));
        }
        buf.push_str("}\n");
    }
}

fn action_fields(prog: &Compiled, a: &Action, buf: &mut String) {
    match a {
        Action::Send {
            channel,
            template,
            data,
        } => {
            field_str(buf, "channel", channel);
            field_str(buf, "template", template);
            data_field(buf, data);
        }
        Action::Tag(tag) | Action::Untag(tag) => field_str(buf, "tag", tag),
        Action::Set { field, value } => {
            field_str(buf, "field", &prog.schema.fields[*field as usize].name);
            key(buf, "value");
            value.write_json(buf);
        }
        Action::AddToList(name) | Action::RemoveFromList(name) => field_str(buf, "list", name),
        Action::AddToAudience(name) => field_str(buf, "audience", name),
        Action::Notify { to, message } => {
            field_str(buf, "to", to);
            field_str(buf, "message", message);
        }
        Action::Webhook { name, data } => {
            field_str(buf, "name", name);
            data_field(buf, data);
        }
    }
}

fn lifecycle_fields(prog: &Compiled, l: &Lifecycle, buf: &mut String) {
    let event_name = |ev: u16| &*prog.schema.events[ev as usize].name;
    match l {
        Lifecycle::Enter => buf.push_str("enter\""),
        Lifecycle::Stage(name) => {
            buf.push_str("stage\"");
            field_str(buf, "stage", name);
        }
        Lifecycle::Wait { until, event } => {
            buf.push_str("wait\"");
            key(buf, "until");
            Value::Datetime(*until).write_json(buf);
            if let Some(ev) = event {
                field_str(buf, "event", event_name(*ev));
            }
        }
        Lifecycle::Resume { event, timeout } => {
            buf.push_str("resume\"");
            if let Some(ev) = event {
                field_str(buf, "event", event_name(*ev));
            }
            if *timeout {
                key(buf, "timeout");
                buf.push_str("true");
            }
        }
        Lifecycle::End(outcome) => {
            buf.push_str("end\"");
            field_str(buf, "outcome", outcome.as_str());
        }
        Lifecycle::ChangeExit(_) => {
            buf.push_str("end\"");
            field_str(buf, "outcome", Outcome::Exited.as_str());
            field_str(buf, "reason", "program_change");
        }
        Lifecycle::Suppressed {
            channel,
            template,
            reason,
        } => {
            buf.push_str("suppressed\"");
            field_str(buf, "channel", channel);
            field_str(buf, "template", template);
            field_str(buf, "reason", reason.as_str());
        }
        Lifecycle::Skipped(reason) => {
            buf.push_str("skipped\"");
            field_str(buf, "reason", reason.as_str());
        }
        Lifecycle::Held { until } => {
            buf.push_str("wait\"");
            key(buf, "until");
            Value::Datetime(*until).write_json(buf);
            field_str(buf, "reason", "quiet_hours");
        }
    }
}

fn data_field(buf: &mut String, data: &DataMap) {
    let Some(entries) = data else { return };
    key(buf, "data");
    buf.push('{');
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        write_json_str(buf, k);
        buf.push(':');
        v.write_json(buf);
    }
    buf.push('}');
}

fn field_str(buf: &mut String, key_name: &str, value: &str) {
    key(buf, key_name);
    write_json_str(buf, value);
}

fn key(buf: &mut String, key: &str) {
    buf.push_str(",\"");
    buf.push_str(key);
    buf.push_str("\":");
}
