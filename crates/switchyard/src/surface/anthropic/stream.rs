//! Encodes a canonical event stream as Anthropic Messages SSE: `event: <type>\ndata:
//! {json}\n\n` frames, in the API's own sequence and shapes.
//!
//! Each event is encoded and yielded the moment it arrives: this never buffers the whole
//! answer. A stream that fails, or ends without `Stop`, ends with an `event: error` frame
//! — never a silent truncation.

use std::convert::Infallible;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::Serialize;

use super::error::error_frame;
use super::response::{WireMessage, WireUsage, stop_reason};
use crate::canonical::{BlockDelta, ContentBlock, StreamEvent, Usage};
use crate::classify::{ApiError, ErrorKind, UpstreamError};

/// SSE frames for `events`, each yielded as soon as its event arrives.
pub fn encode_stream<S>(events: S) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static
where
    S: Stream<Item = Result<StreamEvent, UpstreamError>> + Send + 'static,
{
    let state = Some((Box::pin(events), Encoder::default()));
    futures_util::stream::unfold(state, |state| async move {
        let (mut events, mut encoder) = state?;
        let (bytes, last) = match events.next().await {
            Some(Ok(StreamEvent::Stop)) => (encoder.event(&StreamEvent::Stop), true),
            Some(Ok(event)) => (encoder.event(&event), false),
            Some(Err(err)) => (encoder.failed(&err), true),
            None => (encoder.dropped(), true),
        };
        // Dropping `events` on the last frame stops polling (and cancels) the upstream.
        Some((Ok(bytes), (!last).then_some((events, encoder))))
    })
}

#[derive(Default)]
struct Encoder {
    /// Cumulative usage: `message_start`'s, updated by each `message_delta`.
    usage: Usage,
    buf: BytesMut,
}

impl Encoder {
    fn event(&mut self, event: &StreamEvent) -> Bytes {
        match event {
            StreamEvent::Start { id, model, usage } => {
                self.usage = *usage;
                let message = WireMessage::new(id, model, &[], None, None, usage);
                self.frame("message_start", &MessageStart { kind: "message_start", message });
            }
            StreamEvent::BlockStart { index, block } => self.frame(
                "content_block_start",
                &BlockStart { kind: "content_block_start", index: *index, content_block: block },
            ),
            StreamEvent::BlockDelta { index, delta } => {
                let delta = match delta {
                    BlockDelta::Text(text) => WireDelta::Text { text },
                    BlockDelta::InputJson(partial_json) => WireDelta::InputJson { partial_json },
                    BlockDelta::Thinking(thinking) => WireDelta::Thinking { thinking },
                    BlockDelta::Signature(signature) => WireDelta::Signature { signature },
                };
                self.frame(
                    "content_block_delta",
                    &BlockDeltaEvent { kind: "content_block_delta", index: *index, delta },
                );
            }
            StreamEvent::BlockStop { index } => self.frame(
                "content_block_stop",
                &BlockStop { kind: "content_block_stop", index: *index },
            ),
            StreamEvent::Delta { stop_reason: reason, stop_sequence, usage } => {
                self.usage.merge(usage);
                let delta = WireMessageDelta {
                    stop_reason: stop_reason(*reason),
                    stop_sequence: stop_sequence.as_deref(),
                };
                let usage = WireUsage::from(&self.usage);
                self.frame("message_delta", &MessageDelta { kind: "message_delta", delta, usage });
            }
            StreamEvent::Stop => self.frame("message_stop", &Bare { kind: "message_stop" }),
            StreamEvent::Ping => self.frame("ping", &Bare { kind: "ping" }),
        }
        self.buf.split().freeze()
    }

    /// The upstream failed after the response started.
    fn failed(&mut self, err: &UpstreamError) -> Bytes {
        let mut api = ApiError::new(
            err.kind,
            format!("The upstream failed after the response started: {}", err.message),
        );
        api.diagnosis = err.diagnosis.clone();
        api.retry_after = err.retry_after;
        Bytes::from(error_frame(&api))
    }

    /// The upstream's stream ended without `Stop`.
    fn dropped(&mut self) -> Bytes {
        Bytes::from(error_frame(&ApiError::new(
            ErrorKind::UpstreamUnavailable,
            "The upstream closed the stream before the answer was complete; the streamed \
             answer is truncated.",
        )))
    }

    fn frame<T: Serialize>(&mut self, event: &str, data: &T) {
        let mark = self.buf.len();
        self.buf.extend_from_slice(b"event: ");
        self.buf.extend_from_slice(event.as_bytes());
        self.buf.extend_from_slice(b"\ndata: ");
        if serde_json::to_writer((&mut self.buf).writer(), data).is_err() {
            self.buf.truncate(mark);
            self.buf.extend_from_slice(&error_frame(&ApiError::new(
                ErrorKind::Internal,
                "Switchyard could not encode a stream event.",
            )));
            return;
        }
        self.buf.extend_from_slice(b"\n\n");
    }
}

#[derive(Serialize)]
struct MessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: WireMessage<'a>,
}

#[derive(Serialize)]
struct BlockStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    content_block: &'a ContentBlock,
}

#[derive(Serialize)]
struct BlockDeltaEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    delta: WireDelta<'a>,
}

/// A `content_block_delta`'s `delta`, tagged `text_delta`, `input_json_delta` …
#[derive(Serialize)]
#[serde(tag = "type")]
enum WireDelta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
}

#[derive(Serialize)]
struct BlockStop {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
}

#[derive(Serialize)]
struct MessageDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: WireMessageDelta<'a>,
    usage: WireUsage,
}

#[derive(Serialize)]
struct WireMessageDelta<'a> {
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'a str>,
}

#[derive(Serialize)]
struct Bare {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
