//! The input record every reader hands to the engine (the file stream, the
//! REPL, tests), and the ids of the built-in events. Readers and the engine
//! both depend on this module, never on each other.

use super::value::{Millis, Value};

/// Event type id of `contact_created`: the schema declares the built-in
/// events first, in the order of [`crate::check::schema::BUILTIN_EVENTS`].
pub const CONTACT_CREATED: u16 = 0;
/// Event type id of `contact_updated`.
pub const CONTACT_UPDATED: u16 = 1;

/// Payload values, in the order the event declares its fields: inline for
/// the one or two fields a program usually reads from an event (the input
/// keeps only those), so most events need no allocation of their own.
pub type Payload = smallvec::SmallVec<[Value; 2]>;

/// A validated input event.
#[derive(Clone, Debug, Default)]
pub struct Input {
    pub at: Millis,
    /// Ids of up to 23 bytes are stored inline, without an allocation.
    pub contact: smol_str::SmolStr,
    pub ty: u16,
    /// Payload values by field slot; trailing fields nothing reads may be left out.
    pub payload: Payload,
    /// Attribute changes (`contact_created`/`contact_updated`), by field slot.
    pub attrs: Vec<(u16, Value)>,
}

/// One event as the runtime keeps it (in a contact's history, as a
/// journey's trigger), and as a stored state holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub ty: u16,
    pub at: Millis,
    pub payload: Payload,
}
