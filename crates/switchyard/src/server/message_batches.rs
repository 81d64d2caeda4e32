//! Anthropic's Message Batches routes (`/v1/messages/batches*`) over the batch store, in
//! Anthropic's shapes; errors carry Anthropic's `request-id` and a BAT catalog id.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::batches_api::{self, ok, owner, refused, store_failed, visible_batch};
use super::body::read_limited;
use super::errors::request_id;
use crate::batches::model::{self, BatchRow, Status, Surface};
use crate::batches::{Page, input, wire};
use crate::classify::ApiError;
use crate::keys::Identity;
use crate::surface::anthropic;

/// How long a message batch may take (Anthropic's 24 hours).
const WINDOW_SECS: i64 = 24 * 3600;

fn fail(headers: &HeaderMap, err: &ApiError) -> Response {
    anthropic::error_response(err, request_id(headers))
}

/// The gateway's URL as this client reached it, for `results_url`.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// `POST /v1/messages/batches`: `{requests: [{custom_id, params}]}`, checked whole.
pub async fn create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let headers = req.headers().clone();
    match created(&state, req).await {
        Ok(b) => ok(&wire::anthropic_batch(&b, &base_url(&headers))),
        Err(err) => fail(&headers, &err),
    }
}

async fn created(state: &AppState, req: Request) -> Result<BatchRow, ApiError> {
    let batches = state.batches().ok_or_else(batches_api::unavailable)?;
    let (parts, body) = req.into_parts();
    let identity = parts.extensions.get::<Identity>();
    let bytes = read_limited(&parts.headers, body, state.runtime().max_body_bytes).await?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::invalid_request(format!("The request body is not valid JSON: {e}"), None)
    })?;
    let items = input::anthropic_requests(&value)?;
    let now = model::now();
    let b = BatchRow {
        id: model::new_id("msgbatch_"),
        surface: Surface::Anthropic,
        owner: owner(identity).unwrap_or_default(),
        owner_alias: identity.and_then(|i| i.key.key_alias.clone()),
        endpoint: "/v1/messages".to_owned(),
        input_file_id: None,
        completion_window: batches_api::WINDOW.to_owned(),
        status: Status::InProgress,
        metadata: None,
        errors: None,
        created_at: now,
        in_progress_at: Some(now),
        finalizing_at: None,
        completed_at: None,
        failed_at: None,
        expired_at: None,
        cancelling_at: None,
        cancelled_at: None,
        expires_at: now + WINDOW_SECS,
        output_file_id: None,
        error_file_id: None,
        upstream_id: None,
        counts: Default::default(),
    };
    batches.store.create_batch(&b, &items).await.map_err(|e| store_failed(&e))?;
    batches.wake();
    visible_batch(state, &b.id, None, Surface::Anthropic).await
}

/// `GET /v1/messages/batches/{id}`.
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let who = owner(req.extensions().get::<Identity>());
    match visible_batch(&state, &id, who.as_deref(), Surface::Anthropic).await {
        Ok(b) => ok(&wire::anthropic_batch(&b, &base_url(req.headers()))),
        Err(err) => fail(req.headers(), &err),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    limit: Option<i64>,
    before_id: Option<String>,
    after_id: Option<String>,
}

/// `GET /v1/messages/batches`: newest first; `before_id` / `after_id` page; `limit`
/// 1..1000 (default 20).
pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
    req: Request,
) -> Response {
    let who = owner(req.extensions().get::<Identity>());
    let result = async {
        let store = &state.batches().ok_or_else(batches_api::unavailable)?.store;
        let page = Page {
            after: q.after_id.as_deref(),
            before: q.before_id.as_deref(),
            limit: q.limit.unwrap_or(20).clamp(1, 1000),
        };
        store
            .list_batches(who.as_deref(), Some(Surface::Anthropic), &page)
            .await
            .map_err(|e| store_failed(&e))
    }
    .await;
    match result {
        Ok((rows, more)) => {
            let base = base_url(req.headers());
            let data: Vec<Value> = rows.iter().map(|b| wire::anthropic_batch(b, &base)).collect();
            let id = |v: Option<&Value>| v.map_or(Value::Null, |v| v["id"].clone());
            ok(&json!({
                "data": data,
                "has_more": more,
                "first_id": id(data.first()),
                "last_id": id(data.last()),
            }))
        }
        Err(err) => fail(req.headers(), &err),
    }
}

/// `GET /v1/messages/batches/{id}/results`: JSON lines, once the batch has ended.
pub async fn results(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let who = owner(req.extensions().get::<Identity>());
    let result = async {
        let b = visible_batch(&state, &id, who.as_deref(), Surface::Anthropic).await?;
        if b.status.is_open() {
            return Err(refused(
                format!("The message batch `{id}` is still {}; its results are ready when it has ended.", b.status.anthropic()),
                "Poll GET /v1/messages/batches/{id} until processing_status is `ended`, then read the results.",
                None,
            ));
        }
        let store = &state.batches().ok_or_else(batches_api::unavailable)?.store;
        store.items(&id).await.map_err(|e| store_failed(&e))
    }
    .await;
    match result {
        Ok(items) => {
            let mut response = Response::new(Body::from(wire::anthropic_results(&items)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-jsonl"));
            response
        }
        Err(err) => fail(req.headers(), &err),
    }
}

/// `POST /v1/messages/batches/{id}/cancel`.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let who = owner(req.extensions().get::<Identity>());
    match batches_api::cancel(&state, &id, who.as_deref(), Surface::Anthropic).await {
        Ok(b) => ok(&wire::anthropic_batch(&b, &base_url(req.headers()))),
        Err(err) => fail(req.headers(), &err),
    }
}

/// `DELETE /v1/messages/batches/{id}`: an ended batch, its items and results.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let who = owner(req.extensions().get::<Identity>());
    let result = async {
        let b = visible_batch(&state, &id, who.as_deref(), Surface::Anthropic).await?;
        if b.status.is_open() {
            return Err(refused(
                format!("The message batch `{id}` is still {}; only an ended batch can be deleted.", b.status.anthropic()),
                "Cancel it first (POST /v1/messages/batches/{id}/cancel), wait until it has ended, then delete it.",
                None,
            ));
        }
        let store = &state.batches().ok_or_else(batches_api::unavailable)?.store;
        store.delete_batch(&b).await.map_err(|e| store_failed(&e))
    }
    .await;
    match result {
        Ok(()) => ok(&json!({"id": id, "type": "message_batch_deleted"})),
        Err(err) => fail(req.headers(), &err),
    }
}
