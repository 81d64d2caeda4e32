//! `GET /v1/models`: the aliases, as OpenAI's model list.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;

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

pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    let runtime = state.runtime();
    // A fixed `created` (as LiteLLM does): aliases have no creation time, and a changing
    // value would make identical configs look different to clients that cache the list.
    let data = runtime
        .router
        .aliases()
        .iter()
        .map(|id| Model { id, object: "model", created: 1_677_610_602, owned_by: "switchyard" })
        .collect();
    let body = serde_json::to_vec(&ModelList { object: "list", data }).unwrap_or_default();
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}
