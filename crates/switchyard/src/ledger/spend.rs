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

impl Reader {
    /// [`Reader::spent_since`] for each `(filter, since)` at once: one pass over the rows
    /// since the earliest `since` instead of one query each (the dashboard's budgets).
    pub async fn spent_since_each(
        &self,
        wanted: &[(SpendFilter, DateTime<Utc>)],
    ) -> Result<Vec<Decimal>, ReadError> {
        let Some(earliest) = wanted.iter().map(|(_, since)| *since).min() else {
            return Ok(Vec::new());
        };
        let opened = match self.open().await {
            Err(ReadError::Missing { .. }) => return Ok(vec![Decimal::ZERO; wanted.len()]),
            Err(e) => return Err(e),
            Ok(opened) => opened,
        };
        let postgres = matches!(opened, Opened::Postgres(..));
        let param = |n: usize| if postgres { format!("${n}") } else { format!("?{n}") };
        let mut columns = Vec::with_capacity(wanted.len());
        let mut n = 1;
        for (filter, _) in wanted {
            n += 1;
            let mut condition = format!(r#""startTime" >= {}"#, param(n));
            if let Some(c) = filter.condition(&param(n + 1)) {
                n += 1;
                condition.push_str(" AND ");
                condition.push_str(&c);
            }
            // The same spend as `spent_since`: PostgreSQL's float column (0.0 when unknown),
            // SQLite's exact text, concatenated and summed here.
            columns.push(if postgres {
                format!("COALESCE(SUM(CASE WHEN {condition} THEN spend::numeric END), 0)::text")
            } else {
                format!("group_concat(CASE WHEN {condition} THEN spend END, ',')")
            });
        }
        let sql = format!(
            r#"SELECT {} FROM "LiteLLM_SpendLogs" WHERE "startTime" >= {}{}"#,
            columns.join(", "),
            param(1),
            if postgres { "" } else { " AND spend IS NOT NULL" }
        );
        let texts: Vec<Option<String>> = match opened {
            Opened::Sqlite(pool) => {
                let mut q = sqlx::query(&sql).bind(time(earliest));
                for (filter, since) in wanted {
                    q = q.bind(time(*since));
                    if let Some(v) = filter.value() {
                        q = q.bind(v.to_owned());
                    }
                }
                let row =
                    q.fetch_one(pool).await.map_err(|e| self.unavailable(describe(&e, None).0))?;
                (0..wanted.len()).map(|i| sqlx::Row::try_get(&row, i).unwrap_or(None)).collect()
            }
            Opened::Postgres(pool, password) => {
                let mut q = sqlx::query(&sql).bind(millis(earliest));
                for (filter, since) in wanted {
                    q = q.bind(millis(*since));
                    if let Some(v) = filter.value() {
                        q = q.bind(v.to_owned());
                    }
                }
                let row = q
                    .fetch_one(pool)
                    .await
                    .map_err(|e| self.unavailable(describe(&e, password).0))?;
                (0..wanted.len()).map(|i| sqlx::Row::try_get(&row, i).unwrap_or(None)).collect()
            }
        };
        Ok(texts
            .iter()
            .map(|text| match text.as_deref() {
                None => Decimal::ZERO,
                Some(t) if postgres => Decimal::from_str(t)
                    .or_else(|_| Decimal::from_scientific(t))
                    .unwrap_or_default(),
                Some(t) => t.split(',').filter_map(|s| Decimal::from_str(s).ok()).sum(),
            })
            .collect())
    }
}
