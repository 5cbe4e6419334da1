//! Reading and validating input on a second thread, so parsing the next
//! records overlaps with running the engine on the current ones. Records
//! arrive in file order, in batches; the engine's results are the same as
//! reading and running one line at a time.
//!
//! The thread also decides what only the state could (time order, known
//! contact) with a shadow of the contact index: contacts get their indices
//! in file order on both sides, so the engine receives each event with its
//! contact already resolved.

use super::engine::{admissible, Input, CONTACT_CREATED};
use super::input::parse_event;
use super::value::Millis;
use crate::check::Schema;
use rustc_hash::FxHashMap;
use smol_str::SmolStr;
use std::borrow::Cow;
use std::io::BufRead;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One input line, parsed against the schema.
pub enum Record {
    /// An event and its contact's index (`None` for a new contact).
    Event(Input<'static>, Option<u32>),
    /// A record that does not fit the schema (or is not JSON or not UTF-8).
    Bad { reason: String, raw: Vec<u8> },
    /// The file could not be read further.
    Unreadable(String),
}

/// A numbered record (lines counted from 1; blank lines are skipped).
pub type Numbered = (u64, Record);

const BATCH: usize = 512;
const BATCHES_IN_FLIGHT: usize = 8;

/// What the engine already holds when the stream starts.
pub struct Start {
    /// The ids of the contacts loaded so far, by index.
    pub contacts: Vec<SmolStr>,
    /// The time of the last event accepted, if any.
    pub previous: Option<Millis>,
}

/// Parses and validates `reader`'s lines on a new thread. Dropping the
/// receiver stops it.
pub fn spawn(
    reader: impl BufRead + Send + 'static,
    schema: Arc<Schema>,
    start: Start,
) -> (Receiver<Vec<Numbered>>, JoinHandle<()>) {
    let (tx, rx) = sync_channel::<Vec<Numbered>>(BATCHES_IN_FLIGHT);
    let handle = std::thread::spawn(move || {
        let mut reader = reader;
        let mut shadow = Shadow::new(start);
        let mut bytes = Vec::new();
        let mut n = 0u64;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            bytes.clear();
            let record = match reader.read_until(b'\n', &mut bytes) {
                Ok(0) => break,
                Ok(_) => {
                    n += 1;
                    match parse_line(&bytes, &schema) {
                        Some(r) => shadow.admit(r, &bytes),
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
fn parse_line(bytes: &[u8], schema: &Schema) -> Option<Record> {
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
        Ok(input) => Record::Event(
            Input {
                at: input.at,
                contact: Cow::Owned(input.contact.into_owned()),
                ty: input.ty,
                payload: input.payload,
                attrs: input.attrs,
            },
            None,
        ),
        Err(reason) => Record::Bad {
            reason,
            raw: bytes.to_vec(),
        },
    })
}

/// The contact index and clock as the engine will have them.
struct Shadow {
    index: FxHashMap<SmolStr, u32>,
    next: u32,
    previous: Option<Millis>,
}

impl Shadow {
    fn new(start: Start) -> Shadow {
        let next = start.contacts.len() as u32;
        let index = start
            .contacts
            .into_iter()
            .enumerate()
            .map(|(i, id)| (id, i as u32))
            .collect();
        Shadow {
            index,
            next,
            previous: start.previous,
        }
    }

    /// Resolves an event's contact, or turns it into a bad record.
    fn admit(&mut self, record: Record, bytes: &[u8]) -> Record {
        let Record::Event(input, _) = record else {
            return record;
        };
        let found = self.index.get(input.contact.as_ref()).copied();
        if let Err(reason) = admissible(self.previous, &input, found.is_some()) {
            return Record::Bad {
                reason,
                raw: bytes.to_vec(),
            };
        }
        self.previous = Some(input.at);
        if input.ty == CONTACT_CREATED {
            self.index
                .insert(SmolStr::new(input.contact.as_ref()), self.next);
            self.next += 1;
        }
        Record::Event(input, found)
    }
}
