//! The REPL's listings: the schema, the workflows, a contact's journeys
//! and history, the help text, and the names completion offers.

use super::{editor, Logged, Session, COMMANDS};
use crate::runtime::{format_datetime, Value};
use std::fmt::Write as _;

impl Session {
    pub(super) fn schema(&self) -> String {
        let mut out = String::from("contact {\n");
        for f in &self.prog.schema.fields {
            let _ = write!(out, "  {}: {}", f.name, f.ty);
            if let Some(d) = &f.default {
                let _ = write!(out, " = {}", crate::pretty::expr(d));
            }
            if let Some(c) = &f.channel {
                let _ = write!(out, " @channel({c})");
            }
            if !f.consent.is_empty() {
                let _ = write!(out, " @consent({})", f.consent.join(", "));
            }
            out.push('\n');
        }
        out.push_str("}\n");
        for e in &self.prog.schema.events {
            let fields: Vec<String> = e.fields.iter().map(|(n, t)| format!("{n}: {t}")).collect();
            let builtin = if e.builtin {
                "  // built-in, carries `attributes`"
            } else {
                ""
            };
            let _ = writeln!(out, "event {} {{ {} }}{builtin}", e.name, fields.join(", "));
        }
        out
    }

    pub(super) fn workflows(&self) -> String {
        let mut out = String::new();
        for wf in self.analysis.program.workflows() {
            let trigger = match wf.trigger.as_ref().map(|t| &t.kind) {
                Some(crate::ast::TriggerKind::Event(m)) => match &m.filter {
                    Some(f) => format!("when {} where {}", m.event.name, crate::pretty::expr(f)),
                    None => format!("when {}", m.event.name),
                },
                Some(crate::ast::TriggerKind::Inactive(d)) => {
                    format!("when inactive for {}", crate::pretty::duration(d.seconds))
                }
                Some(crate::ast::TriggerKind::Condition(c)) => {
                    format!("when {}", crate::pretty::expr(c))
                }
                Some(crate::ast::TriggerKind::At(e)) => {
                    format!("when at {}", crate::pretty::expr(e))
                }
                Some(crate::ast::TriggerKind::Every(s)) => format!(
                    "when every {} at {:02}:{:02}",
                    match &s.every {
                        crate::ast::Every::Day => "day".to_string(),
                        crate::ast::Every::Weekday(d) => d.name().to_string(),
                        crate::ast::Every::Month { day, .. } => format!("month on {day}"),
                        crate::ast::Every::Year(f) => format!("year on contact.{}", f.name),
                    },
                    s.at.hour,
                    s.at.minute
                ),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "{}  {trigger}  ({})",
                wf.name.name,
                self.sources.location(wf.name.span)
            );
        }
        if out.is_empty() {
            out.push_str("no workflows; type one in, or `:load PATH`\n");
        }
        out
    }

    pub(super) fn journeys(&self, id: Option<&str>) -> Result<String, String> {
        let id = self.contact_named(id)?;
        let mut out = String::new();
        for j in self.engine.journeys(&id).unwrap_or_default() {
            let wf = &self.prog.workflows[j.workflow as usize];
            let what = match j.waiting_for {
                Some(ev) => format!("waits for {}", self.prog.schema.events[ev as usize].name),
                None => "waits".to_string(),
            };
            let _ = writeln!(
                out,
                "{}  {what} until {}  at {}  (entered {})",
                wf.name,
                format_datetime(j.until),
                self.sources.location(j.at),
                format_datetime(j.entered_at)
            );
        }
        if out.is_empty() {
            let _ = writeln!(out, "{id} has no journey in flight");
        }
        Ok(out)
    }

    pub(super) fn history(&self, id: Option<&str>) -> Result<String, String> {
        let id = self.contact_named(id)?;
        let mut out = String::new();
        for item in &self.log {
            if let Logged::Event(line) = item {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                    if v["contact"] == id.as_str() {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
        }
        Ok(out)
    }

    /// Names for completion: commands, fields, events with their payload fields, workflows, contacts.
    pub fn names(&self) -> editor::Names {
        editor::Names {
            fields: self
                .prog
                .schema
                .fields
                .iter()
                .map(|f| f.name.clone())
                .collect(),
            events: self
                .prog
                .schema
                .events
                .iter()
                .map(|e| {
                    (
                        e.name.clone(),
                        e.fields.iter().map(|(n, _)| n.clone()).collect(),
                    )
                })
                .collect(),
            workflows: self
                .prog
                .workflows
                .iter()
                .map(|w| w.name.to_string())
                .collect(),
            contacts: self.engine.contact_ids().map(str::to_string).collect(),
        }
    }
}

pub(super) fn show(v: &Value) -> String {
    if matches!(v, Value::Unset) {
        return "unset".into();
    }
    let mut s = String::new();
    v.write_json(&mut s);
    s
}

pub(super) fn help() -> String {
    let mut out = String::from("commands:\n");
    for (c, d) in COMMANDS {
        let _ = writeln!(out, "  {c:<26} {d}");
    }
    out.push_str(
        "anything else is an expression, evaluated for the current contact (`contact.score + 10`),\n\
         or a `workflow`/`event` declaration, checked and added to the program.\n\
         Input continues on the next line while a brace or bracket is open.\n",
    );
    out
}
