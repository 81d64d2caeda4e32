//! Emulates the Anthropic Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`):
//! its cheap request checks, JSON and SSE bodies, error shapes and headers. It renders replies
//! and never decides which one to send (that is the script's job, in `lib.rs`).

use axum::body::Body as HttpBody;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::faults::{self, Plan};
use crate::reply::{ApiError, Block, Body, Message, Usage, split_words};
use crate::{Call, Shared};

pub(crate) const JSON: &str = "application/json";
const SSE: &str = "text/event-stream; charset=utf-8";

/// Answers one recorded call.
pub(crate) async fn route(shared: &Shared, method: &str, path: &str, call: &Call) -> Response {
    match (method, path) {
        ("POST", "/v1/messages") => messages(shared, call).await,
        ("POST", "/v1/messages/count_tokens") => count_tokens(shared, call),
        _ => error_response(call, &api_error(404, "not_found_error", "Not Found"), &[]),
    }
}

/// The 413 the API (in fact Cloudflare in front of it) sends for bodies over 32 MB.
pub(crate) fn too_large(call: &Call) -> Response {
    let message = "Request exceeds the maximum allowed number of bytes.";
    error_response(call, &api_error(413, "request_too_large", message), &[])
}

async fn messages(shared: &Shared, call: &Call) -> Response {
    let request = match check(shared, call, true) {
        Ok(request) => request,
        Err(error) => return error_response(call, &error, &[]),
    };
    let reply = shared.next_reply();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let message = match reply.body {
        Body::Error(error) => return error_response(call, &error, &reply.headers),
        Body::Message(mut message) => {
            if message.echo {
                message.blocks.insert(0, Block::Text(split_words(&echo_text(request))));
            }
            message
        }
    };
    let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let faults = reply.faults;
    if !stream && let Some((_, error)) = &faults.error_after {
        return error_response(call, error, &reply.headers);
    }
    let rendered = Rendered::new(call.seq, request, message);
    if stream {
        let plan = Plan {
            hold: faults.hold_after,
            drop: faults.drop_after,
            error: faults.error_after.map(|(at, e)| (at, sse("error", &error_body(&e, None)))),
            gap: faults.event_gap,
        };
        let body = faults::body(rendered.events(faults.ping), plan);
        return respond(200, SSE, call.seq, &reply.headers, body);
    }
    let json = Bytes::from(rendered.json().to_string());
    let body = if faults.drop_after.is_some() || faults.hold_after.is_some() {
        // Cut the body in two so a hold or a drop happens mid-body.
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

fn count_tokens(shared: &Shared, call: &Call) -> Response {
    match check(shared, call, false) {
        Ok(request) => {
            let body = json!({ "input_tokens": estimate_input(request) }).to_string();
            respond(200, JSON, call.seq, &[], HttpBody::from(body))
        }
        Err(error) => error_response(call, &error, &[]),
    }
}

/// The API's own checks, in its order: authentication, version header, then the body.
fn check<'a>(
    shared: &Shared,
    call: &'a Call,
    needs_max_tokens: bool,
) -> Result<&'a Map<String, Value>, ApiError> {
    authenticate(shared, call)?;
    let Some(request) = call.body.as_ref().and_then(Value::as_object) else {
        return Err(invalid("There was an error parsing the body."));
    };
    check_params(request, needs_max_tokens)
}

/// The API's checks before it looks at a body: the key, then the version header.
pub(crate) fn authenticate(shared: &Shared, call: &Call) -> Result<(), ApiError> {
    let header =
        |name: &str| call.headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    let bearer = header("authorization").and_then(|v| v.strip_prefix("Bearer "));
    let Some(presented) = header("x-api-key").or(bearer) else {
        return Err(api_error(401, "authentication_error", "x-api-key header is required"));
    };
    if shared.api_key.as_deref().is_some_and(|key| key != presented) {
        return Err(api_error(401, "authentication_error", "invalid x-api-key"));
    }
    if header("anthropic-version").is_none() {
        return Err(invalid("anthropic-version: header is required"));
    }
    Ok(())
}

