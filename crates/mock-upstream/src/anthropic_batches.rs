//! Emulates Anthropic's Message Batches API: `POST /v1/messages/batches`, `GET …/{id}`,
//! `GET …/{id}/results` (JSON lines), `POST …/{id}/cancel`, `DELETE …/{id}` and the list,
//! with the API's shapes (`message_batch`, `processing_status` `in_progress` → `canceling` →
//! `ended`, `request_counts`, RFC 3339 times, `results_url` once ended).
//!
//! A batch is processed in the background: after the batch delay ([`crate::MockUpstream::
//! set_batch_delay`], `POST /_mock/batches {"delay_ms"}`; none by default), its requests are
//! answered one by one in order, each taking the next scripted reply (and its `delay`), as a
//! live call would. A request whose `params` the Messages API would refuse is `errored` with
//! that refusal, as the API validates `params` only when it processes them. A cancel lets the
//! request being answered finish and cancels the rest.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use axum::body::Body as HttpBody;
use axum::http::header::HOST;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::anthropic::{
    JSON, Rendered, api_error, authenticate, check_params, echo_text, error_body, error_response,
    invalid, respond,
};
use crate::reply::{Block, Body, split_words};
use crate::{Call, Shared, lock};

const PREFIX: &str = "/v1/messages/batches";

/// How long the API keeps a batch processing before it expires its requests.
const EXPIRES_AFTER: u64 = 24 * 3600;

/// The batches the mock holds, oldest first.
#[derive(Debug, Default)]
pub(crate) struct BatchState {
    list: Vec<Arc<Batch>>,
    next: u64,
    pub delay: Duration,
}

