//! The REPL's core: a session that owns a program, an engine and a virtual
//! clock, and turns one input into text. No terminal code here: the
//! rustyline front end is `repl/editor.rs`, and piped input uses the same core.
//!
//! Changing the program (`:load`, `:reload`, a typed declaration) compiles it
//! again and replays the session's events into a fresh engine, silently, so
//! contacts and journeys are always those the current program produces.

mod command;
pub mod editor;
mod listing;

pub use command::{is_complete, parse, Command, COMMANDS};

use crate::diagnostic::Code;
use crate::diagnostic::Diagnostic;
use crate::pipeline::{add_last_file, analyse_cached, Analysis, ParseCache};
use crate::runtime::Interpreter;
use crate::runtime::{compile, Compiled};
use crate::runtime::{format_datetime, parse_datetime, parse_event, Millis, What};
use crate::source::{SourceMap, Span};
use listing::{help, show};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the clock starts.
pub const START: &str = "2026-01-01T00:00:00Z";

/// An input the session replays after the program changes.
#[derive(Clone, Debug)]
enum Logged {
    Event(String),
    /// A contact loaded as state (a `given` step).
    Contact(String),
    Advance(Millis),
    /// The session started the interpreter's clock here.
    Start(Millis),
}

/// What one input produced.
#[derive(Debug, Default)]
pub struct Reply {
    pub text: String,
    pub quit: bool,
    /// The input was refused (a piped session then exits 1).
    pub failed: bool,
}

pub struct Session {
    path: Option<PathBuf>,
    /// Declarations typed in the session, kept across reloads.
    typed: Vec<String>,
    sources: SourceMap,
    analysis: Analysis,
    prog: Arc<Compiled>,
    engine: Interpreter,
    log: Vec<Logged>,
    /// The state opened with `:state`, which replays start from.
    base: Option<(
        crate::runtime::state::ProgramRecord,
        crate::runtime::Snapshot,
    )>,
    /// The files parsed so far: a declaration parses only itself.
    parse_cache: ParseCache,
    actions: Vec<String>,
    /// What claims (`expect ID: ...`) look at.
    claims: crate::testing::Claims,
    current: Option<String>,
    trace: bool,
    /// Where the interpreter's clock starts: until the session's first
    /// input, `:time` sets it anywhere. After, the interpreter's clock is
    /// the only one ([`Session::now`]).
    clock: Millis,
    color: bool,
}

const EMPTY_PROGRAM: &str = "contact {\n}\n";

impl Session {
    /// A session over the program at `path` (or an empty one).
    pub fn new(path: Option<PathBuf>, color: bool) -> Result<Session, String> {
        let sources = match &path {
            Some(p) => crate::source::load_sources(p)?,
            None => {
                let mut s = SourceMap::default();
                s.add("<empty>", EMPTY_PROGRAM);
                s
            }
        };
        let mut parse_cache = ParseCache::default();
        let analysis = analyse_cached(&sources, &mut parse_cache);
        if analysis.diagnostics.iter().any(Diagnostic::is_error) {
            let text = render_diagnostics(&analysis.diagnostics, &sources, color);
            return Err(format!("{text}the program has errors"));
        }
        let prog = Arc::new(compile(&analysis.program, &analysis.checked.schema));
        let session = Session {
            path,
            typed: Vec::new(),
            engine: Interpreter::new(prog.clone(), true),
            claims: crate::testing::Claims::default(),
            sources,
            analysis,
            prog,
            log: Vec::new(),
            base: None,
            parse_cache,
            actions: Vec::new(),
            current: None,
            trace: false,
            clock: parse_datetime(START).unwrap_or(0),
            color,
        };
        Ok(session)
    }

    /// The prompt: the virtual clock and the current contact.
    pub fn prompt(&self) -> String {
        match &self.current {
            Some(c) => format!("[{} {c}]> ", format_datetime(self.now())),
            None => format!("[{}]> ", format_datetime(self.now())),
        }
    }

