//! Encodes a canonical event stream as Anthropic Messages SSE: `event: <type>\ndata:
//! {json}\n\n` frames, in the API's own sequence and shapes.
//!
//! Each event is encoded and yielded the moment it arrives: this never buffers the whole
//! answer. A stream that fails, or ends without `Stop`, ends with an `event: error` frame
//! — never a silent truncation.

use std::convert::Infallible;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::Serialize;

use super::error::error_frame;
use super::response::{WireMessage, WireUsage, stop_reason};
use crate::canonical::{BlockDelta, ContentBlock, StreamEvent, Usage};
use crate::classify::{ApiError, ErrorKind, UpstreamError};
use crate::fastpath::ChunkStream;

/// SSE frames for `events`, each yielded as soon as its event arrives.
pub fn encode_stream<S>(events: S) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static
where
    S: Stream<Item = Result<StreamEvent, UpstreamError>> + Send + 'static,
{
    encode_framed::<S, Sse>(events)
}

/// A relayed stream (the same-dialect fast path): the upstream's events as they came, and a
/// failure after the commit point as the error frame [`encode_stream`] writes for it.
pub fn encode_relayed(
    chunks: ChunkStream,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    futures_util::stream::unfold(Some(chunks), |state| async move {
        let mut chunks = state?;
        match chunks.next().await? {
            Ok(chunk) => Some((Ok(chunk.bytes), Some(chunks))),
            Err(err) => Some((Ok(Encoder::<Sse>::default().failed(&err)), None)),
        }
    })
}

/// How each encoded event and a closing error are framed on the wire: SSE here, AWS
/// event-stream `chunk`s for Bedrock's InvokeModelWithResponseStream (`surface::bedrock`).
/// The events themselves are the same JSON either way.
pub(crate) trait Framing: Default + Send + 'static {
    /// Appends one event, `json` being its serialized body.
    fn event(&mut self, buf: &mut BytesMut, name: &str, json: &[u8]);
    /// The frame that ends a stream with `err`.
    fn error(&mut self, err: &ApiError) -> Bytes;
}

#[derive(Default)]
pub(crate) struct Sse;

impl Framing for Sse {
    fn event(&mut self, buf: &mut BytesMut, name: &str, json: &[u8]) {
        buf.extend_from_slice(b"event: ");
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(b"\ndata: ");
        buf.extend_from_slice(json);
        buf.extend_from_slice(b"\n\n");
    }

    fn error(&mut self, err: &ApiError) -> Bytes {
        Bytes::from(error_frame(err))
    }
}

/// The Anthropic stream events of `events`, framed by `F`, each yielded as it arrives.
pub(crate) fn encode_framed<S, F>(
    events: S,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static
where
    S: Stream<Item = Result<StreamEvent, UpstreamError>> + Send + 'static,
    F: Framing,
{
    let state = Some((Box::pin(events), Encoder::<F>::default()));
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
struct Encoder<F> {
    /// Cumulative usage: `message_start`'s, updated by each `message_delta`.
    usage: Usage,
    buf: BytesMut,
    json: Vec<u8>,
    framing: F,
}

impl<F: Framing> Encoder<F> {
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
        self.framing.error(&api)
    }

    /// The upstream's stream ended without `Stop`.
    fn dropped(&mut self) -> Bytes {
        self.framing.error(&ApiError::new(
            ErrorKind::UpstreamUnavailable,
            "The upstream closed the stream before the answer was complete; the streamed \
             answer is truncated.",
        ))
    }

    fn frame<T: Serialize>(&mut self, event: &str, data: &T) {
        self.json.clear();
        if serde_json::to_writer(&mut self.json, data).is_err() {
            let err = self.framing.error(&ApiError::new(
                ErrorKind::Internal,
                "Switchyard could not encode a stream event.",
            ));
            self.buf.extend_from_slice(&err);
            return;
        }
        self.framing.event(&mut self.buf, event, &self.json);
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
