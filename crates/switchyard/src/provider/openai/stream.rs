//! OpenAI chat completion chunks (SSE `data:` lines ending with `[DONE]`) → canonical
//! [`StreamEvent`]s.
//!
//! [`open`] is the streaming commit point: it resolves once the first chunk is known, so an
//! error or a closed stream before it is an ordinary failed attempt. After that, an error
//! object, a broken connection, a silence longer than the idle timeout, or an end before
//! `[DONE]` and before a `finish_reason` each end the stream with an `Err` item — never a
//! silent truncation. Only one chunk's events are held at a time; nothing is spawned:
//! dropping the stream drops the upstream connection.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;

use super::Site;
use super::response::{WireUsage, stop_reason, tool_input};
use crate::canonical::{BlockDelta, ContentBlock, StopReason, StreamEvent, Usage};
use crate::classify::{ErrorKind, UpstreamError, openai_stream_error};
use crate::provider::EventStream;
use crate::provider::http::{Error, Response, Timeout, broken, timeout_error};

type Sse = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<Error>>> + Send>>;

/// The idle timeout between chunks and the setting it came from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Idle {
    pub after: std::time::Duration,
    pub setting: &'static str,
}

/// Reads `response` (a 200 with an SSE body) up to its first chunk and returns the stream of
/// canonical events, that chunk's first.
pub(super) async fn open(
    response: Response,
    site: Arc<Site>,
    idle: Idle,
) -> Result<EventStream, UpstreamError> {
    open_with::<Decoder>(response, site, idle).await
}

/// What turns one upstream SSE payload into canonical events: chat completion chunks here,
/// Responses API events in `native`.
pub(super) trait Decode: Default + Send + 'static {
    /// One SSE `data:` payload → events queued for [`Decode::pop`].
    fn decode(&mut self, data: &str, site: &Site) -> Result<(), UpstreamError>;
    fn pop(&mut self) -> Option<StreamEvent>;
    /// The events are complete (the end marker was seen).
    fn finished(&self) -> bool;
    /// The answer is complete even if the body ends now (a finish reason was seen).
    fn answered(&self) -> bool;
    /// Closes the answer after a body that ended once it was answered.
    fn finish(&mut self);
}

impl Decode for Decoder {
    fn decode(&mut self, data: &str, site: &Site) -> Result<(), UpstreamError> {
        Decoder::decode(self, data, site)
    }
    fn pop(&mut self) -> Option<StreamEvent> {
        self.out.pop_front()
    }
    fn finished(&self) -> bool {
        self.finished
    }
    fn answered(&self) -> bool {
        self.finish_reason.is_some()
    }
    fn finish(&mut self) {
        Decoder::finish(self);
    }
}

/// [`open`] with the decoder `D`.
pub(super) async fn open_with<D: Decode>(
    response: Response,
    site: Arc<Site>,
    idle: Idle,
) -> Result<EventStream, UpstreamError> {
    let sse: Sse = Box::pin(response.bytes_stream().eventsource());
    let mut state = State { sse, decoder: D::default(), site, idle, seen: 0, done: false };
    // The caller bounds the wait for the first chunk (stream_timeout).
    let first = loop {
        match state.sse.next().await {
            None => return Err(state.dropped()),
            Some(Err(e)) => return Err(state.broken(e)),
            Some(Ok(event)) => {
                state.seen += 1;
                state.decoder.decode(&event.data, &state.site)?;
                if let Some(first) = state.decoder.pop() {
                    break first;
                }
            }
        }
    };
    let rest = futures_util::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    });
    Ok(Box::pin(futures_util::stream::once(async { Ok(first) }).chain(rest)))
}

struct State<D> {
    sse: Sse,
    decoder: D,
    site: Arc<Site>,
    idle: Idle,
    /// Upstream chunks read so far, for messages.
    seen: usize,
    done: bool,
}

