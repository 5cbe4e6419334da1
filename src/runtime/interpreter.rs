//! The runtime's one front door: a compiled program and its state, driven
//! by feeding records and moving the clock, read by taking what was emitted
//! and looking at contacts and journeys. `nurture run`, the REPL and the
//! benchmark drive the engine only through [`Interpreter`]; so will every
//! later driver (state, tests, a server).

use super::engine::{Engine, RunFault, WorkflowStats};
pub use super::engine::{JourneyView, LateEvents};
use super::error::RecordError;
use super::eval::Fault;
use super::input::{parse_contact, parse_event, parse_event_kept};
use super::output::{ActionKind, Emitted, FunnelCounts, JsonWriter};
use super::program::{CExpr, Compiled};
use super::record::Input;
use super::snapshot::{Changes, Snapshot, Totals};
use super::stream::{self, Record};
use super::value::{Millis, Value};
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::sync::Arc;

/// A program running in virtual time.
pub struct Interpreter {
    engine: Engine,
    json: JsonWriter,
    /// Rendered output on its way to a writer.
    scratch: String,
    /// Events accepted so far.
    accepted: u64,
}

/// A record of a stream that could not be run.
#[derive(Clone, Copy, Debug)]
pub struct BadRecord<'a> {
    /// Its line in the stream, from 1.
    pub line: u64,
    /// The byte offset where it starts.
    pub start: u64,
    /// The byte offset just past it.
    pub end: u64,
    pub reason: &'a str,
    /// The line as read, when kept ([`StreamOptions::keep_raw`]).
    pub raw: Option<&'a [u8]>,
}

/// What a driver decides while a stream of records is fed.
pub trait Driver {
    /// A record that could not be run. `Break` stops the stream.
    fn bad_record(&mut self, it: &mut Interpreter, bad: BadRecord) -> ControlFlow<()>;

    /// Called after each batch of records, and whenever much output is
    /// pending: the moment to take the output, or to take a checkpoint
    /// (the state is then that after the records `at` names). `Break` stops
    /// the stream.
    fn progress(&mut self, it: &mut Interpreter, at: Progress) -> ControlFlow<()>;

    /// The input's last line has no newline and is not a whole record (a
    /// writer may be adding to it): it was left unread, and the stream
    /// ends before it.
    fn partial_line(&mut self, _it: &mut Interpreter, _line: u64, _reason: &str) {}

    /// Called while one move of the clock emits many records (more than a
    /// thousand wait): the moment to take them out, so memory stays
    /// bounded. No checkpoint may be taken here (the clock is between two
    /// timers). `Break` stops the stream.
    fn output(&mut self, _it: &mut Interpreter) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// How far a stream was handled when [`Driver::progress`] is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The last line fed, from 1.
    pub line: u64,
    /// The bytes of the stream handled: every record up to and including
    /// that line.
    pub consumed: u64,
}

/// How a stream ended, and how many of its bytes were handled: all of them
/// when it finished; when the driver stopped it, those up to and including
/// the record it stopped at.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every record was read.
    Finished { consumed: u64 },
    /// The driver stopped it.
    Stopped { consumed: u64 },
}

/// A stream that could not be read to its end.
#[derive(Debug, PartialEq, Eq)]
pub struct StreamError {
    /// The line the reading failed at, when known.
    pub line: Option<u64>,
    pub message: String,
}

/// Options of a stream.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamOptions {
    /// Keep each event's raw line, to hand it to [`Driver::bad_record`]
    /// should the engine refuse it.
    pub keep_raw: bool,
}

/// Records pending before [`Driver::progress`] is called within a batch.
const PENDING_LIMIT: usize = 1024;

/// Counts of the run so far.
#[derive(Clone, Debug, PartialEq)]
pub struct RunStats {
    /// Events accepted (bad records are not counted).
    pub events: u64,
    /// Per workflow, in declaration order.
    pub workflows: Vec<WorkflowStats>,
    /// Journeys waiting, per workflow.
    pub waiting: Vec<u64>,
    /// Actions emitted, per kind, indexed by `ActionKind as usize`.
    pub actions: [u64; ActionKind::ALL.len()],
    /// Per workflow, the funnel counts of the report.
    pub funnel: Vec<FunnelCounts>,
    /// Per workflow, per funnel step after `entered`: journeys in flight
    /// that reached the step's parent and not yet the step.
    pub pending: Vec<Vec<u64>>,
}

