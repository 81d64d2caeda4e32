//! The default ledger: SQLite at `<state dir>/ledger.sqlite3` (WAL), nothing to install.
//! Same table name and column names as LiteLLM's, so the same SQL reads both; what
//! LiteLLM's columns cannot hold has columns of its own here (cache tokens, key alias,
//! error class). `spend` is the exact decimal as text, NULL when unknown (never 0).
//! Times are UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`, so they sort and compare as text.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use futures_util::future::BoxFuture;
use sqlx::Sqlite as Lite;
use sqlx::sqlite::SqlitePool;

use super::postgres::metadata;
use super::record::Record;
use super::rollup::{Deltas, Facts, add_facts};
use super::store::{Store, StoreError, describe};

pub const MIGRATIONS: &[&str] = &[
    r#"CREATE TABLE IF NOT EXISTS "LiteLLM_SpendLogs" (
    "request_id" TEXT NOT NULL PRIMARY KEY,
    "call_type" TEXT NOT NULL,
    "api_key" TEXT NOT NULL DEFAULT '',
    "spend" TEXT,
    "total_tokens" INTEGER NOT NULL DEFAULT 0,
    "prompt_tokens" INTEGER NOT NULL DEFAULT 0,
    "completion_tokens" INTEGER NOT NULL DEFAULT 0,
    "cache_read_input_tokens" INTEGER NOT NULL DEFAULT 0,
    "cache_creation_input_tokens" INTEGER NOT NULL DEFAULT 0,
    "startTime" TEXT NOT NULL,
    "endTime" TEXT NOT NULL,
    "request_duration_ms" INTEGER,
    "completionStartTime" TEXT,
    "model" TEXT NOT NULL DEFAULT '',
    "model_id" TEXT DEFAULT '',
    "model_group" TEXT DEFAULT '',
    "custom_llm_provider" TEXT DEFAULT '',
    "api_base" TEXT DEFAULT '',
    "user" TEXT DEFAULT '',
    "key_alias" TEXT,
    "metadata" TEXT DEFAULT '{}',
    "cache_hit" TEXT DEFAULT '',
    "cache_key" TEXT DEFAULT '',
    "request_tags" TEXT DEFAULT '[]',
    "team_id" TEXT,
    "end_user" TEXT,
    "session_id" TEXT,
    "status" TEXT,
    "error_class" TEXT
)"#,
    r#"CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_startTime_idx" ON "LiteLLM_SpendLogs"("startTime")"#,
    r#"CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_api_key_startTime_idx" ON "LiteLLM_SpendLogs"("api_key", "startTime")"#,
    r#"CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_end_user_idx" ON "LiteLLM_SpendLogs"("end_user")"#,
    r#"CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_session_id_idx" ON "LiteLLM_SpendLogs"("session_id")"#,
];

const COLUMNS: &str = r#""request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens", "completion_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "startTime", "endTime", "request_duration_ms", "completionStartTime", "model", "model_id", "model_group", "custom_llm_provider", "api_base", "user", "key_alias", "metadata", "cache_hit", "request_tags", "team_id", "end_user", "session_id", "status", "error_class""#;

pub struct Sqlite {
    pool: SqlitePool,
    path: PathBuf,
    /// `INSERT OR IGNORE … VALUES (?, …)` for one row.
    insert_one: String,
    /// The same for [`CHUNK`] rows.
    insert_chunk: String,
    /// One and [`DELTAS`] rows added to the hourly rollup.
    delta_one: String,
    delta_chunk: String,
}

/// Rollup rows per statement: 14 parameters each.
const DELTAS: usize = 64;

/// Rows per multi-row statement: a full batch is a few statements (one round trip each to
/// SQLite's worker thread) instead of one per row, and only two statements are ever
/// compiled. 40 rows × 28 columns stays far below SQLite's parameter limit.
const CHUNK: usize = 40;

