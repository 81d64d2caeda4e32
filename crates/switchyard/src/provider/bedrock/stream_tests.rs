//! The event-stream decoder against frames written the way Bedrock writes them: split at
//! arbitrary byte boundaries, with exception frames before and after the first event, cut
//! short, or silent.

use std::time::Duration;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::Header;
use serde_json::{Value, json};

use super::*;
use crate::canonical::{BlockDelta, ContentBlock};

fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let message = headers.iter().fold(Message::new(payload.to_vec()), |m, (k, v)| {
        m.add_header(Header::new(k.to_string(), HeaderValue::String(v.to_string().into())))
    });
    let mut out = Vec::new();
    write_message_to(&message, &mut out).unwrap();
    out
}

fn chunk(event: Value) -> Vec<u8> {
    let bytes = base64::engine::general_purpose::STANDARD.encode(event.to_string());
    frame(
        &[
            (":event-type", "chunk"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        json!({ "bytes": bytes }).to_string().as_bytes(),
    )
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({ "message": message }).to_string().as_bytes(),
    )
}

fn answer(usage_in_events: bool) -> Vec<Vec<u8>> {
    let start_usage = if usage_in_events {
        json!({"input_tokens": 12, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 100, "output_tokens": 1})
    } else {
        json!({"input_tokens": 0, "output_tokens": 0})
    };
    let delta_usage = if usage_in_events { json!({"output_tokens": 5}) } else { json!({}) };
    vec![
        chunk(
            json!({"type": "message_start", "message": {"id": "msg_bdrk_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [], "usage": start_usage}}),
        ),
        chunk(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        chunk(
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        ),
        chunk(json!({"type": "content_block_stop", "index": 0})),
        chunk(
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": delta_usage}),
        ),
        chunk(
            json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 12, "outputTokenCount": 5, "invocationLatency": 1798, "firstByteLatency": 1507, "cacheReadInputTokenCount": 2000, "cacheWriteInputTokenCount": 100}}),
        ),
    ]
}

/// The canonical items of an upstream sending `frames` in pieces of `split` bytes, then
/// ending (or, with `hang`, going silent), read with a 50 ms idle timeout.
async fn relay(
    frames: Vec<Vec<u8>>,
    split: usize,
    hang: bool,
) -> Result<Vec<Result<StreamEvent, UpstreamError>>, UpstreamError> {
    let bytes: Vec<u8> = frames.concat();
    let pieces: Vec<Result<Bytes, reqwest::Error>> =
        bytes.chunks(split).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let items = futures_util::stream::iter(pieces);
    let body: Body =
        if hang { Box::pin(items.chain(futures_util::stream::pending())) } else { Box::pin(items) };
    let idle = Limit { after: Duration::from_millis(50), setting: "stream_timeout" };
    let stream = open_body(body, false, Arc::new(super::super::tests::site()), idle).await?;
    Ok(stream.collect().await)
}

fn kinds(items: &[Result<StreamEvent, UpstreamError>]) -> Vec<Result<&StreamEvent, ErrorKind>> {
    items.iter().map(|i| i.as_ref().map_err(|e| e.kind)).collect()
}

#[tokio::test]
async fn chunks_become_canonical_events_whatever_the_byte_boundaries() {
    for split in [1, 7, 64, 100_000] {
        let items = relay(answer(true), split, false).await.unwrap();
        let items = kinds(&items);
        assert_eq!(items.len(), 6, "split {split}: {items:?}");
        assert!(
            matches!(items[0], Ok(StreamEvent::Start { usage, .. }) if usage.cache_read_input_tokens == 2000 && usage.cache_creation_input_tokens == 100)
        );
        assert_eq!(
            items[1],
            Ok(&StreamEvent::BlockStart { index: 0, block: ContentBlock::text("") })
        );
        assert_eq!(
            items[2],
            Ok(&StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Text("Hello".into()) })
        );
        assert!(
            matches!(items[4], Ok(StreamEvent::Delta { usage, .. }) if usage.output_tokens == 5)
        );
        assert_eq!(items[5], Ok(&StreamEvent::Stop), "metrics add nothing new: no extra delta");
    }
}

#[tokio::test]
async fn invocation_metrics_fill_usage_the_events_left_out() {
    let items = relay(answer(false), 100_000, false).await.unwrap();
    let items = kinds(&items);
    assert_eq!(items.len(), 7, "{items:?}");
    match items[5] {
        Ok(StreamEvent::Delta { stop_reason, usage, .. }) => {
            assert_eq!(*stop_reason, Some(StopReason::EndTurn), "the stop reason is repeated");
            assert_eq!(
                *usage,
                Usage {
                    input_tokens: 12,
                    output_tokens: 5,
                    cache_read_input_tokens: 2000,
                    cache_creation_input_tokens: 100,
                    cache_creation_1h_input_tokens: 0,
                }
            );
        }
        ref other => panic!("expected the metrics delta, got {other:?}"),
    }
    assert_eq!(items[6], Ok(&StreamEvent::Stop));
}

#[tokio::test]
async fn an_exception_frame_before_the_first_event_fails_the_attempt() {
    let err = relay(
        vec![exception(
            "throttlingException",
            "Too many requests, please wait before trying again.",
        )],
        9,
        false,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(err.diagnosis.unwrap().id, "AWS-18");
}

#[tokio::test]
async fn an_exception_frame_after_the_first_event_ends_the_stream_with_an_error_item() {
    let mut frames = answer(true);
    frames.truncate(3);
    frames.push(exception(
        "modelStreamErrorException",
        "An error occurred while streaming the response.",
    ));
    frames.extend(answer(true).into_iter().skip(3));
    let items = relay(frames, 13, false).await.unwrap();
    let kinds = kinds(&items);
    assert_eq!(kinds.len(), 4, "nothing is read after the exception: {kinds:?}");
    assert_eq!(kinds[3], Err(ErrorKind::UpstreamUnavailable));
}

#[tokio::test]
async fn a_cut_or_silent_stream_is_an_error_never_a_silent_end() {
    let mut frames = answer(true);
    frames.truncate(3);
    let items = relay(frames.clone(), 100_000, false).await.unwrap();
    assert_eq!(kinds(&items).last().unwrap(), &Err(ErrorKind::UpstreamUnavailable));
    let items = relay(frames.clone(), 100_000, true).await.unwrap();
    assert_eq!(kinds(&items).last().unwrap(), &Err(ErrorKind::Timeout));
    // Cut in the middle of a frame.
    let mut bytes = frames.concat();
    bytes.extend_from_slice(&chunk(json!({"type": "ping"}))[..10]);
    let items = relay(vec![bytes], 100_000, false).await.unwrap();
    let last = items.last().unwrap().as_ref().unwrap_err();
    assert!(last.message.contains("inside a frame"), "{}", last.message);
    // Nothing at all.
    assert_eq!(
        relay(Vec::new(), 1, false).await.err().unwrap().kind,
        ErrorKind::UpstreamUnavailable
    );
}

#[tokio::test]
async fn garbage_is_an_upstream_failure() {
    let err = relay(
        vec![frame(&[(":message-type", "event"), (":event-type", "chunk")], b"{\"bytes\":\"!!\"}")],
        100,
        false,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.kind, ErrorKind::UpstreamUnavailable);
    assert!(err.message.contains("base64"), "{}", err.message);
    let err = relay(vec![b"\x00\x00\x00\x10\x00\x00\x00\x00garbage!".to_vec()], 100, false)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::UpstreamUnavailable);
}
