//! Reading and validating input on other threads, so parsing the next
//! records overlaps with running the engine on the current ones. Records
//! arrive in file order, in batches; the engine's results are the same as
//! reading and running one line at a time.
//!
//! The file is cut into blocks of whole lines, read in turn by
//! [`PARSERS`] parsing threads: each reads its block (taking turns, so
//! blocks are read in order), then parses it while the next thread reads
//! the next block. The receiving end takes the blocks back in order,
//! a thread at a time, and numbers the lines. What only the state can
//! decide (time order, known contact) stays with the engine. Each record is
//! parsed straight into its slot in a batch; the engine hands emptied
//! batches back, so in the steady state parsing allocates only the values
//! kept.

use super::engine::Engine;
use super::input::parse_event_into;
use super::record::Input;
use super::Compiled;
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
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
    /// The input's last line has no newline and is not a whole record: a
    /// writer may be in the middle of it. It is left unread (a run with a
    /// state reads it whole next time).
    Partial { reason: String },
}

/// A numbered record (lines counted from 1; blank lines are skipped).
pub type Numbered = (Pos, Record);

/// Where a record stands in the input: its line (from 1), the byte offset
/// where it starts and the one just past it (its newline included), so a
/// driver knows how much of the input it has handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: u64,
    pub start: u64,
    pub end: u64,
}

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

/// Records per batch.
const BATCH: usize = 512;
/// Batches a parsing thread may have sent ahead of the engine.
const BATCHES_IN_FLIGHT: usize = 4;
/// The size of the blocks the file is read in (a longer line makes its
/// block longer).
const BLOCK: usize = 1 << 18;
/// Parsing threads: parsing is the larger half of the work, so two of them
/// keep one engine busy.
pub const PARSERS: usize = 2;

/// Part of a block's records; `last` ends the block, which held `lines`
/// lines and `bytes` bytes. Records are numbered from 1, and their offsets
/// counted from 0, within their block.
struct Part {
    batch: Vec<Numbered>,
    last: bool,
    lines: u64,
    bytes: u64,
}

/// Emptied batches, for reuse.
type Pool = Arc<Mutex<Vec<Vec<Numbered>>>>;

/// The receiving end: batches of records in file order.
pub struct Batches {
    /// One channel per parsing thread; block `b` comes from thread `b % PARSERS`.
    parts: Vec<Receiver<Part>>,
    block: u64,
    /// Lines and bytes in the blocks before `block`.
    base: u64,
    base_bytes: u64,
    pool: Pool,
}

/// Batches, their records numbered by line in the file, to the end of the input.
impl Iterator for Batches {
    type Item = Vec<Numbered>;

    fn next(&mut self) -> Option<Vec<Numbered>> {
        loop {
            let from = &self.parts[(self.block % self.parts.len() as u64) as usize];
            // A thread that hung up has read to the end of the input.
            let mut part = from.recv().ok()?;
            for (pos, _) in &mut part.batch {
                pos.line += self.base;
                pos.start += self.base_bytes;
                pos.end += self.base_bytes;
            }
            if part.last {
                self.base += part.lines;
                self.base_bytes += part.bytes;
                self.block += 1;
            }
            if !part.batch.is_empty() {
                return Some(part.batch);
            }
        }
    }
}

impl Batches {
    /// The bytes of the input in the blocks taken so far (all of it, once
    /// the batches have ended).
    pub fn bytes(&self) -> u64 {
        self.base_bytes
    }

    /// Hands a batch back for reuse (its records are dropped here).
    pub fn recycle(&self, mut batch: Vec<Numbered>) {
        batch.clear();
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < PARSERS * (BATCHES_IN_FLIGHT + 2) {
            pool.push(batch);
        }
    }
}

/// The parsing threads.
pub struct Parsers(Vec<JoinHandle<()>>);

impl Parsers {
    /// Waits for every parsing thread to finish; an error if one of them
    /// failed, in which case the batches may have ended early.
    pub fn join(self) -> Result<(), String> {
        let mut failed = false;
        for t in self.0 {
            failed |= t.join().is_err();
        }
        if failed {
            Err("a parsing thread failed; the input was not read to its end".into())
        } else {
            Ok(())
        }
    }
}

/// The input, read a block at a time by the parsing threads in turn.
struct Source {
    reader: Box<dyn Read + Send>,
    /// Bytes read past the last whole line of the block before.
    carry: Vec<u8>,
    /// The block to read next.
    turn: u64,
    /// The input ended (or failed): later blocks are empty.
    done: bool,
}

/// The longest input line read, in bytes (64 MiB).
pub const MAX_LINE: usize = 64 << 20;

