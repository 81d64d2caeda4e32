//! LiteLLM's management routes for virtual keys, teams, users and end users (`/key/*`,
//! `/team/*`, `/user/*`, `/customer/*`): thin wrappers over [`crate::keys::admin`]. Master key
//! only: a request authenticated by a virtual key gets 403 (KEY-05).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::AppState;
use super::body::read_limited;
use super::errors::error_response;
use crate::classify::{ApiError, Diagnosis, ErrorKind};
use crate::keys::admin::{self, AdminError, Answer, ListQuery};
use crate::keys::{Identity, Keys};
use crate::ledger::SpendFilter;
use crate::ledger::read::decimal_number;

/// Sets `view.spend` to the ledger's sum for `filter`: one source of truth, the same on
/// every replica (a record's own `spend` column is what LiteLLM last wrote there). When the
/// ledger cannot be read, the record's value stays and `spend_source` says so.
async fn ledger_spend(state: &AppState, view: &mut Value, filter: SpendFilter) {
    let Some(reader) = state.ledger().and_then(|l| l.reader()) else { return };
    let Value::Object(map) = view else { return };
    match reader.spent_since(&filter, chrono::DateTime::UNIX_EPOCH).await {
        Ok(spent) => {
            map.insert("spend".into(), decimal_number(spent));
            map.insert("spend_source".into(), Value::from("ledger"));
        }
        Err(err) => {
            tracing::warn!(%err, "spend of {filter:?} read from its record: the ledger cannot be read");
            map.insert("spend_source".into(), Value::from("record"));
        }
    }
}

/// The key store and the request's JSON body, once the caller is known to be the admin.
async fn admin_request(state: &AppState, req: Request) -> Result<(Keys, Parts, Value), Response> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let fail = |err: &ApiError| error_response(&path, &parts.headers, err);
    if parts.extensions.get::<Identity>().is_some() {
        return Err(fail(&super::auth::not_admin(&path)));
    }
    let Some(keys) = state.keys().cloned() else {
        return Err(fail(&no_store()));
    };
    let limit = state.runtime().max_body_bytes;
    let bytes = match read_limited(&parts.headers, body, limit).await {
        Ok(b) => b,
        Err(err) => return Err(fail(&err)),
    };
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                let err = AdminError::bad(
                    format!("The request body is not valid JSON: {e}."),
                    "Send a JSON object with `Content-Type: application/json`.",
                );
                return Err(fail(&err.to_api()));
            }
        }
    };
    Ok((keys, parts, body))
}

fn no_store() -> ApiError {
    ApiError::new(ErrorKind::Internal, "This gateway has no key store.").with_diagnosis(
        Diagnosis::new(
            "KEY-08",
            "The key store could not be opened at start (see the gateway's log).",
            "Make the state directory writable, or set `database_url`, and restart the gateway.",
        ),
    )
}

