//! Emulates OpenAI's Responses API (`POST /v1/responses`, and `/responses`): the same key
//! check and error shape as the chat completions emulation, a Response object for JSON
//! requests, and for `stream: true` the SSE events (`event:` + `data:` with `type` and
//! `sequence_number`) from `response.created` to `response.completed`. It renders the same
//! scripted [`Reply`]s and never decides which one to send.
//!
//! [`Reply`]: crate::Reply

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::faults::{self, Plan};
use crate::openai::{
    JSON, SSE, check_key_and_model, error, error_body, error_response, estimate_output, respond,
    thirds,
};
use crate::reply::{Block, Body, Message, Usage, split_words};
use crate::{Call, Shared};

/// A fixed `created_at`, so answers are deterministic.
const CREATED: u64 = 1_700_000_000;

pub(crate) fn owns(method: &str, path: &str) -> bool {
    method == "POST" && matches!(path, "/v1/responses" | "/responses")
}

pub(crate) async fn route(shared: &Shared, call: &Call) -> axum::response::Response {
    let request = match check_key_and_model(shared, call).and_then(|r| {
        if r.get("input").is_some() {
            Ok(r)
        } else {
            Err(error(400, "invalid_request_error", "Missing required parameter: 'input'."))
        }
    }) {
        Ok(request) => request,
        Err(err) => return error_response(call.seq, &err, &[]),
    };
    let reply = shared.next_reply();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut message = match reply.body {
        Body::Error(err) => return error_response(call.seq, &err, &reply.headers),
        Body::Message(message) => message,
    };
    if message.echo {
        message.blocks.insert(0, Block::Text(split_words(&echo_text(request))));
    }
    let faults = reply.faults;
    let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !stream {
        if let Some((_, err)) = &faults.error_after {
            return error_response(call.seq, err, &reply.headers);
        }
        let body = rendered(call.seq, request, &message).to_string();
        return respond(200, JSON, call.seq, &reply.headers, axum::body::Body::from(body));
    }
    let plan = Plan {
        hold: faults.hold_after,
        drop: faults.drop_after,
        error: faults.error_after.map(|(at, e)| {
            let inner = error_body(&e)["error"].clone();
            let event = json!({"type": "error", "code": inner["code"].as_str().unwrap_or(inner["type"].as_str().unwrap_or("")),
                               "message": inner["message"], "param": null, "sequence_number": at});
            (at, Bytes::from(format!("event: error\ndata: {event}\n\n")))
        }),
        gap: faults.event_gap,
    };
    let body = faults::body(events(call.seq, request, &message), plan);
    respond(200, SSE, call.seq, &reply.headers, body)
}

/// The text after `Say:` in the last user input, else `WORKS`.
fn echo_text(request: &Map<String, Value>) -> String {
    let text = match request.get("input") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .rev()
            .find(|i| i.get("role").and_then(Value::as_str) == Some("user"))
            .map(|i| match i.get("content") {
                Some(Value::String(t)) => t.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => String::new(),
            })
            .unwrap_or_default(),
        _ => String::new(),
    };
    text.split_once("Say:").map_or_else(|| "WORKS".to_owned(), |(_, rest)| rest.trim().to_owned())
}

struct Item {
    value: Value,
    /// The deltas it streams in: (event type, delta).
    deltas: Vec<(&'static str, String)>,
}

fn items(seq: u64, message: &Message) -> Vec<Item> {
    message
        .blocks
        .iter()
        .enumerate()
        .map(|(i, block)| match block {
            Block::Text(deltas) => Item {
                value: json!({"type": "message", "id": format!("msg_mock_{seq:06}_{i}"),
                    "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": deltas.concat(), "annotations": [], "logprobs": []}]}),
                deltas: deltas.iter().map(|d| ("response.output_text.delta", d.clone())).collect(),
            },
            Block::ToolUse { name, input } => {
                let args = input.to_string();
                Item {
                    value: json!({"type": "function_call", "id": format!("fc_mock_{seq:06}_{i}"),
                        "call_id": format!("call_mock_{seq:06}_{i}"), "name": name,
                        "arguments": args, "status": "completed"}),
                    deltas: thirds(&args)
                        .map(|p| ("response.function_call_arguments.delta", p.to_owned()))
                        .collect(),
                }
            }
            Block::Thinking { thinking, signature } => Item {
                value: json!({"type": "reasoning", "id": format!("rs_mock_{seq:06}_{i}"),
                    "summary": [{"type": "summary_text", "text": thinking}],
                    "encrypted_content": signature}),
                deltas: split_words(thinking)
                    .into_iter()
                    .map(|d| ("response.reasoning_summary_text.delta", d))
                    .collect(),
            },
        })
        .collect()
}

