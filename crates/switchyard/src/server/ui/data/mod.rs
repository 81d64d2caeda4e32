//! The dashboard's ledger-backed API: `GET /ui/api/overview`, `/ui/api/spend` (JSON or CSV),
//! `/ui/api/requests` and `/ui/api/requests/{request_id}`. Read-only, through the ledger's own
//! read pool ([`crate::ledger::read::Reader`]), with the same query code as `switchyard spend`
//! and LiteLLM's spend routes.
//!
//! **Invariant:** every answer is scoped: the master key (or a gateway without one) sees every
//! row; a virtual key ([`Identity`] in the request's extensions, however the caller signed
//! in) sees only the rows of its own key, and asking for another key's is refused (UI-07).
//! No answer holds a key or a full key hash: keys appear as their alias and a short hash.

mod overview;
mod requests;
mod spend;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use super::super::AppState;
use crate::classify::{ApiError, Diagnosis, ErrorKind};
use crate::keys::Identity;
use crate::surface::openai;

/// The data routes, relative to `/ui/api`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/overview", get(overview::overview))
        .route("/spend", get(spend::spend))
        .route("/requests", get(requests::list))
        .route("/requests/{request_id}", get(requests::detail))
}

type Params = HashMap<String, String>;

/// Whose rows a caller may read.
pub(crate) enum Scope {
    /// The master key, or a gateway without one: every row.
    All,
    /// A virtual key: the rows recorded under its hash only.
    Key(Box<Identity>),
}

impl Scope {
    fn of(parts: &Parts) -> Self {
        match parts.extensions.get::<Identity>() {
            Some(identity) => Self::Key(Box::new(identity.clone())),
            None => Self::All,
        }
    }

    /// The key hash every query of this caller is limited to.
    fn token(&self) -> Option<&str> {
        match self {
            Self::All => None,
            Self::Key(identity) => Some(&identity.key.token),
        }
    }

    /// The hash a `key` parameter names (a raw `sk-` key, a hash, or a key alias), checked
    /// against the caller's scope: a virtual key naming another key is UI-07.
    fn key_filter(
        &self,
        state: &AppState,
        named: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        let Some(named) = named else { return Ok(self.token().map(str::to_owned)) };
        let hash = resolve_key(state, named);
        match self.token() {
            Some(own) if own != hash => Err(not_yours()),
            _ => Ok(Some(hash)),
        }
    }
}

/// A key as the ledger stores it: a raw key hashed, a known alias to its key's hash, anything
/// else as given (a hash).
fn resolve_key(state: &AppState, named: &str) -> String {
    if named.starts_with("sk-") {
        return super::super::spend::stored_key(named);
    }
    if let Some(keys) = state.keys() {
        let snap = keys.snapshot();
        if let Some(key) = snap.keys.values().find(|k| k.key_alias.as_deref() == Some(named)) {
            return key.token.clone();
        }
    }
    named.to_owned()
}

fn not_yours() -> ApiError {
    ApiError::new(
        ErrorKind::PermissionDenied,
        "This key can only read its own requests and spend, not another key's.",
    )
    .with_param("key")
    .with_diagnosis(Diagnosis::new(
        "UI-07",
        "The dashboard was signed in with a virtual key, which sees the ledger rows of that \
         key only; the `key` parameter named another key.",
        "Leave `key` out (a virtual key's answers are already its own), or sign in with the \
         master key to see every key.",
    ))
}

fn bad_param(param: &str, message: String) -> ApiError {
    ApiError::invalid_request(message, Some(param)).with_diagnosis(Diagnosis::new(
        "LED-03",
        format!("The `{param}` parameter of a dashboard data route cannot be used."),
        "Times are RFC 3339 in UTC (`2026-12-01T00:00:00Z`), a day (`2026-12-01`, a whole day \
         as `to`) or a minute (`2026-12-01T10:30`); see the README's \"Dashboard data API\".",
    ))
}

fn text<'a>(q: &'a Params, name: &str) -> Option<&'a str> {
    q.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// A point in time from a parameter; a bare day as the end of a range is included whole.
fn time(q: &Params, name: &str, end: bool) -> Result<Option<NaiveDateTime>, ApiError> {
    let Some(value) = text(q, name) else { return Ok(None) };
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(t.with_timezone(&Utc).naive_utc()));
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let d = if end { d.succ_opt().unwrap_or(d) } else { d };
        return Ok(Some(d.and_time(chrono::NaiveTime::MIN)));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(value.trim_end_matches('Z'), format) {
            return Ok(Some(t));
        }
    }
    Err(bad_param(
        name,
        format!("{name} must be an RFC 3339 time, a day or a minute (UTC), not `{value}`."),
    ))
}

/// `[from, to)`: the parameters, else `default` back from now.
fn window(
    q: &Params,
    default: chrono::Duration,
) -> Result<(NaiveDateTime, NaiveDateTime), ApiError> {
    let to = time(q, "to", true)?.unwrap_or_else(|| Utc::now().naive_utc());
    let from = time(q, "from", false)?.unwrap_or(to - default);
    if from >= to {
        return Err(bad_param(
            "from",
            format!("from ({}) must be before to ({}).", rfc3339(&from), rfc3339(&to)),
        ));
    }
    Ok((from, to))
}

/// `2026-12-01T10:30:00Z`, or with milliseconds when it has them.
fn rfc3339(t: &NaiveDateTime) -> String {
    let t = DateTime::<Utc>::from_naive_utc_and_offset(*t, Utc);
    if t.timestamp_subsec_millis() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

fn json(body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Spend and requests are per caller and change with every request.
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|err| openai::error_response(&err))
}
