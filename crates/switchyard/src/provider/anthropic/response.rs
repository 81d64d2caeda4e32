//! Anthropic Messages response JSON → canonical [`ChatResponse`], and the wire pieces the
//! stream decoder shares with it (content blocks, stop reasons, usage).
//!
//! Tolerant of what it does not know (new block types, new usage fields); never invents
//! content. Undoes the `response_format` tool so callers see plain JSON text.

use serde::Deserialize;
use serde_json::Value;

use super::body::JSON_TOOL;
use crate::canonical::{ChatResponse, ContentBlock, StopReason, Usage};
use crate::classify::{ErrorKind, UpstreamError};

#[derive(Deserialize)]
struct WireMessage {
    id: String,
    model: String,
    #[serde(default)]
    content: Vec<WireBlock>,
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

/// A content block as the API sends it; types this gateway cannot represent are `Other`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum WireBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    #[serde(other)]
    Other,
}

impl WireBlock {
    pub(super) fn into_canonical(self) -> Option<ContentBlock> {
        Some(match self {
            Self::Text { text } => ContentBlock::text(text),
            Self::ToolUse { id, name, input } => {
                ContentBlock::ToolUse { id, name, input, cache_control: None }
            }
            Self::Thinking { thinking, signature } => {
                ContentBlock::Thinking { thinking, signature: signature.filter(|s| !s.is_empty()) }
            }
            Self::RedactedThinking { data } => ContentBlock::RedactedThinking { data },
            Self::Other => return None,
        })
    }
}

/// Usage as the API reports it; the cache counts may be absent or `null`.
#[derive(Deserialize, Default)]
pub(super) struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    /// The cache writes by lifetime (`ephemeral_5m_input_tokens`, `ephemeral_1h_input_tokens`).
    #[serde(default)]
    cache_creation: Option<WireCacheCreation>,
}

#[derive(Deserialize, Default)]
struct WireCacheCreation {
    #[serde(default)]
    ephemeral_5m_input_tokens: Option<u64>,
    #[serde(default)]
    ephemeral_1h_input_tokens: Option<u64>,
}

/// The `usage` object of a Messages answer read on its own (a batch's result line); what
/// it lacks counts 0.
pub fn usage_of(value: &Value) -> Usage {
    serde_json::from_value::<WireUsage>(value.clone()).map(Usage::from).unwrap_or_default()
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        let by_ttl = u.cache_creation.unwrap_or_default();
        let one_hour = by_ttl.ephemeral_1h_input_tokens.unwrap_or(0);
        let by_ttl_total = by_ttl.ephemeral_5m_input_tokens.unwrap_or(0) + one_hour;
        Self {
            input_tokens: u.input_tokens.unwrap_or(0),
            output_tokens: u.output_tokens.unwrap_or(0),
            cache_read_input_tokens: u.cache_read_input_tokens.unwrap_or(0),
            // The total, or the breakdown's sum when only the breakdown was sent.
            cache_creation_input_tokens: u.cache_creation_input_tokens.unwrap_or(by_ttl_total),
            cache_creation_1h_input_tokens: one_hour,
        }
    }
}

/// Anthropic's stop reasons; one this gateway does not know reads as none.
pub(super) fn stop_reason(reason: Option<&str>) -> Option<StopReason> {
    Some(match reason? {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "pause_turn" => StopReason::PauseTurn,
        "refusal" => StopReason::Refusal,
        "model_context_window_exceeded" => StopReason::ModelContextWindowExceeded,
        other => {
            tracing::debug!(stop_reason = other, "unknown Anthropic stop reason");
            return None;
        }
    })
}

/// The answer of a non-streamed request. `json_mode`: the request carried `response_format`.
pub(crate) fn parse(bytes: &[u8], json_mode: bool) -> Result<ChatResponse, UpstreamError> {
    let wire: WireMessage = serde_json::from_slice(bytes).map_err(|e| {
        UpstreamError::new(
            ErrorKind::UpstreamUnavailable,
            format!("the upstream's answer is not a Messages response: {e}"),
        )
    })?;
    let mut response = ChatResponse {
        id: wire.id,
        model: wire.model,
        content: wire.content.into_iter().filter_map(WireBlock::into_canonical).collect(),
        stop_reason: stop_reason(wire.stop_reason.as_deref()),
        stop_sequence: wire.stop_sequence,
        usage: wire.usage.into(),
    };
    if json_mode {
        json_answer(&mut response);
    }
    Ok(response)
}

