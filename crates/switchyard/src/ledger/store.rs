//! Where rows go, behind one small trait: SQLite in the state directory by default,
//! PostgreSQL in LiteLLM's `"LiteLLM_SpendLogs"` with `database_url`. Only the writer calls
//! a store; every insert is idempotent by request id.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use super::record::Record;

/// What failed, already free of secrets (a database URL's password never appears).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Where the rows go, without secrets (a path, or `host:port/database`).
    fn location(&self) -> String;
    /// Creates the table and indexes when absent and learns which columns exist. Called
    /// until it succeeds, before the first insert.
    fn prepare(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Inserts `rows` in one statement; rows already present (same request id) are left.
    fn insert<'a>(&'a self, rows: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Deletes at most `limit` rows that started before `before`; returns how many.
    fn delete_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;
}

/// A sqlx error as text, with `secret` (a password) masked wherever it appears.
pub fn describe(err: &sqlx::Error, secret: Option<&str>) -> StoreError {
    let text = err.to_string();
    StoreError(match secret.filter(|s| !s.is_empty()) {
        Some(s) => text.replace(s, "****"),
        None => text,
    })
}

/// Milliseconds, as Prisma's `TIMESTAMP(3)` keeps them.
pub fn millis(t: DateTime<Utc>) -> chrono::NaiveDateTime {
    let t = t.naive_utc();
    t.with_nanosecond((t.nanosecond() / 1_000_000) * 1_000_000).unwrap_or(t)
}

use chrono::Timelike;

/// A count as PostgreSQL's `INTEGER` holds it.
pub fn int(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A store that cannot work (its configuration is wrong): every write fails with `error`,
/// so rows go to the spool and the status says why.
pub struct Unusable {
    pub backend: &'static str,
    pub error: String,
}

impl Store for Unusable {
    fn backend(&self) -> &'static str {
        self.backend
    }

    fn location(&self) -> String {
        "(not configured correctly)".to_owned()
    }

    fn prepare(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { Err(StoreError(self.error.clone())) })
    }

    fn insert<'a>(&'a self, _rows: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move { Err(StoreError(self.error.clone())) })
    }

    fn delete_before(
        &self,
        _before: DateTime<Utc>,
        _limit: u32,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move { Err(StoreError(self.error.clone())) })
    }
}