impl Sqlite {
    pub fn new(path: &Path) -> Result<Self, StoreError> {
        // One writer: one connection.
        let pool = crate::sqlite_file::pool(path, 1, Duration::from_secs(5));
        let slots = format!("({})", vec!["?"; COLUMNS.split(',').count()].join(", "));
        let insert = |rows: usize| {
            format!(
                "INSERT OR IGNORE INTO \"LiteLLM_SpendLogs\" ({COLUMNS}) VALUES {}",
                vec![slots.as_str(); rows].join(", ")
            )
        };
        let rollup = super::rollup::Sql { postgres: false };
        Ok(Self {
            pool,
            path: path.to_owned(),
            insert_one: insert(1),
            insert_chunk: insert(CHUNK),
            delta_one: rollup.delta_upsert(1),
            delta_chunk: rollup.delta_upsert(DELTAS),
        })
    }
}

impl Sqlite {
    /// The hourly rollup ([`super::rollup`]): table, triggers and backfill in one
    /// transaction, once.
    async fn create_rollup(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let exists: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        )
        .bind(super::rollup::TABLE)
        .fetch_one(&mut *tx)
        .await?;
        if !exists {
            sqlx::query(&(super::rollup::Sql { postgres: false }).sqlite_table())
                .execute(&mut *tx)
                .await?;
            // The rows already there (a ledger an older version wrote).
            let mut deltas = Deltas::new();
            let sql = Facts::sql("1 = 1");
            let mut rows = sqlx::query(&sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                add_facts(&mut deltas, Facts::read(&row), 1);
            }
            drop(rows);
            self.add_deltas(&mut tx, deltas).await?;
        }
        tx.commit().await
    }

    async fn add_deltas(
        &self,
        tx: &mut sqlx::Transaction<'_, Lite>,
        deltas: Deltas,
    ) -> Result<(), sqlx::Error> {
        let deltas: Vec<DeltaRow> = deltas.into_iter().collect();
        let mut chunks = deltas.chunks_exact(DELTAS);
        for chunk in &mut chunks {
            let mut q = sqlx::query(&self.delta_chunk);
            for d in chunk {
                q = bind_delta(q, d);
            }
            q.execute(&mut **tx).await?;
        }
        for d in chunks.remainder() {
            bind_delta(sqlx::query(&self.delta_one), d).execute(&mut **tx).await?;
        }
        Ok(())
    }
}

type Insert<'q> = sqlx::query::Query<'q, Lite, sqlx::sqlite::SqliteArguments<'q>>;

fn bind<'q>(q: Insert<'q>, r: &Record) -> Insert<'q> {
    q.bind(r.request_id.clone())
        .bind(r.call_type.clone())
        .bind(r.api_key.clone())
        .bind(r.spend.map(|s| s.to_string()))
        .bind(signed(r.tokens.total()))
        .bind(signed(r.tokens.prompt))
        .bind(signed(r.tokens.completion))
        .bind(signed(r.tokens.cache_read))
        .bind(signed(r.tokens.cache_write))
        .bind(time(r.start_time))
        .bind(time(r.end_time))
        .bind(signed(r.duration_ms))
        .bind(r.first_token_time.map(time))
        .bind(r.model.clone())
        .bind(r.model_id.clone().unwrap_or_default())
        .bind(r.model_group.clone())
        .bind(r.provider.clone().unwrap_or_default())
        .bind(r.api_base.clone().unwrap_or_default())
        .bind(r.user.clone().unwrap_or_default())
        .bind(r.key_alias.clone())
        .bind(serde_json::to_string(&metadata(r)).unwrap_or_else(|_| "{}".to_owned()))
        .bind(if r.cache_hit { "True" } else { "False" })
        .bind(serde_json::Value::from(r.tags.clone()).to_string())
        .bind(r.team_id.clone())
        .bind(r.end_user.clone())
        .bind(r.session_id.clone())
        .bind(r.status.as_str())
        .bind(r.error_class.clone())
}

