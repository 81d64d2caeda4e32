//! What an entry holds — the canonical answer and when it was stored — and the two
//! conversions a cached stream needs: a live stream's events into one answer (stored only
//! when the stream ended normally), and an answer back into the events of a stream, in the
//! same shapes a live stream has, so a hit encodes for either surface.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{BlockDelta, ChatResponse, ContentBlock, StopReason, StreamEvent, Usage};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Milliseconds since the epoch when it was stored (for `s-maxage`).
    pub stored_at: i64,
    pub id: String,
    pub model: String,
    pub content: Vec<ContentBlock>,
    pub stop_reason: Option<StopReason>,
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}

impl Entry {
    pub fn of(r: &ChatResponse, stored_at: i64) -> Self {
        Self {
            stored_at,
            id: r.id.clone(),
            model: r.model.clone(),
            content: r.content.clone(),
            stop_reason: r.stop_reason,
            stop_sequence: r.stop_sequence.clone(),
            usage: r.usage,
        }
    }

    pub fn into_response(self) -> ChatResponse {
        ChatResponse {
            id: self.id,
            model: self.model,
            content: self.content,
            stop_reason: self.stop_reason,
            stop_sequence: self.stop_sequence,
            usage: self.usage,
        }
    }
}

/// The events of a stream that answers `r`: what a live Anthropic-shaped stream sends,
/// each block opened empty, its content in one delta, then closed.
pub fn events(r: &ChatResponse) -> Vec<StreamEvent> {
    let mut out = Vec::with_capacity(r.content.len() * 3 + 3);
    out.push(StreamEvent::Start {
        id: r.id.clone(),
        model: r.model.clone(),
        usage: Usage { output_tokens: 0, ..r.usage },
    });
    for (index, block) in r.content.iter().enumerate() {
        let (start, deltas) = match block {
            ContentBlock::Text { text, .. } => {
                (ContentBlock::text(""), vec![BlockDelta::Text(text.clone())])
            }
            ContentBlock::ToolUse { id, name, input, .. } => (
                ContentBlock::ToolUse {
                    id: id.clone(),
                    name: name.clone(),
                    input: Value::Object(serde_json::Map::new()),
                    cache_control: None,
                },
                vec![BlockDelta::InputJson(input.to_string())],
            ),
            ContentBlock::Thinking { thinking, signature } => {
                let mut d = vec![BlockDelta::Thinking(thinking.clone())];
                if let Some(s) = signature {
                    d.push(BlockDelta::Signature(s.clone()));
                }
                (ContentBlock::Thinking { thinking: String::new(), signature: None }, d)
            }
            other => (other.clone(), Vec::new()),
        };
        out.push(StreamEvent::BlockStart { index, block: start });
        out.extend(deltas.into_iter().map(|delta| StreamEvent::BlockDelta { index, delta }));
        out.push(StreamEvent::BlockStop { index });
    }
    out.push(StreamEvent::Delta {
        stop_reason: r.stop_reason,
        stop_sequence: r.stop_sequence.clone(),
        usage: r.usage,
    });
    out.push(StreamEvent::Stop);
    out
}

/// Builds the answer a stream carried, event by event.
#[derive(Debug, Default)]
pub struct Accumulator {
    started: bool,
    id: String,
    model: String,
    usage: Usage,
    stop_reason: Option<StopReason>,
    stop_sequence: Option<String>,
    /// Each block by its stream index, with the JSON text of a tool's input so far.
    blocks: Vec<(usize, ContentBlock, String)>,
}

impl Accumulator {
    pub fn push(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Start { id, model, usage } => {
                self.started = true;
                self.id.clone_from(id);
                self.model.clone_from(model);
                self.usage.merge(usage);
            }
            StreamEvent::BlockStart { index, block } => {
                self.blocks.push((*index, block.clone(), String::new()));
            }
            StreamEvent::BlockDelta { index, delta } => {
                let Some((_, block, json)) = self.blocks.iter_mut().rev().find(|b| b.0 == *index)
                else {
                    return;
                };
                match (block, delta) {
                    (ContentBlock::Text { text, .. }, BlockDelta::Text(d)) => text.push_str(d),
                    (ContentBlock::ToolUse { .. }, BlockDelta::InputJson(d)) => json.push_str(d),
                    (ContentBlock::Thinking { thinking, .. }, BlockDelta::Thinking(d)) => {
                        thinking.push_str(d);
                    }
                    (ContentBlock::Thinking { signature, .. }, BlockDelta::Signature(d)) => {
                        signature.get_or_insert_with(String::new).push_str(d);
                    }
                    _ => {}
                }
            }
            StreamEvent::Delta { stop_reason, stop_sequence, usage } => {
                if stop_reason.is_some() {
                    self.stop_reason = *stop_reason;
                }
                if stop_sequence.is_some() {
                    self.stop_sequence.clone_from(stop_sequence);
                }
                self.usage.merge(usage);
            }
            StreamEvent::BlockStop { .. } | StreamEvent::Stop | StreamEvent::Ping => {}
        }
    }

    /// The whole answer, or `None` when the stream never started or a tool's input is not
    /// JSON (something went wrong; nothing is stored).
    pub fn finish(self) -> Option<ChatResponse> {
        if !self.started {
            return None;
        }
        let mut content = Vec::with_capacity(self.blocks.len());
        for (_, mut block, json) in self.blocks {
            if let ContentBlock::ToolUse { input, .. } = &mut block
                && !json.is_empty()
            {
                *input = serde_json::from_str(&json).ok()?;
            }
            content.push(block);
        }
        Some(ChatResponse {
            id: self.id,
            model: self.model,
            content,
            stop_reason: self.stop_reason,
            stop_sequence: self.stop_sequence,
            usage: self.usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_answer_replayed_as_events_accumulates_back_to_itself() {
        let answer = ChatResponse {
            id: "msg_1".into(),
            model: "claude".into(),
            content: vec![
                ContentBlock::Thinking { thinking: "hmm".into(), signature: Some("sig".into()) },
                ContentBlock::text("Hello"),
                ContentBlock::ToolUse {
                    id: "t1".into(),
                    name: "get".into(),
                    input: json!({"a": [1, 2]}),
                    cache_control: None,
                },
            ],
            stop_reason: Some(StopReason::ToolUse),
            stop_sequence: None,
            usage: Usage { input_tokens: 5, output_tokens: 9, ..Usage::default() },
        };
        let mut acc = Accumulator::default();
        for e in events(&answer) {
            acc.push(&e);
        }
        assert_eq!(acc.finish(), Some(answer.clone()));
        let entry = Entry::of(&answer, 1);
        let text = serde_json::to_string(&entry).unwrap_or_default();
        let back: Entry = serde_json::from_str(&text).unwrap_or_else(|_| entry.clone());
        assert_eq!(back.into_response(), answer);
    }
}
