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
    let path = req.uri().path().to_owned();

    let mut response = next.run(req).await;

    let status = response.status().as_u16();
    let deployment = response.headers().get(&DEPLOYMENT).and_then(|v| v.to_str().ok());
    tracing::info!(
        request_id = id.to_str().unwrap_or_default(),
        %method,
        path,
        status,
        deployment,
        // Time to the response head; a stream's body may still be flowing.
        us = started.elapsed().as_micros() as u64,
        "request"
    );
    response.headers_mut().insert(REQUEST_ID, id);
    response
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
    let text = format!("req_{seed:016x}{n:08x}");
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("req_unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_sane() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(is_sane(&a));
    }

    #[test]
    fn rejects_ids_that_could_forge_log_lines() {
        assert!(!is_sane(&HeaderValue::from_static("abc def")));
        assert!(!is_sane(&HeaderValue::from_static("")));
        assert!(is_sane(&HeaderValue::from_static("trace-123_abc.def:1")));
    }
}
