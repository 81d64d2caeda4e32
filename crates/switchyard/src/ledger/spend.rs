//! Reading spend back: the sum of the ledger's rows since a moment, for one scope. Used at
//! start to seed each budget's current period, so a restart does not forget what was spent,
//! and by `/key/info`, `/team/info` and `/user/info`, whose spend is the ledger's sum; never
//! on the request path.

use std::str::FromStr;

use super::read::{Opened, ReadError, Reader};
use super::sqlite::time;
use super::store::{describe, millis};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// Which rows count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpendFilter {
    All,
    ModelGroup(String),
    ModelId(String),
    /// A provider prefix: `bedrock` also matches `bedrock/converse`.
    Provider(String),
    EndUser(String),
    /// A virtual key, by its sha256 hex.
    ApiKey(String),
    Team(String),
    /// The key owner (`"user"`).
    User(String),
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
            Self::ApiKey(_) => format!("api_key = {param}"),
            Self::Team(_) => format!("team_id = {param}"),
            Self::User(_) => format!("\"user\" = {param}"),
        })
    }

    fn value(&self) -> Option<&str> {
        match self {
            Self::All => None,
            Self::ModelGroup(v)
            | Self::ModelId(v)
            | Self::Provider(v)
            | Self::EndUser(v)
            | Self::ApiKey(v)
            | Self::Team(v)
            | Self::User(v) => Some(v),
        }
    }
}

impl Reader {
    /// USD spent by the rows that started at or after `since` and match `filter`; rows of
    /// unknown cost count nothing. No ledger yet: nothing was spent.
    pub async fn spent_since(
        &self,
        filter: &SpendFilter,
        since: DateTime<Utc>,
    ) -> Result<Decimal, ReadError> {
        match self.open().await {
            Err(ReadError::Missing { .. }) => Ok(Decimal::ZERO),
            Err(e) => Err(e),
            Ok(Opened::Sqlite(pool)) => {
                let mut sql = r#"SELECT spend FROM "LiteLLM_SpendLogs" WHERE "startTime" >= ?1 AND spend IS NOT NULL"#.to_owned();
                if let Some(c) = filter.condition("?2") {
                    sql.push_str(" AND ");
                    sql.push_str(&c);
                }
                let mut q = sqlx::query_scalar::<_, String>(&sql).bind(time(since));
                if let Some(v) = filter.value() {
                    q = q.bind(v.to_owned());
                }
                let rows =
                    q.fetch_all(pool).await.map_err(|e| self.unavailable(describe(&e, None).0))?;
                Ok(rows.iter().filter_map(|s| Decimal::from_str(s).ok()).sum())
            }
            Ok(Opened::Postgres(pool, password)) => {
                let mut sql = r#"SELECT COALESCE(SUM(spend::numeric), 0)::text FROM "LiteLLM_SpendLogs" WHERE "startTime" >= $1"#.to_owned();
                if let Some(c) = filter.condition("$2") {
                    sql.push_str(" AND ");
                    sql.push_str(&c);
                }
                let mut q = sqlx::query_scalar::<_, String>(&sql).bind(millis(since));
                if let Some(v) = filter.value() {
                    q = q.bind(v.to_owned());
                }
                let text = q
                    .fetch_one(pool)
                    .await
                    .map_err(|e| self.unavailable(describe(&e, password).0))?;
                Decimal::from_str(&text)
                    .or_else(|_| Decimal::from_scientific(&text))
                    .map_err(|e| self.unavailable(e.to_string()))
            }
        }
    }
}
