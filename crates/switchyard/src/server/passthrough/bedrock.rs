//! `/bedrock/{path}`: the Bedrock Runtime API, for clients that speak it (Claude Code with
//! `CLAUDE_CODE_USE_BEDROCK=1`, the `AnthropicBedrock` SDKs).
//!
//! `model/{modelId}/invoke` and `model/{modelId}/invoke-with-response-stream` go through the
//! router like `/v1/messages`: the model id names a route (`Router::bedrock_route`: the id
//! itself as an alias, `model_name` or `model_info.id`; else the group of the first Bedrock
//! deployment with that model id, else with the same foundation model), the body is decoded
//! by `surface::bedrock`, the group's deployments are tried with failover, retries and
//! fallbacks, and the answer is encoded back as InvokeModel JSON or event-stream `chunk`s,
//! errors in Bedrock's shape with the gateway's diagnosis.
//!
//! Every other path (Converse, CountTokens, …) is relayed as bytes to the runtime endpoint of
//! a Bedrock deployment — the first of the model id's route for `model/{modelId}/…`, else the
//! first in config order — signed with that deployment's credentials for its region. It is
//! authenticated and admitted against the limits; its usage is not read.
//!
//! What Claude Code (2.1.197 … 2.1.332) sends in Bedrock mode to
//! `ANTHROPIC_BEDROCK_BASE_URL=http://gateway/bedrock`: `GET /bedrock/inference-profiles?
//! type=SYSTEM_DEFINED` (the control plane's ListInferenceProfiles, which the runtime does not
//! serve; Claude Code goes on without it), then `POST /bedrock/model/{id}/invoke-with-response-
//! stream` (and `…/invoke` with `max_tokens: 1` to probe a model) with the id unencoded
//! (`us.anthropic.claude-sonnet-4-5-20250929-v1:0`, or ANTHROPIC_MODEL's value as written),
//! `anthropic-version` and `anthropic-beta` headers, and a body with `anthropic_version:
//! bedrock-2023-05-31`. With CLAUDE_CODE_SKIP_BEDROCK_AUTH=1 it sends no credential at all;
//! with AWS_BEARER_TOKEN_BEDROCK set it sends `Authorization: Bearer <token>` — the gateway
//! key travels there (or in `x-api-key` through ANTHROPIC_CUSTOM_HEADERS).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method};
use axum::response::Response;

use super::headers::upstream_request;
use super::relay::relay;
use crate::canonical::ChatRequest;
use crate::classify::ApiError;
use crate::config::ProviderKind;
use crate::keys::Identity;
use crate::ledger::CALL_PASS_THROUGH;
use crate::provider::Forward;
use crate::router::Target;
use crate::server::AppState;
use crate::server::body::read_limited;
use crate::server::chat::{apply_key_rules, cost_header, served_headers};
use crate::server::errors::request_id;
use crate::server::ledger_hook::{self, Started};
use crate::surface::bedrock as surface;
use crate::telemetry;

/// The operation a `/bedrock/` path names.
#[derive(Debug, PartialEq, Eq)]
enum Operation {
    /// InvokeModel (`stream: false`) or InvokeModelWithResponseStream.
    Invoke { model: String, stream: bool },
    /// Anything else: relayed; `model` when the path is below `model/{modelId}/`.
    Other { model: Option<String> },
}

fn operation(method: &Method, path: &str) -> Operation {
    let path = path.split('?').next().unwrap_or_default();
    let Some(rest) = path.strip_prefix("model/") else { return Operation::Other { model: None } };
    let Some((id, op)) = rest.rsplit_once('/') else { return Operation::Other { model: None } };
    let model = percent_encoding::percent_decode_str(id).decode_utf8_lossy().into_owned();
    match (method, op) {
        (&Method::POST, "invoke") => Operation::Invoke { model, stream: false },
        (&Method::POST, "invoke-with-response-stream") => Operation::Invoke { model, stream: true },
        _ => Operation::Other { model: Some(model) },
    }
}

pub async fn bedrock(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let path = super::below(req.uri(), "/bedrock/");
    match operation(req.method(), &path) {
        Operation::Invoke { model, stream } => invoke(state, req, &model, stream).await,
        Operation::Other { model } => other(state, req, path, model.as_deref()).await,
    }
}

