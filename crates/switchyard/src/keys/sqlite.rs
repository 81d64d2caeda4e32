//! Keys in SQLite (the default): `<state dir>/keys.sqlite3`, beside the ledger, WAL. The same
//! table and column names as LiteLLM's; lists and objects are JSON text, times RFC 3339 UTC.
//! Rows are read as JSON with SQLite's `json_object`, so both engines hand the cache the same
//! shape.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;
use sqlx::sqlite::SqlitePool;
use tokio::sync::OnceCell;

use super::store::{Change, Rows, Store, StoreError, version_sql};
use super::table::{Kind, Table, sqlite_ddl};
use crate::ledger::describe;

pub struct Sqlite {
    pool: SqlitePool,
    path: PathBuf,
    ready: OnceCell<()>,
}

impl Sqlite {
    pub fn new(path: &Path) -> Result<Self, StoreError> {
        let pool = crate::sqlite_file::pool(path, 2, Duration::from_secs(5));
        Ok(Self { pool, path: path.to_owned(), ready: OnceCell::new() })
    }

    async fn prepared(&self) -> Result<(), StoreError> {
        self.ready
            .get_or_try_init(|| async {
                for statement in sqlite_ddl() {
                    sqlx::query(&statement)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| describe(&e, None))?;
                }
                Ok::<(), StoreError>(())
            })
            .await
            .map(|_| ())
    }
}

/// `SELECT json_object('col', col, …)`: JSON columns embedded as JSON, not as strings.
fn select(t: Table) -> String {
    let pairs: Vec<String> = t
        .columns()
        .iter()
        .map(|(c, kind)| match kind {
            Kind::Json => format!("'{c}', json(\"{c}\")"),
            _ => format!("'{c}', \"{c}\""),
        })
        .collect();
    format!("SELECT json_object({}) FROM \"{}\"", pairs.join(", "), t.name())
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

fn bind<'q>(q: Query<'q>, kind: Kind, value: Option<&Value>) -> Query<'q> {
    match (kind, value) {
        (_, None | Some(Value::Null)) => q.bind(None::<String>),
        (Kind::Json, Some(v)) => q.bind(v.to_string()),
        (Kind::Bool, Some(v)) => q.bind(v.as_bool().map(i64::from)),
        (Kind::Int, Some(v)) => q.bind(v.as_i64()),
        (Kind::Real, Some(v)) => q.bind(v.as_f64()),
        (_, Some(Value::String(s))) => q.bind(s.clone()),
        (_, Some(v)) => q.bind(v.to_string()),
    }
}

impl Store for Sqlite {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> BoxFuture<'_, Result<Rows, StoreError>> {
        Box::pin(async move {
            self.prepared().await?;
            let mut rows = Rows::new();
            for t in Table::ALL {
                let text: Vec<String> = sqlx::query_scalar(&select(t))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| describe(&e, None))?;
                rows.insert(t, text.iter().filter_map(|r| serde_json::from_str(r).ok()).collect());
            }
            Ok(rows)
        })
    }

    fn version(&self) -> BoxFuture<'_, Result<String, StoreError>> {
        Box::pin(async move {
            self.prepared().await?;
            sqlx::query_scalar(&version_sql())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| describe(&e, None))
        })
    }

    fn write<'a>(&'a self, changes: &'a [Change]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.prepared().await?;
            let mut tx = self.pool.begin().await.map_err(|e| describe(&e, None))?;
            for change in changes {
                match change {
                    Change::Upsert(t, row) => {
                        let cols: Vec<(&str, Kind)> = t
                            .columns()
                            .iter()
                            .copied()
                            .filter(|(c, _)| row.contains_key(*c))
                            .collect();
                        let names: Vec<String> =
                            cols.iter().map(|(c, _)| format!("\"{c}\"")).collect();
                        let slots = vec!["?"; cols.len()].join(", ");
                        let updates: Vec<String> = cols
                            .iter()
                            .filter(|(c, _)| *c != t.id())
                            .map(|(c, _)| format!("\"{c}\" = excluded.\"{c}\""))
                            .collect();
                        let sql = format!(
                            "INSERT INTO \"{}\" ({}) VALUES ({slots}) ON CONFLICT(\"{}\") DO \
                             UPDATE SET {}",
                            t.name(),
                            names.join(", "),
                            t.id(),
                            updates.join(", ")
                        );
                        let mut q = sqlx::query(&sql);
                        for (c, kind) in &cols {
                            q = bind(q, *kind, row.get(*c));
                        }
                        q.execute(&mut *tx).await.map_err(|e| describe(&e, None))?;
                    }
                    Change::Delete(t, ids) => {
                        for id in ids {
                            sqlx::query(&format!(
                                "DELETE FROM \"{}\" WHERE \"{}\" = ?",
                                t.name(),
                                t.id()
                            ))
                            .bind(id)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| describe(&e, None))?;
                        }
                    }
                }
            }
            sqlx::query(
                "UPDATE \"Switchyard_KeyChanges\" SET \"seq\" = \"seq\" + 1, \"changed_at\" = \
                 strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE \"id\" = 1",
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| describe(&e, None))?;
            tx.commit().await.map_err(|e| describe(&e, None))
        })
    }
}