    /// Handles one complete input (possibly several lines).
    pub fn eval(&mut self, input: &str) -> Reply {
        let mut reply = Reply::default();
        let result = match parse(input) {
            Command::Empty => Ok(String::new()),
            Command::Help => Ok(help()),
            Command::Quit => {
                reply.quit = true;
                Ok(String::new())
            }
            Command::Load(path) => self.load(Some(PathBuf::from(path))),
            Command::Reload => self.load(self.path.clone()),
            Command::Schema => Ok(self.schema()),
            Command::Workflows => Ok(self.workflows()),
            Command::Contact { id, json, json_at } => self.contact(input, id, json, json_at),
            Command::Use(id) => self.use_contact(id),
            Command::Event {
                id,
                ty,
                json,
                json_at,
            } => self.event(input, id, ty, json, json_at),
            Command::Advance(d) => self.advance(input, d),
            Command::Time(None) => Ok(self.time()),
            Command::Time(Some(t)) => self.set_time(input, t),
            Command::Journeys(id) => self.journeys(id),
            Command::History(id) => self.history(id),
            Command::Actions => Ok(self.actions.iter().map(|a| format!("{a}\n")).collect()),
            Command::Type(expr, at) => self.type_of(input, expr, at, false),
            Command::Trace(arg) => self.set_trace(arg),
            Command::Reset => {
                self.log.clear();
                self.actions.clear();
                self.current = None;
                self.base = None;
                self.clock = parse_datetime(START).unwrap_or(0);
                self.engine = Interpreter::new(self.prog.clone(), true);
                self.claims = crate::testing::Claims::default();
                Ok("contacts, events and time forgotten; the program is kept\n".into())
            }
            Command::State(path) => self.open_state(path),
            Command::Declaration(text) => self.declare(text),
            Command::Step(text) => self.step(text),
            Command::Expr(expr) => self.type_of(input, expr, 0, true),
            Command::Unknown(name) => Err(format!(
                "unknown command `{}`; `:help` lists the commands\n",
                name.trim()
            )),
        };
        reply.failed = result.is_err();
        reply.text = match result {
            Ok(t) | Err(t) => t,
        };
        reply
    }

    /// Renders diagnostics against their sources.
    fn render(&self, diags: &[Diagnostic], sources: &SourceMap) -> String {
        render_diagnostics(diags, sources, self.color)
    }

    /// An error about the line just typed, spanning `start..end` of it.
    fn line_error(
        &self,
        input: &str,
        start: usize,
        end: usize,
        code: Code,
        msg: &str,
        help: Option<&str>,
    ) -> String {
        let mut map = SourceMap::default();
        map.add("<input>", input);
        let end = end.clamp(start, input.len());
        let mut d = Diagnostic::error(code, Span::new(0, start.min(input.len()), end), msg)
            .with_label("here");
        if let Some(h) = help {
            d = d.with_help(h);
        }
        d.render(&map, self.color, 100)
    }

    fn load(&mut self, path: Option<PathBuf>) -> Result<String, String> {
        let Some(p) = path else {
            return Err("no program was loaded; use `:load PATH`\n".into());
        };
        let mut sources = crate::source::load_sources(&p).map_err(|e| format!("error: {e}\n"))?;
        for (i, t) in self.typed.iter().enumerate() {
            sources.add(format!("<typed {}>", i + 1), t.as_str());
        }
        let analysis = analyse_cached(&sources, &mut self.parse_cache);
        if analysis.diagnostics.iter().any(Diagnostic::is_error) {
            return Err(self.render(&analysis.diagnostics, &sources));
        }
        if let Some(base) = &self.base {
            let prog = Arc::new(compile(&analysis.program, &analysis.checked.schema));
            let now = crate::pipeline::program_record(&analysis.program, &sources, &prog);
            if let Err(e) = crate::runtime::state::take_up(&base.0, &now, &prog, base.1.clone()) {
                return Err(format!("the opened state cannot go on with it: {e}\n"));
            }
        }
        self.path = Some(p.clone());
        let warnings = self.render(&analysis.diagnostics, &sources);
        let replayed = self.install(sources, analysis);
        Ok(format!(
            "{warnings}loaded `{}`: {} workflows{replayed}\n",
            p.display(),
            self.prog.workflows.len()
        ))
    }

