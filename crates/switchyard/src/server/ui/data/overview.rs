//! `GET /ui/api/overview?from=&to=`: requests, failures by class, latency and gateway
//! overhead (p50/p99, from the ledger's `request_duration_ms` and
//! `metadata.litellm_overhead_time_ms`), cache hit rate, spend today and this month, the
//! budgets that apply with their spend in the current period, and a time series.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{Params, Scope, answer, json, rfc3339, window};
use crate::classify::ApiError;
use crate::ledger::SpendFilter;
use crate::ledger::overview::{Bucket, Builder};
use crate::ledger::read::{Filter, ReadError, decimal_number};
use crate::ledger::report::short_hash;
use crate::limits::Period;
use crate::server::AppState;
use crate::server::spend::{reader, unavailable};

pub async fn overview(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    Query(q): Query<Params>,
) -> Response {
    answer(inner(&state, &Scope::of(&parts), &q).await)
}

/// Budgets listed at most: the overview is a glance, the keys page has the rest.
const MAX_BUDGETS: usize = 50;

async fn inner(state: &AppState, scope: &Scope, q: &Params) -> Result<Response, ApiError> {
    let (from, to) = window(q, chrono::Duration::hours(24))?;
    let reader = reader(state)?;
    let filter = Filter {
        start: Some(from),
        end: Some(to),
        api_key: scope.token().map(str::to_owned),
        ..Filter::default()
    };
    let bucket = Bucket::for_range(from, to);
    let s = match reader.overview(&filter, from, to).await {
        Ok(s) => s,
        Err(ReadError::Missing { .. }) => Builder::new(from, to).finish(),
        Err(e) => return Err(unavailable(&e)),
    };
    let now = Utc::now();
    let mine = match scope.token() {
        Some(token) => SpendFilter::ApiKey(token.to_owned()),
        None => SpendFilter::All,
    };
    let mut wanted = vec![
        (mine.clone(), Period::Day.window(now).start),
        (mine, Period::Months(1).window(now).start),
    ];
    let budgets = budgets(state, scope, now, &mut wanted);
    let spent = reader.spent_since_each(&wanted).await.map_err(|e| unavailable(&e))?;
    let (today, month) = (spent[0], spent[1]);
    let budgets: Vec<Value> = budgets
        .into_iter()
        .zip(&spent[2..])
        .map(|(mut b, spend)| {
            b["spend"] = decimal_number(*spend);
            b
        })
        .collect();
    let rate = (s.requests > 0).then(|| s.cache_hits as f64 / s.requests as f64);
    let series: Vec<Value> = s
        .series
        .iter()
        .map(|p| {
            json!({"t": rfc3339(&p.start), "requests": p.requests, "errors": p.errors,
                   "spend": decimal_number(p.spend), "p50_ms": p.p50_ms})
        })
        .collect();
    Ok(json(&json!({
        "from": rfc3339(&from),
        "to": rfc3339(&to),
        "requests": s.requests,
        "errors": s.errors.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>(),
        "latency_ms": {"p50": s.latency_p50_ms, "p99": s.latency_p99_ms},
        "overhead_ms": {"p50": s.overhead_p50_ms, "p99": s.overhead_p99_ms},
        "cache": {"hits": s.cache_hits, "misses": s.requests - s.cache_hits, "hit_rate": rate},
        "spend": {"range": decimal_number(s.spend), "unpriced_requests": s.unpriced,
                  "today": decimal_number(today), "month": decimal_number(month)},
        "budgets": budgets,
        "bucket": bucket.name(),
        "series": series,
    })))
}

/// One budget to show: what it is, its limit and period, and what its rows say.
struct Budget {
    scope: &'static str,
    id: String,
    name: Option<String>,
    max_budget: f64,
    duration: Option<String>,
    filter: SpendFilter,
}

/// The budgets that apply to the caller: for the master key the global one and every key's,
/// team's and user's that has a `max_budget`; for a virtual key its own, its team's and its
/// user's. Each one's spend, the ledger's sum over its current period, is asked for by
/// pushing its filter and period start onto `wanted` (all of them summed in one query).
fn budgets(
    state: &AppState,
    scope: &Scope,
    now: DateTime<Utc>,
    wanted: &mut Vec<(SpendFilter, DateTime<Utc>)>,
) -> Vec<Value> {
    let mut list = Vec::new();
    match scope {
        Scope::All => {
            if let Some(global) = &state.runtime().config.budgets.global {
                list.push(Budget {
                    scope: "global",
                    id: "global".to_owned(),
                    name: None,
                    max_budget: global.budget_limit,
                    duration: global.time_period.clone(),
                    filter: SpendFilter::All,
                });
            }
            if let Some(keys) = state.keys() {
                let snap = keys.snapshot();
                let mut found: Vec<Budget> = Vec::new();
                for k in snap.keys.values() {
                    if let Some(max) = k.max_budget {
                        found.push(key_budget(k, max));
                    }
                }
                for t in snap.teams.values() {
                    if let Some(max) = t.max_budget {
                        found.push(team_budget(t, max));
                    }
                }
                for u in snap.users.values() {
                    if let Some(max) = u.max_budget {
                        found.push(user_budget(u, max));
                    }
                }
                found.sort_by(|a, b| (a.scope, &a.name, &a.id).cmp(&(b.scope, &b.name, &b.id)));
                list.extend(found);
            }
        }
        Scope::Key(identity) => {
            if let Some(max) = identity.key.max_budget {
                list.push(key_budget(&identity.key, max));
            }
            if let Some(team) = &identity.team
                && let Some(max) = team.max_budget
            {
                list.push(team_budget(team, max));
            }
            if let Some(user) = &identity.user
                && let Some(max) = user.max_budget
            {
                list.push(user_budget(user, max));
            }
        }
    }
    list.truncate(MAX_BUDGETS);
    let mut out = Vec::with_capacity(list.len());
    for b in list {
        let period = b.duration.as_deref().and_then(Period::parse).unwrap_or(Period::Forever);
        let window = period.window(now);
        wanted.push((b.filter, window.start));
        out.push(json!({
            "scope": b.scope,
            "id": b.id,
            "name": b.name,
            "spend": null,
            "max_budget": b.max_budget,
            "budget_duration": b.duration,
            "period_start": window.end.map(|_| window.start.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            "resets_at": window.end.map(|e| e.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        }));
    }
    out
}

fn key_budget(k: &crate::keys::record::KeyRecord, max: f64) -> Budget {
    Budget {
        scope: "key",
        // The hash identifies the key to the keys page; only its head is shown.
        id: short_hash(&k.token),
        name: k.key_alias.clone().or_else(|| k.key_name.clone()),
        max_budget: max,
        duration: k.budget_duration.clone(),
        filter: SpendFilter::ApiKey(k.token.clone()),
    }
}

fn team_budget(t: &crate::keys::record::TeamRecord, max: f64) -> Budget {
    Budget {
        scope: "team",
        id: t.team_id.clone(),
        name: t.team_alias.clone(),
        max_budget: max,
        duration: t.budget_duration.clone(),
        filter: SpendFilter::Team(t.team_id.clone()),
    }
}

fn user_budget(u: &crate::keys::record::UserRecord, max: f64) -> Budget {
    Budget {
        scope: "user",
        id: u.user_id.clone(),
        name: u.user_alias.clone(),
        max_budget: max,
        duration: u.budget_duration.clone(),
        filter: SpendFilter::User(u.user_id.clone()),
    }
}
