//! InvokeModelWithResponseStream → canonical [`StreamEvent`]s, one frame at a time: AWS
//! event-stream frames are decoded with aws-smithy-eventstream, each `chunk` carries one
//! base64 Anthropic event that goes through the Anthropic provider's decoder.
//!
//! [`open`] is the streaming commit point: it resolves once the first event is known, so an
//! exception frame before it is an ordinary failed attempt. After that, an exception frame,
//! a broken connection, a silence longer than the idle timeout, or an end before
//! `message_stop` each end the stream with an `Err` item (AWS-18) — never a silent
//! truncation. Buffers at most one frame; spawns nothing: dropping the stream drops the
//! upstream connection.

use std::pin::Pin;
use std::sync::Arc;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue, Message};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use eventsource_stream::Event;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;

use super::{Limit, Site};
use crate::canonical::{StopReason, StreamEvent, Usage};
use crate::classify::{ErrorKind, UpstreamError, bedrock_stream_exception};
use crate::provider::EventStream;
use crate::provider::anthropic::stream::Decoder;
use crate::provider::http::{Timeout, broken, timeout_error, transport_error};

pub(super) type Body = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// Reads `response` (a 200 with an event-stream body) up to its first event and returns the
/// stream of canonical events, that event first.
pub(super) async fn open(
    response: reqwest::Response,
    json_mode: bool,
    site: Arc<Site>,
    idle: Limit,
) -> Result<EventStream, UpstreamError> {
    open_body(Box::pin(response.bytes_stream()), json_mode, site, idle).await
}

pub(super) async fn open_body(
    body: Body,
    json_mode: bool,
    site: Arc<Site>,
    idle: Limit,
) -> Result<EventStream, UpstreamError> {
    let mut state = State {
        reader: Frames::new(body),
        decoder: Decoder::new(json_mode),
        site,
        idle,
        done: false,
        pending: None,
        usage: Usage::default(),
        stop: (None, None),
    };
    // The caller bounds the wait for the first event (stream_timeout).
    let first = loop {
        match state.frame().await {
            None => return Err(state.dropped()),
            Some(Err(e)) => return Err(e),
            Some(Ok(frame)) => {
                if let Some(first) = state.translate(&frame)? {
                    break first;
                }
            }
        }
    };
    state.done = matches!(first, StreamEvent::Stop);
    let rest = futures_util::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    });
    Ok(Box::pin(futures_util::stream::once(async { Ok(first) }).chain(rest)))
}

/// Whole event-stream frames out of a response body, for both InvokeModelWithResponseStream
/// and ConverseStream.
pub(super) struct Frames {
    body: Body,
    buf: BytesMut,
    decoder: MessageFrameDecoder,
    /// Frames read so far, for messages.
    pub(super) seen: usize,
}

impl Frames {
    pub(super) fn new(body: Body) -> Self {
        Self { body, buf: BytesMut::new(), decoder: MessageFrameDecoder::new(), seen: 0 }
    }

    /// The next whole frame, reading the body as needed; `None` when the body ended.
    pub(super) async fn next(&mut self, site: &Site) -> Option<Result<Message, UpstreamError>> {
        loop {
            match self.decoder.decode_frame(&mut self.buf) {
                Ok(DecodedFrame::Complete(message)) => {
                    self.seen += 1;
                    return Some(Ok(message));
                }
                Ok(DecodedFrame::Incomplete) => {}
                Err(e) => {
                    return Some(Err(unreadable(&format!("a broken event-stream frame: {e}"))));
                }
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.buf.extend_from_slice(&bytes),
                Some(Err(e)) => return Some(Err(transport_error(&e, &site.destination()))),
                None if self.buf.is_empty() => return None,
                None => {
                    let what =
                        format!("the stream ended inside a frame after {} frames", self.seen);
                    return Some(Err(broken(&site.destination(), &what)));
                }
            }
        }
    }
}

struct State {
    reader: Frames,
    decoder: Decoder,
    site: Arc<Site>,
    idle: Limit,
    done: bool,
    /// `Stop`, held back one step behind the usage Bedrock's metrics added.
    pending: Option<StreamEvent>,
    /// Usage reported by the Anthropic events so far.
    usage: Usage,
    /// The last stop reason and sequence, repeated in a metrics `Delta`.
    stop: (Option<StopReason>, Option<String>),
}

