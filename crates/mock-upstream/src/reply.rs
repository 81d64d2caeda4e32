//! What the mock answers: a provider-neutral scripted reply (content, usage, status, latency and
//! faults). Each emulated provider renders it in its own wire format; nothing here knows one.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::wire::{Action, WireAt, WireFault};

/// Token usage reported by a reply. Counts are cumulative, as in the final `message_delta`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    /// Of `cache_creation_input_tokens`, those written for one hour. When not zero, the
    /// Anthropic usage carries the `cache_creation` breakdown and Converse's `cacheDetails`.
    pub cache_creation_1h_input_tokens: u64,
}

/// One content block of a successful reply.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Block {
    /// Text, kept as the deltas it streams in; the block's text is their concatenation.
    Text(Vec<String>),
    ToolUse {
        name: String,
        input: Value,
    },
    Thinking {
        thinking: String,
        signature: String,
    },
}

/// A successful message.
#[derive(Clone, Debug, Default)]
pub(crate) struct Message {
    /// Answer with the text after `Say:` in the last user message, or `WORKS`, before `blocks`.
    pub echo: bool,
    pub blocks: Vec<Block>,
    pub stop_reason: Option<String>,
    pub usage: Option<Usage>,
    pub model: Option<String>,
}

/// An API error: the HTTP status and the provider's error type and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub kind: String,
    pub message: String,
}

#[derive(Clone, Debug)]
pub(crate) enum Body {
    Message(Message),
    Error(ApiError),
}

/// Mid-response faults. Event indices count the events (or body halves, for JSON) already sent.
#[derive(Clone, Debug, Default)]
pub(crate) struct Faults {
    pub drop_after: Option<usize>,
    pub hold_after: Option<(usize, Arc<Notify>)>,
    pub error_after: Option<(usize, ApiError)>,
    pub event_gap: Duration,
    pub ping: bool,
    pub wire: Option<WireFault>,
}

/// A scripted answer. Build one with a constructor, refine it with the chained methods, then
/// hand it to [`crate::MockUpstream::push`] or [`crate::MockUpstream::set_default`].
///
/// Successful replies are rendered as JSON or SSE according to the request's `"stream"`.
#[derive(Clone, Debug)]
pub struct Reply {
    pub(crate) body: Body,
    pub(crate) delay: Duration,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) faults: Faults,
}

impl Reply {
    fn new(body: Body) -> Self {
        Self { body, delay: Duration::ZERO, headers: Vec::new(), faults: Faults::default() }
    }

    fn message(block: Block) -> Self {
        Self::new(Body::Message(Message { blocks: vec![block], ..Message::default() }))
    }

    /// A text answer, streamed one word per delta.
    pub fn text(text: impl Into<String>) -> Self {
        Self::message(Block::Text(split_words(&text.into())))
    }

    /// A text answer streamed in exactly these deltas (the text is their concatenation).
    pub fn text_chunks<S: Into<String>>(chunks: impl IntoIterator<Item = S>) -> Self {
        Self::message(Block::Text(chunks.into_iter().map(Into::into).collect()))
    }

    /// A single `tool_use` block; `stop_reason` becomes `tool_use`.
    pub fn tool_use(name: impl Into<String>, input: Value) -> Self {
        Self::message(Block::ToolUse { name: name.into(), input })
    }

    /// The default default: the text after `Say:` in the last user message (`Say: WORKS` →
    /// `WORKS`), or `WORKS` when there is none.
    pub fn echo() -> Self {
        Self::new(Body::Message(Message { echo: true, ..Message::default() }))
    }

