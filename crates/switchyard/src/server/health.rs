//! `/health` in LiteLLM's shape, plus the unauthenticated liveliness probe (readiness is
//! `readiness.rs`).
//!
//! `/health` probes every deployment live ("Say: WORKS", a few tokens, through its real
//! provider; one word embedded for an embedding model), at most [`CONCURRENCY`] at a time; each result is reused for
//! `general_settings.health_check_interval` (60 s by default). `/health?cached=true` — and
//! every `/health` when `background_health_checks` is on, which then probes on that interval
//! in the background — answers from the last results only. What traffic showed counts too: a
//! deployment cooling down, or whose last request failed after its last probe, is unhealthy.
//! Each unhealthy endpoint carries `error`, `error_class` and a `diagnosis` object. Probes
//! never cool a deployment down and never print a secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::classify::{Cooling, UpstreamError};
use crate::config::Deployment;
use crate::diagnose::probe::{self, Answer};
use crate::router::Target;

/// How many deployments are probed at once.
pub const CONCURRENCY: usize = 4;

/// The last probe of each deployment, shared by every `/health` request of one gateway.
#[derive(Default)]
pub struct Probes {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

struct Slot {
    deployment: Arc<Deployment>,
    /// Held while probing, so concurrent `/health` calls share one probe.
    gate: tokio::sync::Mutex<()>,
    last: Mutex<Option<Probed>>,
}

#[derive(Clone)]
struct Probed {
    at: SystemTime,
    taken: tokio::time::Instant,
    result: Result<Answer, UpstreamError>,
}

impl Probes {
    /// The slot of a deployment; a changed deployment (after a reload) starts afresh.
    fn slot(&self, deployment: &Arc<Deployment>) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        match slots.get(&deployment.id) {
            Some(slot) if slot.deployment == *deployment => Arc::clone(slot),
            _ => {
                let slot = Arc::new(Slot {
                    deployment: Arc::clone(deployment),
                    gate: tokio::sync::Mutex::new(()),
                    last: Mutex::new(None),
                });
                slots.insert(deployment.id.clone(), Arc::clone(&slot));
                slot
            }
        }
    }

