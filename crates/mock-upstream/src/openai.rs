//! Emulates an OpenAI-compatible chat completions server (`POST /v1/chat/completions`, and
//! `POST /chat/completions` as some servers mount it): bearer-key and body checks, JSON
//! completions, SSE `data:` chunks ending with `data: [DONE]` (tool-call deltas, the usage
//! chunk of `stream_options.include_usage`), and OpenAI's error shape
//! `{"error":{"message","type","param","code"}}`. It renders the same scripted [`Reply`]s as
//! the other emulations and never decides which one to send.
//!
//! Scripted errors: `Reply::error(status, kind, message)` where `kind` is either one of
//! OpenAI's error codes (`context_length_exceeded`, `model_not_found`, `invalid_api_key`,
//! `rate_limit_exceeded`, `insufficient_quota`, `content_policy_violation`), which sets `code`
//! and the matching `type`, or any other string, which becomes `type` with a null `code`.
//!
//! [`Reply`]: crate::Reply

use axum::body::Body as HttpBody;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::anthropic::{echo_text, estimate_input};
use crate::faults::{self, Plan};
use crate::reply::{ApiError, Block, Body, Message, Usage, split_words};
use crate::{Call, Shared};

pub(crate) const JSON: &str = "application/json";
pub(crate) const SSE: &str = "text/event-stream; charset=utf-8";
/// A fixed `created`, so answers are deterministic.
const CREATED: u64 = 1_700_000_000;

/// Whether this emulation answers `path`.
pub(crate) fn owns(method: &str, path: &str) -> bool {
    method == "POST" && matches!(path, "/v1/chat/completions" | "/chat/completions")
}

/// Answers one recorded chat completions call.
pub(crate) async fn route(shared: &Shared, call: &Call) -> Response {
    let request = match check(shared, call) {
        Ok(request) => request,
        Err(error) => return error_response(call.seq, &error, &[]),
    };
    let reply = shared.next_reply();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut message = match reply.body {
        Body::Error(error) => return error_response(call.seq, &error, &reply.headers),
        Body::Message(message) => message,
    };
    if message.echo {
        message.blocks.insert(0, Block::Text(split_words(&echo_text(request))));
    }
    let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let faults = reply.faults;
    if !stream && let Some((_, error)) = &faults.error_after {
        return error_response(call.seq, error, &reply.headers);
    }
    let rendered = Rendered::new(call.seq, request, message);
    if stream {
        let include_usage = request
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let plan = Plan {
            hold: faults.hold_after,
            drop: faults.drop_after,
            error: faults.error_after.map(|(at, e)| (at, data(&error_body(&e)))),
            gap: faults.event_gap,
        };
        let body = faults::body(rendered.chunks(include_usage), plan);
        return respond(200, SSE, call.seq, &reply.headers, body);
    }
    let json = Bytes::from(rendered.json().to_string());
    let body = if faults.drop_after.is_some() || faults.hold_after.is_some() {
        let half = json.len() / 2;
        let events = vec![json.slice(..half), json.slice(half..)];
        let plan = Plan {
            hold: faults.hold_after.map(|(_, release)| (1, release)),
            drop: faults.drop_after.map(|_| 1),
            ..Plan::default()
        };
        faults::body(events, plan)
    } else {
        HttpBody::from(json)
    };
    respond(200, JSON, call.seq, &reply.headers, body)
}

/// The server's own checks: the bearer key (when the mock has one), then the body.
fn check<'a>(shared: &Shared, call: &'a Call) -> Result<&'a Map<String, Value>, ApiError> {
    let request = check_key_and_model(shared, call)?;
    match request.get("messages").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => Ok(request),
        Some(_) => Err(error(
            400,
            "invalid_request_error",
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
        )),
        None => Err(error(400, "invalid_request_error", "Missing required parameter: 'messages'.")),
    }
}