/// The checks on a Messages body alone: what the Batches API applies to each request's
/// `params` when it processes it.
pub(crate) fn check_params(
    request: &Map<String, Value>,
    needs_max_tokens: bool,
) -> Result<&Map<String, Value>, ApiError> {
    match request.get("model") {
        None => return Err(invalid("model: Field required")),
        Some(model) if !model.is_string() => {
            return Err(invalid("model: Input should be a valid string"));
        }
        Some(_) => {}
    }
    if needs_max_tokens {
        match request.get("max_tokens") {
            None => return Err(invalid("max_tokens: Field required")),
            Some(max) if !max.is_u64() => {
                return Err(invalid("max_tokens: Input should be a valid integer"));
            }
            Some(_) => {}
        }
    }
    match request.get("messages").map(Value::as_array) {
        None => Err(invalid("messages: Field required")),
        Some(None) => Err(invalid("messages: Input should be a valid list")),
        Some(Some(list)) if list.is_empty() => {
            Err(invalid("messages: at least one message is required"))
        }
        Some(Some(list)) => {
            // The schema's role enum: a system prompt belongs in the top-level `system`.
            match list.iter().position(|m| {
                !matches!(m.get("role").and_then(Value::as_str), Some("user" | "assistant"))
            }) {
                Some(i) => Err(invalid(&format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant'"
                ))),
                None => Ok(request),
            }
        }
    }
}

/// A successful message with everything the request and the call decide filled in. Bedrock
/// (`aws/bedrock.rs`) renders the same message, with its own id and model name.
pub(crate) struct Rendered {
    pub(crate) id: String,
    pub(crate) model: String,
    blocks: Vec<Block>,
    pub(crate) tool_ids: Vec<String>,
    stop_reason: String,
    pub(crate) usage: Usage,
}

impl Rendered {
    pub(crate) fn new(seq: u64, request: &Map<String, Value>, message: Message) -> Self {
        let tool_ids = (0..message.blocks.len()).map(|i| format!("toolu_mock_{seq:06}_{i}"));
        let calls_tool = message.blocks.iter().any(|b| matches!(b, Block::ToolUse { .. }));
        let default_stop = if calls_tool { "tool_use" } else { "end_turn" };
        let usage = message.usage.unwrap_or_else(|| Usage {
            input_tokens: estimate_input(request),
            output_tokens: message.blocks.iter().map(estimate_output).sum::<u64>().max(1),
            ..Usage::default()
        });
        let requested = request.get("model").and_then(Value::as_str).unwrap_or_default();
        Self {
            id: format!("msg_mock_{seq:06}"),
            model: message.model.unwrap_or_else(|| requested.to_owned()),
            tool_ids: tool_ids.collect(),
            stop_reason: message.stop_reason.unwrap_or_else(|| default_stop.to_owned()),
            usage,
            blocks: message.blocks,
        }
    }

    /// The non-streaming response body.
    pub(crate) fn json(&self) -> Value {
        let content: Vec<Value> = self
            .blocks
            .iter()
            .zip(&self.tool_ids)
            .map(|(block, id)| match block {
                Block::Text(deltas) => json!({ "type": "text", "text": deltas.concat() }),
                Block::ToolUse { name, input } => {
                    json!({ "type": "tool_use", "id": id, "name": name, "input": input })
                }
                Block::Thinking { thinking, signature } => {
                    json!({ "type": "thinking", "thinking": thinking, "signature": signature })
                }
            })
            .collect();
        let mut message = self.head(content, Value::String(self.stop_reason.clone()));
        message["usage"] = usage_json(&self.usage, self.usage.output_tokens);
        message
    }

