//! `/anthropic/{path}`: relayed to the Anthropic API of an Anthropic deployment — the one
//! whose `model` is the body's `model`, else the first in config order — with that
//! deployment's key, the client's own headers (`anthropic-version`, `anthropic-beta`, …) and
//! body, the answer streamed back as it arrives. The request body is read whole (within the
//! body limit): the model it names decides the deployment, the price and the ledger row.
//!
//! A key's model rules apply to the serving deployment's `model_name`; its rate limits and
//! budgets apply as to a request there. `v1/messages` answers (JSON or SSE) are metered into
//! one ledger row and the request's metrics; other paths are admitted and relayed only.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::response::Response;

use super::headers::upstream_request;
use super::relay::relay;
use crate::classify::{ApiError, AttemptReport, Diagnosis, ErrorKind};
use crate::config::ProviderKind;
use crate::cost::Charged;
use crate::keys::Identity;
use crate::ledger::CALL_PASS_THROUGH;
use crate::provider::Forward;
use crate::router::{Route, Target};
use crate::server::AppState;
use crate::server::body::read_limited;
use crate::server::chat::{apply_key_rules, served_headers};
use crate::server::errors::request_id;
use crate::server::ledger_hook::{self, Started};
use crate::surface::anthropic as surface;

/// A failed upstream answer is read up to this much for its classification.
const ERROR_BODY_CAP: usize = 64 << 10;

pub async fn anthropic(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let runtime = state.runtime();
    let (parts, body) = req.into_parts();
    let request_id = request_id(&parts.headers);
    let fail = |err: &ApiError| surface::error_response(err, request_id);
    let path = super::below(&parts.uri, "/anthropic/");
    let bytes = match read_limited(&parts.headers, body, runtime.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(err) => return fail(&err),
    };
    let messages =
        parts.method == axum::http::Method::POST && path.split('?').next() == Some("v1/messages");
    let decoded =
        messages.then(|| surface::decode_messages_request(&bytes, &parts.headers).ok()).flatten();
    let body_model = decoded.as_ref().map(|c| c.model.clone()).or_else(|| model_of(&bytes));
    let router = &runtime.router;
    let Some(target) = choose(router.targets(), body_model.as_deref()) else {
        return fail(&no_deployment());
    };
    let d = &target.deployment;
    // The request as limits, key rules and the ledger see it: under the serving group's name.
    let mut chat = decoded.unwrap_or_default();
    chat.model.clone_from(&d.alias);
    crate::attribution::fold_header_tags(&parts.headers, &mut chat);
    let identity = parts.extensions.get::<Identity>();
    let caller = match apply_key_rules(&state, identity, &mut chat) {
        Ok(caller) => caller,
        Err(err) => return fail(&err),
    };
    let reservation = match router.admit_at(&chat, &caller, target).await {
        Ok(reservation) => reservation,
        Err(err) => return fail(&err),
    };
    let started = messages.then(|| {
        let started = Started::new(
            &parts.headers,
            CALL_PASS_THROUGH,
            &chat,
            identity,
            runtime.config.general.metrics,
        );
        match &body_model {
            Some(model) => started.with_model(model),
            None => started,
        }
    });
    let price = match &body_model {
        Some(model) if *model != d.model => {
            Arc::new(crate::cost::table_price(ProviderKind::Anthropic, model, None))
        }
        _ => target.price.clone(),
    };
    let forward = Forward {
        method: parts.method.clone(),
        path,
        headers: upstream_request(&parts.headers),
        body: bytes,
    };
    let clock = Instant::now();
    let upstream = match target.provider.forward(forward).await {
        Ok(upstream) => upstream,
        Err(error) => {
            let err = attempt_error(target, error.kind, error.message, error.diagnosis, None);
            if let Some(started) = started {
                ledger_hook::failed(&state, started, &err);
            }
            return fail(&err);
        }
    };
    if !upstream.status().is_success() {
        // Nothing was served: the reservation is released.
        return upstream_failure(&state, target, started, upstream).await;
    }
    let route = Route {
        deployment: d.clone(),
        failed: Vec::new(),
        retries: 0,
        fallbacks: 0,
        upstream: clock.elapsed(),
        skipped: Vec::new(),
        rate: reservation.headers,
    };
    // The reservation settles at the answer's charge when its body ended.
    let (mut response, pending) = relay(upstream, started.is_some().then_some(price), reservation);
    served_headers(response.headers_mut(), &route);
    if let (Some(started), Some(pending)) = (started, pending) {
        ledger_hook::streamed(&state, started, &route, Charged::AtEnd(pending));
    }
    response
}

