//! Reports summed by the store itself: the spend report per group ([`Reader::report`]) and
//! the dashboard's overview ([`Reader::overview`]) as a few `GROUP BY` queries over typed
//! columns, instead of every row travelling to [`super::report::Builder`] or
//! [`super::overview::Builder`]. Both give the same numbers as those builders over the
//! same rows (`tests/ui_data.rs` checks it on awkward rows):
//!
//! - spend is exact: PostgreSQL sums `numeric` (`metadata.spend_decimal`, else the `spend`
//!   float's shortest text, as a row is read one by one); SQLite keeps each row's exact
//!   decimal text, so the store concatenates a group's values and they are summed here as
//!   decimals (a float `SUM` would not give `switchyard spend`'s digits);
//! - percentiles are nearest-rank (`rank = ⌈p·n/100⌉`, a value that occurred), picked with
//!   `row_number()` in integers rather than `percentile_disc`, whose float `p·n` may land a
//!   rank off.
//!
//! A PostgreSQL table an older LiteLLM created may lack a column these queries name: then the
//! row-by-row path ([`Reader::scan`]) reads it, as before.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use sqlx::{Postgres as Pg, QueryBuilder, Sqlite as Lite};

use super::overview::{self, Bucket, Point, Summary};
use super::read::{Filter, Opened, ReadError, Reader, pg_where, sqlite_where, undefined_column};
use super::report::{self, By, Group, Report, Totals};
use super::store::describe;

/// One group's sums as the store gives them.
pub(super) type GroupRow =
    (String, Option<String>, i64, i64, i64, i64, i64, i64, Option<String>, i64);

/// The two dialects' spellings of what a row holds, over the table aliased `t`.
pub(super) struct Dialect {
    pub(super) postgres: bool,
}

impl Dialect {
    /// A token count: a non-negative integer, else 0 (as [`super::read::Entry`] reads it).
    pub(super) fn count(&self, column: &str) -> String {
        if self.postgres {
            match column {
                "prompt_tokens" | "completion_tokens" => {
                    format!(r#"greatest(coalesce(t."{column}", 0), 0)"#)
                }
                // PostgreSQL keeps cache tokens in `metadata`.
                _ => format!(
                    r#"CASE WHEN jsonb_typeof(t."metadata"->'{column}') = 'number' AND t."metadata"->>'{column}' ~ '^[0-9]{{1,18}}$' THEN (t."metadata"->>'{column}')::bigint ELSE 0 END"#
                ),
            }
        } else {
            format!(
                r#"CASE WHEN typeof(t."{column}") = 'integer' AND t."{column}" > 0 THEN t."{column}" ELSE 0 END"#
            )
        }
    }

    /// A row's exact spend, NULL when unknown: PostgreSQL writes 0.0 and
    /// `metadata.spend_unknown` for an unpriced request, and the exact decimal beside the float.
    pub(super) fn spend(&self) -> &'static str {
        if self.postgres {
            r#"CASE WHEN t."metadata"->'spend_unknown' = 'true'::jsonb THEN NULL
 WHEN jsonb_typeof(t."metadata"->'spend_decimal') = 'string' AND t."metadata"->>'spend_decimal' ~ '^-?[0-9]+(\.[0-9]+)?$'
 THEN (t."metadata"->>'spend_decimal')::numeric ELSE t."spend"::text::numeric END"#
        } else {
            r#"t."spend""#
        }
    }

