//! InvokeModelWithResponseStream's answer: each Anthropic stream event (the Anthropic
//! surface's encoder) as an AWS event-stream `chunk` frame, `{"bytes": "<base64 of the
//! event>"}`, exactly what Bedrock sends and the Bedrock provider decodes. A failure after the
//! first frame ends the stream with an exception frame (`throttlingException`, …) carrying
//! the message and diagnosis.

use std::convert::Infallible;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::Stream;

use super::error::{exception_name, wire_message};
use crate::canonical::StreamEvent;
use crate::classify::{ApiError, UpstreamError};
use crate::surface::anthropic::stream::{Framing, encode_framed};

/// The event-stream frames for `events`, each yielded as soon as its event arrives.
pub fn encode_stream<S>(events: S) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static
where
    S: Stream<Item = Result<StreamEvent, UpstreamError>> + Send + 'static,
{
    encode_framed::<S, EventStream>(events)
}

#[derive(Default)]
struct EventStream;

impl Framing for EventStream {
    fn event(&mut self, buf: &mut BytesMut, _name: &str, json: &[u8]) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(json);
        let payload = format!(r#"{{"bytes":"{encoded}"}}"#);
        frame(
            buf,
            &[
                (":event-type", "chunk"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.into_bytes(),
        );
    }

    fn error(&mut self, err: &ApiError) -> Bytes {
        // The stream's exception members are the error names in lower camel case.
        let name = exception_name(err.kind);
        let member = format!("{}{}", name[..1].to_ascii_lowercase(), &name[1..]);
        let mut buf = BytesMut::new();
        frame(
            &mut buf,
            &[
                (":exception-type", &member),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            wire_message(err),
        );
        buf.freeze()
    }
}

fn frame(buf: &mut BytesMut, headers: &[(&str, &str)], payload: Vec<u8>) {
    let message = headers.iter().fold(Message::new(payload), |message, (name, value)| {
        message.add_header(Header::new(
            name.to_string(),
            HeaderValue::String(value.to_string().into()),
        ))
    });
    let mut out = Vec::new();
    // Fails only for header names over 255 bytes or frames over 16 MB: an event is neither
    // (the body limit bounds what a client sent, an upstream event is far smaller).
    if write_message_to(&message, &mut out).is_ok() {
        buf.extend_from_slice(&out);
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
    use futures_util::StreamExt;
    use serde_json::Value;

    use super::*;
    use crate::canonical::{BlockDelta, ContentBlock, Usage};
    use crate::classify::ErrorKind;

    fn frames(bytes: &[u8]) -> Vec<Message> {
        let mut buf = Bytes::copy_from_slice(bytes);
        let mut decoder = MessageFrameDecoder::new();
        let mut out = Vec::new();
        while !buf.is_empty() {
            match decoder.decode_frame(&mut buf).unwrap() {
                DecodedFrame::Complete(m) => out.push(m),
                DecodedFrame::Incomplete => panic!("incomplete frame"),
            }
        }
        out
    }

    fn header<'a>(m: &'a Message, name: &str) -> &'a str {
        m.headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .unwrap()
            .value()
            .as_string()
            .unwrap()
            .as_str()
    }

    fn event(m: &Message) -> Value {
        let payload: Value = serde_json::from_slice(m.payload()).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(payload["bytes"].as_str().unwrap())
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn encode(events: Vec<Result<StreamEvent, UpstreamError>>) -> Vec<u8> {
        let chunks: Vec<_> = encode_stream(futures_util::stream::iter(events)).collect().await;
        chunks.into_iter().flat_map(|c| c.unwrap().to_vec()).collect()
    }

    #[tokio::test]
    async fn each_event_is_one_chunk_in_anthropic_shape() {
        let usage = Usage { input_tokens: 7, ..Usage::default() };
        let bytes = encode(vec![
            Ok(StreamEvent::Start { id: "msg_1".into(), model: "m".into(), usage }),
            Ok(StreamEvent::BlockStart { index: 0, block: ContentBlock::text("") }),
            Ok(StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Text("WORKS".into()) }),
            Ok(StreamEvent::BlockStop { index: 0 }),
            Ok(StreamEvent::Stop),
        ])
        .await;
        let frames = frames(&bytes);
        assert_eq!(frames.len(), 5);
        assert!(frames.iter().all(|f| header(f, ":event-type") == "chunk"));
        assert_eq!(event(&frames[0])["message"]["usage"]["input_tokens"], 7);
        assert_eq!(event(&frames[2])["delta"]["text"], "WORKS");
        assert_eq!(event(&frames[4])["type"], "message_stop");
    }

    #[tokio::test]
    async fn a_failure_mid_stream_is_an_exception_frame() {
        let bytes = encode(vec![
            Ok(StreamEvent::Start {
                id: "msg_1".into(),
                model: "m".into(),
                usage: Usage::default(),
            }),
            Err(UpstreamError::new(ErrorKind::RateLimited, "slow down")),
        ])
        .await;
        let frames = frames(&bytes);
        let last = frames.last().unwrap();
        assert_eq!(header(last, ":message-type"), "exception");
        assert_eq!(header(last, ":exception-type"), "throttlingException");
        let payload: Value = serde_json::from_slice(last.payload()).unwrap();
        assert!(payload["message"].as_str().unwrap().contains("slow down"));
    }
}
