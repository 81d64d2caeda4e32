//! Reading the ledger back, for `switchyard spend` and the spend HTTP routes: the same store
//! the writer uses (SQLite in the state directory, or PostgreSQL with `database_url`), opened
//! read-only through a small pool of its own, lazily, so a report never holds the writer's
//! connection nor waits behind it.
//!
//! **Invariant:** nothing here creates or alters anything: a missing SQLite file or table is
//! [`ReadError::Missing`], never created; PostgreSQL sessions are read-only
//! (`default_transaction_read_only`).
//!
//! Both stores give each row back as one JSON object with LiteLLM's column names (SQLite's
//! `json_object`, PostgreSQL's `to_jsonb`), so one piece of code reads both — including a
//! table LiteLLM created with columns this gateway never writes.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use futures_util::TryStreamExt;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Postgres as Pg, QueryBuilder, Sqlite as Lite};
use tokio::sync::OnceCell;

use super::Settings;
use super::store::describe;

/// Why the ledger could not be read. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// There is no ledger at that location yet (no SQLite file, no table): nothing was ever
    /// recorded there.
    Missing { location: String },
    /// The store exists (or should) but cannot be read: unreachable, refused, corrupt.
    Unavailable { location: String, error: String },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { location } => write!(f, "no spend ledger at {location} yet"),
            Self::Unavailable { location, error } => {
                write!(f, "cannot read the spend ledger at {location}: {error}")
            }
        }
    }
}

/// Which rows: `start <= startTime < end`, and the columns LiteLLM's routes filter on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub start: Option<NaiveDateTime>,
    pub end: Option<NaiveDateTime>,
    pub request_id: Option<String>,
    /// The key's sha256 hex, as stored.
    pub api_key: Option<String>,
    /// The `"user"` column (the key owner).
    pub user: Option<String>,
    /// `model_group`: the alias the request named.
    pub alias: Option<String>,
    /// Rows carrying this tag in `request_tags`.
    pub tag: Option<String>,
    /// `Some(true)`: failed rows only (`status = 'failure'`); `Some(false)`: the others.
    pub failed: Option<bool>,
    /// A page's cursor: rows strictly older than this `(startTime, request_id)` in the
    /// newest-first order [`Reader::rows`] lists them in.
    pub before: Option<(NaiveDateTime, String)>,
}

enum Source {
    Sqlite(PathBuf),
    Postgres {
        options: Box<PgConnectOptions>,
        password: Option<String>,
        location: String,
    },
    /// `database_url` cannot work; every read says why.
    Unusable {
        location: String,
        error: String,
    },
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The read side of one store. Cheap until first used; its pool is opened on the first read.
pub struct Reader {
    source: Source,
    pool: OnceCell<Pool>,
}

/// An open pool and whether the spend table exists in it.
pub(super) enum Opened<'a> {
    Sqlite(&'a SqlitePool),
    Postgres(&'a PgPool, Option<&'a str>),
}

/// A report runs longer than a request; still, a stuck query must end.
const STATEMENT_TIMEOUT_MS: u32 = 30_000;

impl Reader {
    /// The store `settings` name, as [`super::Ledger::open`] would open it.
    pub fn new(settings: &Settings) -> Self {
        let source = match &settings.database_url {
            None => Source::Sqlite(settings.state_dir.join("ledger.sqlite3")),
            Some(url) => postgres_source(url.expose()),
        };
        Self { source, pool: OnceCell::new() }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match &self.source {
            Source::Sqlite(_) => "sqlite",
            Source::Postgres { .. } | Source::Unusable { .. } => "postgres",
        }
    }

    /// A path or `host:port/database`; never a password.
    pub fn location(&self) -> String {
        match &self.source {
            Source::Sqlite(path) => path.display().to_string(),
            Source::Postgres { location, .. } | Source::Unusable { location, .. } => {
                location.clone()
            }
        }
    }

