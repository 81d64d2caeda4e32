//! Renders a gateway error in the shape of the client that will read it, chosen by the
//! request path: Anthropic's for `/v1/messages` and `/anthropic/` and below, Bedrock's for
//! `/bedrock/` and below, OpenAI's everywhere else.
//! Used where no surface has decoded anything yet (auth, unknown routes and methods).
//!
//! Decides only which surface speaks: status, type and class come from `classify`.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::request_id::REQUEST_ID;
use crate::classify::ApiError;
use crate::surface::{anthropic, bedrock, openai};

/// `err` as a response in the shape of the client calling `path`.
pub(super) fn error_response(path: &str, headers: &HeaderMap, err: &ApiError) -> Response {
    if is_anthropic(path) || under(path, "/anthropic") {
        anthropic::error_response(err, request_id(headers))
    } else if under(path, "/bedrock") {
        bedrock::error_response(err, request_id(headers))
    } else {
        openai::error_response(err)
    }
}

/// `err` with a status its kind does not give (405 Method Not Allowed).
pub(super) fn error_response_with_status(
    path: &str,
    headers: &HeaderMap,
    err: &ApiError,
    status: StatusCode,
) -> Response {
    let mut response = error_response(path, headers, err);
    *response.status_mut() = status;
    response
}

/// Paths the Anthropic SDKs and Claude Code call (`/v1/messages`, `/v1/messages/…`).
fn is_anthropic(path: &str) -> bool {
    under(path, "/v1/messages")
}

/// `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The id `request_id::tag_and_log` gave this request.
pub(super) fn request_id(headers: &HeaderMap) -> Option<&str> {
    headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::classify::ErrorKind;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn messages_paths_are_anthropic_and_nothing_else_is() {
        for path in
            ["/v1/messages", "/v1/messages/", "/v1/messages/count_tokens", "/v1/messages/batches/x"]
        {
            assert!(is_anthropic(path), "{path}");
        }
        for path in ["/v1/chat/completions", "/v1/messagesx", "/messages", "/v1/models", "/"] {
            assert!(!is_anthropic(path), "{path}");
        }
    }

    #[tokio::test]
    async fn the_shape_follows_the_path() {
        let err = ApiError::new(ErrorKind::NotFound, "No route.");
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("req_7"));

        let response = error_response("/v1/messages/batches", &headers, &err);
        assert_eq!(response.headers()["request-id"], "req_7");
        let body = body_of(response).await;
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "not_found_error");
        assert_eq!(body["request_id"], "req_7");

        let body = body_of(error_response("/v1/nope", &headers, &err)).await;
        assert_eq!(body["error"]["type"], "not_found_error");
        assert_eq!(body["error"]["code"], "not_found");
        assert!(body.get("type").is_none());
    }
}