impl RunStats {
    /// Adds `other`'s counts (another partition's, of the same program):
    /// the counts of both runs together.
    pub fn absorb(&mut self, other: &RunStats) {
        fn add(a: &mut [u64], b: &[u64]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.events += other.events;
        for (a, b) in self.workflows.iter_mut().zip(&other.workflows) {
            a.entered += b.entered;
            a.converted += b.converted;
            a.exited += b.exited;
            a.completed += b.completed;
            a.failed += b.failed;
            a.skipped += b.skipped;
            add(&mut a.suppressed, &b.suppressed);
            add(&mut a.capped, &b.capped);
        }
        add(&mut self.waiting, &other.waiting);
        add(&mut self.actions, &other.actions);
        for (a, b) in self.funnel.iter_mut().zip(&other.funnel) {
            add(&mut a.stages, &b.stages);
            for (x, y) in a.arms.iter_mut().zip(&b.arms) {
                x.0 += y.0;
                x.1 += y.1;
            }
        }
        for (a, b) in self.pending.iter_mut().zip(&other.pending) {
            add(a, b);
        }
    }
}

impl Interpreter {
    /// A fresh state: no contacts, the clock not yet started. With `trace`,
    /// lifecycle records are emitted beside the actions.
    pub fn new(prog: Arc<Compiled>, trace: bool) -> Interpreter {
        Interpreter {
            engine: Engine::new(prog, trace),
            json: JsonWriter::default(),
            scratch: String::new(),
            accepted: 0,
        }
    }

    pub fn program(&self) -> &Arc<Compiled> {
        self.engine.prog()
    }

    /// The whole state, between two inputs: what a durable store keeps.
    pub fn snapshot(&self) -> Snapshot {
        self.engine.snapshot(self.accepted)
    }

    /// From now on, keep what changes in the state, for
    /// [`Interpreter::take_changes`] (an incremental checkpoint).
    pub fn track_changes(&mut self) {
        self.engine.track_changes();
    }

    /// Hands the contacts changed since the last call (or since
    /// [`Interpreter::track_changes`]) to `into`, between two inputs, and
    /// returns the totals: written over the state stored before, they give
    /// the state [`Interpreter::snapshot`] gives now (an incremental
    /// checkpoint).
    pub fn take_changes(&mut self, into: &mut dyn Changes) -> Totals {
        self.engine.take_changes(self.accepted, into)
    }

    /// Goes on from a snapshot taken with the same program: what it emits
    /// next is what the run the snapshot came from would have emitted.
    pub fn restore(
        prog: Arc<Compiled>,
        trace: bool,
        snap: Snapshot,
    ) -> Result<Interpreter, super::state::StateError> {
        let accepted = snap.totals.events;
        Ok(Interpreter {
            engine: Engine::restore(prog, trace, snap)
                .map_err(super::state::StateError::BadRows)?,
            json: JsonWriter::default(),
            scratch: String::new(),
            accepted,
        })
    }

    /// Ends the journeys a program change exits ([`Snapshot::migrate`]'s
    /// list), before anything else runs: counted as exited, and with
    /// `--trace` an `end` record each with reason `program_change`.
    pub fn program_change_exits(&mut self, exits: &[super::snapshot::ChangeExit]) {
        self.engine.program_change_exits(exits);
    }

    /// Runs on with `prog` in place of the program, keeping the state, when
    /// `prog` only adds event types (same contact fields, same workflows,
    /// the old events first with the same ids); `false`, and nothing
    /// changed, otherwise.
    pub fn extend_program(&mut self, prog: Arc<Compiled>) -> bool {
        let old = self.program();
        let names = |p: &Compiled| -> Vec<String> {
            p.workflows.iter().map(|w| w.name.to_string()).collect()
        };
        let fields = |p: &Compiled| -> Vec<String> {
            p.schema
                .fields
                .iter()
                .map(|f| format!("{}: {}", f.name, f.ty))
                .collect()
        };
        let same_events = old.schema.events.len() <= prog.schema.events.len()
            && old
                .schema
                .events
                .iter()
                .zip(&prog.schema.events)
                .all(|(a, b)| a.name == b.name && a.fields == b.fields);
        if !same_events || names(old) != names(&prog) || fields(old) != fields(&prog) {
            return false;
        }
        self.engine.set_program(prog);
        true
    }

