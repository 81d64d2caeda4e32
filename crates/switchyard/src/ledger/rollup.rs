//! Hourly rollups of the ledger, so a report over a week of traffic reads a few thousand
//! summed rows instead of every request.
//!
//! `switchyard_rollup` holds, per hour and per grouping (`dim`: alias, model, deployment,
//! provider, user, key, session, team, tag, and for the overview the error class, the
//! duration and the overhead), each value's request count, failures, cache hits, token sums,
//! exact spend and priced count. It always equals the rows:
//!
//! - PostgreSQL: statement-level `AFTER INSERT` / `AFTER DELETE` triggers with a transition
//!   table keep it, so a batch updates it once per statement, rows another writer (LiteLLM)
//!   inserts or deletes count too, and a replayed row the insert skipped (`ON CONFLICT DO
//!   NOTHING`) is not in the transition table;
//! - SQLite (the gateway's own file, one writer): the writer adds the rows an insert actually
//!   inserted, and takes off the rows retention deletes, in the same transaction ([`Facts`]:
//!   the same values the SQL computes, summed in Rust — a row trigger evaluating the
//!   groupings' SQL cost hundreds of µs per row).
//!
//! Spend stays exact: PostgreSQL sums `numeric`; SQLite adds each decimal with at most 6
//! integer and 12 fractional digits as an integer of 10⁻¹² units and keeps any other value's
//! text (summed as decimals when read). Durations and overheads are kept at two significant
//! digits ([`bucket`]): a percentile read from the rollup is the exact percentile of the rows
//! truncated to that resolution (truncating keeps the order, so the rank picks the same row).
//!
//! The table (with its triggers) and a backfill from the rows already there are created in
//! one transaction, once (an existing LiteLLM database is summed when the gateway first
//! starts on it); on PostgreSQL under the advisory lock the ledger's other DDL takes, so
//! replicas starting together create it once. A range that does not start or end on an hour
//! reads its partial hours from the rows; reports filtered by key, user, alias, tag or status
//! read the rows as before.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime, Timelike};

use super::aggregate::{Failed, add, bucket_start, unsigned};
use super::overview::{self, Bucket, Point, Summary};
use super::read::{Filter, Opened, Reader, undefined_column};
use super::report::{By, Group, Report, Totals};
use super::store::describe;

/// The groupings the rollup keeps, by their `dim` name.
pub(super) const DIMS: &[&str] = &[
    "alias",
    "model",
    "deployment",
    "provider",
    "user",
    "key",
    "session",
    "team",
    "tag",
    "class",
    "dur",
    "ovh",
];

/// The columns of `"LiteLLM_SpendLogs"` the PostgreSQL rollup needs; a table an older
/// LiteLLM created without one of them gets no rollup (its reports read the rows).
pub(super) const PG_COLUMNS: &[&str] = &[
    "request_id",
    "startTime",
    "model_group",
    "model",
    "model_id",
    "custom_llm_provider",
    "end_user",
    "api_key",
    "session_id",
    "team_id",
    "request_tags",
    "status",
    "cache_hit",
    "prompt_tokens",
    "completion_tokens",
    "spend",
    "request_duration_ms",
    "metadata",
];

/// `10⁻¹²` units per unit of spend in SQLite's integer sums.
pub(super) const UNITS: i64 = 1_000_000_000_000;

pub(super) const TABLE: &str = "switchyard_rollup";

/// The transaction setting by which the gateway's writer tells PostgreSQL's insert trigger
/// it sums its batch itself.
pub(super) const WRITER_SETTING: &str = "switchyard.rollup";

/// A value kept at two significant digits, truncated: below 100 as it is, else with all but
/// its two leading digits zeroed (`1234` → `1200`). Durations are in ms, overheads in µs.
pub fn bucket(v: i64) -> i64 {
    if v < 100 {
        return v;
    }
    let digits = v.to_string().len() as u32;
    let p = 10_i64.pow(digits - 2);
    v - v % p
}

/// An overhead in ms as the rollup keeps it: whole µs, truncated, then [`bucket`].
pub fn overhead_bucket(ms: f64) -> f64 {
    bucket((ms * 1000.0).trunc() as i64) as f64 / 1000.0
}

pub(super) struct Sql {
    pub postgres: bool,
}

