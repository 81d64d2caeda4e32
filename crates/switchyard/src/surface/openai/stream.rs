//! Encodes a canonical event stream as OpenAI `chat.completion.chunk` SSE frames.
//!
//! Each event is encoded and yielded the moment it arrives: this never buffers the whole
//! answer. A stream that fails, or ends without `Stop`, ends with an error chunk and
//! `data: [DONE]` — never a silent truncation.

use std::borrow::Cow;
use std::convert::Infallible;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::Serialize;

use super::error::error_frame;
use super::response::{WireUsage, finish_reason};
use super::unix_now;
use crate::canonical::{BlockDelta, ContentBlock, StopReason, StreamEvent, Usage};
use crate::classify::{ApiError, ErrorKind, UpstreamError};
use crate::fastpath::ChunkStream;

const DONE: &[u8] = b"data: [DONE]\n\n";

/// SSE frames for `events`. With `include_usage` (OpenAI `stream_options.include_usage`)
/// every chunk carries `"usage": null` and a last chunk with `choices: []` carries the
/// usage, before `[DONE]`.
pub fn encode_stream<S>(
    events: S,
    include_usage: bool,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static
where
    S: Stream<Item = Result<StreamEvent, UpstreamError>> + Send + 'static,
{
    encode_stream_at(events, include_usage, unix_now())
}

/// A relayed stream's bytes (`fastpath`): the upstream's chunks as they came, and a failure
/// after the first one — or an end before the last — as [`encode_stream`] writes it.
pub fn encode_relayed(
    chunks: ChunkStream,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    futures_util::stream::unfold(Some(chunks), |state| async move {
        let mut chunks = state?;
        let last = match chunks.next().await {
            Some(Ok(chunk)) if !chunk.complete => return Some((Ok(chunk.bytes), Some(chunks))),
            Some(Ok(chunk)) => chunk.bytes,
            Some(Err(err)) => Encoder::new(false, 0).failed(&err),
            None => Encoder::new(false, 0).dropped(),
        };
        // Dropping `chunks` here stops polling (and cancels) the upstream.
        Some((Ok(last), None))
    })
}

fn encode_stream_at<S>(
    events: S,
    include_usage: bool,
    created: u64,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static
where
    S: Stream<Item = Result<StreamEvent, UpstreamError>> + Send + 'static,
{
    let state = Some((Box::pin(events), Encoder::new(include_usage, created)));
    futures_util::stream::unfold(state, |state| async move {
        let (mut events, mut encoder) = state?;
        loop {
            let step = match events.next().await {
                Some(Ok(event)) => encoder.event(event),
                Some(Err(err)) => Step::Last(encoder.failed(&err)),
                None => Step::Last(encoder.dropped()),
            };
            match step {
                Step::Skip => {}
                Step::Frame(bytes) => return Some((Ok(bytes), Some((events, encoder)))),
                // Dropping `events` here stops polling (and cancels) the upstream.
                Step::Last(bytes) => return Some((Ok(bytes), None)),
            }
        }
    })
}

enum Step {
    /// The event has no OpenAI counterpart (ping, block stop …).
    Skip,
    Frame(Bytes),
    /// The stream's final bytes, `[DONE]` included.
    Last(Bytes),
}

struct Encoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    role_sent: bool,
    /// The content-block index of each tool call; OpenAI's tool-call index is the position.
    tool_blocks: Vec<usize>,
    stop_reason: Option<StopReason>,
    usage: Usage,
    buf: BytesMut,
}

impl Encoder {
    fn new(include_usage: bool, created: u64) -> Self {
        Self {
            id: String::new(),
            model: String::new(),
            created,
            include_usage,
            role_sent: false,
            tool_blocks: Vec::new(),
            stop_reason: None,
            usage: Usage::default(),
            buf: BytesMut::with_capacity(512),
        }
    }

    fn event(&mut self, event: StreamEvent) -> Step {
        match event {
            StreamEvent::Start { id, model, usage } => {
                self.id = id;
                self.model = model;
                self.usage.merge(&usage);
                Step::Frame(self.delta(WireDelta { content: Some(""), ..WireDelta::default() }))
            }
            StreamEvent::BlockStart { index, block } => self.block_start(index, &block),
            StreamEvent::BlockDelta { index, delta } => match delta {
                BlockDelta::Text(text) if !text.is_empty() => Step::Frame(
                    self.delta(WireDelta { content: Some(&text), ..WireDelta::default() }),
                ),
                BlockDelta::Thinking(text) if !text.is_empty() => {
                    Step::Frame(self.delta(WireDelta {
                        reasoning_content: Some(&text),
                        ..WireDelta::default()
                    }))
                }
                BlockDelta::InputJson(fragment) if !fragment.is_empty() => {
                    match self.tool_blocks.iter().position(|&b| b == index) {
                        Some(call) => Step::Frame(self.tool_call(call, None, &fragment)),
                        None => Step::Skip,
                    }
                }
                BlockDelta::Text(_)
                | BlockDelta::Thinking(_)
                | BlockDelta::InputJson(_)
                | BlockDelta::Signature(_) => Step::Skip,
            },
            StreamEvent::Delta { stop_reason, usage, .. } => {
                if stop_reason.is_some() {
                    self.stop_reason = stop_reason;
                }
                self.usage.merge(&usage);
                Step::Skip
            }
            StreamEvent::Stop => Step::Last(self.finish()),
            StreamEvent::BlockStop { .. } | StreamEvent::Ping => Step::Skip,
        }
    }

    fn block_start(&mut self, index: usize, block: &ContentBlock) -> Step {
        match block {
            ContentBlock::Text { text, .. } if !text.is_empty() => {
                Step::Frame(self.delta(WireDelta { content: Some(text), ..WireDelta::default() }))
            }
            ContentBlock::Thinking { thinking, .. } if !thinking.is_empty() => Step::Frame(
                self.delta(WireDelta { reasoning_content: Some(thinking), ..WireDelta::default() }),
            ),
            ContentBlock::ToolUse { id, name, input, .. } => {
                let call = self.tool_blocks.len();
                self.tool_blocks.push(index);
                // Anthropic starts with `{}` and streams the arguments; an adapter that
                // knows them up front sends them here.
                let arguments = match input {
                    serde_json::Value::Object(m) if m.is_empty() => Cow::Borrowed(""),
                    serde_json::Value::Null => Cow::Borrowed(""),
                    other => Cow::Owned(other.to_string()),
                };
                Step::Frame(self.tool_call(call, Some((id, name)), &arguments))
            }
            _ if !self.role_sent => {
                Step::Frame(self.delta(WireDelta { content: Some(""), ..WireDelta::default() }))
            }
            _ => Step::Skip,
        }
    }

    fn tool_call(&mut self, call: usize, start: Option<(&str, &str)>, arguments: &str) -> Bytes {
        let delta = WireToolCallDelta {
            index: call,
            id: start.map(|(id, _)| id),
            kind: start.map(|_| "function"),
            function: WireFunctionDelta { name: start.map(|(_, name)| name), arguments },
        };
        self.delta(WireDelta { tool_calls: Some([delta]), ..WireDelta::default() })
    }

    /// One chunk with `delta` and no finish reason.
    fn delta(&mut self, delta: WireDelta<'_>) -> Bytes {
        self.write_choice(delta, None);
        self.buf.split().freeze()
    }

    fn write_choice(&mut self, mut delta: WireDelta<'_>, finish: Option<&'static str>) {
        if !self.role_sent {
            delta.role = Some("assistant");
            self.role_sent = true;
        }
        let choices = [WireChunkChoice { index: 0, delta, logprobs: (), finish_reason: finish }];
        let chunk = WireChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: &choices,
            usage: self.include_usage.then_some(None),
        };
        write_frame(&mut self.buf, &chunk);
    }

    /// The finish chunk, the usage chunk when asked for, then `[DONE]`.
    fn finish(&mut self) -> Bytes {
        self.write_choice(WireDelta::default(), Some(finish_reason(self.stop_reason)));
        if self.include_usage {
            let chunk = WireChunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                choices: &[],
                usage: Some(Some(WireUsage::from(&self.usage))),
            };
            write_frame(&mut self.buf, &chunk);
        }
        self.buf.extend_from_slice(DONE);
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
        self.error(&api)
    }

    /// The upstream's stream ended without `Stop`.
    fn dropped(&mut self) -> Bytes {
        self.error(&ApiError::new(
            ErrorKind::UpstreamUnavailable,
            "The upstream closed the stream before the answer was complete; the streamed \
             answer is truncated.",
        ))
    }

    fn error(&mut self, err: &ApiError) -> Bytes {
        self.buf.extend_from_slice(&error_frame(err));
        self.buf.extend_from_slice(DONE);
        self.buf.split().freeze()
    }
}

