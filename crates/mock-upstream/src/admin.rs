//! Scripting over HTTP, for tests in another process (the Python SDK suite): `/_mock/*` routes
//! that queue replies, read the recorder and reset the mock. Enabled by
//! [`crate::Builder::admin`] (the binary's `--admin`); off by default, so a mock that emulates a
//! provider answers every path the way the provider would.
//!
//! A reply spec is a JSON object mapping one to one onto the [`Reply`] builder. Unknown keys are
//! rejected, so a typo in a test fails loudly instead of scripting the default.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /_mock/push` | a spec, or a list of specs | `{"pending": N}` |
//! | `POST /_mock/default` | a spec | `{"pending": N}` |
//! | `GET /_mock/received` | | every recorded request, in arrival order |
//! | `GET /_mock/calls` | | `{"calls": N, "pending": N}` |
//! | `POST /_mock/release` | | releases one reply held by `hold_after` |
//! | `POST /_mock/reset` | | empties the script and the recorder, restores the default reply, restarts ids, forgets batches |
//! | `POST /_mock/batches` | `{"delay_ms": N}` | how long a Message Batch waits before its requests are answered |
//!
//! Spec keys (all optional; none at all means the echo reply):
//!
//! - content, at most one of: `text` (one word per delta), `text_chunks` (exact deltas),
//!   `tool_use` `{name, input}`, `content` (a list of `{type:"text",text}` and
//!   `{type:"tool_use",name,input}` blocks), or `error` `{status?, type, message}` (status
//!   defaults to the one the API uses for `type`); `echo: true` puts the echo first;
//! - `thinking`, `stop_reason`, `model`, `usage` `{input_tokens, output_tokens,
//!   cache_creation_input_tokens, cache_read_input_tokens}` (missing counts are 0);
//! - `headers` `{name: value}`, `retry_after` (seconds), `delay_ms`;
//! - faults: `stream_drop_after` (events), `stream_error_after` `{events, type, message}`,
//!   `hold_after` (events; released by `POST /_mock/release`), `event_gap_ms`, `ping`;
//!   below HTTP, `cut_at` or `stall_at` `{head}` or `{body}` (bytes of the response's head, or
//!   of its body as sent, after which the connection is closed or goes silent).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body as HttpBody;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::reply::{Block, Body, Message, Reply, Usage, split_words, status_for};
use crate::{Received, Shared, lock};

/// The path prefix of every admin route.
pub(crate) const PREFIX: &str = "/_mock/";

/// Answers one admin request; nothing here is recorded or counted as a call.
pub(crate) fn route(shared: &Shared, method: &str, path: &str, body: &[u8]) -> Response {
    match (method, path) {
        ("POST", "/_mock/push") => match specs(body) {
            Ok(replies) => {
                let mut script = lock(&shared.script);
                script.extend(replies.into_iter().map(|spec| spec.into_reply(shared)));
                let pending = script.len();
                drop(script);
                ok(&json!({ "pending": pending }))
            }
            Err(problem) => bad_request(&problem),
        },
        ("POST", "/_mock/default") => match parse::<ReplySpec>(body) {
            Ok(spec) => {
                *lock(&shared.default) = spec.into_reply(shared);
                ok(&json!({ "pending": lock(&shared.script).len() }))
            }
            Err(problem) => bad_request(&problem),
        },
        ("GET", "/_mock/received") => {
            let received: Vec<Value> = lock(&shared.received).iter().map(received_json).collect();
            ok(&Value::Array(received))
        }
        ("GET", "/_mock/calls") => ok(&json!({
            "calls": shared.calls.load(std::sync::atomic::Ordering::SeqCst),
            "pending": lock(&shared.script).len(),
        })),
        ("POST", "/_mock/release") => {
            lock(&shared.release).notify_one();
            ok(&json!({}))
        }
        ("POST", "/_mock/batches") => match parse::<BatchSettings>(body) {
            Ok(settings) => {
                lock(&shared.batches).delay = Duration::from_millis(settings.delay_ms);
                ok(&json!({}))
            }
            Err(problem) => bad_request(&problem),
        },
        ("POST", "/_mock/reset") => {
            shared.reset();
            ok(&json!({}))
        }
        (_, path) if path.starts_with(crate::aws::admin::PREFIX) => {
            crate::aws::admin::route(shared, method, path, body)
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            &json!({ "error": format!(
                "mock-upstream: no admin route {method} {path}; see the admin module docs"
            ) }),
        ),
    }
}

