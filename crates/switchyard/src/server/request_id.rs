//! Gives every request an id (the client's `x-request-id` when it sent a sane one), echoes
//! it on the response, and writes one access-log line per request.
//!
//! Never logs headers or bodies: they carry keys and prompts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const DEPLOYMENT: HeaderName = HeaderName::from_static("x-switchyard-deployment");

pub async fn tag_and_log(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = match req.headers().get(&REQUEST_ID) {
        Some(v) if is_sane(v) => v.clone(),
        _ => generate(),
    };
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let method = req.method().clone();
    // A reference-counted clone: no copy of the path.
    let uri = req.uri().clone();

    let mut response = next.run(req).await;

    let status = response.status().as_u16();
    let deployment = response.headers().get(&DEPLOYMENT).and_then(|v| v.to_str().ok());
    // Time to the response head; a stream's body may still be flowing.
    let us = started.elapsed().as_micros() as u64;
    access_line(
        id.to_str().unwrap_or_default(),
        &method,
        loggable(uri.path()),
        status,
        deployment,
        us,
    );
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// The access line (`logging/access.rs` writes it without the general formatter).
pub(crate) fn access_line(
    request_id: &str,
    method: &axum::http::Method,
    path: &str,
    status: u16,
    deployment: Option<&str>,
    us: u64,
) {
    tracing::info!(
        target: crate::logging::ACCESS_TARGET,
        request_id,
        %method,
        path,
        status,
        deployment,
        us,
        "request"
    );
}

/// The path as logged: the key in `/key/{key}/regenerate` never reaches the log.
fn loggable(path: &str) -> &str {
    match path.strip_prefix("/key/").and_then(|rest| rest.strip_suffix("/regenerate")) {
        Some(key) if !key.is_empty() => "/key/****/regenerate",
        _ => path,
    }
}

fn is_sane(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// Unique within the process and unlikely to collide across restarts: the start time
/// seeds the high bits, a counter the low ones.
fn generate() -> HeaderValue {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // `req_{seed:016x}{n:08x}`, written by hand below 2^32 requests: `format!` cost more
    // than the rest of this middleware.
    let text = match u32::try_from(n) {
        Ok(low) => {
            let mut text = Vec::with_capacity(28);
            text.extend_from_slice(b"req_");
            hex(&mut text, seed, 16);
            hex(&mut text, u64::from(low), 8);
            text
        }
        Err(_) => format!("req_{seed:016x}{n:08x}").into_bytes(),
    };
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
        .unwrap_or(HeaderValue::from_static("req_unknown"))
}

/// The low `digits` hex digits of `value`, lowercase, most significant first.
fn hex(out: &mut Vec<u8>, value: u64, digits: u32) {
    for shift in (0..digits).rev() {
        out.push(b"0123456789abcdef"[(value >> (shift * 4) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_key_in_the_path_is_not_logged() {
        assert_eq!(super::loggable("/key/sk-secret-1/regenerate"), "/key/****/regenerate");
        assert_eq!(super::loggable("/key/generate"), "/key/generate");
        assert_eq!(super::loggable("/v1/chat/completions"), "/v1/chat/completions");
    }

    use super::*;

    #[test]
    fn generated_ids_are_unique_and_sane() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(is_sane(&a));
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        assert_eq!(a.len(), 28, "{a}");
        assert!(a.starts_with("req_") && a[4..].bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        let n = |id: &str| u64::from_str_radix(&id[20..], 16).unwrap();
        assert_eq!(n(b), n(a) + 1);
        assert_eq!(a[..20], b[..20]);
    }

    #[test]
    fn rejects_ids_that_could_forge_log_lines() {
        assert!(!is_sane(&HeaderValue::from_static("abc def")));
        assert!(!is_sane(&HeaderValue::from_static("")));
        assert!(is_sane(&HeaderValue::from_static("trace-123_abc.def:1")));
    }
}
