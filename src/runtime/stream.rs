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
    fn read_all(&mut self, reader: impl Read) -> Result<(), Stopped> {
        self.read_blocks(reader, BLOCK)
    }

    /// Reads `reader` in blocks of `block` bytes (grown for longer lines).
    fn read_blocks(&mut self, mut reader: impl Read, block: usize) -> Result<(), Stopped> {
        let mut buf = vec![0u8; block.max(1)];
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
            // The complete lines read so far: `start..lines`.
            let Some(last) = memchr::memrchr(b'\n', &buf[scan..end]) else {
                continue;
            };
            let lines = scan + last + 1;
            // Check the encoding of all the lines at once: one long check
            // is faster than many short ones, and they almost always pass.
            match std::str::from_utf8(&buf[start..lines]) {
                Ok(text) => {
                    let mut from = 0;
                    for nl in memchr::memchr_iter(b'\n', text.as_bytes()) {
                        self.text_line(&text[from..=nl])?;
                        from = nl + 1;
                    }
                }
                Err(_) => {
                    let mut from = start;
                    for nl in memchr::memchr_iter(b'\n', &buf[start..lines]) {
                        let stop = start + nl + 1;
                        self.line(&buf[from..stop])?;
                        from = stop;
                    }
                }
            }
            start = lines;
        }
    }

    /// Parses one line (with its newline, if any) into the batch.
    fn line(&mut self, bytes: &[u8]) -> Result<(), Stopped> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.text_line(text),
            Err(e) => {
                self.n += 1;
                let reason = format!("the line is not valid UTF-8 (byte {})", e.valid_up_to() + 1);
                let raw = bytes.to_vec();
                self.push((self.n, Record::Bad { reason, raw }))
            }
        }
    }

    /// Parses one line of text (with its newline, if any) into the batch.
    fn text_line(&mut self, line: &str) -> Result<(), Stopped> {
        self.n += 1;
        let bytes = line.as_bytes();
        let text = line.strip_suffix('\n').unwrap_or(line);
        let text = text.strip_suffix('\r').unwrap_or(text);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes at a time.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn program() -> Arc<Compiled> {
        let mut sources = crate::source::SourceMap::default();
        sources.add(
            "t.flow",
            "contact { email: string\n tags: set<string> }\nevent ping { n: int }\n\
             workflow w { when ping where event.n > 0\n tag \"x\" }\n",
        );
        let a = crate::pipeline::analyse(&sources);
        assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
        Arc::new(crate::runtime::compile(&a.program, &a.checked.schema))
    }

    /// (line number, contact or reason) of every record.
    fn read(data: &[u8], step: usize, block: usize) -> Vec<(u64, String)> {
        let (tx, rx) = sync_channel(1000);
        let (_back, returned) = sync_channel(1);
        let mut parser = Parser {
            prog: program(),
            keep_raw: false,
            n: 0,
            batch: Vec::new(),
            tx,
            returned,
        };
        assert!(parser.read_blocks(Trickle { data, step }, block).is_ok());
        drop(parser);
        rx.iter()
            .flatten()
            .map(|(n, r)| match r {
                Record::Event(input, _) => (n, input.contact.to_string()),
                Record::Bad { reason, .. } => (n, reason),
                Record::Unreadable(e) => (n, e),
            })
            .collect()
    }

    #[test]
    fn lines_are_cut_right_whatever_the_reads_and_blocks() {
        let ping = |c: &str| {
            format!(
                "{{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"{c}\",\"type\":\"ping\",\"n\":1}}"
            )
        };
        let mut data = Vec::new();
        data.extend(format!("{}\r\n\n  \n{}\n", ping("a"), ping("bb")).bytes());
        data.extend(b"{\"at\": \"\xff\"}\n");
        data.extend(format!("{}\nnot json\n{}", ping("ccc"), ping("dddd")).bytes());
        let want = vec![
            (1, "a".to_string()),
            (4, "bb".to_string()),
            (5, "the line is not valid UTF-8 (byte 9)".to_string()),
            (6, "ccc".to_string()),
            (7, "malformed JSON: expected ident (column 2)".to_string()),
            (8, "dddd".to_string()),
        ];
        for (step, block) in [
            (usize::MAX, 1 << 20),
            (3, 1 << 20),
            (1, 7),
            (5, 64),
            (64, 5),
        ] {
            assert_eq!(
                read(&data, step, block),
                want,
                "reads of {step}, blocks of {block}"
            );
        }
    }
}