/// One spec or a list of them.
fn specs(body: &[u8]) -> Result<Vec<ReplySpec>, String> {
    let value: Value = parse(body)?;
    match value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| from_value(item).map_err(|e| format!("reply {i}: {e}")))
            .collect(),
        single => Ok(vec![from_value(single)?]),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a reply spec: {e}"))
}

fn from_value(value: Value) -> Result<ReplySpec, String> {
    serde_json::from_value(value).map_err(|e| format!("not a reply spec: {e}"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchSettings {
    delay_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplySpec {
    #[serde(default)]
    echo: bool,
    text: Option<String>,
    text_chunks: Option<Vec<String>>,
    tool_use: Option<ToolUseSpec>,
    content: Option<Vec<BlockSpec>>,
    error: Option<ErrorSpec>,
    thinking: Option<String>,
    stop_reason: Option<String>,
    model: Option<String>,
    usage: Option<UsageSpec>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    retry_after: Option<u64>,
    delay_ms: Option<u64>,
    stream_drop_after: Option<usize>,
    stream_error_after: Option<StreamErrorSpec>,
    hold_after: Option<usize>,
    event_gap_ms: Option<u64>,
    #[serde(default)]
    ping: bool,
    cut_at: Option<WireAtSpec>,
    stall_at: Option<WireAtSpec>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum WireAtSpec {
    Head(usize),
    Body(usize),
}

impl From<WireAtSpec> for crate::WireAt {
    fn from(at: WireAtSpec) -> Self {
        match at {
            WireAtSpec::Head(n) => Self::Head(n),
            WireAtSpec::Body(n) => Self::Body(n),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolUseSpec {
    name: String,
    #[serde(default = "empty_object")]
    input: Value,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum BlockSpec {
    Text {
        text: String,
    },
    ToolUse {
        name: String,
        #[serde(default = "empty_object")]
        input: Value,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorSpec {
    status: Option<u16>,
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamErrorSpec {
    events: usize,
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UsageSpec {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl ReplySpec {
    fn into_reply(self, shared: &Shared) -> Reply {
        let mut reply = match self.error {
            Some(error) => {
                let status = error.status.unwrap_or_else(|| status_for(&error.kind));
                Reply::error(status, error.kind, error.message)
            }
            None => {
                let blocks = blocks(self.text, self.text_chunks, self.tool_use, self.content);
                // No content at all is the echo reply.
                let echo = self.echo || blocks.is_empty();
                Reply {
                    body: Body::Message(Message { echo, blocks, ..Message::default() }),
                    ..Reply::echo()
                }
            }
        };
        if let Some(thinking) = self.thinking {
            reply = reply.with_thinking(thinking);
        }
        if let Some(reason) = self.stop_reason {
            reply = reply.stop_reason(reason);
        }
        if let Some(model) = self.model {
            reply = reply.model(model);
        }
        if let Some(u) = self.usage {
            reply = reply.usage(Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                cache_creation_input_tokens: u.cache_creation_input_tokens,
                cache_read_input_tokens: u.cache_read_input_tokens,
                ..Usage::default()
            });
        }
        for (name, value) in self.headers {
            reply = reply.header(name, value);
        }
        if let Some(seconds) = self.retry_after {
            reply = reply.retry_after(seconds);
        }
        if let Some(ms) = self.delay_ms {
            reply = reply.delay(Duration::from_millis(ms));
        }
        if let Some(events) = self.stream_drop_after {
            reply = reply.stream_drop_after(events);
        }
        if let Some(e) = self.stream_error_after {
            reply = reply.with_stream_error_after(e.events, e.kind, e.message);
        }
        if let Some(events) = self.hold_after {
            reply = reply.hold_after(events, Arc::clone(&lock(&shared.release)));
        }
        if let Some(ms) = self.event_gap_ms {
            reply = reply.event_gap(Duration::from_millis(ms));
        }
        if self.ping {
            reply = reply.with_ping();
        }
        if let Some(at) = self.cut_at {
            reply = reply.cut_at(at.into());
        }
        if let Some(at) = self.stall_at {
            reply = reply.stall_at(at.into());
        }
        reply
    }
}

/// The content blocks, in order: `text`, `text_chunks`, `tool_use`, then the `content` list.
fn blocks(
    text: Option<String>,
    chunks: Option<Vec<String>>,
    tool_use: Option<ToolUseSpec>,
    content: Option<Vec<BlockSpec>>,
) -> Vec<Block> {
    let mut out = Vec::new();
    if let Some(text) = text {
        out.push(Block::Text(split_words(&text)));
    }
    if let Some(chunks) = chunks {
        out.push(Block::Text(chunks));
    }
    if let Some(tool) = tool_use {
        out.push(Block::ToolUse { name: tool.name, input: tool.input });
    }
    for block in content.into_iter().flatten() {
        out.push(match block {
            BlockSpec::Text { text } => Block::Text(split_words(&text)),
            BlockSpec::ToolUse { name, input } => Block::ToolUse { name, input },
        });
    }
    out
}

/// A recorded request as JSON: headers as `{name: value}` (repeated headers joined by `, `),
/// the parsed body, and the raw body as text when it is not JSON.
fn received_json(r: &Received) -> Value {
    let mut out = json!({
        "method": r.method,
        "path": r.path,
        "query": r.query,
        "headers": headers_json(&r.headers),
        "body": r.body,
    });
    if r.body.is_null() && !r.raw_body.is_empty() {
        out["raw_body"] = Value::String(String::from_utf8_lossy(&r.raw_body).into_owned());
    }
    out
}

fn headers_json(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for name in headers.keys() {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        out.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
    }
    Value::Object(out)
}

fn ok(body: &Value) -> Response {
    respond(StatusCode::OK, body)
}

fn bad_request(problem: &str) -> Response {
    respond(StatusCode::BAD_REQUEST, &json!({ "error": format!("mock-upstream: {problem}") }))
}

fn respond(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(HttpBody::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::ApiError;

    fn spec(value: Value) -> Result<ReplySpec, String> {
        from_value(value)
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let Err(problem) = spec(json!({"txt": "hi"})) else { panic!("accepted a typo") };
        assert!(problem.contains("txt"), "{problem}");
        let Err(problem) = spec(json!({"usage": {"cached_tokens": 3}})) else {
            panic!("accepted a typo")
        };
        assert!(problem.contains("cached_tokens"), "{problem}");
    }

    #[test]
    fn errors_take_the_api_status_for_their_type() {
        let shared = Shared::for_tests();
        let reply = spec(json!({"error": {"type": "overloaded_error", "message": "Overloaded"}}))
            .map(|s| s.into_reply(&shared));
        let Ok(Reply { body: Body::Error(error), .. }) = reply else { panic!("not an error") };
        assert_eq!(
            error,
            ApiError { status: 529, kind: "overloaded_error".into(), message: "Overloaded".into() }
        );
    }

    #[test]
    fn blocks_keep_their_order_and_no_content_means_echo() {
        let shared = Shared::for_tests();
        let reply = spec(json!({"text": "Let me look", "tool_use": {"name": "f"}}))
            .map(|s| s.into_reply(&shared));
        let Ok(Reply { body: Body::Message(m), .. }) = reply else { panic!("not a message") };
        assert_eq!(m.blocks.len(), 2);
        assert!(
            matches!(&m.blocks[1], Block::ToolUse { name, input } if name == "f" && input == &json!({}))
        );
        assert!(!m.echo);
        let Ok(Reply { body: Body::Message(m), .. }) =
            spec(json!({"usage": {"input_tokens": 1}})).map(|s| s.into_reply(&shared))
        else {
            panic!("not a message")
        };
        assert!(m.echo && m.blocks.is_empty());
    }
}
