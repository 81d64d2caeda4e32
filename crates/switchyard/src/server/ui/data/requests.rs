//! `GET /ui/api/requests?tag=&key=&alias=&status=ok|error&limit=50&before=<cursor>`: the
//! latest requests, newest first, a page at a time; `GET /ui/api/requests/{request_id}`: one
//! request in full. Read from the ledger without bodies: the gateway never stores prompts or
//! answers (`store_prompts_in_spend_logs` is ignored), so a detail never has them.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use serde_json::{Map, Value, json};

use super::{Params, Scope, answer, bad_param, json, rfc3339, text};
use crate::classify::{ApiError, Diagnosis, ErrorKind};
use crate::ledger::read::{Entry, Filter, ReadError, decimal_number};
use crate::ledger::report::short_hash;
use crate::server::AppState;
use crate::server::spend::{reader, unavailable};

/// A page unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

pub async fn list(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    Query(q): Query<Params>,
) -> Response {
    answer(list_inner(&state, &Scope::of(&parts), &q).await)
}

pub async fn detail(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    Path(id): Path<String>,
) -> Response {
    answer(detail_inner(&state, &Scope::of(&parts), id).await)
}

async fn list_inner(state: &AppState, scope: &Scope, q: &Params) -> Result<Response, ApiError> {
    let failed = match text(q, "status") {
        None => None,
        Some("ok") => Some(false),
        Some("error") => Some(true),
        Some(other) => {
            return Err(bad_param("status", format!("status must be ok or error, not `{other}`.")));
        }
    };
    let limit = match text(q, "limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
            bad_param("limit", format!("limit must be a number from 1 to {MAX_LIMIT}, not `{v}`."))
        })?,
    };
    let before = text(q, "before").map(cursor_from).transpose()?;
    let filter = Filter {
        api_key: scope.key_filter(state, text(q, "key"))?,
        alias: text(q, "alias").map(str::to_owned),
        tag: text(q, "tag").map(str::to_owned),
        failed,
        before,
        ..Filter::default()
    };
    let (rows, more) = match reader(state)?.summaries(&filter, limit).await {
        Ok(found) => found,
        Err(ReadError::Missing { .. }) => (Vec::new(), false),
        Err(e) => return Err(unavailable(&e)),
    };
    let next = if more {
        rows.last().map(|r| {
            let e = Entry::from_row(r);
            cursor_of(&e.start, &e.request_id)
        })
    } else {
        None
    };
    let rows: Vec<Value> = rows.iter().map(|r| summary(&Entry::from_row(r), r)).collect();
    Ok(json(&json!({"rows": rows, "next": next})))
}

async fn detail_inner(state: &AppState, scope: &Scope, id: String) -> Result<Response, ApiError> {
    let filter = Filter {
        request_id: Some(id.clone()),
        api_key: scope.token().map(str::to_owned),
        ..Filter::default()
    };
    let found = match reader(state)?.summaries(&filter, 1).await {
        Ok((rows, _)) => rows.into_iter().next(),
        Err(ReadError::Missing { .. }) => None,
        Err(e) => return Err(unavailable(&e)),
    };
    let Some(row) = found else { return Err(no_such_request(&id)) };
    Ok(json(&full(&row)))
}

/// `<startTime>|<request_id>` in URL-safe base64: opaque to the pages, exact to the
/// millisecond the ledger keeps.
fn cursor_of(start: &NaiveDateTime, request_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{request_id}", start.format("%Y-%m-%dT%H:%M:%S%.3f")))
}

fn cursor_from(text: &str) -> Result<(NaiveDateTime, String), ApiError> {
    let bad =
        || bad_param("before", "before must be the `next` value of a previous page.".to_owned());
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (t, id) = text.split_once('|').ok_or_else(bad)?;
    let t = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| bad())?;
    Ok((t, id.to_owned()))
}

