//! Running: a checked program executed against contact events in virtual time.
//!
//! `runtime/compile.rs` turns the AST into instructions, `runtime/engine.rs`
//! runs them (timers in `engine/clock.rs`, instructions in `engine/exec.rs`),
//! `runtime/stream.rs` parses input on a second thread, `runtime/input.rs` reads and validates JSON Lines input and
//! `runtime/output.rs` writes actions. `nurture run` and the REPL share this.

pub mod compile;
pub mod engine;
pub mod eval;
pub mod input;
pub mod interpreter;
pub mod output;
pub mod program;
pub mod record;
pub mod store;
mod stream;
pub mod value;

pub use compile::compile;
pub use interpreter::{BadRecord, Driver, Interpreter, StreamEnd, StreamError, StreamOptions};
pub use program::Compiled;
pub use record::Input;