    /// The message's fields shared by the JSON body and `message_start`.
    fn head(&self, content: Vec<Value>, stop_reason: Value) -> Value {
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": null,
        })
    }

    /// The SSE events, in the API's order, each its own chunk.
    fn events(&self, ping: bool) -> Vec<Bytes> {
        let events = self.event_values(ping);
        events.iter().map(|e| sse(e["type"].as_str().unwrap_or_default(), e)).collect()
    }

    /// The stream's events as JSON, in the API's order (each carries its name in `type`).
    pub(crate) fn event_values(&self, ping: bool) -> Vec<Value> {
        let mut start = self.head(Vec::new(), Value::Null);
        start["usage"] = usage_json(&self.usage, self.usage.output_tokens.min(1));
        let mut out = vec![json!({ "type": "message_start", "message": start })];
        for (index, (block, id)) in self.blocks.iter().zip(&self.tool_ids).enumerate() {
            let (empty, deltas) = match block {
                Block::Text(chunks) => {
                    let deltas = chunks.iter().map(|t| json!({ "type": "text_delta", "text": t }));
                    (json!({ "type": "text", "text": "" }), deltas.collect::<Vec<_>>())
                }
                Block::ToolUse { name, input } => {
                    let json = input.to_string();
                    let deltas = thirds(&json)
                        .map(|part| json!({ "type": "input_json_delta", "partial_json": part }));
                    let empty = json!({ "type": "tool_use", "id": id, "name": name, "input": {} });
                    (empty, deltas.collect())
                }
                Block::Thinking { thinking, signature } => {
                    let mut deltas: Vec<Value> = split_words(thinking)
                        .iter()
                        .map(|t| json!({ "type": "thinking_delta", "thinking": t }))
                        .collect();
                    deltas.push(json!({ "type": "signature_delta", "signature": signature }));
                    (json!({ "type": "thinking", "thinking": "", "signature": "" }), deltas)
                }
            };
            let start =
                json!({ "type": "content_block_start", "index": index, "content_block": empty });
            out.push(start);
            if ping && index == 0 {
                out.push(json!({ "type": "ping" }));
            }
            for delta in deltas {
                out.push(json!({ "type": "content_block_delta", "index": index, "delta": delta }));
            }
            out.push(json!({ "type": "content_block_stop", "index": index }));
        }
        let delta = json!({
            "type": "message_delta",
            "delta": { "stop_reason": self.stop_reason, "stop_sequence": null },
            "usage": usage_json(&self.usage, self.usage.output_tokens),
        });
        out.push(delta);
        out.push(json!({ "type": "message_stop" }));
        out
    }
}

fn usage_json(usage: &Usage, output_tokens: u64) -> Value {
    let mut out = json!({
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "output_tokens": output_tokens,
    });
    let one_hour = usage.cache_creation_1h_input_tokens;
    if one_hour > 0 {
        out["cache_creation"] = json!({
            "ephemeral_5m_input_tokens": usage.cache_creation_input_tokens.saturating_sub(one_hour),
            "ephemeral_1h_input_tokens": one_hour,
        });
    }
    out
}

/// Splits serialized JSON into up to three fragments, as `input_json_delta`s arrive.
fn thirds(text: &str) -> impl Iterator<Item = &str> {
    let cut = |n: usize| (n * text.len() / 3..=text.len()).find(|&i| text.is_char_boundary(i));
    let (a, b) = (cut(1).unwrap_or(text.len()), cut(2).unwrap_or(text.len()));
    [&text[..a], &text[a..b], &text[b..]].into_iter().filter(|part| !part.is_empty())
}

/// A deterministic stand-in for the tokenizer: a quarter of the prompt's JSON length.
pub(crate) fn estimate_input(request: &Map<String, Value>) -> u64 {
    let prompt = ["system", "messages", "tools"].map(|key| request.get(key).cloned());
    let len = json!(prompt).to_string().len() as u64;
    len.div_ceil(4).max(1)
}

fn estimate_output(block: &Block) -> u64 {
    let len = match block {
        Block::Text(deltas) => deltas.iter().map(String::len).sum(),
        Block::ToolUse { input, .. } => input.to_string().len(),
        Block::Thinking { thinking, .. } => thinking.len(),
    };
    (len as u64).div_ceil(4)
}

