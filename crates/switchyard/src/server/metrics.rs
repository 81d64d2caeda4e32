//! `GET /metrics`: the Prometheus text format. Request outcomes come from the registry;
//! what is state — deployments, cooldowns, budgets left, the ledger, the stores — is read
//! now from the objects that own it, so a scrape never sees a stale copy.
//!
//! Open unless `general_settings.require_auth_for_metrics_endpoint: true`, then the master
//! key (as LiteLLM); 404 with `disable_metrics: true`.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use futures_util::stream::{self, StreamExt};

use super::auth::{presented_key, unauthorized};
use super::{AppState, Runtime, errors};
use crate::cost::Decimal;
use crate::limits::Scope;
use crate::metrics::render::{self, Kind, Text};

pub async fn scrape(
    State(state): State<Arc<AppState>>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> Response {
    let runtime = state.runtime();
    if !runtime.config.general.metrics {
        let err = crate::classify::ApiError::new(
            crate::classify::ErrorKind::NotFound,
            "Metrics are off: the config sets `general_settings.disable_metrics: true`. Remove \
             it (or set it to false) and reload to record and serve them.",
        );
        return errors::error_response("/metrics", &headers, &err);
    }
    if runtime.config.general.metrics_auth
        && let Some(master) = &runtime.master_key
    {
        let presented = presented_key(&headers);
        if !presented.is_some_and(|k| master.matches(k)) {
            let source = runtime
                .config
                .general
                .master_key
                .as_ref()
                .map(|k| k.source.to_string())
                .unwrap_or_default();
            super::auth::refused_in_log(presented.is_some(), &source);
            let hint = super::auth::hint_allowed(&extensions);
            let err = unauthorized(presented.is_some(), hint.then_some(source.as_str()));
            return errors::error_response("/metrics", &headers, &err);
        }
    }
    let mut text = Text::default();
    render::requests(crate::metrics::global(), &mut text);
    deployments(&runtime, &mut text);
    budgets(&state, &runtime, &mut text).await;
    stores(&state, &runtime, &mut text);
    text.family("switchyard_build_info", "The gateway's version", Kind::Gauge);
    text.sample("switchyard_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    text.single(
        "switchyard_uptime_seconds",
        "Seconds since the gateway started",
        Kind::Gauge,
        state.started.elapsed().as_secs_f64(),
    );

    let mut response = Response::new(text.into_string().into());
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(render::CONTENT_TYPE));
    response
}

const DEPLOYMENT: [&str; 4] = ["litellm_model_name", "model_id", "api_base", "api_provider"];

/// Each deployment's state, cooldowns and attempts in flight, as the router sees them now.
fn deployments(runtime: &Runtime, text: &mut Text) {
    let now = tokio::time::Instant::now();
    let mut seen = HashSet::new();
    let targets: Vec<_> =
        runtime.router.targets().filter(|t| seen.insert(t.deployment.id.clone())).collect();
    let labels = |t: &crate::router::Target| {
        let d = &t.deployment;
        let base = d.api_base.as_deref().map(crate::ledger::clean_api_base).unwrap_or_default();
        [d.model_as_written.clone(), d.id.clone(), base, d.provider.prefix().to_owned()]
    };
    let all: Vec<_> = targets.iter().map(|t| (labels(t), *t)).collect();
    let pairs = |v: &[String; 4]| -> Vec<(&str, String)> {
        DEPLOYMENT.iter().zip(v.iter()).map(|(n, v)| (*n, v.clone())).collect()
    };

    text.family(
        "litellm_deployment_state",
        "The state of the deployment: 0 = healthy, 1 = partial outage (failing since its last success), 2 = complete outage (cooling down)",
        Kind::Gauge,
    );
    for (v, t) in &all {
        let state = if t.state.is_cooling(now) {
            2.0
        } else if t.state.last_failure().is_some() {
            1.0
        } else {
            0.0
        };
        let p = pairs(v);
        let l: Vec<(&str, &str)> = p.iter().map(|(n, v)| (*n, v.as_str())).collect();
        text.sample("litellm_deployment_state", &l, state);
    }

    text.family(
        "litellm_deployment_cooled_down",
        "Times the deployment started cooling down; exception_status is the status that cooled it",
        Kind::Counter,
    );
    for (v, t) in &all {
        for (status, n) in t.state.cooldowns() {
            let status = status.to_string();
            let p = pairs(v);
            let mut l: Vec<(&str, &str)> = p.iter().map(|(n, v)| (*n, v.as_str())).collect();
            l.push(("exception_status", &status));
            #[allow(clippy::cast_precision_loss)]
            text.sample("litellm_deployment_cooled_down_total", &l, n as f64);
        }
    }

    text.family(
        "switchyard_deployment_in_flight",
        "Attempts waiting on the deployment now",
        Kind::Gauge,
    );
    for (v, t) in &all {
        let p = pairs(v);
        let l: Vec<(&str, &str)> = p.iter().map(|(n, v)| (*n, v.as_str())).collect();
        text.sample("switchyard_deployment_in_flight", &l, f64::from(t.state.in_flight()));
    }
}

