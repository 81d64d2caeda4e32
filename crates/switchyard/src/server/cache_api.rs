//! LiteLLM's cache routes — `GET /cache/ping`, `POST /cache/delete` (`{"keys": [...]}`),
//! `POST /cache/flushall` — and `GET /cache/stats`. Master key only.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::AppState;
use super::body::read_limited;
use super::errors::error_response;
use crate::cache::Cache;
use crate::classify::{ApiError, Diagnosis, ErrorKind};
use crate::keys::Identity;

fn reply(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The cache, once the caller is known to be the admin.
fn admin(state: &AppState, req: &Request) -> Result<Arc<Cache>, Response> {
    let path = req.uri().path();
    let fail = |err: &ApiError| error_response(path, req.headers(), err);
    if req.extensions().get::<Identity>().is_some() {
        return Err(fail(
            &ApiError::new(
                ErrorKind::PermissionDenied,
                format!("Route={path} needs the master key; a virtual key cannot call it."),
            )
            .with_diagnosis(Diagnosis::new(
                "KEY-05",
                "The request was authenticated with a virtual key; cache routes need the master key.",
                "Send the master key (`general_settings.master_key`) as `Authorization: Bearer <key>`.",
            )),
        ));
    }
    state.runtime().cache.clone().ok_or_else(|| {
        fail(&ApiError::new(
            ErrorKind::InvalidRequest,
            "The response cache is off: set `litellm_settings.cache: true` (and `cache_params`) \
             in the config.",
        ))
    })
}

pub async fn ping(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let cache = match admin(&state, &req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match cache.ping().await {
        Ok(()) => reply(
            StatusCode::OK,
            &json!({"status": "healthy", "ping_response": true, "cache": cache.health_json()}),
        ),
        Err(error) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unhealthy", "error": error, "cache": cache.health_json()}),
        ),
    }
}

pub async fn stats(State(state): State<Arc<AppState>>, req: Request) -> Response {
    match admin(&state, &req) {
        Ok(cache) => reply(StatusCode::OK, &cache.stats_json().await),
        Err(r) => r,
    }
}

pub async fn flushall(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let cache = match admin(&state, &req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match cache.clear().await {
        Ok(n) => reply(StatusCode::OK, &json!({"status": "success", "deleted": n})),
        Err(error) => {
            reply(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "failed", "error": error}))
        }
    }
}

pub async fn delete(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let cache = match admin(&state, &req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (parts, body) = req.into_parts();
    let bytes = match read_limited(&parts.headers, body, state.runtime().max_body_bytes).await {
        Ok(b) => b,
        Err(err) => return error_response(parts.uri.path(), &parts.headers, &err),
    };
    let keys: Vec<String> = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("keys").cloned())
        .and_then(|k| serde_json::from_value(k).ok())
        .unwrap_or_default();
    if keys.is_empty() {
        let err = ApiError::new(
            ErrorKind::InvalidRequest,
            "Send the keys to delete as {\"keys\": [\"<x-litellm-cache-key>\", ...]}.",
        );
        return error_response(parts.uri.path(), &parts.headers, &err);
    }
    match cache.delete(&keys).await {
        Ok(n) => reply(StatusCode::OK, &json!({"status": "success", "deleted": n})),
        Err(error) => {
            reply(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "failed", "error": error}))
        }
    }
}
