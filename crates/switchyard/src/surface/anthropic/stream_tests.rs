//! Byte-for-byte tests of the Anthropic SSE encoder: the sequence and shapes a client
//! parses, and the error event that ends a failed or truncated stream.

use std::time::Duration;

use futures_util::stream;

use super::*;
use crate::canonical::StopReason;
use crate::classify::Diagnosis;

type Item = Result<StreamEvent, UpstreamError>;

async fn collect(events: Vec<Item>) -> String {
    let frames: Vec<_> = encode_stream(stream::iter(events)).collect().await;
    let bytes: Vec<u8> = frames.into_iter().flat_map(|f| f.unwrap().to_vec()).collect();
    String::from_utf8(bytes).unwrap()
}

fn usage(input: u64, output: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
}

fn text_events() -> Vec<Item> {
    vec![
        Ok(StreamEvent::Start { id: "msg_1".into(), model: "m".into(), usage: usage(5, 1) }),
        Ok(StreamEvent::BlockStart { index: 0, block: ContentBlock::text("") }),
        Ok(StreamEvent::Ping),
        Ok(StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Text("Hel".into()) }),
        Ok(StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Text("lo".into()) }),
        Ok(StreamEvent::BlockStop { index: 0 }),
        Ok(StreamEvent::Delta {
            stop_reason: Some(StopReason::EndTurn),
            stop_sequence: None,
            usage: usage(0, 2),
        }),
        Ok(StreamEvent::Stop),
    ]
}

const START: &str = concat!(
    "event: message_start\n",
    r#"data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#,
    "\n\n"
);

#[tokio::test]
async fn text_stream_is_exact() {
    let expected = [
        START,
        "event: content_block_start\n",
        r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        "\n\nevent: ping\n",
        r#"data: {"type":"ping"}"#,
        "\n\nevent: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#,
        "\n\nevent: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}"#,
        "\n\nevent: content_block_stop\n",
        r#"data: {"type":"content_block_stop","index":0}"#,
        "\n\nevent: message_delta\n",
        r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2}}"#,
        "\n\nevent: message_stop\n",
        r#"data: {"type":"message_stop"}"#,
        "\n\n",
    ]
    .concat();
    assert_eq!(collect(text_events()).await, expected);
}

#[tokio::test]
async fn thinking_and_tool_use_deltas_are_exact() {
    let events = vec![
        Ok(StreamEvent::Start { id: "msg_1".into(), model: "m".into(), usage: usage(5, 1) }),
        Ok(StreamEvent::BlockStart {
            index: 0,
            block: ContentBlock::Thinking {
                thinking: String::new(),
                signature: Some(String::new()),
            },
        }),
        Ok(StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Thinking("Let me".into()) }),
        Ok(StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Signature("EqQB".into()) }),
        Ok(StreamEvent::BlockStop { index: 0 }),
        Ok(StreamEvent::BlockStart {
            index: 1,
            block: ContentBlock::ToolUse {
                id: "toolu_1".into(),
                name: "get_weather".into(),
                input: serde_json::json!({}),
                cache_control: None,
            },
        }),
        Ok(StreamEvent::BlockDelta { index: 1, delta: BlockDelta::InputJson("{\"city\":".into()) }),
        Ok(StreamEvent::BlockDelta { index: 1, delta: BlockDelta::InputJson("\"Paris\"}".into()) }),
        Ok(StreamEvent::BlockStop { index: 1 }),
        Ok(StreamEvent::Delta {
            stop_reason: Some(StopReason::ToolUse),
            stop_sequence: None,
            usage: Usage { output_tokens: 9, cache_read_input_tokens: 70, ..Usage::default() },
        }),
        Ok(StreamEvent::Stop),
    ];
    let expected = [
        START,
        "event: content_block_start\n",
        r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        "\n\nevent: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me"}}"#,
        "\n\nevent: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}"#,
        "\n\nevent: content_block_stop\n",
        r#"data: {"type":"content_block_stop","index":0}"#,
        "\n\nevent: content_block_start\n",
        r#"data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}"#,
        "\n\nevent: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}"#,
        "\n\nevent: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}"#,
        "\n\nevent: content_block_stop\n",
        r#"data: {"type":"content_block_stop","index":1}"#,
        "\n\nevent: message_delta\n",
        r#"data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":70,"output_tokens":9}}"#,
        "\n\nevent: message_stop\n",
        r#"data: {"type":"message_stop"}"#,
        "\n\n",
    ]
    .concat();
    assert_eq!(collect(events).await, expected);
}

