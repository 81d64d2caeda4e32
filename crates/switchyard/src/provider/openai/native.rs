//! An upstream that serves OpenAI's Responses API itself: a Responses request is forwarded
//! to `{api_base}/responses` as the client wrote it (model replaced, nothing stored there),
//! and its answer — JSON or SSE events — read back into canonical types, so routing,
//! fallbacks, cost and the ledger work as for any answer. Items the canonical types do not
//! model (hosted tools' calls: `web_search_call`, `file_search_call` …) travel as
//! [`ContentBlock::Other`], verbatim.
//!
//! Which deployments: as LiteLLM decides, `openai/` on OpenAI's own API, and any
//! OpenAI-compatible deployment whose `model_info.supported_endpoints` lists `/v1/responses`.

use std::collections::VecDeque;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::Site;
use super::stream::Decode;
use crate::canonical::{BlockDelta, ChatResponse, ContentBlock, StopReason, StreamEvent, Usage};
use crate::classify::{ErrorKind, UpstreamError, openai_stream_error};
use crate::config::{Deployment, OpenAiFlavor, ProviderKind};

/// Whether `deployment` is called through its Responses API for `/v1/responses` requests.
pub fn serves_responses(deployment: &Deployment) -> bool {
    let ProviderKind::OpenAi(flavor) = deployment.provider else {
        return false;
    };
    let listed =
        deployment.model_info.get("supported_endpoints").and_then(Value::as_array).is_some_and(
            |list| list.iter().any(|e| matches!(e.as_str(), Some("/v1/responses" | "/responses"))),
        );
    listed || (flavor == OpenAiFlavor::OpenAi && deployment.api_base.is_none())
}

/// The body to forward: the client's, for `model`, streamed or not, never stored upstream
/// (the gateway keeps conversations itself; `previous_response_id` was resolved into
/// `input`).
pub(super) fn body(raw: &Map<String, Value>, model: &str, stream: bool) -> Bytes {
    let mut body = raw.clone();
    body.insert("model".into(), Value::from(model));
    body.insert("stream".into(), Value::Bool(stream));
    body.insert("store".into(), Value::Bool(false));
    body.remove("previous_response_id");
    Bytes::from(Value::Object(body).to_string())
}

fn unreadable(message: String) -> UpstreamError {
    UpstreamError::new(ErrorKind::UpstreamUnavailable, message)
}

/// A Responses JSON answer → the canonical answer.
pub(super) fn parse(bytes: &[u8]) -> Result<ChatResponse, UpstreamError> {
    let response: Value = serde_json::from_slice(bytes)
        .map_err(|e| unreadable(format!("the Responses answer is not JSON: {e}")))?;
    let mut content = Vec::new();
    for item in response["output"].as_array().into_iter().flatten() {
        if let Some(block) = block_of(item) {
            content.push(block);
        }
    }
    let stop = stop_of(&response, &content);
    Ok(ChatResponse {
        id: response["id"].as_str().unwrap_or_default().to_owned(),
        model: response["model"].as_str().unwrap_or_default().to_owned(),
        content,
        stop_reason: Some(stop),
        stop_sequence: None,
        usage: usage_of(&response["usage"]),
    })
}

