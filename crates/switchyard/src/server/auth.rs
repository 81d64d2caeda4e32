//! Checks the gateway key on every authenticated route: the master key (GW-01), or a virtual
//! key from the in-memory key snapshot (KEY-01..03), whose [`Identity`] then rides in the
//! request's extensions for the handler (model allow-list, aliases, ledger attribution).
//!
//! Accepts `Authorization: Bearer <key>` (OpenAI SDKs, curl) and `x-api-key` (Anthropic
//! SDKs, Claude Code); a rejection comes in the caller's own error shape (Anthropic's on
//! `/v1/messages`). Never echoes or logs the presented key. The master key is compared
//! first, so its path is what it was before virtual keys: no hash, no lookup, no allocation.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::{AppState, Runtime, errors};
use crate::classify::{ApiError, Diagnosis, ErrorKind};
use crate::keys::{Identity, Refusal};
use crate::secret::Secret;

pub async fn require_key(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let runtime = state.runtime();
    // Only when a virtual key exists: otherwise auth is exactly the master key's. Looked up
    // only after the master key did not match, so the master key's path does not change.
    let keys = || state.keys().filter(|k| k.any());
    let Some(master) = &runtime.master_key else {
        // No master key: the gateway is open (loopback), as before; a known virtual key still
        // brings its rules and attribution, and a refused one is refused.
        if let Some(keys) = keys()
            && let Some(key) = presented_key(req.headers())
        {
            match keys.authenticate(key, chrono::Utc::now()) {
                Ok(identity) => {
                    req.extensions_mut().insert(identity);
                }
                Err(Refusal::Unknown) => {}
                Err(refusal) => {
                    return errors::error_response(
                        req.uri().path(),
                        req.headers(),
                        &refusal.to_error(),
                    );
                }
            }
        }
        return next.run(req).await;
    };
    let hint = hint_allowed(req.extensions());
    match verify(&state, &runtime, master, presented_key(req.headers()), hint) {
        Ok(Caller::Master) => next.run(req).await,
        Ok(Caller::Key(identity)) => {
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
        Err(err) => errors::error_response(req.uri().path(), req.headers(), &err),
    }
}

/// In front of the routes that read or change the whole gateway (spend over every key, the
/// config and its reload): a request [`require_key`] let through on a virtual key is refused
/// with 403 (KEY-05), as LiteLLM refuses a non-admin key on its admin routes.
pub async fn master_only(req: Request, next: Next) -> Response {
    if req.extensions().get::<Identity>().is_some() {
        let path = req.uri().path();
        return errors::error_response(path, req.headers(), &not_admin(path));
    }
    next.run(req).await
}

/// KEY-05: an admin route called with a virtual key.
pub(super) fn not_admin(path: &str) -> ApiError {
    ApiError::new(
        ErrorKind::PermissionDenied,
        format!(
            "Only proxy admin can be used to generate, delete, update info for new keys/users/teams. \
             Route={path}. A virtual key cannot call the admin routes."
        ),
    )
    .with_diagnosis(Diagnosis::new(
        "KEY-05",
        "The request was authenticated with a virtual key; this route reads or changes the \
         whole gateway, so it needs the master key.",
        "Send the master key (`general_settings.master_key`) as `Authorization: Bearer <key>`.",
    ))
}

/// Who a presented key belongs to, when the gateway has a master key.
pub(super) enum Caller {
    Master,
    Key(Identity),
}

/// The one decision behind every authenticated route and the dashboard's sign-in: the master
/// key (compared first, without hashing), a virtual key the snapshot accepts, or the refusal
/// (GW-01, KEY-01..03, KEY-10).
pub(super) fn verify(
    state: &AppState,
    runtime: &Runtime,
    master: &Secret,
    presented: Option<&str>,
    hint: bool,
) -> Result<Caller, ApiError> {
    let keys = state.keys().filter(|k| k.any());
    match presented {
        Some(key) if master.matches(key) => Ok(Caller::Master),
        Some(key) if let Some(keys) = keys => {
            let verdict: Result<Identity, Refusal> = keys.authenticate(key, chrono::Utc::now());
            match verdict {
                Ok(_) if runtime.config.general.fail_closed && keys.is_stale() => Err(stale_keys()),
                Ok(identity) => Ok(Caller::Key(identity)),
                Err(refusal) => Err(refusal.to_error()),
            }
        }
        presented => {
            let key_source = runtime
                .config
                .general
                .master_key
                .as_ref()
                .map(|k| k.source.to_string())
                .unwrap_or_default();
            refused_in_log(presented.is_some(), &key_source);
            Err(unauthorized(presented.is_some(), hint.then_some(key_source.as_str())))
        }
    }
}

/// The gateway key as the client presented it (`Authorization: Bearer` or `x-api-key`): what
/// [`crate::attribution::Attribution::of`] hashes.
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        let key = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ if value.eq_ignore_ascii_case("bearer") => "",
            _ => value,
        };
        if !key.is_empty() {
            return Some(key);
        }
    }
    headers
        .get(&crate::surface::anthropic::API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Whether a refusal may say where the master key is written: only to a client that reached
/// a loopback address (someone on this machine, who could read the config anyway). A client
/// on a network address learns nothing about the server's files.
pub(super) fn hint_allowed(extensions: &axum::http::Extensions) -> bool {
    super::listener::LocalAddr::is_loopback_of(extensions.get())
}

/// The operator always gets the hint, whoever the client was.
pub(super) fn refused_in_log(presented: bool, key_source: &str) {
    let why = if presented { "a wrong gateway key" } else { "no gateway key" };
    tracing::info!(
        "request refused with {why} (GW-01); the master key is general_settings.master_key, {key_source}"
    );
}

pub(super) fn unauthorized(presented: bool, key_source: Option<&str>) -> ApiError {
    let (message, cause) = if presented {
        ("Invalid gateway key.", "The key sent does not match the gateway's master key.".to_owned())
    } else {
        (
            "Missing gateway key.",
            "The request carried neither an `Authorization: Bearer` header nor an `x-api-key` \
             header."
                .to_owned(),
        )
    };
    ApiError::new(ErrorKind::Unauthorized, message).with_diagnosis(Diagnosis::new(
        "GW-01",
        cause,
        match key_source {
            Some(source) => format!(
                "Send the master key ({source}) as `Authorization: Bearer <key>` or \
                 `x-api-key: <key>`; for SDKs set OPENAI_API_KEY / ANTHROPIC_API_KEY to it."
            ),
            None => "Send the gateway key you were given as `Authorization: Bearer <key>` or \
                     `x-api-key: <key>`; for SDKs set OPENAI_API_KEY / ANTHROPIC_API_KEY to it. \
                     The gateway's operator can issue one."
                .to_owned(),
        },
    ))
}

/// KEY-10: `fail_closed` and the key store does not answer, so a virtual key is not trusted
/// on the last snapshot alone (it may have been revoked since).
fn stale_keys() -> ApiError {
    ApiError::new(
        ErrorKind::LimitsUnavailable,
        "Virtual keys cannot be checked: the key store does not answer.",
    )
    .with_diagnosis(Diagnosis::new(
        "KEY-10",
        "The key database does not answer and general_settings.fail_closed is true, so a \
         virtual key is refused rather than accepted from the last keys loaded (it may have \
         been blocked or deleted since). The master key still works.",
        "Bring the database back (`/health` shows the key store's state and error; the \
         gateway reloads within a second of it answering), or set \
         general_settings.fail_closed: false to serve on the last keys loaded meanwhile.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_bearer_and_x_api_key() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer sk-1"));
        assert_eq!(presented_key(&h), Some("sk-1"));
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("sk-2"));
        assert_eq!(presented_key(&h), Some("sk-2"));
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }

    #[test]
    fn an_empty_bearer_falls_back_to_x_api_key() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        h.insert("x-api-key", HeaderValue::from_static("sk-3"));
        assert_eq!(presented_key(&h), Some("sk-3"));
    }

    #[test]
    fn the_error_never_contains_the_presented_key() {
        let err = unauthorized(true, Some("general_settings.master_key written in c.yaml:3:3"));
        assert!(!err.full_message().contains("sk-wrong"));
        assert_eq!(err.kind, ErrorKind::Unauthorized);
    }

    #[test]
    fn without_the_hint_the_error_names_no_file() {
        let err = unauthorized(true, None);
        assert!(!format!("{err:?}").contains("c.yaml"));
        assert_eq!(err.kind, ErrorKind::Unauthorized);
    }
}