    /// Up to `limit` rows, newest first, each in LiteLLM's row shape (see [`normalize`]);
    /// the flag says whether more rows matched.
    pub async fn rows(
        &self,
        filter: &Filter,
        limit: usize,
    ) -> Result<(Vec<Value>, bool), ReadError> {
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        let mut rows = Vec::new();
        self.each(filter, Some(fetch), &mut |row| rows.push(normalize(row))).await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        Ok((rows, more))
    }

    /// Like [`Reader::rows`] without the request and response bodies LiteLLM may have kept
    /// (`messages`, `response`, `proxy_server_request`): a list for people to read.
    pub async fn summaries(
        &self,
        filter: &Filter,
        limit: usize,
    ) -> Result<(Vec<Map<String, Value>>, bool), ReadError> {
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        let mut rows = Vec::new();
        self.select(filter, Some(fetch), false, &mut |row| rows.push(row)).await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        Ok((rows, more))
    }

    /// Calls `visit` with every matching row as an [`Entry`], in no particular order, without
    /// holding them all in memory.
    pub async fn scan(
        &self,
        filter: &Filter,
        visit: &mut (dyn FnMut(Entry) + Send),
    ) -> Result<(), ReadError> {
        // A report reads every row of a range: only the fields an `Entry` needs travel, and
        // they are decoded into a struct rather than a JSON tree (a few times faster).
        match self.open().await? {
            Opened::Sqlite(pool) => {
                let mut q = QueryBuilder::<Lite>::new(SQLITE_LEAN);
                sqlite_where(&mut q, filter);
                let mut stream = q.build_query_scalar::<String>().fetch(pool);
                while let Some(text) =
                    stream.try_next().await.map_err(|e| self.unavailable(describe(&e, None).0))?
                {
                    visit(Entry::from_lean(&text));
                }
                Ok(())
            }
            Opened::Postgres(pool, password) => {
                for (i, select) in [PG_LEAN, PG_LEAN_ANY_TABLE].into_iter().enumerate() {
                    let mut q = QueryBuilder::<Pg>::new(select);
                    pg_where(&mut q, filter);
                    let mut stream = q.build_query_scalar::<String>().fetch(pool);
                    loop {
                        match stream.try_next().await {
                            Ok(Some(text)) => visit(Entry::from_lean(&text)),
                            Ok(None) => return Ok(()),
                            // A table an older LiteLLM created lacks a column: the query
                            // fails before its first row, and the slower one reads it.
                            Err(e) if i == 0 && undefined_column(&e) => break,
                            Err(e) => return Err(self.unavailable(describe(&e, password).0)),
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Closes the pool (the CLI, before exiting).
    pub async fn close(&self) {
        match self.pool.get() {
            Some(Pool::Sqlite(pool)) => pool.close().await,
            Some(Pool::Postgres(pool)) => pool.close().await,
            None => {}
        }
    }

    async fn each(
        &self,
        filter: &Filter,
        limit: Option<i64>,
        visit: &mut (dyn FnMut(Map<String, Value>) + Send),
    ) -> Result<(), ReadError> {
        self.select(filter, limit, limit.is_some(), visit).await
    }

    async fn select(
        &self,
        filter: &Filter,
        limit: Option<i64>,
        bodies: bool,
        visit: &mut (dyn FnMut(Map<String, Value>) + Send),
    ) -> Result<(), ReadError> {
        match self.open().await? {
            Opened::Sqlite(pool) => {
                let mut q = QueryBuilder::<Lite>::new(SQLITE_SELECT);
                sqlite_where(&mut q, filter);
                push_order_limit(&mut q, limit);
                let mut stream = q.build_query_scalar::<String>().fetch(pool);
                while let Some(text) =
                    stream.try_next().await.map_err(|e| self.unavailable(describe(&e, None).0))?
                {
                    visit(parse_object(&text));
                }
                Ok(())
            }
            Opened::Postgres(pool, password) => {
                // Request and response bodies are not needed for a report; a row list keeps
                // them (LiteLLM returns them).
                let select = if bodies { PG_SELECT_ROWS } else { PG_SELECT_SCAN };
                let mut q = QueryBuilder::<Pg>::new(select);
                pg_where(&mut q, filter);
                push_order_limit(&mut q, limit);
                let mut stream = q.build_query_scalar::<String>().fetch(pool);
                while let Some(text) = stream
                    .try_next()
                    .await
                    .map_err(|e| self.unavailable(describe(&e, password).0))?
                {
                    visit(parse_object(&text));
                }
                Ok(())
            }
        }
    }

    pub(super) fn unavailable(&self, error: String) -> ReadError {
        ReadError::Unavailable { location: self.location(), error }
    }

    /// The pool, opened on first use, once the spend table is known to exist.
    pub(super) async fn open(&self) -> Result<Opened<'_>, ReadError> {
        match &self.source {
            Source::Unusable { error, .. } => Err(self.unavailable(error.clone())),
            Source::Sqlite(path) => {
                if !path.is_file() {
                    return Err(ReadError::Missing { location: self.location() });
                }
                let pool = match self.pool.get_or_init(|| async { open_sqlite(path) }).await {
                    Pool::Sqlite(pool) => pool,
                    Pool::Postgres(_) => return Err(self.unavailable("wrong pool".to_owned())),
                };
                let exists: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'LiteLLM_SpendLogs'",
                )
                .fetch_optional(pool)
                .await
                .map_err(|e| self.unavailable(describe(&e, None).0))?;
                if exists.is_none() {
                    return Err(ReadError::Missing { location: self.location() });
                }
                Ok(Opened::Sqlite(pool))
            }
            Source::Postgres { options, password, .. } => {
                let pool = match self
                    .pool
                    .get_or_init(|| async { Pool::Postgres(open_postgres(options)) })
                    .await
                {
                    Pool::Postgres(pool) => pool,
                    Pool::Sqlite(_) => return Err(self.unavailable("wrong pool".to_owned())),
                };
                let exists: bool =
                    sqlx::query_scalar("SELECT to_regclass('\"LiteLLM_SpendLogs\"') IS NOT NULL")
                        .fetch_one(pool)
                        .await
                        .map_err(|e| self.unavailable(describe(&e, password.as_deref()).0))?;
                if !exists {
                    return Err(ReadError::Missing { location: self.location() });
                }
                Ok(Opened::Postgres(pool, password.as_deref()))
            }
        }
    }
}

fn postgres_source(url: &str) -> Source {
    let password = password_of(url);
    let unusable = |error: String| Source::Unusable {
        location: super::postgres::redact_url(url),
        error: format!("database_url is not a usable PostgreSQL URL: {error}"),
    };
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
        return unusable("it must start with postgres:// or postgresql://".to_owned());
    }
    match PgConnectOptions::from_str(url) {
        Ok(options) => {
            let location = format!(
                "{}:{}/{}",
                options.get_host(),
                options.get_port(),
                options.get_database().unwrap_or("postgres")
            );
            let options = options.options([
                ("default_transaction_read_only", "on".to_owned()),
                ("statement_timeout", STATEMENT_TIMEOUT_MS.to_string()),
            ]);
            Source::Postgres { options: Box::new(options), password, location }
        }
        Err(e) => unusable(describe(&e, password.as_deref()).0),
    }
}

/// The password of a `postgres://user:password@host/db` URL, to mask it in errors.
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    Some(percent_encoding::percent_decode_str(password).decode_utf8_lossy().into_owned())
        .filter(|p| !p.is_empty())
}

fn open_sqlite(path: &Path) -> Pool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(5));
    Pool::Sqlite(
        SqlitePoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options),
    )
}

