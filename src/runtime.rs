//! Running: a checked program executed against contact events in virtual time.
//!
//! [`Interpreter`] is the one front door every driver uses. Behind it,
//! `compile.rs` turns the AST into the instruction set of `program.rs`,
//! `engine.rs` runs it (timers in `engine/clock.rs`, instructions in
//! `engine/exec.rs`) over the state in `store.rs`, `stream.rs` parses input
//! on other threads, `input.rs` reads and validates JSON Lines into the
//! records of `record.rs`, and `output.rs` holds what was emitted and
//! renders it as JSON.

pub(crate) mod calendar;
pub mod compile;
pub mod coverage;
pub mod engine;
pub mod error;
pub(crate) mod eval;
pub mod input;
pub mod interpreter;
pub mod output;
pub(crate) mod program;
pub(crate) mod record;
pub mod snapshot;
pub mod state;
pub mod state_db;
pub(crate) mod store;
mod stream;
pub mod value;

// The front door: what drivers outside the runtime use, all from here.
pub use compile::{compile, compile_expr};
pub use coverage::{Coverage, WorkflowRan};
pub use engine::{partition_of, RunFault};
pub use error::{ClockMove, RecordError};
pub use input::parse_event;
pub use interpreter::RunStats;
pub use interpreter::{
    BadRecord, Driver, Interpreter, LateEvents, Progress, StreamEnd, StreamError, StreamOptions,
};
pub use output::{Action, ActionKind, DataMap, Emitted, Lifecycle, Outcome, Suppression, What};
pub use program::Compiled;
pub use program::MAX_FUNNEL_BITS;
pub use record::Input;
pub use snapshot::{ChangeExit, ContactRow, JourneyMove, JourneyRow, Migration, Snapshot};
pub use state_db::{
    meta as state_meta, open_to_read as open_state_to_read, save_with as save_state,
    write as write_state, Batch, Entries, Writer,
};
pub use stream::MAX_LINE;
pub use value::{
    format_datetime, format_duration, parse_datetime, parse_duration, write_json_str, Millis, Value,
};