/// The bearer key (when the mock has one), a JSON object body and its `model`.
pub(crate) fn check_key_and_model<'a>(
    shared: &Shared,
    call: &'a Call,
) -> Result<&'a Map<String, Value>, ApiError> {
    let bearer = call
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|v| !v.is_empty());
    if let Some(expected) = shared.api_key.as_deref() {
        match bearer {
            None => {
                return Err(error(
                    401,
                    "invalid_request_error",
                    "You didn't provide an API key. You need to provide your API key in an \
                     Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                ));
            }
            Some(key) if key != expected => {
                let shown: String = key.chars().take(8).collect();
                return Err(error(
                    401,
                    "invalid_api_key",
                    &format!(
                        "Incorrect API key provided: {shown}****. You can find your API key at \
                         https://platform.openai.com/account/api-keys."
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let Some(request) = call.body.as_ref().and_then(Value::as_object) else {
        return Err(error(
            400,
            "invalid_request_error",
            "We could not parse the JSON body of your request.",
        ));
    };
    if !request.get("model").is_some_and(Value::is_string) {
        return Err(error(400, "invalid_request_error", "you must provide a model parameter"));
    }
    Ok(request)
}

/// A successful completion with everything the request and the call decide filled in.
struct Rendered {
    id: String,
    model: String,
    blocks: Vec<Block>,
    tool_ids: Vec<String>,
    finish_reason: String,
    usage: Usage,
}

impl Rendered {
    fn new(seq: u64, request: &Map<String, Value>, message: Message) -> Self {
        let tool_ids = (0..message.blocks.len()).map(|i| format!("call_mock_{seq:06}_{i}"));
        let calls_tool = message.blocks.iter().any(|b| matches!(b, Block::ToolUse { .. }));
        let finish_reason = match message.stop_reason.as_deref() {
            None if calls_tool => "tool_calls".to_owned(),
            None | Some("end_turn" | "stop_sequence") => "stop".to_owned(),
            Some("tool_use") => "tool_calls".to_owned(),
            Some("max_tokens") => "length".to_owned(),
            Some("refusal") => "content_filter".to_owned(),
            Some(other) => other.to_owned(),
        };
        let output: u64 = message.blocks.iter().map(estimate_output).sum();
        let usage = message.usage.unwrap_or_else(|| Usage {
            input_tokens: estimate_input(request),
            output_tokens: output.max(1),
            ..Usage::default()
        });
        let requested = request.get("model").and_then(Value::as_str).unwrap_or_default();
        Self {
            id: format!("chatcmpl-mock-{seq:06}"),
            model: message.model.unwrap_or_else(|| requested.to_owned()),
            tool_ids: tool_ids.collect(),
            finish_reason,
            usage,
            blocks: message.blocks,
        }
    }

    fn json(&self) -> Value {
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut calls = Vec::new();
        for (block, id) in self.blocks.iter().zip(&self.tool_ids) {
            match block {
                Block::Text(deltas) => text.push_str(&deltas.concat()),
                Block::Thinking { thinking, .. } => reasoning.push_str(thinking),
                Block::ToolUse { name, input } => calls.push(json!({
                    "id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()},
                })),
            }
        }
        let mut message = json!({
            "role": "assistant",
            "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) },
            "refusal": null,
        });
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls);
        }
        if !reasoning.is_empty() {
            message["reasoning_content"] = Value::String(reasoning);
        }
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": CREATED,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": null,
                         "finish_reason": self.finish_reason}],
            "usage": usage_json(&self.usage),
            "system_fingerprint": null,
        })
    }

    /// The SSE chunks, each its own frame, ending with `data: [DONE]`.
    fn chunks(&self, include_usage: bool) -> Vec<Bytes> {
        let chunk = |choices: Value, usage: Option<Value>| {
            let mut c = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": self.model,
                "system_fingerprint": null,
                "choices": choices,
            });
            if include_usage {
                c["usage"] = usage.unwrap_or(Value::Null);
            }
            data(&c)
        };
        let delta = |delta: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]);
        let mut out = vec![chunk(delta(json!({"role": "assistant", "content": ""})), None)];
        let mut tool_index = 0;
        for (block, id) in self.blocks.iter().zip(&self.tool_ids) {
            match block {
                Block::Text(deltas) => {
                    for t in deltas {
                        out.push(chunk(delta(json!({"content": t})), None));
                    }
                }
                Block::Thinking { thinking, .. } => {
                    for t in split_words(thinking) {
                        out.push(chunk(delta(json!({"reasoning_content": t})), None));
                    }
                }
                Block::ToolUse { name, input } => {
                    let first = json!({"tool_calls": [{"index": tool_index, "id": id,
                        "type": "function", "function": {"name": name, "arguments": ""}}]});
                    out.push(chunk(delta(first), None));
                    let args = input.to_string();
                    for part in thirds(&args) {
                        let more = json!({"tool_calls": [{"index": tool_index,
                            "function": {"arguments": part}}]});
                        out.push(chunk(delta(more), None));
                    }
                    tool_index += 1;
                }
            }
        }
        let finish = json!([{"index": 0, "delta": {}, "logprobs": null,
                             "finish_reason": self.finish_reason}]);
        out.push(chunk(finish, None));
        if include_usage {
            out.push(chunk(json!([]), Some(usage_json(&self.usage))));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }
}

