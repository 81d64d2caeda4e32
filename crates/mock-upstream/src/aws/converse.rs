//! Emulates Bedrock Converse: `POST /model/{modelId}/converse` and `/converse-stream`, after the
//! same authentication as InvokeModel (`bedrock.rs` routes here once the caller is known). The
//! body is checked as Converse's schema would, then the next scripted reply is rendered as the
//! Anthropic emulation renders it and translated into Converse's JSON or its event-stream
//! frames (`messageStart`, `contentBlockStart`/`Delta`/`Stop`, `messageStop`, `metadata`).

use axum::body::Body as HttpBody;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::bedrock::{Context, Operation, millis};
use super::errors::{AwsError, from_reply, json_error, member_name, respond};
use super::{AwsCall, eventstream};
use crate::Shared;
use crate::anthropic::{Rendered, echo_text};
use crate::faults::{self, Plan};
use crate::reply::{Block, Body, Usage, split_words};

/// The content block members Converse's union knows.
const BLOCKS: [&str; 9] = [
    "text",
    "image",
    "document",
    "video",
    "toolUse",
    "toolResult",
    "guardContent",
    "cachePoint",
    "reasoningContent",
];

/// Converse or ConverseStream with the next scripted reply.
pub(super) async fn route(shared: &Shared, call: &AwsCall<'_>, context: &Context) -> Response {
    let request = match check_body(call.body) {
        Ok(request) => request,
        Err(error) => return json_error(call, &error, &[]),
    };
    let reply = shared.next_reply();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut message = match reply.body {
        Body::Error(error) => {
            return json_error(call, &context.fill(from_reply(&error)), &reply.headers);
        }
        Body::Message(message) => message,
    };
    if message.echo {
        message.blocks.insert(0, Block::Text(split_words(&echo_text(&request))));
    }
    let stream = context.operation == Operation::ConverseStream;
    let faults = reply.faults;
    if let Some((_, error)) = faults.error_after.as_ref().filter(|_| !stream) {
        return json_error(call, &context.fill(from_reply(error)), &reply.headers);
    }
    let mut rendered = Rendered::new(call.seq, &request, message);
    for id in &mut rendered.tool_ids {
        *id = id.replace("toolu_mock_", "tooluse_mock_");
    }
    let usage = rendered.usage;
    if stream {
        let mut frames: Vec<Bytes> =
            rendered.event_values(false).iter().filter_map(stream_frame).collect();
        // The last Anthropic event (message_stop) became `metadata` with the usage.
        if let Some(last) = frames.last_mut() {
            let latency = millis(reply.delay);
            *last = event(
                "metadata",
                &json!({
                    "usage": usage_json(&usage),
                    "metrics": { "latencyMs": latency },
                }),
            );
        }
        let plan = Plan {
            hold: faults.hold_after,
            drop: faults.drop_after,
            error: faults.error_after.map(|(at, error)| {
                let error = context.fill(from_reply(&error));
                (at, eventstream::exception(&member_name(error.code()), error.message()))
            }),
            gap: faults.event_gap,
        };
        let body = faults::body(frames, plan);
        return respond(call, 200, "application/vnd.amazon.eventstream", &reply.headers, body);
    }
    let json = Bytes::from(answer(&rendered.json(), &usage, millis(reply.delay)).to_string());
    let body = if faults.drop_after.is_some() || faults.hold_after.is_some() {
        let half = json.len() / 2;
        let plan = Plan {
            hold: faults.hold_after.map(|(_, release)| (1, release)),
            drop: faults.drop_after.map(|_| 1),
            ..Plan::default()
        };
        faults::body(vec![json.slice(..half), json.slice(half..)], plan)
    } else {
        HttpBody::from(json)
    };
    respond(call, 200, "application/json", &reply.headers, body)
}

/// Converse's schema checks: `messages` present and non-empty, roles `user`/`assistant`,
/// content blocks each exactly one known member; no Anthropic Messages keys.
fn check_body(raw: &[u8]) -> Result<Map<String, Value>, AwsError> {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(raw) else {
        return Err(AwsError::validation("Malformed input request, please reformat your input."));
    };
    let invalid =
        |what: String| AwsError::validation(format!("1 validation error detected: {what}"));
    for key in ["max_tokens", "anthropic_version", "model", "stream", "tools", "tool_choice"] {
        if request.contains_key(key) {
            return Err(AwsError::validation(format!(
                "The request body has an unknown field: {key}. Use Converse's fields \
                 (inferenceConfig, toolConfig, additionalModelRequestFields)."
            )));
        }
    }
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return Err(invalid(
            "Value null at 'messages' failed to satisfy constraint: Member must not be null".into(),
        ));
    };
    if messages.is_empty() {
        return Err(AwsError::validation("A conversation must start with a user message."));
    }
    let mut previous = None;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        if !matches!(role, Some("user" | "assistant")) {
            return Err(invalid(format!(
                "Value at 'messages.{}.member.role' failed to satisfy constraint: Member must \
                 satisfy enum value set: [user, assistant]",
                i + 1
            )));
        }
        if previous == role {
            return Err(AwsError::validation(
                "A conversation must alternate between user and assistant roles. Make sure \
                 the conversation alternates between user and assistant roles and try again.",
            ));
        }
        previous = role;
        for block in m.get("content").and_then(Value::as_array).into_iter().flatten() {
            let members: Vec<&String> =
                block.as_object().into_iter().flat_map(|o| o.keys()).collect();
            if members.len() != 1 || !BLOCKS.contains(&members[0].as_str()) {
                return Err(AwsError::validation(format!(
                    "The content block {block} of message {i} is not a ContentBlock: it must \
                     have exactly one of {}",
                    BLOCKS.join(", ")
                )));
            }
        }
    }
    Ok(request)
}