    pub(super) fn failed(&self) -> &'static str {
        r#"CASE WHEN t."status" = 'failure' THEN 1 ELSE 0 END"#
    }

    pub(super) fn key_alias(&self) -> &'static str {
        if self.postgres { r#"t."metadata"->>'user_api_key_alias'"# } else { r#"t."key_alias""# }
    }

    /// What a report groups on; `None` is the whole range as one group.
    fn key(&self, by: Option<By>) -> String {
        let column = |c: &str| format!(r#"coalesce(t."{c}", '')"#);
        match by {
            None => "''".to_owned(),
            Some(By::Alias) => column("model_group"),
            Some(By::Model) => column("model"),
            Some(By::Deployment) => column("model_id"),
            Some(By::Provider) => column("custom_llm_provider"),
            Some(By::User) => column("end_user"),
            Some(By::Key) => column("api_key"),
            Some(By::Session) => column("session_id"),
            Some(By::Team) => column("team_id"),
            Some(By::Day) if self.postgres => r#"to_char(t."startTime", 'YYYY-MM-DD')"#.to_owned(),
            Some(By::Day) => r#"substr(t."startTime", 1, 10)"#.to_owned(),
            Some(By::Tag) => "coalesce(g.tag, '')".to_owned(),
        }
    }

    /// The join that gives each row once per distinct string tag (once with no tag when it
    /// has none), for [`By::Tag`].
    fn tags_join(&self) -> &'static str {
        if self.postgres {
            r#" LEFT JOIN LATERAL (SELECT DISTINCT e #>> '{}' AS tag FROM jsonb_array_elements(
 CASE WHEN jsonb_typeof(t."request_tags") = 'array' THEN t."request_tags" ELSE '[]'::jsonb END) e
 WHERE jsonb_typeof(e) = 'string') g ON true"#
        } else {
            // Invalid JSON counts as no tags, as a row read one by one does.
            r#" LEFT JOIN json_each(CASE WHEN json_valid(t."request_tags") THEN
 CASE WHEN json_type(t."request_tags") = 'array' THEN t."request_tags" END END) g0
 ON g0.type = 'text'"#
        }
    }

    /// `SELECT` up to the filter: one row per (row, group) with the columns a report sums.
    fn report_head(&self, by: Option<By>) -> String {
        let (distinct, key, join) = match (by, self.postgres) {
            (Some(By::Tag), true) => ("", self.key(by), self.tags_join()),
            // A tag written twice on one request counts it once: distinct per request.
            (Some(By::Tag), false) => (
                "DISTINCT t.\"request_id\" AS id, ",
                "coalesce(g0.value, '')".to_owned(),
                self.tags_join(),
            ),
            _ => ("", self.key(by), ""),
        };
        let (cast, spend) = if self.postgres {
            ("::bigint", "sum(spend)::text")
        } else {
            ("", "group_concat(spend, ',')")
        };
        format!(
            r#"SELECT k, max(nullif(ka, '')), count(*), sum(failed){cast}, sum(pt){cast}, sum(ct){cast},
 sum(crt){cast}, sum(cwt){cast}, {spend}, count(spend)
 FROM (SELECT {distinct}{key} AS k, {ka} AS ka, {failed} AS failed, {pt} AS pt, {ct} AS ct,
 {crt} AS crt, {cwt} AS cwt, {spend_row} AS spend
 FROM "LiteLLM_SpendLogs" t{join} WHERE 1 = 1"#,
            ka = self.key_alias(),
            failed = self.failed(),
            pt = self.count("prompt_tokens"),
            ct = self.count("completion_tokens"),
            crt = self.count("cache_read_input_tokens"),
            cwt = self.count("cache_creation_input_tokens"),
            spend_row = self.spend(),
        )
    }

    /// The start of a row's bucket, as text [`bucket_start`] reads.
    fn bucket(&self, bucket: Bucket) -> String {
        if self.postgres {
            let unit = bucket.name();
            format!(r#"to_char(date_trunc('{unit}', t."startTime"), 'YYYY-MM-DD"T"HH24:MI')"#)
        } else {
            let len = match bucket {
                Bucket::Minute => 16,
                Bucket::Hour => 13,
                Bucket::Day => 10,
            };
            format!(r#"substr(t."startTime", 1, {len})"#)
        }
    }

    /// `SELECT` up to the filter: one row per request with what the overview needs of it.
    fn overview_rows(&self, bucket: Bucket) -> String {
        let (class, hit, duration, overhead) = if self.postgres {
            (
                r#"coalesce(t."metadata"->>'error_class', t."metadata"->'error_information'->>'error_class', '')"#,
                r#"CASE WHEN lower(t."cache_hit") = 'true' THEN 1 ELSE 0 END"#,
                r#"CASE WHEN t."request_duration_ms" >= 0 THEN t."request_duration_ms" END"#,
                r#"CASE WHEN jsonb_typeof(t."metadata"->'litellm_overhead_time_ms') = 'number' THEN (t."metadata"->>'litellm_overhead_time_ms')::float8 END"#,
            )
        } else {
            (
                r#"coalesce(t."error_class", '')"#,
                r#"CASE WHEN lower(t."cache_hit") = 'true' THEN 1 ELSE 0 END"#,
                r#"CASE WHEN typeof(t."request_duration_ms") = 'integer' AND t."request_duration_ms" >= 0 THEN min(t."request_duration_ms", 4294967295) END"#,
                r#"CASE WHEN json_type(t."metadata", '$.litellm_overhead_time_ms') IN ('integer', 'real') THEN CAST(json_extract(t."metadata", '$.litellm_overhead_time_ms') AS REAL) END"#,
            )
        };
        format!(
            r#"SELECT {b} AS b, {failed} AS failed,
 CASE WHEN t."status" = 'failure' THEN coalesce(nullif({class}, ''), 'unknown') ELSE '' END AS cls,
 {hit} AS hit, {spend} AS spend, {duration} AS dur, {overhead} AS ovh
 FROM "LiteLLM_SpendLogs" t WHERE 1 = 1"#,
            b = self.bucket(bucket),
            failed = self.failed(),
            spend = self.spend(),
        )
    }

    /// Per bucket and error class: requests, failures, cache hits, spend.
    fn overview_sums(&self, rows: &str) -> String {
        let (cast, spend) = if self.postgres {
            ("::bigint", "sum(spend)::text")
        } else {
            ("", "group_concat(spend, ',')")
        };
        format!(
            "SELECT b, cls, count(*), sum(failed){cast}, sum(hit){cast}, {spend}, count(spend) \
             FROM ({rows}"
        )
    }
}

/// The nearest-rank percentile's rank of `n` values, in SQL integers: `⌈p·n/100⌉`.
fn rank(p: u32, n: &str) -> String {
    format!("({p} * {n} + 99) / 100")
}

/// Durations: each bucket's median and the range's p50 and p99, as
/// `(bucket, value, is the bucket's median, is p50, is p99)`.
fn durations_sql(rows: &str) -> String {
    format!(
        "SELECT b, dur, rb = {b50}, ra = {a50}, ra = {a99} FROM (SELECT b, dur, \
         row_number() OVER (PARTITION BY b ORDER BY dur) AS rb, count(*) OVER (PARTITION BY b) AS nb, \
         row_number() OVER (ORDER BY dur) AS ra, count(*) OVER () AS na \
         FROM ({rows}",
        b50 = rank(50, "nb"),
        a50 = rank(50, "na"),
        a99 = rank(99, "na"),
    )
}

fn durations_tail() -> String {
    format!(
        ") r WHERE dur IS NOT NULL) w WHERE rb = {} OR ra = {} OR ra = {}",
        rank(50, "nb"),
        rank(50, "na"),
        rank(99, "na")
    )
}

fn overheads_sql(rows: &str) -> String {
    format!(
        "SELECT ovh, ra = {a50}, ra = {a99} FROM (SELECT ovh, row_number() OVER (ORDER BY ovh) AS ra, \
         count(*) OVER () AS na FROM ({rows}",
        a50 = rank(50, "na"),
        a99 = rank(99, "na"),
    )
}

fn overheads_tail() -> String {
    format!(") r WHERE ovh IS NOT NULL) w WHERE ra = {} OR ra = {}", rank(50, "na"), rank(99, "na"))
}

/// A sum as the store gives it and how many values it holds: PostgreSQL's `numeric` sum with
/// its count; SQLite's concatenated exact texts, each parsed as [`super::read::Entry`] parses
/// a row's (one that is not a decimal is unpriced).
fn spend_sum(postgres: bool, text: Option<&str>, count: i64) -> (Decimal, u64) {
    let Some(text) = text else { return (Decimal::ZERO, 0) };
    if postgres {
        let sum = Decimal::from_str(text).or_else(|_| Decimal::from_scientific(text));
        return (sum.unwrap_or_default(), u64::try_from(count).unwrap_or(0));
    }
    let mut sum = Decimal::ZERO;
    let mut priced = 0;
    for value in text.split(',') {
        if let Ok(d) = Decimal::from_str(value) {
            sum += d;
            priced += 1;
        }
    }
    (sum, priced)
}

pub(super) fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) fn totals_of(postgres: bool, row: &GroupRow) -> Totals {
    let (spend, priced) = spend_sum(postgres, row.8.as_deref(), row.9);
    let requests = unsigned(row.2);
    Totals {
        requests,
        failed: unsigned(row.3),
        input_tokens: unsigned(row.4),
        output_tokens: unsigned(row.5),
        cache_read_tokens: unsigned(row.6),
        cache_write_tokens: unsigned(row.7),
        spend,
        unpriced: requests.saturating_sub(priced),
    }
}

/// A bucket's start from its text: `2026-12-01`, `2026-12-01T10`, `2026-12-01T10:30`.
pub(super) fn bucket_start(text: &str) -> Option<NaiveDateTime> {
    let text = text.replace(' ', "T");
    match text.len() {
        10 => NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(chrono::NaiveTime::MIN)),
        13 => NaiveDateTime::parse_from_str(&format!("{text}:00"), "%Y-%m-%dT%H:%M").ok(),
        _ => NaiveDateTime::parse_from_str(text.get(..16)?, "%Y-%m-%dT%H:%M").ok(),
    }
}

