//! `POST /v1/messages` and `POST /v1/messages/count_tokens`: Anthropic surface in, router,
//! Anthropic surface out. Every answer, error or not, carries Anthropic's `request-id`.
//!
//! Thin on purpose: never interprets a request or response beyond what the surface and
//! router return.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use bytes::Bytes;

use super::AppState;
use super::body::read_limited;
use super::cache_hook;
use super::chat::{apply_key_rules, cost_header, served_headers};
use super::errors::request_id;
use super::ledger_hook::{self, Started};
use super::state::Runtime;
use crate::canonical::{ChatRequest, Dialect};
use crate::classify::ApiError;
use crate::fastpath::{Answer, AnswerStream, RawBody};
use crate::keys::Identity;
use crate::ledger::CALL_MESSAGES;
use crate::limits::Caller;
use crate::surface::anthropic;
use crate::telemetry;

/// Anthropic's request id header; the SDKs read it into `_request_id`.
const ANTHROPIC_REQUEST_ID: HeaderName = HeaderName::from_static("request-id");

/// `POST /v1/messages` (Claude Code adds `?beta=true`; the query changes nothing).
pub async fn create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let runtime = state.runtime();
    let (parts, body) = req.into_parts();
    let request_id = request_id(&parts.headers);
    let fail = |err: &ApiError| anthropic::error_response(err, request_id);
    let bytes = match read_limited(&parts.headers, body, runtime.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(err) => return fail(&err),
    };
    let mut chat = match anthropic::decode_messages_request(&bytes, &parts.headers) {
        Ok(chat) => chat,
        Err(err) => return fail(&err),
    };
    let identity = parts.extensions.get::<Identity>();
    crate::attribution::fold_header_tags(&parts.headers, &mut chat);
    let caller = match apply_key_rules(&state, identity, &mut chat) {
        Ok(caller) => caller,
        Err(err) => return fail(&err),
    };

    let started = Started::new(
        &parts.headers,
        CALL_MESSAGES,
        &chat,
        identity,
        runtime.config.general.metrics,
    );
    let span = telemetry::request(runtime.tracer.as_ref(), &parts.headers, &chat, request_id);
    let (cache, hit) = cache_hook::lookup(&runtime, &parts.headers, &chat, true).await;
    if let (Some(cache), Some(hit)) = (&cache, hit) {
        telemetry::cached(span, &hit, &cache.key);
        ledger_hook::cached(&state, started, &hit, &cache.key);
        let mut response = if chat.stream {
            sse(cache_hook::replay(&hit), request_id)
        } else {
            json(anthropic::encode_response(&hit), request_id)
        };
        cache.headers(response.headers_mut());
        return response;
    }
    // No cache: nothing needs the canonical answer, so a deployment that speaks Messages
    // itself relays its own.
    let relay = cache.is_none() && runtime.config.general.same_dialect_relay;
    let raw = if relay { RawBody::parse(bytes, Dialect::Anthropic) } else { None };
    if let Some(raw) = raw {
        let fast = Fast { state: &state, started, span, request_id };
        return fast.serve(&runtime, &chat, &raw, &caller).await;
    }
    if chat.stream {
        match telemetry::within(span.as_ref(), runtime.router.stream_as(&chat, &caller)).await {
            Ok(served) => {
                let charge = telemetry::streamed(span, &served.route, served.charge);
                ledger_hook::streamed(&state, started, &served.route, charge);
                let events = match &cache {
                    Some(cache) => cache.tee(served.value),
                    None => served.value,
                };
                let mut response = sse(events, request_id);
                let headers = response.headers_mut();
                served_headers(headers, &served.route);
                if let Some(cache) = &cache {
                    cache.headers(headers);
                }
                response
            }
            Err(err) => {
                telemetry::failed(span, &err);
                ledger_hook::failed(&state, started, &err);
                fail(&err)
            }
        }
    } else {
        match telemetry::within(span.as_ref(), runtime.router.send_as(&chat, &caller)).await {
            Ok(served) => {
                telemetry::served(span, &served);
                let mut response = json(anthropic::encode_response(&served.value), request_id);
                served_headers(response.headers_mut(), &served.route);
                cost_header(response.headers_mut(), &served.charge);
                if let Some(cache) = &cache {
                    cache.store(&served.value);
                    cache.headers(response.headers_mut());
                }
                ledger_hook::served(&state, started, &served.route, &served.charge);
                response
            }
            Err(err) => {
                telemetry::failed(span, &err);
                ledger_hook::failed(&state, started, &err);
                fail(&err)
            }
        }
    }
}