    /// Adds a typed `workflow`/`event` declaration to the program.
    /// The clock, and the current contact's local time in its zone.
    fn time(&self) -> String {
        let mut out = format_datetime(self.now());
        let zone = self
            .current
            .as_deref()
            .and_then(|c| self.engine.zone(c).map(|z| (c, z)));
        if let Some((c, zone)) = zone {
            use chrono::TimeZone;
            if let Some(local) = zone.timestamp_millis_opt(self.now()).single() {
                out.push_str(&format!(
                    " ({c}: {} {})",
                    local.format("%Y-%m-%d %H:%M %a"),
                    zone.name()
                ));
            }
        }
        out.push('\n');
        out
    }

    /// A step or claim of a `test` block, run on the session as a test
    /// runs it: a session can be pasted into a test.
    fn step(&mut self, input: &str) -> Result<String, String> {
        use crate::testing::{Effect, Stepper};
        let text = format!("test \"repl\" {{\n{}\n}}\n", input.trim());
        let mut map = SourceMap::default();
        map.add("<input>", text.as_str());
        let (items, diags) = crate::syntax::parse_file(0, &text);
        if diags.iter().any(Diagnostic::is_error) {
            return Err(self.render(&diags, &map));
        }
        let Some(crate::ast::Item::Test(t)) = items.first() else {
            return Err(
                "expected one step, such as `advance 1d` or `expect ana: send email`\n".into(),
            );
        };
        let known: Vec<String> = self.engine.contact_ids().map(str::to_string).collect();
        let diags = crate::check::check_steps(&self.analysis.program, &self.prog.schema, t, &known);
        if diags.iter().any(Diagnostic::is_error) {
            return Err(self.render(&diags, &map));
        }
        let mut out = String::new();
        for step in &t.steps {
            if !matches!(step.kind, crate::ast::StepKind::Expect { .. }) {
                self.ensure_started();
            }
            let result = Stepper {
                it: &mut self.engine,
                start: self.clock,
                claims: &mut self.claims,
            }
            .step(&step.kind);
            match result {
                Ok(Effect::Fed(line)) => {
                    self.log.push(Logged::Event(line));
                    if let crate::ast::StepKind::Contact { id, .. } = &step.kind {
                        self.current = Some(id.name.clone());
                    }
                    out.push_str(&self.drain_output());
                }
                Ok(Effect::Loaded(line)) => {
                    self.log.push(Logged::Contact(line));
                    out.push_str("contact loaded\n");
                }
                Ok(Effect::Moved(t)) => {
                    self.log.push(Logged::Advance(t));
                    out.push_str(&format!("now {}\n", format_datetime(t)));
                    out.push_str(&self.drain_output());
                }
                Ok(Effect::Held) => out.push_str("ok: the claim holds\n"),
                Err((message, contact)) => {
                    self.drain_output();
                    let mut d = Diagnostic::error(Code::TestFailed, step.span, message)
                        .with_label("this failed");
                    if let Some(c) = contact {
                        let actions = self.claims.actions_of(&self.engine, &c);
                        d = d.with_help(if actions.is_empty() {
                            format!("no action was emitted for `{c}`")
                        } else {
                            format!("actions emitted for `{c}`:\n  {}", actions.join("\n  "))
                        });
                    }
                    return Err(format!("{out}{}", d.render(&map, self.color, 100)));
                }
            }
        }
        Ok(out)
    }

