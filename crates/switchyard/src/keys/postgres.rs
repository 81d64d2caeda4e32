//! Keys in PostgreSQL, in LiteLLM's own tables (`"LiteLLM_VerificationToken"` and friends):
//! a LiteLLM database's keys keep working, and keys created here work in LiteLLM.
//!
//! **Invariant:** an existing table is used as it is, never altered: the columns present are
//! learnt from `information_schema` once, and only those are written. Rows are read with
//! `row_to_json` and written with `json_populate_record`, so PostgreSQL converts between JSON and
//! LiteLLM's column types (`TEXT[]`, `JSONB`, `BIGINT`, `TIMESTAMP(3)`).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;
use sqlx::postgres::PgPool;
use tokio::sync::OnceCell;

use super::store::{Change, Rows, Store, StoreError, version_sql};
use super::table::{POSTGRES_DDL, Table};
use crate::ledger::describe;

pub struct Postgres {
    pool: PgPool,
    password: Option<String>,
    location: String,
    /// Per table, the subset of our columns the table has.
    columns: OnceCell<HashMap<Table, Vec<&'static str>>>,
}

impl Postgres {
    /// A lazily connecting pool for `url` (nothing is contacted here).
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let (pool, password, location) =
            crate::ledger::postgres::lazy_pool(url, "keys need", Duration::from_secs(2))?;
        Ok(Self { pool, password, location, columns: OnceCell::new() })
    }

    fn err(&self, e: &sqlx::Error) -> StoreError {
        describe(e, self.password.as_deref())
    }

    async fn prepared(&self) -> Result<&HashMap<Table, Vec<&'static str>>, StoreError> {
        self.columns
            .get_or_try_init(|| async {
                crate::ledger::postgres::create_serialized(&self.pool, POSTGRES_DDL)
                    .await
                    .map_err(|e| self.err(&e))?;
                let mut out = HashMap::new();
                for t in Table::ALL {
                    let found: Vec<String> = sqlx::query_scalar(
                        "SELECT column_name::text FROM information_schema.columns \
                         WHERE table_schema = current_schema() AND table_name = $1",
                    )
                    .bind(t.name())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.err(&e))?;
                    let cols: Vec<&'static str> = t
                        .columns()
                        .iter()
                        .map(|(c, _)| *c)
                        .filter(|c| found.iter().any(|f| f == c))
                        .collect();
                    out.insert(t, cols);
                }
                Ok(out)
            })
            .await
    }
}

impl Store for Postgres {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn load(&self) -> BoxFuture<'_, Result<Rows, StoreError>> {
        Box::pin(async move {
            self.prepared().await?;
            let mut rows = Rows::new();
            for t in Table::ALL {
                let text: Vec<String> = sqlx::query_scalar(&format!(
                    "SELECT row_to_json(t)::text FROM \"{}\" t",
                    t.name()
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(&e))?;
                let values =
                    text.iter().filter_map(|r| serde_json::from_str::<Value>(r).ok()).collect();
                rows.insert(t, values);
            }
            Ok(rows)
        })
    }

    fn version(&self) -> BoxFuture<'_, Result<String, StoreError>> {
        Box::pin(async move {
            self.prepared().await?;
            sqlx::query_scalar(&version_sql()).fetch_one(&self.pool).await.map_err(|e| self.err(&e))
        })
    }

    fn write<'a>(&'a self, changes: &'a [Change]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let columns = self.prepared().await?;
            let mut tx = self.pool.begin().await.map_err(|e| self.err(&e))?;
            for change in changes {
                match change {
                    Change::Upsert(t, row) => {
                        let cols: Vec<&str> =
                            columns[t].iter().copied().filter(|c| row.contains_key(*c)).collect();
                        let quoted: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
                        let updates: Vec<String> = cols
                            .iter()
                            .filter(|c| **c != t.id())
                            .map(|c| format!("\"{c}\" = EXCLUDED.\"{c}\""))
                            .collect();
                        let sql = format!(
                            "INSERT INTO \"{table}\" ({cols}) SELECT {cols} FROM \
                             json_populate_record(NULL::\"{table}\", $1::json) \
                             ON CONFLICT (\"{id}\") DO UPDATE SET {updates}",
                            table = t.name(),
                            cols = quoted.join(", "),
                            id = t.id(),
                            updates = updates.join(", "),
                        );
                        let json = Value::Object(row.clone()).to_string();
                        sqlx::query(&sql)
                            .bind(json)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| self.err(&e))?;
                    }
                    Change::Delete(t, ids) => {
                        sqlx::query(&format!(
                            "DELETE FROM \"{}\" WHERE \"{}\" = ANY($1)",
                            t.name(),
                            t.id()
                        ))
                        .bind(ids)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(&e))?;
                    }
                }
            }
            sqlx::query(
                "UPDATE \"Switchyard_KeyChanges\" SET \"seq\" = \"seq\" + 1, \
                 \"changed_at\" = CURRENT_TIMESTAMP WHERE \"id\" = 1",
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(&e))?;
            tx.commit().await.map_err(|e| self.err(&e))
        })
    }
}