/// The Anthropic message JSON of a rendered reply → Converse's response body.
fn answer(message: &Value, usage: &Usage, latency: u64) -> Value {
    let content: Vec<Value> =
        message["content"].as_array().into_iter().flatten().filter_map(block).collect();
    json!({
        "output": { "message": { "role": "assistant", "content": content } },
        "stopReason": message["stop_reason"],
        "usage": usage_json(usage),
        "metrics": { "latencyMs": latency },
    })
}

fn block(block: &Value) -> Option<Value> {
    Some(match block["type"].as_str()? {
        "text" => json!({ "text": block["text"] }),
        "tool_use" => json!({ "toolUse": {
            "toolUseId": block["id"], "name": block["name"], "input": block["input"],
        }}),
        "thinking" => json!({ "reasoningContent": { "reasoningText": {
            "text": block["thinking"], "signature": block["signature"],
        }}}),
        _ => return None,
    })
}

/// Converse's `TokenUsage`: `inputTokens` without the cached tokens, cache counts only when
/// the cache was used, `totalTokens` everything.
fn usage_json(usage: &Usage) -> Value {
    let total = usage.input_tokens
        + usage.output_tokens
        + usage.cache_read_input_tokens
        + usage.cache_creation_input_tokens;
    let mut out = json!({
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": total,
    });
    if usage.cache_read_input_tokens > 0 || usage.cache_creation_input_tokens > 0 {
        out["cacheReadInputTokens"] = json!(usage.cache_read_input_tokens);
        out["cacheWriteInputTokens"] = json!(usage.cache_creation_input_tokens);
    }
    let one_hour = usage.cache_creation_1h_input_tokens;
    if one_hour > 0 {
        // AWS lists the 1-hour writes first.
        out["cacheDetails"] = json!([
            {"ttl": "1h", "inputTokens": one_hour},
            {"ttl": "5m", "inputTokens": usage.cache_creation_input_tokens.saturating_sub(one_hour)},
        ]);
    }
    out
}

/// One Anthropic stream event → the ConverseStream frame it stands for, if any (Converse starts
/// text and reasoning blocks implicitly, with their first delta).
fn stream_frame(e: &Value) -> Option<Bytes> {
    let index = &e["index"];
    let p = |payload: Value| Some(payload);
    let (kind, payload) = match e["type"].as_str()? {
        "message_start" => ("messageStart", p(json!({ "role": "assistant" }))),
        "content_block_start" if e["content_block"]["type"] == "tool_use" => {
            let b = &e["content_block"];
            let start = json!({ "toolUse": { "toolUseId": b["id"], "name": b["name"] } });
            ("contentBlockStart", p(json!({ "contentBlockIndex": index, "start": start })))
        }
        "content_block_delta" => {
            let d = &e["delta"];
            let delta = match d["type"].as_str()? {
                "text_delta" => json!({ "text": d["text"] }),
                "input_json_delta" => json!({ "toolUse": { "input": d["partial_json"] } }),
                "thinking_delta" => json!({ "reasoningContent": { "text": d["thinking"] } }),
                "signature_delta" => json!({ "reasoningContent": { "signature": d["signature"] } }),
                _ => return None,
            };
            ("contentBlockDelta", p(json!({ "contentBlockIndex": index, "delta": delta })))
        }
        "content_block_stop" => ("contentBlockStop", p(json!({ "contentBlockIndex": index }))),
        "message_delta" => ("messageStop", p(json!({ "stopReason": e["delta"]["stop_reason"] }))),
        // Replaced by `metadata` with the usage by the caller.
        "message_stop" => ("metadata", p(json!({}))),
        _ => return None,
    };
    Some(event(kind, &payload?))
}

fn event(kind: &str, payload: &Value) -> Bytes {
    eventstream::frame(
        &[(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_like_converse() {
        assert!(check_body(br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#).is_ok());
        let e = check_body(
            br#"{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), "ValidationException");
        let e = check_body(br#"{"max_tokens":5,"messages":[]}"#).unwrap_err();
        assert!(e.message().contains("max_tokens"), "{}", e.message());
        let e = check_body(br#"{"system":[]}"#).unwrap_err();
        assert!(e.message().contains("'messages'"), "{}", e.message());
    }

    #[test]
    fn anthropic_events_become_converse_frames() {
        let tool = json!({"type": "content_block_start", "index": 1,
                          "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}});
        assert!(stream_frame(&tool).is_some());
        let text = json!({"type": "content_block_start", "index": 0,
                          "content_block": {"type": "text", "text": ""}});
        assert!(stream_frame(&text).is_none(), "text blocks start implicitly");
        let usage = Usage {
            input_tokens: 3,
            output_tokens: 2,
            cache_read_input_tokens: 5,
            ..Usage::default()
        };
        assert_eq!(
            usage_json(&usage),
            json!({"inputTokens": 3, "outputTokens": 2, "totalTokens": 10,
                   "cacheReadInputTokens": 5, "cacheWriteInputTokens": 0})
        );
    }
}
