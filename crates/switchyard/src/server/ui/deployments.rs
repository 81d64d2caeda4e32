//! `/ui/api/deployments`: each deployment as `/health` reports it (from the last probe and
//! what traffic showed: never probing on a page load), with the minimal IAM policy for a
//! Bedrock one, and "probe now".

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::refusal;
use crate::config::{Deployment, ProviderKind};
use crate::diagnose::policy;
use crate::router::Target;
use crate::server::AppState;
use crate::server::errors::error_response;
use crate::server::health;

fn view(state: &AppState, targets: &[&Target]) -> Vec<Value> {
    let runtime = state.runtime();
    let probes: Vec<Option<Target>> =
        targets.iter().map(|t| runtime.router.probe_target(t)).collect();
    health::entries(state, targets, &probes)
        .into_iter()
        .zip(targets)
        .map(|((mut entry, ok), target)| {
            entry["healthy"] = json!(ok);
            entry["probed"] = json!(entry.get("last_checked_at").is_some());
            if let Some(policy) = iam_policy(&target.deployment) {
                entry["iam_policy"] = policy;
            }
            entry
        })
        .collect()
}

/// The policy `switchyard policy` prints for this one deployment (the account as `*`: the
/// page does not call STS).
fn iam_policy(d: &Deployment) -> Option<Value> {
    if !matches!(d.provider, ProviderKind::Bedrock(_)) {
        return None;
    }
    let (resources, notes) = policy::resources(&d.model, d.aws.region_name.as_deref(), None);
    Some(json!({"document": policy::document(&resources), "notes": notes}))
}

/// `GET /ui/api/deployments`.
pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    let runtime = state.runtime();
    let targets: Vec<&Target> = runtime.router.targets().collect();
    let body = json!({
        "aliases": runtime.router.aliases(),
        "deployments": view(&state, &targets),
    });
    ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// `POST /ui/api/deployments/{id}/probe`: probes now and answers the deployment's new entry.
pub async fn probe(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let runtime = state.runtime();
    let Some(target) = runtime.router.targets().find(|t| t.deployment.id == id) else {
        return error_response(req.uri().path(), req.headers(), &refusal::no_deployment(&id));
    };
    if let Some(probe) = runtime.router.probe_target(target) {
        health::probe_now(&state, &probe).await;
    }
    let entry = view(&state, &[target]).pop().unwrap_or(Value::Null);
    ([(CONTENT_TYPE, "application/json")], entry.to_string()).into_response()
}
