//! The durable state's policy, wherever it is stored: the record of the
//! program a state was written by ([`record::ProgramRecord`], typed and
//! versioned), the rule for going on with a changed program
//! ([`plan::plan`], one planner for `nurture run --state`, the REPL and a
//! live service's reload), and the errors a state can be refused with
//! ([`StateError`], typed so a caller can tell the program's fault from the
//! state's). The rows themselves are [`super::snapshot`]'s; SQLite is
//! [`super::state_db`].

pub mod plan;
pub mod record;
pub mod store;

pub use plan::{fates, plan, refusals, standing, take_up, Fate, Standing, TakenUp, WaitFate};
pub use record::{FunnelRecord, ProgramRecord, WaitRecord, RECORD_VERSION};
pub use store::{SqliteStore, StateStore};

/// Why a state cannot be used with a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The store cannot be opened, read or written (said in words: a
    /// directory, an empty file, no permission, a disk error).
    #[error("{0}")]
    Store(String),
    /// Another run holds the state.
    #[error("the state `{0}` is in use by another run")]
    InUse(String),
    /// The database holds rows but no program record.
    #[error("it was not written by `nurture run` (it has no program record)")]
    NoProgram,
    /// The program record cannot be read: it is never guessed at.
    #[error("a bad program record: {0}")]
    BadRecord(String),
    /// A record of a newer layout than this release reads.
    #[error("its program record is of version {found}, newer than this nurture reads ({reads}); use the release that wrote it")]
    NewerRecord { found: u32, reads: u32 },
    /// Journeys in flight were compiled by another instruction set: their
    /// places in the code would not mean the same.
    #[error("its {journeys} journeys in flight were compiled by instruction set {stored}, this nurture runs {current}; finish them with the release that wrote the state, or start a new state")]
    InstructionSet {
        stored: u32,
        current: u32,
        journeys: usize,
    },
    /// Rows that do not fit the program or one another (named by table,
    /// row and column).
    #[error("{0}")]
    BadRows(String),
    /// The program change rule refuses the change (the program's fault).
    #[error("the program cannot go on from it: {}", .0.join("; "))]
    ProgramRefused(Vec<String>),
}

impl StateError {
    /// Whether the program is at fault (a changed program the state cannot
    /// take), rather than the state itself.
    pub fn is_program_change(&self) -> bool {
        matches!(self, StateError::ProgramRefused(_))
    }
}