    /// Whether each action's JSON carries its `"id"` (its 1-based place in
    /// the emission order, counted across runs of one state).
    pub fn set_action_ids(&mut self, on: bool) {
        self.json.ids = on;
    }

    /// Turns lifecycle records on or off from now on.
    pub fn set_trace(&mut self, on: bool) {
        self.engine.set_trace(on);
    }

    /// Loads a contact as state (no trigger fires).
    pub fn load_contact(&mut self, id: &str, attrs: Vec<(u16, Value)>) -> Result<(), RecordError> {
        Ok(self.engine.preload(id, attrs)?)
    }

    /// Parses a `--contacts` line (`id` and attributes) and loads it.
    pub fn load_contact_line(&mut self, line: &str) -> Result<(), RecordError> {
        let (id, attrs) = parse_contact(line, &self.program().schema)?;
        self.load_contact(&id, attrs)
    }

    /// Runs one validated event; an error (time going backwards, an unknown
    /// contact) leaves the state as it was.
    pub fn feed(&mut self, input: Input) -> Result<(), RecordError> {
        self.engine.accept(input)?;
        self.accepted += 1;
        Ok(())
    }

    /// Parses an event line (every payload field kept) and runs it.
    pub fn feed_line(&mut self, line: &str) -> Result<(), RecordError> {
        let input = parse_event(line, &self.program().schema)?;
        self.feed(input)
    }

    /// Parses an event line keeping only the payload fields the program
    /// reads, as streams do, and runs it.
    pub fn feed_line_kept(&mut self, line: &str) -> Result<(), RecordError> {
        let prog = self.program();
        let input = parse_event_kept(line, &prog.schema, &prog.projection)?;
        self.feed(input)
    }

    /// Feeds every line of `reader`, parsed on other threads while the
    /// engine runs, each contact's state prefetched a few records ahead.
    /// Bad records go to the driver, which decides whether to go on.
    pub fn feed_stream(
        &mut self,
        reader: impl Read + Send + 'static,
        options: StreamOptions,
        driver: &mut impl Driver,
    ) -> Result<StreamEnd, StreamError> {
        let (mut batches, parsers) =
            stream::spawn(reader, self.program().clone(), options.keep_raw);
        let mut last = stream::Pos::default();
        // Where an unterminated, incomplete last line starts: not consumed.
        let mut partial: Option<u64> = None;
        while let Some(mut batch) = batches.next() {
            stream::prefetch_first(&self.engine, &batch);
            let mut records = batch.drain(..);
            while let Some((pos, record)) = records.next() {
                stream::prefetch_ahead(&self.engine, records.as_slice());
                if !matches!(record, Record::Partial { .. }) {
                    last = pos;
                }
                let stopped = StreamEnd::Stopped { consumed: pos.end };
                // The timers due long before an event fire a part at a
                // time, their records taken out between the parts.
                if let Record::Event(input, _) = &record {
                    if self.engine.due_before(input) {
                        while !self.engine.advance_some(input.at, PENDING_LIMIT) {
                            if driver.output(self).is_break() {
                                return Ok(stopped);
                            }
                        }
                    }
                }
                let (reason, raw) = match record {
                    Record::Event(input, raw) => match self.feed(input) {
                        Ok(()) => {
                            if self.engine.pending() >= PENDING_LIMIT
                                && driver
                                    .progress(
                                        self,
                                        Progress {
                                            line: pos.line,
                                            consumed: pos.end,
                                        },
                                    )
                                    .is_break()
                            {
                                return Ok(stopped);
                            }
                            continue;
                        }
                        Err(reason) => (reason.to_string(), raw),
                    },
                    Record::Bad { reason, raw } => (reason, Some(raw)),
                    Record::Unreadable(message) => {
                        return Err(StreamError {
                            line: Some(pos.line),
                            message: format!("cannot read: {message}"),
                        })
                    }
                    Record::Partial { reason } => {
                        driver.partial_line(self, pos.line, &reason);
                        partial = Some(pos.start);
                        continue;
                    }
                };
                let bad = BadRecord {
                    line: pos.line,
                    start: pos.start,
                    end: pos.end,
                    reason: &reason,
                    raw: raw.as_deref(),
                };
                if driver.bad_record(self, bad).is_break() {
                    return Ok(stopped);
                }
            }
            drop(records);
            batches.recycle(batch);
            let at = Progress {
                line: last.line,
                consumed: last.end,
            };
            if driver.progress(self, at).is_break() {
                return Ok(StreamEnd::Stopped { consumed: last.end });
            }
        }
        parsers.join().map_err(|message| StreamError {
            line: None,
            message,
        })?;
        Ok(StreamEnd::Finished {
            consumed: partial.unwrap_or(batches.bytes()),
        })
    }

