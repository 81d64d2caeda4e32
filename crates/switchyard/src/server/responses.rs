//! `POST /v1/responses` (and `/responses`): the Responses surface in, the router, the
//! Responses surface out; `GET` and `DELETE /v1/responses/{id}` for stored Responses.
//!
//! The same path as chat completions (key rules, cache, router, ledger, spans); on top, a
//! Response with `store` (the default) is kept in `response_store` so `previous_response_id`
//! can continue its conversation. Errors are OpenAI-shaped.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::body::read_limited;
use super::cache_hook;
use super::chat::{apply_key_rules, cost_header, served_headers};
use super::ledger_hook::{self, Started};
use super::{AppState, Runtime};
use crate::cache::Accumulator;
use crate::canonical::{ChatRequest, ChatResponse, Message, RESPONSES_BODY, Role, StreamEvent};
use crate::classify::{ApiError, Diagnosis, ErrorKind};
use crate::config::{Config, Deployment};
use crate::keys::Identity;
use crate::ledger::CALL_RESPONSES;
use crate::limits::Caller;
use crate::provider::EventStream;
use crate::provider::serves_responses;
use crate::response_store::{Stored, TTL};
use crate::surface::openai::error_response as fail;
use crate::surface::responses::{self, Echo, encode_response, encode_stream, new_id, unix_now};
use crate::telemetry;

pub async fn create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let runtime = state.runtime();
    let (parts, body) = req.into_parts();
    let bytes = match read_limited(&parts.headers, body, runtime.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(err) => return fail(&err),
    };
    let mut decoded = match responses::decode_responses_request(&bytes) {
        Ok(decoded) => decoded,
        Err(err) => return fail(&err),
    };
    let mut chat = std::mem::take(&mut decoded.chat);
    let identity = parts.extensions.get::<Identity>();
    crate::attribution::fold_header_tags(&parts.headers, &mut chat);
    let caller = match apply_key_rules(&state, identity, &mut chat) {
        Ok(caller) => caller,
        Err(err) => return fail(&err),
    };
    // Hosted tools reach an upstream only when every deployment that may answer takes the
    // Responses API as is.
    let native = native_only(&runtime.config, &chat.model);
    if !native && let Some(err) = decoded.refuse_built_in(&chat.model) {
        return fail(&err);
    }
    let dropped = if native { String::new() } else { decoded.dropped.join(", ") };
    let echo = Arc::new(decoded.echo);
    let mut response = served(&state, &runtime, &parts, chat, caller, echo, !native).await;
    if !dropped.is_empty()
        && let Ok(value) = HeaderValue::from_str(&dropped)
    {
        response.headers_mut().insert(DROPPED_TOOLS, value);
    }
    response
}

/// Whether every deployment `model` names serves the Responses API itself.
fn native_only(config: &Config, model: &str) -> bool {
    let group = config.groups.iter().find(|g| g.name == model);
    let deployments: Vec<&Deployment> = match group {
        Some(group) => group.deployments.iter().map(AsRef::as_ref).collect(),
        None => config
            .groups
            .iter()
            .flat_map(|g| &g.deployments)
            .filter(|d| d.id == model)
            .map(AsRef::as_ref)
            .collect(),
    };
    !deployments.is_empty() && deployments.iter().all(|d| serves_responses(d))
}

/// Names the hosted tools left out of the request (`web_search`).
const DROPPED_TOOLS: HeaderName = HeaderName::from_static("x-switchyard-dropped-tools");