/// One output item as a canonical block.
fn block_of(item: &Value) -> Option<ContentBlock> {
    Some(match item["type"].as_str()? {
        "message" => {
            let text: String = item["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|part| part["text"].as_str().or(part["refusal"].as_str()))
                .collect();
            ContentBlock::text(text)
        }
        "function_call" => ContentBlock::ToolUse {
            id: item["call_id"].as_str().unwrap_or_default().to_owned(),
            name: item["name"].as_str().unwrap_or_default().to_owned(),
            input: arguments(item["arguments"].as_str().unwrap_or_default()),
            cache_control: None,
        },
        "reasoning" => {
            let text = summary_of(item);
            let signature = item["encrypted_content"].as_str().map(str::to_owned);
            match (text.is_empty(), signature) {
                (true, Some(data)) => ContentBlock::RedactedThinking { data },
                (_, signature) => ContentBlock::Thinking { thinking: text, signature },
            }
        }
        _ => ContentBlock::Other(item.as_object()?.clone()),
    })
}

fn summary_of(item: &Value) -> String {
    item["summary"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|part| part["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn arguments(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

fn stop_of(response: &Value, content: &[ContentBlock]) -> StopReason {
    if response["status"] == "incomplete" {
        return match response["incomplete_details"]["reason"].as_str() {
            Some("content_filter") => StopReason::ContentFilter,
            _ => StopReason::MaxTokens,
        };
    }
    if content.iter().any(|b| matches!(b, ContentBlock::ToolUse { .. })) {
        StopReason::ToolUse
    } else {
        StopReason::EndTurn
    }
}

fn usage_of(usage: &Value) -> Usage {
    let total = usage["input_tokens"].as_u64().unwrap_or(0);
    let cached = usage["input_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0).min(total);
    Usage {
        input_tokens: total - cached,
        output_tokens: usage["output_tokens"].as_u64().unwrap_or(0),
        cache_read_input_tokens: cached,
        ..Usage::default()
    }
}

/// Responses SSE events → canonical events; a block's index is its item's `output_index`.
#[derive(Default)]
pub(super) struct NativeDecoder {
    out: VecDeque<StreamEvent>,
    /// Output indexes of the blocks opened and not yet stopped.
    open: Vec<usize>,
    tool_use: bool,
    answered: bool,
    finished: bool,
}

impl Decode for NativeDecoder {
    fn decode(&mut self, data: &str, site: &Site) -> Result<(), UpstreamError> {
        let data = data.trim();
        if data.is_empty() || data == "[DONE]" || self.finished {
            return Ok(());
        }
        let event: Value = serde_json::from_str(data)
            .map_err(|e| unreadable(format!("a Responses event is not JSON: {e}")))?;
        let index = event["output_index"].as_u64().map_or(0, |i| i as usize);
        match event["type"].as_str().unwrap_or_default() {
            "response.created" => {
                let response = &event["response"];
                self.out.push_back(StreamEvent::Start {
                    id: response["id"].as_str().unwrap_or_default().to_owned(),
                    model: response["model"].as_str().unwrap_or_default().to_owned(),
                    usage: Usage::default(),
                });
            }
            "response.output_item.added" => {
                let item = &event["item"];
                let block = match item["type"].as_str() {
                    Some("message") => ContentBlock::text(""),
                    Some("function_call") => {
                        self.tool_use = true;
                        ContentBlock::ToolUse {
                            id: item["call_id"].as_str().unwrap_or_default().to_owned(),
                            name: item["name"].as_str().unwrap_or_default().to_owned(),
                            input: json!({}),
                            cache_control: None,
                        }
                    }
                    Some("reasoning") => {
                        ContentBlock::Thinking { thinking: String::new(), signature: None }
                    }
                    // Other items arrive whole with their `done` event.
                    _ => return Ok(()),
                };
                self.open.push(index);
                self.out.push_back(StreamEvent::BlockStart { index, block });
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                self.delta(index, BlockDelta::Text, &event);
            }
            "response.function_call_arguments.delta" => {
                self.delta(index, BlockDelta::InputJson, &event);
            }
            "response.reasoning_summary_text.delta" => {
                self.delta(index, BlockDelta::Thinking, &event);
            }
            "response.output_item.done" => {
                let item = &event["item"];
                if let Some(at) = self.open.iter().position(|&i| i == index) {
                    self.open.remove(at);
                    if let Some(signature) = item["encrypted_content"].as_str() {
                        let delta = BlockDelta::Signature(signature.to_owned());
                        self.out.push_back(StreamEvent::BlockDelta { index, delta });
                    }
                } else if let Some(block) = block_of(item) {
                    self.out.push_back(StreamEvent::BlockStart { index, block });
                } else {
                    return Ok(());
                }
                self.out.push_back(StreamEvent::BlockStop { index });
            }
            kind @ ("response.completed" | "response.incomplete") => {
                let response = &event["response"];
                let stop = match kind {
                    "response.incomplete" => stop_of(response, &[]),
                    _ if self.tool_use => StopReason::ToolUse,
                    _ => StopReason::EndTurn,
                };
                self.out.push_back(StreamEvent::Delta {
                    stop_reason: Some(stop),
                    stop_sequence: None,
                    usage: usage_of(&response["usage"]),
                });
                self.out.push_back(StreamEvent::Stop);
                self.answered = true;
                self.finished = true;
            }
            "response.failed" => {
                let error = json!({"error": event["response"]["error"]}).to_string();
                return Err(openai_stream_error(&site.deployment, &error));
            }
            "error" => {
                let error = json!({"error": {"code": event["code"], "message": event["message"],
                                             "type": event["code"]}});
                return Err(openai_stream_error(&site.deployment, &error.to_string()));
            }
            _ => {}
        }
        Ok(())
    }

    fn pop(&mut self) -> Option<StreamEvent> {
        self.out.pop_front()
    }

    fn finished(&self) -> bool {
        self.finished
    }

    fn answered(&self) -> bool {
        self.answered
    }

    fn finish(&mut self) {
        self.finished = true;
    }
}

impl NativeDecoder {
    fn delta(&mut self, index: usize, make: fn(String) -> BlockDelta, event: &Value) {
        if let Some(text) = event["delta"].as_str().filter(|t| !t.is_empty()) {
            self.out.push_back(StreamEvent::BlockDelta { index, delta: make(text.to_owned()) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_with_a_hosted_tool_call_keeps_that_item_verbatim() {
        let answer = json!({
            "id": "resp_1", "model": "gpt-4.1", "status": "completed",
            "output": [
                {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "x"}},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "Found.", "annotations": []}]}
            ],
            "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
                      "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 13}
        });
        let parsed = parse(answer.to_string().as_bytes()).unwrap();
        assert_eq!(
            parsed.content[0],
            ContentBlock::Other(answer["output"][0].as_object().unwrap().clone())
        );
        assert_eq!(parsed.content[1], ContentBlock::text("Found."));
        assert_eq!(parsed.stop_reason, Some(StopReason::EndTurn));
        assert_eq!((parsed.usage.input_tokens, parsed.usage.cache_read_input_tokens), (6, 4));
    }

    #[test]
    fn the_forwarded_body_is_the_clients_for_the_deployments_model() {
        let raw = json!({"model": "alias", "input": "hi", "previous_response_id": "resp_x",
                         "tools": [{"type": "web_search"}], "metadata": {"a": "b"}});
        let sent: Value =
            serde_json::from_slice(&body(raw.as_object().unwrap(), "gpt-4.1", true)).unwrap();
        assert_eq!(
            sent,
            json!({"model": "gpt-4.1", "input": "hi", "tools": [{"type": "web_search"}],
                   "metadata": {"a": "b"}, "stream": true, "store": false})
        );
    }
}