fn usage_json(usage: &Usage) -> Value {
    let prompt =
        usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cache_read_input_tokens,
            "cache_write_tokens": usage.cache_creation_input_tokens,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

pub(crate) fn estimate_output(block: &Block) -> u64 {
    let len = match block {
        Block::Text(deltas) => deltas.iter().map(String::len).sum(),
        Block::ToolUse { input, .. } => input.to_string().len(),
        Block::Thinking { thinking, .. } => thinking.len(),
    };
    (len as u64).div_ceil(4)
}

/// Splits serialized JSON into up to three fragments, as argument deltas arrive.
pub(crate) fn thirds(text: &str) -> impl Iterator<Item = &str> {
    let cut = |n: usize| (n * text.len() / 3..=text.len()).find(|&i| text.is_char_boundary(i));
    let (a, b) = (cut(1).unwrap_or(text.len()), cut(2).unwrap_or(text.len()));
    [&text[..a], &text[a..b], &text[b..]].into_iter().filter(|part| !part.is_empty())
}

pub(crate) fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

pub(crate) fn error(status: u16, kind: &str, message: &str) -> ApiError {
    ApiError { status, kind: kind.to_owned(), message: message.to_owned() }
}

/// OpenAI's error body. A scripted `kind` that is one of OpenAI's codes fills `code` and the
/// matching `type`; anything else is the `type`.
pub(crate) fn error_body(error: &ApiError) -> Value {
    let (kind, code) = match error.kind.as_str() {
        code @ ("context_length_exceeded"
        | "model_not_found"
        | "invalid_api_key"
        | "content_policy_violation") => ("invalid_request_error", Some(code)),
        "rate_limit_exceeded" => ("requests", Some("rate_limit_exceeded")),
        "insufficient_quota" => ("insufficient_quota", Some("insufficient_quota")),
        other => (other, None),
    };
    json!({"error": {"message": error.message, "type": kind, "param": null, "code": code}})
}

pub(crate) fn error_response(seq: u64, error: &ApiError, headers: &[(String, String)]) -> Response {
    let body = error_body(error).to_string();
    respond(error.status, JSON, seq, headers, HttpBody::from(body))
}

/// A response with `x-request-id` and the reply's extra headers. A scripted status or header
/// HTTP cannot carry becomes a 500 naming it.
pub(crate) fn respond(
    status: u16,
    content_type: &'static str,
    seq: u64,
    extra: &[(String, String)],
    body: HttpBody,
) -> Response {
    let mut response = Response::new(body);
    let Ok(code) = StatusCode::from_u16(status) else {
        return mistake(&format!("status {status} is not a valid HTTP status"));
    };
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if content_type == SSE {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    if let Ok(id) = HeaderValue::try_from(format!("req_mock_{seq:06}")) {
        headers.insert("x-request-id", id);
    }
    for (name, value) in extra {
        match (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => return mistake(&format!("header {name:?}: {value:?} is not valid")),
        }
    }
    response
}

fn mistake(what: &str) -> Response {
    let body = error_body(&error(500, "server_error", &format!("mock-upstream: scripted {what}")));
    let mut response = Response::new(HttpBody::from(body.to_string()));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Map<String, Value> {
        let Value::Object(map) =
            json!({"model": "m", "messages": [{"role": "user", "content": "Say: hi"}]})
        else {
            unreachable!()
        };
        map
    }

    #[test]
    fn tool_calls_stream_as_deltas_with_a_usage_chunk_and_done() {
        let message = Message {
            blocks: vec![
                Block::Text(vec!["Hi".into()]),
                Block::ToolUse { name: "f".into(), input: json!({"a": 1}) },
            ],
            ..Message::default()
        };
        let r = Rendered::new(1, &request(), message);
        assert_eq!(r.finish_reason, "tool_calls");
        let chunks = r.chunks(true);
        let text: Vec<String> =
            chunks.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        assert_eq!(text.last().map(String::as_str), Some("data: [DONE]\n\n"));
        let usage: Value =
            serde_json::from_str(text[text.len() - 2].trim_start_matches("data: ").trim()).unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert!(usage["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
        let args: String = text
            .iter()
            .filter_map(|t| {
                serde_json::from_str::<Value>(t.trim_start_matches("data: ").trim()).ok()
            })
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(args, r#"{"a":1}"#);
    }

    #[test]
    fn openai_codes_fill_code_and_type() {
        let body = error_body(&error(400, "context_length_exceeded", "too long"));
        assert_eq!(body["error"]["code"], "context_length_exceeded");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        let body = error_body(&error(500, "server_error", "boom"));
        assert_eq!(body["error"]["code"], Value::Null);
    }
}