async fn served(
    state: &Arc<AppState>,
    runtime: &Runtime,
    parts: &Parts,
    mut chat: ChatRequest,
    caller: Arc<Caller>,
    echo: Arc<Echo>,
    // A body forwarded as is carries what the canonical cache key cannot see (hosted
    // tools, `include` …): such requests are not cached.
    cacheable: bool,
) -> Response {
    if let Some(previous) = &echo.previous_response_id
        && let Err(err) = continued(state, previous, &mut chat).await
    {
        return fail(&err);
    }
    if chat.messages.is_empty() {
        return fail(&ApiError::invalid_request(
            "input: must contain at least one user message or function call output",
            Some("input"),
        ));
    }
    let identity = parts.extensions.get::<Identity>();
    let id = new_id();
    let created_at = unix_now();
    let started = Started::new(
        &parts.headers,
        CALL_RESPONSES,
        &chat,
        identity,
        runtime.config.general.metrics,
    );
    let span = telemetry::request(
        runtime.tracer.as_ref(),
        &parts.headers,
        &chat,
        super::errors::request_id(&parts.headers),
    );
    let (cache, hit) = if cacheable {
        cache_hook::lookup_covered(runtime, &parts.headers, &chat, |c| c.covers_responses()).await
    } else {
        (None, None)
    };
    if let (Some(cache), Some(hit)) = (&cache, hit) {
        telemetry::cached(span, &hit, &cache.key);
        ledger_hook::cached(state, started, &hit, &cache.key);
        let mut response = if chat.stream {
            let events = recorded(state, &id, created_at, &echo, &chat, cache_hook::replay(&hit));
            sse(encode_stream(events, id, created_at, echo))
        } else {
            let body = encode_response(&id, created_at, &echo, &hit);
            keep(state, &id, &echo, &chat, &hit, &body).await;
            json_response(&body)
        };
        cache.headers(response.headers_mut());
        return response;
    }
    if chat.stream {
        match telemetry::within(span.as_ref(), runtime.router.stream_as(&chat, &caller)).await {
            Ok(served) => {
                let charge = telemetry::streamed(span, &served.route, served.charge);
                ledger_hook::streamed(state, started, &served.route, charge);
                let events = match &cache {
                    Some(cache) => cache.tee(served.value),
                    None => served.value,
                };
                let events = recorded(state, &id, created_at, &echo, &chat, events);
                let mut response = sse(encode_stream(events, id, created_at, echo));
                let headers = response.headers_mut();
                served_headers(headers, &served.route);
                if let Some(cache) = &cache {
                    cache.headers(headers);
                }
                response
            }
            Err(err) => {
                telemetry::failed(span, &err);
                ledger_hook::failed(state, started, &err);
                fail(&err)
            }
        }
    } else {
        match telemetry::within(span.as_ref(), runtime.router.send_as(&chat, &caller)).await {
            Ok(served) => {
                telemetry::served(span, &served);
                let body = encode_response(&id, created_at, &echo, &served.value);
                keep(state, &id, &echo, &chat, &served.value, &body).await;
                let mut response = json_response(&body);
                let headers = response.headers_mut();
                served_headers(headers, &served.route);
                cost_header(headers, &served.charge);
                if let Some(cache) = &cache {
                    cache.store(&served.value);
                    cache.headers(headers);
                }
                ledger_hook::served(state, started, &served.route, &served.charge);
                response
            }
            Err(err) => {
                telemetry::failed(span, &err);
                ledger_hook::failed(state, started, &err);
                fail(&err)
            }
        }
    }
}

/// `GET /v1/responses/{id}`: a stored Response as it was returned.
pub async fn retrieve(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match state.responses.get(&id).await {
        Ok(Some(stored)) => json_response(&stored.response),
        Ok(None) => fail(&not_found(&id, None)),
        Err(unreachable) => fail(&store_unreachable(&unreachable.place)),
    }
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match state.responses.delete(&id).await {
        Ok(true) => json_response(&json!({"id": id, "object": "response", "deleted": true})),
        Ok(false) => fail(&not_found(&id, None)),
        Err(unreachable) => fail(&store_unreachable(&unreachable.place)),
    }
}