impl BatchState {
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[derive(Debug)]
struct Batch {
    id: String,
    created_at: u64,
    cancel: Notify,
    progress: std::sync::Mutex<Progress>,
}

#[derive(Debug)]
struct Progress {
    custom_ids: Vec<String>,
    /// One per request, in order, once answered: a `result` object.
    results: Vec<Option<Value>>,
    cancel_initiated_at: Option<u64>,
    ended_at: Option<u64>,
    deleted: bool,
}

pub(crate) fn owns(path: &str) -> bool {
    path == PREFIX || path.starts_with("/v1/messages/batches/")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn rfc3339(secs: u64) -> Value {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    DateTime::from_secs(secs).fmt(Format::DateTime).map_or(Value::Null, Value::String)
}

/// Answers one recorded call under `/v1/messages/batches`.
pub(crate) async fn route(
    shared: &Arc<Shared>,
    method: &str,
    path: &str,
    query: Option<&str>,
    call: &Call,
) -> axum::response::Response {
    if let Err(error) = authenticate(shared, call) {
        return error_response(call, &error, &[]);
    }
    let rest = path.strip_prefix(PREFIX).unwrap_or_default().trim_start_matches('/');
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let base = base_url(call);
    match (method, parts.as_slice()) {
        ("POST", []) => create(shared, call, &base),
        ("GET", []) => list(shared, query, call, &base),
        ("GET", [id]) => with_batch(shared, id, call, |b| ok(call, &b.object(&base))),
        ("GET", [id, "results"]) => with_batch(shared, id, call, |b| results(call, b)),
        ("POST", [id, "cancel"]) => with_batch(shared, id, call, |b| {
            b.cancel();
            ok(call, &b.object(&base))
        }),
        ("DELETE", [id]) => with_batch(shared, id, call, |b| delete(call, b)),
        _ => error_response(call, &api_error(404, "not_found_error", "Not Found"), &[]),
    }
}

fn base_url(call: &Call) -> String {
    let host = call.headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn ok(call: &Call, value: &Value) -> axum::response::Response {
    respond(200, JSON, call.seq, &[], HttpBody::from(value.to_string()))
}

fn with_batch(
    shared: &Shared,
    id: &str,
    call: &Call,
    answer: impl FnOnce(&Batch) -> axum::response::Response,
) -> axum::response::Response {
    let found = lock(&shared.batches).list.iter().find(|b| b.id == id).cloned();
    match found {
        Some(b) if !lock(&b.progress).deleted => answer(&b),
        _ => {
            let message = format!("No batch found with id '{id}'.");
            error_response(call, &api_error(404, "not_found_error", &message), &[])
        }
    }
}

fn create(shared: &Arc<Shared>, call: &Call, base: &str) -> axum::response::Response {
    let requests = match call.body.as_ref().and_then(|b| b.get("requests")) {
        Some(Value::Array(list)) if !list.is_empty() => list.clone(),
        Some(Value::Array(_)) => {
            return error_response(
                call,
                &invalid("requests: List should have at least 1 item"),
                &[],
            );
        }
        _ => return error_response(call, &invalid("requests: Field required"), &[]),
    };
    let mut custom_ids = Vec::with_capacity(requests.len());
    let mut params = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let Some(id) = r.get("custom_id").and_then(Value::as_str) else {
            return error_response(
                call,
                &invalid(&format!("requests.{i}.custom_id: Field required")),
                &[],
            );
        };
        if custom_ids.iter().any(|c| c == id) {
            let message = format!("Duplicate custom_id: {id}");
            return error_response(call, &invalid(&message), &[]);
        }
        let Some(p) = r.get("params").and_then(Value::as_object) else {
            return error_response(
                call,
                &invalid(&format!("requests.{i}.params: Field required")),
                &[],
            );
        };
        custom_ids.push(id.to_owned());
        params.push(p.clone());
    }
    let (batch, delay) = {
        let mut state = lock(&shared.batches);
        state.next += 1;
        let batch = Arc::new(Batch {
            id: format!("msgbatch_mock_{:06}", state.next),
            created_at: now(),
            cancel: Notify::new(),
            progress: std::sync::Mutex::new(Progress {
                results: vec![None; custom_ids.len()],
                custom_ids,
                cancel_initiated_at: None,
                ended_at: None,
                deleted: false,
            }),
        });
        state.list.push(batch.clone());
        (batch, state.delay)
    };
    tokio::spawn(process(shared.clone(), batch.clone(), params, delay));
    ok(call, &batch.object(base))
}

/// Answers the batch's requests in order, then ends it.
async fn process(
    shared: Arc<Shared>,
    batch: Arc<Batch>,
    params: Vec<Map<String, Value>>,
    delay: Duration,
) {
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = batch.cancel.notified() => {}
    }
    for (i, request) in params.iter().enumerate() {
        if lock(&batch.progress).cancel_initiated_at.is_some() {
            break;
        }
        let result = answer(&shared, &batch, i, request).await;
        lock(&batch.progress).results[i] = Some(result);
    }
    let mut progress = lock(&batch.progress);
    for slot in &mut progress.results {
        if slot.is_none() {
            *slot = Some(json!({"type": "canceled"}));
        }
    }
    progress.ended_at = Some(now());
}

/// One request's `result`, from the next scripted reply.
async fn answer(
    shared: &Shared,
    batch: &Batch,
    index: usize,
    request: &Map<String, Value>,
) -> Value {
    let errored =
        |e: &crate::reply::ApiError| json!({"type": "errored", "error": error_body(e, None)});
    if let Err(e) = check_params(request, true) {
        return errored(&e);
    }
    let reply = shared.next_reply();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    match reply.body {
        Body::Error(e) => errored(&e),
        Body::Message(mut message) => {
            if message.echo {
                message.blocks.insert(0, Block::Text(split_words(&echo_text(request))));
            }
            let seq = u64::try_from(index).unwrap_or(0);
            let mut rendered = Rendered::new(seq, request, message);
            rendered.id = format!("msg_{}_{index:06}", batch.id.trim_start_matches("msgbatch_"));
            json!({"type": "succeeded", "message": rendered.json()})
        }
    }
}

impl Batch {
    fn cancel(&self) {
        let mut progress = lock(&self.progress);
        if progress.ended_at.is_none() && progress.cancel_initiated_at.is_none() {
            progress.cancel_initiated_at = Some(now());
            self.cancel.notify_one();
        }
    }