impl Sql {
    /// The value a row has for `dim`, over the base row `r` (see [`Sql::base`]).
    fn value(&self, dim: &str) -> &'static str {
        match dim {
            "alias" => "r.alias",
            "model" => "r.model",
            "deployment" => "r.dep",
            "provider" => "r.prov",
            "user" => "r.usr",
            "key" => "r.akey",
            "session" => "r.sess",
            "team" => "r.team",
            "tag" => "r.tag",
            "class" => "r.cls",
            "dur" => "r.dur",
            _ => "r.ovh",
        }
    }

    /// The spend columns of the rollup, in order.
    pub fn spend_columns(&self) -> &'static str {
        if self.postgres { r#""spend""# } else { r#""units", "rest""# }
    }

    /// What every grouping needs of a row of the table aliased `t`, as `(name, expression)`;
    /// `sign` is 1 for rows added, -1 for rows deleted.
    fn fields(&self, sign: i64) -> Vec<(&'static str, String)> {
        let d = super::aggregate::Dialect { postgres: self.postgres };
        let text = |c: &str| format!(r#"coalesce(t."{c}", '')"#);
        let (hour, class, hit, dur, ovh) = if self.postgres {
            (
                r#"date_trunc('hour', t."startTime")"#.to_owned(),
                r#"coalesce(t."metadata"->>'error_class', t."metadata"->'error_information'->>'error_class', '')"#,
                r#"CASE WHEN lower(t."cache_hit") = 'true' THEN 1 ELSE 0 END"#,
                r#"CASE WHEN t."request_duration_ms" >= 0 THEN t."request_duration_ms"::bigint END"#,
                // Whole µs; an absurd value is left out rather than failing the insert.
                r#"CASE WHEN jsonb_typeof(t."metadata"->'litellm_overhead_time_ms') = 'number' THEN
 CASE WHEN abs((t."metadata"->>'litellm_overhead_time_ms')::numeric) < 1000000000000
 THEN trunc((t."metadata"->>'litellm_overhead_time_ms')::float8 * 1000)::bigint END END"#,
            )
        } else {
            (
                r#"substr(t."startTime", 1, 13)"#.to_owned(),
                r#"coalesce(t."error_class", '')"#,
                r#"CASE WHEN lower(t."cache_hit") = 'true' THEN 1 ELSE 0 END"#,
                r#"CASE WHEN typeof(t."request_duration_ms") = 'integer' AND t."request_duration_ms" >= 0 THEN min(t."request_duration_ms", 4294967295) END"#,
                r#"CASE WHEN json_valid(t."metadata") THEN CASE WHEN json_type(t."metadata", '$.litellm_overhead_time_ms') IN ('integer', 'real')
 AND abs(json_extract(t."metadata", '$.litellm_overhead_time_ms')) < 1e12
 THEN CAST(CAST(json_extract(t."metadata", '$.litellm_overhead_time_ms') AS REAL) * 1000 AS INTEGER) END END"#,
            )
        };
        let spend: Vec<(&str, String)> = if self.postgres {
            vec![
                ("spend", format!("{sign} * ({})", d.spend())),
                ("priced", format!("CASE WHEN ({}) IS NULL THEN 0 ELSE {sign} END", d.spend())),
            ]
        } else {
            let s = r#"t."spend""#;
            let ok = format!(
                "({s} GLOB '[0-9]*' AND {s} NOT GLOB '*[^0-9.]*' AND {s} NOT GLOB '*.*.*' \
                 AND {s} NOT GLOB '*.' AND CASE WHEN instr({s}, '.') = 0 THEN length({s}) <= 6 \
                 ELSE instr({s}, '.') <= 7 AND length({s}) - instr({s}, '.') <= 12 END)"
            );
            let units = format!(
                "CASE WHEN {ok} THEN CAST(substr({s}, 1, CASE WHEN instr({s}, '.') = 0 THEN length({s}) \
                 ELSE instr({s}, '.') - 1 END) AS INTEGER) * {UNITS} + CAST(substr(CASE WHEN instr({s}, '.') = 0 \
                 THEN '' ELSE substr({s}, instr({s}, '.') + 1) END || '000000000000', 1, 12) AS INTEGER) ELSE 0 END"
            );
            // A deleted row's odd value is kept marked, to be subtracted when read.
            let mark = if sign < 0 { "'~' || " } else { "" };
            vec![
                ("units", format!("{sign} * ({units})")),
                ("rest", format!("CASE WHEN {s} IS NOT NULL AND NOT {ok} THEN {mark}{s} END")),
                ("priced", format!("CASE WHEN {ok} THEN {sign} ELSE 0 END")),
            ]
        };
        vec![
            ("rid", r#"t."request_id""#.to_owned()),
            ("hour", hour),
            ("alias", text("model_group")),
            ("model", text("model")),
            ("dep", text("model_id")),
            ("prov", text("custom_llm_provider")),
            ("usr", text("end_user")),
            ("akey", text("api_key")),
            ("sess", text("session_id")),
            ("team", text("team_id")),
            ("tags", r#"t."request_tags""#.to_owned()),
            ("label", format!("nullif({}, '')", d.key_alias())),
            ("requests", sign.to_string()),
            ("failed", format!("{sign} * {}", d.failed())),
            (
                "cls",
                format!(
                    r#"CASE WHEN t."status" = 'failure' THEN coalesce(nullif({class}, ''), 'unknown') ELSE '' END"#
                ),
            ),
            ("hits", format!("{sign} * {hit}")),
            ("pt", format!("{sign} * {}", d.count("prompt_tokens"))),
            ("ct", format!("{sign} * {}", d.count("completion_tokens"))),
            ("crt", format!("{sign} * {}", d.count("cache_read_input_tokens"))),
            ("cwt", format!("{sign} * {}", d.count("cache_creation_input_tokens"))),
        ]
        .into_iter()
        .chain(spend)
        .chain([("dur", self.bucketed(dur)), ("ovh", self.bucketed(ovh))])
        .collect()
    }

    /// One row per row of `source` (aliased `t`), with what every grouping needs.
    fn base(&self, source: &str, sign: i64) -> String {
        let fields: Vec<String> =
            self.fields(sign).into_iter().map(|(name, expr)| format!("{expr} AS {name}")).collect();
        format!("SELECT {} FROM {source} t", fields.join(", "))
    }

    /// [`bucket`] in SQL, as text (the rollup's `value`).
    fn bucketed(&self, v: &str) -> String {
        if self.postgres {
            format!(
                "CASE WHEN ({v}) < 100 THEN ({v})::text ELSE (({v}) - ({v}) % \
                 substr('10000000000000000000', 1, length(({v})::text) - 1)::bigint)::text END"
            )
        } else {
            format!(
                "CASE WHEN ({v}) IS NULL THEN NULL WHEN ({v}) < 100 THEN CAST(({v}) AS TEXT) ELSE \
                 CAST(({v}) - ({v}) % CAST(substr('10000000000000000000', 1, length({v}) - 1) AS INTEGER) AS TEXT) END"
            )
        }
    }

    /// The rows of `source`, once per grouping of `dims` (and once per distinct tag), in the
    /// rollup's columns: `hour, dim, value, label, requests, failed, hits, pt, ct, crt, cwt,
    /// <spend columns>, priced`.
    pub fn expand(&self, source: &str, sign: i64, dims: &[&str]) -> String {
        let base = self.base(source, sign);
        // PostgreSQL computes the rows once for every branch; SQLite expands only the few rows
        // of a range's partial hours, each branch with its own copy.
        let (with, r) = if self.postgres {
            (format!("WITH r AS ({base}) "), "r".to_owned())
        } else {
            (String::new(), format!("({base}) r"))
        };
        let spend = if self.postgres { "r.spend" } else { "r.units, r.rest" };
        let branches: Vec<String> = dims
            .iter()
            .map(|dim| {
                let from = match (*dim, self.postgres) {
                    ("tag", true) => format!(
                        r#"(SELECT r.*, coalesce(g.tag, '') AS tag FROM {r} LEFT JOIN LATERAL
 (SELECT DISTINCT e #>> '{{}}' AS tag FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.tags) = 'array'
 THEN r.tags ELSE '[]'::jsonb END) e WHERE jsonb_typeof(e) = 'string') g ON true) r"#
                    ),
                    // A tag written twice on one request counts it once: distinct per request.
                    ("tag", false) => format!(
                        r#"(SELECT DISTINCT r.*, coalesce(g0.value, '') AS tag FROM {r} LEFT JOIN
 json_each(CASE WHEN json_valid(r.tags) THEN CASE WHEN json_type(r.tags) = 'array' THEN r.tags END END) g0
 ON g0.type = 'text') r"#
                    ),
                    _ => r.clone(),
                };
                let only = match *dim {
                    "dur" => " WHERE r.dur IS NOT NULL",
                    "ovh" => " WHERE r.ovh IS NOT NULL",
                    _ => "",
                };
                format!(
                    "SELECT r.hour, '{dim}' AS dim, {value} AS value, r.label, r.requests, r.failed, \
                     r.hits, r.pt, r.ct, r.crt, r.cwt, {spend}, r.priced FROM {from}{only}",
                    value = self.value(dim),
                )
            })
            .collect();
        format!("{with}{}", branches.join(" UNION ALL "))
    }

    /// The upsert adding the rows of `source` (`sign` 1) or subtracting them (`sign` -1).
    pub fn upsert(&self, source: &str, sign: i64) -> String {
        let expanded = self.expand(source, sign, DIMS);
        let spend_sum = if self.postgres {
            "coalesce(sum(spend), 0)"
        } else {
            "sum(units), group_concat(rest, ',')"
        };
        // Sorted, so two writers' statements lock the rollup's rows in the same order.
        self.upsert_rows(&format!(
            "SELECT hour, dim, value, max(label), sum(requests), sum(failed), sum(hits), sum(pt), \
             sum(ct), sum(crt), sum(cwt), {spend_sum}, sum(priced) FROM ({expanded}) x \
             GROUP BY hour, dim, value ORDER BY hour, dim, value"
        ))
    }

    /// Adds `rows` (in the rollup's columns) to the rollup.
    fn upsert_rows(&self, rows: &str) -> String {
        // SQLite's rows are named by the table (it takes no alias on an insert in a trigger).
        let (alias, o) = if self.postgres { (" AS o", "o") } else { ("", TABLE) };
        let (spend_set, label) = if self.postgres {
            (
                format!(r#""spend" = {o}."spend" + excluded."spend""#),
                format!(r#"greatest({o}."label", excluded."label")"#),
            )
        } else {
            (
                format!(
                    r#""units" = "{o}"."units" + excluded."units", "rest" = CASE WHEN excluded."rest" IS NULL
 THEN "{o}"."rest" WHEN "{o}"."rest" IS NULL THEN excluded."rest" ELSE "{o}"."rest" || ',' || excluded."rest" END"#
                ),
                format!(
                    r#"coalesce(max("{o}"."label", excluded."label"), "{o}"."label", excluded."label")"#
                ),
            )
        };
        format!(
            r#"INSERT INTO "{TABLE}"{alias} ("hour", "dim", "value", "label", "requests", "failed",
 "hits", "pt", "ct", "crt", "cwt", {cols}, "priced")
 SELECT * FROM ({rows}) a WHERE true
 ON CONFLICT ("dim", "hour", "value") DO UPDATE SET "label" = {label},
 "requests" = {o}."requests" + excluded."requests", "failed" = {o}."failed" + excluded."failed",
 "hits" = {o}."hits" + excluded."hits", "pt" = {o}."pt" + excluded."pt", "ct" = {o}."ct" + excluded."ct",
 "crt" = {o}."crt" + excluded."crt", "cwt" = {o}."cwt" + excluded."cwt", {spend_set},
 "priced" = {o}."priced" + excluded."priced""#,
            cols = self.spend_columns(),
        )
    }

    fn create_table(&self) -> String {
        let (hour, int, spend, tail) = if self.postgres {
            ("TIMESTAMP(3)", "BIGINT", r#""spend" NUMERIC NOT NULL DEFAULT 0"#, "")
        } else {
            (
                "TEXT",
                "INTEGER",
                r#""units" INTEGER NOT NULL DEFAULT 0, "rest" TEXT"#,
                " WITHOUT ROWID",
            )
        };
        format!(
            r#"CREATE TABLE "{TABLE}" ("hour" {hour} NOT NULL, "dim" TEXT NOT NULL, "value" TEXT NOT NULL,
 "label" TEXT, "requests" {int} NOT NULL DEFAULT 0, "failed" {int} NOT NULL DEFAULT 0,
 "hits" {int} NOT NULL DEFAULT 0, "pt" {int} NOT NULL DEFAULT 0, "ct" {int} NOT NULL DEFAULT 0,
 "crt" {int} NOT NULL DEFAULT 0, "cwt" {int} NOT NULL DEFAULT 0, {spend},
 "priced" {int} NOT NULL DEFAULT 0, PRIMARY KEY ("dim", "hour", "value")){tail}"#
        )
    }

    /// SQLite: the table. Its writer keeps it (see [`Facts`]): a row trigger evaluating
    /// the groupings' SQL costs hundreds of µs per row, the same sums in Rust a few.
    pub fn sqlite_table(&self) -> String {
        self.create_table()
    }

    /// PostgreSQL: the trigger functions, replaced at every start so an upgrade brings its
    /// own. A failure inside one (a value no cast foresaw) must not fail the ledger's insert:
    /// the rows are what must never be lost, so the error is raised as a warning in the
    /// server's log and the statement goes on without its rollup update.
    ///
    /// The gateway's own batches are summed by its writer ([`PgDeltas`]) in the statement's
    /// transaction, which says so (`switchyard.rollup` = `writer`): the insert trigger leaves
    /// those to it and sums the rows of every other writer (LiteLLM's, a replay's fallback).
    pub fn pg_functions(&self) -> Vec<String> {
        let function = |name: &str, skip: &str, body: String| {
            format!(
                "CREATE OR REPLACE FUNCTION \"{name}\"() RETURNS trigger LANGUAGE plpgsql AS $rollup$ \
                 BEGIN {skip}BEGIN {body}; EXCEPTION WHEN OTHERS THEN RAISE WARNING \
                 '{TABLE}: % (SQLSTATE %): this statement''s rows are not in the rollup; reports \
                 over its hours are short until the rollup is rebuilt (drop table {TABLE} and restart \
                 a gateway)', SQLERRM, SQLSTATE; END; RETURN NULL; END $rollup$"
            )
        };
        let by_writer = format!(
            "IF current_setting('{WRITER_SETTING}', true) = 'writer' THEN RETURN NULL; END IF; "
        );
        vec![
            function(&format!("{TABLE}_insert"), &by_writer, self.upsert("new_rows", 1)),
            function(&format!("{TABLE}_delete"), "", self.upsert("old_rows", -1)),
        ]
    }

    /// PostgreSQL: the table, the statement triggers and the backfill, to run in one
    /// transaction when the table does not exist yet (after [`Sql::pg_functions`]).
    pub fn pg_setup(&self) -> Vec<String> {
        // Triggers left from a rollup table an operator dropped to have it rebuilt.
        let drop =
            |name: &str| format!(r#"DROP TRIGGER IF EXISTS "{name}" ON "LiteLLM_SpendLogs""#);
        vec![
            self.create_table(),
            drop(&format!("{TABLE}_insert")),
            drop(&format!("{TABLE}_delete")),
            format!(
                r#"CREATE TRIGGER "{TABLE}_insert" AFTER INSERT ON "LiteLLM_SpendLogs"
 REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "{TABLE}_insert"()"#
            ),
            format!(
                r#"CREATE TRIGGER "{TABLE}_delete" AFTER DELETE ON "LiteLLM_SpendLogs"
 REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "{TABLE}_delete"()"#
            ),
            self.upsert(r#""LiteLLM_SpendLogs""#, 1),
        ]
    }

    /// A time as an SQL literal comparable with `"startTime"`.
    pub fn time(&self, t: NaiveDateTime) -> String {
        if self.postgres {
            format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.3f"))
        } else {
            format!("'{}'", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
        }
    }

    /// An hour as an SQL literal comparable with the rollup's `"hour"`.
    pub fn hour(&self, t: NaiveDateTime) -> String {
        if self.postgres {
            format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:00:00"))
        } else {
            format!("'{}'", t.format("%Y-%m-%dT%H"))
        }
    }

    /// The rows a report reads for `dims` over `[from, to)`: the rollup's whole hours and,
    /// expanded the same way, the rows of the partial hours at either end. `None` when the
    /// range holds no whole hour (then the rows alone are read).
    pub fn ranged(
        &self,
        dims: &[&str],
        from: Option<NaiveDateTime>,
        to: Option<NaiveDateTime>,
    ) -> Option<String> {
        let (first, end) = whole_hours(from, to)?;
        let list: Vec<String> = dims.iter().map(|d| format!("'{d}'")).collect();
        let mut sql = format!(
            r#"SELECT "hour", "dim", "value", "label", "requests", "failed", "hits", "pt", "ct", "crt",
 "cwt", {}, "priced" FROM "{TABLE}" WHERE "dim" IN ({})"#,
            self.spend_columns(),
            list.join(", ")
        );
        if let Some(first) = first {
            sql.push_str(&format!(r#" AND "hour" >= {}"#, self.hour(first)));
        }
        if let Some(end) = end {
            sql.push_str(&format!(r#" AND "hour" < {}"#, self.hour(end)));
        }
        let mut edges = Vec::new();
        if let (Some(from), Some(first)) = (from, first)
            && from < first
        {
            edges.push(format!(
                r#"(t."startTime" >= {} AND t."startTime" < {})"#,
                self.time(from),
                self.time(first)
            ));
        }
        if let (Some(to), Some(end)) = (to, end)
            && end < to
        {
            edges.push(format!(
                r#"(t."startTime" >= {} AND t."startTime" < {})"#,
                self.time(end),
                self.time(to)
            ));
        }
        if !edges.is_empty() {
            let source =
                format!(r#"(SELECT * FROM "LiteLLM_SpendLogs" t WHERE {})"#, edges.join(" OR "));
            sql.push_str(" UNION ALL SELECT * FROM (");
            sql.push_str(&self.expand(&source, 1, dims));
            sql.push_str(") e");
        }
        Some(sql)
    }

    /// The summed spend of a group of rollup rows, read back by [`spend_of`].
    pub fn spend_read(&self) -> String {
        if self.postgres {
            "sum(spend)::text, '', ''".to_owned()
        } else {
            format!(
                "CAST(sum(units / {UNITS}) AS TEXT), CAST(sum(units % {UNITS}) AS TEXT), group_concat(rest, ',')"
            )
        }
    }
}

/// The whole hours of `[from, to)`: from the first hour boundary at or after `from` to the
/// last at or before `to` (`None` for an open end); `None` when there is no whole hour.
fn whole_hours(
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> Option<(Option<NaiveDateTime>, Option<NaiveDateTime>)> {
    let floor = |t: NaiveDateTime| {
        t.with_minute(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_nanosecond(0))
    };
    let first = match from {
        Some(f) => {
            let h = floor(f)?;
            Some(if h < f { h + Duration::hours(1) } else { h })
        }
        None => None,
    };
    let end = match to {
        Some(t) => Some(floor(t)?),
        None => None,
    };
    match (first, end) {
        (Some(a), Some(b)) if a >= b => None,
        _ => Some((first, end)),
    }
}

/// A group's spend and priced count from what [`Sql::spend_read`] gives: PostgreSQL's
/// `numeric` sum; SQLite's whole units, 10⁻¹² units and the odd values' texts (a `~` one was
/// deleted).
pub(super) fn spend_of(
    postgres: bool,
    parts: (Option<String>, Option<String>, Option<String>),
    priced: i64,
) -> (rust_decimal::Decimal, i64) {
    use rust_decimal::Decimal;
    use std::str::FromStr;
    let parse = |s: &str| Decimal::from_str(s).or_else(|_| Decimal::from_scientific(s)).ok();
    if postgres {
        let sum = parts.0.as_deref().and_then(parse).unwrap_or_default();
        return (sum, priced);
    }
    let whole = parts.0.as_deref().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let frac = parts.1.as_deref().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let mut sum = Decimal::from(whole) + Decimal::from_i128_with_scale(i128::from(frac), 12);
    let mut priced = priced;
    for value in parts.2.as_deref().unwrap_or_default().split(',').filter(|v| !v.is_empty()) {
        let (value, sign) = match value.strip_prefix('~') {
            Some(v) => (v, -1),
            None => (value, 1),
        };
        if let Ok(d) = Decimal::from_str(value) {
            sum += if sign < 0 { -d } else { d };
            priced += sign;
        }
    }
    (sum.normalize(), priced)
}

/// One rollup row's increments, as SQLite's writer adds them.
#[derive(Default)]
pub(super) struct Delta {
    pub label: Option<String>,
    pub requests: i64,
    pub failed: i64,
    pub hits: i64,
    pub pt: i64,
    pub ct: i64,
    pub crt: i64,
    pub cwt: i64,
    pub units: i64,
    pub rest: Vec<String>,
    pub priced: i64,
}

/// SQLite's spend text in 10⁻¹² units, when it has at most 6 integer and 12 fractional
/// digits (what the SQL of [`Sql::fields`] accepts; anything else is kept as text).
fn units_of(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 6 || !digits(int) || !digits(frac) || frac.len() > 12 {
        return None;
    }
    if s.contains('.') && frac.is_empty() {
        return None;
    }
    let frac: i64 = format!("{frac:0<12}").parse().ok()?;
    Some(int.parse::<i64>().ok()? * UNITS + frac)
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX).max(0)
}

/// What one SQLite row adds to the rollup: the values the SQL of [`Sql::fields`] computes
/// from the stored row, taken from the record being written or read back from the row.
pub(super) struct Facts {
    hour: String,
    keyed: Vec<(&'static str, String)>,
    tags: Vec<String>,
    label: Option<String>,
    failed: bool,
    class: String,
    hit: bool,
    tokens: [i64; 4],
    spend: Option<String>,
    dur: Option<String>,
    ovh: Option<String>,
}

impl Facts {
    pub fn of(r: &super::Record) -> Self {
        let start = super::sqlite::time(r.start_time);
        let failed = r.status == super::Outcome::Failure;
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            hour: start.get(..13).unwrap_or(&start).to_owned(),
            keyed: vec![
                ("alias", r.model_group.clone()),
                ("model", r.model.clone()),
                ("deployment", opt(&r.model_id)),
                ("provider", opt(&r.provider)),
                ("user", opt(&r.end_user)),
                ("key", r.api_key.clone()),
                ("session", opt(&r.session_id)),
                ("team", opt(&r.team_id)),
            ],
            tags: r.tags.clone(),
            label: r.key_alias.clone().filter(|a| !a.is_empty()),
            failed,
            class: if failed {
                r.error_class.clone().filter(|c| !c.is_empty()).unwrap_or_else(|| "unknown".into())
            } else {
                String::new()
            },
            hit: r.cache_hit,
            tokens: [
                count(r.tokens.prompt),
                count(r.tokens.completion),
                count(r.tokens.cache_read),
                count(r.tokens.cache_write),
            ],
            spend: r.spend.map(|s| s.to_string()),
            dur: Some(bucket(count(r.duration_ms).min(4_294_967_295)).to_string()),
            // As the row's `metadata` holds it: a non-finite number is written as null.
            ovh: r
                .overhead_ms
                .filter(|o| o.is_finite() && o.abs() < 1e12)
                .map(|o| bucket((o * 1000.0) as i64).to_string()),
        }
    }

    /// The `SELECT` of stored rows' facts, in [`Facts::read`]'s order, over `t`.
    pub fn sql(condition: &str) -> String {
        let sql = Sql { postgres: false };
        let fields: std::collections::HashMap<&str, String> = sql.fields(1).into_iter().collect();
        let names = [
            "hour", "alias", "model", "dep", "prov", "usr", "akey", "sess", "team", "tags",
            "label", "failed", "cls", "hits", "pt", "ct", "crt", "cwt",
        ];
        let mut columns: Vec<String> =
            names.iter().map(|n| fields.get(n).cloned().unwrap_or_default()).collect();
        columns.push(r#"CAST(t."spend" AS TEXT)"#.to_owned());
        columns.push(fields.get("dur").cloned().unwrap_or_default());
        columns.push(fields.get("ovh").cloned().unwrap_or_default());
        format!(r#"SELECT {} FROM "LiteLLM_SpendLogs" t WHERE {condition}"#, columns.join(", "))
    }

    pub fn read(row: &sqlx::sqlite::SqliteRow) -> Self {
        use sqlx::Row;
        let text = |i: usize| row.try_get::<Option<String>, _>(i).ok().flatten();
        let int = |i: usize| row.try_get::<Option<i64>, _>(i).ok().flatten().unwrap_or(0);
        let dims = ["alias", "model", "deployment", "provider", "user", "key", "session", "team"];
        // Invalid JSON, or not an array, is no tags, as the reports read it.
        let tags = text(9)
            .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        Self {
            hour: text(0).unwrap_or_default(),
            keyed: dims
                .iter()
                .enumerate()
                .map(|(i, d)| (*d, text(i + 1).unwrap_or_default()))
                .collect(),
            tags,
            label: text(10),
            failed: int(11) != 0,
            class: text(12).unwrap_or_default(),
            hit: int(13) != 0,
            tokens: [int(14), int(15), int(16), int(17)],
            spend: text(18),
            dur: text(19),
            ovh: text(20),
        }
    }
}

/// The rollup's rows keyed `(hour, dim, value)`, with their increments.
pub(super) type Deltas = BTreeMap<(String, &'static str, String), Delta>;

/// Adds a row's facts to `out` (`sign` 1), or takes them off (`sign` -1: a deleted row).
pub(super) fn add_facts(out: &mut Deltas, f: Facts, sign: i64) {
    let units = f.spend.as_deref().and_then(units_of);
    let rest = match (&f.spend, units) {
        (Some(s), None) if sign < 0 => Some(format!("~{s}")),
        (Some(s), None) => Some(s.clone()),
        _ => None,
    };
    let mut tags = f.tags;
    tags.sort();
    tags.dedup();
    if tags.is_empty() {
        tags.push(String::new());
    }
    let mut keyed = f.keyed;
    keyed.push(("class", f.class));
    keyed.extend(tags.into_iter().map(|t| ("tag", t)));
    for (dim, value) in keyed {
        let d = out.entry((f.hour.clone(), dim, value)).or_default();
        if f.label.is_some() && d.label < f.label {
            d.label.clone_from(&f.label);
        }
        d.requests += sign;
        d.failed += sign * i64::from(f.failed);
        d.hits += sign * i64::from(f.hit);
        d.pt += sign * f.tokens[0];
        d.ct += sign * f.tokens[1];
        d.crt += sign * f.tokens[2];
        d.cwt += sign * f.tokens[3];
        d.units += sign * units.unwrap_or(0);
        d.rest.extend(rest.clone());
        d.priced += sign * i64::from(units.is_some());
    }
    if let Some(v) = f.dur {
        out.entry((f.hour.clone(), "dur", v)).or_default().requests += sign;
    }
    if let Some(v) = f.ovh {
        out.entry((f.hour, "ovh", v)).or_default().requests += sign;
    }
}

/// A batch's rollup rows for PostgreSQL's [`Sql::pg_delta_upsert`], one array a column.
#[derive(Default)]
pub(super) struct PgDeltas {
    /// Hours since the epoch.
    pub hour: Vec<i64>,
    pub dim: Vec<&'static str>,
    pub value: Vec<String>,
    pub label: Vec<Option<String>>,
    /// requests, failed, hits, pt, ct, crt, cwt, priced.
    pub counts: [Vec<i64>; 8],
    pub spend: Vec<rust_decimal::Decimal>,
}

/// A grouping's value: a column's text, or a duration or overhead bucket.
#[derive(PartialEq, Eq, Hash)]
enum Value<'a> {
    Text(&'a str),
    Bucket(i64),
}

/// One rollup row's sums while a batch is added up.
#[derive(Default)]
struct Sums<'a> {
    label: Option<&'a str>,
    counts: [i64; 8],
    spend: rust_decimal::Decimal,
}

impl PgDeltas {
    /// What `rows`, every one of them inserted, add to the rollup: the values the insert
    /// trigger's SQL computes from the stored rows (`INTEGER` columns hold counts up to
    /// 2³¹ − 1, `metadata`'s cache token counts are read up to 18 digits; the spend is the
    /// exact decimal), summed per hour, grouping and value without copying a string until
    /// the sums are done. `tests/ui_data.rs` compares the rollup with the rows.
    pub fn of(rows: &[super::Record]) -> Self {
        type Key<'a> = (i64, &'static str, Value<'a>);
        let mut sums: std::collections::HashMap<Key<'_>, Sums<'_>, foldhash::fast::RandomState> =
            std::collections::HashMap::default();
        let int4 = |n: u64| i64::from(super::store::int(n));
        let digits18 = |n: u64| if n < 1_000_000_000_000_000_000 { count(n) } else { 0 };
        fn text(v: &Option<String>) -> &str {
            v.as_deref().unwrap_or_default()
        }
        let mut tags: Vec<&str> = Vec::new();
        for r in rows {
            let hour = r.start_time.timestamp().div_euclid(3600);
            let failed = r.status == super::Outcome::Failure;
            let class = match r.error_class.as_deref() {
                _ if !failed => "",
                Some(c) if !c.is_empty() => c,
                _ => "unknown",
            };
            let counts = [
                1,
                i64::from(failed),
                i64::from(r.cache_hit),
                int4(r.tokens.prompt),
                int4(r.tokens.completion),
                digits18(r.tokens.cache_read),
                digits18(r.tokens.cache_write),
                i64::from(r.spend.is_some()),
            ];
            let label = r.key_alias.as_deref().filter(|a| !a.is_empty());
            tags.clear();
            tags.extend(r.tags.iter().map(String::as_str));
            tags.sort_unstable();
            tags.dedup();
            if tags.is_empty() {
                tags.push("");
            }
            let keyed = [
                ("alias", r.model_group.as_str()),
                ("model", r.model.as_str()),
                ("deployment", text(&r.model_id)),
                ("provider", text(&r.provider)),
                ("user", text(&r.end_user)),
                ("key", r.api_key.as_str()),
                ("session", text(&r.session_id)),
                ("team", text(&r.team_id)),
                ("class", class),
            ];
            for (dim, value) in keyed.into_iter().chain(tags.iter().map(|t| ("tag", *t))) {
                let s = sums.entry((hour, dim, Value::Text(value))).or_default();
                if label.is_some() && s.label < label {
                    s.label = label;
                }
                for (sum, n) in s.counts.iter_mut().zip(counts) {
                    *sum += n;
                }
                s.spend += r.spend.unwrap_or_default();
            }
            let dur = bucket(int4(r.duration_ms));
            sums.entry((hour, "dur", Value::Bucket(dur))).or_default().counts[0] += 1;
            // As `metadata` holds it: a non-finite number is written as null.
            if let Some(o) = r.overhead_ms.filter(|o| o.is_finite() && o.abs() < 1e12) {
                let ovh = bucket((o * 1000.0) as i64);
                sums.entry((hour, "ovh", Value::Bucket(ovh))).or_default().counts[0] += 1;
            }
        }
        let mut out = Self::default();
        for ((hour, dim, value), s) in sums {
            out.hour.push(hour);
            out.dim.push(dim);
            out.value.push(match value {
                Value::Text(t) => t.to_owned(),
                Value::Bucket(b) => b.to_string(),
            });
            out.label.push(s.label.map(str::to_owned));
            for (column, n) in out.counts.iter_mut().zip(s.counts) {
                column.push(n);
            }
            out.spend.push(s.spend.normalize());
        }
        out
    }
}

impl Sql {
    /// PostgreSQL: the rows of [`PgDeltas`] added to the rollup, in the order the insert
    /// trigger locks them (so a LiteLLM writer's statement and the gateway's never deadlock).
    pub fn pg_delta_upsert(&self) -> String {
        self.upsert_rows(
            "SELECT to_timestamp(h * 3600) AT TIME ZONE 'UTC', d, v, l, r, f, hi, pt, ct, crt, cwt, s, p \
             FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], \
             $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::numeric[], \
             $13::int8[]) AS u(h, d, v, l, r, f, hi, pt, ct, crt, cwt, s, p) ORDER BY 1, 2, 3",
        )
    }

    /// SQLite: `n` rows of [`Delta`] added to the rollup, in one statement.
    pub fn delta_upsert(&self, n: usize) -> String {
        let slots = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; n].join(", ");
        self.upsert_rows(&format!("VALUES {slots}"))
    }
}

/// A report's row from the rollup: key, label, requests, failed, four token sums, the
/// spend parts, priced.
type RollupGroup = (
    String,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// An overview's row: bucket, dim, value, requests, failed, hits, the spend parts, priced.
type RollupPoint =
    (String, String, String, i64, i64, i64, Option<String>, Option<String>, Option<String>, i64);

/// Only a time range: anything else filters rows the rollup does not keep apart.
fn time_only(f: &Filter) -> bool {
    f.request_id.is_none()
        && f.api_key.is_none()
        && f.user.is_none()
        && f.alias.is_none()
        && f.tag.is_none()
        && f.failed.is_none()
        && f.before.is_none()
}

/// The rollup table is missing (an older gateway's database, or a LiteLLM table the rollup
/// could not be created on): the rows are read instead.
pub(super) fn no_rollup(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.code().as_deref() == Some("42P01") || d.message().contains("no such table")
    })
}

fn dim_of(by: By) -> &'static str {
    match by {
        By::Alias => "alias",
        By::Model => "model",
        By::Deployment => "deployment",
        By::Provider => "provider",
        By::User => "user",
        By::Key => "key",
        By::Session => "session",
        By::Team => "team",
        By::Tag => "tag",
        By::Day => "class",
    }
}

/// The nearest-rank percentile of a histogram (value → count), as [`overview`] picks it over
/// the values themselves.
fn ranked(hist: &BTreeMap<i64, i64>, p: i64) -> Option<i64> {
    let n: i64 = hist.values().filter(|c| **c > 0).sum();
    if n <= 0 {
        return None;
    }
    let rank = ((p * n + 99) / 100).max(1);
    let mut seen = 0;
    for (value, count) in hist.iter().filter(|(_, c)| **c > 0) {
        seen += count;
        if seen >= rank {
            return Some(*value);
        }
    }
    None
}

impl Reader {
    async fn rollup_rows<T>(&self, sql: &str) -> Result<Option<Vec<T>>, Failed>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        let (result, password) = match self.open().await.map_err(Failed::Read)? {
            Opened::Sqlite(pool) => (sqlx::query_as::<_, T>(sql).fetch_all(pool).await, None),
            Opened::Postgres(pool, password) => {
                (sqlx::query_as::<_, T>(sql).fetch_all(pool).await, password)
            }
        };
        match result {
            Ok(rows) => Ok(Some(rows)),
            Err(e) if no_rollup(&e) => Ok(None),
            Err(e) if undefined_column(&e) => Err(Failed::OldTable),
            Err(e) => Err(Failed::Read(self.unavailable(describe(&e, password).0))),
        }
    }

    /// The report from the rollup, when the filter is a time range holding a whole hour.
    pub(super) async fn report_rollup(
        &self,
        filter: &Filter,
        by: By,
    ) -> Result<Option<Report>, Failed> {
        if !time_only(filter) {
            return Ok(None);
        }
        let postgres = self.backend() == "postgres";
        let sql = Sql { postgres };
        let Some(groups) = self.rollup_groups(&sql, filter, dim_of(by), by == By::Day).await?
        else {
            return Ok(None);
        };
        let mut total = Totals::default();
        let mut out = Vec::with_capacity(groups.len());
        for (key, label, t) in groups {
            add(&mut total, &t);
            out.push(Group { key, key_alias: if by == By::Key { label } else { None }, totals: t });
        }
        if by == By::Tag {
            // A request counts under each of its tags, but once in the total.
            total = match self.rollup_groups(&sql, filter, "class", false).await? {
                Some(groups) => {
                    let mut total = Totals::default();
                    for (_, _, t) in &groups {
                        add(&mut total, t);
                    }
                    total
                }
                None => return Ok(None),
            };
        }
        Ok(Some(Report::new(by, out, total)))
    }

    async fn rollup_groups(
        &self,
        sql: &Sql,
        filter: &Filter,
        dim: &str,
        by_day: bool,
    ) -> Result<Option<Vec<(String, Option<String>, Totals)>>, Failed> {
        let Some(ranged) = sql.ranged(&[dim], filter.start, filter.end) else {
            return Ok(None);
        };
        let key = match (by_day, sql.postgres) {
            (true, true) => r#"to_char(hour, 'YYYY-MM-DD')"#,
            (true, false) => "substr(hour, 1, 10)",
            (false, _) if dim == "class" => "''",
            (false, _) => "value",
        };
        let int =
            |c: &str| if sql.postgres { format!("sum({c})::bigint") } else { format!("sum({c})") };
        let query = format!(
            "SELECT {key}, max(label), {}, {}, {}, {}, {}, {}, {}, {} FROM ({ranged}) x \
             GROUP BY 1 HAVING sum(requests) > 0",
            int("requests"),
            int("failed"),
            int("pt"),
            int("ct"),
            int("crt"),
            int("cwt"),
            sql.spend_read(),
            int("priced"),
        );
        let Some(rows) = self.rollup_rows::<RollupGroup>(&query).await? else {
            return Ok(None);
        };
        Ok(Some(
            rows.into_iter()
                .map(|r| {
                    let (spend, priced) = spend_of(sql.postgres, (r.8, r.9, r.10), r.11);
                    let requests = unsigned(r.2);
                    let totals = Totals {
                        requests,
                        failed: unsigned(r.3),
                        input_tokens: unsigned(r.4),
                        output_tokens: unsigned(r.5),
                        cache_read_tokens: unsigned(r.6),
                        cache_write_tokens: unsigned(r.7),
                        spend,
                        unpriced: requests.saturating_sub(unsigned(priced)),
                    };
                    (r.0, r.1, totals)
                })
                .collect(),
        ))
    }

    /// The overview from the rollup, when the filter is a time range of hours or days
    /// (a range charted by the minute reads the rows) holding a whole hour.
    pub(super) async fn overview_rollup(
        &self,
        filter: &Filter,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<Option<Summary>, Failed> {
        let bucket = Bucket::for_range(from, to);
        if !time_only(filter) || bucket == Bucket::Minute {
            return Ok(None);
        }
        let postgres = self.backend() == "postgres";
        let sql = Sql { postgres };
        let Some(ranged) = sql.ranged(&["class", "dur", "ovh"], filter.start, filter.end) else {
            return Ok(None);
        };
        let b = match (postgres, bucket) {
            (true, _) => {
                format!(r#"to_char(date_trunc('{}', hour), 'YYYY-MM-DD"T"HH24:MI')"#, bucket.name())
            }
            (false, Bucket::Day) => "substr(hour, 1, 10)".to_owned(),
            (false, _) => "hour".to_owned(),
        };
        let int =
            |c: &str| if postgres { format!("sum({c})::bigint") } else { format!("sum({c})") };
        let query = format!(
            "SELECT CASE WHEN dim = 'ovh' THEN '' ELSE {b} END, dim, value, {}, {}, {}, {}, {} \
             FROM ({ranged}) x GROUP BY 1, 2, 3",
            int("requests"),
            int("failed"),
            int("hits"),
            sql.spend_read(),
            int("priced"),
        );
        let Some(rows) = self.rollup_rows::<RollupPoint>(&query).await? else {
            return Ok(None);
        };
        let mut s = Summary::default();
        let mut points: BTreeMap<NaiveDateTime, Point> = BTreeMap::new();
        let mut point_durations: BTreeMap<NaiveDateTime, BTreeMap<i64, i64>> = BTreeMap::new();
        let mut durations: BTreeMap<i64, i64> = BTreeMap::new();
        let mut overheads: BTreeMap<i64, i64> = BTreeMap::new();
        for (b, dim, value, requests, failed, hits, s0, s1, s2, priced) in rows {
            match dim.as_str() {
                "class" => {
                    let start = bucket_start(&b).unwrap_or_default();
                    let (spend, priced) = spend_of(postgres, (s0, s1, s2), priced);
                    let (requests, failed) = (unsigned(requests), unsigned(failed));
                    if requests == 0 {
                        continue;
                    }
                    let point =
                        points.entry(start).or_insert_with(|| Point { start, ..Point::default() });
                    point.requests += requests;
                    point.errors += failed;
                    point.spend += spend;
                    s.requests += requests;
                    s.cache_hits += unsigned(hits);
                    s.spend += spend;
                    s.unpriced += requests.saturating_sub(unsigned(priced));
                    if !value.is_empty() {
                        *s.errors.entry(value).or_default() += requests;
                    }
                }
                "dur" => {
                    let Ok(v) = value.parse::<i64>() else { continue };
                    *durations.entry(v).or_default() += requests;
                    let start = bucket_start(&b).unwrap_or_default();
                    *point_durations.entry(start).or_default().entry(v).or_default() += requests;
                }
                _ => {
                    let Ok(v) = value.parse::<i64>() else { continue };
                    *overheads.entry(v).or_default() += requests;
                }
            }
        }
        for (start, hist) in &point_durations {
            if let Some(point) = points.get_mut(start) {
                point.p50_ms = ranked(hist, 50).map(unsigned);
            }
        }
        s.latency_p50_ms = ranked(&durations, 50).map(unsigned);
        s.latency_p99_ms = ranked(&durations, 99).map(unsigned);
        s.overhead_p50_ms = ranked(&overheads, 50).map(|v| v as f64 / 1000.0);
        s.overhead_p99_ms = ranked(&overheads, 99).map(|v| v as f64 / 1000.0);
        s.series = overview::series(bucket, from, to, points);
        s.spend = s.spend.normalize();
        Ok(Some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_significant_digits_truncated() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(99), 99);
        assert_eq!(bucket(100), 100);
        assert_eq!(bucket(109), 100);
        assert_eq!(bucket(1234), 1200);
        assert_eq!(bucket(3999), 3900);
        assert_eq!(overhead_bucket(0.123_456), 0.12);
        assert_eq!(overhead_bucket(0.05), 0.05);
    }

    #[test]
    fn whole_hours_of_a_range() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap();
        assert_eq!(
            whole_hours(Some(at("2026-12-01T10:30")), Some(at("2026-12-01T13:15"))),
            Some((Some(at("2026-12-01T11:00")), Some(at("2026-12-01T13:00"))))
        );
        assert_eq!(whole_hours(Some(at("2026-12-01T10:30")), Some(at("2026-12-01T11:15"))), None);
        assert_eq!(whole_hours(None, None), Some((None, None)));
    }

    #[test]
    fn sqlite_spend_parts_sum_exactly_and_deleted_odd_values_subtract() {
        let (sum, priced) = spend_of(
            false,
            (
                Some("12".into()),
                Some("300000000001".into()),
                Some("junk,0.1234567890123,~0.1234567890123".into()),
            ),
            3,
        );
        assert_eq!(sum.to_string(), "12.300000000001");
        assert_eq!(priced, 3);
    }
}
