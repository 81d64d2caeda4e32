//! Reading spend back: the sum of the ledger's rows since a moment, for one scope. Used at
//! start to seed each budget's current period, so a restart does not forget what was spent;
//! never on the request path.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::Settings;
use super::postgres::redact_url;
use super::postgres::url::password;
use super::sqlite::time;
use super::store::{describe, millis};

/// Which rows count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpendFilter {
    All,
    ModelGroup(String),
    ModelId(String),
    /// A provider prefix: `bedrock` also matches `bedrock/converse`.
    Provider(String),
    EndUser(String),
}

impl SpendFilter {
    /// The SQL condition on the filter's column, with `param` the placeholder of its value.
    fn condition(&self, param: &str) -> Option<String> {
        Some(match self {
            Self::All => return None,
            Self::ModelGroup(_) => format!("model_group = {param}"),
            Self::ModelId(_) => format!("model_id = {param}"),
            Self::Provider(_) => format!(
                "(custom_llm_provider = {param} OR custom_llm_provider LIKE {param} || '/%')"
            ),
            Self::EndUser(_) => format!("end_user = {param}"),
        })
    }

    fn value(&self) -> Option<&str> {
        match self {
            Self::All => None,
            Self::ModelGroup(v) | Self::ModelId(v) | Self::Provider(v) | Self::EndUser(v) => {
                Some(v)
            }
        }
    }
}

/// A read-only view of the ledger's rows.
pub enum SpendReader {
    Sqlite(SqlitePool),
    Postgres {
        pool: PgPool,
        password: Option<String>,
    },
    /// No rows to read yet (no SQLite file).
    Empty,
}

impl SpendReader {
    pub fn open(settings: &Settings) -> Result<Self, String> {
        match &settings.database_url {
            Some(url) => {
                let url = url.expose();
                let options: PgConnectOptions =
                    url.parse().map_err(|e| format!("{}: {e}", redact_url(url)))?;
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(std::time::Duration::from_secs(3))
                    .connect_lazy_with(options);
                Ok(Self::Postgres { pool, password: password(url) })
            }
            None => {
                let path = settings.state_dir.join("ledger.sqlite3");
                if !path.exists() {
                    return Ok(Self::Empty);
                }
                let options =
                    SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
                        .map_err(|e| e.to_string())?
                        .read_only(true);
                Ok(Self::Sqlite(
                    SqlitePoolOptions::new().max_connections(1).connect_lazy_with(options),
                ))
            }
        }
    }

    /// USD spent by the rows that started at or after `since` and match `filter`; rows of
    /// unknown cost count nothing.
    pub async fn spent_since(
        &self,
        filter: &SpendFilter,
        since: DateTime<Utc>,
    ) -> Result<Decimal, String> {
        match self {
            Self::Empty => Ok(Decimal::ZERO),
            Self::Sqlite(pool) => {
                let mut sql = r#"SELECT spend FROM "LiteLLM_SpendLogs" WHERE "startTime" >= ?1 AND spend IS NOT NULL"#.to_owned();
                if let Some(c) = filter.condition("?2") {
                    sql.push_str(" AND ");
                    sql.push_str(&c);
                }
                let mut q = sqlx::query_scalar::<_, String>(&sql).bind(time(since));
                if let Some(v) = filter.value() {
                    q = q.bind(v.to_owned());
                }
                let rows = q.fetch_all(pool).await.map_err(|e| describe(&e, None).0)?;
                Ok(rows.iter().filter_map(|s| Decimal::from_str(s).ok()).sum())
            }
            Self::Postgres { pool, password } => {
                let mut sql = r#"SELECT COALESCE(SUM(spend::numeric), 0)::text FROM "LiteLLM_SpendLogs" WHERE "startTime" >= $1"#.to_owned();
                if let Some(c) = filter.condition("$2") {
                    sql.push_str(" AND ");
                    sql.push_str(&c);
                }
                let mut q = sqlx::query_scalar::<_, String>(&sql).bind(millis(since));
                if let Some(v) = filter.value() {
                    q = q.bind(v.to_owned());
                }
                let text =
                    q.fetch_one(pool).await.map_err(|e| describe(&e, password.as_deref()).0)?;
                Decimal::from_str(&text)
                    .or_else(|_| Decimal::from_scientific(&text))
                    .map_err(|e| e.to_string())
            }
        }
    }
}
