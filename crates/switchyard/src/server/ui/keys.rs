//! `/ui/api/keys` and `/ui/api/teams`: the Keys and teams page, over the same
//! [`crate::keys::admin`] operations as LiteLLM's `/key/*` and `/team/*` routes. A key is named
//! by its token (the sha256 hex `/key/list` shows), never by the key itself; the key is in the
//! answer to its creation only.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::session::Viewer;
use crate::classify::{ApiError, Diagnosis, ErrorKind};
use crate::keys::admin::{self, AdminError, Answer, ListQuery};
use crate::keys::{Identity, Keys};
use crate::server::AppState;
use crate::server::body::read_limited;
use crate::server::errors::error_response;

fn no_store() -> ApiError {
    ApiError::new(ErrorKind::Internal, "This gateway has no key store.").with_diagnosis(
        Diagnosis::new(
            "KEY-08",
            "The key store could not be opened at start (see the gateway's log).",
            "Make the state directory writable, or set `database_url`, and restart the gateway.",
        ),
    )
}

fn answer(parts: &Parts, answer: Answer) -> Response {
    match answer {
        Ok(value) => ([(CONTENT_TYPE, "application/json")], value.to_string()).into_response(),
        Err(err) => error_response(parts.uri.path(), &parts.headers, &err.to_api()),
    }
}

/// The key store, the request and its JSON object body (`{}` when empty).
async fn open(
    state: &AppState,
    req: Request,
) -> Result<(Keys, Parts, Map<String, Value>), Response> {
    let (parts, body) = req.into_parts();
    let fail = |err: &ApiError| error_response(parts.uri.path(), &parts.headers, err);
    let Some(keys) = state.keys().cloned() else { return Err(fail(&no_store())) };
    let bytes = match read_limited(&parts.headers, body, state.runtime().max_body_bytes).await {
        Ok(b) => b,
        Err(err) => return Err(fail(&err)),
    };
    let fields = if bytes.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => m,
            _ => {
                let err = AdminError::bad(
                    "The request body is not a JSON object.",
                    "Send the fields to set as a JSON object.",
                );
                return Err(fail(&err.to_api()));
            }
        }
    };
    Ok((keys, parts, fields))
}

/// `GET /ui/api/keys?page=`: the master key sees every key (100 a page), a virtual key its own.
pub async fn list(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let viewer = req.extensions().get::<Viewer>().cloned();
    let page = Query::<ListQuery>::try_from_uri(req.uri()).map(|q| q.0.page).unwrap_or_default();
    let (keys, parts, _) = match open(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let out = match viewer {
        Some(Viewer::Key(identity)) => own_key(&keys, &identity),
        _ => {
            let q = ListQuery {
                page,
                size: Some(100),
                return_full_object: Some("true".into()),
                ..ListQuery::default()
            };
            admin::list_keys(&keys, &q)
        }
    };
    answer(&parts, out)
}

fn own_key(keys: &Keys, identity: &Identity) -> Answer {
    let snap = keys.snapshot_full();
    let mut view = admin::key_view(&snap, &identity.key, None);
    if let Value::Object(m) = &mut view {
        m.insert("token".into(), json!(identity.key.token));
    }
    Ok(json!({"keys": [view], "total_count": 1, "current_page": 1, "total_pages": 1}))
}

/// `POST /ui/api/keys`: LiteLLM's `/key/generate` body; the answer's `key` is shown once.
pub async fn create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (keys, parts, fields) = match open(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    answer(&parts, admin::generate_key(&keys, Value::Object(fields)).await)
}

/// `PATCH /ui/api/keys/{token}`: the fields given replace the key's.
pub async fn update(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    let (keys, parts, mut fields) = match open(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    fields.insert("key".into(), json!(token));
    answer(&parts, admin::update_key(&keys, Value::Object(fields)).await)
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    let (keys, parts, _) = match open(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    answer(&parts, admin::delete_keys(&keys, json!({"keys": [token]})).await)
}

pub async fn block(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    set_blocked(&state, token, req, true).await
}

pub async fn unblock(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    set_blocked(&state, token, req, false).await
}

async fn set_blocked(state: &AppState, token: String, req: Request, blocked: bool) -> Response {
    let (keys, parts, _) = match open(state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    answer(&parts, admin::set_blocked(&keys, json!({"key": token}), blocked).await)
}

/// `GET /ui/api/teams`: every team for the master key; a virtual key sees its own team.
pub async fn teams(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let viewer = req.extensions().get::<Viewer>().cloned();
    let (keys, parts, _) = match open(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let out = match viewer {
        Some(Viewer::Key(identity)) => match &identity.key.team_id {
            Some(team) => admin::team_info(&keys, team).map(|t| json!([t["team_info"]])),
            None => Ok(json!([])),
        },
        _ => admin::list_teams(&keys),
    };
    answer(&parts, out)
}

pub async fn team_create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (keys, parts, fields) = match open(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    answer(&parts, admin::new_team(&keys, Value::Object(fields)).await)
}

pub async fn team_update(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (keys, parts, mut fields) = match open(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    fields.insert("team_id".into(), json!(id));
    answer(&parts, admin::update_team(&keys, Value::Object(fields)).await)
}

pub async fn team_delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (keys, parts, _) = match open(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    answer(&parts, admin::delete_teams(&keys, json!({"team_ids": [id]})).await)
}

pub async fn team_block(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    team_blocked(&state, id, req, true).await
}

pub async fn team_unblock(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    team_blocked(&state, id, req, false).await
}

async fn team_blocked(state: &AppState, id: String, req: Request, blocked: bool) -> Response {
    let (keys, parts, _) = match open(state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    answer(&parts, admin::update_team(&keys, json!({"team_id": id, "blocked": blocked})).await)
}