    /// The `MessageBatch` object.
    fn object(&self, base: &str) -> Value {
        let p = lock(&self.progress);
        let count = |kind: &str| p.results.iter().flatten().filter(|r| r["type"] == kind).count();
        let status = match (p.ended_at, p.cancel_initiated_at) {
            (Some(_), _) => "ended",
            (None, Some(_)) => "canceling",
            (None, None) => "in_progress",
        };
        json!({
            "id": self.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": {
                "processing": p.results.iter().filter(|r| r.is_none()).count(),
                "succeeded": count("succeeded"),
                "errored": count("errored"),
                "canceled": count("canceled"),
                "expired": count("expired"),
            },
            "ended_at": p.ended_at.map_or(Value::Null, rfc3339),
            "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.created_at + EXPIRES_AFTER),
            "archived_at": null,
            "cancel_initiated_at": p.cancel_initiated_at.map_or(Value::Null, rfc3339),
            "results_url": p.ended_at.map(|_| format!("{base}{PREFIX}/{}/results", self.id)),
        })
    }
}

fn results(call: &Call, b: &Batch) -> axum::response::Response {
    let p = lock(&b.progress);
    if p.ended_at.is_none() {
        let message = format!(
            "Batch '{}' has not finished processing. Results are available once processing_status is 'ended'.",
            b.id
        );
        return error_response(call, &invalid(&message), &[]);
    }
    let mut out = String::new();
    for (id, result) in p.custom_ids.iter().zip(&p.results) {
        out.push_str(&json!({"custom_id": id, "result": result}).to_string());
        out.push('\n');
    }
    respond(200, "application/binary", call.seq, &[], HttpBody::from(out))
}

fn delete(call: &Call, b: &Batch) -> axum::response::Response {
    let mut p = lock(&b.progress);
    if p.ended_at.is_none() {
        let message =
            format!("Batch '{}' cannot be deleted while it is processing; cancel it first.", b.id);
        return error_response(call, &invalid(&message), &[]);
    }
    p.deleted = true;
    ok(call, &json!({"id": b.id, "type": "message_batch_deleted"}))
}

/// Newest first; `before_id` / `after_id` page; `limit` 1..1000 (default 20).
fn list(shared: &Shared, query: Option<&str>, call: &Call, base: &str) -> axum::response::Response {
    let mut limit = 20usize;
    let (mut before, mut after) = (None, None);
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "limit" => limit = v.parse().unwrap_or(20).clamp(1, 1000),
            "before_id" => before = Some(v.into_owned()),
            "after_id" => after = Some(v.into_owned()),
            _ => {}
        }
    }
    let all: Vec<Arc<Batch>> = {
        let state = lock(&shared.batches);
        state.list.iter().rev().filter(|b| !lock(&b.progress).deleted).cloned().collect()
    };
    let position = |id: &str| all.iter().position(|b| b.id == id);
    let (page, more) = if let Some(i) = before.as_deref().and_then(position) {
        let start = i.saturating_sub(limit);
        (&all[start..i], start > 0)
    } else {
        let start = after.as_deref().and_then(position).map_or(0, |i| i + 1);
        let end = (start + limit).min(all.len());
        (&all[start.min(end)..end], end < all.len())
    };
    let data: Vec<Value> = page.iter().map(|b| b.object(base)).collect();
    let id = |v: Option<&Value>| v.map_or(Value::Null, |v| v["id"].clone());
    ok(
        call,
        &json!({"data": data, "has_more": more, "first_id": id(data.first()), "last_id": id(data.last())}),
    )
}
