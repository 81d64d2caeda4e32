//! The `mock_response` provider: answers every request with the configured text, as
//! LiteLLM's `mock_response` does, so a gateway works with no credentials at all.
//!
//! Never performs I/O and never fails; token counts are the `tokens` estimate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;

use super::{EventStream, Provider};
use crate::canonical::{
    BlockDelta, ChatRequest, ChatResponse, ContentBlock, StopReason, StreamEvent, Usage,
};
use crate::classify::UpstreamError;
use crate::tokens;

pub struct MockProvider {
    text: String,
    model: String,
}

impl MockProvider {
    pub fn new(text: String, model: String) -> Self {
        Self { text, model }
    }

    fn usage(&self, req: &ChatRequest) -> Usage {
        Usage {
            input_tokens: tokens::estimate_request(req),
            output_tokens: tokens::estimate(&self.text),
            ..Usage::default()
        }
    }

    /// The events of one streamed answer, the text split on word boundaries.
    fn events(&self, req: &ChatRequest) -> Vec<StreamEvent> {
        let usage = self.usage(req);
        let pieces = word_pieces(&self.text);
        let mut events = Vec::with_capacity(pieces.len() + 5);
        events.push(StreamEvent::Start {
            id: next_id(),
            model: self.model.clone(),
            usage: Usage { output_tokens: 0, ..usage },
        });
        events.push(StreamEvent::BlockStart { index: 0, block: ContentBlock::text("") });
        events.extend(pieces.into_iter().map(|piece| StreamEvent::BlockDelta {
            index: 0,
            delta: BlockDelta::Text(piece.to_owned()),
        }));
        events.push(StreamEvent::BlockStop { index: 0 });
        events.push(StreamEvent::Delta {
            stop_reason: Some(StopReason::EndTurn),
            stop_sequence: None,
            usage,
        });
        events.push(StreamEvent::Stop);
        events
    }
}

impl Provider for MockProvider {
    fn send<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, UpstreamError>> {
        let response = ChatResponse {
            id: next_id(),
            model: self.model.clone(),
            content: vec![ContentBlock::text(self.text.clone())],
            stop_reason: Some(StopReason::EndTurn),
            stop_sequence: None,
            usage: self.usage(req),
        };
        Box::pin(async move { Ok(response) })
    }

    fn stream<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<EventStream, UpstreamError>> {
        let events = self.events(req);
        Box::pin(async move {
            let stream: EventStream =
                Box::pin(futures_util::stream::iter(events.into_iter().map(Ok)));
            Ok(stream)
        })
    }

    fn count_tokens<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<u64, UpstreamError>> {
        let tokens = crate::tokens::estimate_request(req);
        Box::pin(async move { Ok(tokens) })
    }
}

/// `chatcmpl-` + milliseconds since the epoch + a process-wide counter, both hex: unique
/// per response within a process, and across restarts unless the clock goes backwards.
fn next_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("chatcmpl-{millis:x}{n:06x}")
}

/// Each word with the whitespace that follows it: "Hello big world" → "Hello ", "big ",
/// "world". Leading whitespace stays with the first piece; concatenated, the pieces are
/// the text.
fn word_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut prev_ws = false;
    let mut seen_word = false;
    for (i, c) in text.char_indices() {
        let ws = c.is_whitespace();
        if !ws && prev_ws && seen_word {
            pieces.push(&text[start..i]);
            start = i;
        }
        seen_word |= !ws;
        prev_ws = ws;
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::canonical::{Message, Role};

    fn request() -> ChatRequest {
        ChatRequest {
            model: "cheap".into(),
            messages: vec![Message {
                role: Role::User,
                content: vec![ContentBlock::text("Say: WORKS")],
            }],
            ..ChatRequest::default()
        }
    }

    #[test]
    fn word_pieces_rebuild_the_text() {
        assert_eq!(word_pieces("Hello big  world"), ["Hello ", "big  ", "world"]);
        assert_eq!(word_pieces("  lead trail "), ["  lead ", "trail "]);
        assert_eq!(word_pieces("WORKS"), ["WORKS"]);
        assert!(word_pieces("").is_empty());
    }

    #[tokio::test]
    async fn send_answers_with_the_text_and_estimated_usage() {
        let mock = MockProvider::new("It WORKS here".into(), "mock-model".into());
        let req = request();
        let resp = mock.send(&req).await.unwrap();
        assert_eq!(resp.content, vec![ContentBlock::text("It WORKS here")]);
        assert_eq!(resp.model, "mock-model");
        assert_eq!(resp.stop_reason, Some(StopReason::EndTurn));
        assert_eq!(resp.usage.input_tokens, tokens::estimate_request(&req));
        assert_eq!(resp.usage.output_tokens, tokens::estimate("It WORKS here"));
        assert!(resp.usage.input_tokens > 0 && resp.usage.output_tokens > 0);
        assert!(resp.id.starts_with("chatcmpl-"));
        let again = mock.send(&req).await.unwrap();
        assert_ne!(resp.id, again.id);
    }

    #[tokio::test]
    async fn stream_yields_the_text_in_pieces_with_the_same_usage_as_send() {
        let mock = MockProvider::new("It WORKS here".into(), "mock-model".into());
        let req = request();
        let sent = mock.send(&req).await.unwrap();
        let events: Vec<StreamEvent> =
            mock.stream(&req).await.unwrap().map(Result::unwrap).collect().await;

        assert!(matches!(&events[0], StreamEvent::Start { model, .. } if model == "mock-model"));
        assert_eq!(events[1], StreamEvent::BlockStart { index: 0, block: ContentBlock::text("") });
        let texts: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::BlockDelta { delta: BlockDelta::Text(t), .. } => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["It ", "WORKS ", "here"]);
        let n = events.len();
        assert_eq!(events[n - 3], StreamEvent::BlockStop { index: 0 });
        assert_eq!(
            events[n - 2],
            StreamEvent::Delta {
                stop_reason: Some(StopReason::EndTurn),
                stop_sequence: None,
                usage: sent.usage,
            }
        );
        assert_eq!(events[n - 1], StreamEvent::Stop);
    }
}
