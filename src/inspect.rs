//! What a state holds, as JSON: `nurture inspect --format json` and the
//! live service's `/v1/state` and `/v1/contacts/{id}` print the same
//! objects (LANGUAGE.md sections 7 and 11).

use crate::runtime::{format_datetime, Millis, Value};
use crate::runtime::{ContactRow, JourneyRow, Snapshot};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// The program record a run leaves beside its state.
pub struct Program {
    pub workflows: Vec<String>,
    pub fields: Vec<String>,
    pub events: Vec<String>,
    pub places: Vec<Vec<String>>,
    pub fingerprint: String,
}

impl Program {
    /// What a program record says, for reading a state.
    pub fn of(r: crate::runtime::state::ProgramRecord) -> Program {
        Program {
            fingerprint: r.fingerprint(),
            workflows: r.workflows.into_iter().map(|(n, _)| n).collect(),
            fields: r.fields,
            events: r.events,
            places: r.places,
        }
    }
}

fn time(t: Millis) -> Json {
    json!(format_datetime(t))
}

/// Where a journey stands: the statement it waits at, what, until when.
fn standing(j: &JourneyRow, p: &Program) -> (String, Json, Json) {
    // A plain `wait` has moved past itself; a `wait for` has not.
    let pc = if j.waiting_for.is_some() {
        j.pc
    } else {
        j.pc.saturating_sub(1)
    } as usize;
    let place = p
        .places
        .get(j.workflow as usize)
        .and_then(|w| w.get(pc))
        .cloned()
        .unwrap_or_default();
    let event = j
        .waiting_for
        .and_then(|e| p.events.get(e as usize))
        .map_or(Json::Null, |e| json!(e));
    (place, event, time(j.wake_at))
}

pub fn overview(snap: &Snapshot, p: &Program, input: &Json) -> Json {
    let mut workflows = Vec::new();
    for (w, name) in p.workflows.iter().enumerate() {
        let mut by: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        for j in snap.journeys.iter().filter(|j| j.workflow as usize == w) {
            let (place, event, until) = standing(j, p);
            *by.entry((place, event.to_string(), until.to_string()))
                .or_default() += 1;
        }
        let waiting: Vec<Json> = by
            .into_iter()
            .map(|((place, event, until), n)| {
                json!({
                    "at": place,
                    "event": serde_json::from_str::<Json>(&event).unwrap_or(Json::Null),
                    "until": serde_json::from_str::<Json>(&until).unwrap_or(Json::Null),
                    "journeys": n,
                })
            })
            .collect();
        workflows.push(json!({
            "workflow": name,
            "in_flight": snap.journeys.iter().filter(|j| j.workflow as usize == w).count(),
            "waiting": waiting,
        }));
    }
    json!({
        "clock": snap.totals.clock.map_or(Json::Null, time),
        "program": p.fingerprint,
        "input": { "bytes": input["bytes"], "lines": input["lines"] },
        "contacts": snap.contacts.len(),
        "workflows": workflows,
    })
}

fn value(v: &Value) -> Json {
    let mut s = String::new();
    v.write_json(&mut s);
    serde_json::from_str(&s).unwrap_or(Json::Null)
}

pub fn contact(snap: &Snapshot, n: usize, p: &Program) -> Json {
    let c: &ContactRow = &snap.contacts[n];
    let attributes: serde_json::Map<String, Json> = p
        .fields
        .iter()
        .zip(&c.attrs)
        .map(|(f, v)| (f.split(':').next().unwrap_or(f).to_string(), value(v)))
        .collect();
    let journeys: Vec<Json> = snap
        .journeys
        .iter()
        .filter(|j| j.contact as usize == n)
        .map(|j| {
            let (place, event, until) = standing(j, p);
            json!({
                "workflow": p.workflows.get(j.workflow as usize),
                "at": place,
                "event": event,
                "until": until,
                "entered": time(j.entered_at),
            })
        })
        .collect();
    let history: Vec<Json> = c
        .history
        .iter()
        .map(|e| {
            json!({
                "type": p.events.get(e.ty as usize),
                "at": time(e.at),
            })
        })
        .collect();
    json!({
        "contact": c.id.as_str(),
        "attributes": attributes,
        "journeys": journeys,
        "history": history,
    })
}