fn write_frame<T: Serialize>(buf: &mut BytesMut, chunk: &T) {
    let mark = buf.len();
    buf.extend_from_slice(b"data: ");
    if serde_json::to_writer(buf.writer(), chunk).is_err() {
        buf.truncate(mark);
        buf.extend_from_slice(&error_frame(&ApiError::new(
            ErrorKind::Internal,
            "Switchyard could not encode a stream chunk.",
        )));
        return;
    }
    buf.extend_from_slice(b"\n\n");
}

#[derive(Serialize)]
struct WireChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [WireChunkChoice<'a>],
    /// Absent unless usage was asked for; then `null` on every chunk but the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<WireUsage>>,
}

#[derive(Serialize)]
struct WireChunkChoice<'a> {
    index: u32,
    delta: WireDelta<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct WireDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    /// LiteLLM's field for thinking text.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[WireToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct WireToolCallDelta<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: WireFunctionDelta<'a>,
}

#[derive(Serialize)]
struct WireFunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::stream;

    use super::*;
    use crate::classify::Diagnosis;

    type Item = Result<StreamEvent, UpstreamError>;

    async fn collect(events: Vec<Item>, include_usage: bool) -> String {
        let frames: Vec<_> =
            encode_stream_at(stream::iter(events), include_usage, 7).collect().await;
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

    const HEAD: &str = r#"data: {"id":"msg_1","object":"chat.completion.chunk","created":7,"model":"m","choices":"#;

    fn chunk(choice: &str, usage: &str) -> String {
        format!(
            "{HEAD}[{{\"index\":0,{choice},\"logprobs\":null,\"finish_reason\":null}}]{usage}}}\n\n"
        )
    }

    #[tokio::test]
    async fn text_stream_without_usage_is_exact() {
        let expected = [
            chunk(r#""delta":{"role":"assistant","content":""}"#, ""),
            chunk(r#""delta":{"content":"Hel"}"#, ""),
            chunk(r#""delta":{"content":"lo"}"#, ""),
            format!("{HEAD}[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n"),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat();
        assert_eq!(collect(text_events(), false).await, expected);
    }

    #[tokio::test]
    async fn text_stream_with_usage_is_exact() {
        let expected = [
            chunk(r#""delta":{"role":"assistant","content":""}"#, r#","usage":null"#),
            chunk(r#""delta":{"content":"Hel"}"#, r#","usage":null"#),
            chunk(r#""delta":{"content":"lo"}"#, r#","usage":null"#),
            format!("{HEAD}[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":null}}\n\n"),
            format!("{HEAD}[],\"usage\":{{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7,\"prompt_tokens_details\":{{\"cached_tokens\":0}}}}}}\n\n"),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat();
        assert_eq!(collect(text_events(), true).await, expected);
    }

    #[tokio::test]
    async fn tool_call_stream_announces_then_streams_arguments() {
        let events = vec![
            Ok(StreamEvent::Start { id: "msg_1".into(), model: "m".into(), usage: usage(5, 0) }),
            Ok(StreamEvent::BlockStart { index: 0, block: ContentBlock::text("") }),
            Ok(StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Text("Checking.".into()) }),
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
            Ok(StreamEvent::BlockDelta {
                index: 1,
                delta: BlockDelta::InputJson("{\"city\":".into()),
            }),
            Ok(StreamEvent::BlockDelta {
                index: 1,
                delta: BlockDelta::InputJson("\"Paris\"}".into()),
            }),
            Ok(StreamEvent::BlockStop { index: 1 }),
            Ok(StreamEvent::Delta {
                stop_reason: Some(StopReason::ToolUse),
                stop_sequence: None,
                usage: usage(0, 9),
            }),
            Ok(StreamEvent::Stop),
        ];
        let expected = [
            chunk(r#""delta":{"role":"assistant","content":""}"#, ""),
            chunk(r#""delta":{"content":"Checking."}"#, ""),
            chunk(r#""delta":{"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":""}}]}"#, ""),
            chunk(r#""delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}"#, ""),
            chunk(r#""delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}"#, ""),
            format!("{HEAD}[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}}]}}\n\n"),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat();
        assert_eq!(collect(events, false).await, expected);
    }

    #[tokio::test]
    async fn upstream_error_mid_stream_ends_with_error_chunk_then_done() {
        let mut events: Vec<Item> = text_events().into_iter().take(4).collect();
        let mut err = UpstreamError::new(ErrorKind::Overloaded, "Overloaded");
        err.diagnosis = Some(Diagnosis::new("ANT-09", "", "Retry later."));
        err.retry_after = Some(Duration::from_secs(3));
        events.push(Err(err));
        events.push(Ok(StreamEvent::Stop)); // never read: the error ends the stream
        let out = collect(events, true).await;
        let expected_tail = concat!(
            r#"data: {"error":{"message":"The upstream failed after the response started: "#,
            r#"Overloaded Fix: Retry later.","type":"api_error","param":null,"code":"overloaded","#,
            r#""diagnosis":{"id":"ANT-09","cause":"","remedy":"Retry later."}}}"#,
            "\n\ndata: [DONE]\n\n"
        );
        assert!(out.ends_with(expected_tail), "{out}");
        assert!(out.contains(r#""content":"Hel""#), "{out}");
        assert_eq!(out.matches("[DONE]").count(), 1, "{out}");
        assert!(!out.contains("finish_reason\":\"stop"), "{out}");
    }

    #[tokio::test]
    async fn stream_ending_without_stop_is_an_error_not_a_truncation() {
        let events: Vec<Item> = text_events().into_iter().take(7).collect(); // up to Delta
        let out = collect(events, false).await;
        let expected_tail = concat!(
            r#"data: {"error":{"message":"The upstream closed the stream before the answer was complete; "#,
            r#"the streamed answer is truncated.","type":"api_error","param":null,"code":"upstream_unavailable"}}"#,
            "\n\ndata: [DONE]\n\n"
        );
        assert!(out.ends_with(expected_tail), "{out}");
        assert!(!out.contains("finish_reason\":\"stop"), "{out}");
    }

    #[tokio::test]
    async fn empty_upstream_stream_is_an_error() {
        let out = collect(vec![], false).await;
        assert!(out.starts_with("data: {\"error\":"), "{out}");
        assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
    }

    #[tokio::test]
    async fn each_event_is_yielded_as_it_arrives() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Item>(4);
        let events = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
        let mut out = Box::pin(encode_stream(events, false));
        tx.send(Ok(StreamEvent::Start { id: "a".into(), model: "m".into(), usage: usage(1, 0) }))
            .await
            .unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), out.next()).await.unwrap();
        assert!(
            std::str::from_utf8(&first.unwrap().unwrap())
                .unwrap()
                .contains("\"role\":\"assistant\"")
        );
        tx.send(Ok(StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Text("x".into()) }))
            .await
            .unwrap();
        let second = tokio::time::timeout(Duration::from_secs(5), out.next()).await.unwrap();
        assert!(
            std::str::from_utf8(&second.unwrap().unwrap()).unwrap().contains("\"content\":\"x\"")
        );
        tx.send(Ok(StreamEvent::Stop)).await.unwrap();
        let last = out.next().await.unwrap().unwrap();
        assert!(last.ends_with(DONE));
        assert!(out.next().await.is_none());
    }
}
