//! Encodes a canonical [`ChatResponse`] as an OpenAI `chat.completion` object, and the
//! finish-reason and usage mappings the stream encoder shares.
//!
//! Serializes borrowed views of the response straight to bytes: never builds an
//! intermediate `serde_json::Value` on this path.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Serialize;

use super::{json_bytes, unix_now};
use crate::canonical::{ChatResponse, ContentBlock, StopReason, Usage};

/// The complete `chat.completion` JSON for one answer.
pub fn encode_response(resp: &ChatResponse) -> Bytes {
    encode_response_at(resp, unix_now())
}

pub(super) fn encode_response_at(resp: &ChatResponse, created: u64) -> Bytes {
    let mut text: Option<Cow<'_, str>> = None;
    let mut reasoning: Option<Cow<'_, str>> = None;
    let mut tool_calls = Vec::new();
    for block in &resp.content {
        match block {
            ContentBlock::Text { text: t, .. } => append(&mut text, t),
            ContentBlock::Thinking { thinking, .. } => append(&mut reasoning, thinking),
            ContentBlock::ToolUse { id, name, input, .. } => tool_calls.push(WireToolCall {
                id,
                kind: "function",
                function: WireFunction { name, arguments: input.to_string() },
            }),
            ContentBlock::Image { .. }
            | ContentBlock::ToolResult { .. }
            | ContentBlock::RedactedThinking { .. }
            | ContentBlock::Other(_) => {}
        }
    }
    // `null` only when the answer is tool calls alone: clients read `content` as a string.
    let content = match text {
        Some(t) => Some(t),
        None if !tool_calls.is_empty() => None,
        None => Some(Cow::Borrowed("")),
    };
    let completion = WireCompletion {
        id: &resp.id,
        object: "chat.completion",
        created,
        model: &resp.model,
        choices: [WireChoice {
            index: 0,
            message: WireMessage {
                role: "assistant",
                content,
                reasoning_content: reasoning,
                tool_calls,
            },
            logprobs: (),
            finish_reason: finish_reason(resp.stop_reason),
        }],
        usage: WireUsage::from(&resp.usage),
    };
    json_bytes(&completion)
}

fn append<'a>(acc: &mut Option<Cow<'a, str>>, s: &'a str) {
    match acc {
        None => *acc = Some(Cow::Borrowed(s)),
        Some(joined) => joined.to_mut().push_str(s),
    }
}

/// Anthropic's stop reasons in OpenAI's vocabulary (LiteLLM's mapping).
pub(super) fn finish_reason(reason: Option<StopReason>) -> &'static str {
    match reason {
        None | Some(StopReason::EndTurn | StopReason::StopSequence | StopReason::PauseTurn) => {
            "stop"
        }
        Some(StopReason::MaxTokens | StopReason::ModelContextWindowExceeded) => "length",
        Some(StopReason::ToolUse) => "tool_calls",
        Some(StopReason::Refusal | StopReason::ContentFilter) => "content_filter",
    }
}

#[derive(Serialize)]
struct WireCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [WireChoice<'a>; 1],
    usage: WireUsage,
}

#[derive(Serialize)]
struct WireChoice<'a> {
    index: u32,
    message: WireMessage<'a>,
    logprobs: (),
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Option<Cow<'a, str>>,
    /// LiteLLM's field for thinking text.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    arguments: String,
}

/// OpenAI usage: `prompt_tokens` counts every input token, cached or not. The two cache
/// counters at the top level are LiteLLM's, present only when non-zero.
#[derive(Serialize)]
pub(super) struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: WirePromptDetails,
    #[serde(skip_serializing_if = "is_zero")]
    cache_creation_input_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    cache_read_input_tokens: u64,
}

