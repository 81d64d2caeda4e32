//! Renders an [`ApiError`] in Anthropic's error shape, as a body, a full response, or an
//! SSE `error` event for a stream that already started.
//!
//! Decides nothing: status, type and class all come from the error's kind in `classify`.
//! Never echoes request secrets (the error carries none).

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
/// Anthropic's request id header; the SDKs expose it as `_request_id` / `request_id`.
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");

/// `{"type":"error","error":{"type","message"},"request_id"}`; `request_id` is left out
/// when unknown.
pub fn error_body(err: &ApiError, request_id: Option<&str>) -> Bytes {
    let message = err.full_message();
    json_bytes(&Envelope { kind: "error", error: wire(err, &message), request_id })
}

/// The error as a complete HTTP response: status from the kind, JSON body, the error
/// class header, `request-id`, and `retry-after` (whole seconds, rounded up) when known.
pub fn error_response(err: &ApiError, request_id: Option<&str>) -> Response {
    let mut response = Response::new(Body::from(error_body(err, request_id)));
    *response.status_mut() = err.kind.http_status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ERROR_CLASS, HeaderValue::from_static(err.kind.as_str()));
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        headers.insert(REQUEST_ID, id);
    }
    if let Some(after) = err.retry_after {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        headers.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    for (name, value) in err.rate_limit.iter().flat_map(|r| r.headers()) {
        headers.insert(name, value);
    }
    response
}

/// One SSE `error` event, as the Anthropic API sends after a 200:
/// `event: error\ndata: {"type":"error","error":{…}}\n\n`.
pub(super) fn error_frame(err: &ApiError) -> Vec<u8> {
    let body = error_body(err, None);
    let mut frame = Vec::with_capacity(body.len() + 22);
    frame.extend_from_slice(b"event: error\ndata: ");
    frame.extend_from_slice(&body);
    frame.extend_from_slice(b"\n\n");
    frame
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: WireError<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

#[derive(Serialize)]
struct WireError<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
    /// Switchyard's class, catalog id, cause and remedy; clients ignore unknown fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnosis: Option<&'a Diagnosis>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    attempts: &'a [AttemptReport],
}

fn wire<'a>(err: &'a ApiError, message: &'a str) -> WireError<'a> {
    WireError {
        kind: err.kind.anthropic_type(),
        message,
        class: err.diagnosis.as_ref().map(|_| err.kind.as_str()),
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
    fn invalid_request_body_is_exact() {
        let err =
            ApiError::invalid_request("max_tokens: missing required field", Some("max_tokens"));
        assert_eq!(
            &error_body(&err, Some("req_1"))[..],
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: missing required field"},"request_id":"req_1"}"#
        );
    }

    #[test]
    fn diagnosed_error_joins_cause_and_fix() {
        let err = ApiError::new(ErrorKind::Unauthorized, "No key.").with_diagnosis(Diagnosis::new(
            "GW-01",
            "None was sent.",
            "Send one.",
        ));
        let v: serde_json::Value = serde_json::from_slice(&error_body(&err, None)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
        assert_eq!(v["error"]["message"], "No key. None was sent. Fix: Send one.");
        assert!(v.get("request_id").is_none());
    }

    #[test]
    fn response_has_status_class_request_id_and_rounded_up_retry_after() {
        let mut err = ApiError::new(ErrorKind::Overloaded, "Overloaded");
        err.retry_after = Some(Duration::from_millis(2100));
        let response = error_response(&err, Some("req_abc"));
        assert_eq!(response.status().as_u16(), 529);
        let h = response.headers();
        assert_eq!(h[CONTENT_TYPE], "application/json");
        assert_eq!(h["x-switchyard-error-class"], "overloaded");
        assert_eq!(h["request-id"], "req_abc");
        assert_eq!(h[RETRY_AFTER], "3");
    }

    #[test]
    fn statuses_and_types_follow_the_kind() {
        let cases = [
            (ErrorKind::InvalidRequest, StatusCode::BAD_REQUEST, "invalid_request_error"),
            (ErrorKind::UnknownModel, StatusCode::BAD_REQUEST, "invalid_request_error"),
            (ErrorKind::PayloadTooLarge, StatusCode::PAYLOAD_TOO_LARGE, "request_too_large"),
            (ErrorKind::RateLimited, StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
            (ErrorKind::NotFound, StatusCode::NOT_FOUND, "not_found_error"),
        ];
        for (kind, status, kind_type) in cases {
            let response = error_response(&ApiError::new(kind, "x"), None);
            assert_eq!(response.status(), status, "{kind:?}");
            assert!(response.headers().get(RETRY_AFTER).is_none());
            assert!(response.headers().get("request-id").is_none());
            let body = error_body(&ApiError::new(kind, "x"), None);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["type"], kind_type, "{kind:?}");
        }
    }

    #[test]
    fn error_frame_is_one_sse_error_event() {
        let frame = error_frame(&ApiError::new(ErrorKind::Overloaded, "Overloaded"));
        assert_eq!(
            std::str::from_utf8(&frame).unwrap(),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
        );
    }
}