impl State {
    async fn next(&mut self) -> Option<Result<StreamEvent, UpstreamError>> {
        if let Some(event) = self.pending.take() {
            self.done = true;
            return Some(Ok(event));
        }
        if self.done {
            return None;
        }
        loop {
            let item = match tokio::time::timeout(self.idle.after, self.frame()).await {
                Ok(item) => item,
                Err(_) => {
                    self.done = true;
                    let (after, setting) = (self.idle.after, self.idle.setting);
                    return Some(Err(timeout_error(&self.site.who, Timeout::Idle, after, setting)));
                }
            };
            let frame = match item {
                Some(Ok(frame)) => frame,
                None if self.decoder.stopped => {
                    self.done = true;
                    return None;
                }
                None => {
                    self.done = true;
                    return Some(Err(self.dropped()));
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            match self.translate(&frame) {
                Ok(None) => {}
                Ok(Some(event)) => {
                    // After `message_stop` nothing more is read: the answer is complete.
                    self.done = matches!(event, StreamEvent::Stop) || self.pending.is_some();
                    return Some(Ok(event));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }

    /// The next whole frame; `None` when the body ended.
    async fn frame(&mut self) -> Option<Result<Message, UpstreamError>> {
        self.reader.next(&self.site).await
    }

    /// One frame → at most one canonical event (plus a held-back `Stop`).
    fn translate(&mut self, frame: &Message) -> Result<Option<StreamEvent>, UpstreamError> {
        let header = |name: &str| {
            frame.headers().iter().find(|h| h.name().as_str() == name).and_then(|h| {
                match h.value() {
                    HeaderValue::String(s) => Some(s.as_str().to_owned()),
                    _ => None,
                }
            })
        };
        match header(":message-type").as_deref() {
            Some("event") => {}
            Some("exception") => {
                let kind = header(":exception-type").unwrap_or_else(|| "unknownException".into());
                let payload = crate::classify::scrub_body(&self.site.deployment, frame.payload());
                return Err(bedrock_stream_exception(&self.site.ctx, &kind, &payload));
            }
            Some("error") => {
                let code = header(":error-code").unwrap_or_else(|| "unknownError".into());
                let message = header(":error-message").unwrap_or_default();
                let payload = serde_json::json!({ "message": message }).to_string();
                let payload =
                    crate::classify::scrub_body(&self.site.deployment, payload.as_bytes());
                return Err(bedrock_stream_exception(&self.site.ctx, &code, &payload));
            }
            other => {
                return Err(unreadable(&format!(
                    "an event-stream frame with :message-type {}",
                    other.unwrap_or("(none)")
                )));
            }
        }
        if header(":event-type").as_deref() != Some("chunk") {
            return Ok(None);
        }
        #[derive(Deserialize)]
        struct Chunk {
            bytes: String,
        }
        let chunk: Chunk = serde_json::from_slice(frame.payload())
            .map_err(|e| unreadable(&format!("a chunk that is not {{\"bytes\": …}}: {e}")))?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(chunk.bytes.as_bytes())
            .map_err(|e| unreadable(&format!("a chunk whose bytes are not base64: {e}")))?;
        let data = String::from_utf8(data)
            .map_err(|e| unreadable(&format!("a chunk that is not UTF-8: {e}")))?;
        #[derive(Deserialize)]
        struct Peek {
            #[serde(rename = "type")]
            kind: String,
            #[serde(rename = "amazon-bedrock-invocationMetrics")]
            metrics: Option<Metrics>,
        }
        let peek: Peek = serde_json::from_str(&data)
            .map_err(|e| unreadable(&format!("a chunk that is not an Anthropic event: {e}")))?;
        let event = Event { event: peek.kind, data, ..Event::default() };
        let decoded = self.decoder.decode(&event, &self.site.deployment)?;
        match &decoded {
            Some(StreamEvent::Start { usage, .. }) => self.usage.merge(usage),
            Some(StreamEvent::Delta { usage, stop_reason, stop_sequence }) => {
                self.usage.merge(usage);
                self.stop = (*stop_reason, stop_sequence.clone());
            }
            Some(StreamEvent::Stop) => {
                if let Some(delta) = peek.metrics.and_then(|m| self.metrics_delta(&m)) {
                    self.pending = Some(StreamEvent::Stop);
                    return Ok(Some(delta));
                }
            }
            _ => {}
        }
        Ok(decoded)
    }

    /// A `Delta` carrying what Bedrock's invocation metrics add to the usage seen so far
    /// (counts the Anthropic events left at zero), if anything.
    fn metrics_delta(&mut self, m: &Metrics) -> Option<StreamEvent> {
        let mut usage = self.usage;
        for (to, from) in [
            (&mut usage.input_tokens, m.input),
            (&mut usage.output_tokens, m.output),
            (&mut usage.cache_read_input_tokens, m.cache_read),
            (&mut usage.cache_creation_input_tokens, m.cache_write),
        ] {
            if *to == 0 {
                *to = from.unwrap_or(0);
            }
        }
        (usage != self.usage).then(|| {
            self.usage = usage;
            StreamEvent::Delta {
                stop_reason: self.stop.0,
                stop_sequence: self.stop.1.clone(),
                usage,
            }
        })
    }

    /// The body ended before `message_stop`.
    fn dropped(&self) -> UpstreamError {
        let what =
            format!("the stream ended after {} frames, before message_stop", self.reader.seen);
        broken(&self.site.destination(), &what)
    }
}

/// `amazon-bedrock-invocationMetrics` on the last event.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct Metrics {
    #[serde(rename = "inputTokenCount")]
    input: Option<u64>,
    #[serde(rename = "outputTokenCount")]
    output: Option<u64>,
    #[serde(rename = "cacheReadInputTokenCount")]
    cache_read: Option<u64>,
    #[serde(rename = "cacheWriteInputTokenCount")]
    cache_write: Option<u64>,
}

pub(super) fn unreadable(what: &str) -> UpstreamError {
    UpstreamError::new(ErrorKind::UpstreamUnavailable, format!("Bedrock sent {what}"))
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
