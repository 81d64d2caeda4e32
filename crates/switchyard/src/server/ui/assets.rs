//! The dashboard's static files, embedded in the binary (no Node at run time, nothing on
//! disk), and the security headers every `/ui` answer carries.

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// No inline script or style anywhere, so nothing but our own files runs or styles the page.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self'";

macro_rules! asset {
    ($path:literal, $type:expr) => {
        ($path, $type, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $path)))
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static FILES: &[(&str, &str, &[u8])] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("charts.js", JS),
    asset!("dom.js", JS),
    asset!("pages/overview.js", JS),
    asset!("pages/deployments.js", JS),
    asset!("pages/spend.js", JS),
    asset!("pages/requests.js", JS),
    asset!("pages/keys.js", JS),
    asset!("pages/config.js", JS),
    asset!("icon.svg", "image/svg+xml"),
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", "text/css; charset=utf-8"),
    asset!("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
];

const INDEX: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/index.html"));

/// `GET /ui`: the page shell; every page is drawn into it by `app.js`.
pub async fn index() -> Response {
    let mut r = ([(CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response();
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /ui/assets/{path}`.
pub async fn file(Path(path): Path<String>) -> Response {
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, bytes)) => {
            let mut r = ([(CONTENT_TYPE, *content_type)], *bytes).into_response();
            // Revalidated each load: a new binary's files are never mixed with old ones.
            r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        None => (StatusCode::NOT_FOUND, [(CONTENT_TYPE, "text/plain")], "no such dashboard file")
            .into_response(),
    }
}

/// The headers on every `/ui` answer; API answers are never cached.
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
