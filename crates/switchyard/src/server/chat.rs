//! `POST /v1/chat/completions`: OpenAI surface in, router, OpenAI surface out.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;

use super::AppState;
use super::body::read_limited;
use super::cache_hook;
use super::ledger_hook::{self, Started};
use super::request_id::DEPLOYMENT;
use super::state::Runtime;
use crate::attribution::end_user;
use crate::canonical::{ChatRequest, Dialect};
use crate::classify::ApiError;
use crate::cost::Charged;
use crate::fastpath::{Answer, AnswerStream, RawBody};
use crate::keys::Identity;
use crate::ledger::CALL_CHAT;
use crate::limits::Caller;
use crate::router::Route;
use crate::surface::openai;
use crate::telemetry;

pub async fn completions(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let runtime = state.runtime();
    let (parts, body) = req.into_parts();
    let bytes = match read_limited(&parts.headers, body, runtime.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(err) => return openai::error_response(&err),
    };
    let mut chat = match openai::decode_chat_request(&bytes) {
        Ok(chat) => chat,
        Err(err) => return openai::error_response(&err),
    };
    crate::attribution::fold_header_tags(&parts.headers, &mut chat);
    let identity = parts.extensions.get::<Identity>();
    let caller = match apply_key_rules(&state, identity, &mut chat) {
        Ok(caller) => caller,
        Err(err) => return openai::error_response(&err),
    };

    let started =
        Started::new(&parts.headers, CALL_CHAT, &chat, identity, runtime.config.general.metrics);
    let span = telemetry::request(
        runtime.tracer.as_ref(),
        &parts.headers,
        &chat,
        super::errors::request_id(&parts.headers),
    );
    let (cache, hit) = cache_hook::lookup(&runtime, &parts.headers, &chat, false).await;
    if let (Some(cache), Some(hit)) = (&cache, hit) {
        telemetry::cached(span, &hit, &cache.key);
        ledger_hook::cached(&state, started, &hit, &cache.key);
        let mut response = if chat.stream {
            sse(openai::encode_stream(cache_hook::replay(&hit), chat.stream_usage))
        } else {
            let mut json = Response::new(Body::from(openai::encode_response(&hit)));
            json.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            json
        };
        cache.headers(response.headers_mut());
        return response;
    }
    // No cache: nothing needs the canonical answer, so an OpenAI-compatible deployment
    // relays its own.
    let relay = cache.is_none() && runtime.config.general.same_dialect_relay;
    if let Some(raw) = relay.then(|| RawBody::parse(bytes, Dialect::OpenAi)).flatten() {
        let fast = Fast { state: &state, started, span };
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
                let mut response = sse(openai::encode_stream(events, chat.stream_usage));
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
                openai::error_response(&err)
            }
        }
    } else {
        match telemetry::within(span.as_ref(), runtime.router.send_as(&chat, &caller)).await {
            Ok(served) => {
                telemetry::served(span, &served);
                let mut response =
                    Response::new(Body::from(openai::encode_response(&served.value)));
                *response.status_mut() = StatusCode::OK;
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                served_headers(headers, &served.route);
                cost_header(headers, &served.charge);
                if let Some(cache) = &cache {
                    cache.store(&served.value);
                    cache.headers(headers);
                }
                ledger_hook::served(&state, started, &served.route, &served.charge);
                response
            }
            Err(err) => {
                telemetry::failed(span, &err);
                ledger_hook::failed(&state, started, &err);
                openai::error_response(&err)
            }
        }
    }
}

/// A request on the same-dialect fast path, and what answering it records.
struct Fast<'a> {
    state: &'a Arc<AppState>,
    started: Started,
    span: Option<telemetry::RequestSpan>,
}

impl Fast<'_> {
    async fn serve(
        self,
        runtime: &Runtime,
        chat: &ChatRequest,
        raw: &RawBody,
        caller: &Caller,
    ) -> Response {
        let Self { state, started, span } = self;
        let router = &runtime.router;
        let failed = if chat.stream {
            match telemetry::within(span.as_ref(), router.relay_stream_as(chat, raw, caller)).await
            {
                Ok(served) => {
                    let charge = telemetry::streamed(span, &served.route, served.charge);
                    ledger_hook::streamed(state, started, &served.route, charge);
                    let mut response = match served.value {
                        AnswerStream::Relayed(chunks) => sse(openai::encode_relayed(chunks)),
                        AnswerStream::Translated(events) => {
                            sse(openai::encode_stream(events, chat.stream_usage))
                        }
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
                        Answer::Translated(answer) => openai::encode_response(answer),
                    };
                    let mut response = Response::new(Body::from(body));
                    let headers = response.headers_mut();
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    served_headers(headers, &served.route);
                    cost_header(headers, &served.charge);
                    ledger_hook::served(state, started, &served.route, &served.charge);
                    return response;
                }
                Err(err) => err,
            }
        };
        telemetry::failed(span, &failed);
        ledger_hook::failed(state, started, &failed);
        openai::error_response(&failed)
    }
}

