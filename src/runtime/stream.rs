//! Reading and validating input on a second thread, so parsing the next
//! records overlaps with running the engine on the current ones. Records
//! arrive in file order, in batches; the engine's results are the same as
//! reading and running one line at a time.
//!
//! What only the state can decide (time order, known contact) stays with
//! the engine: the parsing thread is the busier of the two. Lines are cut
//! from large blocks of the file in place and each record is parsed straight
//! into its slot in the batch; the engine hands emptied batches back, so in
//! the steady state the parsing thread allocates only the values kept.

use super::engine::{Engine, Input};
use super::input::parse_event_into;
use super::Compiled;
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One input line, parsed against the schema.
pub enum Record {
    /// An event, with its raw line when asked for (to copy it to a rejects
    /// file should the engine refuse it).
    Event(Input, Option<Vec<u8>>),
    /// A record that does not fit the schema (or is not JSON or not UTF-8).
    Bad { reason: String, raw: Vec<u8> },
    /// The file could not be read further.
    Unreadable(String),
}

/// A numbered record (lines counted from 1; blank lines are skipped).
pub type Numbered = (u64, Record);

/// How many records ahead of the one being handled the engine prefetches
/// a contact's index slot (step 1), then its state (step 2).
const PREFETCH_INDEX: usize = 16;
const PREFETCH_CONTACT: usize = 8;

fn event_at(records: &[Numbered], i: usize) -> Option<&Input> {
    match records.get(i) {
        Some((_, Record::Event(input, _))) => Some(input),
        _ => None,
    }
}

/// Prefetches for the first records of a batch, before handling any.
pub fn prefetch_first(engine: &Engine, batch: &[Numbered]) {
    for i in 0..PREFETCH_INDEX {
        if let Some(e) = event_at(batch, i) {
            engine.prefetch_index(e);
        }
    }
    for i in 0..PREFETCH_CONTACT {
        if let Some(e) = event_at(batch, i) {
            engine.prefetch_contact(e);
        }
    }
}

/// Prefetches for the records ahead, given those after the one about to be
/// handled.
pub fn prefetch_ahead(engine: &Engine, rest: &[Numbered]) {
    if let Some(e) = event_at(rest, PREFETCH_INDEX - 1) {
        engine.prefetch_index(e);
    }
    if let Some(e) = event_at(rest, PREFETCH_CONTACT - 1) {
        engine.prefetch_contact(e);
    }
}

const BATCH: usize = 512;
const BATCHES_IN_FLIGHT: usize = 8;
/// The size of the blocks the file is read in (a longer line grows it).
const BLOCK: usize = 1 << 20;

/// The receiving end: batches of records in file order.
pub struct Batches {
    rx: Receiver<Vec<Numbered>>,
    back: SyncSender<Vec<Numbered>>,
}

impl Batches {
    /// The next batch, or `None` at the end of the input.
    pub fn next(&self) -> Option<Vec<Numbered>> {
        self.rx.recv().ok()
    }

    /// Hands a batch back for reuse (its records are dropped here).
    pub fn recycle(&self, mut batch: Vec<Numbered>) {
        batch.clear();
        let _ = self.back.try_send(batch);
    }
}

/// Parses and validates `reader`'s lines on a new thread against `prog`'s
/// schema, keeping the payload fields `prog` reads; `keep_raw` keeps each
/// event's line. Dropping the receiver stops it.
pub fn spawn(
    reader: impl Read + Send + 'static,
    prog: Arc<Compiled>,
    keep_raw: bool,
) -> (Batches, JoinHandle<()>) {
    let (tx, rx) = sync_channel::<Vec<Numbered>>(BATCHES_IN_FLIGHT);
    let (back, returned) = sync_channel::<Vec<Numbered>>(BATCHES_IN_FLIGHT + 2);
    let handle = std::thread::spawn(move || {
        let mut parser = Parser {
            prog,
            keep_raw,
            n: 0,
            batch: Vec::with_capacity(BATCH),
            tx,
            returned,
        };
        let _ = parser.read_all(reader);
    });
    (Batches { rx, back }, handle)
}

/// Why parsing stopped early: the consumer hung up.
struct Stopped;

struct Parser {
    prog: Arc<Compiled>,
    keep_raw: bool,
    /// The number of the last line read.
    n: u64,
    batch: Vec<Numbered>,
    tx: SyncSender<Vec<Numbered>>,
    returned: Receiver<Vec<Numbered>>,
}

impl Parser {
    fn read_all(&mut self, mut reader: impl Read) -> Result<(), Stopped> {
        let mut buf = vec![0u8; BLOCK];
        // Bytes `start..end` of `buf` are read but not yet parsed.
        let (mut start, mut end) = (0, 0);
        loop {
            if start > 0 && end == buf.len() {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            } else if end == buf.len() {
                // One line fills the whole buffer: make room for more of it.
                buf.resize(buf.len() * 2, 0);
            }
            let got = match reader.read(&mut buf[end..]) {
                Ok(got) => got,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.n += 1;
                    self.push((self.n, Record::Unreadable(e.to_string())))?;
                    return self.flush();
                }
            };
            if got == 0 {
                // The last line may lack its newline.
                if start < end {
                    self.line(&buf[start..end])?;
                }
                return self.flush();
            }
            let scan = end;
            end += got;
            let mut from = start;
            for nl in memchr::memchr_iter(b'\n', &buf[scan..end]) {
                let stop = scan + nl + 1;
                self.line(&buf[from..stop])?;
                from = stop;
            }
            start = from;
        }
    }

    /// Parses one line (with its newline, if any) into the batch.
    fn line(&mut self, bytes: &[u8]) -> Result<(), Stopped> {
        self.n += 1;
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t.trim_end_matches(['\n', '\r']),
            Err(e) => {
                let reason = format!("the line is not valid UTF-8 (byte {})", e.valid_up_to() + 1);
                let raw = bytes.to_vec();
                return self.push((self.n, Record::Bad { reason, raw }));
            }
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        // Parse straight into the batch's next slot.
        self.batch
            .push((self.n, Record::Event(Input::default(), None)));
        let Some((_, record)) = self.batch.last_mut() else {
            unreachable!("a record was just pushed");
        };
        let Record::Event(input, raw) = record else {
            unreachable!("an event was just pushed");
        };
        match parse_event_into(text, &self.prog.schema, &self.prog.projection, input) {
            Ok(()) => {
                if self.keep_raw {
                    *raw = Some(bytes.to_vec());
                }
            }
            Err(reason) => {
                *record = Record::Bad {
                    reason,
                    raw: bytes.to_vec(),
                }
            }
        }
        if self.batch.len() == BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn push(&mut self, record: Numbered) -> Result<(), Stopped> {
        self.batch.push(record);
        if self.batch.len() == BATCH {
            self.send()?;
        }
        Ok(())
    }

    /// Sends the batch, taking an emptied one back when there is one.
    fn send(&mut self) -> Result<(), Stopped> {
        let next = self
            .returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, next);
        // A closed channel means the consumer stopped: so do we.
        self.tx.send(full).map_err(|_| Stopped)
    }

    fn flush(&mut self) -> Result<(), Stopped> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.send()
    }
}
