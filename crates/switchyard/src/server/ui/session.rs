//! Dashboard sign-in: a signed cookie instead of server-side sessions, so any replica sharing
//! the config accepts it, and the CSRF check on every change.
//!
//! The cookie is `v1.a.<expiry>.<mac>` (the master key) or `v1.k.<token>.<expiry>.<mac>` (a
//! virtual key, by its sha256 token — never the key itself), with an HMAC-SHA256 under a
//! secret derived from the master key: changing the master key ends every session. A virtual
//! key's session is checked against the key snapshot on each request, so a blocked, expired or
//! deleted key loses it at once. The CSRF token is an HMAC of the cookie, so it needs no
//! storage either.
//!
//! Without a master key the gateway's API is open (loopback) and so is the dashboard: it acts
//! as the administrator without signing in, like the API does; a virtual key can still sign in
//! to see only its own data. The signing secret is then random per process.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::refusal;
use crate::classify::ApiError;
use crate::keys::{Identity, Refusal};
use crate::server::auth::{self, Caller};
use crate::server::body::read_limited;
use crate::server::errors::error_response;
use crate::server::{AppState, Runtime};

pub const COOKIE_NAME: &str = "switchyard_ui";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts; a bounded lifetime limits what a stolen cookie is worth.
pub const LIFETIME_SECS: i64 = 12 * 3600;

type Mac256 = Hmac<Sha256>;

/// Who is looking at the dashboard, for the handlers behind [`require`]. A key's [`Identity`]
/// rides in the extensions too, exactly as the API's auth inserts it.
#[derive(Debug, Clone)]
pub enum Viewer {
    Admin,
    Key(Identity),
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        matches!(self, Self::Admin)
    }
}

/// A verified cookie.
struct Session {
    /// The virtual key's token, `None` for the master key.
    token: Option<String>,
    expires: i64,
    /// The signed part, from which the CSRF token is derived.
    payload: String,
}

fn secret(runtime: &Runtime) -> [u8; 32] {
    match &runtime.master_key {
        Some(master) => derive(master.expose().as_bytes()),
        None => {
            static OPEN: OnceLock<[u8; 32]> = OnceLock::new();
            *OPEN.get_or_init(|| {
                let mut seed = [0u8; 32];
                if getrandom::fill(&mut seed).is_err() {
                    seed.iter_mut().for_each(|b| *b = fastrand::u8(..));
                }
                seed
            })
        }
    }
}

fn derive(key: &[u8]) -> [u8; 32] {
    let mut mac = mac_with(key);
    mac.update(b"switchyard dashboard session v1");
    mac.finalize().into_bytes().into()
}

fn mac_with(key: &[u8]) -> Mac256 {
    Mac256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

fn sign(secret: &[u8; 32], payload: &str) -> String {
    let mut mac = mac_with(secret);
    mac.update(payload.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn csrf_token(secret: &[u8; 32], payload: &str) -> String {
    sign(secret, &format!("csrf.{payload}"))
}

fn issue(secret: &[u8; 32], token: Option<&str>, now: i64) -> (String, String) {
    let expires = now + LIFETIME_SECS;
    let payload = match token {
        Some(t) => format!("v1.k.{t}.{expires}"),
        None => format!("v1.a.{expires}"),
    };
    let cookie = format!("{payload}.{}", sign(secret, &payload));
    (cookie, csrf_token(secret, &payload))
}

fn verify_cookie(secret: &[u8; 32], value: &str, now: i64) -> Result<Session, &'static str> {
    let (payload, mac) = value.rsplit_once('.').ok_or("the session cookie is malformed")?;
    let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| "the session cookie is malformed")?;
    let mut check = mac_with(secret);
    check.update(payload.as_bytes());
    check
        .verify_slice(&mac)
        .map_err(|_| "the session was not signed by this gateway's current master key")?;
    let parts: Vec<&str> = payload.split('.').collect();
    let (token, expires) = match parts.as_slice() {
        ["v1", "a", exp] => (None, *exp),
        ["v1", "k", token, exp] => (Some((*token).to_owned()), *exp),
        _ => return Err("the session cookie is malformed"),
    };
    let expires: i64 = expires.parse().map_err(|_| "the session cookie is malformed")?;
    if expires <= now {
        return Err("the session expired");
    }
    Ok(Session { token, expires, payload: payload.to_owned() })
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
}

/// Whether the client reached us over HTTPS (directly or through a proxy that says so), so
/// the cookie is marked `Secure` only where a browser would send it back.
fn over_https(req_headers: &HeaderMap, scheme: Option<&str>) -> bool {
    let forwarded_proto =
        req_headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| {
            v.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        });
    let forwarded = req_headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    forwarded_proto || forwarded || scheme == Some("https")
}

fn set_cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE_NAME}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A cross-site request is refused even before the token is looked at: the `Origin` (sent on
/// every POST, PATCH and DELETE by browsers) must name the host the request came to.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return Err(refusal::csrf("the request came from another web site"));
    }
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(HOST))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    let origin_host = origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(refusal::csrf("the request's Origin is not this dashboard")),
    }
}

