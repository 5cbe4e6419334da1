//! Reading and validating input on a second thread, so parsing the next
//! records overlaps with running the engine on the current ones. Records
//! arrive in file order, in batches; the engine's results are the same as
//! reading and running one line at a time.
//!
//! What only the state can decide (time order, known contact) stays with
//! the engine: the parsing thread is the busier of the two.

use super::engine::Input;
use super::input::parse_event;
use crate::check::Schema;
use std::io::BufRead;
use std::sync::mpsc::{sync_channel, Receiver};
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

const BATCH: usize = 512;
const BATCHES_IN_FLIGHT: usize = 8;

/// Parses and validates `reader`'s lines on a new thread; `keep_raw` keeps
/// each event's line. Dropping the receiver stops it.
pub fn spawn(
    reader: impl BufRead + Send + 'static,
    schema: Arc<Schema>,
    keep_raw: bool,
) -> (Receiver<Vec<Numbered>>, JoinHandle<()>) {
    let (tx, rx) = sync_channel::<Vec<Numbered>>(BATCHES_IN_FLIGHT);
    let handle = std::thread::spawn(move || {
        let mut reader = reader;
        let mut bytes = Vec::new();
        let mut n = 0u64;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            bytes.clear();
            let record = match reader.read_until(b'\n', &mut bytes) {
                Ok(0) => break,
                Ok(_) => {
                    n += 1;
                    match parse_line(&bytes, &schema, keep_raw) {
                        Some(r) => r,
                        None => continue,
                    }
                }
                Err(e) => {
                    n += 1;
                    Record::Unreadable(e.to_string())
                }
            };
            let stop = matches!(record, Record::Unreadable(_));
            batch.push((n, record));
            if batch.len() == BATCH || stop {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                // A closed channel means the consumer stopped: so do we.
                let sent = tx.send(full).is_ok();
                if !sent || stop {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
    });
    (rx, handle)
}

/// One line's record, or `None` for a blank line.
fn parse_line(bytes: &[u8], schema: &Schema, keep_raw: bool) -> Option<Record> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.trim_end_matches(['\n', '\r']),
        Err(e) => {
            return Some(Record::Bad {
                reason: format!("the line is not valid UTF-8 (byte {})", e.valid_up_to() + 1),
                raw: bytes.to_vec(),
            })
        }
    };
    if text.trim().is_empty() {
        return None;
    }
    Some(match parse_event(text, schema) {
        Ok(input) => Record::Event(input, keep_raw.then(|| bytes.to_vec())),
        Err(reason) => Record::Bad {
            reason,
            raw: bytes.to_vec(),
        },
    })
}