/// What a report query failed with: a PostgreSQL table without some column reads row by row.
pub(super) enum Failed {
    OldTable,
    Read(ReadError),
}

impl Reader {
    /// The spend report over `filter`'s rows, grouped by `by`: what [`report::Builder`] gives
    /// over [`Reader::scan`], summed by the store.
    pub async fn report(&self, filter: &Filter, by: By) -> Result<Report, ReadError> {
        match self.report_sql(filter, by).await {
            Ok(report) => Ok(report),
            Err(Failed::Read(e)) => Err(e),
            Err(Failed::OldTable) => {
                let mut builder = report::Builder::new(by);
                self.scan(filter, &mut |e| builder.add(&e)).await?;
                Ok(builder.finish())
            }
        }
    }

    async fn report_sql(&self, filter: &Filter, by: By) -> Result<Report, Failed> {
        if let Some(report) = self.report_rollup(filter, by).await? {
            return Ok(report);
        }
        let rows = self.group_rows(filter, Some(by)).await?;
        let postgres = self.backend() == "postgres";
        let mut total = Totals::default();
        let mut groups = Vec::with_capacity(rows.len());
        for row in &rows {
            let t = totals_of(postgres, row);
            add(&mut total, &t);
            groups.push(Group {
                key: row.0.clone(),
                key_alias: if by == By::Key { row.1.clone() } else { None },
                totals: t,
            });
        }
        if by == By::Tag {
            // A request counts under each of its tags, but once in the total.
            total = match self.group_rows(filter, None).await?.first() {
                Some(row) => totals_of(postgres, row),
                None => Totals::default(),
            };
        }
        Ok(Report::new(by, groups, total))
    }

