//! An InvokeModel body for an Anthropic model into the canonical request: the Messages body
//! Bedrock takes (`anthropic_version: bedrock-2023-05-31`, betas in `anthropic_beta`, no
//! `model`, no `stream`), the model from the path and streaming from the operation.

use axum::http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

use crate::canonical::ChatRequest;
use crate::classify::ApiError;
use crate::surface::anthropic::{BETA_HEADER, decode_messages_request};

/// Decodes `body` as a request for `model`. Beta flags come from the body's `anthropic_beta`
/// and the `anthropic-beta` header (Claude Code sends the header), each once.
pub fn decode_invoke(
    body: &[u8],
    headers: &HeaderMap,
    model: &str,
    stream: bool,
) -> Result<ChatRequest, ApiError> {
    let mut object: Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_request(
            format!("The InvokeModel body is not a JSON object: {e}. Send the Anthropic Messages body with anthropic_version \"bedrock-2023-05-31\"."),
            None,
        )
    })?;
    object.remove("anthropic_version");
    let mut betas = HeaderMap::new();
    for value in headers.get_all(BETA_HEADER) {
        betas.append(BETA_HEADER, value.clone());
    }
    match object.remove("anthropic_beta") {
        None | Some(Value::Null) => {}
        Some(Value::Array(flags)) => {
            for flag in flags {
                let Some(flag) = flag.as_str().and_then(|f| HeaderValue::from_str(f).ok()) else {
                    return Err(ApiError::invalid_request(
                        "anthropic_beta: every flag must be a string of visible ASCII",
                        Some("anthropic_beta"),
                    ));
                };
                betas.append(BETA_HEADER, flag);
            }
        }
        Some(_) => {
            return Err(ApiError::invalid_request(
                "anthropic_beta: must be a list of beta flag strings",
                Some("anthropic_beta"),
            ));
        }
    }
    object.insert("model".into(), Value::from(model));
    object.insert("stream".into(), Value::Bool(stream));
    let bytes = serde_json::to_vec(&object).unwrap_or_default();
    decode_messages_request(&bytes, &betas)
}

#[cfg(test)]
mod tests {
    use super::*;

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
