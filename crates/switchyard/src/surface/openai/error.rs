//! Renders an [`ApiError`] in OpenAI's error shape, as a body, a full response, or an SSE
//! error chunk for a stream that already started.
//!
//! Decides nothing: the status, type and class all come from the error's kind in
//! `classify`. Never echoes request secrets (the error carries none).

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;

use super::json_bytes;
use crate::classify::{ApiError, AttemptReport, Diagnosis};

/// The header naming the error class (`ErrorKind::as_str`), for scripts and dashboards.
const ERROR_CLASS: HeaderName = HeaderName::from_static("x-switchyard-error-class");

/// `{"error":{"message","type","param","code"}}`.
pub fn error_body(err: &ApiError) -> Bytes {
    let message = err.full_message();
    json_bytes(&Envelope { error: wire(err, &message) })
}

/// The error as a complete HTTP response: status from the kind, JSON body, the error
/// class header and `retry-after` (whole seconds, rounded up) when known.
pub fn error_response(err: &ApiError) -> Response {
    let mut response = Response::new(Body::from(error_body(err)));
    *response.status_mut() = err.kind.http_status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ERROR_CLASS, HeaderValue::from_static(err.kind.as_str()));
    if let Some(after) = err.retry_after {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        headers.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    for (name, value) in err.rate_limit.iter().flat_map(|r| r.headers()) {
        headers.insert(name, value);
    }
    response
}

/// One SSE frame carrying the error, as OpenAI streams do: `data: {"error":{…}}\n\n`.
pub(super) fn error_frame(err: &ApiError) -> Vec<u8> {
    let body = error_body(err);
    let mut frame = Vec::with_capacity(body.len() + 8);
    frame.extend_from_slice(b"data: ");
    frame.extend_from_slice(&body);
    frame.extend_from_slice(b"\n\n");
    frame
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: WireError<'a>,
}

#[derive(Serialize)]
struct WireError<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'a str>,
    code: &'static str,
    /// Catalog id, cause and remedy, for tools that act on them (`switchyard verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnosis: Option<&'a Diagnosis>,
    /// Every failed attempt behind this error, when deployments were tried.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    attempts: &'a [AttemptReport],
}

fn wire<'a>(err: &'a ApiError, message: &'a str) -> WireError<'a> {
    WireError {
        message,
        kind: err.kind.openai_type(),
        param: err.param.as_deref(),
        code: err.kind.openai_code(),
        diagnosis: err.diagnosis.as_ref(),
        attempts: &err.attempts,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;

    use super::*;
    use crate::classify::{Diagnosis, ErrorKind};

    #[test]
    fn invalid_request_body_names_the_param() {
        let err = ApiError::invalid_request("messages: missing required field", Some("messages"));
        assert_eq!(
            &error_body(&err)[..],
            br#"{"error":{"message":"messages: missing required field","type":"invalid_request_error","param":"messages","code":"invalid_request"}}"#
        );
    }

    #[test]
    fn diagnosed_error_joins_cause_and_fix_and_param_is_null() {
        let err = ApiError::new(ErrorKind::Unauthorized, "No key.").with_diagnosis(Diagnosis::new(
            "GW-01",
            "None was sent.",
            "Send one.",
        ));
        let v: serde_json::Value = serde_json::from_slice(&error_body(&err)).unwrap();
        assert_eq!(v["error"]["message"], "No key. None was sent. Fix: Send one.");
        assert_eq!(v["error"]["type"], "auth_error");
        assert_eq!(v["error"]["param"], serde_json::Value::Null);
        assert_eq!(v["error"]["code"], "401");
    }

    #[test]
    fn response_has_status_class_and_rounded_up_retry_after() {
        let mut err = ApiError::new(ErrorKind::RateLimited, "Slow down.");
        err.retry_after = Some(Duration::from_millis(1500));
        let response = error_response(&err);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let h = response.headers();
        assert_eq!(h[CONTENT_TYPE], "application/json");
        assert_eq!(h["x-switchyard-error-class"], "rate_limited");
        assert_eq!(h[RETRY_AFTER], "2");
    }

    #[test]
    fn response_without_retry_after_has_no_header() {
        let response = error_response(&ApiError::invalid_request("bad", None));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get(RETRY_AFTER).is_none());
    }

    #[test]
    fn error_frame_is_one_sse_data_line() {
        let frame = error_frame(&ApiError::new(ErrorKind::Overloaded, "Overloaded"));
        let s = std::str::from_utf8(&frame).unwrap();
        assert!(s.starts_with("data: {\"error\":{\"message\":\"Overloaded\""), "{s}");
        assert!(s.ends_with("}}\n\n"), "{s}");
    }
}