impl<D: Decode> State<D> {
    async fn next(&mut self) -> Option<Result<StreamEvent, UpstreamError>> {
        loop {
            if let Some(event) = self.decoder.pop() {
                return Some(Ok(event));
            }
            if self.done || self.decoder.finished() {
                return None;
            }
            let item = match tokio::time::timeout(self.idle.after, self.sse.next()).await {
                Ok(item) => item,
                Err(_) => {
                    self.done = true;
                    let (after, setting) = (self.idle.after, self.idle.setting);
                    return Some(Err(timeout_error(&self.site.who, Timeout::Idle, after, setting)));
                }
            };
            match item {
                Some(Ok(event)) => {
                    self.seen += 1;
                    if let Err(e) = self.decoder.decode(&event.data, &self.site) {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                // A server that ends the body after the finish reason without `[DONE]`
                // (some do) has still answered completely.
                None if self.decoder.answered() => {
                    self.done = true;
                    self.decoder.finish();
                }
                None => {
                    self.done = true;
                    return Some(Err(self.dropped()));
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(self.broken(e)));
                }
            }
        }
    }

    fn dropped(&self) -> UpstreamError {
        let what = format!("the stream ended after {} chunks, before [DONE]", self.seen);
        broken(&self.site.destination(), &what)
    }

    fn broken(&self, e: EventStreamError<Error>) -> UpstreamError {
        match e {
            EventStreamError::Transport(e) => self.site.transport(&e),
            EventStreamError::Utf8(e) => unreadable(&format!("the stream is not UTF-8: {e}")),
            EventStreamError::Parser(e) => unreadable(&format!("the stream is not SSE: {e}")),
        }
    }
}

/// How the canonical path fails on the chunk `data`, if it does: the relay's errors are
/// the translation's, in its words.
pub(super) fn failure(data: &str, site: &Site) -> Option<UpstreamError> {
    Decoder::default().decode(data, site).err()
}

fn unreadable(message: &str) -> UpstreamError {
    UpstreamError::new(ErrorKind::UpstreamUnavailable, message)
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: usize,
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    content: Option<String>,
    refusal: Option<String>,
    reasoning_content: Option<String>,
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Vec<DeltaToolCall>,
}

#[derive(Deserialize)]
struct DeltaToolCall {
    #[serde(default)]
    index: usize,
    id: Option<String>,
    function: Option<DeltaFunction>,
}

#[derive(Deserialize)]
struct DeltaFunction {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Text,
    Thinking,
    /// A tool call, by its OpenAI index.
    Tool(usize),
}

/// Per-stream translation state: the block being streamed, what the chunks said so far.
#[derive(Default)]
struct Decoder {
    out: VecDeque<StreamEvent>,
    started: bool,
    /// The open block: its canonical index and what it is.
    open: Option<(usize, Open)>,
    /// The id of the open tool call (some servers repeat it in every delta).
    open_tool_id: Option<String>,
    next_index: usize,
    finish_reason: Option<String>,
    refused: bool,
    usage: Usage,
    /// `[DONE]` was seen (or the body ended after a finish reason): the events are complete.
    finished: bool,
}

impl Decoder {
    /// One SSE `data:` payload → events appended to `out`.
    fn decode(&mut self, data: &str, site: &Site) -> Result<(), UpstreamError> {
        let data = data.trim();
        if data == "[DONE]" {
            self.finish();
            return Ok(());
        }
        if data.is_empty() || self.finished {
            return Ok(());
        }
        let value: Value = serde_json::from_str(data)
            .map_err(|e| unreadable(&format!("the upstream sent an unreadable chunk: {e}")))?;
        if value.get("error").is_some_and(|e| !e.is_null()) {
            return Err(openai_stream_error(&site.deployment, data));
        }
        let chunk: Chunk = serde_json::from_value(value)
            .map_err(|e| unreadable(&format!("the upstream sent an unreadable chunk: {e}")))?;
        if !self.started {
            self.started = true;
            self.out.push_back(StreamEvent::Start {
                id: chunk.id.clone(),
                model: chunk.model.clone(),
                usage: Usage::default(),
            });
        }
        if let Some(usage) = chunk.usage {
            self.usage = usage.canonical();
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let delta = choice.delta.unwrap_or_default();
            if let Some(t) = delta.reasoning_content.or(delta.reasoning).filter(|t| !t.is_empty()) {
                self.delta(Open::Thinking, BlockDelta::Thinking(t));
            }
            if let Some(t) = delta.content.filter(|t| !t.is_empty()) {
                self.delta(Open::Text, BlockDelta::Text(t));
            }
            if let Some(t) = delta.refusal.filter(|t| !t.is_empty()) {
                self.refused = true;
                self.delta(Open::Text, BlockDelta::Text(t));
            }
            for call in delta.tool_calls {
                self.tool_call(call);
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
        }
        Ok(())
    }

    /// A delta for a block of kind `kind`, opening it (and closing the previous) as needed.
    fn delta(&mut self, kind: Open, delta: BlockDelta) {
        let index = match self.open {
            Some((index, open)) if open == kind => index,
            _ => {
                let block = match kind {
                    Open::Thinking => {
                        ContentBlock::Thinking { thinking: String::new(), signature: None }
                    }
                    _ => ContentBlock::text(""),
                };
                self.start(kind, block)
            }
        };
        self.out.push_back(StreamEvent::BlockDelta { index, delta });
    }

    fn tool_call(&mut self, call: DeltaToolCall) {
        let function = call.function.unwrap_or(DeltaFunction { name: None, arguments: None });
        let index = match self.open {
            Some((index, Open::Tool(k)))
                if k == call.index && (call.id.is_none() || call.id == self.open_tool_id) =>
            {
                index
            }
            _ => {
                let id = call.id.unwrap_or_else(|| format!("call_{}", call.index));
                self.open_tool_id = Some(id.clone());
                let block = ContentBlock::ToolUse {
                    id,
                    name: function.name.unwrap_or_default(),
                    input: tool_input(None),
                    cache_control: None,
                };
                self.start(Open::Tool(call.index), block)
            }
        };
        if let Some(arguments) = function.arguments.filter(|a| !a.is_empty()) {
            self.out.push_back(StreamEvent::BlockDelta {
                index,
                delta: BlockDelta::InputJson(arguments),
            });
        }
    }

    fn start(&mut self, kind: Open, block: ContentBlock) -> usize {
        self.close();
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, kind));
        self.out.push_back(StreamEvent::BlockStart { index, block });
        index
    }

