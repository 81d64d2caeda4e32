//! The same-dialect fast path for OpenAI chat completions clients (`fastpath`): the client's
//! body with the edits `body::build` would make, and the JSON answer relayed as the
//! server's bytes (a stream's chunks: `relay_stream.rs`).
//!
//! A request whose body `build` would change in any other way (system or developer messages
//! moved or renamed, `cache_control` marks removed, `response_format`, `n` other than 1) is
//! not taken: the canonical path serves it.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::response::{WireUsage, stop_reason};
use crate::canonical::{ChatRequest, Dialect, RESPONSES_BODY, StopReason};
use crate::classify::{ErrorKind, UpstreamError};
use crate::fastpath::body::{Edit, json_string};
use crate::fastpath::{RawAnswer, RawBody};

/// The chat completions fields `WireRequest` reads; any other member is forwarded only when
/// the canonical request kept it in `extra`.
const NAMED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
];

/// The JSON body for the deployment's `model`, or `None` when the canonical path must build
/// it. `max_tokens_field` is the name the deployment's server takes.
pub(super) fn body(
    req: &ChatRequest,
    raw: &RawBody,
    model: &str,
    max_tokens_field: &str,
) -> Option<Vec<u8>> {
    if raw.dialect != Dialect::OpenAi
        || req.dialect != Dialect::OpenAi
        || req.response_format.is_some()
        || req.gateway.contains_key(RESPONSES_BODY)
    {
        return None;
    }
    let messages = raw.get("messages")?;
    if messages.contains("\"developer\"") || messages.contains("\"cache_control\"") {
        return None;
    }
    // System messages go first, as one: only a single leading one is already in place.
    if !req.system.is_empty() {
        let at = |role: &str| messages.find(role).unwrap_or(usize::MAX);
        let system = at("\"system\"");
        let first_other = at("\"user\"").min(at("\"assistant\"")).min(at("\"tool\""));
        if messages.matches("\"system\"").count() != 1 || system > first_other {
            return None;
        }
    }
    if req.extra.get("n").is_some_and(|n| !(n.is_null() || *n == 1)) {
        return None;
    }
    let model = json_string(model);
    let max_tokens = req.max_tokens.map(|n| n.to_string());
    let mut append: Vec<(&str, &[u8])> =
        max_tokens.iter().map(|n| (max_tokens_field, n.as_bytes())).collect();
    if req.stream {
        // Usage is always asked for, as `build` asks: the ledger needs it whatever the
        // client wants to see (`relay_stream` hides it from a client that did not ask).
        append.push(("stream", b"true"));
        append.push(("stream_options", br#"{"include_usage":true}"#));
    }
    let bytes = raw.rebuild(
        |key, value| match key {
            "model" => Edit::Set(Cow::Borrowed(&model)),
            // Written once, under the server's own name, at the end.
            "max_tokens" | "max_completion_tokens" | "stream" | "stream_options" => Edit::Drop,
            "stop" if req.stop_sequences.is_empty() => Edit::Drop,
            "tools" | "tool_choice" | "parallel_tool_calls" if req.tools.is_empty() => Edit::Drop,
            "tool_choice" if req.tool_choice.is_none() => Edit::Drop,
            "user" if req.user.is_none() => Edit::Drop,
            _ if NAMED.contains(&key) && value == "null" => Edit::Drop,
            _ if NAMED.contains(&key) => Edit::Keep,
            _ if key == "response_format" => Edit::Drop,
            _ if req.extra.contains_key(key) => Edit::Keep,
            // A gateway parameter (`metadata`, `fallbacks` …): never sent upstream.
            _ => Edit::Drop,
        },
        &append,
    );
    Some(bytes)
}

/// What the gateway reads of a chat completion; the rest is skipped unread.
#[derive(Deserialize)]
struct Peek {
    #[serde(default)]
    id: String,
    choices: Vec<PeekChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct PeekChoice {
    message: PeekMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct PeekMessage {
    refusal: Option<String>,
    #[allow(dead_code, reason = "read so that a malformed message fails as it would")]
    content: Option<IgnoredAny>,
}

/// The answer as the server sent it, with its id, stop reason and usage.
pub(super) fn answer(bytes: Bytes) -> Result<RawAnswer, UpstreamError> {
    let peek = serde_json::from_slice::<Peek>(&bytes).ok();
    let Some((peek, choice)) = peek.and_then(|mut p| {
        let first = (!p.choices.is_empty()).then(|| p.choices.swap_remove(0))?;
        Some((p, first))
    }) else {
        // The canonical parser says what is wrong with it, in its own words.
        return match super::response::parse(&bytes) {
            Err(err) => Err(err),
            Ok(_) => Err(UpstreamError::new(
                ErrorKind::UpstreamUnavailable,
                "the upstream's chat completion is unreadable",
            )),
        };
    };
    let refused = choice.message.refusal.is_some_and(|r| !r.is_empty());
    let stop = match (refused, choice.finish_reason.as_deref()) {
        (true, _) => Some(StopReason::Refusal),
        (false, reason) => reason.map(stop_reason),
    };
    Ok(RawAnswer {
        id: peek.id,
        stop_reason: stop,
        usage: peek.usage.unwrap_or_default().canonical(),
        body: bytes,
    })
}
