//! The spend ledger: one row per request (served or failed), written off the request path.
//!
//! [`Ledger::record`] puts a row on a bounded in-memory queue and returns at once; one
//! background writer ([`writer`]), woken once per batch rather than per row, writes batches
//! to the [`store`] — SQLite in the state
//! directory by default, PostgreSQL in LiteLLM's `"LiteLLM_SpendLogs"` with `database_url`.
//! When the database cannot take a batch, the batch goes to the [`spool`] on disk and is
//! replayed when the database answers again; when the queue is full, rows go straight to
//! the spool. Inserts are idempotent by request id, so a replay never doubles a row.
//!
//! **Invariant:** nothing on the request path waits on a database; memory stays bounded
//! whatever the backlog (the queue is bounded, the spool is on disk).

mod aggregate;
pub mod overview;
pub mod postgres;
pub mod read;
mod record;
pub mod report;
pub mod rollup;
mod spend;
mod spool;
pub mod sqlite;
mod store;
mod totals;
mod writer;

pub use record::{
    CALL_BATCH, CALL_CHAT, CALL_EMBEDDING, CALL_MESSAGES, CALL_PASS_THROUGH, CALL_RESPONSES,
    Outcome, Record, Tokens, clean_api_base,
};
pub use spend::SpendFilter;
pub use spool::waiting as spooled_rows;
pub use store::{Store, StoreError, describe};
/// The writer's batching: a batch is written at this many rows or after this long.
pub use writer::{BATCH, TICK};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::secret::Secret;
use spool::Spool;
use writer::{Msg, Writer};

/// Rows waiting in memory at most; beyond this they go to the spool.
pub const QUEUE: usize = 10_000;

/// Where the ledger lives.
#[derive(Debug, Clone)]
pub struct Settings {
    /// PostgreSQL when set (`general_settings.database_url` or `DATABASE_URL`).
    pub database_url: Option<Secret>,
    /// The state directory: `ledger.sqlite3` and the spool.
    pub state_dir: PathBuf,
    /// `maximum_spend_logs_retention_period`: older rows are deleted.
    pub retention: Option<Duration>,
}

/// The process's ledger. Cheap to clone; one writer behind all clones.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    /// Rows waiting for the writer: a `Vec` under a short lock rather than a channel, which
    /// would wake the writer task for every request.
    rows: Arc<Rows>,
    /// Flush requests and, when the last handle goes, the writer's end.
    tx: mpsc::Sender<Msg>,
    spool: Arc<Spool>,
    shared: Arc<Shared>,
    backend: &'static str,
    location: String,
    /// Rows promised but not recorded yet (a stream whose charge is still coming).
    holds: AtomicUsize,
    released: Notify,
    closed: AtomicBool,
    /// The same store, read-only, with a pool of its own (`None` for a test's own store).
    reader: Option<read::Reader>,
}

/// What the writer reports, for [`Ledger::status`].
pub struct Shared {
    state: Mutex<State>,
    written: AtomicU64,
}

struct State {
    ok: bool,
    since: SystemTime,
    error: Option<String>,
}

impl Shared {
    fn new() -> Self {
        Self {
            state: Mutex::new(State { ok: true, since: SystemTime::now(), error: None }),
            written: AtomicU64::new(0),
        }
    }

    fn set_ok(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !s.ok {
            *s = State { ok: true, since: SystemTime::now(), error: None };
        }
    }

    fn set_degraded(&self, error: String) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.ok {
            s.ok = false;
            s.since = SystemTime::now();
        }
        s.error = Some(error);
    }

    fn written(&self, n: usize) {
        self.written.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The ledger's health, for `/health`, `/health/readiness` and `status`. Never holds a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// A path, or `host:port/database`.
    pub location: String,
    /// `ok` or `degraded` (rows go to the spool).
    pub state: &'static str,
    /// Unix seconds of the last change of state.
    pub since: u64,
    pub error: Option<String>,
    /// Rows in memory, waiting for the writer.
    pub queued: usize,
    /// Rows on disk, waiting for the database.
    pub spooled: u64,
    /// Rows written since start.
    pub written: u64,
}

impl Status {
    pub fn ok(&self) -> bool {
        self.state == "ok"
    }
}

impl Ledger {
    /// Opens the store named by `settings` and starts the writer on the current tokio
    /// runtime. The database is not contacted here: an unreachable one makes the ledger
    /// degraded (rows spooled), not the gateway fail to start.
    pub fn open(settings: &Settings) -> Result<Self, String> {
        let store: Box<dyn Store> = match &settings.database_url {
            // A URL that does not parse leaves the ledger degraded (rows spooled until it is
            // fixed and the gateway restarted), never silently off.
            Some(url) => match postgres::Postgres::new(url.expose()) {
                Ok(store) => Box::new(store),
                Err(err) => Box::new(store::Unusable {
                    backend: "postgres",
                    error: format!("database_url is not a usable PostgreSQL URL: {err}"),
                }),
            },
            None => {
                std::fs::create_dir_all(&settings.state_dir).map_err(|e| {
                    format!(
                        "cannot create the state directory {}: {e}",
                        settings.state_dir.display()
                    )
                })?;
                Box::new(
                    sqlite::Sqlite::new(&settings.state_dir.join("ledger.sqlite3"))
                        .map_err(|e| format!("ledger.sqlite3: {e}"))?,
                )
            }
        };
        Self::build(store, settings, Some(read::Reader::new(settings)))
    }