#[tokio::test]
async fn upstream_error_mid_stream_ends_with_one_error_event() {
    let mut events: Vec<Item> = text_events().into_iter().take(4).collect();
    let mut err = UpstreamError::new(ErrorKind::Overloaded, "Overloaded");
    err.diagnosis = Some(Diagnosis::new("ANT-09", "", "Retry later."));
    err.retry_after = Some(Duration::from_secs(3));
    events.push(Err(err));
    events.push(Ok(StreamEvent::Stop)); // never read: the error ends the stream
    let out = collect(events).await;
    let expected_tail = concat!(
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#,
        "\n\nevent: error\n",
        r#"data: {"type":"error","error":{"type":"overloaded_error","message":"The upstream failed after the response started: Overloaded Fix: Retry later.","class":"overloaded","diagnosis":{"id":"ANT-09","cause":"","remedy":"Retry later."}}}"#,
        "\n\n"
    );
    assert!(out.ends_with(expected_tail), "{out}");
    assert!(!out.contains("message_stop"), "{out}");
}

#[tokio::test]
async fn stream_ending_without_stop_is_an_error_not_a_truncation() {
    let events: Vec<Item> = text_events().into_iter().take(7).collect(); // up to Delta
    let out = collect(events).await;
    let expected_tail = concat!(
        "event: error\n",
        r#"data: {"type":"error","error":{"type":"api_error","message":"The upstream closed the stream before the answer was complete; the streamed answer is truncated."}}"#,
        "\n\n"
    );
    assert!(out.ends_with(expected_tail), "{out}");
    assert!(!out.contains("message_stop"), "{out}");
}

#[tokio::test]
async fn empty_upstream_stream_is_an_error_event() {
    let out = collect(vec![]).await;
    assert!(out.starts_with("event: error\ndata: {\"type\":\"error\""), "{out}");
    assert_eq!(out.matches("event: ").count(), 1, "{out}");
}

#[tokio::test]
async fn unknown_blocks_start_verbatim() {
    let block =
        serde_json::json!({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"});
    let events = vec![
        Ok(StreamEvent::BlockStart {
            index: 2,
            block: ContentBlock::Other(block.as_object().unwrap().clone()),
        }),
        Ok(StreamEvent::Stop),
    ];
    let out = collect(events).await;
    assert!(
        out.starts_with(concat!(
            "event: content_block_start\n",
            r#"data: {"type":"content_block_start","index":2,"content_block":{"id":"srvtoolu_1","name":"web_search","type":"server_tool_use"}}"#
        )),
        "{out}"
    );
}

#[tokio::test]
async fn each_event_is_yielded_as_it_arrives() {
    let (tx, rx) = tokio::sync::mpsc::channel::<Item>(4);
    let events = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    let mut out = Box::pin(encode_stream(events));
    tx.send(Ok(StreamEvent::Start { id: "a".into(), model: "m".into(), usage: usage(1, 0) }))
        .await
        .unwrap();
    let first: Bytes =
        tokio::time::timeout(Duration::from_secs(5), out.next()).await.unwrap().unwrap().unwrap();
    assert!(first.starts_with(b"event: message_start\n"));
    tx.send(Ok(StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Text("x".into()) }))
        .await
        .unwrap();
    let second: Bytes =
        tokio::time::timeout(Duration::from_secs(5), out.next()).await.unwrap().unwrap().unwrap();
    assert!(std::str::from_utf8(&second).unwrap().contains(r#""text":"x""#));
    tx.send(Ok(StreamEvent::Stop)).await.unwrap();
    let last: Bytes =
        tokio::time::timeout(Duration::from_secs(5), out.next()).await.unwrap().unwrap().unwrap();
    assert!(last.starts_with(b"event: message_stop\n"));
    assert!(out.next().await.is_none(), "the stream ends after message_stop");
}