/// The text after the last `Say:` in the last user message (up to the end of its line), or
/// `WORKS`.
pub(crate) fn echo_text(request: &Map<String, Value>) -> String {
    let messages = request.get("messages").and_then(Value::as_array);
    let last_user =
        messages.and_then(|list| list.iter().rev().find(|m| m.get("role") == Some(&json!("user"))));
    let texts: Vec<&str> = match last_user.and_then(|m| m.get("content")) {
        Some(Value::String(text)) => vec![text],
        Some(Value::Array(blocks)) => {
            blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect()
        }
        _ => Vec::new(),
    };
    texts
        .iter()
        .rev()
        .find_map(|text| {
            let rest = &text[text.rfind("Say:")? + "Say:".len()..];
            let said = rest.lines().next().unwrap_or_default().trim();
            (!said.is_empty()).then(|| said.to_owned())
        })
        .unwrap_or_else(|| "WORKS".to_owned())
}

fn sse(event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

pub(crate) fn api_error(status: u16, kind: &str, message: &str) -> ApiError {
    ApiError { status, kind: kind.to_owned(), message: message.to_owned() }
}

pub(crate) fn invalid(message: &str) -> ApiError {
    api_error(400, "invalid_request_error", message)
}

/// `{"type":"error","error":{...}}`, with `request_id` in HTTP error bodies.
pub(crate) fn error_body(error: &ApiError, request_id: Option<String>) -> Value {
    let mut body = json!({
        "type": "error",
        "error": { "type": error.kind, "message": error.message },
    });
    if let Some(id) = request_id {
        body["request_id"] = Value::String(id);
    }
    body
}

pub(crate) fn error_response(
    call: &Call,
    error: &ApiError,
    headers: &[(String, String)],
) -> Response {
    let body = error_body(error, Some(request_id(call.seq))).to_string();
    respond(error.status, JSON, call.seq, headers, HttpBody::from(body))
}

fn request_id(seq: u64) -> String {
    format!("req_mock_{seq:06}")
}

/// Assembles a response with `request-id` and the reply's extra headers. A scripted status or
/// header that HTTP cannot carry becomes a 500 naming it, so the test author sees the mistake.
pub(crate) fn respond(
    status: u16,
    content_type: &'static str,
    seq: u64,
    extra: &[(String, String)],
    body: HttpBody,
) -> Response {
    let mut response = Response::new(body);
    let Ok(code) = StatusCode::from_u16(status) else {
        return mock_mistake(seq, &format!("status {status} is not a valid HTTP status"));
    };
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if content_type == SSE {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    if let Ok(id) = HeaderValue::try_from(request_id(seq)) {
        headers.insert("request-id", id);
    }
    for (name, value) in extra {
        match (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => return mock_mistake(seq, &format!("header {name:?}: {value:?} is not valid")),
        }
    }
    response
}

fn mock_mistake(seq: u64, what: &str) -> Response {
    let error = api_error(500, "api_error", &format!("mock-upstream: scripted {what}"));
    let body = error_body(&error, Some(request_id(seq))).to_string();
    let mut response = Response::new(HttpBody::from(body));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fragments_rejoin() {
        let text = r#"{"city":"Paris","note":"é"}"#;
        assert_eq!(thirds(text).count(), 3);
        assert_eq!(thirds(text).collect::<String>(), text);
        assert_eq!(thirds("{}").collect::<String>(), "{}");
    }

    #[test]
    fn echo_finds_the_last_say() {
        let request = json!({"messages": [
            {"role": "user", "content": "Say: NOPE"},
            {"role": "assistant", "content": "NOPE"},
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>x</system-reminder>"},
                {"type": "text", "text": "Say: WORKS\nthanks"}
            ]}
        ]});
        let Value::Object(map) = request else { unreachable!() };
        assert_eq!(echo_text(&map), "WORKS");
        let Value::Object(map) = json!({"messages": [{"role": "user", "content": "Hi"}]}) else {
            unreachable!()
        };
        assert_eq!(echo_text(&map), "WORKS");
    }
}
