//! The ledger in PostgreSQL, in LiteLLM's own table `"LiteLLM_SpendLogs"` (its Prisma
//! schema's columns, types and defaults), so a team's SQL and dashboards keep working.
//!
//! **Invariant:** an existing table is used as it is: never dropped, never altered. Only
//! the columns found in `information_schema` at startup are written; a missing one is
//! skipped. `spend` is `DOUBLE PRECISION NOT NULL DEFAULT 0.0` there, so an unknown cost is
//! written as 0.0 with `metadata.spend_unknown = true`; the exact decimal is in
//! `metadata.spend_decimal`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::query_builder::Separated;
use sqlx::types::Json;
use sqlx::{Postgres as Pg, QueryBuilder};
use tokio::sync::OnceCell;

use super::record::Record;
use super::store::{Store, StoreError, describe, int, millis};

/// LiteLLM's DDL (schema.prisma `model LiteLLM_SpendLogs`, as Prisma migrates it), made
/// conditional.
pub const CREATE_TABLE: &str = r#"CREATE TABLE IF NOT EXISTS "LiteLLM_SpendLogs" (
    "request_id" TEXT NOT NULL,
    "call_type" TEXT NOT NULL,
    "api_key" TEXT NOT NULL DEFAULT '',
    "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "total_tokens" INTEGER NOT NULL DEFAULT 0,
    "prompt_tokens" INTEGER NOT NULL DEFAULT 0,
    "completion_tokens" INTEGER NOT NULL DEFAULT 0,
    "startTime" TIMESTAMP(3) NOT NULL,
    "endTime" TIMESTAMP(3) NOT NULL,
    "request_duration_ms" INTEGER,
    "completionStartTime" TIMESTAMP(3),
    "model" TEXT NOT NULL DEFAULT '',
    "model_id" TEXT DEFAULT '',
    "model_group" TEXT DEFAULT '',
    "custom_llm_provider" TEXT DEFAULT '',
    "api_base" TEXT DEFAULT '',
    "user" TEXT DEFAULT '',
    "metadata" JSONB DEFAULT '{}',
    "cache_hit" TEXT DEFAULT '',
    "cache_key" TEXT DEFAULT '',
    "request_tags" JSONB DEFAULT '[]',
    "team_id" TEXT,
    "organization_id" TEXT,
    "end_user" TEXT,
    "requester_ip_address" TEXT,
    "messages" JSONB DEFAULT '{}',
    "response" JSONB DEFAULT '{}',
    "session_id" TEXT,
    "status" TEXT,
    "mcp_namespaced_tool_name" TEXT,
    "agent_id" TEXT,
    "proxy_server_request" JSONB DEFAULT '{}',
    CONSTRAINT "LiteLLM_SpendLogs_pkey" PRIMARY KEY ("request_id")
)"#;

/// LiteLLM's indexes and the ones the queries people run need (`(api_key, "startTime")`,
/// tags): `(columns it needs, statement)`. An index whose column the table lacks is
/// skipped; one that cannot be created is a warning, not a failure.
pub const INDEXES: &[(&[&str], &str)] = &[
    (
        &["startTime"],
        r#"CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_startTime_idx" ON "LiteLLM_SpendLogs"("startTime")"#,
    ),
    (
        &["startTime", "request_id"],
        r#"CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_startTime_request_id_idx" ON "LiteLLM_SpendLogs"("startTime", "request_id")"#,
    ),
    (
        &["end_user"],
        r#"CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_end_user_idx" ON "LiteLLM_SpendLogs"("end_user")"#,
    ),
    (
        &["session_id"],
        r#"CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_session_id_idx" ON "LiteLLM_SpendLogs"("session_id")"#,
    ),
    (
        &["api_key", "startTime"],
        r#"CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_api_key_startTime_idx" ON "LiteLLM_SpendLogs"("api_key", "startTime")"#,
    ),
    (
        &["request_tags"],
        r#"CREATE INDEX IF NOT EXISTS "LiteLLM_SpendLogs_request_tags_idx" ON "LiteLLM_SpendLogs" USING GIN ("request_tags")"#,
    ),
];

/// The columns Switchyard writes, in LiteLLM's names.
const COLUMNS: &[&str] = &[
    "request_id",
    "call_type",
    "api_key",
    "spend",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "startTime",
    "endTime",
    "request_duration_ms",
    "completionStartTime",
    "model",
    "model_id",
    "model_group",
    "custom_llm_provider",
    "api_base",
    "user",
    "metadata",
    "cache_hit",
    "cache_key",
    "request_tags",
    "team_id",
    "end_user",
    "session_id",
    "status",
];

pub struct Postgres {
    pool: PgPool,
    password: Option<String>,
    location: String,
    /// The subset of [`COLUMNS`] the table has, learnt once.
    columns: OnceCell<Vec<&'static str>>,
}

impl Postgres {
    /// A lazily connecting pool for `url` (nothing is contacted here).
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let password = url::password(url);
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
            return Err(StoreError(
                "the ledger needs a postgres:// or postgresql:// URL".to_owned(),
            ));
        }
        let options: PgConnectOptions =
            url.parse().map_err(|e| describe(&e, password.as_deref()))?;
        let location = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("postgres")
        );
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(options);
        Ok(Self { pool, password, location, columns: OnceCell::new() })
    }

    fn err(&self, e: &sqlx::Error) -> StoreError {
        describe(e, self.password.as_deref())
    }

    async fn discover(&self) -> Result<Vec<&'static str>, StoreError> {
        sqlx::query(CREATE_TABLE).execute(&self.pool).await.map_err(|e| self.err(&e))?;
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'LiteLLM_SpendLogs'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(&e))?;
        let columns: Vec<&'static str> =
            COLUMNS.iter().copied().filter(|c| found.iter().any(|f| f == c)).collect();
        for missing in COLUMNS.iter().filter(|c| !columns.contains(c)) {
            tracing::warn!(
                column = missing,
                "\"LiteLLM_SpendLogs\" has no such column; not written"
            );
        }
        for (needs, statement) in INDEXES {
            if !needs.iter().all(|c| found.iter().any(|f| f == c)) {
                continue;
            }
            if let Err(e) = sqlx::query(statement).execute(&self.pool).await {
                tracing::warn!(error = %self.err(&e), "ledger: could not create an index on \"LiteLLM_SpendLogs\"");
            }
        }
        Ok(columns)
    }
}