/// One block: whole lines (the last may lack its newline at the end of the
/// input), and the read error that cut it short, if any.
struct Block {
    bytes: Vec<u8>,
    error: Option<std::io::Error>,
}

impl Source {
    /// Reads block `turn` into `bytes`: whole lines, `size` bytes or more
    /// unless the input ends or pauses. A read that returns less than asked
    /// (a pipe with nothing more for now) ends the block at its last whole
    /// line, so what arrived is run at once instead of waiting for more.
    fn read(&mut self, mut bytes: Vec<u8>, size: usize) -> Block {
        bytes.clear();
        bytes.append(&mut self.carry);
        if self.done {
            return Block { bytes, error: None };
        }
        let chunk = size.max(1);
        // Where the line being read starts (the carry holds no newline).
        let mut line_start = 0;
        loop {
            let len = bytes.len();
            if len - line_start > MAX_LINE {
                // No newline in MAX_LINE bytes: not JSON Lines (`/dev/zero`,
                // a binary file). The lines before it are run, then the
                // input stops here with a clear error, before memory does.
                bytes.truncate(line_start);
                self.done = true;
                return Block {
                    bytes,
                    error: Some(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "the line is longer than {} MiB (no newline in it): not JSON Lines?",
                            MAX_LINE >> 20
                        ),
                    )),
                };
            }
            bytes.resize(len + chunk, 0);
            match self.reader.read(&mut bytes[len..]) {
                Ok(0) => {
                    // The end of the input.
                    bytes.truncate(len);
                    self.done = true;
                    return Block { bytes, error: None };
                }
                Ok(got) => {
                    bytes.truncate(len + got);
                    let paused = got < chunk;
                    if bytes.len() >= size || paused {
                        if let Some(last) = memchr::memrchr(b'\n', &bytes[len..]) {
                            self.carry.extend_from_slice(&bytes[len + last + 1..]);
                            bytes.truncate(len + last + 1);
                            return Block { bytes, error: None };
                        }
                    }
                    if let Some(nl) = memchr::memrchr(b'\n', &bytes[len..]) {
                        line_start = len + nl + 1;
                    }
                    // Not a whole block of lines yet: read on.
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => bytes.truncate(len),
                Err(e) => {
                    bytes.truncate(len);
                    self.done = true;
                    // Keep the whole lines read before the failure.
                    let whole = memchr::memrchr(b'\n', &bytes).map_or(0, |i| i + 1);
                    bytes.truncate(whole);
                    return Block {
                        bytes,
                        error: Some(e),
                    };
                }
            }
        }
    }
}

/// Turn-taking over the source.
struct Shared {
    source: Mutex<Source>,
    turn_changed: Condvar,
}

impl Shared {
    /// Waits for block `b`'s turn, reads it and passes the turn on.
    fn read(&self, b: u64, bytes: Vec<u8>, size: usize) -> Block {
        let mut source = self.source.lock().unwrap_or_else(PoisonError::into_inner);
        while source.turn != b {
            source = self
                .turn_changed
                .wait(source)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let block = source.read(bytes, size);
        source.turn += 1;
        drop(source);
        self.turn_changed.notify_all();
        block
    }
}

/// Parses and validates `reader`'s lines on [`PARSERS`] new threads against
/// `prog`'s schema, keeping the payload fields `prog` reads; `keep_raw`
/// keeps each event's line. Dropping the receiving end stops them.
pub fn spawn(
    reader: impl Read + Send + 'static,
    prog: Arc<Compiled>,
    keep_raw: bool,
) -> (Batches, Parsers) {
    spawn_sized(reader, prog, keep_raw, BLOCK)
}

fn spawn_sized(
    reader: impl Read + Send + 'static,
    prog: Arc<Compiled>,
    keep_raw: bool,
    block: usize,
) -> (Batches, Parsers) {
    let shared = Arc::new(Shared {
        source: Mutex::new(Source {
            reader: Box::new(reader),
            carry: Vec::new(),
            turn: 0,
            done: false,
        }),
        turn_changed: Condvar::new(),
    });
    let pool = Pool::default();
    let mut parts = Vec::new();
    let mut threads = Vec::new();
    for first in 0..PARSERS as u64 {
        let (tx, rx) = sync_channel::<Part>(BATCHES_IN_FLIGHT);
        parts.push(rx);
        let mut parser = Parser {
            prog: prog.clone(),
            keep_raw,
            first_block: false,
            offset: 0,
            start: 0,
            n: 0,
            batch: Vec::new(),
            tx,
            pool: pool.clone(),
        };
        let shared = shared.clone();
        threads.push(std::thread::spawn(move || {
            let _ = parser.blocks(&shared, first, block);
        }));
    }
    let batches = Batches {
        parts,
        block: 0,
        base: 0,
        base_bytes: 0,
        pool,
    };
    (batches, Parsers(threads))
}

/// Why parsing stopped early: the consumer hung up.
struct Stopped;

struct Parser {
    prog: Arc<Compiled>,
    keep_raw: bool,
    /// The block being parsed is the first of the input.
    first_block: bool,
    /// The number of the last line read, within the block.
    n: u64,
    /// The bytes of the block read so far.
    offset: u64,
    /// Where the last line read starts, within the block.
    start: u64,
    batch: Vec<Numbered>,
    tx: SyncSender<Part>,
    pool: Pool,
}

impl Parser {
    /// Reads and parses blocks `first`, `first + PARSERS`, ... to the end.
    fn blocks(&mut self, shared: &Shared, first: u64, size: usize) -> Result<(), Stopped> {
        let mut bytes = Vec::new();
        let mut b = first;
        loop {
            let block = shared.read(b, bytes, size);
            if block.bytes.is_empty() && block.error.is_none() {
                // Past the end of the input.
                return Ok(());
            }
            self.n = 0;
            self.offset = 0;
            self.start = 0;
            self.first_block = b == 0;
            self.block(&block.bytes)?;
            if let Some(e) = block.error {
                self.n += 1;
                self.start = self.offset;
                let pos = self.pos();
                self.push((pos, Record::Unreadable(e.to_string())))?;
                return self.end_block();
            }
            self.end_block()?;
            bytes = block.bytes;
            b += PARSERS as u64;
        }
    }