fn no_such_request(id: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("No request `{id}` in the ledger for this key."))
        .with_diagnosis(Diagnosis::new(
            "UI-08",
            "The ledger has no row with this request id that the signed-in key may read: the id \
             is mistyped, the row was deleted by retention, it belongs to another key, or the \
             request was made moments ago and its row is still being written.",
            "Open the request from the Requests list, or sign in with the master key to see \
             every key's requests.",
        ))
}

fn metadata(row: &Map<String, Value>) -> Value {
    match row.get("metadata") {
        Some(Value::String(t)) => serde_json::from_str(t).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    }
}

fn none_if_empty(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { Value::from(s) }
}

/// The row as the Requests list shows it. No key and no full key hash: its alias and a
/// short hash.
fn summary(e: &Entry, row: &Map<String, Value>) -> Value {
    let meta = metadata(row);
    let tried = meta.get("attempts").and_then(Value::as_array).map_or(0, Vec::len);
    let (attempts, status_code) = if e.failed {
        let code = meta.pointer("/error_information/error_code").and_then(|c| {
            c.as_str().and_then(|s| s.parse::<u16>().ok()).or(c.as_u64().map(|n| n as u16))
        });
        (tried, code)
    } else {
        (tried + usize::from(!e.cache_hit), Some(200))
    };
    let text = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or_default();
    json!({
        "request_id": e.request_id,
        "time": rfc3339(&e.start),
        "status": if e.failed { "error" } else { "ok" },
        "status_code": status_code,
        "error_class": none_if_empty(&e.error_class),
        "alias": e.alias,
        "model": e.model,
        "provider": none_if_empty(&e.provider),
        "deployment": none_if_empty(&e.deployment),
        "attempts": attempts,
        "input_tokens": e.prompt_tokens,
        "output_tokens": e.completion_tokens,
        "cost": e.spend.map_or(Value::Null, decimal_number),
        "latency_ms": e.duration_ms,
        "overhead_ms": e.overhead_ms,
        "cache_hit": e.cache_hit,
        "key_alias": e.key_alias,
        "key": none_if_empty(&short_hash(&e.api_key)),
        "user": none_if_empty(&e.end_user),
        "key_owner": none_if_empty(text("user")),
        "team": none_if_empty(&e.team_id),
        "session": none_if_empty(&e.session_id),
        "tags": e.tags,
    })
}

/// The list's row plus what else the ledger holds of the request: times, cache tokens,
/// the usage the provider reported, the failed attempts, the error.
fn full(row: &Map<String, Value>) -> Value {
    let e = Entry::from_row(row);
    let meta = metadata(row);
    let mut out = summary(&e, row);
    let text = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or_default();
    let time = |k: &str| {
        let v = crate::ledger::read::normalize(Map::from_iter([(
            k.to_owned(),
            row.get(k).cloned().unwrap_or(Value::Null),
        )]));
        v.get(k).cloned().unwrap_or(Value::Null)
    };
    let m = |k: &str| meta.get(k).cloned().unwrap_or(Value::Null);
    if let Value::Object(o) = &mut out {
        o.insert("call_type".into(), Value::from(text("call_type")));
        o.insert("api_base".into(), none_if_empty(text("api_base")));
        o.insert("end_time".into(), time("endTime"));
        o.insert("first_token_time".into(), time("completionStartTime"));
        o.insert("cache_read_tokens".into(), json!(e.cache_read_tokens));
        o.insert("cache_write_tokens".into(), json!(e.cache_write_tokens));
        o.insert("usage".into(), m("usage_object"));
        o.insert("stream_incomplete".into(), json!(m("stream_incomplete") == Value::Bool(true)));
        o.insert("attempt_details".into(), m("attempts"));
        o.insert("retries".into(), m("attempted_retries"));
        o.insert("fallbacks".into(), m("attempted_fallbacks"));
        o.insert("error".into(), m("error_information"));
        o.insert("batch_id".into(), m("batch_id"));
        // Never stored by this gateway; absent rather than empty so the page says so.
        o.insert("bodies_stored".into(), Value::Bool(false));
    }
    out
}