fn respond(parts: &Parts, answer: Answer) -> Response {
    match answer {
        Ok(value) => {
            let mut response = Response::new(Body::from(value.to_string()));
            *response.status_mut() = StatusCode::OK;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(err) => error_response(parts.uri.path(), &parts.headers, &err.to_api()),
    }
}

fn query<T: serde::de::DeserializeOwned + Default>(parts: &Parts) -> Result<T, AdminError> {
    Query::<T>::try_from_uri(&parts.uri).map(|q| q.0).map_err(|e| {
        AdminError::bad(format!("The query string cannot be read: {e}."), "e.g. ?page=1&size=10")
    })
}

fn param(parts: &Parts, names: &[&str]) -> Result<String, AdminError> {
    let q: HashMap<String, String> = query(parts)?;
    names.iter().find_map(|n| q.get(*n).filter(|v| !v.is_empty()).cloned()).ok_or_else(|| {
        AdminError::bad(
            format!("This route needs `?{}=`.", names[0]),
            format!("e.g. {}?{}=…", parts.uri.path(), names[0]),
        )
    })
}

macro_rules! post_route {
    ($name:ident, $op:expr) => {
        pub async fn $name(State(state): State<Arc<AppState>>, req: Request) -> Response {
            let (keys, parts, body) = match admin_request(&state, req).await {
                Ok(x) => x,
                Err(r) => return r,
            };
            let answer = $op(&keys, body).await;
            respond(&parts, answer)
        }
    };
}

post_route!(key_generate, admin::generate_key);
post_route!(key_update, admin::update_key);
post_route!(key_delete, admin::delete_keys);
post_route!(team_new, admin::new_team);
post_route!(team_update, admin::update_team);
post_route!(team_delete, admin::delete_teams);
post_route!(team_member_add, admin::team_member_add);
post_route!(user_new, admin::new_user);
post_route!(customer_new, admin::new_customer);
post_route!(customer_update, admin::update_customer);
post_route!(customer_delete, admin::delete_customers);

pub async fn key_block(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (keys, parts, body) = match admin_request(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    respond(&parts, admin::set_blocked(&keys, body, true).await)
}

pub async fn key_unblock(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (keys, parts, body) = match admin_request(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    respond(&parts, admin::set_blocked(&keys, body, false).await)
}

pub async fn key_regenerate(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    req: Request,
) -> Response {
    let (keys, parts, body) = match admin_request(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    respond(&parts, admin::regenerate_key(&keys, &key, body).await)
}

/// `POST /key/regenerate` with `{"key": …}` (the path form is `/key/{key}/regenerate`).
pub async fn key_regenerate_body(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (keys, parts, body) = match admin_request(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let key = body.get("key").and_then(Value::as_str).map(str::to_owned);
    let answer = match key {
        Some(key) => admin::regenerate_key(&keys, &key, body).await,
        None => Err(AdminError::bad(
            "/key/regenerate needs `key`.",
            "Send {\"key\": \"sk-…\"}, or call /key/{key}/regenerate.",
        )),
    };
    respond(&parts, answer)
}

pub async fn key_info(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (keys, parts, _) = match admin_request(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let key = param(&parts, &["key"]);
    let mut answer = key.clone().and_then(|k| admin::key_info(&keys, &k));
    if let (Ok(out), Ok(key)) = (&mut answer, key) {
        let filter = SpendFilter::ApiKey(admin::token_for(&key));
        ledger_spend(&state, &mut out["info"], filter).await;
    }
    respond(&parts, answer)
}

pub async fn key_list(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (keys, parts, _) = match admin_request(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let answer = query::<ListQuery>(&parts).and_then(|q| admin::list_keys(&keys, &q));
    respond(&parts, answer)
}

pub async fn team_info(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (keys, parts, _) = match admin_request(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let team = param(&parts, &["team_id"]);
    let mut answer = team.clone().and_then(|t| admin::team_info(&keys, &t));
    if let (Ok(out), Ok(team)) = (&mut answer, team) {
        ledger_spend(&state, &mut out["team_info"], SpendFilter::Team(team)).await;
    }
    respond(&parts, answer)
}

pub async fn team_list(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (keys, parts, _) = match admin_request(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    respond(&parts, admin::list_teams(&keys))
}

pub async fn user_info(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (keys, parts, _) = match admin_request(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let user = param(&parts, &["user_id"]);
    let mut answer = user.clone().and_then(|u| admin::user_info(&keys, &u));
    if let (Ok(out), Ok(user)) = (&mut answer, user) {
        ledger_spend(&state, &mut out["user_info"], SpendFilter::User(user)).await;
    }
    respond(&parts, answer)
}

pub async fn customer_info(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (keys, parts, _) = match admin_request(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let user = param(&parts, &["end_user_id", "user_id"]);
    let mut answer = user.clone().and_then(|u| admin::customer_info(&keys, &u));
    if let (Ok(out), Ok(user)) = (&mut answer, user) {
        ledger_spend(&state, out, SpendFilter::EndUser(user)).await;
    }
    respond(&parts, answer)
}