    /// The last result, without probing or waiting for a probe in progress.
    fn cached(&self, deployment: &Arc<Deployment>) -> Option<Probed> {
        self.slot(deployment).last.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A result no older than `fresh`, probing when there is none.
    async fn probe(&self, target: &Target, fresh: Duration) -> Probed {
        let slot = self.slot(&target.deployment);
        let _gate = slot.gate.lock().await;
        let last = slot.last.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(p) = last.filter(|p| p.taken.elapsed() < fresh) {
            return p;
        }
        let result = probe::check(target.provider.as_ref(), &target.deployment).await;
        let probed = Probed { at: SystemTime::now(), taken: tokio::time::Instant::now(), result };
        *slot.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(probed.clone());
        probed
    }
}

/// `/`: what answers here, without a key (load balancers and clients probe it).
pub async fn root() -> Response {
    let body = json!({
        "name": "switchyard",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": [
            "/v1/chat/completions",
            "/v1/messages",
            "/v1/embeddings",
            "/v1/models",
            "/health"
        ],
    });
    ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

pub async fn liveliness() -> Response {
    ([(CONTENT_TYPE, "application/json")], "\"I'm alive!\"").into_response()
}

#[derive(Debug, Default, Deserialize)]
pub struct HealthQuery {
    #[serde(default)]
    cached: Option<String>,
}

pub async fn health(State(state): State<Arc<AppState>>, Query(q): Query<HealthQuery>) -> Response {
    let runtime = state.runtime();
    let general = &runtime.config.general;
    let cached = q.cached.as_deref().is_some_and(|v| matches!(v, "true" | "1" | "yes"))
        || general.background_health_checks;
    let targets: Vec<&Target> = runtime.router.targets().collect();
    let probes: Vec<Option<Target>> =
        targets.iter().map(|t| runtime.router.probe_target(t)).collect();
    if !cached {
        let to_probe: Vec<&Target> = probes.iter().flatten().collect();
        probe_all(&state.health, &to_probe, general.health_check_interval).await;
    }
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    for (entry, ok) in entries(&state, &targets, &probes) {
        if ok { healthy.push(entry) } else { unhealthy.push(entry) }
    }
    let body = json!({
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "ledger": state.ledger().map(crate::ledger::Ledger::status),
        "keys": state.keys().map(crate::keys::Keys::status),
        "limits": runtime.router.limits().health_json(),
        "cache": runtime.cache.as_ref().map(|c| c.health_json()),
        "cooldowns": runtime.router.shared_cooldowns().map(|s| s.health_json()),
    });
    ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Each target's endpoint entry from its last probe and what traffic showed, and whether it
/// is healthy (`/health` and the dashboard's Deployments page).
pub(super) fn entries(
    state: &AppState,
    targets: &[&Target],
    probes: &[Option<Target>],
) -> Vec<(Value, bool)> {
    let now = tokio::time::Instant::now();
    targets
        .iter()
        .zip(probes)
        .map(|(target, probe)| {
            let last = probe.as_ref().and_then(|p| state.health.cached(&p.deployment));
            let (mut entry, ok) = endpoint(target, last, now);
            if let Some(p) = probe.as_ref().filter(|_| target.deployment.is_pattern()) {
                entry["health_check_model"] = Value::String(p.deployment.model.clone());
            } else if probe.is_none() {
                entry["health_check"] = Value::String(format!(
                    "not probed: `{}` is a wildcard, so there is no one model to ask; set \
                     model_info.health_check_model (a name it matches) to probe it",
                    target.deployment.alias
                ));
            }
            (entry, ok)
        })
        .collect()
}

/// Probes one target now, whatever its last result's age ("probe now").
pub(super) async fn probe_now(state: &AppState, probe: &Target) {
    state.health.probe(probe, Duration::ZERO).await;
}

/// Probes every target whose last result is older than `fresh`, [`CONCURRENCY`] at a time.
async fn probe_all(probes: &Probes, targets: &[&Target], fresh: Duration) {
    // Collected first: a closure inside the stream would not be `Send` for every lifetime.
    let work: Vec<BoxFuture<'_, Probed>> =
        targets.iter().map(|t| Box::pin(probes.probe(t, fresh)) as BoxFuture<'_, Probed>).collect();
    futures_util::stream::iter(work).buffer_unordered(CONCURRENCY).collect::<Vec<_>>().await;
}

/// With `background_health_checks`, probes every deployment each `health_check_interval`
/// until the gateway is gone. The caller aborts the task when serving ends.
pub(super) fn spawn_background(state: &Arc<AppState>) -> Option<tokio::task::JoinHandle<()>> {
    if !state.runtime().config.general.background_health_checks {
        return None;
    }
    let weak: Weak<AppState> = Arc::downgrade(state);
    Some(tokio::spawn(async move {
        loop {
            let interval = {
                let Some(state) = weak.upgrade() else { return };
                let runtime = state.runtime();
                let interval = runtime.config.general.health_check_interval;
                let probes: Vec<Target> = runtime
                    .router
                    .targets()
                    .filter_map(|t| runtime.router.probe_target(t))
                    .collect();
                let targets: Vec<&Target> = probes.iter().collect();
                // Slightly under the interval, so each round probes again.
                probe_all(&state.health, &targets, interval.mul_f64(0.9)).await;
                interval
            };
            tokio::time::sleep(interval.max(Duration::from_secs(1))).await;
        }
    }))
}

/// One endpoint in LiteLLM's shape, and whether it is healthy.
fn endpoint(target: &Target, probed: Option<Probed>, now: tokio::time::Instant) -> (Value, bool) {
    let d = &target.deployment;
    let mut entry = json!({
        "model": d.model_as_written,
        "model_name": d.alias,
        "model_id": d.id,
        "provider": d.provider.prefix(),
    });
    if let Some(base) = &d.api_base {
        entry["api_base"] = Value::String(base.clone());
    }
    if let Some(region) = &d.aws.region_name {
        entry["aws_region_name"] = Value::String(region.clone());
    }
    if d.mock_response.is_some() {
        entry["mock_response"] = Value::Bool(true);
    }
    let cooldown = target.state.cooldown(now);
    if let Some(c) = &cooldown {
        let left = c.until.saturating_duration_since(now).as_secs_f64();
        entry["cooldown_remaining_seconds"] = json!((left * 10.0).ceil() / 10.0);
        if let Some(by) = &c.by {
            entry["cooled_by"] = Value::String(by.to_string());
        }
    }
    // A request fault (a bad request, a prompt too long) says nothing about the deployment.
    let traffic = target.state.last_failure().filter(|f| f.error.kind.cooling() != Cooling::Never);
    let mut failure: Option<(&UpstreamError, SystemTime, &str)> = None;
    if let Some(p) = &probed {
        entry["last_checked_at"] = json!(secs(p.at));
        match &p.result {
            Ok(answer) => {
                entry["latency_ms"] = json!(answer.latency_ms);
                if let Some(t) = traffic.as_ref().filter(|t| t.at > p.at) {
                    failure = Some((&t.error, t.at, "traffic"));
                }
            }
            Err(e) => failure = Some((e, p.at, "probe")),
        }
    } else if let Some(t) = &traffic {
        failure = Some((&t.error, t.at, "traffic"));
    }
    let ok = failure.is_none() && cooldown.is_none();
    if let Some((error, at, seen_by)) = failure {
        entry["error"] = Value::String(error.message.clone());
        entry["error_class"] = Value::String(error.kind.as_str().to_owned());
        entry["failed_at"] = json!(secs(at));
        entry["seen_by"] = Value::String(seen_by.to_owned());
        if let Some(diag) = &error.diagnosis {
            entry["diagnosis"] = json!({"id": diag.id, "class": error.kind.as_str(), "cause": diag.cause, "remedy": diag.remedy});
        }
    } else if let Some(c) = &cooldown {
        entry["error"] = Value::String(c.reason.message.clone());
        entry["error_class"] = Value::String(c.reason.kind.as_str().to_owned());
        entry["seen_by"] = Value::String("traffic".to_owned());
        if let Some(diag) = &c.reason.diagnosis {
            entry["diagnosis"] = json!({"id": diag.id, "class": c.reason.kind.as_str(), "cause": diag.cause, "remedy": diag.remedy});
        }
    }
    (entry, ok)
}

fn secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
