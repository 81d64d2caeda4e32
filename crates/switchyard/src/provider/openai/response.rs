//! An OpenAI chat completion (JSON) → canonical [`ChatResponse`], and the wire pieces the
//! stream decoder shares: `finish_reason` → stop reason, usage, tool-call arguments.
//!
//! Reads only the first choice (the request never asks for more). Never logs content.

use serde::Deserialize;
use serde_json::Value;

use crate::canonical::{ChatResponse, ContentBlock, StopReason, Usage};
use crate::classify::{ErrorKind, UpstreamError};

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Option<Value>,
    refusal: Option<String>,
    /// vLLM's (and DeepSeek's) reasoning text.
    reasoning_content: Option<String>,
    /// Ollama's.
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: String,
    arguments: Option<Value>,
}

/// OpenAI usage; `prompt_tokens` counts every input token, cached ones included.
#[derive(Deserialize, Default, Clone, Copy)]
pub(super) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct PromptDetails {
    cached_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
}

impl WireUsage {
    /// In canonical terms: `input_tokens` excludes cache reads and writes.
    pub(super) fn canonical(self) -> Usage {
        let details = self.prompt_tokens_details.unwrap_or_default();
        let read = details.cached_tokens.unwrap_or(0);
        let write = details.cache_write_tokens.unwrap_or(0);
        Usage {
            input_tokens: self.prompt_tokens.saturating_sub(read).saturating_sub(write),
            output_tokens: self.completion_tokens,
            cache_read_input_tokens: read,
            cache_creation_input_tokens: write,
            cache_creation_1h_input_tokens: 0,
        }
    }
}

/// `finish_reason` → stop reason (LiteLLM's map, reversed). An unknown reason reads as an
/// ordinary end of turn.
pub(super) fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

/// Tool-call `arguments` (a JSON string) → the tool's input. Empty arguments are `{}`; a
/// string that is not JSON is kept as a string, so nothing the model wrote is lost.
pub(super) fn tool_input(arguments: Option<&Value>) -> Value {
    match arguments {
        None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(serde_json::Map::new()),
        Some(Value::String(s)) => {
            serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
        }
        Some(other) => other.clone(),
    }
}

pub(super) fn parse(bytes: &[u8]) -> Result<ChatResponse, UpstreamError> {
    let wire: WireResponse = serde_json::from_slice(bytes).map_err(|e| {
        UpstreamError::new(
            ErrorKind::UpstreamUnavailable,
            format!("the upstream's chat completion is unreadable: {e}"),
        )
    })?;
    let Some(choice) = wire.choices.into_iter().next() else {
        return Err(UpstreamError::new(
            ErrorKind::UpstreamUnavailable,
            "the upstream's chat completion has no choices",
        ));
    };
    let m = choice.message;
    let mut content = Vec::new();
    if let Some(thinking) = m.reasoning_content.or(m.reasoning).filter(|t| !t.is_empty()) {
        content.push(ContentBlock::Thinking { thinking, signature: None });
    }
    let text = match m.content {
        Some(Value::String(s)) => s,
        // Some servers answer with content parts.
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<String>()
        }
        _ => String::new(),
    };
    let refused = m.refusal.filter(|r| !r.is_empty());
    if !text.is_empty() {
        content.push(ContentBlock::text(text));
    }
    if let Some(refusal) = &refused {
        content.push(ContentBlock::text(refusal.clone()));
    }
    for (i, call) in m.tool_calls.into_iter().enumerate() {
        content.push(ContentBlock::ToolUse {
            id: call.id.unwrap_or_else(|| format!("call_{i}")),
            name: call.function.name,
            input: tool_input(call.function.arguments.as_ref()),
            cache_control: None,
        });
    }
    let stop_reason = match (&refused, choice.finish_reason.as_deref()) {
        (Some(_), _) => Some(StopReason::Refusal),
        (None, reason) => reason.map(stop_reason),
    };
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        content,
        stop_reason,
        stop_sequence: None,
        usage: wire.usage.unwrap_or_default().canonical(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_tool_calls_finish_reason_and_cached_usage() {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me check.",
                "tool_calls": [{"id": "call_a", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": ""}}]
            }}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129,
                      "prompt_tokens_details": {"cached_tokens": 100}}
        });
        let r = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.id, "chatcmpl-1");
        assert_eq!(r.model, "gpt-4o-2024");
        assert_eq!(r.stop_reason, Some(StopReason::ToolUse));
        assert_eq!(r.content.len(), 3);
        assert_eq!(r.content[0], ContentBlock::text("Let me check."));
        let ContentBlock::ToolUse { input, .. } = &r.content[1] else { panic!("{:?}", r.content) };
        assert_eq!(input, &json!({"city": "Paris"}));
        let ContentBlock::ToolUse { input, .. } = &r.content[2] else { panic!("{:?}", r.content) };
        assert_eq!(input, &json!({}));
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 20,
                output_tokens: 9,
                cache_read_input_tokens: 100,
                cache_creation_input_tokens: 0,
                cache_creation_1h_input_tokens: 0,
            }
        );
    }

    #[test]
    fn finish_reasons_map_to_stop_reasons() {
        assert_eq!(stop_reason("stop"), StopReason::EndTurn);
        assert_eq!(stop_reason("length"), StopReason::MaxTokens);
        assert_eq!(stop_reason("content_filter"), StopReason::ContentFilter);
        assert_eq!(stop_reason("function_call"), StopReason::ToolUse);
    }

    #[test]
    fn unreadable_or_empty_answers_are_upstream_failures() {
        assert_eq!(parse(b"<html>").unwrap_err().kind, ErrorKind::UpstreamUnavailable);
        let empty = json!({"id": "x", "choices": []}).to_string();
        assert!(parse(empty.as_bytes()).unwrap_err().message.contains("no choices"));
    }
}
