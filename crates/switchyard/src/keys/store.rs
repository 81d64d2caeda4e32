//! Where keys, teams, users, end users and budgets live, behind one small trait: SQLite in
//! the state directory by default, LiteLLM's own tables in PostgreSQL with `database_url`.
//! Rows travel as JSON objects keyed by column name, so one description of the tables
//! (`table.rs`) drives both engines and a LiteLLM table's extra columns are simply ignored.

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

pub use crate::ledger::StoreError;

use super::table::Table;

/// One write, applied with the others of its batch in one transaction.
#[derive(Debug, Clone)]
pub enum Change {
    /// Insert or replace the row whose id column matches.
    Upsert(Table, Map<String, Value>),
    /// Delete the rows with these ids.
    Delete(Table, Vec<String>),
}

/// Every row of every table, as JSON objects.
pub type Rows = HashMap<Table, Vec<Value>>;

pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// A path, or `host:port/database`; never a password.
    fn location(&self) -> String;
    /// Every row (tables are created when absent first).
    fn load(&self) -> BoxFuture<'_, Result<Rows, StoreError>>;
    /// A cheap fingerprint of the tables: it changes whenever a row is written or deleted
    /// through Switchyard (the change counter), and when another writer adds, removes or
    /// updates a key or team (counts and the newest `updated_at`).
    fn version(&self) -> BoxFuture<'_, Result<String, StoreError>>;
    /// Applies `changes` in one transaction and bumps the change counter.
    fn write<'a>(&'a self, changes: &'a [Change]) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The fingerprint query, the same SQL on both engines.
pub fn version_sql() -> String {
    let mut parts =
        vec![r#"(SELECT "seq" FROM "Switchyard_KeyChanges" WHERE "id" = 1)"#.to_owned()];
    for t in Table::ALL {
        parts.push(format!("(SELECT count(*) FROM \"{}\")", t.name()));
        if t.has_updated_at() {
            parts.push(format!("(SELECT max(\"updated_at\") FROM \"{}\")", t.name()));
        }
    }
    let cast: Vec<String> =
        parts.into_iter().map(|p| format!("coalesce(CAST({p} AS TEXT), '-')")).collect();
    format!("SELECT {}", cast.join(" || '/' || "))
}
