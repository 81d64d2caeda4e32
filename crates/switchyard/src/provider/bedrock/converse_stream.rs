//! ConverseStream → canonical [`StreamEvent`]s, one event-stream frame at a time: frames are
//! decoded with aws-smithy-eventstream and each `:event-type` (messageStart,
//! contentBlockStart, contentBlockDelta, contentBlockStop, messageStop, metadata) becomes
//! the canonical events it stands for. Converse reports usage in `metadata`, after
//! `messageStop`, so the stop reason waits for it and goes out in one `Delta`.
//!
//! [`open`] is the streaming commit point, as for InvokeModelWithResponseStream: it resolves
//! once the first event is known, so an exception frame before it is an ordinary failed
//! attempt. After that, an exception frame, a broken connection, a silence longer than the
//! idle timeout, or an end before `messageStop` each end the stream with an `Err` item
//! (AWS-18) — never a silent truncation. Buffers at most one frame; spawns nothing.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use aws_smithy_types::event_stream::{HeaderValue, Message};
use futures_util::StreamExt;
use serde_json::Value;

use super::converse::{JSON_TOOL, WireUsage, stop_reason};
use super::stream::{Body, Frames, unreadable};
use super::{Limit, Site};
use crate::canonical::{BlockDelta, ContentBlock, StopReason, StreamEvent, Usage};
use crate::classify::{UpstreamError, bedrock_stream_exception};
use crate::provider::EventStream;
use crate::provider::http::{Timeout, broken, timeout_error};

/// Reads `response` (a 200 with an event-stream body) up to its first event and returns the
/// stream of canonical events, that event first. `id` names the message.
pub(super) async fn open(
    response: reqwest::Response,
    json_mode: bool,
    id: String,
    site: Arc<Site>,
    idle: Limit,
) -> Result<EventStream, UpstreamError> {
    open_body(Box::pin(response.bytes_stream()), json_mode, id, site, idle).await
}

pub(super) async fn open_body(
    body: Body,
    json_mode: bool,
    id: String,
    site: Arc<Site>,
    idle: Limit,
) -> Result<EventStream, UpstreamError> {
    let mut state = State {
        reader: Frames::new(body),
        site,
        idle,
        id,
        json_mode,
        done: false,
        queue: VecDeque::new(),
        open: BTreeSet::new(),
        json_blocks: BTreeSet::new(),
        stop: None,
        tools: false,
    };
    // The caller bounds the wait for the first event (stream_timeout).
    let first = loop {
        if let Some(event) = state.queue.pop_front() {
            break event;
        }
        match state.frame().await {
            None => return Err(state.dropped()),
            Some(Err(e)) => return Err(e),
            Some(Ok(frame)) => state.translate(&frame)?,
        }
    };
    let rest = futures_util::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    });
    Ok(Box::pin(futures_util::stream::once(async { Ok(first) }).chain(rest)))
}

struct State {
    reader: Frames,
    site: Arc<Site>,
    idle: Limit,
    id: String,
    json_mode: bool,
    /// Nothing more is read: the answer is complete or failed.
    done: bool,
    /// Canonical events translated but not yet handed out.
    queue: VecDeque<StreamEvent>,
    /// Indices of blocks started and not yet stopped.
    open: BTreeSet<usize>,
    /// Blocks that are the `response_format` tool, streamed as text.
    json_blocks: BTreeSet<usize>,
    /// `messageStop`'s reason, waiting for `metadata`'s usage.
    stop: Option<Option<StopReason>>,
    /// A real tool was called (json mode keeps `tool_use` only then).
    tools: bool,
}

