//! `GET /v1/models` and `GET /v1/models/{id}`: what the caller may call, in OpenAI's shape,
//! or in Anthropic's when the request carries `anthropic-version` (the Anthropic SDK's
//! `client.models.list()` and `retrieve()`).
//!
//! Listed: every `model_name` that is not a pattern, every `model_group_alias` not marked
//! `hidden`, and for each wildcard `model_name` the models of the built-in price table it
//! matches (`anthropic/*` lists `anthropic/claude-…`), as LiteLLM lists the provider's
//! known models for a wildcard rather than the pattern itself. A virtual key sees only
//! what its allow-list admits. `{id}` may be any name the gateway serves, listed or not.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::errors::request_id;
use crate::config::pattern;
use crate::config::{BedrockApi, ProviderKind};
use crate::cost::{Family, table_rows};
use crate::keys::Identity;
use crate::router::{Router, unknown_model};
use crate::surface::{anthropic, openai};

/// A fixed creation time (LiteLLM's): names have none, and a changing value would make
/// identical configs look different to clients that cache the list.
const CREATED: u64 = 1_677_610_602;
const CREATED_AT: &str = "2023-02-28T18:56:42Z";

pub async fn list(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let runtime = state.runtime();
    let identity = req.extensions().get::<Identity>();
    let router = &runtime.router;
    let names: Vec<String> =
        callable(router).into_iter().filter(|n| may_call(router, identity, n)).collect();
    let body = if is_anthropic(req.headers()) {
        json!({
            "data": names.iter().map(|n| anthropic_model(n)).collect::<Vec<_>>(),
            "has_more": false,
            "first_id": names.first(),
            "last_id": names.last(),
        })
    } else {
        json!({
            "object": "list",
            "data": names.iter().map(|n| openai_model(n)).collect::<Vec<_>>(),
        })
    };
    ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let runtime = state.runtime();
    let identity = req.extensions().get::<Identity>();
    let router = &runtime.router;
    let anthropic = is_anthropic(req.headers());
    if !router.serves(&id) || !may_call(router, identity, &id) {
        // A name the key may not call is as unknown to it as one nobody serves.
        let known: Vec<String> =
            callable(router).into_iter().filter(|n| may_call(router, identity, n)).collect();
        let err = unknown_model(&id, &known);
        return if anthropic {
            anthropic::error_response(&err, request_id(req.headers()))
        } else {
            openai::error_response(&err)
        };
    }
    let body = if anthropic { anthropic_model(&id) } else { openai_model(&id) };
    ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn is_anthropic(headers: &HeaderMap) -> bool {
    headers.contains_key("anthropic-version")
}

fn openai_model(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": CREATED, "owned_by": "switchyard"})
}

fn anthropic_model(id: &str) -> Value {
    json!({"type": "model", "id": id, "display_name": id, "created_at": CREATED_AT})
}

/// Whether the caller may call `name`: always with the master key; with a virtual key when
/// its allow-list admits the name or, for a `model_group_alias`, the group it reaches.
pub(super) fn may_call(router: &Router, identity: Option<&Identity>, name: &str) -> bool {
    let Some(identity) = identity else { return true };
    identity.resolve_model(name).is_ok()
        || router.alias_target(name).is_some_and(|group| identity.resolve_model(group).is_ok())
}

/// Every name to list, each once, in config order; wildcard expansions after the rest.
fn callable(router: &Router) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for name in router.listed_names() {
        if seen.insert(name.to_owned()) {
            out.push(name.to_owned());
        }
    }
    for name in wildcard_models(router) {
        if seen.insert(name.clone()) {
            out.push(name);
        }
    }
    out
}

/// For each wildcard group, the price table's models of its provider that its deployments'
/// `model` pattern matches, named as a client would send them (the `model_name` pattern
/// filled in), when that name indeed reaches the group.
fn wildcard_models(router: &Router) -> Vec<String> {
    let mut out = Vec::new();
    for group in router.patterns() {
        let Some(d) = router.targets().map(|t| &t.deployment).find(|d| d.alias == group) else {
            continue;
        };
        let family = match d.provider {
            ProviderKind::Anthropic => Family::Anthropic,
            ProviderKind::Bedrock(BedrockApi::Auto | BedrockApi::Invoke | BedrockApi::Converse) => {
                Family::Bedrock
            }
            ProviderKind::OpenAi(crate::config::OpenAiFlavor::OpenAi) => Family::OpenAi,
            _ => continue,
        };
        let mut names: Vec<String> = table_rows()
            .filter(|row| row.family == family && !row.model.contains('/'))
            .filter_map(|row| pattern::captures(&d.model, row.model))
            .map(|parts| pattern::fill(group, &parts))
            .filter(|name| router.label_for(name) == Some(group))
            .collect();
        names.sort();
        out.extend(names);
    }
    out
}