/// The Anthropic deployment for a body naming `model`.
fn choose<'a>(
    mut targets: impl Iterator<Item = &'a Target>,
    model: Option<&str>,
) -> Option<&'a Target> {
    let mut first = None;
    for t in targets.by_ref() {
        if t.deployment.provider != ProviderKind::Anthropic || t.deployment.is_pattern() {
            continue;
        }
        if model == Some(t.deployment.model.as_str()) {
            return Some(t);
        }
        first.get_or_insert(t);
    }
    first
}

/// The `model` of a body the Messages decoder did not take, for the ledger and the price.
fn model_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        model: String,
    }
    serde_json::from_slice::<Named>(body).ok().map(|n| n.model)
}

/// The upstream refused: its answer goes to the client as it is, less the deployment's key
/// should the upstream quote it (the client authenticated with a gateway key, not that one);
/// the ledger and metrics get the failure classified.
async fn upstream_failure(
    state: &AppState,
    target: &Target,
    started: Option<Started>,
    upstream: reqwest::Response,
) -> Response {
    let status = upstream.status();
    let headers = super::headers::client_response(upstream.headers());
    let raw_headers = upstream.headers().clone();
    let mut body = Vec::new();
    let mut upstream = upstream;
    while let Ok(Some(chunk)) = upstream.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > ERROR_BODY_CAP {
            break;
        }
    }
    let body = crate::classify::scrub_body(&target.deployment, &body).into_owned();
    if let Some(started) = started {
        let error = crate::classify::anthropic_http_error(
            &target.deployment,
            status.as_u16(),
            &raw_headers,
            &body,
            0,
        );
        let err = attempt_error(
            target,
            error.kind,
            error.message,
            error.diagnosis,
            Some(status.as_u16()),
        );
        ledger_hook::failed(state, started, &err);
    }
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response.headers_mut().remove(axum::http::header::CONTENT_LENGTH);
    response
}

/// One failed attempt at `target` as the client's error.
fn attempt_error(
    target: &Target,
    kind: ErrorKind,
    message: String,
    diagnosis: Option<Diagnosis>,
    status: Option<u16>,
) -> ApiError {
    let d = &target.deployment;
    let mut err =
        ApiError::new(kind, format!("The pass-through request to {} failed: {message}", d.alias));
    err.diagnosis.clone_from(&diagnosis);
    err.attempts.push(AttemptReport {
        deployment: d.id.clone(),
        model: format!("{}/{}", d.provider.prefix(), d.model),
        class: kind.as_str(),
        status: status.unwrap_or_else(|| kind.http_status().as_u16()),
        message,
        diagnosis,
    });
    err
}

/// GW-12: `/anthropic/` with no Anthropic deployment to relay to.
fn no_deployment() -> ApiError {
    ApiError::new(ErrorKind::NotFound, "No Anthropic deployment to pass this request through to.")
        .with_diagnosis(Diagnosis::new(
            "GW-12",
            "/anthropic/ relays to the Anthropic API with the key of a deployment whose model is \
             `anthropic/…`, and the config has none.",
            "Add a model_list entry with `model: anthropic/<model>` and its api_key, or call \
             /v1/messages, which routes to any provider.",
        ))
}
