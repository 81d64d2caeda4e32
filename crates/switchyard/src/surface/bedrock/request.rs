//! An InvokeModel body for an Anthropic model into the canonical request: the Messages body
//! Bedrock takes (`anthropic_version: bedrock-2023-05-31`, betas in `anthropic_beta`, no
//! `model`, no `stream`), the model from the path and streaming from the operation.

use axum::http::{HeaderMap, HeaderValue};
use serde_json::Value;

use crate::canonical::ChatRequest;
use crate::classify::ApiError;
use crate::surface::anthropic::decode_messages_as;

/// Decodes `body` as a request for `model`. Beta flags come from the `anthropic-beta` header
/// (Claude Code sends the header) and the body's `anthropic_beta`, each once. The body is read
/// once, straight into the request: an agent's turn can be hundreds of kilobytes.
pub fn decode_invoke(
    body: &[u8],
    headers: &HeaderMap,
    model: &str,
    stream: bool,
) -> Result<ChatRequest, ApiError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::invalid_request(
            "The InvokeModel body is not a JSON object. Send the Anthropic Messages body with anthropic_version \"bedrock-2023-05-31\".",
            None,
        ));
    }
    let mut chat = decode_messages_as(body, headers, model, stream)?;
    chat.extra.remove("anthropic_version");
    match chat.extra.remove("anthropic_beta") {
        None | Some(Value::Null) => {}
        Some(Value::Array(flags)) => {
            for flag in flags {
                let Some(flag) = flag.as_str().filter(|f| HeaderValue::from_str(f).is_ok()) else {
                    return Err(ApiError::invalid_request(
                        "anthropic_beta: every flag must be a string of visible ASCII",
                        Some("anthropic_beta"),
                    ));
                };
                // As the header's flags are read: comma-separated, trimmed, each once.
                for flag in flag.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if !chat.betas.iter().any(|b| b == flag) {
                        chat.betas.push(flag.to_owned());
                    }
                }
            }
        }
        Some(_) => {
            return Err(ApiError::invalid_request(
                "anthropic_beta: must be a list of beta flag strings",
                Some("anthropic_beta"),
            ));
        }
    }
    Ok(chat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surface::anthropic::BETA_HEADER;

    #[test]
    fn the_model_comes_from_the_path_and_betas_from_both_places() {
        let mut headers = HeaderMap::new();
        headers.insert(BETA_HEADER, HeaderValue::from_static("claude-code-20250219"));
        let body = br#"{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["context-1m-2025-08-07"],
            "max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
        let chat = decode_invoke(body, &headers, "us.anthropic.claude-x-v1:0", true).unwrap();
        assert_eq!(chat.model, "us.anthropic.claude-x-v1:0");
        assert!(chat.stream);
        assert_eq!(chat.betas, ["claude-code-20250219", "context-1m-2025-08-07"]);
        assert!(!chat.extra.contains_key("anthropic_version"));
        assert!(!chat.extra.contains_key("anthropic_beta"));
    }

    #[test]
    fn body_betas_are_read_like_the_headers_and_a_stray_model_or_stream_is_overridden() {
        let mut headers = HeaderMap::new();
        headers.insert(BETA_HEADER, HeaderValue::from_static("a, b"));
        let body = br#"{"model":"other","stream":true,"anthropic_beta":["b,c"," d "],
            "max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
        let chat = decode_invoke(body, &headers, "m", false).unwrap();
        assert_eq!(chat.betas, ["a", "b", "c", "d"]);
        assert_eq!(chat.model, "m");
        assert!(!chat.stream);
        let bad =
            br#"{"anthropic_beta":"x","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}"#;
        let err = decode_invoke(bad, &HeaderMap::new(), "m", false).unwrap_err();
        assert_eq!(err.message, "anthropic_beta: must be a list of beta flag strings");
    }

    #[test]
    fn a_body_that_is_not_an_object_names_what_to_send() {
        let err = decode_invoke(b"[1]", &HeaderMap::new(), "m", false).unwrap_err();
        assert_eq!(err.kind, crate::classify::ErrorKind::InvalidRequest);
        assert!(err.message.contains("anthropic_version"), "{}", err.message);
    }

    #[test]
    fn max_tokens_is_required_as_bedrock_requires_it() {
        let body = br#"{"anthropic_version":"bedrock-2023-05-31","messages":[{"role":"user","content":"hi"}]}"#;
        let err = decode_invoke(body, &HeaderMap::new(), "m", false).unwrap_err();
        assert!(err.message.contains("max_tokens"), "{}", err.message);
    }
}