impl State {
    async fn next(&mut self) -> Option<Result<StreamEvent, UpstreamError>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let item = match tokio::time::timeout(self.idle.after, self.frame()).await {
                Ok(item) => item,
                Err(_) => {
                    self.done = true;
                    let (after, setting) = (self.idle.after, self.idle.setting);
                    return Some(Err(timeout_error(&self.site.who, Timeout::Idle, after, setting)));
                }
            };
            match item {
                Some(Ok(frame)) => {
                    if let Err(e) = self.translate(&frame) {
                        self.done = true;
                        self.queue.clear();
                        return Some(Err(e));
                    }
                }
                // The body ended after messageStop without metadata: complete, no usage.
                None if self.stop.is_some() => self.finish(Usage::default()),
                None => {
                    self.done = true;
                    return Some(Err(self.dropped()));
                }
                Some(Err(e)) => {
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

    /// One frame → the canonical events it stands for, queued.
    fn translate(&mut self, frame: &Message) -> Result<(), UpstreamError> {
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
        let Some(kind) = header(":event-type") else { return Ok(()) };
        let payload: Value = serde_json::from_slice(frame.payload())
            .map_err(|e| unreadable(&format!("a {kind} event that is not JSON: {e}")))?;
        let index = || -> usize {
            payload
                .get("contentBlockIndex")
                .and_then(Value::as_u64)
                .and_then(|i| usize::try_from(i).ok())
                .unwrap_or(0)
        };
        match kind.as_str() {
            "messageStart" => self.queue.push_back(StreamEvent::Start {
                id: self.id.clone(),
                model: self.site.deployment.model.clone(),
                usage: Usage::default(),
            }),
            "contentBlockStart" => {
                let index = index();
                let tool = payload.pointer("/start/toolUse");
                let block = match tool {
                    Some(tool) => {
                        let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                        if self.json_mode && name == JSON_TOOL {
                            self.json_blocks.insert(index);
                            ContentBlock::text("")
                        } else {
                            self.tools = true;
                            ContentBlock::ToolUse {
                                id: tool
                                    .get("toolUseId")
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_owned(),
                                name: name.to_owned(),
                                input: serde_json::json!({}),
                                cache_control: None,
                            }
                        }
                    }
                    None => ContentBlock::text(""),
                };
                self.start(index, block);
            }
            "contentBlockDelta" => {
                let index = index();
                let Some(delta) = payload.get("delta") else { return Ok(()) };
                let (block, delta) = if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    (ContentBlock::text(""), BlockDelta::Text(text.to_owned()))
                } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str)
                {
                    let delta = if self.json_blocks.contains(&index) {
                        BlockDelta::Text(input.to_owned())
                    } else {
                        BlockDelta::InputJson(input.to_owned())
                    };
                    (ContentBlock::text(""), delta)
                } else if let Some(r) = delta.get("reasoningContent") {
                    let thinking =
                        ContentBlock::Thinking { thinking: String::new(), signature: None };
                    if let Some(text) = r.get("text").and_then(Value::as_str) {
                        (thinking, BlockDelta::Thinking(text.to_owned()))
                    } else if let Some(sig) = r.get("signature").and_then(Value::as_str) {
                        (thinking, BlockDelta::Signature(sig.to_owned()))
                    } else if let Some(data) = r.get("redactedContent").and_then(Value::as_str) {
                        if !self.open.contains(&index) {
                            self.start(
                                index,
                                ContentBlock::RedactedThinking { data: data.to_owned() },
                            );
                        }
                        return Ok(());
                    } else {
                        return Ok(());
                    }
                } else {
                    return Ok(());
                };
                // Converse starts text and reasoning blocks implicitly, with their first delta.
                if !self.open.contains(&index) {
                    self.start(index, block);
                }
                self.queue.push_back(StreamEvent::BlockDelta { index, delta });
            }
            "contentBlockStop" => {
                let index = index();
                if self.open.remove(&index) {
                    self.queue.push_back(StreamEvent::BlockStop { index });
                }
            }
            "messageStop" => {
                for index in std::mem::take(&mut self.open) {
                    self.queue.push_back(StreamEvent::BlockStop { index });
                }
                let mut reason = stop_reason(payload.get("stopReason").and_then(Value::as_str));
                if self.json_mode && !self.tools && reason == Some(StopReason::ToolUse) {
                    reason = Some(StopReason::EndTurn);
                }
                self.stop = Some(reason);
            }
            "metadata" => {
                let usage: WireUsage = payload
                    .get("usage")
                    .cloned()
                    .and_then(|u| serde_json::from_value(u).ok())
                    .unwrap_or_default();
                if self.stop.is_none() {
                    return Err(unreadable("a metadata event before messageStop"));
                }
                self.finish(usage.into());
            }
            // Newer event types: nothing a client needs.
            _ => {}
        }
        Ok(())
    }

    fn start(&mut self, index: usize, block: ContentBlock) {
        self.open.insert(index);
        self.queue.push_back(StreamEvent::BlockStart { index, block });
    }

    /// The closing `Delta` (stop reason and usage) and `Stop`; nothing more is read.
    fn finish(&mut self, usage: Usage) {
        let stop_reason = self.stop.take().flatten();
        self.queue.push_back(StreamEvent::Delta { stop_reason, stop_sequence: None, usage });
        self.queue.push_back(StreamEvent::Stop);
        self.done = true;
    }

    /// The body ended before `messageStop`.
    fn dropped(&self) -> UpstreamError {
        let what =
            format!("the stream ended after {} frames, before messageStop", self.reader.seen);
        broken(&self.site.destination(), &what)
    }
}

#[cfg(test)]
#[path = "converse_stream_tests.rs"]
mod tests;
