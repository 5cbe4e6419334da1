//! `nurture inspect --state DB [CONTACT]`: what a state holds.

use super::Format;
use crate::inspect::{contact, overview, Program};
use crate::runtime::state::{SqliteStore, StateStore};
use serde_json::Value as Json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The state to read (it is only read, never changed).
    #[arg(long, value_name = "DB")]
    pub state: PathBuf,
    /// A contact id: its attributes, journeys and kept history.
    pub contact: Option<String>,
    /// How to print: for people, or one JSON object.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(args: &InspectArgs) -> ExitCode {
    match inspect(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            say!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn inspect(args: &InspectArgs) -> Result<String, String> {
    let shown = args.state.display();
    if !args.state.exists() {
        return Err(format!("there is no state `{shown}`"));
    }
    let mut store = SqliteStore::open_to_read(&args.state).map_err(|e| e.to_string())?;
    let snap = store
        .load()
        .map_err(|e| format!("`{shown}`: {e}"))?
        .ok_or_else(|| format!("`{shown}` holds no state yet"))?;
    // Read without the program: the rows checked against themselves and
    // what the program record says of the code.
    let program = program(&store).map_err(|e| format!("`{shown}`: {e}"))?;
    let lengths: Vec<usize> = program.places.iter().map(Vec::len).collect();
    snap.check_rows_against(&lengths)
        .map_err(|e| format!("`{shown}`: {e}"))?;
    let input: Json = store
        .entry("input")
        .map_err(|e| e.to_string())?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Json::Null);
    let v = match &args.contact {
        None => overview(&snap, &program, &input),
        Some(id) => {
            let Some(n) = snap.contacts.iter().position(|c| c.id == id.as_str()) else {
                return Err(format!(
                    "`{shown}` has no contact `{}`",
                    crate::suggest::echo(id)
                ));
            };
            contact(&snap, n, &program)
        }
    };
    Ok(match args.format {
        Format::Json => format!("{v}\n"),
        Format::Human => human(&v),
    })
}

fn program(store: &SqliteStore) -> Result<Program, String> {
    let text = store
        .entry("program")
        .map_err(|e| e.to_string())?
        .ok_or_else(|| crate::runtime::state::StateError::NoProgram.to_string())?;
    let r = crate::runtime::state::ProgramRecord::parse(&text).map_err(|e| e.to_string())?;
    Ok(Program::of(r))
}

/// A JSON value as people read it: strings without quotes where that is
/// clear, unset values as `(unset)`, lists as `[a, b]`.
fn plain(v: &Json) -> String {
    match v {
        Json::Null => "(unset)".into(),
        Json::String(s) => crate::suggest::echo_whole(s),
        Json::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|x| match x {
                    Json::String(s) => format!("\"{}\"", crate::suggest::echo_whole(s)),
                    x => plain(x),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Rows of cells, each column padded to its widest cell.
fn table(rows: &[Vec<String>], indent: &str) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = indent.to_string();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The overview or a contact, as aligned text for people (the same facts
/// as the JSON).
fn human(v: &Json) -> String {
    let mut out = String::new();
    if let Some(id) = v["contact"].as_str() {
        out.push_str(&format!(
            "contact {}\n\nattributes\n",
            crate::suggest::echo_whole(id)
        ));
        let rows: Vec<Vec<String>> = v["attributes"]
            .as_object()
            .map(|m| m.iter().map(|(k, x)| vec![k.clone(), plain(x)]).collect())
            .unwrap_or_default();
        out.push_str(&table(&rows, "  "));
        out.push_str("\njourneys\n");
        let journeys = v["journeys"].as_array().cloned().unwrap_or_default();
        if journeys.is_empty() {
            out.push_str("  none in flight\n");
        }
        let rows: Vec<Vec<String>> = journeys
            .iter()
            .map(|j| {
                let what = match j["event"].as_str() {
                    Some(e) => format!("waits for {e} until {}", plain(&j["until"])),
                    None => format!("waits until {}", plain(&j["until"])),
                };
                vec![
                    plain(&j["workflow"]),
                    format!("entered {}", plain(&j["entered"])),
                    format!("at {}", plain(&j["at"])),
                    what,
                ]
            })
            .collect();
        out.push_str(&table(&rows, "  "));
        out.push_str("\nhistory\n");
        let history = v["history"].as_array().cloned().unwrap_or_default();
        if history.is_empty() {
            out.push_str("  none kept\n");
        }
        let rows: Vec<Vec<String>> = history
            .iter()
            .map(|e| vec![plain(&e["at"]), plain(&e["type"])])
            .collect();
        out.push_str(&table(&rows, "  "));
        return out;
    }
    let input = &v["input"];
    let rows = vec![
        vec!["clock".to_string(), plain(&v["clock"])],
        vec!["program".to_string(), plain(&v["program"])],
        vec![
            "input".to_string(),
            match (input["bytes"].as_u64(), input["lines"].as_u64()) {
                (Some(b), Some(l)) => format!("{b} bytes, {l} lines read"),
                _ => "none read".into(),
            },
        ],
        vec!["contacts".to_string(), plain(&v["contacts"])],
    ];
    out.push_str(&table(&rows, ""));
    out.push('\n');
    let mut rows = vec![vec![
        "workflow".to_string(),
        "in flight".to_string(),
        "where they stand".to_string(),
    ]];
    for w in v["workflows"].as_array().cloned().unwrap_or_default() {
        let waiting = w["waiting"].as_array().cloned().unwrap_or_default();
        let first = |x: &Json| {
            let what = match x["event"].as_str() {
                Some(e) => format!("for {e} until {}", plain(&x["until"])),
                None => format!("until {}", plain(&x["until"])),
            };
            format!("{} at {}, {what}", x["journeys"], plain(&x["at"]))
        };
        rows.push(vec![
            plain(&w["workflow"]),
            w["in_flight"].to_string(),
            waiting.first().map(first).unwrap_or_default(),
        ]);
        for x in waiting.iter().skip(1) {
            rows.push(vec![String::new(), String::new(), first(x)]);
        }
    }
    out.push_str(&table(&rows, ""));
    out
}