    fn declare(&mut self, text: &str) -> Result<String, String> {
        // Only the new text is parsed; the program is extended in place.
        self.sources
            .add(format!("<typed {}>", self.typed.len() + 1), text);
        if let Err(diags) = add_last_file(&mut self.analysis, &self.sources) {
            let text = self.render(&diags, &self.sources);
            self.sources.files.pop();
            return Err(text);
        }
        self.typed.push(text.to_string());
        let what = text
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let warnings = self.render(&self.analysis.diagnostics, &self.sources);
        // New event types change nothing that already ran: the state stays,
        // only the program grows. Anything else replays the session.
        let new_file = (self.sources.files.len() - 1) as crate::source::FileId;
        let only_events = self.analysis.program.items.iter().rev().all(|i| match i {
            crate::ast::Item::Event(_) => true,
            crate::ast::Item::Contact(c) => c.span.file != new_file,
            crate::ast::Item::Workflow(w) => w.span.file != new_file,
            crate::ast::Item::Test(t) => t.span.file != new_file,
            crate::ast::Item::Timezone(z) => z.span.file != new_file,
            crate::ast::Item::Quiet(q) => q.span.file != new_file,
            crate::ast::Item::Limit(l) => l.span.file != new_file,
        });
        let prog = Arc::new(compile(
            &self.analysis.program,
            &self.analysis.checked.schema,
        ));
        if only_events && self.engine.extend_program(prog.clone()) {
            self.prog = prog;
            return Ok(format!("{warnings}added {what}\n"));
        }
        if let Some(base) = &self.base {
            if let Err(e) = self.taken_up(base, &prog) {
                // The program stays as it was.
                self.sources.files.pop();
                self.typed.pop();
                self.analysis = analyse_cached(&self.sources, &mut self.parse_cache);
                return Err(format!("the opened state cannot go on with it: {e}\n"));
            }
        }
        let replayed = self.replay(prog);
        Ok(format!("{warnings}added {what}{replayed}\n"))
    }

    /// Switches to a new program and replays the session's inputs into it.
    fn install(&mut self, sources: SourceMap, analysis: Analysis) -> String {
        let prog = Arc::new(compile(&analysis.program, &analysis.checked.schema));
        self.sources = sources;
        self.analysis = analysis;
        self.replay(prog)
    }

    /// Starts over from the state in the database at `path`, read-only: the
    /// session's own inputs stay in the session.
    pub fn open_state(&mut self, path: &str) -> Result<String, String> {
        let path = path.trim();
        if path.is_empty() {
            return Err("use `:state DB`, DB a `--state` database\n".into());
        }
        use crate::runtime::state::StateStore;
        let mut store =
            crate::runtime::state::SqliteStore::open_to_read(std::path::Path::new(path))
                .map_err(|e| format!("{e}\n"))?;
        let snap = store
            .load()
            .map_err(|e| format!("`{path}`: {e}\n"))?
            .ok_or_else(|| format!("`{path}` holds no state yet\n"))?;
        let record = store
            .entry("program")
            .map_err(|e| format!("`{path}`: {e}\n"))?
            .ok_or_else(|| {
                format!(
                    "`{path}`: {}\n",
                    crate::runtime::state::StateError::NoProgram
                )
            })
            .and_then(|t| {
                crate::runtime::state::ProgramRecord::parse(&t)
                    .map_err(|e| format!("`{path}`: {e}\n"))
            })?;
        let base = (record, snap);
        let it = self
            .taken_up(&base, &self.prog)
            .map_err(|e| format!("the state does not fit the program: {e}\n"))?;
        self.base = Some(base);
        self.engine = it;
        self.log.clear();
        self.actions.clear();
        self.claims = crate::testing::Claims::default();
        self.current = None;
        if let Some(t) = self.engine.now() {
            self.clock = self.clock.max(t);
        }
        Ok(format!(
            "opened `{path}` (read only): {} contacts; now {}\n",
            self.engine.contact_ids().count(),
            format_datetime(self.now())
        ))
    }

    /// A fresh state of the program: the opened state's, or an empty one.
    fn fresh(&self) -> Interpreter {
        self.base
            .as_ref()
            .and_then(|base| self.taken_up(base, &self.prog).ok())
            .unwrap_or_else(|| Interpreter::new(self.prog.clone(), true))
    }

    /// The opened state taken up by `prog` (the session's program as
    /// analysed now) under the program change rule (LANGUAGE.md sections 7
    /// and 13): journeys moved to named waits, ended by `on change exit`,
    /// or the change refused with the waits named.
    fn taken_up(
        &self,
        (record, snap): &(
            crate::runtime::state::ProgramRecord,
            crate::runtime::Snapshot,
        ),
        prog: &Arc<Compiled>,
    ) -> Result<Interpreter, String> {
        let now = crate::pipeline::program_record(&self.analysis.program, &self.sources, prog);
        let taken = crate::runtime::state::take_up(record, &now, prog, snap.clone())
            .map_err(|e| e.to_string())?;
        let mut it =
            Interpreter::restore(prog.clone(), true, taken.snapshot).map_err(|e| e.to_string())?;
        it.program_change_exits(&taken.exits);
        Ok(it)
    }

