//! The ConverseStream decoder against frames written as Bedrock writes them: implicit text
//! blocks, reasoning, the `response_format` tool, usage after `messageStop`, and ends with
//! and without `metadata`.

use std::time::Duration;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::Header;
use bytes::Bytes;
use serde_json::{Value, json};

use super::*;
use crate::classify::ErrorKind;

fn event(kind: &str, payload: Value) -> Vec<u8> {
    let headers =
        [(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")];
    let message = headers.iter().fold(Message::new(payload.to_string()), |m, (k, v)| {
        m.add_header(Header::new(k.to_string(), HeaderValue::String(v.to_string().into())))
    });
    let mut out = Vec::new();
    write_message_to(&message, &mut out).unwrap();
    out
}

async fn decode(
    frames: Vec<Vec<u8>>,
    json_mode: bool,
) -> Result<Vec<Result<StreamEvent, UpstreamError>>, UpstreamError> {
    let bytes: Vec<u8> = frames.concat();
    // Split at odd boundaries, as TCP would.
    let pieces: Vec<Result<Bytes, reqwest::Error>> =
        bytes.chunks(7).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let body: Body = Box::pin(futures_util::stream::iter(pieces));
    let idle = Limit { after: Duration::from_millis(50), setting: "stream_timeout" };
    let site = Arc::new(super::super::tests::site());
    let stream = open_body(body, json_mode, "msg_bdrk_x".into(), site, idle).await?;
    Ok(stream.collect().await)
}

#[tokio::test]
async fn reasoning_text_and_tool_use_then_usage_from_metadata() {
    let frames = vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"text": "Hi"}})),
        event("contentBlockStop", json!({"contentBlockIndex": 1})),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{\"a\":1}"}}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 2})),
        event("messageStop", json!({"stopReason": "tool_use"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 4, "outputTokens": 6, "totalTokens": 13, "cacheReadInputTokens": 3}, "metrics": {"latencyMs": 5}}),
        ),
    ];
    let events: Vec<StreamEvent> =
        decode(frames, false).await.unwrap().into_iter().map(Result::unwrap).collect();
    let thinking = ContentBlock::Thinking { thinking: String::new(), signature: None };
    let tool = ContentBlock::ToolUse {
        id: "t1".into(),
        name: "f".into(),
        input: json!({}),
        cache_control: None,
    };
    assert_eq!(
        events,
        vec![
            StreamEvent::Start {
                id: "msg_bdrk_x".into(),
                model: events_model(&events),
                usage: Usage::default()
            },
            StreamEvent::BlockStart { index: 0, block: thinking },
            StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Thinking("hmm".into()) },
            StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Signature("sig".into()) },
            StreamEvent::BlockStop { index: 0 },
            StreamEvent::BlockStart { index: 1, block: ContentBlock::text("") },
            StreamEvent::BlockDelta { index: 1, delta: BlockDelta::Text("Hi".into()) },
            StreamEvent::BlockStop { index: 1 },
            StreamEvent::BlockStart { index: 2, block: tool },
            StreamEvent::BlockDelta { index: 2, delta: BlockDelta::InputJson("{\"a\":1}".into()) },
            StreamEvent::BlockStop { index: 2 },
            StreamEvent::Delta {
                stop_reason: Some(StopReason::ToolUse),
                stop_sequence: None,
                usage: Usage {
                    input_tokens: 4,
                    output_tokens: 6,
                    cache_read_input_tokens: 3,
                    cache_creation_input_tokens: 0,
                    cache_creation_1h_input_tokens: 0,
                },
            },
            StreamEvent::Stop,
        ]
    );
}

fn events_model(events: &[StreamEvent]) -> String {
    match &events[0] {
        StreamEvent::Start { model, .. } => model.clone(),
        other => panic!("not a start: {other:?}"),
    }
}

#[tokio::test]
async fn the_json_tool_streams_as_text_and_a_missing_metadata_still_completes() {
    let frames = vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": JSON_TOOL}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{}"}}}),
        ),
        event("messageStop", json!({"stopReason": "tool_use"})),
    ];
    let events: Vec<StreamEvent> =
        decode(frames, true).await.unwrap().into_iter().map(Result::unwrap).collect();
    assert_eq!(events[1], StreamEvent::BlockStart { index: 0, block: ContentBlock::text("") });
    assert_eq!(
        events[2],
        StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Text("{}".into()) }
    );
    assert_eq!(events[3], StreamEvent::BlockStop { index: 0 }, "closed by messageStop");
    assert_eq!(
        events[4],
        StreamEvent::Delta {
            stop_reason: Some(StopReason::EndTurn),
            stop_sequence: None,
            usage: Usage::default()
        }
    );
    assert_eq!(events[5], StreamEvent::Stop);
}

#[tokio::test]
async fn an_end_before_message_stop_is_an_error_item() {
    let frames = vec![
        event("messageStart", json!({"role": "assistant"})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}})),
    ];
    let items = decode(frames, false).await.unwrap();
    let last = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(last.kind, ErrorKind::UpstreamUnavailable);
    assert!(last.message.contains("before messageStop"), "{}", last.message);
    // Nothing at all: a failed attempt, not a stream.
    assert!(decode(Vec::new(), false).await.is_err());
}
