//! `POST /v1/chat/completions`: OpenAI surface in, router, OpenAI surface out.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::AppState;
use super::body::read_limited;
use super::request_id::DEPLOYMENT;
use crate::router::Route;
use crate::surface::openai;

pub async fn completions(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let runtime = state.runtime();
    let (parts, body) = req.into_parts();
    let bytes = match read_limited(&parts.headers, body, runtime.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(err) => return openai::error_response(&err),
    };
    let chat = match openai::decode_chat_request(&bytes) {
        Ok(chat) => chat,
        Err(err) => return openai::error_response(&err),
    };

    if chat.stream {
        match runtime.router.stream(&chat).await {
            Ok(served) => {
                let body =
                    Body::from_stream(openai::encode_stream(served.value, chat.stream_usage));
                let mut response = Response::new(body);
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                served_headers(headers, &served.route);
                response
            }
            Err(err) => openai::error_response(&err),
        }
    } else {
        match runtime.router.send(&chat).await {
            Ok(served) => {
                let mut response =
                    Response::new(Body::from(openai::encode_response(&served.value)));
                *response.status_mut() = StatusCode::OK;
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                served_headers(headers, &served.route);
                response
            }
            Err(err) => openai::error_response(&err),
        }
    }
}

/// Which deployment served and what was tried first, under our names and LiteLLM's
/// (existing scripts read those).
pub(super) fn served_headers(headers: &mut HeaderMap, served: &Route) {
    let deployment = &served.deployment;
    if let Ok(id) = HeaderValue::from_str(&deployment.id) {
        headers.insert(DEPLOYMENT, id.clone());
        headers.insert("x-litellm-model-id", id);
    }
    if let Ok(group) = HeaderValue::from_str(&deployment.alias) {
        headers.insert("x-switchyard-model-group", group.clone());
        headers.insert("x-litellm-model-group", group);
    }
    // `failed-id=class, …, served-id=ok`: every attempt in order.
    let mut attempts: Vec<String> = served
        .failed
        .iter()
        .map(|a| format!("{}={}", a.deployment.id, a.error.kind.as_str()))
        .collect();
    attempts.push(format!("{}=ok", deployment.id));
    if let Ok(value) = HeaderValue::from_str(&attempts.join(", ")) {
        headers.insert("x-switchyard-attempts", value);
    }
    headers.insert("x-switchyard-retries", HeaderValue::from(served.retries));
    headers.insert("x-switchyard-fallbacks", HeaderValue::from(served.fallbacks));
    headers.insert("x-litellm-attempted-retries", HeaderValue::from(served.retries));
    headers.insert("x-litellm-attempted-fallbacks", HeaderValue::from(served.fallbacks));
}