fn sse<S>(frames: S) -> Response
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static,
{
    let mut response = Response::new(Body::from_stream(frames));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A virtual key's rules for the request: the model must be on its allow-list (403, KEY-04),
/// and its `aliases` rename the model before routing. Returns the budgets and rate limits
/// the key, its team and user, and the request's customer bring (empty for the master key
/// of a gateway without customers: nothing is built).
pub(super) fn apply_key_rules(
    state: &AppState,
    identity: Option<&Identity>,
    chat: &mut ChatRequest,
) -> Result<std::sync::Arc<Caller>, ApiError> {
    if let Some(identity) = identity {
        // A key allowed a group may call it by a `model_group_alias` name too: the alias
        // reaches the same deployments.
        let resolved = identity.resolve_model(&chat.model).or_else(|denied| {
            match state.runtime().router.alias_target(&chat.model) {
                Some(group) => identity.resolve_model(group).map(|_| None).map_err(|_| denied),
                None => Err(denied),
            }
        })?;
        if let Some(model) = resolved {
            chat.model = model;
        }
    }
    let keys = state.keys();
    let end_user = keys.filter(|k| k.has_end_users()).and_then(|_| end_user(chat));
    if let (Some(keys), Some(user)) = (keys, &end_user) {
        keys.check_end_user(user)?;
    }
    if identity.is_none() && end_user.is_none() {
        // Shared: the master key's requests allocate nothing for limits they do not have.
        static NONE: std::sync::LazyLock<std::sync::Arc<Caller>> =
            std::sync::LazyLock::new(std::sync::Arc::default);
        return Ok(NONE.clone());
    }
    let default_parallel = state.runtime().config.general.key_max_parallel;
    Ok(crate::keys::caller_limits(identity, keys, end_user.as_deref(), default_parallel))
}

const LITELLM_MODEL_ID: HeaderName = HeaderName::from_static("x-litellm-model-id");
const MODEL_GROUP: HeaderName = HeaderName::from_static("x-switchyard-model-group");
const LITELLM_MODEL_GROUP: HeaderName = HeaderName::from_static("x-litellm-model-group");
const SKIPPED: HeaderName = HeaderName::from_static("x-switchyard-skipped");
const ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
const RETRIES: HeaderName = HeaderName::from_static("x-switchyard-retries");
const FALLBACKS: HeaderName = HeaderName::from_static("x-switchyard-fallbacks");
const LITELLM_RETRIES: HeaderName = HeaderName::from_static("x-litellm-attempted-retries");
const LITELLM_FALLBACKS: HeaderName = HeaderName::from_static("x-litellm-attempted-fallbacks");

/// Which deployment served and what was tried first, under our names and LiteLLM's
/// (existing scripts read those). Header names are constants: a `&str` name is parsed and
/// validated again on every insert.
pub(super) fn served_headers(headers: &mut HeaderMap, served: &Route) {
    // The nine below and the few the server adds, without growing the map twice.
    headers.reserve(12);
    let deployment = &served.deployment;
    if let Ok(id) = HeaderValue::from_str(&deployment.id) {
        headers.insert(DEPLOYMENT, id.clone());
        headers.insert(LITELLM_MODEL_ID, id);
    }
    if let Ok(group) = HeaderValue::from_str(&deployment.alias) {
        headers.insert(MODEL_GROUP, group.clone());
        headers.insert(LITELLM_MODEL_GROUP, group);
    }
    // `failed-id=class, …, served-id=ok`: every attempt in order.
    let mut attempts = String::with_capacity(deployment.id.len() + 3);
    for a in &served.failed {
        attempts.push_str(&a.deployment.id);
        attempts.push('=');
        attempts.push_str(a.error.kind.as_str());
        attempts.push_str(", ");
    }
    attempts.push_str(&deployment.id);
    attempts.push_str("=ok");
    if let Ok(value) = HeaderValue::from_str(&attempts) {
        headers.insert(ATTEMPTS, value);
    }
    if !served.skipped.is_empty() {
        let skipped: Vec<String> =
            served.skipped.iter().map(|(id, why)| format!("{id}={why}")).collect();
        if let Ok(value) = HeaderValue::from_str(&skipped.join(", ")) {
            headers.insert(SKIPPED, value);
        }
    }
    crate::limits::rate_limit_headers(headers, &served.rate);
    let (retries, fallbacks) = (count(served.retries), count(served.fallbacks));
    headers.insert(RETRIES, retries.clone());
    headers.insert(FALLBACKS, fallbacks.clone());
    headers.insert(LITELLM_RETRIES, retries);
    headers.insert(LITELLM_FALLBACKS, fallbacks);
}

const RESPONSE_COST: HeaderName = HeaderName::from_static("x-litellm-response-cost");

/// LiteLLM's `x-litellm-response-cost`: the answer's cost in USD as a plain decimal
/// (`0.000123`), when it is known now (a JSON answer of a priced deployment). A streamed
/// answer's cost is known only at its end, after the headers.
pub(super) fn cost_header(headers: &mut HeaderMap, charge: &Charged) {
    if let Some(cost) = charge.now().and_then(|c| c.cost)
        && let Ok(value) = HeaderValue::from_str(&cost.to_string())
    {
        headers.insert(RESPONSE_COST, value);
    }
}

/// A small count without an allocation (nearly always 0).
fn count(n: u32) -> HeaderValue {
    const SMALL: [&str; 4] = ["0", "1", "2", "3"];
    match SMALL.get(n as usize) {
        Some(text) => HeaderValue::from_static(text),
        None => HeaderValue::from(n),
    }
}