type DeltaRow = ((String, &'static str, String), super::rollup::Delta);

fn bind_delta<'q>(q: Insert<'q>, ((hour, dim, value), d): &'q DeltaRow) -> Insert<'q> {
    let rest = (!d.rest.is_empty()).then(|| d.rest.join(","));
    q.bind(hour.as_str())
        .bind(*dim)
        .bind(value.as_str())
        .bind(d.label.as_deref())
        .bind(d.requests)
        .bind(d.failed)
        .bind(d.hits)
        .bind(d.pt)
        .bind(d.ct)
        .bind(d.crt)
        .bind(d.cwt)
        .bind(d.units)
        .bind(rest)
        .bind(d.priced)
}

/// `2026-12-03T17:56:02.123Z`.
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store for Sqlite {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn prepare(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            for statement in MIGRATIONS {
                sqlx::query(statement).execute(&self.pool).await.map_err(|e| describe(&e, None))?;
            }
            self.create_rollup().await.map_err(|e| describe(&e, None))
        })
    }

    fn insert<'a>(&'a self, rows: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if rows.is_empty() {
                return Ok(());
            }
            let mut tx = self.pool.begin().await.map_err(|e| describe(&e, None))?;
            // Rows this statement inserts get rowids above the largest so far: those, and not
            // the ones `OR IGNORE` skipped (a replay), are added to the rollup.
            let last: i64 =
                sqlx::query_scalar(r#"SELECT coalesce(max(rowid), 0) FROM "LiteLLM_SpendLogs""#)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| describe(&e, None))?;
            let mut chunks = rows.chunks_exact(CHUNK);
            for chunk in &mut chunks {
                let mut q = sqlx::query(&self.insert_chunk);
                for r in chunk {
                    q = bind(q, r);
                }
                q.execute(&mut *tx).await.map_err(|e| describe(&e, None))?;
            }
            for r in chunks.remainder() {
                bind(sqlx::query(&self.insert_one), r)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| describe(&e, None))?;
            }
            let fresh: Vec<String> = sqlx::query_scalar(
                r#"SELECT "request_id" FROM "LiteLLM_SpendLogs" WHERE rowid > ?1"#,
            )
            .bind(last)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| describe(&e, None))?;
            let mut fresh: HashSet<&str> = fresh.iter().map(String::as_str).collect();
            let mut deltas = Deltas::new();
            // A batch naming one request twice inserted its first row.
            for r in rows.iter().filter(|r| fresh.remove(r.request_id.as_str())) {
                add_facts(&mut deltas, Facts::of(r), 1);
            }
            self.add_deltas(&mut tx, deltas).await.map_err(|e| describe(&e, None))?;
            tx.commit().await.map_err(|e| describe(&e, None))?;
            Ok(())
        })
    }

    fn delete_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let err = |e: sqlx::Error| describe(&e, None);
            // The oldest rows, in an order both statements see alike; the rollup loses what
            // they added in the same transaction.
            let oldest = "t.\"request_id\" IN (SELECT \"request_id\" FROM \"LiteLLM_SpendLogs\" \
                          WHERE \"startTime\" < ?1 ORDER BY \"startTime\", \"request_id\" LIMIT ?2)";
            let mut tx = self.pool.begin().await.map_err(err)?;
            let mut deltas = Deltas::new();
            let sql = Facts::sql(oldest);
            let mut rows =
                sqlx::query(&sql).bind(time(before)).bind(i64::from(limit)).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await.map_err(err)? {
                add_facts(&mut deltas, Facts::read(&row), -1);
            }
            drop(rows);
            let done =
                sqlx::query(&format!("DELETE FROM \"LiteLLM_SpendLogs\" AS t WHERE {oldest}"))
                    .bind(time(before))
                    .bind(i64::from(limit))
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            self.add_deltas(&mut tx, deltas).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(done.rows_affected())
        })
    }
}