impl Store for Postgres {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn prepare(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.columns.get_or_try_init(|| self.discover()).await?;
            Ok(())
        })
    }

    fn insert<'a>(&'a self, rows: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let columns = self.columns.get_or_try_init(|| self.discover()).await?;
            if rows.is_empty() {
                return Ok(());
            }
            let names: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
            let mut q = QueryBuilder::<Pg>::new(format!(
                "INSERT INTO \"LiteLLM_SpendLogs\" ({}) ",
                names.join(", ")
            ));
            q.push_values(rows, |mut b, r| {
                for column in columns {
                    push(&mut b, column, r);
                }
            });
            q.push(" ON CONFLICT (\"request_id\") DO NOTHING");
            q.build().execute(&self.pool).await.map_err(|e| self.err(&e))?;
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
                 FROM \"LiteLLM_SpendLogs\" WHERE \"startTime\" < $1 LIMIT $2)",
            )
            .bind(millis(before))
            .bind(i64::from(limit))
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(&e))?;
            Ok(done.rows_affected())
        })
    }
}

fn push(b: &mut Separated<'_, '_, Pg, &'static str>, column: &str, r: &Record) {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    match column {
        "request_id" => b.push_bind(r.request_id.clone()),
        "call_type" => b.push_bind(r.call_type.clone()),
        "api_key" => b.push_bind(r.api_key.clone()),
        "spend" => b.push_bind(r.spend.and_then(|s| s.to_f64()).unwrap_or(0.0)),
        "total_tokens" => b.push_bind(int(r.tokens.total())),
        "prompt_tokens" => b.push_bind(int(r.tokens.prompt)),
        "completion_tokens" => b.push_bind(int(r.tokens.completion)),
        "startTime" => b.push_bind(millis(r.start_time)),
        "endTime" => b.push_bind(millis(r.end_time)),
        "request_duration_ms" => b.push_bind(int(r.duration_ms)),
        "completionStartTime" => b.push_bind(r.first_token_time.map(millis)),
        "model" => b.push_bind(r.model.clone()),
        "model_id" => b.push_bind(text(&r.model_id)),
        "model_group" => b.push_bind(r.model_group.clone()),
        "custom_llm_provider" => b.push_bind(text(&r.provider)),
        "api_base" => b.push_bind(text(&r.api_base)),
        "user" => b.push_bind(text(&r.user)),
        "metadata" => b.push_bind(Json(metadata(r))),
        "cache_hit" => b.push_bind(if r.cache_hit { "True" } else { "False" }),
        "cache_key" => b.push_bind(""),
        "request_tags" => b.push_bind(Json(r.tags.clone())),
        "team_id" => b.push_bind(r.team_id.clone()),
        "end_user" => b.push_bind(r.end_user.clone()),
        "session_id" => b.push_bind(r.session_id.clone()),
        "status" => b.push_bind(r.status.as_str()),
        _ => b.push("NULL"),
    };
}

/// LiteLLM's `metadata` plus what its columns cannot hold: cache tokens, the key alias,
/// the exact cost, whether it is unknown, the error class.
pub fn metadata(r: &Record) -> Value {
    let mut m = r.metadata.clone();
    if let Some(alias) = &r.key_alias {
        m.insert("user_api_key_alias".into(), Value::String(alias.clone()));
    }
    m.insert("spend_unknown".into(), Value::Bool(r.spend.is_none()));
    if let Some(spend) = r.spend {
        m.insert("spend_decimal".into(), Value::String(spend.to_string()));
    }
    m.insert("cache_read_input_tokens".into(), Value::from(r.tokens.cache_read));
    m.insert("cache_creation_input_tokens".into(), Value::from(r.tokens.cache_write));
    if let Some(class) = &r.error_class {
        m.insert("error_class".into(), Value::String(class.clone()));
    }
    Value::Object(m)
}

pub(super) mod url {
    /// The password of a `postgres://user:password@host/db` URL, to mask it in errors.
    pub fn password(url: &str) -> Option<String> {
        let rest = url.split_once("://")?.1;
        let authority = rest.split(['/', '?']).next()?;
        let userinfo = authority.rsplit_once('@')?.0;
        let password = userinfo.split_once(':')?.1;
        Some(percent_encoding::percent_decode_str(password).decode_utf8_lossy().into_owned())
            .filter(|p| !p.is_empty())
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:****@host/db`, for messages.
pub fn redact_url(url: &str) -> String {
    match url::password(url) {
        Some(_) => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let (authority, tail) = match rest.find(['/', '?']) {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let (userinfo, host) = authority.rsplit_once('@').unwrap_or(("", authority));
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:****@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_leave_a_url() {
        let url = "postgres://ledger:s%40cret@db.internal:5433/spend?sslmode=disable";
        assert_eq!(url::password(url).as_deref(), Some("s@cret"));
        assert_eq!(
            redact_url(url),
            "postgres://ledger:****@db.internal:5433/spend?sslmode=disable"
        );
        assert_eq!(redact_url("postgres://127.0.0.1/x"), "postgres://127.0.0.1/x");
    }
}
