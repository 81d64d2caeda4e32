//! LiteLLM's spend routes over the ledger (master key required): `GET /spend/logs`,
//! `/spend/tags`, `/global/spend/report`, `/global/spend/logs`, in LiteLLM's shapes and
//! parameters (`litellm/proxy/spend_tracking/spend_management_endpoints.py`).
//!
//! Reads go through the ledger's own read-only pool ([`crate::ledger::read::Reader`]), never
//! the writer's connection, so a report never slows the request path. Where the shapes
//! differ from LiteLLM's, on purpose: a spend is the exact decimal (a JSON number), a
//! request of unknown cost is `null` in a row and counted in `unpriced_requests` beside a
//! sum (never added as 0), `api_key` may be the raw `sk-` key or its hash everywhere, the
//! filters combine, and a row list is bounded by `limit`.
//!
//! Dates are LiteLLM's: `YYYY-MM-DD`, UTC, `start_date` from 00:00 and `end_date` up to
//! 00:00 of that day (`startTime BETWEEN start AND end`), so the end day itself is not in.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Days, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use super::AppState;
use crate::attribution::hash_key;
use crate::classify::{ApiError, Diagnosis, ErrorKind};
use crate::ledger::read::{Entry, Filter, ReadError, Reader, decimal_number};
use crate::ledger::report::{Builder, By, Totals};
use crate::surface::openai;

/// Rows `/spend/logs` returns unless `limit` says otherwise, and at most.
pub const DEFAULT_LIMIT: usize = 1_000;
pub const MAX_LIMIT: usize = 10_000;

type Params = Query<HashMap<String, String>>;

pub async fn logs(State(state): State<Arc<AppState>>, Query(q): Params) -> Response {
    answer(logs_inner(&state, &q).await)
}

pub async fn tags(State(state): State<Arc<AppState>>, Query(q): Params) -> Response {
    answer(tags_inner(&state, &q).await)
}

pub async fn report(State(state): State<Arc<AppState>>, Query(q): Params) -> Response {
    answer(report_inner(&state, &q).await)
}

pub async fn global_logs(State(state): State<Arc<AppState>>, Query(q): Params) -> Response {
    answer(global_logs_inner(&state, &q).await)
}

/// A JSON body, with `x-switchyard-truncated: true` when a row list hit its limit.
struct Answer {
    body: Value,
    truncated: bool,
}

impl From<Value> for Answer {
    fn from(body: Value) -> Self {
        Self { body, truncated: false }
    }
}

fn answer(result: Result<Answer, ApiError>) -> Response {
    match result {
        Ok(a) => {
            let bytes = serde_json::to_vec(&a.body).unwrap_or_default();
            let mut response =
                (StatusCode::OK, [(CONTENT_TYPE, "application/json")], bytes).into_response();
            if a.truncated {
                response
                    .headers_mut()
                    .insert("x-switchyard-truncated", HeaderValue::from_static("true"));
            }
            response
        }
        Err(err) => openai::error_response(&err),
    }
}

async fn logs_inner(state: &AppState, q: &HashMap<String, String>) -> Result<Answer, ApiError> {
    let reader = reader(state)?;
    let (start, end) = (day(q, "start_date")?, day(q, "end_date")?);
    let filter = Filter {
        start: start.map(midnight),
        end: end.map(through_midnight),
        request_id: text(q, "request_id"),
        api_key: text(q, "api_key").map(|k| stored_key(&k)),
        user: text(q, "user_id"),
        ..Filter::default()
    };
    let summarize = flag(q, "summarize", true)?;
    if let (Some(start), Some(end), true) = (start, end, summarize)
        && start <= end
    {
        return Ok(daily_summary(reader, &filter, end).await?.into());
    }
    let limit = limit(q)?;
    match reader.rows(&filter, limit).await {
        Ok((rows, truncated)) => Ok(Answer { body: Value::Array(rows), truncated }),
        Err(ReadError::Missing { .. }) => Ok(json!([]).into()),
        Err(e) => Err(unavailable(&e)),
    }
}

