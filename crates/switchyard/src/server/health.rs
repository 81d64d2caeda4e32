//! `/health` in LiteLLM's shape, plus the unauthenticated liveliness and readiness probes.
//!
//! A deployment's status here is what traffic has shown of it: unhealthy while it is
//! cooling down or its last attempt failed, healthy otherwise. Never includes secrets.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use crate::router::Target;

pub async fn liveliness() -> Response {
    ([(CONTENT_TYPE, "application/json")], "\"I'm alive!\"").into_response()
}

pub async fn readiness(State(state): State<Arc<AppState>>) -> Response {
    let runtime = state.runtime();
    let body = json!({
        "status": "connected",
        "db": "Not connected",
        "cache": null,
        "switchyard_version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "models": runtime.router.aliases().len(),
    });
    ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    let runtime = state.runtime();
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    let now = tokio::time::Instant::now();
    for target in runtime.router.targets() {
        let mut entry = endpoint(target);
        let cooldown = target.state.cooldown(now);
        if let Some(c) = &cooldown {
            let left = c.until.saturating_duration_since(now).as_secs_f64();
            entry["cooldown_remaining_seconds"] = json!((left * 10.0).ceil() / 10.0);
        }
        match target.state.last_failure() {
            None if cooldown.is_none() => healthy.push(entry),
            None => unhealthy.push(entry),
            Some(failure) => {
                let at = failure.at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                entry["error"] = Value::String(failure.error.message.clone());
                entry["error_class"] = Value::String(failure.error.kind.as_str().to_owned());
                entry["failed_at"] = json!(at);
                if let Some(d) = &failure.error.diagnosis {
                    entry["diagnosis"] = json!({"id": d.id, "cause": d.cause, "remedy": d.remedy});
                }
                unhealthy.push(entry);
            }
        }
    }
    let body = json!({
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
    });
    ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn endpoint(target: &Target) -> Value {
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
    entry
}