/// InvokeModel and InvokeModelWithResponseStream through the router.
async fn invoke(state: Arc<AppState>, req: Request, model_id: &str, stream: bool) -> Response {
    let runtime = state.runtime();
    let (parts, body) = req.into_parts();
    let request_id = request_id(&parts.headers);
    let fail = |err: &ApiError| surface::error_response(err, request_id);
    let bytes = match read_limited(&parts.headers, body, runtime.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(err) => return fail(&err),
    };
    // Unrouted, the id stays as sent: the router's unknown-model error names it.
    let name = runtime.router.bedrock_route(model_id).unwrap_or_else(|| model_id.to_owned());
    let mut chat = match surface::decode_invoke(&bytes, &parts.headers, &name, stream) {
        Ok(chat) => chat,
        Err(err) => return fail(&err),
    };
    crate::attribution::fold_header_tags(&parts.headers, &mut chat);
    let identity = parts.extensions.get::<Identity>();
    let caller = match apply_key_rules(&state, identity, &mut chat) {
        Ok(caller) => caller,
        Err(err) => return fail(&err),
    };
    let started = Started::new(
        &parts.headers,
        CALL_PASS_THROUGH,
        &chat,
        identity,
        runtime.config.general.metrics,
    );
    let span = telemetry::request(runtime.tracer.as_ref(), &parts.headers, &chat, request_id);
    if stream {
        match telemetry::within(span.as_ref(), runtime.router.stream_as(&chat, &caller)).await {
            Ok(served) => {
                let charge = telemetry::streamed(span, &served.route, served.charge);
                ledger_hook::streamed(&state, started, &served.route, charge);
                let mut response =
                    Response::new(Body::from_stream(surface::encode_stream(served.value)));
                let headers = response.headers_mut();
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/vnd.amazon.eventstream"),
                );
                served_headers(headers, &served.route);
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
                let mut response = surface::encode_response(&served.value);
                served_headers(response.headers_mut(), &served.route);
                cost_header(response.headers_mut(), &served.charge);
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

/// A path the gateway does not model, relayed to a Bedrock deployment's endpoint.
async fn other(
    state: Arc<AppState>,
    req: Request,
    path: String,
    model_id: Option<&str>,
) -> Response {
    let runtime = state.runtime();
    let (parts, body) = req.into_parts();
    let request_id = request_id(&parts.headers);
    let fail = |err: &ApiError| surface::error_response(err, request_id);
    let bytes = match read_limited(&parts.headers, body, runtime.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(err) => return fail(&err),
    };
    let router = &runtime.router;
    let group = model_id.and_then(|id| router.bedrock_route(id));
    let Some(target) = choose(router, group.as_deref()) else {
        return fail(&no_deployment());
    };
    // Below `model/{modelId}/`, the upstream gets the deployment's own model id.
    let path = match model_id {
        Some(id) if !target.deployment.is_pattern() => {
            let encoded = percent_encoding::utf8_percent_encode(id, SEGMENT).to_string();
            let segment =
                crate::provider::BedrockModelId::parse(&target.deployment.model).path_segment();
            path.replacen(&format!("model/{id}/"), &format!("model/{segment}/"), 1).replacen(
                &format!("model/{encoded}/"),
                &format!("model/{segment}/"),
                1,
            )
        }
        _ => path,
    };
    let mut chat = ChatRequest { model: target.deployment.alias.clone(), ..ChatRequest::default() };
    let identity = parts.extensions.get::<Identity>();
    let caller = match apply_key_rules(&state, identity, &mut chat) {
        Ok(caller) => caller,
        Err(err) => return fail(&err),
    };
    let reservation = match router.admit_at(&chat, &caller, target).await {
        Ok(reservation) => reservation,
        Err(err) => return fail(&err),
    };
    let forward = Forward {
        method: parts.method,
        path,
        headers: upstream_request(&parts.headers),
        body: bytes,
    };
    match target.provider.forward(forward).await {
        Ok(upstream) => {
            // Nothing read is charged: the reservation is released, the request was counted.
            drop(reservation);
            relay(upstream, None, crate::limits::Reservation::none()).0
        }
        Err(error) => {
            let mut err = ApiError::new(
                error.kind,
                format!(
                    "The pass-through request to {} failed: {}",
                    target.deployment.alias, error.message
                ),
            );
            err.diagnosis = error.diagnosis;
            fail(&err)
        }
    }
}

/// The Bedrock deployment `name` pins (its `model_info.id`), else the first of the group
/// `name` routes to, else the first of the config.
fn choose<'a>(router: &'a crate::router::Router, name: Option<&str>) -> Option<&'a Target> {
    let bedrock = |t: &&Target| {
        matches!(t.deployment.provider, ProviderKind::Bedrock(_)) && !t.deployment.is_pattern()
    };
    let group = name.map(|n| router.alias_target(n).unwrap_or(n));
    group
        .and_then(|g| router.targets().filter(bedrock).find(|t| t.deployment.id == g))
        .or_else(|| {
            group.and_then(|g| router.targets().filter(bedrock).find(|t| t.deployment.alias == g))
        })
        .or_else(|| router.targets().find(bedrock))
}

/// What a model id's path segment encodes, as the SDKs encode it (`:` and `/` included).
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// GW-13: `/bedrock/` with no Bedrock deployment to relay to.
fn no_deployment() -> ApiError {
    ApiError::new(
        crate::classify::ErrorKind::NotFound,
        "No Bedrock deployment to pass this request through to.",
    )
    .with_diagnosis(crate::classify::Diagnosis::new(
        "GW-13",
        "Paths under /bedrock/ other than InvokeModel are relayed to the runtime endpoint of a \
         deployment whose model is `bedrock/…`, signed with its credentials, and the config has \
         none.",
        "Add a model_list entry with `model: bedrock/<model id>` and its AWS settings; \
         InvokeModel (`model/{id}/invoke`) works with any provider.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_paths_name_their_model_and_others_are_relayed() {
        assert_eq!(
            operation(
                &Method::POST,
                "model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream"
            ),
            Operation::Invoke {
                model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0".into(),
                stream: true
            }
        );
        assert_eq!(
            operation(&Method::POST, "model/us.anthropic.claude-x-v1%3A0/invoke"),
            Operation::Invoke { model: "us.anthropic.claude-x-v1:0".into(), stream: false }
        );
        assert_eq!(
            operation(&Method::POST, "model/balanced/converse"),
            Operation::Other { model: Some("balanced".into()) }
        );
        assert_eq!(
            operation(&Method::GET, "inference-profiles?type=SYSTEM_DEFINED"),
            Operation::Other { model: None }
        );
        assert_eq!(
            operation(&Method::GET, "model/balanced/invoke"),
            Operation::Other { model: Some("balanced".into()) }
        );
    }
}