/// LiteLLM's `summarize=true` answer: per day, the spend, per key hash, per user, per model;
/// days after the last one with requests up to `end_date` are listed with 0.
async fn daily_summary(
    reader: &Reader,
    filter: &Filter,
    end: NaiveDate,
) -> Result<Value, ApiError> {
    #[derive(Default)]
    struct Day {
        all: Totals,
        keys: BTreeMap<String, Totals>,
        users: BTreeMap<String, Totals>,
        models: BTreeMap<String, Totals>,
    }
    let mut days: BTreeMap<NaiveDate, Day> = BTreeMap::new();
    scan(reader, filter, &mut |e| {
        let day = days.entry(e.start.date()).or_default();
        day.all.add(&e);
        day.keys.entry(e.api_key.clone()).or_default().add(&e);
        day.users.entry(e.user.clone()).or_default().add(&e);
        day.models.entry(e.model.clone()).or_default().add(&e);
    })
    .await?;
    let sums = |m: &BTreeMap<String, Totals>| -> Value {
        m.iter().map(|(k, t)| (k.clone(), decimal_number(t.spend))).collect::<Map<_, _>>().into()
    };
    let mut out = Vec::new();
    let last = days.keys().next_back().copied();
    for (date, day) in &days {
        let mut row = Map::new();
        for (key, t) in &day.keys {
            row.insert(key.clone(), decimal_number(t.spend));
        }
        row.insert("startTime".into(), json!(date.format("%Y-%m-%d").to_string()));
        row.insert("spend".into(), decimal_number(day.all.spend));
        row.insert("users".into(), sums(&day.users));
        row.insert("models".into(), sums(&day.models));
        if day.all.unpriced > 0 {
            row.insert("unpriced_requests".into(), json!(day.all.unpriced));
        }
        out.push(Value::Object(row));
    }
    if let Some(mut date) = last {
        while let Some(next) = date.checked_add_days(Days::new(1)).filter(|d| *d <= end) {
            out.push(json!({"startTime": next.format("%Y-%m-%d").to_string(), "spend": 0,
                            "users": {}, "models": {}}));
            date = next;
        }
    }
    Ok(Value::Array(out))
}

async fn tags_inner(state: &AppState, q: &HashMap<String, String>) -> Result<Answer, ApiError> {
    let reader = reader(state)?;
    let filter = Filter {
        start: day(q, "start_date")?.map(midnight),
        end: day(q, "end_date")?.map(through_midnight),
        ..Filter::default()
    };
    let mut report = Builder::new(By::Tag);
    scan(reader, &filter, &mut |e| report.add(&e)).await?;
    let rows: Vec<Value> = report
        .finish()
        .groups
        .into_iter()
        .filter(|g| !g.key.is_empty())
        .map(|g| {
            json!({
                "individual_request_tag": g.key,
                "log_count": g.totals.requests,
                "total_spend": decimal_number(g.totals.spend),
                "unpriced_requests": g.totals.unpriced,
            })
        })
        .collect();
    Ok(Value::Array(rows).into())
}

async fn report_inner(state: &AppState, q: &HashMap<String, String>) -> Result<Answer, ApiError> {
    let reader = reader(state)?;
    let (Some(start), Some(end)) = (day(q, "start_date")?, day(q, "end_date")?) else {
        return Err(bad_param(
            "start_date",
            "Please provide start_date and end_date.",
            "`/global/spend/report` needs both dates.",
        ));
    };
    let group_by = text(q, "group_by").unwrap_or_else(|| "team".to_owned());
    if !matches!(group_by.as_str(), "team" | "customer" | "api_key") {
        return Err(bad_param(
            "group_by",
            &format!("group_by must be team, customer or api_key, not `{group_by}`."),
            "LiteLLM's report groups by team, customer or api_key.",
        ));
    }
    let mut filter = Filter {
        start: Some(midnight(start)),
        end: Some(through_midnight(end)),
        ..Filter::default()
    };
    let key = text(q, "api_key");
    let user = text(q, "internal_user_id");
    if key.is_some() || user.is_some() || group_by == "api_key" {
        filter.api_key = key.map(|k| stored_key(&k));
        filter.user = user;
        return Ok(by_key(reader, &filter).await?.into());
    }
    by_day(reader, &filter, group_by == "team").await.map(Answer::from)
}