    fn close(&mut self) {
        if let Some((index, _)) = self.open.take() {
            self.out.push_back(StreamEvent::BlockStop { index });
        }
    }

    /// The end: close the open block, then the stop reason with the whole usage, then `Stop`.
    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if !self.started {
            self.started = true;
            self.out.push_back(StreamEvent::Start {
                id: String::new(),
                model: String::new(),
                usage: Usage::default(),
            });
        }
        self.close();
        let reason = match (self.refused, self.finish_reason.as_deref()) {
            (true, _) => Some(StopReason::Refusal),
            (false, reason) => reason.map(stop_reason),
        };
        self.out.push_back(StreamEvent::Delta {
            stop_reason: reason,
            stop_sequence: None,
            usage: self.usage,
        });
        self.out.push_back(StreamEvent::Stop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&str]) -> Vec<StreamEvent> {
        let site = super::super::tests::site();
        let mut d = Decoder::default();
        for c in chunks {
            d.decode(c, &site).unwrap();
        }
        d.out.into_iter().collect()
    }

    #[test]
    fn text_then_tool_call_then_usage() {
        let events = decode_all(&[
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]}}]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4}}}"#,
            "[DONE]",
        ]);
        let usage = Usage {
            input_tokens: 6,
            output_tokens: 5,
            cache_read_input_tokens: 4,
            ..Usage::default()
        };
        assert_eq!(
            events,
            vec![
                StreamEvent::Start {
                    id: "c1".into(),
                    model: "gpt-4o".into(),
                    usage: Usage::default()
                },
                StreamEvent::BlockStart { index: 0, block: ContentBlock::text("") },
                StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Text("Hi".into()) },
                StreamEvent::BlockStop { index: 0 },
                StreamEvent::BlockStart {
                    index: 1,
                    block: ContentBlock::ToolUse {
                        id: "call_1".into(),
                        name: "f".into(),
                        input: serde_json::json!({}),
                        cache_control: None
                    }
                },
                StreamEvent::BlockDelta {
                    index: 1,
                    delta: BlockDelta::InputJson("{\"a\":".into())
                },
                StreamEvent::BlockDelta { index: 1, delta: BlockDelta::InputJson("1}".into()) },
                StreamEvent::BlockStop { index: 1 },
                StreamEvent::Delta {
                    stop_reason: Some(StopReason::ToolUse),
                    stop_sequence: None,
                    usage
                },
                StreamEvent::Stop,
            ]
        );
    }

    #[test]
    fn an_error_chunk_fails_the_stream() {
        let site = super::super::tests::site();
        let mut d = Decoder::default();
        let err = d
            .decode(r#"{"error":{"message":"boom","type":"server_error","code":null}}"#, &site)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::UpstreamUnavailable);
    }
}
