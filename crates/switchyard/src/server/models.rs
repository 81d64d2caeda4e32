//! `GET /v1/models`: the aliases, as OpenAI's model list; for a virtual key, the ones it may
//! call.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use crate::keys::Identity;

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<Model<'a>>,
}

#[derive(Serialize)]
struct Model<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

pub async fn list(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let runtime = state.runtime();
    let identity = req.extensions().get::<Identity>();
    // A fixed `created` (as LiteLLM does): aliases have no creation time, and a changing
    // value would make identical configs look different to clients that cache the list.
    let data = runtime
        .router
        .aliases()
        .iter()
        .filter(|alias| identity.is_none_or(|i| i.resolve_model(alias).is_ok()))
        .map(|id| Model { id, object: "model", created: 1_677_610_602, owned_by: "switchyard" })
        .collect();
    let body = serde_json::to_vec(&ModelList { object: "list", data }).unwrap_or_default();
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}
