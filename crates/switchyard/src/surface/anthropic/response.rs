//! Encodes a canonical [`ChatResponse`] as an Anthropic `message` object, the
//! `count_tokens` answer, and the stop-reason and usage shapes the stream encoder shares.
//!
//! Serializes borrowed views of the response straight to bytes: never builds an
//! intermediate `serde_json::Value` on this path.

use bytes::Bytes;
use serde::Serialize;

use super::json_bytes;
use crate::canonical::{ChatResponse, ContentBlock, StopReason, Usage};

/// The complete `message` JSON for one answer.
pub fn encode_response(resp: &ChatResponse) -> Bytes {
    json_bytes(&WireMessage::new(
        &resp.id,
        &resp.model,
        &resp.content,
        stop_reason(resp.stop_reason),
        resp.stop_sequence.as_deref(),
        &resp.usage,
    ))
}

/// `{"input_tokens":N}`, the `/v1/messages/count_tokens` answer.
pub fn encode_count_tokens(input_tokens: u64) -> Bytes {
    json_bytes(&WireCount { input_tokens })
}

/// The stop reason in Anthropic's vocabulary. `ContentFilter` (an OpenAI-side reason)
/// reads as `refusal`, Anthropic's nearest.
pub(super) fn stop_reason(reason: Option<StopReason>) -> Option<&'static str> {
    reason.map(|r| match r {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::PauseTurn => "pause_turn",
        StopReason::Refusal | StopReason::ContentFilter => "refusal",
        StopReason::ModelContextWindowExceeded => "model_context_window_exceeded",
    })
}

/// A `message` object; with empty content and no stop reason it is `message_start`'s.
#[derive(Serialize)]
pub(super) struct WireMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    /// Canonical blocks serialize in Anthropic's shape (that is their design).
    content: &'a [ContentBlock],
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'a str>,
    usage: WireUsage,
}

impl<'a> WireMessage<'a> {
    pub(super) fn new(
        id: &'a str,
        model: &'a str,
        content: &'a [ContentBlock],
        stop_reason: Option<&'static str>,
        stop_sequence: Option<&'a str>,
        usage: &Usage,
    ) -> Self {
        Self {
            id,
            kind: "message",
            role: "assistant",
            model,
            content,
            stop_reason,
            stop_sequence,
            usage: WireUsage::from(usage),
        }
    }
}

/// Anthropic usage: `input_tokens` excludes cache reads and writes, as canonical does.
#[derive(Serialize)]
pub(super) struct WireUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
    /// The cache writes by lifetime, when some were written for one hour (they cost more,
    /// and clients that price usage read them).
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation: Option<WireCacheCreation>,
}

#[derive(Serialize)]
struct WireCacheCreation {
    ephemeral_5m_input_tokens: u64,
    ephemeral_1h_input_tokens: u64,
}

impl From<&Usage> for WireUsage {
    fn from(u: &Usage) -> Self {
        Self {
            input_tokens: u.input_tokens,
            cache_creation_input_tokens: u.cache_creation_input_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
            output_tokens: u.output_tokens,
            cache_creation: (u.cache_creation_1h_input_tokens > 0).then(|| WireCacheCreation {
                ephemeral_5m_input_tokens: u.cache_creation_5m_input_tokens(),
                ephemeral_1h_input_tokens: u.cache_creation_1h_input_tokens,
            }),
        }
    }
}

#[derive(Serialize)]
struct WireCount {
    input_tokens: u64,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn text(bytes: &Bytes) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn text_answer_is_an_exact_message() {
        let resp = ChatResponse {
            id: "msg_01".into(),
            model: "claude-sonnet-4-6".into(),
            content: vec![ContentBlock::text("WORKS")],
            stop_reason: Some(StopReason::EndTurn),
            stop_sequence: None,
            usage: Usage { input_tokens: 12, output_tokens: 3, ..Usage::default() },
        };
        assert_eq!(
            text(&encode_response(&resp)),
            concat!(
                r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-6","#,
                r#""content":[{"type":"text","text":"WORKS"}],"stop_reason":"end_turn","stop_sequence":null,"#,
                r#""usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":3}}"#
            )
        );
    }

    #[test]
    fn thinking_tool_use_and_cached_usage_are_exact() {
        let resp = ChatResponse {
            id: "msg_02".into(),
            model: "m".into(),
            content: vec![
                ContentBlock::Thinking { thinking: "hmm".into(), signature: Some("sig".into()) },
                ContentBlock::RedactedThinking { data: "opaque".into() },
                ContentBlock::ToolUse {
                    id: "toolu_1".into(),
                    name: "get_weather".into(),
                    input: json!({"city": "Paris"}),
                    cache_control: None,
                },
                ContentBlock::Other(
                    json!({"type": "server_tool_use", "id": "srvtoolu_1"})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            ],
            stop_reason: Some(StopReason::StopSequence),
            stop_sequence: Some("END".into()),
            usage: Usage {
                input_tokens: 10,
                output_tokens: 20,
                cache_read_input_tokens: 100,
                cache_creation_input_tokens: 5,
                cache_creation_1h_input_tokens: 0,
            },
        };
        assert_eq!(
            text(&encode_response(&resp)),
            concat!(
                r#"{"id":"msg_02","type":"message","role":"assistant","model":"m","content":["#,
                r#"{"type":"thinking","thinking":"hmm","signature":"sig"},"#,
                r#"{"type":"redacted_thinking","data":"opaque"},"#,
                r#"{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}},"#,
                r#"{"id":"srvtoolu_1","type":"server_tool_use"}],"#,
                r#""stop_reason":"stop_sequence","stop_sequence":"END","#,
                r#""usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":20}}"#
            )
        );
    }

    #[test]
    fn one_hour_cache_writes_are_broken_down_as_anthropic_does() {
        let usage = Usage {
            input_tokens: 10,
            output_tokens: 20,
            cache_read_input_tokens: 0,
            cache_creation_input_tokens: 300,
            cache_creation_1h_input_tokens: 100,
        };
        assert_eq!(
            serde_json::to_value(WireUsage::from(&usage)).unwrap(),
            json!({"input_tokens": 10, "cache_creation_input_tokens": 300,
                   "cache_read_input_tokens": 0, "output_tokens": 20,
                   "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100}})
        );
    }

    #[test]
    fn every_stop_reason_is_in_anthropic_vocabulary() {
        let cases = [
            (None, None),
            (Some(StopReason::EndTurn), Some("end_turn")),
            (Some(StopReason::MaxTokens), Some("max_tokens")),
            (Some(StopReason::StopSequence), Some("stop_sequence")),
            (Some(StopReason::ToolUse), Some("tool_use")),
            (Some(StopReason::PauseTurn), Some("pause_turn")),
            (Some(StopReason::Refusal), Some("refusal")),
            (Some(StopReason::ContentFilter), Some("refusal")),
            (Some(StopReason::ModelContextWindowExceeded), Some("model_context_window_exceeded")),
        ];
        for (reason, expected) in cases {
            assert_eq!(stop_reason(reason), expected, "{reason:?}");
        }
    }

    #[test]
    fn count_tokens_answer_is_exact() {
        assert_eq!(text(&encode_count_tokens(42)), r#"{"input_tokens":42}"#);
    }
}