/// Budgets left for keys and teams, from the admission engine's counters (what the next
/// request is checked against).
async fn budgets(state: &AppState, runtime: &Runtime, text: &mut Text) {
    let mut keys_out = Vec::new();
    let mut teams_out = Vec::new();
    let mut users_out = Vec::new();
    if let Some(keys) = state.keys() {
        let snap = keys.snapshot();
        let limits = runtime.router.limits();
        let mut seen = HashSet::new();
        let budgets: Vec<_> = keys
            .budgets()
            .into_iter()
            .filter(|b| matches!(b.scope, Scope::Key(_) | Scope::Team(_) | Scope::User(_)))
            .filter(|b| seen.insert(b.scope.clone()))
            .collect();
        // A few reads at a time: with Redis each is a round trip.
        let read: Vec<_> = stream::iter(budgets)
            .map(|b| async move {
                let (spent, _reserved) = limits.spent(&b).await;
                (b, spent)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for (budget, spent) in read {
            let left = f64_of(budget.limit - spent);
            let max = f64_of(budget.limit);
            match &budget.scope {
                Scope::Key(hash) => {
                    let alias =
                        snap.keys.get(hash).and_then(|k| k.key_alias.clone()).unwrap_or_default();
                    keys_out.push((hash.clone(), alias, left, max));
                }
                Scope::Team(id) => {
                    let alias =
                        snap.teams.get(id).and_then(|t| t.team_alias.clone()).unwrap_or_default();
                    teams_out.push((id.clone(), alias, left, max));
                }
                Scope::User(id) => users_out.push((id.clone(), left, max)),
                _ => {}
            }
        }
    }
    keys_out.sort_by(|a, b| a.0.cmp(&b.0));
    teams_out.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, help, rows, labels, at) in [
        (
            "litellm_remaining_api_key_budget_metric",
            "Remaining budget for api key",
            &keys_out,
            ["hashed_api_key", "api_key_alias"],
            2,
        ),
        (
            "litellm_api_key_max_budget_metric",
            "Maximum budget set for api key",
            &keys_out,
            ["hashed_api_key", "api_key_alias"],
            3,
        ),
        (
            "litellm_remaining_team_budget_metric",
            "Remaining budget for team",
            &teams_out,
            ["team", "team_alias"],
            2,
        ),
        (
            "litellm_team_max_budget_metric",
            "Maximum budget set for team",
            &teams_out,
            ["team", "team_alias"],
            3,
        ),
    ] {
        text.family(name, help, Kind::Gauge);
        for (id, alias, left, max) in rows {
            let value = if at == 2 { *left } else { *max };
            text.sample(name, &[(labels[0], id), (labels[1], alias)], value);
        }
    }
    users_out.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, help, at) in [
        ("litellm_remaining_user_budget_metric", "Remaining budget for user", 1),
        ("litellm_user_max_budget_metric", "Maximum budget set for user", 2),
    ] {
        text.family(name, help, Kind::Gauge);
        for (id, left, max) in &users_out {
            text.sample(name, &[("user", id)], if at == 1 { *left } else { *max });
        }
    }
}

fn f64_of(d: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(f64::NAN)
}

/// The ledger's queue and spool, and whether each store answers.
fn stores(state: &AppState, runtime: &Runtime, text: &mut Text) {
    let mut up: Vec<(&str, &str, bool)> = Vec::new();
    let limits = runtime.router.limits().health();
    up.push(("limits", limits.backend, limits.degraded.is_none()));
    if let Some(keys) = state.keys() {
        let s = keys.status();
        up.push(("keys", s.backend, s.state == "ok"));
    }
    let ledger = state.ledger().map(crate::ledger::Ledger::status);
    if let Some(s) = &ledger {
        up.push(("ledger", s.backend, s.ok()));
    }
    let cache = runtime.cache.as_deref();
    if let Some(c) = cache {
        up.push(("cache", c.backend(), !c.snapshot().degraded));
    }
    text.family(
        "switchyard_state_store_up",
        "1 when a state store answers (ledger, keys, limits: Redis or in process), 0 while degraded",
        Kind::Gauge,
    );
    for (store, backend, ok) in up {
        text.sample(
            "switchyard_state_store_up",
            &[("store", store), ("backend", backend)],
            if ok { 1.0 } else { 0.0 },
        );
    }
    if let Some(c) = cache {
        cache_size(c, text);
    }
    if let Some(s) = ledger {
        #[allow(clippy::cast_precision_loss)]
        {
            text.single(
                "switchyard_ledger_queued_rows",
                "Ledger rows in memory, waiting for the writer",
                Kind::Gauge,
                s.queued as f64,
            );
            text.single(
                "switchyard_ledger_spooled_rows",
                "Ledger rows on disk, waiting for the database",
                Kind::Gauge,
                s.spooled as f64,
            );
            text.single(
                "switchyard_ledger_written_rows",
                "Ledger rows written since start",
                Kind::Counter,
                s.written as f64,
            );
        }
    }
}

/// What the response cache holds now, and its lookups that neither hit nor missed.
#[allow(clippy::cast_precision_loss)]
fn cache_size(cache: &crate::cache::Cache, text: &mut Text) {
    let s = cache.snapshot();
    text.single(
        "switchyard_cache_bypasses",
        "Response cache lookups skipped (no-cache, or the store unreachable)",
        Kind::Counter,
        s.bypasses as f64,
    );
    text.single(
        "switchyard_cache_stores",
        "Answers written to the response cache",
        Kind::Counter,
        s.stores as f64,
    );
    text.single(
        "switchyard_cache_store_errors",
        "Response cache reads or writes the store failed",
        Kind::Counter,
        s.store_errors as f64,
    );
    if let Some((entries, bytes, max)) = cache.memory_size() {
        text.single(
            "switchyard_cache_entries",
            "Answers the in-process response cache holds",
            Kind::Gauge,
            entries as f64,
        );
        text.single(
            "switchyard_cache_bytes",
            "Bytes the in-process response cache holds",
            Kind::Gauge,
            bytes as f64,
        );
        text.single(
            "switchyard_cache_max_bytes",
            "The in-process response cache's bound in bytes (cache_params.max_size_bytes)",
            Kind::Gauge,
            max as f64,
        );
    }
}
