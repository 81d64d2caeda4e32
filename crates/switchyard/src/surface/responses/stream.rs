//! Encodes a canonical event stream as Responses SSE events (`event: <type>` and a `data:`
//! object carrying `type` and `sequence_number`).
//!
//! Each event is encoded the moment it arrives: nothing buffers the whole answer. The stream
//! ends with `response.completed` (or `response.incomplete`); a failure after the first byte,
//! or an upstream that stops early, ends it with `response.failed` — never a silent
//! truncation.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};

use super::items::{OutputIds, id_kind, output_item, with_namespace};
use super::request::Echo;
use super::response::{Outcome, Status, response_object};
use crate::canonical::{BlockDelta, ContentBlock, StopReason, StreamEvent, Usage};
use crate::classify::{ApiError, ErrorKind, UpstreamError};

/// SSE frames for `events`, as Response `id` created at `created_at`.
pub fn encode_stream<S>(
    events: S,
    id: String,
    created_at: u64,
    echo: Arc<Echo>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static
where
    S: Stream<Item = Result<StreamEvent, UpstreamError>> + Send + 'static,
{
    let encoder = Encoder::new(id, created_at, echo);
    let state = Some((Box::pin(events), encoder));
    futures_util::stream::unfold(state, |state| async move {
        let (mut events, mut encoder) = state?;
        loop {
            let last = match events.next().await {
                Some(Ok(event)) => encoder.event(event),
                Some(Err(err)) => {
                    encoder.failed(&err);
                    true
                }
                None => {
                    encoder.dropped();
                    true
                }
            };
            if encoder.buf.is_empty() && !last {
                continue;
            }
            let bytes = encoder.buf.split().freeze();
            // Dropping `events` on the last frame stops polling (and cancels) the upstream.
            return Some((Ok(bytes), if last { None } else { Some((events, encoder)) }));
        }
    })
}

/// One output item being streamed.
struct Open {
    block: usize,
    output_index: usize,
    id: String,
    block_value: ContentBlock,
    /// Text, arguments or thinking received so far.
    text: String,
    signature: String,
}

struct Encoder {
    id: String,
    created_at: u64,
    echo: Arc<Echo>,
    ids: OutputIds,
    model: String,
    sequence: u64,
    started: bool,
    output: Vec<Value>,
    open: Vec<Open>,
    stop: Option<StopReason>,
    usage: Usage,
    buf: BytesMut,
}

impl Encoder {
    fn new(id: String, created_at: u64, echo: Arc<Echo>) -> Self {
        let ids = OutputIds::for_response(&id);
        Self {
            id,
            created_at,
            echo,
            ids,
            model: String::new(),
            sequence: 0,
            started: false,
            output: Vec::new(),
            open: Vec::new(),
            stop: None,
            usage: Usage::default(),
            buf: BytesMut::with_capacity(1024),
        }
    }

    fn emit(&mut self, kind: &str, mut data: Value) {
        data["type"] = Value::from(kind);
        data["sequence_number"] = Value::from(self.sequence);
        self.sequence += 1;
        self.buf.put_slice(b"event: ");
        self.buf.put_slice(kind.as_bytes());
        self.buf.put_slice(b"\ndata: ");
        // A `Value` with string keys always serializes.
        self.buf.put_slice(&serde_json::to_vec(&data).unwrap_or_default());
        self.buf.put_slice(b"\n\n");
    }

    fn response(&self, status: Status, error: Option<&ApiError>) -> Value {
        let in_progress = status == Status::InProgress;
        response_object(
            &self.echo,
            Outcome {
                id: &self.id,
                created_at: self.created_at,
                model: &self.model,
                status,
                stop: self.stop,
                output: self.output.clone(),
                usage: (!in_progress).then_some(&self.usage),
                error,
            },
        )
    }

    /// Encodes one event; `true` when it was the last.
    fn event(&mut self, event: StreamEvent) -> bool {
        match event {
            StreamEvent::Start { model, usage, .. } => {
                self.model = model;
                self.usage.merge(&usage);
                self.start();
            }
            StreamEvent::BlockStart { index, block } => {
                self.start();
                self.block_start(index, block);
            }
            StreamEvent::BlockDelta { index, delta } => self.block_delta(index, delta),
            StreamEvent::BlockStop { index } => self.block_stop(index),
            StreamEvent::Delta { stop_reason, usage, .. } => {
                if stop_reason.is_some() {
                    self.stop = stop_reason;
                }
                self.usage.merge(&usage);
            }
            StreamEvent::Stop => {
                self.start();
                let open: Vec<usize> = self.open.iter().map(|o| o.block).collect();
                for index in open {
                    self.block_stop(index);
                }
                let status = Status::of(self.stop);
                let kind = match status {
                    Status::Incomplete => "response.incomplete",
                    _ => "response.completed",
                };
                let response = self.response(status, None);
                self.emit(kind, json!({"response": response}));
                return true;
            }
            StreamEvent::Ping => {}
        }
        false
    }

    fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response(Status::InProgress, None);
        self.emit("response.created", json!({"response": response}));
        self.emit("response.in_progress", json!({"response": response}));
    }

    fn block_start(&mut self, index: usize, block: ContentBlock) {
        let Some(mut item) =
            output_item(&block, self.ids.item(id_kind(&block), index), "in_progress")
        else {
            return;
        };
        let output_index = self.output.len();
        self.output.push(Value::Null);
        let id = self.ids.item(id_kind(&block), index);
        let initial = match &block {
            ContentBlock::Text { text, .. } => {
                item["content"] = json!([]);
                text.clone()
            }
            ContentBlock::ToolUse { input, .. } => {
                item["arguments"] = Value::from("");
                match input {
                    Value::Object(map) if !map.is_empty() => input.to_string(),
                    _ => String::new(),
                }
            }
            ContentBlock::Thinking { thinking, .. } => {
                item["summary"] = json!([]);
                thinking.clone()
            }
            _ => String::new(),
        };
        if let ContentBlock::Thinking { signature: Some(s), .. } = &block {
            self.open_push(index, output_index, &id, &block, s.clone());
        } else {
            self.open_push(index, output_index, &id, &block, String::new());
        }
        if matches!(
            block,
            ContentBlock::Text { .. }
                | ContentBlock::ToolUse { .. }
                | ContentBlock::Thinking { .. }
        ) {
            item["status"] = Value::from("in_progress");
        }
        with_namespace(&mut item, &self.echo);
        self.emit(
            "response.output_item.added",
            json!({"output_index": output_index, "item": item}),
        );
        match &block {
            ContentBlock::Text { .. } => self.emit(
                "response.content_part.added",
                json!({"item_id": id, "output_index": output_index, "content_index": 0,
                       "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
            ),
            ContentBlock::Thinking { .. } => self.emit(
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                       "part": {"type": "summary_text", "text": ""}}),
            ),
            _ => {}
        }
        if !initial.is_empty() {
            let delta = match &block {
                ContentBlock::Text { .. } => BlockDelta::Text(initial),
                ContentBlock::ToolUse { .. } => BlockDelta::InputJson(initial),
                _ => BlockDelta::Thinking(initial),
            };
            self.block_delta(index, delta);
        }
    }

    fn open_push(
        &mut self,
        block: usize,
        output_index: usize,
        id: &str,
        value: &ContentBlock,
        sig: String,
    ) {
        self.open.push(Open {
            block,
            output_index,
            id: id.to_owned(),
            block_value: value.clone(),
            text: String::new(),
            signature: sig,
        });
    }

    fn block_delta(&mut self, index: usize, delta: BlockDelta) {
        let Some(open) = self.open.iter_mut().find(|o| o.block == index) else {
            return;
        };
        let (id, output_index) = (open.id.clone(), open.output_index);
        match delta {
            BlockDelta::Text(text) if !text.is_empty() => {
                open.text.push_str(&text);
                self.emit(
                    "response.output_text.delta",
                    json!({"item_id": id, "output_index": output_index, "content_index": 0,
                           "delta": text, "logprobs": []}),
                );
            }
            BlockDelta::InputJson(fragment) if !fragment.is_empty() => {
                open.text.push_str(&fragment);
                self.emit(
                    "response.function_call_arguments.delta",
                    json!({"item_id": id, "output_index": output_index, "delta": fragment}),
                );
            }
            BlockDelta::Thinking(text) if !text.is_empty() => {
                open.text.push_str(&text);
                self.emit(
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                           "delta": text}),
                );
            }
            BlockDelta::Signature(signature) => open.signature.push_str(&signature),
            BlockDelta::Text(_) | BlockDelta::InputJson(_) | BlockDelta::Thinking(_) => {}
        }
    }

    fn block_stop(&mut self, index: usize) {
        let Some(at) = self.open.iter().position(|o| o.block == index) else {
            return;
        };
        let open = self.open.remove(at);
        let (id, output_index) = (open.id.as_str(), open.output_index);
        let finished = match open.block_value {
            ContentBlock::Text { cache_control, .. } => {
                let part = json!({"type": "output_text", "text": open.text, "annotations": [], "logprobs": []});
                self.emit(
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": output_index, "content_index": 0,
                           "text": open.text, "logprobs": []}),
                );
                self.emit(
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": output_index, "content_index": 0,
                           "part": part}),
                );
                ContentBlock::Text { text: open.text, cache_control }
            }
            ContentBlock::ToolUse { id: call_id, name, cache_control, .. } => {
                let arguments =
                    if open.text.trim().is_empty() { "{}".to_owned() } else { open.text };
                self.emit(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": output_index, "name": name,
                           "arguments": arguments}),
                );
                let input = serde_json::from_str(&arguments).unwrap_or_else(|_| json!({}));
                // Keep the arguments exactly as streamed in the item.
                let mut item = output_item(
                    &ContentBlock::ToolUse { id: call_id, name, input, cache_control },
                    id.to_owned(),
                    "completed",
                )
                .unwrap_or_default();
                item["arguments"] = Value::from(arguments);
                self.finish_item(output_index, item);
                return;
            }
            ContentBlock::Thinking { .. } => {
                self.emit(
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                           "text": open.text}),
                );
                self.emit(
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                           "part": {"type": "summary_text", "text": open.text}}),
                );
                let signature = (!open.signature.is_empty()).then_some(open.signature);
                ContentBlock::Thinking { thinking: open.text, signature }
            }
            other => other,
        };
        let item = output_item(&finished, id.to_owned(), "completed").unwrap_or_default();
        self.finish_item(output_index, item);
    }

    fn finish_item(&mut self, output_index: usize, mut item: Value) {
        with_namespace(&mut item, &self.echo);
        self.emit("response.output_item.done", json!({"output_index": output_index, "item": item}));
        if let Some(slot) = self.output.get_mut(output_index) {
            *slot = item;
        }
    }

    fn failed(&mut self, err: &UpstreamError) {
        let mut api = ApiError::new(
            err.kind,
            format!("The upstream failed after the response started: {}", err.message),
        );
        api.diagnosis = err.diagnosis.clone();
        self.fail(&api);
    }

    /// The upstream's stream ended without `Stop`.
    fn dropped(&mut self) {
        self.fail(&ApiError::new(
            ErrorKind::UpstreamUnavailable,
            "The upstream closed the stream before the answer was complete; the streamed \
             answer is truncated.",
        ));
    }

    fn fail(&mut self, err: &ApiError) {
        self.start();
        self.output.retain(|item| !item.is_null());
        let response = self.response(Status::Failed, Some(err));
        self.emit("response.failed", json!({"response": response}));
    }
}