    async fn group_rows(&self, filter: &Filter, by: Option<By>) -> Result<Vec<GroupRow>, Failed> {
        match self.open().await.map_err(Failed::Read)? {
            Opened::Sqlite(pool) => {
                let d = Dialect { postgres: false };
                let mut q = QueryBuilder::<Lite>::new(d.report_head(by));
                sqlite_where(&mut q, filter);
                q.push(") r GROUP BY k");
                q.build_query_as::<GroupRow>()
                    .fetch_all(pool)
                    .await
                    .map_err(|e| Failed::Read(self.unavailable(describe(&e, None).0)))
            }
            Opened::Postgres(pool, password) => {
                let d = Dialect { postgres: true };
                let mut q = QueryBuilder::<Pg>::new(d.report_head(by));
                pg_where(&mut q, filter);
                q.push(") r GROUP BY k");
                q.build_query_as::<GroupRow>().fetch_all(pool).await.map_err(|e| {
                    if undefined_column(&e) {
                        Failed::OldTable
                    } else {
                        Failed::Read(self.unavailable(describe(&e, password).0))
                    }
                })
            }
        }
    }

    /// The dashboard's overview of `[from, to)` (and the rest of `filter`): what
    /// [`overview::Builder`] gives over [`Reader::scan`], summed by the store.
    pub async fn overview(
        &self,
        filter: &Filter,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<Summary, ReadError> {
        match self.overview_sql(filter, from, to).await {
            Ok(summary) => Ok(summary),
            Err(Failed::Read(e)) => Err(e),
            Err(Failed::OldTable) => {
                let mut builder = overview::Builder::new(from, to);
                self.scan(filter, &mut |e| builder.add(&e)).await?;
                Ok(builder.finish())
            }
        }
    }

    async fn overview_sql(
        &self,
        filter: &Filter,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<Summary, Failed> {
        let bucket = Bucket::for_range(from, to);
        if let Some(summary) = self.overview_rollup(filter, from, to).await? {
            return Ok(summary);
        }
        let opened = self.open().await.map_err(Failed::Read)?;
        let postgres = matches!(opened, Opened::Postgres(..));
        let d = Dialect { postgres };
        let rows = d.overview_rows(bucket);
        let sums_sql = d.overview_sums(&rows);
        let durations = durations_sql(&rows);
        let overheads = overheads_sql(&rows);
        // Three statements on the pool's two connections: the sums while the sorts run.
        let (sums, durations, overheads) = match opened {
            Opened::Sqlite(pool) => {
                let err = |e: sqlx::Error| Failed::Read(self.unavailable(describe(&e, None).0));
                let mut q1 = QueryBuilder::<Lite>::new(sums_sql);
                sqlite_where(&mut q1, filter);
                q1.push(") r GROUP BY b, cls");
                let mut q2 = QueryBuilder::<Lite>::new(durations);
                sqlite_where(&mut q2, filter);
                q2.push(durations_tail());
                let mut q3 = QueryBuilder::<Lite>::new(overheads);
                sqlite_where(&mut q3, filter);
                q3.push(overheads_tail());
                let (a, b, c) = tokio::try_join!(
                    async { q1.build_query_as::<SumRow>().fetch_all(pool).await.map_err(err) },
                    async {
                        q2.build_query_as::<(String, i64, bool, bool, bool)>()
                            .fetch_all(pool)
                            .await
                            .map_err(err)
                    },
                    async {
                        q3.build_query_as::<(f64, bool, bool)>().fetch_all(pool).await.map_err(err)
                    },
                )?;
                (a, b, c)
            }
            Opened::Postgres(pool, password) => {
                let err = |e: sqlx::Error| {
                    if undefined_column(&e) {
                        Failed::OldTable
                    } else {
                        Failed::Read(self.unavailable(describe(&e, password).0))
                    }
                };
                let mut q1 = QueryBuilder::<Pg>::new(sums_sql);
                pg_where(&mut q1, filter);
                q1.push(") r GROUP BY b, cls");
                let mut q2 = QueryBuilder::<Pg>::new(durations);
                pg_where(&mut q2, filter);
                q2.push(durations_tail());
                let mut q3 = QueryBuilder::<Pg>::new(overheads);
                pg_where(&mut q3, filter);
                q3.push(overheads_tail());
                let (a, b, c) = tokio::try_join!(
                    async { q1.build_query_as::<SumRow>().fetch_all(pool).await.map_err(err) },
                    async {
                        q2.build_query_as::<(String, i32, bool, bool, bool)>()
                            .fetch_all(pool)
                            .await
                            .map(|rows| {
                                rows.into_iter()
                                    .map(|(b, d, x, y, z)| (b, i64::from(d), x, y, z))
                                    .collect::<Vec<_>>()
                            })
                            .map_err(err)
                    },
                    async {
                        q3.build_query_as::<(f64, bool, bool)>().fetch_all(pool).await.map_err(err)
                    },
                )?;
                (a, b, c)
            }
        };
        let mut s = Summary::default();
        let mut points: BTreeMap<NaiveDateTime, Point> = BTreeMap::new();
        let mut errors: HashMap<String, u64> = HashMap::new();
        for (b, class, requests, failed, hits, spend, priced) in &sums {
            let start = bucket_start(b).unwrap_or_default();
            let (spend, priced) = spend_sum(postgres, spend.as_deref(), *priced);
            let (requests, failed) = (unsigned(*requests), unsigned(*failed));
            let point = points.entry(start).or_insert_with(|| Point { start, ..Point::default() });
            point.requests += requests;
            point.errors += failed;
            point.spend += spend;
            s.requests += requests;
            s.cache_hits += unsigned(*hits);
            s.spend += spend;
            s.unpriced += requests.saturating_sub(priced);
            if !class.is_empty() {
                *errors.entry(class.clone()).or_default() += requests;
            }
        }
        s.errors = errors.into_iter().collect();
        for (b, value, median, p50, p99) in durations {
            let value = unsigned(value);
            if median && let Some(point) = bucket_start(&b).and_then(|t| points.get_mut(&t)) {
                point.p50_ms = Some(value);
            }
            if p50 {
                s.latency_p50_ms = Some(value);
            }
            if p99 {
                s.latency_p99_ms = Some(value);
            }
        }
        for (value, p50, p99) in overheads {
            if p50 {
                s.overhead_p50_ms = Some(value);
            }
            if p99 {
                s.overhead_p99_ms = Some(value);
            }
        }
        s.series = overview::series(bucket, from, to, points);
        Ok(s)
    }
}

/// Per bucket and error class: `(bucket, class, requests, failed, cache hits, spend, priced)`.
type SumRow = (String, String, i64, i64, i64, Option<String>, i64);

pub(super) fn add(total: &mut Totals, t: &Totals) {
    total.requests += t.requests;
    total.failed += t.failed;
    total.input_tokens += t.input_tokens;
    total.output_tokens += t.output_tokens;
    total.cache_read_tokens += t.cache_read_tokens;
    total.cache_write_tokens += t.cache_write_tokens;
    total.spend += t.spend;
    total.unpriced += t.unpriced;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_texts_read_back_as_their_start() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap();
        assert_eq!(bucket_start("2026-12-01"), Some(at("2026-12-01T00:00")));
        assert_eq!(bucket_start("2026-12-01T10"), Some(at("2026-12-01T10:00")));
        assert_eq!(bucket_start("2026-12-01T10:30"), Some(at("2026-12-01T10:30")));
        assert_eq!(bucket_start("2026-12-01 10:30"), Some(at("2026-12-01T10:30")));
    }

    #[test]
    fn sqlite_spend_texts_sum_exactly_and_a_non_decimal_is_unpriced() {
        let (sum, priced) = spend_sum(false, Some("0.1,0.2,junk,0.000000000001"), 4);
        assert_eq!(sum, Decimal::from_str("0.300000000001").unwrap());
        assert_eq!(priced, 3);
        assert_eq!(spend_sum(false, None, 0), (Decimal::ZERO, 0));
    }
}