/// `[{"api_key", "total_cost", "total_input_tokens", "total_output_tokens", "model_details"}]`,
/// costliest first.
async fn by_key(reader: &Reader, filter: &Filter) -> Result<Value, ApiError> {
    let mut keys: BTreeMap<String, (Totals, BTreeMap<String, Totals>)> = BTreeMap::new();
    scan(reader, filter, &mut |e| {
        let (all, models) = keys.entry(e.api_key.clone()).or_default();
        all.add(&e);
        models.entry(e.model.clone()).or_default().add(&e);
    })
    .await?;
    let mut rows: Vec<(Totals, Value)> = keys
        .into_iter()
        .map(|(key, (all, models))| {
            let details: Vec<Value> = models
                .into_iter()
                .map(|(model, t)| {
                    json!({"model": model, "total_cost": decimal_number(t.spend),
                           "total_input_tokens": t.input_tokens,
                           "total_output_tokens": t.output_tokens,
                           "unpriced_requests": t.unpriced})
                })
                .collect();
            let row = json!({"api_key": key, "total_cost": decimal_number(all.spend),
                             "total_input_tokens": all.input_tokens,
                             "total_output_tokens": all.output_tokens,
                             "unpriced_requests": all.unpriced,
                             "model_details": details});
            (all, row)
        })
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.0.spend));
    Ok(Value::Array(rows.into_iter().map(|(_, row)| row).collect()))
}

/// `[{"group_by_day", "teams"|"customers": [{"team_name"|"customer", "total_spend",
/// "metadata": [{"model", "api_key", "spend", "total_tokens"}]}]}]`, days in order.
async fn by_day(reader: &Reader, filter: &Filter, teams: bool) -> Result<Value, ApiError> {
    /// Per (model, key hash).
    type Parts = BTreeMap<(String, String), Totals>;
    /// Per team or customer (`None`: a request that named no end user).
    type Groups = BTreeMap<Option<String>, Parts>;
    let mut days: BTreeMap<NaiveDate, Groups> = BTreeMap::new();
    scan(reader, filter, &mut |e| {
        let who = if teams {
            Some(if e.team_id.is_empty() {
                "Unassigned Team".to_owned()
            } else {
                e.team_id.clone()
            })
        } else {
            Some(e.end_user.clone()).filter(|u| !u.is_empty())
        };
        days.entry(e.start.date())
            .or_default()
            .entry(who)
            .or_default()
            .entry((e.model.clone(), e.api_key.clone()))
            .or_default()
            .add(&e);
    })
    .await?;
    let (list, name) = if teams { ("teams", "team_name") } else { ("customers", "customer") };
    let out: Vec<Value> = days
        .into_iter()
        .map(|(date, groups)| {
            let groups: Vec<Value> = groups
                .into_iter()
                .map(|(who, parts)| {
                    let mut all = Totals::default();
                    let metadata: Vec<Value> = parts
                        .into_iter()
                        .map(|((model, key), t)| {
                            merge(&mut all, &t);
                            json!({"model": model, "api_key": key,
                                   "spend": decimal_number(t.spend),
                                   "total_tokens": t.input_tokens + t.output_tokens,
                                   "unpriced_requests": t.unpriced})
                        })
                        .collect();
                    json!({name: who, "total_spend": decimal_number(all.spend),
                           "unpriced_requests": all.unpriced, "metadata": metadata})
                })
                .collect();
            json!({"group_by_day": format!("{}T00:00:00+00:00", date.format("%Y-%m-%d")),
                   list: groups})
        })
        .collect();
    Ok(Value::Array(out))
}

fn merge(into: &mut Totals, t: &Totals) {
    into.requests += t.requests;
    into.failed += t.failed;
    into.input_tokens += t.input_tokens;
    into.output_tokens += t.output_tokens;
    into.cache_read_tokens += t.cache_read_tokens;
    into.cache_write_tokens += t.cache_write_tokens;
    into.spend += t.spend;
    into.unpriced += t.unpriced;
}

/// LiteLLM's `MonthlyGlobalSpend` (or `…PerKey`): spend per day over the last 30 days.
async fn global_logs_inner(
    state: &AppState,
    q: &HashMap<String, String>,
) -> Result<Answer, ApiError> {
    let reader = reader(state)?;
    let key = text(q, "api_key").map(|k| stored_key(&k));
    let today = Utc::now().date_naive();
    let since = today.checked_sub_days(Days::new(30)).unwrap_or(today);
    let filter = Filter { start: Some(midnight(since)), api_key: key.clone(), ..Filter::default() };
    let mut report = Builder::new(By::Day);
    scan(reader, &filter, &mut |e| report.add(&e)).await?;
    let rows: Vec<Value> = report
        .finish()
        .groups
        .into_iter()
        .map(|g| {
            let mut row = json!({"date": g.key, "spend": decimal_number(g.totals.spend),
                                 "unpriced_requests": g.totals.unpriced});
            if let Some(key) = &key {
                row["api_key"] = json!(key);
            }
            row
        })
        .collect();
    Ok(Value::Array(rows).into())
}

