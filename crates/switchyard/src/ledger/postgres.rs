//! The ledger in PostgreSQL, in LiteLLM's own table `"LiteLLM_SpendLogs"` (its Prisma
//! schema's columns, types and defaults), so a team's SQL and dashboards keep working.
//!
//! **Invariant:** an existing table is used as it is: never dropped, never altered. Only
//! the columns found in `information_schema` at startup are written; a missing one is
//! skipped. `spend` is `DOUBLE PRECISION NOT NULL DEFAULT 0.0` there, so an unknown cost is
//! written as 0.0 with `metadata.spend_unknown = true`; the exact decimal is in
//! `metadata.spend_decimal`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Postgres as Pg;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::types::Json;
use tokio::sync::OnceCell;

use super::record::Record;
use super::store::{Store, StoreError, describe, int, millis};
use super::totals::{TOTALS, totals_of_rows, with_totals};

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
    /// The insert statement for the subset of [`COLUMNS`] the table has, learnt once.
    insert: OnceCell<Insert>,
    /// The statement as last built with the totals tables found then, and when: rebuilt
    /// while a table is missing (the key store may create its tables after the ledger
    /// started).
    statement: tokio::sync::Mutex<Option<(Statements, Instant)>>,
    rollup: bool,
}

/// How often tables that were missing are looked for again.
const RECHECK: Duration = Duration::from_secs(30);

/// One statement for every batch: each column is bound as one array and `UNNEST`ed, so
/// PostgreSQL parses and plans it once per connection (a multi-row `VALUES` list with a
/// parameter per cell is a new statement for every batch size, ~12,500 parameters each).
struct Insert {
    columns: Vec<&'static str>,
    sql: String,
    /// `COPY … FROM STDIN (FORMAT binary)` into the same columns.
    copy: String,
    /// The hourly rollup exists: a `COPY`ed batch is summed into it by the writer.
    rollup: Option<String>,
}

impl Insert {
    fn new(columns: Vec<&'static str>) -> Self {
        let names: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}[]", i + 1, pg_type(c)))
            .collect();
        let sql = format!(
            "INSERT INTO \"LiteLLM_SpendLogs\" ({}) SELECT * FROM UNNEST({}) \
             ON CONFLICT (\"request_id\") DO NOTHING",
            names.join(", "),
            arrays.join(", ")
        );
        let copy =
            format!("COPY \"LiteLLM_SpendLogs\" ({}) FROM STDIN (FORMAT binary)", names.join(", "));
        Self { columns, sql, copy, rollup: None }
    }
}

/// The statements of a batch, with the totals tables found when they were built.
#[derive(Clone)]
struct Statements {
    /// The insert with its totals (see [`with_totals`]), for a batch some of whose rows may
    /// be in the table already.
    insert: String,
    /// The totals of a batch `COPY`ed in whole (see [`totals_of_rows`]).
    totals: Option<String>,
    tables: Vec<(&'static str, &'static str, &'static str)>,
}

impl Postgres {
    /// A lazily connecting pool for `url` (nothing is contacted here).
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let (pool, password, location) =
            lazy_pool(url, "the ledger needs", Duration::from_secs(3))?;
        Ok(Self {
            pool,
            password,
            location,
            insert: OnceCell::new(),
            statement: tokio::sync::Mutex::new(None),
            rollup: true,
        })
    }

    /// A store that neither creates nor keeps the hourly rollup: what a benchmark compares
    /// the rollup's cost against.
    #[doc(hidden)]
    pub fn without_rollup(mut self) -> Self {
        self.rollup = false;
        self
    }

    fn err(&self, e: &sqlx::Error) -> StoreError {
        describe(e, self.password.as_deref())
    }