fn is_change(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Who a verified session is now: the master key, or the key behind the token if it still
/// authenticates.
fn viewer_of(state: &AppState, runtime: &Runtime, session: &Session) -> Result<Viewer, ApiError> {
    let Some(token) = &session.token else { return Ok(Viewer::Admin) };
    let Some(keys) = state.keys() else {
        return Err(refusal::not_signed_in("the key store is not available"));
    };
    match keys.identify_token(token, chrono::Utc::now()) {
        Ok(_) if runtime.config.general.fail_closed && keys.is_stale() => Err(
            refusal::not_signed_in("the key store does not answer, so the key cannot be checked"),
        ),
        Ok(identity) => Ok(Viewer::Key(identity)),
        Err(Refusal::Unknown) => Err(refusal::not_signed_in("the key was deleted or regenerated")),
        Err(other) => Err(other.to_error()),
    }
}

/// The layer in front of every `/ui/api` route but the session's own: a key sent as a header
/// (scripts, curl) is checked exactly as the API checks it; otherwise the session cookie.
/// Changes need the CSRF token of a cookie session, and the master key.
pub async fn require(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let runtime = state.runtime();
    let path = req.uri().path().to_owned();
    let fail = |req: &Request, err: &ApiError| error_response(&path, req.headers(), err);
    let viewer = if let Some(key) = auth::presented_key(req.headers()) {
        match header_viewer(&state, &runtime, key, auth::hint_allowed(req.extensions())) {
            Ok(v) => v,
            Err(err) => return fail(&req, &err),
        }
    } else {
        let secret = secret(&runtime);
        let session = cookie_value(req.headers()).map(|c| verify_cookie(&secret, c, now()));
        let (viewer, payload) = match session {
            Some(Ok(session)) => match viewer_of(&state, &runtime, &session) {
                Ok(v) => (v, session.payload),
                Err(err) => return fail(&req, &err),
            },
            Some(Err(why)) if runtime.master_key.is_some() => {
                return fail(&req, &refusal::not_signed_in(why));
            }
            None if runtime.master_key.is_some() => {
                return fail(&req, &refusal::not_signed_in("there is no session"));
            }
            // Open gateway: the administrator, with a CSRF token of its own.
            _ => (Viewer::Admin, OPEN_PAYLOAD.to_owned()),
        };
        if is_change(req.method()) {
            if let Err(err) = same_origin(req.headers()) {
                return fail(&req, &err);
            }
            let expected = csrf_token(&secret, &payload);
            let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            let matches = sent.is_some_and(|s| {
                subtle::ConstantTimeEq::ct_eq(s.as_bytes(), expected.as_bytes()).into()
            });
            if !matches {
                let why = if sent.is_some() {
                    "the x-csrf-token header does not match this session"
                } else {
                    "the x-csrf-token header is missing"
                };
                return fail(&req, &refusal::csrf(why));
            }
        }
        viewer
    };
    if is_change(req.method()) && !viewer.is_admin() {
        return fail(&req, &refusal::read_only());
    }
    if let Viewer::Key(identity) = &viewer {
        req.extensions_mut().insert(identity.clone());
    }
    req.extensions_mut().insert(viewer);
    next.run(req).await
}

/// What the CSRF token of an open gateway's cookie-less dashboard is derived from.
const OPEN_PAYLOAD: &str = "v1.open";

fn header_viewer(
    state: &AppState,
    runtime: &Runtime,
    key: &str,
    hint: bool,
) -> Result<Viewer, ApiError> {
    match &runtime.master_key {
        Some(master) => match auth::verify(state, runtime, master, Some(key), hint)? {
            Caller::Master => Ok(Viewer::Admin),
            Caller::Key(identity) => Ok(Viewer::Key(identity)),
        },
        None => match state.keys().map(|k| k.authenticate(key, chrono::Utc::now())) {
            Some(Ok(identity)) => Ok(Viewer::Key(identity)),
            Some(Err(Refusal::Unknown)) | None => Ok(Viewer::Admin),
            Some(Err(refusal)) => Err(refusal.to_error()),
        },
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn describe(viewer: &Viewer, csrf: &str, expires: Option<i64>, open: bool) -> Value {
    let expires_at = expires
        .and_then(|e| chrono::DateTime::from_timestamp(e, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    match viewer {
        Viewer::Admin => json!({
            "signed_in": true, "role": "admin", "key_alias": null, "key_name": null,
            "team_id": null, "user_id": null, "csrf_token": csrf, "expires_at": expires_at,
            "open": open,
        }),
        Viewer::Key(id) => json!({
            "signed_in": true, "role": "key", "key_alias": id.key.key_alias,
            "key_name": id.key.key_name, "team_id": id.key.team_id, "user_id": id.key.user_id,
            "csrf_token": csrf, "expires_at": expires_at, "open": open,
        }),
    }
}

/// `GET /ui/api/session`: who is signed in (200 with `signed_in: false` when nobody is, so the
/// page can show the sign-in form without an error in the console).
pub async fn get(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let runtime = state.runtime();
    let secret = secret(&runtime);
    let open = runtime.master_key.is_none();
    if let Some(Ok(session)) = cookie_value(req.headers()).map(|c| verify_cookie(&secret, c, now()))
        && let Ok(viewer) = viewer_of(&state, &runtime, &session)
    {
        let csrf = csrf_token(&secret, &session.payload);
        return json_response(
            StatusCode::OK,
            &describe(&viewer, &csrf, Some(session.expires), open),
        );
    }
    if open {
        let csrf = csrf_token(&secret, OPEN_PAYLOAD);
        return json_response(StatusCode::OK, &describe(&Viewer::Admin, &csrf, None, open));
    }
    json_response(StatusCode::OK, &json!({"signed_in": false, "open": false}))
}

/// `POST /ui/api/session` `{"key": …}`: signs in, setting the cookie.
pub async fn create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let runtime = state.runtime();
    let hint = auth::hint_allowed(req.extensions());
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let fail = |err: &ApiError| error_response(&path, &parts.headers, err);
    // A cross-site sign-in would put the victim in the attacker's session.
    if let Err(err) = same_origin(&parts.headers) {
        return fail(&err);
    }
    let bytes = match read_limited(&parts.headers, body, runtime.max_body_bytes).await {
        Ok(b) => b,
        Err(err) => return fail(&err),
    };
    let key = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("key").and_then(Value::as_str).map(|k| k.trim().to_owned()))
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        return fail(&refusal::sign_in_refused(runtime.master_key.is_none()));
    };
    let open = runtime.master_key.is_none();
    let viewer = match &runtime.master_key {
        Some(master) => match auth::verify(&state, &runtime, master, Some(&key), hint) {
            Ok(Caller::Master) => Viewer::Admin,
            Ok(Caller::Key(identity)) => Viewer::Key(identity),
            Err(err) if is_unknown(&err) => return fail(&refusal::sign_in_refused(false)),
            Err(err) => return fail(&err),
        },
        None => match state.keys().map(|k| k.authenticate(&key, chrono::Utc::now())) {
            Some(Ok(identity)) => Viewer::Key(identity),
            Some(Err(Refusal::Unknown)) | None => return fail(&refusal::sign_in_refused(true)),
            Some(Err(refusal)) => return fail(&refusal.to_error()),
        },
    };
    let secret = secret(&runtime);
    let token = match &viewer {
        Viewer::Admin => None,
        Viewer::Key(id) => Some(id.key.token.as_str()),
    };
    let now = now();
    let (cookie, csrf) = issue(&secret, token, now);
    let secure = over_https(&parts.headers, parts.uri.scheme_str());
    let mut response =
        json_response(StatusCode::OK, &describe(&viewer, &csrf, Some(now + LIFETIME_SECS), open));
    response.headers_mut().insert(SET_COOKIE, set_cookie(&cookie, LIFETIME_SECS, secure));
    response
}

/// The refusals that only mean "no such key" (GW-01, KEY-01): sign-in says so in its own words.
fn is_unknown(err: &ApiError) -> bool {
    err.diagnosis.as_ref().is_some_and(|d| d.id == "GW-01" || d.id == "KEY-01")
}

/// `DELETE /ui/api/session`: signs out (the cookie is cleared; being stateless, a copied
/// cookie stays valid until it expires or the key is blocked).
pub async fn delete(req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if let Err(err) = same_origin(req.headers()) {
        return error_response(&path, req.headers(), &err);
    }
    let secure = over_https(req.headers(), req.uri().scheme_str());
    let mut response = Response::new(Body::from(json!({"signed_in": false}).to_string()));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(SET_COOKIE, set_cookie("", 0, secure));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [7; 32];

    #[test]
    fn a_cookie_verifies_until_it_expires() {
        let (cookie, _) = issue(&SECRET, Some("ab12"), 1000);
        let s = verify_cookie(&SECRET, &cookie, 1001).map_err(|e| e.to_owned());
        assert_eq!(s.map(|s| s.token), Ok(Some("ab12".to_owned())));
        assert!(verify_cookie(&SECRET, &cookie, 1000 + LIFETIME_SECS).is_err());
    }

    #[test]
    fn a_changed_cookie_or_another_secret_is_refused() {
        let (cookie, _) = issue(&SECRET, None, 1000);
        let forged = cookie.replacen("v1.a.", "v1.a.9", 1);
        assert!(verify_cookie(&SECRET, &forged, 1001).is_err());
        assert!(verify_cookie(&[8; 32], &cookie, 1001).is_err());
        let as_key = cookie.replacen("v1.a.", "v1.k.ab12.", 1);
        assert!(verify_cookie(&SECRET, &as_key, 1001).is_err());
    }

    #[test]
    fn the_master_key_derives_the_secret() {
        assert_ne!(derive(b"sk-one"), derive(b"sk-two"));
        assert_eq!(derive(b"sk-one"), derive(b"sk-one"));
    }

    #[test]
    fn a_foreign_origin_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("127.0.0.1:4000"));
        h.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:4000"));
        assert!(same_origin(&h).is_ok());
        h.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(same_origin(&h).is_err());
    }
}