/// Prepends the conversation `previous` ended to `chat`'s.
async fn continued(
    state: &AppState,
    previous: &str,
    chat: &mut ChatRequest,
) -> Result<(), ApiError> {
    match state.responses.get(previous).await {
        Ok(Some(stored)) => {
            let next = std::mem::take(&mut chat.messages);
            chat.messages = responses::prepend(stored.messages, next);
            // The same conversation as items, for an upstream that takes the body as is.
            if let Some(Value::Object(raw)) = chat.gateway.get_mut(RESPONSES_BODY) {
                let mut items = stored.items;
                items.extend(input_items(raw.get("input")));
                raw.insert("input".into(), Value::Array(items));
            }
            Ok(())
        }
        Ok(None) => Err(not_found(previous, Some("previous_response_id"))),
        Err(unreachable) => Err(store_unreachable(&unreachable.place)),
    }
}

fn not_found(id: &str, param: Option<&str>) -> ApiError {
    let mut err = ApiError::new(ErrorKind::NotFound, format!("Response with id '{id}' not found."))
        .with_diagnosis(Diagnosis::new(
            "RSP-02",
            format!(
                "This gateway has no stored Response `{id}`: it was created with `store: false`, \
             by another gateway without a shared Redis, deleted, or more than {} minutes ago \
             (stored Responses expire).",
                TTL.as_secs() / 60
            ),
            "Send the whole conversation in `input` instead of `previous_response_id`, or keep \
         `store: true` and continue within the expiry; replicas share stored Responses when \
         `router_settings.redis_host` (or `redis_url`) is set.",
        ));
    if let Some(param) = param {
        err = err.with_param(param);
    }
    err
}

fn store_unreachable(place: &str) -> ApiError {
    ApiError::new(
        ErrorKind::UpstreamUnavailable,
        format!("Stored Responses are in Redis at {place}, which does not answer."),
    )
    .with_diagnosis(Diagnosis::new(
        "RSP-03",
        format!("Redis at {place} is unreachable, so a stored Response cannot be read."),
        "Bring Redis back (the gateway notices within a second), or send the whole \
         conversation in `input` instead of `previous_response_id`.",
    ))
}

/// A request's `input` as a list of items (a string is one user message).
fn input_items(input: Option<&Value>) -> Vec<Value> {
    match input {
        Some(Value::String(text)) => vec![json!({"role": "user", "content": text})],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// Stores a served answer when the request asked for it.
async fn keep(
    state: &AppState,
    id: &str,
    echo: &Echo,
    chat: &ChatRequest,
    answer: &ChatResponse,
    response: &Value,
) {
    if !echo.store {
        return;
    }
    let mut messages = chat.messages.clone();
    let output: Vec<_> = answer.content.clone();
    if !output.is_empty() {
        messages.push(Message { role: Role::Assistant, content: output });
    }
    let raw = chat.gateway.get(RESPONSES_BODY);
    let mut items = input_items(raw.and_then(|raw| raw.get("input")));
    items.extend(response["output"].as_array().into_iter().flatten().cloned());
    let stored = Stored { response: response.clone(), messages, items };
    state.responses.put(id, &stored).await;
}

/// `events`, with the answer stored when the stream completes (before its last event, so a
/// client that continues the moment it reads `response.completed` finds it).
fn recorded(
    state: &Arc<AppState>,
    id: &str,
    created_at: u64,
    echo: &Arc<Echo>,
    chat: &ChatRequest,
    events: EventStream,
) -> EventStream {
    if !echo.store {
        return events;
    }
    let context = (
        state.clone(),
        id.to_owned(),
        created_at,
        echo.clone(),
        chat.clone(),
        Accumulator::default(),
    );
    Box::pin(events.scan(Some(context), |context, item| {
        let finished = match (&item, context.as_ref()) {
            (Ok(StreamEvent::Stop), Some(_)) => context.take(),
            _ => None,
        };
        if let (Ok(event), Some(ctx)) = (&item, context.as_mut()) {
            ctx.5.push(event);
        }
        async move {
            if let Some((state, id, created_at, echo, chat, acc)) = finished
                && let Some(answer) = acc.finish()
            {
                let body = encode_response(&id, created_at, &echo, &answer);
                keep(&state, &id, &echo, &chat, &answer, &body).await;
            }
            Some(item)
        }
    }))
}

fn json_response(body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn sse<S>(frames: S) -> Response
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static,
{
    let mut response = Response::new(Body::from_stream(frames));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