    /// Replays the session's inputs into a fresh state of `prog`.
    fn replay(&mut self, prog: Arc<Compiled>) -> String {
        self.prog = prog;
        self.engine = self.fresh();
        let mut dropped = 0;
        for item in self.log.clone() {
            match item {
                Logged::Event(line) => {
                    if self.engine.feed_line(&line).is_err() {
                        dropped += 1;
                    }
                }
                Logged::Contact(line) => {
                    if self.engine.load_contact_line(&line).is_err() {
                        dropped += 1;
                    }
                }
                Logged::Advance(t) => self.engine.advance_to(t),
                Logged::Start(t) => self.engine.start_clock(t),
            }
        }
        // Claims look at the run as replayed.
        self.claims = crate::testing::Claims::default();
        for r in self.engine.take_emitted() {
            self.claims.observe(&r);
        }
        self.engine.take_faults();
        let inputs = self
            .log
            .iter()
            .filter(|l| !matches!(l, Logged::Start(_)))
            .count();
        match (inputs, dropped) {
            (0, _) => String::new(),
            (n, 0) => format!(" (replayed {n} inputs)"),
            (n, d) => {
                format!(" (replayed {n} inputs; {d} no longer fit the program and were dropped)")
            }
        }
    }

    /// Runs one event line through the engine and reports what it caused.
    /// The clock: the interpreter's, or where it will start.
    fn now(&self) -> Millis {
        self.engine.now().unwrap_or(self.clock)
    }

    /// Starts the interpreter's clock where the session's is, before the
    /// first input changes anything (noted, so a replay starts it alike).
    fn ensure_started(&mut self) {
        if self.engine.now().is_none() {
            self.engine.start_clock(self.clock);
            self.log.push(Logged::Start(self.clock));
        }
    }

    fn feed(
        &mut self,
        input: &str,
        json_at: usize,
        json_len: usize,
        line: String,
    ) -> Result<String, String> {
        let event = parse_event(&line, &self.prog.schema).map_err(|e| {
            // The key the message names, when it is in the JSON: underlined
            // alone.
            let (start, end) =
                named_key(&e, input, json_at, json_len).unwrap_or((json_at, json_at + json_len));
            self.line_error(input, start, end, Code::ReplBadInput, &e, None)
        })?;
        self.engine.feed(event).map_err(|e| {
            self.line_error(
                input,
                0,
                input.len(),
                Code::ReplBadInput,
                &e.to_string(),
                None,
            )
        })?;
        self.log.push(Logged::Event(line));
        Ok(self.drain_output())
    }

    /// Actions and faults produced since the last call.
    fn drain_output(&mut self) -> String {
        let mut out = String::new();
        for r in self.engine.take_emitted() {
            self.claims.observe(&r);
            let action = matches!(r.what, What::Action(_));
            // The engine always traces (claims read outcomes); the session
            // shows lifecycle records only with `:trace on`.
            if !action && !self.trace {
                continue;
            }
            let line = self.engine.render(&r);
            if action {
                self.actions.push(line.trim_end().to_string());
            }
            out.push_str(&line);
        }
        for f in self.engine.take_faults() {
            let d = Diagnostic::error(Code::RuntimeFault, f.fault.span, f.fault.message.clone())
                .with_label("here")
                .with_help(format!(
                    "contact `{}`, workflow `{}`; the journey ended as failed",
                    f.contact, f.workflow
                ));
            out.push_str(&d.render(&self.sources, self.color, 100));
        }
        if out.is_empty() {
            out.push_str("(no actions)\n");
        }
        out
    }