    /// Fires every timer due at or before `t`, and moves the clock to `t`;
    /// a clock not yet started starts at `t` (a run without input events
    /// starts it at its `--until`).
    pub fn advance_to(&mut self, t: Millis) {
        if self.engine.clock().is_none_or(|now| t > now) {
            self.engine.moved_by(super::engine::MovedBy::Advance);
        }
        self.engine.start_clock(t);
        self.engine.advance_to(t);
    }

    /// Lets an input event move the clock more than 366 days ahead (by
    /// default such an event is a bad record: a mistyped year).
    pub fn allow_clock_jump(&mut self) {
        self.engine.allow_clock_jump();
    }

    /// What an event earlier than the clock gets: refused as a bad record
    /// (the default), or processed at the clock.
    pub fn set_late_events(&mut self, late: LateEvents) {
        self.engine.set_late_events(late);
    }

    /// Starts the clock at `t` when it has not started (`nurture test`
    /// starts it at 2026-01-01T00:00:00Z): schedules and date triggers run
    /// from there for the contacts loaded.
    pub fn start_clock(&mut self, t: Millis) {
        self.engine.start_clock(t);
    }

    /// Fires every pending timer.
    pub fn drain(&mut self) {
        self.engine.drain();
    }

    /// [`Interpreter::advance_to`], handing the records to `driver`
    /// ([`Driver::output`]) whenever many wait, so memory stays bounded.
    pub fn advance_to_with(&mut self, t: Millis, driver: &mut dyn Driver) -> ControlFlow<()> {
        if self.engine.clock().is_none_or(|now| t > now) {
            self.engine.moved_by(super::engine::MovedBy::Advance);
        }
        self.engine.start_clock(t);
        while !self.engine.advance_some(t, PENDING_LIMIT) {
            driver.output(self)?;
        }
        ControlFlow::Continue(())
    }

    /// [`Interpreter::drain`], likewise.
    pub fn drain_with(&mut self, driver: &mut dyn Driver) -> ControlFlow<()> {
        while !self.engine.drain_some(PENDING_LIMIT) {
            driver.output(self)?;
        }
        ControlFlow::Continue(())
    }

    /// Whether `input` would be run now, given whether its contact exists
    /// (a batch validated whole before any of it runs: its earlier records
    /// may create contacts). Time is checked against the clock.
    pub fn admits(&self, input: &Input, exists: bool) -> Result<(), RecordError> {
        self.engine.admits(input, exists)
    }

    /// When the earliest pending timer is due, if any: a live service
    /// sleeps until then (the timer may have been cancelled meanwhile;
    /// moving the clock there then fires nothing).
    pub fn next_due(&self) -> Option<Millis> {
        self.engine.next_due()
    }

    /// The virtual clock: `None` before the first event.
    pub fn now(&self) -> Option<Millis> {
        self.engine.clock()
    }

    /// From now on, note which instructions run and which way each choice
    /// goes (`nurture test --coverage`).
    pub fn record_coverage(&mut self) {
        self.engine.record_coverage();
    }

    /// What ran since [`Interpreter::record_coverage`].
    pub fn coverage(&self) -> Option<&super::coverage::Coverage> {
        self.engine.coverage()
    }