#[derive(Serialize)]
struct WirePromptDetails {
    cached_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<&Usage> for WireUsage {
    fn from(u: &Usage) -> Self {
        let prompt = u.total_input_tokens();
        Self {
            prompt_tokens: prompt,
            completion_tokens: u.output_tokens,
            total_tokens: prompt + u.output_tokens,
            prompt_tokens_details: WirePromptDetails { cached_tokens: u.cache_read_input_tokens },
            cache_creation_input_tokens: u.cache_creation_input_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn response(content: Vec<ContentBlock>, stop: StopReason, usage: Usage) -> ChatResponse {
        ChatResponse {
            id: "msg_01".into(),
            model: "claude-sonnet-4-6".into(),
            content,
            stop_reason: Some(stop),
            stop_sequence: None,
            usage,
        }
    }

    fn text(bytes: &Bytes) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn text_answer_is_exact_chat_completion() {
        let resp = response(
            vec![ContentBlock::text("WO"), ContentBlock::text("RKS")],
            StopReason::EndTurn,
            Usage { input_tokens: 12, output_tokens: 3, ..Usage::default() },
        );
        let out = encode_response_at(&resp, 1_700_000_000);
        assert_eq!(
            text(&out),
            r#"{"id":"msg_01","object":"chat.completion","created":1700000000,"model":"claude-sonnet-4-6","choices":[{"index":0,"message":{"role":"assistant","content":"WORKS"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0}}}"#
        );
    }

    #[test]
    fn tool_call_answer_has_null_content_and_cached_usage() {
        let resp = response(
            vec![ContentBlock::ToolUse {
                id: "toolu_1".into(),
                name: "get_weather".into(),
                input: json!({"city": "Paris"}),
                cache_control: None,
            }],
            StopReason::ToolUse,
            Usage {
                input_tokens: 10,
                output_tokens: 20,
                cache_read_input_tokens: 100,
                cache_creation_input_tokens: 5,
                cache_creation_1h_input_tokens: 0,
            },
        );
        let out = encode_response_at(&resp, 1);
        assert_eq!(
            text(&out),
            concat!(
                r#"{"id":"msg_01","object":"chat.completion","created":1,"model":"claude-sonnet-4-6","#,
                r#""choices":[{"index":0,"message":{"role":"assistant","content":null,"#,
                r#""tool_calls":[{"id":"toolu_1","type":"function","#,
                r#""function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"#,
                r#""logprobs":null,"finish_reason":"tool_calls"}],"#,
                r#""usage":{"prompt_tokens":115,"completion_tokens":20,"total_tokens":135,"#,
                r#""prompt_tokens_details":{"cached_tokens":100},"#,
                r#""cache_creation_input_tokens":5,"cache_read_input_tokens":100}}"#
            )
        );
    }

    #[test]
    fn text_with_tool_calls_keeps_text_and_thinking_goes_to_reasoning_content() {
        let resp = response(
            vec![
                ContentBlock::Thinking { thinking: "hmm".into(), signature: Some("s".into()) },
                ContentBlock::text("Let me check."),
                ContentBlock::ToolUse {
                    id: "t".into(),
                    name: "f".into(),
                    input: json!({}),
                    cache_control: None,
                },
            ],
            StopReason::ToolUse,
            Usage::default(),
        );
        let v: serde_json::Value = serde_json::from_slice(&encode_response(&resp)).unwrap();
        let message = &v["choices"][0]["message"];
        assert_eq!(message["content"], "Let me check.");
        assert_eq!(message["reasoning_content"], "hmm");
        assert_eq!(message["tool_calls"][0]["function"]["arguments"], "{}");
        assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    }

    #[test]
    fn empty_answer_has_empty_string_content() {
        let resp = response(vec![], StopReason::MaxTokens, Usage::default());
        let v: serde_json::Value = serde_json::from_slice(&encode_response(&resp)).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
    }

    #[test]
    fn finish_reasons_follow_litellm() {
        let cases = [
            (None, "stop"),
            (Some(StopReason::EndTurn), "stop"),
            (Some(StopReason::StopSequence), "stop"),
            (Some(StopReason::PauseTurn), "stop"),
            (Some(StopReason::MaxTokens), "length"),
            (Some(StopReason::ModelContextWindowExceeded), "length"),
            (Some(StopReason::ToolUse), "tool_calls"),
            (Some(StopReason::Refusal), "content_filter"),
            (Some(StopReason::ContentFilter), "content_filter"),
        ];
        for (reason, expected) in cases {
            assert_eq!(finish_reason(reason), expected, "{reason:?}");
        }
    }
}