    /// Parses the lines of one block.
    fn block(&mut self, bytes: &[u8]) -> Result<(), Stopped> {
        // Check the encoding of all the lines at once: one long check is
        // faster than many short ones, and it almost always passes.
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                let mut from = 0;
                for nl in memchr::memchr_iter(b'\n', text.as_bytes()) {
                    self.text_line(&text[from..=nl])?;
                    from = nl + 1;
                }
                if from < text.len() {
                    self.text_line(&text[from..])?;
                }
            }
            Err(_) => {
                let mut from = 0;
                for nl in memchr::memchr_iter(b'\n', bytes) {
                    self.line(&bytes[from..=nl])?;
                    from = nl + 1;
                }
                if from < bytes.len() {
                    self.line(&bytes[from..])?;
                }
            }
        }
        Ok(())
    }

    /// Parses one line (with its newline, if any) into the batch.
    fn line(&mut self, bytes: &[u8]) -> Result<(), Stopped> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.text_line(text),
            Err(e) => {
                self.n += 1;
                self.start = self.offset;
                self.offset += bytes.len() as u64;
                let reason = format!("the line is not valid UTF-8 (byte {})", e.valid_up_to() + 1);
                let raw = bytes.to_vec();
                let pos = self.pos();
                if !bytes.ends_with(b"\n") {
                    return self.push((pos, Record::Partial { reason }));
                }
                self.push((pos, Record::Bad { reason, raw }))
            }
        }
    }

    /// Parses one line of text (with its newline, if any) into the batch.
    fn text_line(&mut self, line: &str) -> Result<(), Stopped> {
        self.n += 1;
        self.start = self.offset;
        self.offset += line.len() as u64;
        let bytes = line.as_bytes();
        let text = line.strip_suffix('\n').unwrap_or(line);
        let text = text.strip_suffix('\r').unwrap_or(text);
        // A byte-order mark at the start of the input is not part of it.
        let text = if self.first_block && self.n == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        if self.batch.capacity() == 0 {
            self.batch = self.fresh_batch();
        }
        // Parse straight into the batch's next slot.
        let pos = self.pos();
        self.batch
            .push((pos, Record::Event(Input::default(), None)));
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
            // The last line, unterminated and not a whole record: being
            // written.
            Err(reason) if !bytes.ends_with(b"\n") => *record = Record::Partial { reason },
            Err(reason) => {
                *record = Record::Bad {
                    reason,
                    raw: bytes.to_vec(),
                }
            }
        }
        self.send_if_full()
    }

    /// The position of the line just read.
    fn pos(&self) -> Pos {
        Pos {
            line: self.n,
            start: self.start,
            end: self.offset,
        }
    }

    fn push(&mut self, record: Numbered) -> Result<(), Stopped> {
        self.batch.push(record);
        self.send_if_full()
    }

    fn send_if_full(&mut self) -> Result<(), Stopped> {
        if self.batch.len() < BATCH {
            return Ok(());
        }
        self.send(false)
    }

    /// An emptied batch from the pool, or a new one.
    fn fresh_batch(&self) -> Vec<Numbered> {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        pool.pop().unwrap_or_else(|| Vec::with_capacity(BATCH))
    }

    /// Sends the batch (`last`: the block's last part).
    fn send(&mut self, last: bool) -> Result<(), Stopped> {
        let next = if last { Vec::new() } else { self.fresh_batch() };
        let batch = std::mem::replace(&mut self.batch, next);
        let part = Part {
            batch,
            last,
            lines: self.n,
            bytes: self.offset,
        };
        // A closed channel means the consumer stopped: so do we.
        self.tx.send(part).map_err(|_| Stopped)
    }

    /// Sends what is left of the block, marking its end.
    fn end_block(&mut self) -> Result<(), Stopped> {
        self.send(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_parsing_thread_is_reported_at_the_join() {
        let ok = Parsers(vec![std::thread::spawn(|| {})]);
        assert_eq!(ok.join(), Ok(()));
        let failed = Parsers(vec![
            std::thread::spawn(|| {}),
            std::thread::spawn(|| panic!("a bug")),
        ]);
        assert!(failed.join().is_err());
    }

    /// A reader that fails once its data is out.
    struct Failing(&'static [u8]);

    impl Read for Failing {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = out.len().min(self.0.len()).min(10);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_comes_after_the_lines_read_before_it() {
        let ping = |c: &str| {
            format!("{{\"at\":\"2026-01-01T00:00:00Z\",\"contact\":\"{c}\",\"type\":\"ping\",\"n\":1}}\n")
        };
        let data: &'static [u8] = format!("{}{}{}", ping("a"), ping("b"), ping("c"))
            .leak()
            .as_bytes();
        for block in [1 << 20, 30, 3] {
            let (mut batches, parsers) = spawn_sized(Failing(data), program(), false, block);
            let mut out = Vec::new();
            for batch in batches.by_ref() {
                out.extend(batch.into_iter().map(|(p, r)| match r {
                    Record::Event(input, _) => (p.line, input.contact.to_string()),
                    Record::Bad { reason, .. } => (p.line, reason),
                    Record::Unreadable(e) => (p.line, format!("unreadable: {e}")),
                    Record::Partial { reason } => (p.line, format!("partial: {reason}")),
                }));
            }
            assert_eq!(parsers.join(), Ok(()));
            let want: Vec<(u64, String)> = vec![
                (1, "a".into()),
                (2, "b".into()),
                (3, "c".into()),
                (4, "unreadable: disk on fire".into()),
            ];
            assert_eq!(out, want, "blocks of {block}");
        }
    }

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

    /// (line number, end offset, contact or reason) of every record, and
    /// the bytes read in all.
    fn read(data: &'static [u8], step: usize, block: usize) -> (Vec<(u64, u64, String)>, u64) {
        let (mut batches, parsers) = spawn_sized(Trickle { data, step }, program(), false, block);
        let mut out = Vec::new();
        for batch in batches.by_ref() {
            out.extend(batch.into_iter().map(|(p, r)| match r {
                Record::Event(input, _) => (p.line, p.end, input.contact.to_string()),
                Record::Bad { reason, .. } => (p.line, p.end, reason),
                Record::Unreadable(e) => (p.line, p.end, e),
                Record::Partial { reason } => (p.line, p.end, format!("partial: {reason}")),
            }));
        }
        assert_eq!(parsers.join(), Ok(()));
        (out, batches.bytes())
    }

    /// The offset just past line `n` (from 1) of `data`.
    fn line_end(data: &[u8], n: usize) -> u64 {
        memchr::memchr_iter(b'\n', data)
            .nth(n - 1)
            .map_or(data.len(), |i| i + 1) as u64
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
        let data: &'static [u8] = data.leak();
        let want: Vec<(u64, u64, String)> = [
            (1, "a"),
            (4, "bb"),
            (5, "the line is not valid UTF-8 (byte 9)"),
            (6, "ccc"),
            (7, "malformed JSON: expected ident (column 2)"),
            (8, "dddd"),
        ]
        .into_iter()
        .map(|(n, s)| (n, line_end(data, n as usize), s.to_string()))
        .collect();
        for (step, block) in [
            (usize::MAX, 1 << 20),
            (3, 1 << 20),
            (1, 7),
            (5, 64),
            (64, 5),
        ] {
            let (got, bytes) = read(data, step, block);
            assert_eq!(got, want, "reads of {step}, blocks of {block}");
            assert_eq!(
                bytes,
                data.len() as u64,
                "reads of {step}, blocks of {block}"
            );
        }
    }
}
