//! The SQLite files a single-developer gateway keeps in its state directory (the ledger, the
//! keys, the batches): one way to open them, so each survives a crash the same way (WAL,
//! `synchronous = NORMAL`) and waits the same while another connection holds the lock.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// A lazily connected pool on the file at `path`, created when missing. `connections` is 1
/// where the file has one writer, so no two writers ever meet.
pub fn pool(path: &Path, connections: u32, acquire_timeout: Duration) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options)
}
