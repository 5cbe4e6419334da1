//! Where a state is kept, behind one trait: a driver opens a store, loads
//! the state from it, reads and writes its own entries beside the rows,
//! and writes the state whole. The embedded SQLite store
//! ([`SqliteStore`], `runtime::state_db`) is the first implementation; a
//! shared database is meant to be a second one, not a rewrite.
//!
//! Incremental checkpoints, which a run takes while it reads, go through
//! the store's own writer (SQLite's: [`SqliteStore::into_writer`], a thread
//! fed the changed rows through [`crate::runtime::snapshot::Changes`]).

use super::StateError;
use crate::runtime::snapshot::Snapshot;
use crate::runtime::state_db;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// A place a state is kept.
pub trait StateStore {
    /// Where it is, for messages.
    fn name(&self) -> String;
    /// The state kept, or `None` for a store that holds none yet.
    fn load(&mut self) -> Result<Option<Snapshot>, StateError>;
    /// A driver's entry kept beside the rows (the program record, how far
    /// the input was read, the output files' lengths and identities).
    fn entry(&self, key: &str) -> Result<Option<String>, StateError>;
    /// Writes `snap` as the whole state, with `entries`, at once.
    fn write_whole(
        &mut self,
        snap: &Snapshot,
        entries: &[(&str, String)],
    ) -> Result<(), StateError>;
}

impl StateError {
    fn store(e: impl std::fmt::Display) -> StateError {
        StateError::Store(e.to_string())
    }
}

/// A state in an SQLite database file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (or creates) the state at `path` for one run: locked against
    /// every other run until it ends (a second one is refused at once).
    pub fn open_for_run(path: &Path) -> Result<SqliteStore, StateError> {
        use rusqlite::OpenFlags;
        if let Some(problem) = state_db::path_problem(path, true) {
            return Err(StateError::Store(problem));
        }
        let shown = path.display();
        // One thread uses the connection at a time (it moves to the
        // checkpoint writer): SQLite's own locking is not needed. No URI
        // names: a state is a file.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| StateError::Store(format!("cannot open the state `{shown}`: {e}")))?;
        let _ = conn.busy_timeout(std::time::Duration::ZERO);
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;")
            .and_then(|()| state_db::configure(&conn))
            .map_err(|e| {
                let busy = matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                );
                if busy {
                    StateError::InUse(shown.to_string())
                } else {
                    StateError::Store(format!("cannot use the state `{shown}`: {e}"))
                }
            })?;
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Opens the state at `path` to read it (`inspect`, the REPL): never
    /// written, readable while no run holds it, in a read-only place too.
    pub fn open_to_read(path: &Path) -> Result<SqliteStore, StateError> {
        let conn = state_db::open_to_read(path).map_err(StateError::Store)?;
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, handed to the checkpoint writer's thread.
    pub fn into_connection(self) -> Connection {
        self.conn
    }
}

impl StateStore for SqliteStore {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&mut self) -> Result<Option<Snapshot>, StateError> {
        state_db::load(&self.conn).map_err(StateError::BadRows)
    }

    fn entry(&self, key: &str) -> Result<Option<String>, StateError> {
        state_db::meta(&self.conn, key).map_err(StateError::store)
    }

    fn write_whole(
        &mut self,
        snap: &Snapshot,
        entries: &[(&str, String)],
    ) -> Result<(), StateError> {
        state_db::save_with(&mut self.conn, snap, entries).map_err(|e| {
            StateError::Store(format!(
                "cannot write the state `{}`: {e}",
                self.path.display()
            ))
        })
    }
}