    /// An HTTP error with the provider's error body, e.g. `(529, "overloaded_error", "Overloaded")`.
    pub fn error(status: u16, kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Body::Error(ApiError { status, kind: kind.into(), message: message.into() }))
    }

    /// A 200 stream of `Hello world` that, after `events` events, sends an `error` event and
    /// ends. A non-streaming request gets the error as an HTTP error instead (status from the
    /// type: `overloaded_error` → 529, `rate_limit_error` → 429, …).
    pub fn stream_error_after(
        events: usize,
        kind: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::text("Hello world").with_stream_error_after(events, kind, message)
    }

    /// Appends a text block.
    pub fn then_text(self, text: impl Into<String>) -> Self {
        self.push_block(Block::Text(split_words(&text.into())))
    }

    /// Appends a `tool_use` block (e.g. after a text block, as models do).
    pub fn then_tool_use(self, name: impl Into<String>, input: Value) -> Self {
        self.push_block(Block::ToolUse { name: name.into(), input })
    }

    /// Puts a `thinking` block (with a fixed signature) before the content.
    pub fn with_thinking(mut self, thinking: impl Into<String>) -> Self {
        if let Body::Message(m) = &mut self.body {
            let block =
                Block::Thinking { thinking: thinking.into(), signature: "mock-signature".into() };
            m.blocks.insert(0, block);
        }
        self
    }

    /// Overrides the stop reason (default: `tool_use` if a tool is called, else `end_turn`).
    pub fn stop_reason(mut self, reason: impl Into<String>) -> Self {
        if let Body::Message(m) = &mut self.body {
            m.stop_reason = Some(reason.into());
        }
        self
    }

    /// Reports exactly this usage (default: a deterministic estimate, no cache tokens).
    pub fn usage(mut self, usage: Usage) -> Self {
        if let Body::Message(m) = &mut self.body {
            m.usage = Some(usage);
        }
        self
    }

    /// Reports this model instead of the requested one.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        if let Body::Message(m) = &mut self.body {
            m.model = Some(model.into());
        }
        self
    }

    /// Waits this long before sending the status line.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Adds a response header (any reply, success or error).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `retry-after: <seconds>`.
    pub fn retry_after(self, seconds: u64) -> Self {
        self.header("retry-after", seconds.to_string())
    }

    /// Sends `events` events, then closes the connection without ending the body. For a
    /// non-streaming request: sends the status, headers and half the JSON body, then closes.
    pub fn stream_drop_after(mut self, events: usize) -> Self {
        self.faults.drop_after = Some(events);
        self
    }

    /// Sends `events` events, then waits until `release` is notified (use
    /// [`Notify::notify_one`], which also works if called before the mock waits). For a
    /// non-streaming request: holds after half the JSON body.
    pub fn hold_after(mut self, events: usize, release: Arc<Notify>) -> Self {
        self.faults.hold_after = Some((events, release));
        self
    }

    /// After `events` events, sends an `error` event and ends the stream (see
    /// [`Reply::stream_error_after`]).
    pub fn with_stream_error_after(
        mut self,
        events: usize,
        kind: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let kind = kind.into();
        let status = status_for(&kind);
        self.faults.error_after =
            Some((events, ApiError { status, kind, message: message.into() }));
        self
    }

    /// Sends the response (JSON, stream or error) up to `at`, then closes the connection.
    /// [`WireAt::Body`] past the body's end sends it whole. Either way the connection serves
    /// no other request.
    pub fn cut_at(mut self, at: WireAt) -> Self {
        self.faults.wire = Some(WireFault { at, action: Action::Close });
        self
    }

    /// Sends the response up to `at`, then nothing more, keeping the connection open until
    /// the client closes it.
    pub fn stall_at(mut self, at: WireAt) -> Self {
        self.faults.wire = Some(WireFault { at, action: Action::Stall });
        self
    }

    /// Pauses this long between streamed events (default: none, but each event is still
    /// flushed on its own).
    pub fn event_gap(mut self, gap: Duration) -> Self {
        self.faults.event_gap = gap;
        self
    }

    /// Sends a `ping` event after the first `content_block_start`, where the real API does.
    pub fn with_ping(mut self) -> Self {
        self.faults.ping = true;
        self
    }

    fn push_block(mut self, block: Block) -> Self {
        if let Body::Message(m) = &mut self.body {
            m.blocks.push(block);
        }
        self
    }
}

/// The HTTP status the Anthropic API uses for an error type (or AWS for an AWS error code).
pub(crate) fn status_for(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        // AWS error codes (`ThrottlingException`, …) take AWS's status, so Bedrock errors
        // scripted by name (also over the admin API) answer as AWS does.
        other => crate::aws::status_for(other).unwrap_or(500),
    }
}

/// Splits text into deltas at word starts: `"Hello big world"` → `["Hello", " big", " world"]`.
pub(crate) fn split_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_space = true;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if space && !prev_space && i > start {
            out.push(text[start..i].to_owned());
            start = i;
        }
        prev_space = space;
    }
    if start < text.len() || out.is_empty() {
        out.push(text[start..].to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_their_leading_space() {
        assert_eq!(split_words("Hello big world"), ["Hello", " big", " world"]);
        assert_eq!(split_words("  a\nb "), ["  a", "\nb", " "]);
        assert_eq!(split_words(""), [""]);
        assert_eq!(split_words("WORKS").concat(), "WORKS");
    }
}