fn open_postgres(options: &PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(60))
        .connect_lazy_with(options.clone())
}

const SQLITE_SELECT: &str = r#"SELECT json_object('request_id', "request_id", 'call_type', "call_type",
 'api_key', "api_key", 'spend', "spend", 'total_tokens', "total_tokens",
 'prompt_tokens', "prompt_tokens", 'completion_tokens', "completion_tokens",
 'startTime', "startTime", 'endTime', "endTime", 'request_duration_ms', "request_duration_ms",
 'completionStartTime', "completionStartTime", 'model', "model", 'model_id', "model_id",
 'model_group', "model_group", 'custom_llm_provider', "custom_llm_provider",
 'api_base', "api_base", 'user', "user", 'metadata', json(coalesce("metadata", '{}')),
 'cache_hit', "cache_hit", 'cache_key', "cache_key",
 'request_tags', json(coalesce("request_tags", '[]')), 'team_id', "team_id",
 'end_user', "end_user", 'session_id', "session_id", 'status', "status")
 FROM "LiteLLM_SpendLogs" t WHERE 1 = 1"#;

/// What [`Reader::scan`] reads of a row: [`Lean`]'s fields.
const SQLITE_LEAN: &str = r#"SELECT json_object('request_id', "request_id", 'startTime', "startTime",
 'model_group', "model_group", 'model', "model", 'model_id', "model_id",
 'custom_llm_provider', "custom_llm_provider", 'user', "user", 'end_user', "end_user",
 'api_key', "api_key", 'key_alias', "key_alias", 'session_id', "session_id",
 'team_id', "team_id", 'status', "status", 'prompt_tokens', "prompt_tokens",
 'completion_tokens', "completion_tokens", 'cache_read_input_tokens', "cache_read_input_tokens",
 'cache_creation_input_tokens', "cache_creation_input_tokens", 'spend', "spend",
 'request_duration_ms', "request_duration_ms", 'cache_hit', "cache_hit",
 'error_class', "error_class",
 'overhead', json_extract("metadata", '$.litellm_overhead_time_ms'),
 'request_tags', json(coalesce("request_tags", '[]')))
 FROM "LiteLLM_SpendLogs" t WHERE 1 = 1"#;

