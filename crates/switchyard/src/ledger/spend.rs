//! Reading spend back: the sum of the ledger's rows since a moment, for one scope. Used at
//! start to seed each budget's current period, so a restart does not forget what was spent,
//! by `/key/info`, `/team/info` and `/user/info`, whose spend is the ledger's sum, and by the
//! dashboard's budgets; never on the request path.
//!
//! A scope the hourly rollup keeps apart (everything, an alias, a deployment, a provider, an
//! end user, a key, a team) is summed from the rollup's hours (a few rows per hour instead of
//! every request), plus the rows of the partial hour before the first whole one when the
//! moment is not on an hour. The key owner (`"user"`), which the rollup does not keep, and a
//! ledger without a rollup are summed from the rows. Either way the spend is the exact one
//! the reports sum (see `aggregate::Dialect::spend`).

use std::collections::BTreeMap;
use std::str::FromStr;

use super::aggregate::Dialect;
use super::read::{Opened, ReadError, Reader};
use super::rollup::{self, Sql};
use super::store::{describe, millis};
use chrono::{DateTime, Duration, DurationRound, NaiveDateTime, Utc};
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

    /// The rollup's grouping holding this filter's rows, and whether a value of it counts;
    /// `None` when the rollup does not keep them apart.
    fn rollup(&self) -> Option<(&'static str, Option<&str>)> {
        let (dim, value) = match self {
            Self::All => return Some(("class", None)),
            Self::ModelGroup(v) => ("alias", v),
            Self::ModelId(v) => ("deployment", v),
            Self::Provider(v) => ("provider", v),
            Self::EndUser(v) => ("user", v),
            Self::ApiKey(v) => ("key", v),
            Self::Team(v) => ("team", v),
            Self::User(_) => return None,
        };
        // The rollup files a missing value under '' where the column's `= ''` matches none.
        (!value.is_empty()).then_some((dim, Some(value.as_str())))
    }

    /// A rollup row of `dim` and `value` holds rows of this filter.
    fn holds(&self, dim: &str, value: &str) -> bool {
        match (self, self.rollup()) {
            (_, None) => false,
            (Self::Provider(p), Some((d, _))) => {
                d == dim
                    && value
                        .strip_prefix(p.as_str())
                        .is_some_and(|r| r.is_empty() || r.starts_with('/'))
            }
            (_, Some((d, None))) => d == dim,
            (_, Some((d, Some(v)))) => d == dim && v == value,
        }
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
        let spent = self.spent_since_each(&[(filter.clone(), since)]).await?;
        Ok(spent.first().copied().unwrap_or_default())
    }

    /// [`Reader::spent_since`] for each `(filter, since)` at once: one query over the rollup
    /// and at most one over the rows, however many are asked (the dashboard's budgets, the
    /// budgets seeded at start).
    pub async fn spent_since_each(
        &self,
        wanted: &[(SpendFilter, DateTime<Utc>)],
    ) -> Result<Vec<Decimal>, ReadError> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let opened = match self.open().await {
            Err(ReadError::Missing { .. }) => return Ok(vec![Decimal::ZERO; wanted.len()]),
            Err(e) => return Err(e),
            Ok(opened) => opened,
        };
        let mut spent = vec![Decimal::ZERO; wanted.len()];
        // From the rollup: each filter it keeps apart, from its first whole hour on.
        let mut hours = Vec::new();
        let mut rows = Vec::new();
        for (i, (filter, since)) in wanted.iter().enumerate() {
            let since = millis(*since);
            match filter.rollup() {
                Some(_) => {
                    let first = ceil_hour(since);
                    hours.push((i, first));
                    if since < first {
                        rows.push((i, since, Some(first)));
                    }
                }
                None => rows.push((i, since, None)),
            }
        }
        if !hours.is_empty() {
            match self.spent_in_rollup(&opened, wanted, &hours).await? {
                Some(sums) => {
                    for (i, sum) in sums {
                        spent[i] += sum;
                    }
                }
                None => rows = (0..wanted.len()).map(|i| (i, millis(wanted[i].1), None)).collect(),
            }
        }
        if !rows.is_empty() {
            for (i, sum) in self.spent_in_rows(&opened, wanted, &rows).await? {
                spent[i] += sum;
            }
        }
        Ok(spent.into_iter().map(|d| d.normalize()).collect())
    }

    /// The sums over the rollup's hours from each `(index, first hour)` on; `None` when the
    /// ledger has no rollup.
    async fn spent_in_rollup(
        &self,
        opened: &Opened<'_>,
        wanted: &[(SpendFilter, DateTime<Utc>)],
        hours: &[(usize, NaiveDateTime)],
    ) -> Result<Option<Vec<(usize, Decimal)>>, ReadError> {
        let postgres = matches!(opened, Opened::Postgres(..));
        let sql = Sql { postgres };
        let param = |n: usize| if postgres { format!("${n}") } else { format!("?{n}") };
        // One branch per distinct first hour, reading only the groupings and values asked.
        let mut firsts: BTreeMap<NaiveDateTime, Vec<usize>> = BTreeMap::new();
        for (i, first) in hours {
            firsts.entry(*first).or_default().push(*i);
        }
        let mut binds: Vec<&str> = Vec::new();
        let mut branches = Vec::new();
        for (g, (first, which)) in firsts.iter().enumerate() {
            let mut whole = Vec::new();
            let mut values: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for i in which {
                match wanted[*i].0.rollup() {
                    Some((dim, Some(v))) if dim != "provider" => {
                        values.entry(dim).or_default().push(v);
                    }
                    Some((dim, _)) => whole.push(dim),
                    None => {}
                }
            }
            let mut conditions: Vec<String> = Vec::new();
            whole.sort_unstable();
            whole.dedup();
            conditions.extend(whole.iter().map(|dim| format!("dim = '{dim}'")));
            for (dim, mut list) in values {
                list.sort_unstable();
                list.dedup();
                let mut placeholders = Vec::with_capacity(list.len());
                for v in list {
                    binds.push(v);
                    placeholders.push(param(binds.len()));
                }
                conditions
                    .push(format!("(dim = '{dim}' AND value IN ({}))", placeholders.join(", ")));
            }
            branches.push(format!(
                r#"SELECT '{g}' AS g, dim, value, {spend} FROM "{table}" WHERE hour >= {hour} AND ({conditions}) GROUP BY dim, value"#,
                spend = sql.spend_read(),
                table = rollup::TABLE,
                hour = sql.hour(*first),
                conditions = conditions.join(" OR "),
            ));
        }
        let query = branches.join(" UNION ALL ");
        type Row = (String, String, String, Option<String>, Option<String>, Option<String>);
        let result = match opened {
            Opened::Sqlite(pool) => {
                let mut q = sqlx::query_as::<_, Row>(&query);
                for v in &binds {
                    q = q.bind(*v);
                }
                q.fetch_all(*pool).await.map_err(|e| (e, None))
            }
            Opened::Postgres(pool, password) => {
                let mut q = sqlx::query_as::<_, Row>(&query);
                for v in &binds {
                    q = q.bind(*v);
                }
                q.fetch_all(*pool).await.map_err(|e| (e, *password))
            }
        };
        let found = match result {
            Ok(found) => found,
            Err((e, _)) if rollup::no_rollup(&e) => return Ok(None),
            Err((e, password)) => return Err(self.unavailable(describe(&e, password).0)),
        };
        let mut sums = Vec::with_capacity(hours.len());
        for (g, which) in firsts.values().enumerate() {
            let g = g.to_string();
            for i in which {
                let filter = &wanted[*i].0;
                let sum = found
                    .iter()
                    .filter(|r| r.0 == g && filter.holds(&r.1, &r.2))
                    .map(|r| {
                        rollup::spend_of(postgres, (r.3.clone(), r.4.clone(), r.5.clone()), 0).0
                    })
                    .sum();
                sums.push((*i, sum));
            }
        }
        Ok(Some(sums))
    }

    /// The sums over the rows of each `(index, since, until)`, in one pass over the rows
    /// since the earliest.
    async fn spent_in_rows(
        &self,
        opened: &Opened<'_>,
        wanted: &[(SpendFilter, DateTime<Utc>)],
        ranges: &[(usize, NaiveDateTime, Option<NaiveDateTime>)],
    ) -> Result<Vec<(usize, Decimal)>, ReadError> {
        let postgres = matches!(opened, Opened::Postgres(..));
        let param = |n: usize| if postgres { format!("${n}") } else { format!("?{n}") };
        let literal = |t: NaiveDateTime| Sql { postgres }.time(t);
        let spend = Dialect { postgres }.spend();
        let earliest = ranges.iter().map(|r| r.1).min().unwrap_or_default();
        let mut binds = Vec::new();
        let mut columns = Vec::with_capacity(ranges.len());
        for (i, since, until) in ranges {
            let mut condition = format!(r#"t."startTime" >= {}"#, literal(*since));
            if let Some(until) = until {
                condition.push_str(&format!(r#" AND t."startTime" < {}"#, literal(*until)));
            }
            let filter = &wanted[*i].0;
            if let Some(v) = filter.value() {
                binds.push(v);
                if let Some(c) = filter.condition(&param(binds.len())) {
                    condition.push_str(" AND ");
                    condition.push_str(&c);
                }
            }
            // PostgreSQL sums `numeric`; SQLite's exact texts are concatenated, summed here.
            columns.push(if postgres {
                format!("COALESCE(SUM(CASE WHEN {condition} THEN {spend} END), 0)::text")
            } else {
                format!("group_concat(CASE WHEN {condition} THEN {spend} END, ',')")
            });
        }
        let sql = format!(
            r#"SELECT {} FROM "LiteLLM_SpendLogs" t WHERE t."startTime" >= {}{}"#,
            columns.join(", "),
            literal(earliest),
            if postgres { "" } else { " AND t.spend IS NOT NULL" }
        );
        let texts: Vec<Option<String>> = match opened {
            Opened::Sqlite(pool) => {
                let mut q = sqlx::query(&sql);
                for v in &binds {
                    q = q.bind(*v);
                }
                let row =
                    q.fetch_one(*pool).await.map_err(|e| self.unavailable(describe(&e, None).0))?;
                (0..ranges.len()).map(|i| sqlx::Row::try_get(&row, i).unwrap_or(None)).collect()
            }
            Opened::Postgres(pool, password) => {
                let mut q = sqlx::query(&sql);
                for v in &binds {
                    q = q.bind(*v);
                }
                let row = q
                    .fetch_one(*pool)
                    .await
                    .map_err(|e| self.unavailable(describe(&e, *password).0))?;
                (0..ranges.len()).map(|i| sqlx::Row::try_get(&row, i).unwrap_or(None)).collect()
            }
        };
        Ok(ranges
            .iter()
            .zip(texts)
            .map(|((i, ..), text)| {
                let sum = match text.as_deref() {
                    None => Decimal::ZERO,
                    Some(t) if postgres => Decimal::from_str(t)
                        .or_else(|_| Decimal::from_scientific(t))
                        .unwrap_or_default(),
                    Some(t) => t.split(',').filter_map(|s| Decimal::from_str(s).ok()).sum(),
                };
                (*i, sum)
            })
            .collect())
    }
}

/// The first hour boundary at or after `t`.
fn ceil_hour(t: NaiveDateTime) -> NaiveDateTime {
    match t.duration_trunc(Duration::hours(1)) {
        Ok(h) if h < t => h + Duration::hours(1),
        Ok(h) => h,
        Err(_) => t,
    }
}