/// The `response_format` tool's input becomes the answer's text, and the answer a normal
/// stop (as LiteLLM returns it).
fn json_answer(response: &mut ChatResponse) {
    let mut converted = false;
    for block in &mut response.content {
        let json = match block {
            ContentBlock::ToolUse { name, input, .. } if name == JSON_TOOL => input.to_string(),
            _ => continue,
        };
        *block = ContentBlock::text(json);
        converted = true;
    }
    let tools_left = response.content.iter().any(|b| matches!(b, ContentBlock::ToolUse { .. }));
    if converted && !tools_left && response.stop_reason == Some(StopReason::ToolUse) {
        response.stop_reason = Some(StopReason::EndTurn);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TOOL_ANSWER: &str = r#"{
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [
            {"type": "thinking", "thinking": "Let me look.", "signature": "EqQB"},
            {"type": "text", "text": "I'll check."},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 30, "cache_creation_input_tokens": 100,
                  "cache_read_input_tokens": 2000, "service_tier": "standard",
                  "cache_creation": {"ephemeral_5m_input_tokens": 60, "ephemeral_1h_input_tokens": 40}}
    }"#;

    #[test]
    fn a_tool_answer_keeps_blocks_usage_and_stop_reason() {
        let r = parse(TOOL_ANSWER.as_bytes(), false).unwrap();
        assert_eq!(r.id, "msg_01XFDUDYJgAACzvnptvVoYEL");
        assert_eq!(r.model, "claude-sonnet-4-6");
        assert_eq!(
            r.content,
            vec![
                ContentBlock::Thinking {
                    thinking: "Let me look.".into(),
                    signature: Some("EqQB".into())
                },
                ContentBlock::text("I'll check."),
                ContentBlock::ToolUse {
                    id: "toolu_01A".into(),
                    name: "get_weather".into(),
                    input: json!({"city": "Paris"}),
                    cache_control: None,
                },
            ]
        );
        assert_eq!(r.stop_reason, Some(StopReason::ToolUse));
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 12,
                output_tokens: 30,
                cache_read_input_tokens: 2000,
                cache_creation_input_tokens: 100,
                cache_creation_1h_input_tokens: 40,
            }
        );
    }

    #[test]
    fn null_cache_counts_and_unknown_stop_reasons_are_tolerated() {
        let body = r#"{"id": "m", "model": "c", "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "something_new", "stop_sequence": null,
            "usage": {"input_tokens": 1, "output_tokens": 2, "cache_creation_input_tokens": null}}"#;
        let r = parse(body.as_bytes(), false).unwrap();
        assert_eq!(r.stop_reason, None);
        assert_eq!(r.usage, Usage { input_tokens: 1, output_tokens: 2, ..Usage::default() });
    }

    #[test]
    fn json_mode_turns_the_tool_input_into_text_and_a_normal_stop() {
        let body = r#"{"id": "m", "model": "c", "stop_reason": "tool_use", "stop_sequence": null,
            "content": [{"type": "tool_use", "id": "t", "name": "json_tool_call", "input": {"colors": ["red", "blue"]}}],
            "usage": {"input_tokens": 1, "output_tokens": 2}}"#;
        let r = parse(body.as_bytes(), true).unwrap();
        assert_eq!(r.content, vec![ContentBlock::text(r#"{"colors":["red","blue"]}"#)]);
        assert_eq!(r.stop_reason, Some(StopReason::EndTurn));
    }

    #[test]
    fn a_body_that_is_not_a_message_is_an_upstream_failure() {
        let err = parse(b"<html>", false).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UpstreamUnavailable);
        assert!(err.message.contains("not a Messages response"), "{}", err.message);
    }
}