/// The same from PostgreSQL, column by column (several times faster than `to_jsonb`): the
/// exact cost and our own fields from `metadata`.
const PG_LEAN: &str = r#"SELECT json_build_object('request_id', "request_id",
 'startTime', "startTime", 'model_group', "model_group", 'model', "model",
 'model_id', "model_id", 'custom_llm_provider', "custom_llm_provider", 'user', "user",
 'end_user', "end_user", 'api_key', "api_key", 'session_id', "session_id",
 'team_id', "team_id", 'status', "status", 'prompt_tokens', "prompt_tokens",
 'completion_tokens', "completion_tokens", 'spend', "spend",
 'request_duration_ms', "request_duration_ms", 'cache_hit', "cache_hit",
 'request_tags', "request_tags",
 'key_alias', "metadata"->'user_api_key_alias',
 'cache_read_input_tokens', "metadata"->'cache_read_input_tokens',
 'cache_creation_input_tokens', "metadata"->'cache_creation_input_tokens',
 'spend_decimal', "metadata"->'spend_decimal', 'spend_unknown', "metadata"->'spend_unknown',
 'error_class', coalesce("metadata"->'error_class', "metadata"->'error_information'->'error_class'),
 'overhead', "metadata"->'litellm_overhead_time_ms')::text
 FROM "LiteLLM_SpendLogs" t WHERE 1 = 1"#;

/// PostgreSQL's `undefined_column`.
pub(super) fn undefined_column(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42703")
}

/// [`PG_LEAN`] for any table: the row through `to_jsonb` once (so a LiteLLM table without
/// some columns still reads), less what a report never needs, plus the exact cost and our own
/// fields from `metadata` (a column every LiteLLM table has). Extra keys are ignored.
const PG_LEAN_ANY_TABLE: &str = r#"SELECT ((to_jsonb(t) - 'messages' - 'response' - 'proxy_server_request'
 - 'metadata' - 'api_base' - 'call_type' - 'cache_key' - 'endTime' - 'completionStartTime')
 || jsonb_build_object('key_alias', t."metadata"->'user_api_key_alias',
 'cache_read_input_tokens', t."metadata"->'cache_read_input_tokens',
 'cache_creation_input_tokens', t."metadata"->'cache_creation_input_tokens',
 'spend_decimal', t."metadata"->'spend_decimal', 'spend_unknown', t."metadata"->'spend_unknown',
 'error_class', coalesce(t."metadata"->'error_class', t."metadata"->'error_information'->'error_class'),
 'overhead', t."metadata"->'litellm_overhead_time_ms'))::text
 FROM "LiteLLM_SpendLogs" t WHERE 1 = 1"#;