    /// Events accepted so far (bad records are not counted).
    pub fn events(&self) -> u64 {
        self.accepted
    }

    /// Records emitted and not yet taken.
    pub fn pending(&self) -> usize {
        self.engine.pending()
    }

    /// Takes the records emitted since the last take, in emission order.
    pub fn take_emitted(&mut self) -> Vec<Emitted> {
        self.engine.take_records()
    }

    /// Takes the records emitted since the last take, appended to `buf` as
    /// JSON Lines.
    pub fn take_json(&mut self, buf: &mut String) {
        let prog = self.engine.prog().clone();
        let json = &mut self.json;
        self.engine.drain_records(|r| json.write(&prog, r, buf));
    }

    /// Takes the records emitted since the last take and writes them to
    /// `out` as JSON Lines, 64 KiB at a time (a burst of timers firing at
    /// once is never held twice, as records and as text). On a write error
    /// the records not written are gone: the error says so.
    pub fn write_json(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        const CHUNK: usize = 1 << 16;
        let prog = self.engine.prog().clone();
        let json = &mut self.json;
        let mut buf = std::mem::take(&mut self.scratch);
        let mut result = Ok(());
        self.engine.drain_records(|r| {
            json.write(&prog, r, &mut buf);
            if buf.len() >= CHUNK {
                if result.is_ok() {
                    result = out.write_all(buf.as_bytes());
                }
                buf.clear();
            }
        });
        if result.is_ok() {
            result = out.write_all(buf.as_bytes());
        }
        buf.clear();
        self.scratch = buf;
        result
    }

    /// Renders one record as a JSON line (with its newline).
    pub fn render(&mut self, r: &Emitted) -> String {
        let mut buf = String::new();
        self.json.write(self.engine.prog(), r, &mut buf);
        buf
    }

    /// Takes the faults raised since the last take (journeys that failed).
    pub fn take_faults(&mut self) -> Vec<RunFault> {
        self.engine.take_faults()
    }

    pub fn has_contact(&self, id: &str) -> bool {
        self.engine.contact(id).is_some()
    }

    /// The contacts whose `@timezone` field holds a name that is no known
    /// zone (their local times are read in the program's zone).
    pub fn unknown_zones(&self) -> u64 {
        let Some(slot) = self.program().zone_field else {
            return 0;
        };
        self.engine
            .contact_ids()
            .filter(|id| {
                matches!(
                    self.attributes(id).and_then(|a| a.get(slot as usize)),
                    Some(Value::Str(name)) if super::calendar::zone(name).is_none()
                )
            })
            .count() as u64
    }

    /// The time zone a contact's local times are read in: its `@timezone`
    /// field when that names a known zone, else the program's.
    pub fn zone(&self, id: &str) -> Option<chrono_tz::Tz> {
        self.engine.contact(id).map(|c| self.engine.zone_of(c))
    }

    /// The ids of the known contacts, in first-seen order.
    pub fn contact_ids(&self) -> impl Iterator<Item = &str> {
        self.engine.contact_ids()
    }

    /// A contact's attributes, by field slot.
    pub fn attributes(&self, id: &str) -> Option<&[Value]> {
        self.engine.contact(id).map(|c| self.engine.attributes(c))
    }

    /// A contact's journeys in flight, in workflow declaration order.
    pub fn journeys(&self, id: &str) -> Option<Vec<JourneyView>> {
        let c = self.engine.contact(id)?;
        Some(self.engine.journeys(c))
    }

    /// Evaluates a compiled expression for a contact (or, with `None`, for
    /// a contact with the schema's defaults) at `now`.
    pub fn eval(&self, contact: Option<&str>, e: &CExpr, now: Millis) -> Result<Value, Fault> {
        let c = contact.and_then(|id| self.engine.contact(id));
        self.engine.eval_for(c, e, now)
    }

    /// Counts of the run so far.
    pub fn stats(&self) -> RunStats {
        RunStats {
            events: self.accepted,
            workflows: self.engine.workflow_stats().to_vec(),
            waiting: self.engine.waiting_counts(),
            actions: self.engine.action_counts(),
            funnel: self.engine.funnel_counts().to_vec(),
            pending: self.engine.pending_counts(),
        }
    }
}
