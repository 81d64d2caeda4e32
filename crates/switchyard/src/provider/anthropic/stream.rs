//! Anthropic SSE → canonical [`StreamEvent`]s, one upstream event at a time.
//!
//! [`open`] is the streaming commit point: it resolves once the first event is known, so an
//! `error` event or a closed stream before it is an ordinary failed attempt. After that, an
//! `error` event, a broken connection, a silence longer than the idle timeout, or an end
//! before `message_stop` each end the stream with an `Err` item — never a silent truncation.
//! Nothing here buffers more than one event, and nothing is spawned: dropping the stream
//! drops the upstream connection.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;

use super::Site;
use super::body::JSON_TOOL;
use super::response::{WireBlock, WireUsage, stop_reason};
use crate::canonical::{BlockDelta, ContentBlock, StopReason, StreamEvent};
use crate::classify::{ErrorKind, UpstreamError, anthropic_stream_error};
use crate::config::Deployment;
use crate::provider::EventStream;
use crate::provider::http::{Error, Response, Timeout, broken, timeout_error, transport_error};

pub(super) type Sse = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<Error>>> + Send>>;

/// The idle timeout between events and the setting it came from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Idle {
    pub after: Duration,
    pub setting: &'static str,
}

/// Reads `response` (a 200 with an SSE body) up to its first event and returns the stream
/// of canonical events, that event first.
pub(super) async fn open(
    response: Response,
    json_mode: bool,
    site: Arc<Site>,
    idle: Idle,
) -> Result<EventStream, UpstreamError> {
    open_sse(Box::pin(response.bytes_stream().eventsource()), json_mode, site, idle).await
}