    async fn discover(&self) -> Result<Insert, StoreError> {
        create_serialized(&self.pool, &[CREATE_TABLE]).await.map_err(|e| self.err(&e))?;
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
            if let Err(e) = create_serialized(&self.pool, &[statement]).await {
                tracing::warn!(error = %self.err(&e), "ledger: could not create an index on \"LiteLLM_SpendLogs\"");
            }
        }
        let mut insert = Insert::new(columns);
        let summable = super::rollup::PG_COLUMNS.iter().all(|c| found.iter().any(|f| f == c));
        if self.rollup && summable {
            match create_rollup(&self.pool).await {
                Ok(()) => {
                    insert.rollup = Some((super::rollup::Sql { postgres: true }).pg_delta_upsert())
                }
                Err(e) => {
                    tracing::warn!(error = %self.err(&e), "ledger: could not create the hourly rollup; reports read the rows")
                }
            }
        } else if self.rollup {
            tracing::warn!(
                "ledger: \"LiteLLM_SpendLogs\" lacks columns the hourly rollup needs; reports read the rows"
            );
        }
        Ok(insert)
    }

    /// The batch statements: the insert, with the running totals of the LiteLLM tables that
    /// exist (see [`super::totals`]).
    async fn statements(&self, insert: &Insert) -> Result<Statements, StoreError> {
        let mut slot = self.statement.lock().await;
        if let Some((statements, at)) = &*slot
            && (statements.tables.len() == TOTALS.len() || at.elapsed() < RECHECK)
        {
            return Ok(statements.clone());
        }
        let logged = ["api_key", "team_id", "user", "end_user", "spend"];
        let mut tables = Vec::new();
        if logged.iter().all(|c| insert.columns.contains(c)) {
            for entry in TOTALS {
                let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                    .bind(format!("\"{}\"", entry.0))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| self.err(&e))?;
                if exists {
                    tables.push(*entry);
                }
            }
        }
        let statements = Statements {
            insert: with_totals(&insert.sql, &tables),
            totals: totals_of_rows(&tables),
            tables,
        };
        *slot = Some((statements.clone(), Instant::now()));
        Ok(statements)
    }

    /// Writes a batch with `COPY` (binary), its totals in the same transaction. PostgreSQL
    /// spends a fifth less CPU per row on `COPY` than on `INSERT … ON CONFLICT` (no
    /// speculative insertion, no executor per row, pages filled many rows at a time), and
    /// on this machine that CPU is taken from the gateway's. `COPY` inserts every row or
    /// none: `Ok(false)` when the database refused the batch (a row already there — a
    /// replay —, a value it does not take), for the caller to write it row by row with
    /// `INSERT … ON CONFLICT`; `Err` when the database could not be reached.
    async fn copy(
        &self,
        insert: &Insert,
        statements: &Statements,
        rows: &[Record],
    ) -> Result<bool, sqlx::Error> {
        let refused = |e: sqlx::Error| match e {
            sqlx::Error::Database(e) => {
                tracing::debug!(error = %e.message(), "ledger: COPY refused; rows inserted one by one");
                Ok(false)
            }
            other => Err(other),
        };
        let data = copy_data(&insert.columns, rows);
        let mut tx = self.pool.begin().await?;
        let copied = async {
            if insert.rollup.is_some() {
                // Every row of a `COPY` is inserted: the writer sums them itself (in Rust, a
                // fraction of the trigger's SQL), and the insert trigger leaves them alone.
                sqlx::query("SELECT set_config($1, 'writer', true)")
                    .bind(super::rollup::WRITER_SETTING)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut copy = tx.copy_in_raw(&insert.copy).await?;
            copy.send(data).await?;
            copy.finish().await?;
            if let Some(sql) = &insert.rollup {
                let d = super::rollup::PgDeltas::of(rows);
                let mut q = sqlx::query(sql).bind(d.hour).bind(d.dim).bind(d.value).bind(d.label);
                let [requests, failed, hits, pt, ct, crt, cwt, priced] = d.counts;
                for column in [requests, failed, hits, pt, ct, crt, cwt] {
                    q = q.bind(column);
                }
                q.bind(d.spend).bind(priced).execute(&mut *tx).await?;
            }
            if let Some(sql) = &statements.totals {
                let mut q = sqlx::query(sql);
                for (_, _, column) in &statements.tables {
                    q = bind_column(q, column, rows);
                }
                q = bind_column(q, "spend", rows);
                q.execute(&mut *tx).await?;
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        match copied {
            Ok(()) => tx.commit().await.map(|()| true).or_else(refused),
            Err(e) => refused(e),
        }
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
            self.insert.get_or_try_init(|| self.discover()).await?;
            Ok(())
        })
    }

    fn insert<'a>(&'a self, rows: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let insert = self.insert.get_or_try_init(|| self.discover()).await?;
            if rows.is_empty() {
                return Ok(());
            }
            let statements = self.statements(insert).await?;
            if self.copy(insert, &statements, rows).await.map_err(|e| self.err(&e))? {
                return Ok(());
            }
            let mut q = sqlx::query(&statements.insert);
            for column in &insert.columns {
                q = bind_column(q, column, rows);
            }
            q.execute(&self.pool).await.map_err(|e| self.err(&e))?;
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

/// The array type a column is bound as (the column's own type in LiteLLM's schema).
fn pg_type(column: &str) -> &'static str {
    match column {
        "spend" => "float8",
        "total_tokens" | "prompt_tokens" | "completion_tokens" | "request_duration_ms" => "int4",
        "startTime" | "endTime" | "completionStartTime" => "timestamp",
        "metadata" | "request_tags" => "jsonb",
        _ => "text",
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, Pg, sqlx::postgres::PgArguments>;

/// Binds `column` of every row as one array, in [`pg_type`]'s type.
fn bind_column<'q>(q: PgQuery<'q>, column: &str, rows: &'q [Record]) -> PgQuery<'q> {
    fn each<'r, T>(rows: &'r [Record], f: impl Fn(&'r Record) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    // Borrowed: the arrays point into the rows, nothing is copied before encoding.
    let text = |v: &'q Option<String>| v.as_deref().unwrap_or_default();
    match column {
        "request_id" => q.bind(each(rows, |r| r.request_id.as_str())),
        "call_type" => q.bind(each(rows, |r| r.call_type.as_str())),
        "api_key" => q.bind(each(rows, |r| r.api_key.as_str())),
        "spend" => q.bind(each(rows, |r| r.spend.and_then(|s| s.to_f64()).unwrap_or(0.0))),
        "total_tokens" => q.bind(each(rows, |r| int(r.tokens.total()))),
        "prompt_tokens" => q.bind(each(rows, |r| int(r.tokens.prompt))),
        "completion_tokens" => q.bind(each(rows, |r| int(r.tokens.completion))),
        "startTime" => q.bind(each(rows, |r| millis(r.start_time))),
        "endTime" => q.bind(each(rows, |r| millis(r.end_time))),
        "request_duration_ms" => q.bind(each(rows, |r| int(r.duration_ms))),
        "completionStartTime" => q.bind(each(rows, |r| r.first_token_time.map(millis))),
        "model" => q.bind(each(rows, |r| r.model.as_str())),
        "model_id" => q.bind(each(rows, |r| text(&r.model_id))),
        "model_group" => q.bind(each(rows, |r| r.model_group.as_str())),
        "custom_llm_provider" => q.bind(each(rows, |r| text(&r.provider))),
        "api_base" => q.bind(each(rows, |r| text(&r.api_base))),
        "user" => q.bind(each(rows, |r| text(&r.user))),
        "metadata" => q.bind(each(rows, |r| Json(metadata(r)))),
        "cache_hit" => q.bind(each(rows, |r| if r.cache_hit { "True" } else { "False" })),
        "cache_key" => q.bind(each(rows, |_| "")),
        "request_tags" => q.bind(each(rows, |r| Json(&r.tags))),
        "team_id" => q.bind(each(rows, |r| r.team_id.as_deref())),
        "end_user" => q.bind(each(rows, |r| r.end_user.as_deref())),
        "session_id" => q.bind(each(rows, |r| r.session_id.as_deref())),
        "status" => q.bind(each(rows, |r| r.status.as_str())),
        _ => q.bind(each(rows, |_| Option::<String>::None)),
    }
}

/// The rows as `COPY … (FORMAT binary)` data, `columns` in order and each value in the
/// type [`pg_type`] names: PostgreSQL's binary tuple format (a field count, then each field's
/// length and bytes, -1 for NULL), between the format's header and trailer.
fn copy_data(columns: &[&str], rows: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + rows.len() * 800);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    let fields = i16::try_from(columns.len()).unwrap_or(i16::MAX);
    for r in rows {
        out.extend_from_slice(&fields.to_be_bytes());
        for column in columns {
            copy_field(&mut out, column, r);
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// One field of [`copy_data`]: what [`bind_column`] binds for `column`, in binary.
fn copy_field(out: &mut Vec<u8>, column: &str, r: &Record) {
    fn text(out: &mut Vec<u8>, v: Option<&str>) {
        match v {
            Some(v) => {
                out.extend_from_slice(&i32::try_from(v.len()).unwrap_or(i32::MAX).to_be_bytes());
                out.extend_from_slice(v.as_bytes());
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    fn int4(out: &mut Vec<u8>, n: i32) {
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&n.to_be_bytes());
    }
    /// `timestamp`: microseconds since 2000-01-01 00:00:00.
    fn timestamp(out: &mut Vec<u8>, t: Option<DateTime<Utc>>) {
        const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
        match t {
            Some(t) => {
                out.extend_from_slice(&8i32.to_be_bytes());
                let micros = millis(t).and_utc().timestamp_micros() - PG_EPOCH_MICROS;
                out.extend_from_slice(&micros.to_be_bytes());
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    /// `jsonb`: its format version (1), then the JSON text.
    fn jsonb(out: &mut Vec<u8>, value: &impl Serialize) {
        let at = out.len();
        out.extend_from_slice(&[0, 0, 0, 0, 1]);
        if serde_json::to_writer(&mut *out, value).is_err() {
            // Never for these types; PostgreSQL then refuses the batch, which is written
            // row by row instead.
            out.truncate(at + 5);
        }
        let len = i32::try_from(out.len() - at - 4).unwrap_or(i32::MAX);
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    fn opt(v: &Option<String>) -> Option<&str> {
        v.as_deref()
    }
    match column {
        "request_id" => text(out, Some(&r.request_id)),
        "call_type" => text(out, Some(&r.call_type)),
        "api_key" => text(out, Some(&r.api_key)),
        "spend" => {
            out.extend_from_slice(&8i32.to_be_bytes());
            let spend = r.spend.and_then(|s| s.to_f64()).unwrap_or(0.0);
            out.extend_from_slice(&spend.to_bits().to_be_bytes());
        }
        "total_tokens" => int4(out, int(r.tokens.total())),
        "prompt_tokens" => int4(out, int(r.tokens.prompt)),
        "completion_tokens" => int4(out, int(r.tokens.completion)),
        "startTime" => timestamp(out, Some(r.start_time)),
        "endTime" => timestamp(out, Some(r.end_time)),
        "request_duration_ms" => int4(out, int(r.duration_ms)),
        "completionStartTime" => timestamp(out, r.first_token_time),
        "model" => text(out, Some(&r.model)),
        "model_id" => text(out, Some(opt(&r.model_id).unwrap_or_default())),
        "model_group" => text(out, Some(&r.model_group)),
        "custom_llm_provider" => text(out, Some(opt(&r.provider).unwrap_or_default())),
        "api_base" => text(out, Some(opt(&r.api_base).unwrap_or_default())),
        "user" => text(out, Some(opt(&r.user).unwrap_or_default())),
        "metadata" => jsonb(out, &metadata(r)),
        "cache_hit" => text(out, Some(if r.cache_hit { "True" } else { "False" })),
        "cache_key" => text(out, Some("")),
        "request_tags" => jsonb(out, &r.tags),
        "team_id" => text(out, opt(&r.team_id)),
        "end_user" => text(out, opt(&r.end_user)),
        "session_id" => text(out, opt(&r.session_id)),
        "status" => text(out, Some(r.status.as_str())),
        _ => text(out, None),
    }
}

/// LiteLLM's `metadata` plus what its columns cannot hold: the usage object, cache tokens,
/// the key alias, the exact cost, whether it is unknown, the error class. Serialized
/// straight from the row (no JSON tree is built).
#[derive(Serialize)]
pub struct Metadata<'a> {
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_object: Option<UsageObject>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream_incomplete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_api_key_alias: Option<&'a str>,
    spend_unknown: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    spend_decimal: Option<String>,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_class: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    litellm_overhead_time_ms: Option<f64>,
}

/// LiteLLM's `usage_object`, with Anthropic's cache fields.
#[derive(Serialize)]
struct UsageObject {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    input_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_creation_1h_input_tokens: u64,
}

pub fn metadata(r: &Record) -> Metadata<'_> {
    Metadata {
        extra: &r.metadata,
        usage_object: r.usage.map(|u| UsageObject {
            prompt_tokens: u.total_input_tokens(),
            completion_tokens: u.output_tokens,
            total_tokens: u.total_input_tokens() + u.output_tokens,
            input_tokens: u.input_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
            cache_creation_input_tokens: u.cache_creation_input_tokens,
            cache_creation_1h_input_tokens: u.cache_creation_1h_input_tokens,
        }),
        stream_incomplete: r.stream_incomplete,
        user_api_key_alias: r.key_alias.as_deref(),
        spend_unknown: r.spend.is_none(),
        spend_decimal: r.spend.map(|s| s.to_string()),
        cache_read_input_tokens: r.tokens.cache_read,
        cache_creation_input_tokens: r.tokens.cache_write,
        error_class: r.error_class.as_deref(),
        litellm_overhead_time_ms: r.overhead_ms,
    }
}

/// Runs `statements` (`CREATE … IF NOT EXISTS`) in one transaction holding an advisory lock
/// every Switchyard process takes for its DDL: replicas starting together on a fresh database
/// would otherwise race, and PostgreSQL's `IF NOT EXISTS` is not safe against a concurrent
/// create (the loser fails on `pg_type_typname_nsp_index`).
/// The hourly rollup ([`super::rollup`]): table, trigger functions, triggers and backfill in
/// one transaction under the DDL lock, once, however many replicas start together.
async fn create_rollup(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(DDL_LOCK).execute(&mut *tx).await?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(super::rollup::TABLE)
        .fetch_one(&mut *tx)
        .await?;
    let sql = super::rollup::Sql { postgres: true };
    for statement in sql.pg_functions() {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    if !exists {
        for statement in sql.pg_setup() {
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
    }
    tx.commit().await
}

/// Arbitrary, fixed: the same in every process and version.
const DDL_LOCK: i64 = 0x5357_5944_444c; // "SWYDDL"

pub(crate) async fn create_serialized(
    pool: &PgPool,
    statements: &[&str],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(DDL_LOCK).execute(&mut *tx).await?;
    for statement in statements {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// A lazily connecting pool of two for `url` (nothing is contacted here), the URL's password
/// (to mask it in errors) and `host:port/database` for messages. `who_needs` starts the
/// error for a URL that is not PostgreSQL's ("the ledger needs").
pub(crate) fn lazy_pool(
    url: &str,
    who_needs: &str,
    acquire_timeout: Duration,
) -> Result<(PgPool, Option<String>, String), StoreError> {
    let password = url::password(url);
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
        return Err(StoreError(format!("{who_needs} a postgres:// or postgresql:// URL")));
    }
    let options: PgConnectOptions = url.parse().map_err(|e| describe(&e, password.as_deref()))?;
    let location = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("postgres")
    );
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options);
    Ok((pool, password, location))
}

pub(crate) mod url {
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
