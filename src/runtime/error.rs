//! The runtime's typed errors for input records: what a caller (the CLI,
//! the live service) needs to tell apart, so an exit code or an HTTP status
//! can follow from the kind. Each displays as the message people read.

use super::value::{format_datetime, Millis};
use crate::suggest::echo;

/// Why an input record (an event, or a contact to load) was not run. The
/// state is as it was before the record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not a record of the schema: malformed JSON, an unknown event type or
    /// field, a value of the wrong type, a required field missing.
    #[error("{0}")]
    Invalid(String),
    /// Earlier than the clock (refused by the default late-event policy).
    #[error("time goes backwards: {} is {}", format_datetime(*.at), late_reason(*.clock, *.moved_by))]
    Late {
        at: Millis,
        clock: Millis,
        moved_by: ClockMove,
    },
    /// More than 366 days after the clock (a mistyped year?).
    #[error("the clock would jump from {} to {}, more than 366 days: a mistyped year? (`--allow-clock-jump` accepts it)", format_datetime(*.from), format_datetime(*.to))]
    ClockJump { from: Millis, to: Millis },
    /// An event for a contact the state does not know.
    #[error("unknown contact `{}`: create it with a `contact_created` event or load it with --contacts", echo(.0))]
    UnknownContact(String),
    /// A second `contact_created` for one contact.
    #[error("contact `{}` already exists", echo(.0))]
    ContactExists(String),
}

/// What last moved the clock, for [`RecordError::Late`]'s message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMove {
    /// An input event.
    Event,
    /// A move of the clock itself: `--until`, or a test's `at`/`advance`.
    Advance,
    /// An earlier run, whose state this one goes on from.
    State,
}

fn late_reason(clock: Millis, by: ClockMove) -> String {
    let clock = format_datetime(clock);
    match by {
        ClockMove::Event => format!("before the previous event at {clock}"),
        ClockMove::Advance => format!(
            "before the clock at {clock}, where `--until` moved it (`--late-events stamp` processes such events at the clock)"
        ),
        ClockMove::State => format!(
            "before the clock at {clock}, where the state's last run left it (`--late-events stamp` processes such events at the clock)"
        ),
    }
}

impl From<String> for RecordError {
    fn from(message: String) -> RecordError {
        RecordError::Invalid(message)
    }
}