fn usage(request: &Map<String, Value>, message: &Message) -> Usage {
    message.usage.unwrap_or_else(|| Usage {
        input_tokens: (json!([
            request.get("instructions"),
            request.get("input"),
            request.get("tools")
        ])
        .to_string()
        .len() as u64)
            .div_ceil(4)
            .max(1),
        output_tokens: message.blocks.iter().map(estimate_output).sum::<u64>().max(1),
        ..Usage::default()
    })
}

fn rendered(seq: u64, request: &Map<String, Value>, message: &Message) -> Value {
    let output: Vec<Value> = items(seq, message).into_iter().map(|i| i.value).collect();
    response(seq, request, message, "completed", output, Some(usage(request, message)))
}

fn response(
    seq: u64,
    request: &Map<String, Value>,
    message: &Message,
    status: &str,
    output: Vec<Value>,
    usage: Option<Usage>,
) -> Value {
    let requested = request.get("model").and_then(Value::as_str).unwrap_or_default();
    let status = match (status, message.stop_reason.as_deref()) {
        ("completed", Some("max_tokens")) => "incomplete",
        (s, _) => s,
    };
    json!({
        "id": format!("resp_mock_{seq:06}"),
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "error": null,
        "incomplete_details": if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "model": message.model.clone().unwrap_or_else(|| requested.to_owned()),
        "output": output,
        "parallel_tool_calls": true,
        "tool_choice": request.get("tool_choice").cloned().unwrap_or(json!("auto")),
        "tools": request.get("tools").cloned().unwrap_or(json!([])),
        "usage": usage.map(|u| {
            let input = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
            json!({"input_tokens": input,
                   "input_tokens_details": {"cached_tokens": u.cache_read_input_tokens},
                   "output_tokens": u.output_tokens,
                   "output_tokens_details": {"reasoning_tokens": 0},
                   "total_tokens": input + u.output_tokens})
        }),
    })
}

/// The SSE events of a streamed answer, each its own frame.
fn events(seq: u64, request: &Map<String, Value>, message: &Message) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut sequence = 0u64;
    let mut emit = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        out.push(Bytes::from(format!("event: {kind}\ndata: {data}\n\n")));
    };
    let started = response(seq, request, message, "in_progress", Vec::new(), None);
    emit("response.created", json!({"response": started}));
    emit("response.in_progress", json!({"response": started}));
    let items = items(seq, message);
    for (index, item) in items.iter().enumerate() {
        let id = item.value["id"].clone();
        let mut added = item.value.clone();
        match added["type"].as_str() {
            Some("message") => added["content"] = json!([]),
            Some("function_call") => added["arguments"] = json!(""),
            Some("reasoning") => added["summary"] = json!([]),
            _ => {}
        }
        added["status"] = json!("in_progress");
        emit("response.output_item.added", json!({"output_index": index, "item": added}));
        for (kind, delta) in &item.deltas {
            emit(
                kind,
                json!({"item_id": id, "output_index": index, "content_index": 0,
                              "summary_index": 0, "delta": delta}),
            );
        }
        emit("response.output_item.done", json!({"output_index": index, "item": item.value}));
    }
    let output = items.into_iter().map(|i| i.value).collect();
    let done = response(seq, request, message, "completed", output, Some(usage(request, message)));
    let kind =
        if done["status"] == "incomplete" { "response.incomplete" } else { "response.completed" };
    emit(kind, json!({"response": done}));
    out
}
