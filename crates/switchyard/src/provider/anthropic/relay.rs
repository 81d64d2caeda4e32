//! The same-dialect fast path for Anthropic Messages clients (`fastpath`): the client's body
//! with the edits `body::build` would make, and the answer relayed as the API's bytes.
//!
//! A request whose body `build` would change in any other way (a system-role message folded
//! into `system`, a blank stop sequence dropped …) is not taken: the canonical path serves
//! it, so what reaches the upstream means the same either way.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::Site;
use super::params::OWN_FIELDS;
use super::response::{WireUsage, stop_reason};
use super::stream::Idle;
use crate::canonical::{ChatRequest, Dialect, Usage};
use crate::classify::{ErrorKind, UpstreamError, anthropic_stream_error};
use crate::fastpath::body::{Edit, json_string};
use crate::fastpath::sse::events;
use crate::fastpath::stream::{self, Read, Reader};
use crate::fastpath::{Chunk, ChunkStream, RawAnswer, RawBody};
use crate::provider::http::{Error, Response, Timeout, broken, timeout_error, transport_error};

/// The Messages fields `WireRequest` reads; any other member is forwarded only when the
/// canonical request kept it in `extra`.
const NAMED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "metadata",
    "tools",
    "tool_choice",
];

/// The body for the deployment's `model`, or `None` when the canonical path must build it.
pub(super) fn body(req: &ChatRequest, raw: &RawBody, model: &str) -> Option<Vec<u8>> {
    if raw.dialect != Dialect::Anthropic || req.dialect != Dialect::Anthropic {
        return None;
    }
    // The decoder folded system-role messages into `system` (a false alarm on a message
    // that merely says "system" costs only the fast path).
    if raw.get("messages").is_some_and(|m| m.contains("\"system\"")) {
        return None;
    }
    if req.stop_sequences.iter().any(|s| s.trim().is_empty()) {
        return None;
    }
    let model = json_string(model);
    let metadata = req.user.as_deref().map(|user| {
        let mut m = b"{\"user_id\":".to_vec();
        m.extend_from_slice(&json_string(user));
        m.push(b'}');
        m
    });
    let bytes = raw.rebuild(
        |key, value| match key {
            "model" => Edit::Set(Cow::Borrowed(&model)),
            "metadata" => match &metadata {
                Some(m) => Edit::Set(Cow::Borrowed(m)),
                None => Edit::Drop,
            },
            "system" if req.system.is_empty() => Edit::Drop,
            "stop_sequences" if req.stop_sequences.is_empty() => Edit::Drop,
            "tools" | "tool_choice" if req.tools.is_empty() => Edit::Drop,
            "tool_choice" if req.tool_choice.is_none() => Edit::Drop,
            // `build` leaves out what the canonical request does not hold.
            _ if NAMED.contains(&key) && value == "null" => Edit::Drop,
            _ if NAMED.contains(&key) => Edit::Keep,
            _ if OWN_FIELDS.contains(&key) => Edit::Drop,
            _ if req.extra.contains_key(key) => Edit::Keep,
            // A gateway parameter (`fallbacks`, `tags` …): never sent upstream.
            _ => Edit::Drop,
        },
        &[],
    );
    Some(bytes)
}

/// What the gateway reads of a Messages answer; the rest is skipped unread.
#[derive(Deserialize)]
struct Peek {
    id: String,
    #[allow(dead_code, reason = "required, as the canonical parser requires it")]
    model: IgnoredAny,
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

/// The answer as the upstream sent it, with its id, stop reason and usage.
pub(super) fn answer(bytes: Bytes) -> Result<RawAnswer, UpstreamError> {
    match serde_json::from_slice::<Peek>(&bytes) {
        Ok(peek) => Ok(RawAnswer {
            id: peek.id,
            stop_reason: stop_reason(peek.stop_reason.as_deref()),
            usage: peek.usage.into(),
            body: bytes,
        }),
        // The canonical parser says what is wrong with it, in its own words.
        Err(_) => match super::response::parse(&bytes, false) {
            Err(err) => Err(err),
            Ok(_) => Err(UpstreamError::new(
                ErrorKind::UpstreamUnavailable,
                "the upstream's answer is not a Messages response",
            )),
        },
    }
}

/// Reads `response` (a 200 with an SSE body) up to its first event — the commit point, as
/// `stream::open` — and relays the rest as it arrives, read only for usage, `message_stop`
/// and error events.
pub(super) async fn open(
    response: Response,
    site: Arc<Site>,
    idle: Idle,
) -> Result<ChunkStream, UpstreamError> {
    let reader = Events { site, idle, seen: 0, started: false };
    stream::open(Box::pin(response.bytes_stream()), reader, idle.after).await
}

struct Events {
    site: Arc<Site>,
    idle: Idle,
    /// Upstream events read so far, for messages.
    seen: usize,
    /// An event other than an error arrived: the stream is committed.
    started: bool,
}

impl Reader for Events {
    type Error = Error;

    /// The events up to `message_stop` or an error event, with their usage.
    fn read(&mut self, piece: Bytes) -> Read {
        let mut usage: Option<Usage> = None;
        let mut cut = piece.len();
        let mut stopped = false;
        let mut failed = None;
        for event in events(&piece) {
            self.seen += 1;
            let is_error = event.name == "error"
                || (event.name.is_empty() && event.data.starts_with("{\"type\":\"error\""));
            if is_error {
                failed = Some(anthropic_stream_error(&self.site.deployment, &event.data));
                cut = event.start;
                break;
            }
            self.started = true;
            match event.name {
                "message_start" => merge(&mut usage, start_usage(&event.data)),
                "message_delta" => merge(&mut usage, delta_usage(&event.data)),
                "message_stop" => {
                    stopped = true;
                    cut = event.end;
                    break;
                }
                _ => {}
            }
        }
        Read { chunk: Chunk { bytes: piece.slice(..cut), usage, complete: stopped }, failed }
    }

    fn started(&self) -> bool {
        self.started
    }

    /// The body ended before `message_stop`.
    fn ended(&mut self) -> Result<Chunk, UpstreamError> {
        let what = format!("the stream ended after {} events, before message_stop", self.seen);
        Err(broken(&self.site.destination(), &what))
    }

    fn transport(&self, e: &Error) -> UpstreamError {
        transport_error(e, &self.site.destination())
    }

    fn idle(&self) -> UpstreamError {
        timeout_error(&self.site.who, Timeout::Idle, self.idle.after, self.idle.setting)
    }
}

fn merge(into: &mut Option<Usage>, usage: Option<Usage>) {
    if let Some(usage) = usage {
        into.get_or_insert_with(Usage::default).merge(&usage);
    }
}

fn start_usage(data: &str) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Start {
        message: Message,
    }
    #[derive(Deserialize)]
    struct Message {
        #[serde(default)]
        usage: WireUsage,
    }
    serde_json::from_str::<Start>(data).ok().map(|s| s.message.usage.into())
}

fn delta_usage(data: &str) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Delta {
        #[serde(default)]
        usage: WireUsage,
    }
    serde_json::from_str::<Delta>(data).ok().map(|d| d.usage.into())
}