const PG_SELECT_ROWS: &str = r#"SELECT to_jsonb(t)::text FROM "LiteLLM_SpendLogs" t WHERE 1 = 1"#;

const PG_SELECT_SCAN: &str = r#"SELECT (to_jsonb(t) - 'messages' - 'response' - 'proxy_server_request')::text
 FROM "LiteLLM_SpendLogs" t WHERE 1 = 1"#;

pub(super) fn sqlite_where(q: &mut QueryBuilder<'_, Lite>, f: &Filter) {
    // Times are stored as `YYYY-MM-DDTHH:MM:SS.mmmZ`: they compare as text.
    let text = |t: &NaiveDateTime| {
        super::sqlite::time(DateTime::<Utc>::from_naive_utc_and_offset(*t, Utc))
    };
    if let Some(start) = &f.start {
        q.push(r#" AND t."startTime" >= "#).push_bind(text(start));
    }
    if let Some(end) = &f.end {
        q.push(r#" AND t."startTime" < "#).push_bind(text(end));
    }
    if let Some(id) = &f.request_id {
        q.push(r#" AND t."request_id" = "#).push_bind(id.clone());
    }
    if let Some(key) = &f.api_key {
        q.push(r#" AND t."api_key" = "#).push_bind(key.clone());
    }
    if let Some(user) = &f.user {
        q.push(r#" AND t."user" = "#).push_bind(user.clone());
    }
    if let Some(alias) = &f.alias {
        q.push(r#" AND t."model_group" = "#).push_bind(alias.clone());
    }
    if let Some(tag) = &f.tag {
        q.push(r#" AND EXISTS (SELECT 1 FROM json_each(coalesce(t."request_tags", '[]')) WHERE value = "#)
            .push_bind(tag.clone())
            .push(")");
    }
    match f.failed {
        Some(true) => q.push(r#" AND t."status" = 'failure'"#),
        Some(false) => q.push(r#" AND coalesce(t."status", '') <> 'failure'"#),
        None => q,
    };
    if let Some((t, id)) = &f.before {
        let t = text(t);
        q.push(r#" AND (t."startTime" < "#)
            .push_bind(t.clone())
            .push(r#" OR (t."startTime" = "#)
            .push_bind(t)
            .push(r#" AND t."request_id" < "#)
            .push_bind(id.clone())
            .push("))");
    }
}

pub(super) fn pg_where(q: &mut QueryBuilder<'_, Pg>, f: &Filter) {
    if let Some(start) = f.start {
        q.push(r#" AND t."startTime" >= "#).push_bind(start);
    }
    if let Some(end) = f.end {
        q.push(r#" AND t."startTime" < "#).push_bind(end);
    }
    if let Some(id) = &f.request_id {
        q.push(r#" AND t."request_id" = "#).push_bind(id.clone());
    }
    if let Some(key) = &f.api_key {
        q.push(r#" AND t."api_key" = "#).push_bind(key.clone());
    }
    if let Some(user) = &f.user {
        q.push(r#" AND t."user" = "#).push_bind(user.clone());
    }
    if let Some(alias) = &f.alias {
        q.push(r#" AND t."model_group" = "#).push_bind(alias.clone());
    }
    if let Some(tag) = &f.tag {
        // `@>` on the array, so LiteLLM's GIN index on `request_tags` serves it.
        q.push(r#" AND t."request_tags" @> "#)
            .push_bind(sqlx::types::Json(vec![tag.clone()]))
            .push("::jsonb");
    }
    match f.failed {
        Some(true) => q.push(r#" AND t."status" = 'failure'"#),
        Some(false) => q.push(r#" AND coalesce(t."status", '') <> 'failure'"#),
        None => q,
    };
    if let Some((t, id)) = &f.before {
        q.push(r#" AND (t."startTime", t."request_id") < ("#)
            .push_bind(*t)
            .push(", ")
            .push_bind(id.clone())
            .push(")");
    }
}

fn push_order_limit<DB: sqlx::Database>(q: &mut QueryBuilder<'_, DB>, limit: Option<i64>)
where
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    if let Some(limit) = limit {
        q.push(r#" ORDER BY t."startTime" DESC, t."request_id" DESC LIMIT "#).push_bind(limit);
    }
}

fn parse_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// One row in LiteLLM's shape, the same from both stores: times as RFC 3339 UTC with
/// milliseconds; `spend` the exact cost as a JSON number, `null` when unknown (PostgreSQL
/// keeps 0.0 there with `metadata.spend_unknown`); `request_tags` and `metadata` as JSON.
pub fn normalize(mut row: Map<String, Value>) -> Value {
    for key in ["startTime", "endTime", "completionStartTime"] {
        if let Some(Value::String(t)) = row.get(key)
            && let Some(parsed) = parse_time(t)
        {
            let text = super::sqlite::time(DateTime::<Utc>::from_naive_utc_and_offset(parsed, Utc));
            row.insert(key.to_owned(), Value::String(text));
        }
    }
    let spend = spend_of(&row);
    row.insert("spend".to_owned(), spend.map_or(Value::Null, decimal_number));
    for (key, empty) in [("metadata", "{}"), ("request_tags", "[]")] {
        if let Some(Value::String(text)) = row.get(key) {
            let parsed = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()));
            row.insert(key.to_owned(), parsed);
        }
        row.entry(key.to_owned())
            .or_insert_with(|| serde_json::from_str(empty).unwrap_or_default());
    }
    for key in ["organization_id", "requester_ip_address"] {
        row.entry(key.to_owned()).or_insert(Value::Null);
    }
    for key in ["messages", "response", "proxy_server_request"] {
        row.entry(key.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    }
    Value::Object(row)
}

/// A decimal as a JSON number with its exact digits (as far as a double carries them: up to
/// 15 significant digits print back unchanged).
pub fn decimal_number(d: Decimal) -> Value {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
}

/// PostgreSQL's `to_jsonb` gives `2026-12-03T17:56:02.123`, SQLite's text has a `Z`.
fn parse_time(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim_end_matches('Z');
    let t = t.split_once('+').map_or(t, |(t, _)| t);
    NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
}

/// The exact spend of a row: `metadata.spend_decimal` (PostgreSQL), else the `spend` column
/// (SQLite's exact text, or the float of a row LiteLLM wrote); `None` when unknown.
fn spend_of(row: &Map<String, Value>) -> Option<Decimal> {
    let metadata = row.get("metadata").and_then(|m| match m {
        Value::String(text) => serde_json::from_str::<Value>(text).ok(),
        other => Some(other.clone()),
    });
    let meta = |k: &str| metadata.as_ref().and_then(|m| m.get(k)).cloned();
    if meta("spend_unknown") == Some(Value::Bool(true)) {
        return None;
    }
    if let Some(Value::String(exact)) = meta("spend_decimal")
        && let Ok(d) = Decimal::from_str(&exact)
    {
        return Some(d);
    }
    match row.get("spend") {
        Some(Value::String(text)) => Decimal::from_str(text).ok(),
        Some(Value::Number(n)) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        _ => None,
    }
}

/// What a report needs of one row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    pub request_id: String,
    pub start: NaiveDateTime,
    /// `model_group`: the alias the request named.
    pub alias: String,
    pub model: String,
    /// `model_id`: the deployment.
    pub deployment: String,
    pub provider: String,
    pub tags: Vec<String>,
    /// `"user"`: the key owner.
    pub user: String,
    pub end_user: String,
    pub api_key: String,
    pub key_alias: Option<String>,
    pub session_id: String,
    pub team_id: String,
    pub failed: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// `None` when unknown.
    pub spend: Option<Decimal>,
    /// `request_duration_ms`: from arrival to the answer's end.
    pub duration_ms: Option<u64>,
    /// `metadata.litellm_overhead_time_ms`: the gateway's own share of the duration (not
    /// recorded for cache hits, failures, or by gateways before it was).
    pub overhead_ms: Option<f64>,
    /// Answered from the response cache.
    pub cache_hit: bool,
    /// The failure's class (`rate_limited`, `credentials_invalid` …); empty when it did not
    /// fail.
    pub error_class: String,
}

/// One row as [`SQLITE_LEAN`] and [`PG_LEAN`] give it. Lenient like [`Entry::from_row`]: a
/// LiteLLM row may hold nulls anywhere and a float spend.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Lean<'a> {
    #[serde(borrow)]
    request_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "startTime", borrow)]
    start: Option<std::borrow::Cow<'a, str>>,
    model_group: Option<String>,
    model: Option<String>,
    model_id: Option<String>,
    custom_llm_provider: Option<String>,
    user: Option<String>,
    end_user: Option<String>,
    api_key: Option<String>,
    key_alias: Option<String>,
    session_id: Option<String>,
    team_id: Option<String>,
    #[serde(borrow)]
    status: Option<std::borrow::Cow<'a, str>>,
    prompt_tokens: Option<Value>,
    completion_tokens: Option<Value>,
    cache_read_input_tokens: Option<Value>,
    cache_creation_input_tokens: Option<Value>,
    spend: Option<Value>,
    spend_decimal: Option<String>,
    spend_unknown: Option<bool>,
    request_duration_ms: Option<Value>,
    cache_hit: Option<Value>,
    error_class: Option<String>,
    overhead: Option<f64>,
    request_tags: Option<Value>,
}

impl Entry {
    fn from_lean(text: &str) -> Self {
        let Ok(l) = serde_json::from_str::<Lean<'_>>(text) else {
            // Not the expected shape (a hand-edited row): the slow, most lenient path.
            return Self::from_row(&parse_object(text));
        };
        let count = |v: &Option<Value>| match v {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => 0,
        };
        let spend = if l.spend_unknown == Some(true) {
            None
        } else if let Some(d) = l.spend_decimal.as_deref().and_then(|d| Decimal::from_str(d).ok()) {
            Some(d)
        } else {
            match &l.spend {
                Some(Value::String(text)) => Decimal::from_str(text).ok(),
                Some(Value::Number(n)) => Decimal::from_str(&n.to_string())
                    .or_else(|_| Decimal::from_scientific(&n.to_string()))
                    .ok(),
                _ => None,
            }
        };
        let tags = match l.request_tags {
            Some(Value::Array(tags)) => tags,
            Some(Value::String(t)) => serde_json::from_str(&t).unwrap_or_default(),
            _ => Vec::new(),
        };
        Self {
            request_id: l.request_id.map(|s| s.into_owned()).unwrap_or_default(),
            start: l.start.as_deref().and_then(parse_time).unwrap_or_default(),
            alias: l.model_group.unwrap_or_default(),
            model: l.model.unwrap_or_default(),
            deployment: l.model_id.unwrap_or_default(),
            provider: l.custom_llm_provider.unwrap_or_default(),
            tags: tags
                .into_iter()
                .filter_map(|t| match t {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
            user: l.user.unwrap_or_default(),
            end_user: l.end_user.unwrap_or_default(),
            api_key: l.api_key.unwrap_or_default(),
            key_alias: l.key_alias.filter(|a| !a.is_empty()),
            session_id: l.session_id.unwrap_or_default(),
            team_id: l.team_id.unwrap_or_default(),
            failed: l.status.as_deref() == Some("failure"),
            prompt_tokens: count(&l.prompt_tokens),
            completion_tokens: count(&l.completion_tokens),
            cache_read_tokens: count(&l.cache_read_input_tokens),
            cache_write_tokens: count(&l.cache_creation_input_tokens),
            spend,
            duration_ms: match &l.request_duration_ms {
                Some(Value::Number(n)) => n.as_u64(),
                _ => None,
            },
            overhead_ms: l.overhead,
            cache_hit: match &l.cache_hit {
                Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                Some(Value::Bool(b)) => *b,
                _ => false,
            },
            error_class: l.error_class.unwrap_or_default(),
        }
    }

    pub fn from_row(row: &Map<String, Value>) -> Self {
        let text = |k: &str| match row.get(k) {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let metadata = match row.get("metadata") {
            Some(Value::String(t)) => serde_json::from_str(t).unwrap_or(Value::Null),
            Some(other) => other.clone(),
            None => Value::Null,
        };
        let count = |v: Option<&Value>| match v {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => 0,
        };
        let tags = match row.get("request_tags") {
            Some(Value::Array(tags)) => tags.clone(),
            Some(Value::String(t)) => serde_json::from_str(t).unwrap_or_default(),
            _ => Vec::new(),
        };
        Self {
            request_id: text("request_id"),
            start: parse_time(&text("startTime")).unwrap_or_default(),
            alias: text("model_group"),
            model: text("model"),
            deployment: text("model_id"),
            provider: text("custom_llm_provider"),
            tags: tags.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect(),
            user: text("user"),
            end_user: text("end_user"),
            api_key: text("api_key"),
            key_alias: metadata
                .get("user_api_key_alias")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
            session_id: text("session_id"),
            team_id: text("team_id"),
            failed: text("status") == "failure",
            prompt_tokens: count(row.get("prompt_tokens")),
            completion_tokens: count(row.get("completion_tokens")),
            cache_read_tokens: count(metadata.get("cache_read_input_tokens")),
            cache_write_tokens: count(metadata.get("cache_creation_input_tokens")),
            spend: spend_of(row),
            duration_ms: match row.get("request_duration_ms") {
                Some(Value::Number(n)) => n.as_u64(),
                _ => None,
            },
            overhead_ms: metadata.get("litellm_overhead_time_ms").and_then(Value::as_f64),
            cache_hit: match row.get("cache_hit") {
                Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                Some(Value::Bool(b)) => *b,
                _ => false,
            },
            error_class: metadata
                .get("error_class")
                .or_else(|| metadata.get("error_information").and_then(|e| e.get("error_class")))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn unknown_spend_is_never_zero_in_either_store() {
        let sqlite = map(json!({"spend": null, "metadata": {"spend_unknown": true}}));
        let pg = map(json!({"spend": 0.0, "metadata": {"spend_unknown": true}}));
        assert_eq!(spend_of(&sqlite), None);
        assert_eq!(spend_of(&pg), None);
        assert_eq!(normalize(pg)["spend"], Value::Null);
    }

    #[test]
    fn the_exact_decimal_wins_over_the_float() {
        let pg = map(json!({"spend": 0.1, "metadata": {"spend_decimal": "0.100000000000000001"}}));
        assert_eq!(spend_of(&pg), Some(Decimal::from_str("0.100000000000000001").unwrap()));
        let sqlite = map(json!({"spend": "0.002055", "metadata": "{}"}));
        assert_eq!(spend_of(&sqlite), Some(Decimal::new(2055, 6)));
        // A row LiteLLM wrote: only its float.
        let litellm = map(json!({"spend": 3.4e-05, "metadata": {}}));
        assert_eq!(spend_of(&litellm), Some(Decimal::new(34, 6)));
    }

    #[test]
    fn times_from_both_stores_read_the_same() {
        let a = parse_time("2026-12-03T17:56:02.123Z").unwrap();
        let b = parse_time("2026-12-03T17:56:02.123").unwrap();
        assert_eq!(a, b);
        let row = normalize(map(json!({"startTime": "2026-12-03T17:56:02.1"})));
        assert_eq!(row["startTime"], "2026-12-03T17:56:02.100Z");
    }

    #[test]
    fn a_database_url_that_cannot_work_is_unusable_without_its_password() {
        let settings = Settings {
            database_url: Some(crate::secret::Secret::new("mysql://u:hunter2@h/db")),
            state_dir: PathBuf::from("/nonexistent"),
            retention: None,
        };
        let reader = Reader::new(&settings);
        assert!(!reader.location().contains("hunter2"));
        let Source::Unusable { error, .. } = &reader.source else { panic!("usable") };
        assert!(!error.contains("hunter2"), "{error}");
    }
}