pub(super) fn reader(state: &AppState) -> Result<&Reader, ApiError> {
    state.ledger().and_then(|l| l.reader()).ok_or_else(|| {
        ApiError::new(ErrorKind::Internal, "The spend ledger is not open in this gateway.")
            .with_diagnosis(Diagnosis::new(
                "LED-01",
                "The gateway could not open its ledger at start (its log says why: usually a \
                 state directory it cannot create), so nothing is recorded or readable.",
                "Fix the state directory (`--state-dir`) or set `general_settings.database_url`, \
                 then restart the gateway.",
            ))
    })
}

/// Every matching entry; no ledger yet is no rows, not an error.
pub(super) async fn scan(
    reader: &Reader,
    filter: &Filter,
    visit: &mut (dyn FnMut(Entry) + Send),
) -> Result<(), ApiError> {
    match reader.scan(filter, visit).await {
        Ok(()) | Err(ReadError::Missing { .. }) => Ok(()),
        Err(e) => Err(unavailable(&e)),
    }
}

pub(super) fn unavailable(e: &ReadError) -> ApiError {
    ApiError::new(ErrorKind::Internal, "The spend ledger cannot be read.").with_diagnosis(
        Diagnosis::new(
            "LED-01",
            format!("{e}."),
            "Check that the database is running and reachable with `general_settings.\
             database_url` (`switchyard status` shows the ledger's state); requests are still \
             served and recorded meanwhile.",
        ),
    )
}

fn bad_param(param: &str, message: &str, cause: &str) -> ApiError {
    ApiError::invalid_request(message, Some(param)).with_diagnosis(Diagnosis::new(
        "LED-03",
        cause,
        "Dates are `YYYY-MM-DD` (UTC), e.g. `?start_date=2026-12-01&end_date=2026-12-31`; see \
         the README's \"Reading spend\".",
    ))
}

fn text(q: &HashMap<String, String>, name: &str) -> Option<String> {
    q.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// LiteLLM stores a key's sha256 hex; a raw `sk-` key is hashed as the gateway hashes it.
pub(super) fn stored_key(key: &str) -> String {
    if key.starts_with("sk-") { hash_key(key) } else { key.to_owned() }
}

fn day(q: &HashMap<String, String>, name: &str) -> Result<Option<NaiveDate>, ApiError> {
    let Some(value) = text(q, name) else { return Ok(None) };
    NaiveDate::parse_from_str(&value, "%Y-%m-%d").map(Some).map_err(|_| {
        bad_param(
            name,
            &format!("{name} must be a date written YYYY-MM-DD, not `{value}`."),
            "The spend routes take LiteLLM's date parameters: a day, in UTC.",
        )
    })
}

fn flag(q: &HashMap<String, String>, name: &str, default: bool) -> Result<bool, ApiError> {
    match text(q, name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(bad_param(
            name,
            &format!("{name} must be true or false, not `{other}`."),
            "A boolean parameter.",
        )),
    }
}

fn limit(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    let Some(value) = text(q, "limit") else { return Ok(DEFAULT_LIMIT) };
    value.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
        bad_param(
            "limit",
            &format!("limit must be a number from 1 to {MAX_LIMIT}, not `{value}`."),
            "A row list is bounded so an answer stays small.",
        )
    })
}

fn midnight(d: NaiveDate) -> NaiveDateTime {
    d.and_time(chrono::NaiveTime::MIN)
}

/// LiteLLM's end bound (`startTime <= end_date 00:00:00`) as an exclusive one at the
/// ledger's millisecond precision.
fn through_midnight(d: NaiveDate) -> NaiveDateTime {
    midnight(d) + chrono::Duration::milliseconds(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_key_is_hashed_and_a_hash_is_kept() {
        assert_eq!(stored_key("sk-abc"), hash_key("sk-abc"));
        let hash = hash_key("sk-abc");
        assert_eq!(stored_key(&hash), hash);
    }

    #[test]
    fn dates_are_litellms_and_a_bad_one_names_itself() {
        let mut q = HashMap::new();
        q.insert("start_date".to_owned(), "2026-12-01".to_owned());
        q.insert("end_date".to_owned(), "12/31/2026".to_owned());
        assert_eq!(day(&q, "start_date").unwrap(), NaiveDate::from_ymd_opt(2026, 12, 1));
        let err = day(&q, "end_date").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
        assert_eq!(err.diagnosis.as_ref().unwrap().id, "LED-03");
        assert!(err.message.contains("12/31/2026"));
    }
}