    /// The ledger over any store (tests pass their own).
    pub fn with_store(store: Box<dyn Store>, settings: &Settings) -> Result<Self, String> {
        Self::build(store, settings, None)
    }

    fn build(
        store: Box<dyn Store>,
        settings: &Settings,
        reader: Option<read::Reader>,
    ) -> Result<Self, String> {
        let spool = Arc::new(Spool::open(&settings.state_dir).map_err(|e| {
            format!("cannot open the ledger spool in {}: {e}", settings.state_dir.display())
        })?);
        let shared = Arc::new(Shared::new());
        let (tx, rx) = mpsc::channel(16);
        let rows = Arc::new(Rows::default());
        let backend = store.backend();
        let location = store.location();
        let writer = Writer::new(store, spool.clone(), shared.clone(), settings.retention);
        tokio::spawn(writer.run(rows.clone(), rx));
        Ok(Self {
            inner: Arc::new(Inner {
                rows,
                tx,
                spool,
                shared,
                backend,
                location,
                holds: AtomicUsize::new(0),
                released: Notify::new(),
                closed: AtomicBool::new(false),
                reader,
            }),
        })
    }

    /// Queues `record` for the writer. Never blocks and never waits on a database: with the
    /// queue full (or the writer gone) the row is appended to the spool instead.
    pub fn record(&self, record: Record) {
        let inner = &self.inner;
        let record = if inner.closed.load(Ordering::Acquire) || inner.tx.is_closed() {
            record
        } else {
            match inner.rows.push(record) {
                Ok(()) => return,
                Err(record) => record,
            }
        };
        if let Err(err) = inner.spool.append(std::slice::from_ref(&record), false) {
            tracing::error!(%err, request_id = %record.request_id, "ledger: queue full and the spool cannot be written; row lost");
        }
    }

    /// A promise of a row to come (a stream's charge arrives when it ends): [`close`]
    /// waits for it. Drop the guard after recording.
    ///
    /// [`close`]: Ledger::close
    pub fn hold(&self) -> Hold {
        self.inner.holds.fetch_add(1, Ordering::AcqRel);
        Hold { ledger: self.clone() }
    }

    /// Writes every queued row (to the database, else the spool) and answers; later rows
    /// go to the spool directly. For graceful shutdown: waits up to `timeout` for promised
    /// rows first.
    pub async fn close(&self, timeout: Duration) {
        let inner = &self.inner;
        let deadline = tokio::time::Instant::now() + timeout;
        while inner.holds.load(Ordering::Acquire) > 0 {
            let notified = inner.released.notified();
            if inner.holds.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(
                    promised = inner.holds.load(Ordering::Acquire),
                    "ledger: stopping with streams still open; their rows are not recorded"
                );
                break;
            }
        }
        self.flush().await;
        inner.closed.store(true, Ordering::Release);
        // Rows that raced the flush into the channel.
        self.flush().await;
    }

    /// Waits until every row queued before this call is written (or spooled).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// The read side of this ledger's store, for the spend reports.
    pub fn reader(&self) -> Option<&read::Reader> {
        self.inner.reader.as_ref()
    }

    pub fn status(&self) -> Status {
        let inner = &self.inner;
        let s = inner.shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        Status {
            backend: inner.backend,
            location: inner.location.clone(),
            state: if s.ok { "ok" } else { "degraded" },
            since: s.since.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            error: s.error.clone(),
            queued: inner.rows.len(),
            spooled: inner.spool.rows(),
            written: inner.shared.written.load(Ordering::Relaxed),
        }
    }
}

/// The rows queued for the writer.
#[derive(Default)]
pub(crate) struct Rows {
    rows: Mutex<Vec<Record>>,
    /// Rung when a batch is full; the writer's tick takes smaller ones.
    full: Notify,
}

impl Rows {
    /// Queues `record`, or hands it back when [`QUEUE`] rows are already waiting.
    // The rare refusal hands the row back by value for the spool; boxing it would cost every
    // push an allocation to make the error smaller.
    #[allow(clippy::result_large_err)]
    fn push(&self, record: Record) -> Result<(), Record> {
        let mut rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        if rows.len() >= QUEUE {
            return Err(record);
        }
        rows.push(record);
        let full = rows.len() == BATCH;
        drop(rows);
        if full {
            self.full.notify_one();
        }
        Ok(())
    }

    /// Every row waiting, in the order recorded.
    fn take(&self) -> Vec<Record> {
        std::mem::take(&mut *self.rows.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn len(&self) -> usize {
        self.rows.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// See [`Ledger::hold`].
pub struct Hold {
    ledger: Ledger,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let inner = &self.ledger.inner;
        if inner.holds.fetch_sub(1, Ordering::AcqRel) == 1 {
            inner.released.notify_waiters();
        }
    }
}

/// LiteLLM's retention period syntax (`30s`, `10m`, `12h`, `30d`, `2w`, `1mo` = 30 days).
pub fn parse_period(text: &str) -> Option<Duration> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = t[..digits].parse().ok()?;
    let unit = match &t[digits..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "mo" => 30 * 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(unit)?)).filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_periods_follow_litellm() {
        assert_eq!(parse_period("30d"), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_period("1mo"), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_period("12h"), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_period("0d"), None);
        assert_eq!(parse_period("1y"), None);
    }
}
