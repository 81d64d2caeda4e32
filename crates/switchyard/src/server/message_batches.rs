//! Anthropic's Message Batches routes (`/v1/messages/batches*`) over the batch store, in
//! Anthropic's shapes; errors carry Anthropic's `request-id` and a BAT catalog id. A batch
//! whose requests all go to one Anthropic account is forwarded to Anthropic's own Batches API
//! (`batch_forward`): its reads, lists and cancels go through to the upstream.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::batch_forward;
use super::batches_api::{self, Owner, ok, owned_by, refused, store_failed, visible_batch};
use super::body::read_limited;
use super::errors::request_id;
use crate::batches::model::{self, BatchRow, Surface};
use crate::batches::{Page, input, wire};
use crate::classify::ApiError;
use crate::keys::Identity;
use crate::surface::anthropic;

/// How long a message batch may take (Anthropic's 24 hours).
const WINDOW_SECS: i64 = 24 * 3600;

fn fail(headers: &HeaderMap, err: &ApiError) -> Response {
    anthropic::error_response(err, request_id(headers))
}

/// A message batch (or list) as the client sees it, or the error in Anthropic's shape.
fn reply<T>(
    headers: &HeaderMap,
    result: Result<T, ApiError>,
    render: impl FnOnce(T, &str) -> Value,
) -> Response {
    match result {
        Ok(value) => ok(&render(value, &base_url(headers))),
        Err(err) => fail(headers, &err),
    }
}

/// What a request about one message batch brings: the gateway's state, the batch id in its
/// path, who asks, and the headers (for the error's `request-id` and `results_url`).
pub struct Named {
    state: Arc<AppState>,
    id: String,
    who: Option<String>,
    headers: HeaderMap,
}

impl FromRequestParts<Arc<AppState>> for Named {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(axum::response::IntoResponse::into_response)?;
        let Owner(who) = Owner::from_request_parts(parts, state).await.unwrap_or(Owner(None));
        Ok(Self { state: state.clone(), id, who, headers: parts.headers.clone() })
    }
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
    reply(&headers, created(&state, req).await, |b, base| wire::anthropic_batch(&b, base))
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
    let mut b = BatchRow::new(
        model::new_id("msgbatch_"),
        Surface::Anthropic,
        "/v1/messages",
        model::now(),
        WINDOW_SECS,
    );
    owned_by(&mut b, identity);
    if let Some(plan) = batch_forward::plan(state, identity, &items) {
        return batch_forward::create(state, plan, b, &items).await;
    }
    batches.store.create_batch(&b, &items).await.map_err(|e| store_failed(&e))?;
    batches.wake();
    visible_batch(state, &b.id, None, Surface::Anthropic).await
}

/// The batch `id` if `who` may see it, a forwarded one as its upstream has it now.
async fn current(state: &AppState, id: &str, who: Option<&str>) -> Result<BatchRow, ApiError> {
    let b = visible_batch(state, id, who, Surface::Anthropic).await?;
    batch_forward::refresh(state, b).await
}

/// `GET /v1/messages/batches/{id}`.
pub async fn retrieve(asked: Named) -> Response {
    let result = current(&asked.state, &asked.id, asked.who.as_deref()).await;
    reply(&asked.headers, result, |b, base| wire::anthropic_batch(&b, base))
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    limit: Option<i64>,
    before_id: Option<String>,
    after_id: Option<String>,
}

/// `GET /v1/messages/batches`: newest first; `before_id` / `after_id` page; `limit`
/// 1..1000 (default 20). Forwarded batches still open are read from their upstream.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
    Owner(who): Owner,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let store = &state.batches().ok_or_else(batches_api::unavailable)?.store;
        let page = Page {
            after: q.after_id.as_deref(),
            before: q.before_id.as_deref(),
            limit: q.limit.unwrap_or(20).clamp(1, 1000),
        };
        let (rows, more) = store
            .list_batches(who.as_deref(), Some(Surface::Anthropic), &page)
            .await
            .map_err(|e| store_failed(&e))?;
        let mut fresh = Vec::with_capacity(rows.len());
        for b in rows {
            // An upstream that does not answer leaves the batch as last read.
            let stored = b.clone();
            fresh.push(batch_forward::refresh(&state, b).await.unwrap_or(stored));
        }
        Ok((fresh, more))
    }
    .await;
    reply(&headers, result, |(rows, more), base| {
        let data: Vec<Value> = rows.iter().map(|b| wire::anthropic_batch(b, base)).collect();
        let id = |v: Option<&Value>| v.map_or(Value::Null, |v| v["id"].clone());
        json!({
            "data": data,
            "has_more": more,
            "first_id": id(data.first()),
            "last_id": id(data.last()),
        })
    })
}

/// The batch `id` once it has ended; BAT-04 naming `action` while it has not.
async fn ended(
    state: &AppState,
    id: &str,
    who: Option<&str>,
    action: &str,
) -> Result<BatchRow, ApiError> {
    let b = current(state, id, who).await?;
    if b.status.is_open() {
        let (message, remedy) = match action {
            "results" => (
                "its results are ready when it has ended.",
                format!(
                    "Poll GET /v1/messages/batches/{id} until processing_status is `ended`, then read the results."
                ),
            ),
            _ => (
                "only an ended batch can be deleted.",
                format!(
                    "Cancel it first (POST /v1/messages/batches/{id}/cancel), wait until it has ended, then delete it."
                ),
            ),
        };
        let status = b.status.anthropic();
        return Err(refused(
            format!("The message batch `{id}` is still {status}; {message}"),
            &remedy,
            None,
        ));
    }
    Ok(b)
}

/// `GET /v1/messages/batches/{id}/results`: JSON lines, once the batch has ended.
pub async fn results(asked: Named) -> Response {
    let Named { state, id, who, headers } = asked;
    let result = async {
        let b = ended(&state, &id, who.as_deref(), "results").await?;
        if b.is_forwarded() {
            return batch_forward::results(&state, &b).await;
        }
        let store = &state.batches().ok_or_else(batches_api::unavailable)?.store;
        let items = store.items(&id).await.map_err(|e| store_failed(&e))?;
        let mut response = Response::new(Body::from(wire::anthropic_results(&items)));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-jsonl"));
        Ok(response)
    }
    .await;
    result.unwrap_or_else(|err| fail(&headers, &err))
}

/// `POST /v1/messages/batches/{id}/cancel`.
pub async fn cancel(asked: Named) -> Response {
    let Named { state, id, who, headers } = asked;
    let result = batches_api::cancel(&state, &id, who.as_deref(), Surface::Anthropic).await;
    reply(&headers, result, |b, base| wire::anthropic_batch(&b, base))
}

/// `DELETE /v1/messages/batches/{id}`: an ended batch, its items and results (and a
/// forwarded one at its upstream too).
pub async fn delete(asked: Named) -> Response {
    let Named { state, id, who, headers } = asked;
    let result = async {
        let b = ended(&state, &id, who.as_deref(), "delete").await?;
        batch_forward::delete(&state, &b).await?;
        let store = &state.batches().ok_or_else(batches_api::unavailable)?.store;
        store.delete_batch(&b).await.map_err(|e| store_failed(&e))
    }
    .await;
    reply(&headers, result, |(), _| json!({"id": id, "type": "message_batch_deleted"}))
}
