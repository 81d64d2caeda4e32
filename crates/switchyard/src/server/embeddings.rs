//! `POST /v1/embeddings` (and `/embeddings`, `/engines/{model}/embeddings`,
//! `/openai/deployments/{model}/embeddings` as LiteLLM mounts them): OpenAI's embeddings
//! surface in, the router (key rules, limits, failover, fallbacks), the vectors out. The
//! request's ledger row and metrics are recorded as for chat, with LiteLLM's `aembedding`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use super::AppState;
use super::body::read_limited;
use super::chat::{apply_key_rules, cost_header, served_headers};
use super::ledger_hook::{self, Started};
use crate::keys::Identity;
use crate::ledger::CALL_EMBEDDING;
use crate::surface::openai;
use crate::telemetry;

pub async fn create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    embed(state, None, req).await
}

/// LiteLLM's Azure-style routes name the model in the path; it wins over the body's.
pub async fn create_for(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    req: Request,
) -> Response {
    embed(state, Some(model), req).await
}

async fn embed(state: Arc<AppState>, path_model: Option<String>, req: Request) -> Response {
    let runtime = state.runtime();
    let (parts, body) = req.into_parts();
    let bytes = match read_limited(&parts.headers, body, runtime.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(err) => return openai::error_response(&err),
    };
    let (mut request, format) = match openai::decode_embedding_request(&bytes) {
        Ok(decoded) => decoded,
        Err(err) => return openai::error_response(&err),
    };
    if let Some(model) = path_model {
        request.routing.model = model;
    }
    crate::attribution::fold_header_tags(&parts.headers, &mut request.routing);
    let identity = parts.extensions.get::<Identity>();
    let caller = match apply_key_rules(&state, identity, &mut request.routing) {
        Ok(caller) => caller,
        Err(err) => return openai::error_response(&err),
    };
    let started = Started::new(
        &parts.headers,
        CALL_EMBEDDING,
        &request.routing,
        identity,
        runtime.config.general.metrics,
    );
    let span = telemetry::embeddings_request(
        runtime.tracer.as_ref(),
        &parts.headers,
        &request.routing,
        super::errors::request_id(&parts.headers),
    );
    match telemetry::within(span.as_ref(), runtime.router.embed_as(&request, &caller)).await {
        Ok(served) => {
            telemetry::embedded(span, &served.route, &served.charge);
            let deployment = &served.route.deployment;
            let model = served.value.model.clone().unwrap_or_else(|| deployment.model.clone());
            let mut response =
                Response::new(Body::from(openai::encode_embeddings(served.value, &model, format)));
            *response.status_mut() = StatusCode::OK;
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            served_headers(headers, &served.route);
            cost_header(headers, &served.charge);
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