/// A request on the same-dialect fast path, and what answering it records.
struct Fast<'a> {
    state: &'a Arc<AppState>,
    started: Started,
    span: Option<telemetry::RequestSpan>,
    request_id: Option<&'a str>,
}

impl Fast<'_> {
    async fn serve(
        self,
        runtime: &Runtime,
        chat: &ChatRequest,
        raw: &RawBody,
        caller: &Caller,
    ) -> Response {
        let Self { state, started, span, request_id } = self;
        let router = &runtime.router;
        let failed = if chat.stream {
            match telemetry::within(span.as_ref(), router.relay_stream_as(chat, raw, caller)).await
            {
                Ok(served) => {
                    let charge = telemetry::streamed(span, &served.route, served.charge);
                    ledger_hook::streamed(state, started, &served.route, charge);
                    let mut response = match served.value {
                        AnswerStream::Relayed(chunks) => {
                            sse_of(Body::from_stream(anthropic::encode_relayed(chunks)), request_id)
                        }
                        AnswerStream::Translated(events) => sse(events, request_id),
                    };
                    served_headers(response.headers_mut(), &served.route);
                    return response;
                }
                Err(err) => err,
            }
        } else {
            match telemetry::within(span.as_ref(), router.relay_as(chat, raw, caller)).await {
                Ok(served) => {
                    telemetry::served_answer(span, &served);
                    let body = match &served.value {
                        Answer::Relayed(answer) => answer.body.clone(),
                        Answer::Translated(answer) => anthropic::encode_response(answer),
                    };
                    let mut response = json(body, request_id);
                    served_headers(response.headers_mut(), &served.route);
                    cost_header(response.headers_mut(), &served.charge);
                    ledger_hook::served(state, started, &served.route, &served.charge);
                    return response;
                }
                Err(err) => err,
            }
        };
        telemetry::failed(span, &failed);
        ledger_hook::failed(state, started, &failed);
        anthropic::error_response(&failed, request_id)
    }
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}` from the model's deployment.
pub async fn count_tokens(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let runtime = state.runtime();
    let (parts, body) = req.into_parts();
    let request_id = request_id(&parts.headers);
    let fail = |err: &ApiError| anthropic::error_response(err, request_id);
    let bytes = match read_limited(&parts.headers, body, runtime.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(err) => return fail(&err),
    };
    let mut chat = match anthropic::decode_count_tokens_request(&bytes, &parts.headers) {
        Ok(chat) => chat,
        Err(err) => return fail(&err),
    };
    // Counting tokens spends nothing: the key's model rules apply, its limits do not.
    crate::attribution::fold_header_tags(&parts.headers, &mut chat);
    if let Err(err) = apply_key_rules(&state, parts.extensions.get::<Identity>(), &mut chat) {
        return fail(&err);
    }
    match runtime.router.count_tokens(&chat).await {
        Ok(served) => {
            let mut response = json(anthropic::encode_count_tokens(served.value), request_id);
            served_headers(response.headers_mut(), &served.route);
            response
        }
        Err(err) => fail(&err),
    }
}

fn sse(events: crate::provider::EventStream, request_id: Option<&str>) -> Response {
    sse_of(Body::from_stream(anthropic::encode_stream(events)), request_id)
}

fn sse_of(body: Body, request_id: Option<&str>) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    tag(headers, request_id);
    response
}

fn json(body: Bytes, request_id: Option<&str>) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    tag(headers, request_id);
    response
}

fn tag(headers: &mut HeaderMap, request_id: Option<&str>) {
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        headers.insert(ANTHROPIC_REQUEST_ID, id);
    }
}
