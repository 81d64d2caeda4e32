//! The default ledger: SQLite at `<state dir>/ledger.sqlite3` (WAL), nothing to install.
//! Same table name and column names as LiteLLM's, so the same SQL reads both; what
//! LiteLLM's columns cannot hold has columns of its own here (cache tokens, key alias,
//! error class). `spend` is the exact decimal as text, NULL when unknown (never 0).
//! Times are UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`, so they sort and compare as text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sqlx::Sqlite as Lite;
use sqlx::sqlite::SqlitePool;

use super::postgres::metadata;
use super::record::Record;
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
}

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
        Ok(Self { pool, path: path.to_owned(), insert_one: insert(1), insert_chunk: insert(CHUNK) })
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
            Ok(())
        })
    }

    fn insert<'a>(&'a self, rows: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if rows.is_empty() {
                return Ok(());
            }
            let mut tx = self.pool.begin().await.map_err(|e| describe(&e, None))?;
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
            let done = sqlx::query(
                "DELETE FROM \"LiteLLM_SpendLogs\" WHERE \"request_id\" IN (SELECT \"request_id\" \
                 FROM \"LiteLLM_SpendLogs\" WHERE \"startTime\" < ?1 LIMIT ?2)",
            )
            .bind(time(before))
            .bind(i64::from(limit))
            .execute(&self.pool)
            .await
            .map_err(|e| describe(&e, None))?;
            Ok(done.rows_affected())
        })
    }
}
