//! An [`ApiError`] in Bedrock Runtime's restJson1 error shape: `{"message": …}` with the
//! error name in `x-amzn-errortype`, plus the gateway's class, catalog id, cause and remedy
//! (clients ignore fields they do not know). Status and name come from the kind.

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use serde::Serialize;

use crate::classify::{ApiError, AttemptReport, Diagnosis, ErrorKind};

const ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
const ERROR_CLASS: HeaderName = HeaderName::from_static("x-switchyard-error-class");

/// The Bedrock error name of `kind` (`ThrottlingException`, …).
pub fn exception_name(kind: ErrorKind) -> &'static str {
    kind.bedrock_exception()
}

/// The error as a complete response, tagged with the request id as Bedrock tags its own.
pub fn error_response(err: &ApiError, request_id: Option<&str>) -> Response {
    let mut response = Response::new(Body::from(wire_message(err)));
    *response.status_mut() = err.kind.http_status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ERROR_TYPE, HeaderValue::from_static(exception_name(err.kind)));
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

/// `{"message": …, "class", "diagnosis", "attempts"}`.
pub(super) fn wire_message(err: &ApiError) -> Vec<u8> {
    let message = err.full_message();
    let wire = Wire {
        message: &message,
        class: err.diagnosis.as_ref().map(|_| err.kind.as_str()),
        diagnosis: err.diagnosis.as_ref(),
        attempts: &err.attempts,
    };
    serde_json::to_vec(&wire)
        .unwrap_or_else(|_| br#"{"message":"Switchyard could not encode this error."}"#.to_vec())
}

#[derive(Serialize)]
struct Wire<'a> {
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnosis: Option<&'a Diagnosis>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    attempts: &'a [AttemptReport],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_is_bedrocks_with_the_diagnosis() {
        let err = ApiError::new(ErrorKind::RateLimited, "Too many requests.").with_diagnosis(
            Diagnosis::new("LIM-01", "The key's rpm is reached.", "Wait a minute."),
        );
        let response = error_response(&err, Some("req_1"));
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()["x-amzn-errortype"], "ThrottlingException");
        assert_eq!(response.headers()["x-amzn-requestid"], "req_1");
        let body: serde_json::Value = serde_json::from_slice(&wire_message(&err)).unwrap();
        assert_eq!(
            body["message"],
            "Too many requests. The key's rpm is reached. Fix: Wait a minute."
        );
        assert_eq!(body["diagnosis"]["id"], "LIM-01");
    }
}