pub(super) async fn open_sse(
    sse: Sse,
    json_mode: bool,
    site: Arc<Site>,
    idle: Idle,
) -> Result<EventStream, UpstreamError> {
    let mut state =
        State { sse, decoder: Decoder::new(json_mode), site, idle, seen: 0, done: false };
    // The caller bounds the wait for the first event (stream_timeout).
    let first = loop {
        match state.sse.next().await {
            None => return Err(state.dropped()),
            Some(Err(e)) => return Err(state.broken(e)),
            Some(Ok(event)) => {
                state.seen += 1;
                if let Some(first) = state.decoder.decode(&event, &state.site.deployment)? {
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

struct State {
    sse: Sse,
    decoder: Decoder,
    site: Arc<Site>,
    idle: Idle,
    /// Upstream events read so far, for messages.
    seen: usize,
    done: bool,
}

impl State {
    async fn next(&mut self) -> Option<Result<StreamEvent, UpstreamError>> {
        if self.done {
            return None;
        }
        loop {
            let item = match tokio::time::timeout(self.idle.after, self.sse.next()).await {
                Ok(item) => item,
                Err(_) => {
                    self.done = true;
                    let who = &self.site.who;
                    return Some(Err(timeout_error(
                        who,
                        Timeout::Idle,
                        self.idle.after,
                        self.idle.setting,
                    )));
                }
            };
            let event = match item {
                Some(Ok(event)) => event,
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
                    return Some(Err(self.broken(e)));
                }
            };
            self.seen += 1;
            match self.decoder.decode(&event, &self.site.deployment) {
                Ok(None) => {}
                Ok(Some(event)) => {
                    // After `message_stop` nothing more is read: the answer is complete.
                    self.done = matches!(event, StreamEvent::Stop);
                    return Some(Ok(event));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }

    /// The body ended before `message_stop`.
    fn dropped(&self) -> UpstreamError {
        let what = format!("the stream ended after {} events, before message_stop", self.seen);
        broken(&self.site.destination(), &what)
    }

    fn broken(&self, e: EventStreamError<Error>) -> UpstreamError {
        match e {
            EventStreamError::Transport(e) => transport_error(&e, &self.site.destination()),
            EventStreamError::Utf8(e) => unreadable(&format!("the stream is not UTF-8: {e}")),
            EventStreamError::Parser(e) => unreadable(&format!("the stream is not SSE: {e}")),
        }
    }
}

fn unreadable(message: &str) -> UpstreamError {
    UpstreamError::new(ErrorKind::UpstreamUnavailable, message)
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: WireBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: WireDelta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDelta,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop,
    Ping,
    Error,
    #[serde(other)]
    Unknown,
}

/// A `content_block_delta` read without buffering; anything else about it (another delta
/// type, a missing field) goes to [`WireEvent`], which decides as it always did.
#[derive(Deserialize)]
struct TextDeltaEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    index: usize,
    #[serde(borrow)]
    delta: TextDelta<'a>,
}

#[derive(Deserialize)]
struct TextDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    text: Option<String>,
}

#[derive(Deserialize)]
struct StartMessage {
    id: String,
    model: String,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
struct MessageDelta {
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    SignatureDelta {
        signature: String,
    },
    #[serde(other)]
    Other,
}

/// Per-stream translation state: which blocks were skipped or carry the JSON answer.
/// Bedrock's decoded chunks go through it too.
pub(crate) struct Decoder {
    json_mode: bool,
    /// Blocks of types the canonical stream cannot represent: their deltas are skipped too.
    skipped: Vec<usize>,
    /// The `response_format` tool's block, streamed as text.
    json_block: Option<usize>,
    other_tools: bool,
    /// `message_stop` was seen.
    pub(crate) stopped: bool,
}

impl Decoder {
    pub(crate) fn new(json_mode: bool) -> Self {
        Self {
            json_mode,
            skipped: Vec::new(),
            json_block: None,
            other_tools: false,
            stopped: false,
        }
    }

    /// One upstream event → at most one canonical event.
    pub(crate) fn decode(
        &mut self,
        event: &Event,
        deployment: &Deployment,
    ) -> Result<Option<StreamEvent>, UpstreamError> {
        if event.event == "error" {
            return Err(anthropic_stream_error(deployment, &event.data));
        }
        // Nearly every event of an answer is a text delta: read it in one pass. The tagged
        // `WireEvent` makes serde buffer the event, then its delta, before reading them.
        if event.event == "content_block_delta"
            && let Ok(TextDeltaEvent { kind: "content_block_delta", index, delta }) =
                serde_json::from_str(&event.data)
            && delta.kind == "text_delta"
            && let Some(text) = delta.text
        {
            if self.skipped.contains(&index) {
                return Ok(None);
            }
            return Ok(Some(StreamEvent::BlockDelta { index, delta: BlockDelta::Text(text) }));
        }
        let wire: WireEvent = serde_json::from_str(&event.data).map_err(|e| {
            unreadable(&format!("the upstream sent an unreadable `{}` event: {e}", event.event))
        })?;
        if let WireEvent::ContentBlockDelta { index, .. } | WireEvent::ContentBlockStop { index } =
            &wire
            && self.skipped.contains(index)
        {
            return Ok(None);
        }
        Ok(match wire {
            WireEvent::MessageStart { message } => Some(StreamEvent::Start {
                id: message.id,
                model: message.model,
                usage: message.usage.into(),
            }),
            WireEvent::ContentBlockStart { index, content_block } => {
                self.block_start(index, content_block)
            }
            WireEvent::ContentBlockDelta { index, delta } => {
                let delta = match delta {
                    WireDelta::TextDelta { text } => BlockDelta::Text(text),
                    WireDelta::InputJsonDelta { partial_json }
                        if self.json_block == Some(index) =>
                    {
                        BlockDelta::Text(partial_json)
                    }
                    WireDelta::InputJsonDelta { partial_json } => {
                        BlockDelta::InputJson(partial_json)
                    }
                    WireDelta::ThinkingDelta { thinking } => BlockDelta::Thinking(thinking),
                    WireDelta::SignatureDelta { signature } => BlockDelta::Signature(signature),
                    WireDelta::Other => return Ok(None),
                };
                Some(StreamEvent::BlockDelta { index, delta })
            }
            WireEvent::ContentBlockStop { index } => Some(StreamEvent::BlockStop { index }),
            WireEvent::MessageDelta { delta, usage } => {
                let mut reason = stop_reason(delta.stop_reason.as_deref());
                if self.json_block.is_some()
                    && !self.other_tools
                    && reason == Some(StopReason::ToolUse)
                {
                    reason = Some(StopReason::EndTurn);
                }
                Some(StreamEvent::Delta {
                    stop_reason: reason,
                    stop_sequence: delta.stop_sequence,
                    usage: usage.into(),
                })
            }
            WireEvent::MessageStop => {
                self.stopped = true;
                Some(StreamEvent::Stop)
            }
            WireEvent::Ping => Some(StreamEvent::Ping),
            // An `error` payload under another event name is still an error.
            WireEvent::Error => return Err(anthropic_stream_error(deployment, &event.data)),
            WireEvent::Unknown => None,
        })
    }

    fn block_start(&mut self, index: usize, block: WireBlock) -> Option<StreamEvent> {
        let Some(block) = block.into_canonical() else {
            self.skipped.push(index);
            return None;
        };
        let block = match block {
            ContentBlock::ToolUse { name, .. } if self.json_mode && name == JSON_TOOL => {
                self.json_block = Some(index);
                ContentBlock::text("")
            }
            tool @ ContentBlock::ToolUse { .. } => {
                self.other_tools = true;
                tool
            }
            other => other,
        };
        Some(StreamEvent::BlockStart { index, block })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::canonical::Usage;

    fn site() -> Site {
        super::super::tests::site()
    }

    fn ev(name: &str, data: serde_json::Value) -> Event {
        Event { event: name.into(), data: data.to_string(), ..Event::default() }
    }

    fn decode_all(
        json_mode: bool,
        events: &[Event],
    ) -> Vec<Result<Option<StreamEvent>, ErrorKind>> {
        let site = site();
        let mut d = Decoder::new(json_mode);
        events.iter().map(|e| d.decode(e, &site.deployment).map_err(|e| e.kind)).collect()
    }

    #[test]
    fn every_event_type_maps_and_unknown_ones_are_skipped() {
        let out = decode_all(
            false,
            &[
                ev(
                    "message_start",
                    json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-6", "content": [], "stop_reason": null,
                "usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 1,
                    "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 300}}}}),
                ),
                ev(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ),
                ev("ping", json!({"type": "ping"})),
                ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
                ),
                ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta", "citation": {}}}),
                ),
                ev("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                ev("brand_new_event", json!({"type": "brand_new_event", "x": 1})),
                ev(
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": 5}}),
                ),
                ev("message_stop", json!({"type": "message_stop"})),
            ],
        );
        assert_eq!(
            out,
            vec![
                Ok(Some(StreamEvent::Start {
                    id: "msg_1".into(),
                    model: "claude-sonnet-4-6".into(),
                    usage: Usage {
                        input_tokens: 10,
                        output_tokens: 1,
                        cache_read_input_tokens: 90,
                        // Only the breakdown was sent: the writes are its sum.
                        cache_creation_input_tokens: 320,
                        cache_creation_1h_input_tokens: 300,
                    }
                })),
                Ok(Some(StreamEvent::BlockStart { index: 0, block: ContentBlock::text("") })),
                Ok(Some(StreamEvent::Ping)),
                Ok(Some(StreamEvent::BlockDelta {
                    index: 0,
                    delta: BlockDelta::Text("Hi".into())
                })),
                Ok(None),
                Ok(Some(StreamEvent::BlockStop { index: 0 })),
                Ok(None),
                Ok(Some(StreamEvent::Delta {
                    stop_reason: Some(StopReason::EndTurn),
                    stop_sequence: None,
                    usage: Usage { output_tokens: 5, ..Usage::default() }
                })),
                Ok(Some(StreamEvent::Stop)),
            ]
        );
    }

    #[test]
    fn text_deltas_read_in_one_pass_decode_as_the_tagged_events_do() {
        let delta = |index: u64, delta: serde_json::Value| json!({"type": "content_block_delta", "index": index, "delta": delta});
        let skipped_start = ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}}),
        );
        let out = decode_all(
            false,
            &[
                ev("content_block_delta", delta(0, json!({"type": "text_delta", "text": "a\"b"}))),
                // No `event:` line: the data's type decides, as before.
                ev("message", delta(0, json!({"type": "text_delta", "text": "c"}))),
                skipped_start,
                ev("content_block_delta", delta(1, json!({"type": "text_delta", "text": "x"}))),
                ev("content_block_delta", delta(0, json!({"type": "text_delta", "text": null}))),
                ev("content_block_delta", json!({"type": "ping"})),
            ],
        );
        assert_eq!(
            out,
            vec![
                Ok(Some(StreamEvent::BlockDelta {
                    index: 0,
                    delta: BlockDelta::Text("a\"b".into())
                })),
                Ok(Some(StreamEvent::BlockDelta { index: 0, delta: BlockDelta::Text("c".into()) })),
                Ok(None),
                Ok(None),
                Err(ErrorKind::UpstreamUnavailable),
                Ok(Some(StreamEvent::Ping)),
            ]
        );
    }

    #[test]
    fn blocks_of_unknown_types_are_skipped_with_their_deltas() {
        let out = decode_all(
            false,
            &[
                ev(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}}),
                ),
                ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"q\""}}),
                ),
                ev("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
            ],
        );
        assert_eq!(out, vec![Ok(None), Ok(None), Ok(None)]);
    }

    #[test]
    fn json_mode_streams_the_tool_input_as_text_and_stops_normally() {
        let out = decode_all(
            true,
            &[
                ev(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "json_tool_call", "input": {}}}),
                ),
                ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
                ),
                ev(
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 3}}),
                ),
            ],
        );
        assert_eq!(
            out[0],
            Ok(Some(StreamEvent::BlockStart { index: 0, block: ContentBlock::text("") }))
        );
        assert_eq!(
            out[1],
            Ok(Some(StreamEvent::BlockDelta {
                index: 0,
                delta: BlockDelta::Text("{\"a\":".into())
            }))
        );
        assert!(matches!(
            &out[2],
            Ok(Some(StreamEvent::Delta { stop_reason: Some(StopReason::EndTurn), .. }))
        ));
    }

    /// The canonical items of an upstream that sends `events` and then ends (or, with
    /// `hang`, goes silent), read with a 50 ms idle timeout.
    async fn relay(
        events: Vec<Event>,
        hang: bool,
    ) -> Result<Vec<Result<StreamEvent, ErrorKind>>, ErrorKind> {
        let items = futures_util::stream::iter(events.into_iter().map(Ok));
        let sse: Sse = if hang {
            Box::pin(items.chain(futures_util::stream::pending()))
        } else {
            Box::pin(items)
        };
        let idle = Idle { after: Duration::from_millis(50), setting: "stream_timeout" };
        let stream = open_sse(sse, false, Arc::new(site()), idle).await.map_err(|e| e.kind)?;
        Ok(stream.map(|item| item.map_err(|e| e.kind)).collect().await)
    }

    fn start() -> Event {
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "m", "model": "c", "usage": {}}}),
        )
    }

    #[tokio::test]
    async fn an_end_before_message_stop_is_an_error_item_never_a_silent_end() {
        let items = relay(vec![start(), ev("ping", json!({"type": "ping"}))], false).await.unwrap();
        assert!(matches!(items[0], Ok(StreamEvent::Start { .. })));
        assert_eq!(items[1..], [Ok(StreamEvent::Ping), Err(ErrorKind::UpstreamUnavailable)]);
        let items = relay(vec![start(), ev("message_stop", json!({"type": "message_stop"}))], true)
            .await
            .unwrap();
        assert_eq!(items[1..], [Ok(StreamEvent::Stop)], "nothing is read after message_stop");
    }

    #[tokio::test]
    async fn silence_longer_than_the_idle_timeout_ends_the_stream_with_a_timeout() {
        let items = relay(vec![start()], true).await.unwrap();
        assert_eq!(items[1..], [Err(ErrorKind::Timeout)]);
    }

    #[tokio::test]
    async fn nothing_or_an_error_before_the_first_event_fails_the_attempt() {
        assert_eq!(relay(Vec::new(), false).await.err(), Some(ErrorKind::UpstreamUnavailable));
        let overloaded = ev(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
        assert_eq!(relay(vec![overloaded], false).await.err(), Some(ErrorKind::Overloaded));
        let unknown = ev("brand_new", json!({"type": "brand_new"}));
        let items = relay(
            vec![unknown, start(), ev("message_stop", json!({"type": "message_stop"}))],
            false,
        )
        .await
        .unwrap();
        assert!(
            matches!(items[0], Ok(StreamEvent::Start { .. })),
            "unknown events before the first are skipped"
        );
    }

    #[test]
    fn an_error_event_is_an_err_classified_by_its_type() {
        let out = decode_all(
            false,
            &[ev(
                "error",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            )],
        );
        assert_eq!(out, vec![Err(ErrorKind::Overloaded)]);
        let out = decode_all(false, &[ev("message_start", json!("not an object"))]);
        assert_eq!(out, vec![Err(ErrorKind::UpstreamUnavailable)]);
    }
}