    fn json_object(
        &self,
        input: &str,
        json: &str,
        json_at: usize,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        if json.trim().is_empty() {
            return Ok(serde_json::Map::new());
        }
        match serde_json::from_str::<serde_json::Value>(json) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            Ok(_) => Err(self.line_error(
                input,
                json_at,
                json_at + json.len(),
                Code::ReplBadJson,
                "expected a JSON object",
                Some("write the fields as `{\"name\": value}`"),
            )),
            Err(e) => {
                let col = e.column().saturating_sub(1);
                let at = json_at + col.min(json.len());
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg);
                Err(self.line_error(
                    input,
                    at,
                    at + 1,
                    Code::ReplBadJson,
                    &format!("bad JSON: {msg}"),
                    None,
                ))
            }
        }
    }

    fn contact(
        &mut self,
        input: &str,
        id: &str,
        json: &str,
        json_at: usize,
    ) -> Result<String, String> {
        if id.is_empty() {
            return Err(self.line_error(
                input,
                0,
                input.len(),
                Code::ReplUsage,
                "expected a contact id",
                Some("`:contact ID {\"email\": \"a@x.com\", ...}`"),
            ));
        }
        let attrs = self.json_object(input, json, json_at)?;
        let exists = self.engine.has_contact(id);
        let ty = if exists {
            "contact_updated"
        } else {
            "contact_created"
        };
        let mut extra = serde_json::Map::new();
        extra.insert("attributes".into(), serde_json::Value::Object(attrs));
        let line = self.record(id, ty, extra);
        let out = self.feed(input, json_at, json.len(), line)?;
        self.current = Some(id.to_string());
        Ok(out)
    }

    /// An input record as `nurture run` reads it: `at`, `contact`, `type`, then the rest.
    fn record(
        &self,
        id: &str,
        ty: &str,
        rest: serde_json::Map<String, serde_json::Value>,
    ) -> String {
        let mut line = serde_json::json!({ "at": format_datetime(self.now()) }).to_string();
        line.pop();
        let _ = write!(
            line,
            ",\"contact\":{},\"type\":{}",
            serde_json::Value::from(id),
            serde_json::Value::from(ty)
        );
        for (k, v) in rest {
            let _ = write!(line, ",{}:{v}", serde_json::Value::from(k));
        }
        line.push('}');
        line
    }

    fn use_contact(&mut self, id: &str) -> Result<String, String> {
        if !self.engine.has_contact(id) {
            return Err(format!(
                "unknown contact `{id}`; create it with `:contact {id} {{...}}`\n"
            ));
        }
        self.current = Some(id.to_string());
        Ok(format!("current contact: {id}\n"))
    }

    fn event(
        &mut self,
        input: &str,
        id: Option<&str>,
        ty: &str,
        json: &str,
        json_at: usize,
    ) -> Result<String, String> {
        let Some(id) = id.map(str::to_string).or_else(|| self.current.clone()) else {
            return Err(self.line_error(
                input,
                0,
                input.len(),
                Code::ReplUsage,
                "no current contact",
                Some("name one, `:event ID TYPE {...}`, or pick one with `:use ID`"),
            ));
        };
        let payload = self.json_object(input, json, json_at)?;
        if ty != "contact_created" && !self.engine.has_contact(&id) {
            return Err(self.line_error(
                input,
                0,
                input.len(),
                Code::ReplBadInput,
                &format!("unknown contact `{}`", crate::suggest::echo(&id)),
                Some(&format!(
                    "create it first with `:contact {id} {{\"email\": ...}}`"
                )),
            ));
        }
        let line = self.record(&id, ty, payload);
        if self.prog.schema.event(ty).is_none() {
            let ty_at = input.find(ty).unwrap_or(0);
            let help = crate::suggest::help(ty, self.prog.schema.event_names(), "event");
            return Err(self.line_error(
                input,
                ty_at,
                ty_at + ty.len(),
                Code::ReplBadInput,
                &format!("unknown event type `{ty}`"),
                Some(&help),
            ));
        }
        self.feed(input, json_at, json.len(), line)
    }

    /// `:time DATETIME`: any time before the first event; after it, only
    /// forward (firing the timers due, as `:advance` does).
    fn set_time(&mut self, input: &str, text: &str) -> Result<String, String> {
        let Some(t) = parse_datetime(text) else {
            return Err(self.line_error(
                input,
                input.len() - text.len(),
                input.len(),
                Code::ReplUsage,
                "expected an RFC 3339 datetime",
                Some("such as `:time 2026-03-01T09:00:00Z`"),
            ));
        };
        if self.engine.now().is_none() {
            self.clock = t;
            return Ok(format!("now {}\n", format_datetime(t)));
        }
        if t < self.now() {
            return Err(format!(
                "the clock cannot go back to {}: events have run up to {}; `:reset` starts again\n",
                format_datetime(t),
                format_datetime(self.now())
            ));
        }
        self.engine.advance_to(t);
        self.log.push(Logged::Advance(t));
        let out = self.drain_output();
        Ok(format!("{out}now {}\n", format_datetime(self.now())))
    }

    fn advance(&mut self, input: &str, d: &str) -> Result<String, String> {
        let secs = crate::runtime::parse_duration(d).ok_or_else(|| {
            self.line_error(
                input,
                input.len() - d.len(),
                input.len(),
                Code::ReplUsage,
                "expected a duration",
                Some("such as `:advance 2d` or `:advance 1d 12h`"),
            )
        })?;
        self.ensure_started();
        let t = self.now() + secs * 1000;
        self.engine.advance_to(t);
        self.log.push(Logged::Advance(t));
        let out = self.drain_output();
        Ok(format!("{out}now {}\n", format_datetime(self.now())))
    }

    /// The contact named, or the current one, if it exists.
    fn contact_named(&self, id: Option<&str>) -> Result<String, String> {
        let Some(id) = id.map(str::to_string).or_else(|| self.current.clone()) else {
            return Err("no current contact; name one or pick one with `:use ID`\n".into());
        };
        if !self.engine.has_contact(&id) {
            return Err(format!("unknown contact `{id}`\n"));
        }
        Ok(id)
    }

    fn set_trace(&mut self, arg: &str) -> Result<String, String> {
        self.trace = match arg {
            "on" => true,
            "off" => false,
            _ => return Err("use `:trace on` or `:trace off`\n".into()),
        };
        Ok(format!("trace {arg}\n"))
    }

    /// Types an expression, and with `evaluate` computes it for the current contact.
    fn type_of(
        &mut self,
        input: &str,
        text: &str,
        at: usize,
        evaluate: bool,
    ) -> Result<String, String> {
        let mut map = SourceMap::default();
        map.add("<input>", input);
        let padded = format!("{}{}", " ".repeat(at), text);
        let expr =
            crate::syntax::parse_expr(0, &padded).map_err(|d| d.render(&map, self.color, 100))?;
        let (ty, diags) = crate::check::type_of_expr(&self.prog.schema, &expr);
        if diags.iter().any(Diagnostic::is_error) {
            return Err(self.render(&diags, &map));
        }
        if !evaluate {
            return Ok(format!("{ty}\n"));
        }
        let uses_contact = text.contains("contact.");
        let contact = self
            .current
            .as_deref()
            .filter(|c| self.engine.has_contact(c));
        if uses_contact && contact.is_none() {
            return Err(self.line_error(
                input,
                0,
                input.len(),
                Code::ReplUsage,
                "no current contact to read",
                Some("create one with `:contact ID {...}` or pick one with `:use ID`"),
            ));
        }
        let compiled = crate::runtime::compile_expr(&expr, &self.prog.schema);
        match self.engine.eval(contact, &compiled, self.now()) {
            Ok(v) => Ok(format!("{} : {ty}\n", show(&v))),
            Err(f) => Err(self.line_error(
                input,
                f.span.start as usize,
                f.span.end as usize,
                Code::RuntimeFault,
                &f.message,
                None,
            )),
        }
    }
}

fn render_diagnostics(diags: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    diags
        .iter()
        .map(|d| d.render(sources, color, 100))
        .collect()
}

/// Where in `input`'s JSON (`json_at`, `json_len` bytes) the key a message
/// names in backticks is written (`"key"`), if it is.
fn named_key(
    message: &str,
    input: &str,
    json_at: usize,
    json_len: usize,
) -> Option<(usize, usize)> {
    let json = input.get(json_at..json_at + json_len)?;
    message.split('`').skip(1).step_by(2).find_map(|name| {
        let quoted = format!("\"{name}\"");
        json.find(&quoted)
            .map(|at| (json_at + at, json_at + at + quoted.len()))
    })
}
