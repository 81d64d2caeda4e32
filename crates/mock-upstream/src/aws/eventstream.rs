//! `application/vnd.amazon.eventstream` frames as InvokeModelWithResponseStream sends them,
//! written by `aws-smithy-eventstream` (prelude, headers, payload, both CRCs). It only frames;
//! what goes in a frame is Bedrock's decision (`bedrock.rs`).

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::base64;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use serde_json::{Value, json};

/// A `chunk` event: `{"bytes": "<base64 of one Anthropic stream event>"}`.
pub(crate) fn chunk(event: &Value) -> Bytes {
    let payload = json!({ "bytes": base64::encode(event.to_string()) });
    frame(
        &[
            (":event-type", "chunk"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        &payload,
    )
}

/// An exception frame, e.g. `throttlingException` with `{"message": …}`.
pub(crate) fn exception(member: &str, message: &str) -> Bytes {
    let payload = json!({ "message": message });
    let headers = [
        (":exception-type", member),
        (":content-type", "application/json"),
        (":message-type", "exception"),
    ];
    frame(&headers, &payload)
}

/// One frame with these string headers and a JSON payload.
pub(crate) fn frame(headers: &[(&str, &str)], payload: &Value) -> Bytes {
    let message =
        headers.iter().fold(Message::new(payload.to_string()), |message, (name, value)| {
            message.add_header(Header::new(
                name.to_string(),
                HeaderValue::String(value.to_string().into()),
            ))
        });
    let mut out = Vec::new();
    // Only fails for header names over 255 bytes or frames over 16 MB; ours are neither.
    let _ = write_message_to(&message, &mut out);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};

    use super::*;

    fn decode(frame: Bytes) -> Message {
        let mut buf = frame;
        match MessageFrameDecoder::new().decode_frame(&mut buf).unwrap() {
            DecodedFrame::Complete(message) => message,
            DecodedFrame::Incomplete => panic!("incomplete frame"),
        }
    }

    fn header<'a>(message: &'a Message, name: &str) -> &'a str {
        let found = message.headers().iter().find(|h| h.name().as_str() == name).unwrap();
        found.value().as_string().unwrap().as_str()
    }

    #[test]
    fn chunks_carry_the_event_in_base64() {
        let message = decode(chunk(&json!({"type": "message_stop"})));
        assert_eq!(header(&message, ":message-type"), "event");
        assert_eq!(header(&message, ":event-type"), "chunk");
        assert_eq!(header(&message, ":content-type"), "application/json");
        let payload: Value = serde_json::from_slice(message.payload()).unwrap();
        let bytes = base64::decode(payload["bytes"].as_str().unwrap()).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes).unwrap(),
            json!({"type": "message_stop"})
        );
    }

    #[test]
    fn exceptions_name_their_member() {
        let message = decode(exception("throttlingException", "Too many requests"));
        assert_eq!(header(&message, ":message-type"), "exception");
        assert_eq!(header(&message, ":exception-type"), "throttlingException");
        assert_eq!(message.payload().as_ref(), br#"{"message":"Too many requests"}"#);
    }
}
