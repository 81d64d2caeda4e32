//! `/health/readiness`: whether a load balancer should send this replica new requests.
//!
//! LiteLLM's keys keep their meaning (`status`, `db`, `cache` as the response cache's type or
//! null, `litellm_version`, `success_callbacks`, `last_updated`); `stores` adds the state of
//! the two stores replicas share — the database (ledger, keys) and Redis (limits, response
//! cache, stored Responses) — each `connected`, `degraded` (serving on a local fallback) or
//! `not configured`.
//!
//! 503 only when this replica would refuse what it is sent: while it drains, and under
//! `general_settings.fail_closed` while Redis (limits) or the key database does not answer. An outage of a shared store is seen
//! by every replica at once, so answering 503 for one that is served through a fallback would
//! take the whole fleet out of rotation for nothing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;

use super::AppState;
use crate::keys::Keys;
use crate::ledger::Ledger;

/// One shared store as readiness shows it.
#[derive(Debug, Serialize)]
struct Store {
    /// `connected`, `degraded` or `not configured`.
    state: &'static str,
    /// What this replica keeps there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    used_by: Vec<&'static str>,
    /// While degraded: what each use does instead.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    meanwhile: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Store {
    fn from_uses(uses: Vec<Use>) -> Self {
        if uses.is_empty() {
            return Self {
                state: "not configured",
                used_by: Vec::new(),
                meanwhile: Vec::new(),
                error: None,
            };
        }
        let used_by = uses.iter().map(|u| u.name).collect();
        let down: Vec<&Use> = uses.iter().filter(|u| u.error.is_some()).collect();
        Self {
            state: if down.is_empty() { "connected" } else { "degraded" },
            used_by,
            meanwhile: down.iter().map(|u| u.meanwhile).collect(),
            error: down.first().and_then(|u| u.error.clone()),
        }
    }
}

/// One feature's use of a shared store, and its error while it cannot reach it.
struct Use {
    name: &'static str,
    error: Option<String>,
    meanwhile: &'static str,
}

pub async fn readiness(State(state): State<Arc<AppState>>) -> Response {
    let runtime = state.runtime();
    let ledger = state.ledger().map(Ledger::status);
    let keys = state.keys().map(Keys::status);
    let limits = runtime.router.limits().health();
    let cache = runtime.cache.as_deref();

    let mut database = Vec::new();
    if let Some(l) = ledger.as_ref().filter(|l| l.backend == "postgres") {
        database.push(Use {
            name: "ledger",
            error: (!l.ok()).then(|| l.error.clone().unwrap_or_default()),
            meanwhile: "ledger: rows are spooled to disk and written when it answers",
        });
    }
    if let Some(k) = keys.as_ref().filter(|k| k.backend == "postgres") {
        database.push(Use {
            name: "keys",
            error: (k.state != "ok").then(|| k.error.clone().unwrap_or_default()),
            meanwhile: "keys: checked against the last snapshot; key management is refused",
        });
    }
    let mut redis = Vec::new();
    if limits.backend == "redis" {
        redis.push(Use {
            name: "limits",
            error: limits.degraded.as_ref().map(|(_, e)| e.clone()),
            meanwhile: if limits.fail_closed {
                "limits: requests with a budget or rate limit are refused (fail_closed)"
            } else {
                "limits: counted in this replica only"
            },
        });
    }
    if let Some(outage) = cache.and_then(crate::cache::Cache::redis_outage) {
        redis.push(Use {
            name: "response_cache",
            error: outage.map(|(_, e)| e),
            meanwhile: "response_cache: bypassed",
        });
    }
    if let Some(outage) = state.responses.redis_outage() {
        redis.push(Use {
            name: "responses",
            error: outage.map(|(_, e)| e),
            meanwhile: "responses: not stored, previous_response_id cannot find them",
        });
    }
    let cooldowns = runtime.router.shared_cooldowns().map(|s| s.health_json());
    if let Some(c) = &cooldowns {
        redis.push(Use {
            name: "cooldowns",
            error: (c["connected"] == false)
                .then(|| c["error"].as_str().unwrap_or("not connected yet").to_owned()),
            meanwhile: "cooldowns: each replica cools deployments on its own",
        });
    }

    let fail_closed = runtime.config.general.fail_closed;
    let refusing = if !fail_closed {
        None
    } else if let Some((since, error)) = &limits.degraded {
        Some(("LIM-03", fail_closed_limits(limits.place.as_deref(), *since, error)))
    } else if state.keys().is_some_and(Keys::is_stale) {
        Some(("KEY-10", FAIL_CLOSED_KEYS.to_owned()))
    } else {
        None
    };
    let draining = state.is_draining();
    let (status, code) = match (draining, &refusing) {
        (true, _) => ("draining", StatusCode::SERVICE_UNAVAILABLE),
        (false, Some(_)) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
        (false, None) => ("connected", StatusCode::OK),
    };
    // LiteLLM's `db`: the database its keys and spend live in; here the ledger's store.
    let db = match &ledger {
        Some(s) if s.ok() => "connected",
        Some(_) => "disconnected",
        None => "Not connected",
    };
    let mut body = json!({
        "status": status,
        "db": db,
        "cache": cache.map(crate::cache::Cache::kind),
        "litellm_version": env!("CARGO_PKG_VERSION"),
        "success_callbacks": if runtime.tracer.is_some() { vec!["otel"] } else { Vec::new() },
        "last_updated": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "stores": {
            "database": Store::from_uses(database),
            "redis": Store::from_uses(redis),
        },
        "ledger": ledger,
        "keys": keys,
        "limits": runtime.router.limits().health_json(),
        "response_cache": cache.map(crate::cache::Cache::health_json),
        "cooldowns": cooldowns,
        "traces": runtime.tracer.as_ref().map(crate::telemetry::Tracer::status),
        "switchyard_version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "models": runtime.router.aliases().len(),
    });
    if draining {
        body["error"] = json!({
            "id": "GW-09",
            "message": "This replica is shutting down: it finishes the requests it has and \
                        takes no new ones. Fix: send requests to another replica; a load \
                        balancer watching this endpoint does so by itself.",
        });
    } else if let Some((id, message)) = refusing {
        body["error"] = json!({"id": id, "message": message});
    }
    (code, [(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

const FAIL_CLOSED_KEYS: &str = "The key database does not answer and \
    general_settings.fail_closed is true, so this replica refuses virtual keys rather than \
    trust the last keys it loaded (the master key still works). Fix: bring the database back \
    (the gateway reloads within a second of it answering), or set \
    general_settings.fail_closed: false to serve on the last keys loaded meanwhile.";

fn fail_closed_limits(place: Option<&str>, since: DateTime<Utc>, error: &str) -> String {
    format!(
        "Redis at {} has not answered since {} ({error}), and general_settings.fail_closed is \
         true, so this replica refuses requests with a budget or rate limit rather than count \
         them alone. Fix: bring Redis back (the gateway reconnects within a second), or set \
         general_settings.fail_closed: false to serve on in-process counters meanwhile.",
        place.unwrap_or("?"),
        since.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// While draining, every HTTP/1 answer carries `Connection: close`: a client or proxy that
/// keeps connections alive opens its next one elsewhere, instead of finding this one closed
/// under it when the listener stops.
pub(super) async fn close_while_draining(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let http1 = matches!(req.version(), Version::HTTP_10 | Version::HTTP_11);
    let mut resp = next.run(req).await;
    if http1 && state.is_draining() {
        resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
