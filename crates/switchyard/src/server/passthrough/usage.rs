//! Reads the usage of a Messages answer from the bytes relayed to the client, without
//! holding the answer: for SSE, line by line, only `message_start` and `message_delta` are
//! parsed (each line kept only until its end, long content lines skipped); for JSON, the
//! body up to a cap, parsed at its end.

use serde::Deserialize;

use crate::canonical::Usage;

/// A JSON answer larger than this is relayed whole but its usage is not read.
const JSON_CAP: usize = 8 << 20;
/// The `message_start`/`message_delta` lines are small; a longer line is content.
const LINE_CAP: usize = 64 << 10;

pub(super) struct Scanner {
    sse: bool,
    buf: Vec<u8>,
    /// The current line outgrew `LINE_CAP` (or the JSON body `JSON_CAP`): skipped.
    skipping: bool,
    usage: Usage,
    seen: bool,
    complete: bool,
}

impl Scanner {
    /// For an answer of this `content-type`.
    pub(super) fn new(content_type: &str) -> Self {
        Self {
            sse: content_type.starts_with("text/event-stream"),
            buf: Vec::new(),
            skipping: false,
            usage: Usage::default(),
            seen: false,
            complete: false,
        }
    }

    pub(super) fn feed(&mut self, mut chunk: &[u8]) {
        if !self.sse {
            if self.buf.len() + chunk.len() > JSON_CAP {
                self.skipping = true;
                self.buf = Vec::new();
            }
            if !self.skipping {
                self.buf.extend_from_slice(chunk);
            }
            return;
        }
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            if !self.skipping {
                self.buf.extend_from_slice(&chunk[..end]);
                let line = std::mem::take(&mut self.buf);
                self.line(&line);
                self.buf = line;
            }
            self.buf.clear();
            self.skipping = false;
            chunk = &chunk[end + 1..];
        }
        if !self.skipping {
            if self.buf.len() + chunk.len() > LINE_CAP {
                self.skipping = true;
                self.buf.clear();
            } else {
                self.buf.extend_from_slice(chunk);
            }
        }
    }

    /// The usage read, and whether the answer was complete; `None` when none was seen.
    pub(super) fn finish(mut self) -> Option<(Usage, bool)> {
        if !self.sse && !self.skipping {
            #[derive(Deserialize)]
            struct Answer {
                usage: Option<WireUsage>,
                stop_reason: Option<String>,
            }
            if let Ok(answer) = serde_json::from_slice::<Answer>(&self.buf)
                && let Some(u) = answer.usage
            {
                self.usage = u.into();
                self.seen = true;
                self.complete = answer.stop_reason.is_some();
            }
        }
        self.seen.then_some((self.usage, self.complete))
    }

    fn line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else { return };
        let data = data.trim_ascii();
        let wanted = |needle: &[u8]| data.windows(needle.len()).any(|w| w == needle);
        if !(wanted(b"message_start") || wanted(b"message_delta") || wanted(b"message_stop")) {
            return;
        }
        #[derive(Deserialize)]
        struct Event {
            #[serde(rename = "type")]
            kind: String,
            message: Option<Message>,
            usage: Option<WireUsage>,
        }
        #[derive(Deserialize)]
        struct Message {
            usage: Option<WireUsage>,
        }
        let Ok(event) = serde_json::from_slice::<Event>(data) else { return };
        match event.kind.as_str() {
            "message_start" => {
                if let Some(u) = event.message.and_then(|m| m.usage) {
                    self.usage = u.into();
                    self.seen = true;
                }
            }
            "message_delta" => {
                if let Some(u) = event.usage {
                    self.usage.merge(&u.into());
                    self.seen = true;
                }
            }
            "message_stop" => self.complete = true,
            _ => {}
        }
    }
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation: Option<CacheCreation>,
}

#[derive(Deserialize, Default)]
struct CacheCreation {
    #[serde(default)]
    ephemeral_1h_input_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            input_tokens: u.input_tokens.unwrap_or_default(),
            output_tokens: u.output_tokens.unwrap_or_default(),
            cache_read_input_tokens: u.cache_read_input_tokens.unwrap_or_default(),
            cache_creation_input_tokens: u.cache_creation_input_tokens.unwrap_or_default(),
            cache_creation_1h_input_tokens: u
                .cache_creation
                .and_then(|c| c.ephemeral_1h_input_tokens)
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_usage_is_read_across_chunk_boundaries() {
        let stream = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"message_delta in the text\"}}\n\n",
            "event: message_delta\n",
            "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n",
            "event: message_stop\n",
            "data: {\"type\":\"message_stop\"}\n\n",
        );
        for split in [1, 7, 50, stream.len()] {
            let mut s = Scanner::new("text/event-stream; charset=utf-8");
            for piece in stream.as_bytes().chunks(split) {
                s.feed(piece);
            }
            let (usage, complete) = s.finish().unwrap();
            assert_eq!(
                (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens),
                (12, 3, 9)
            );
            assert!(complete, "split {split}");
        }
    }

    #[test]
    fn a_stream_cut_before_message_stop_is_incomplete() {
        let mut s = Scanner::new("text/event-stream");
        s.feed(
            b"data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5}}}\n",
        );
        let (usage, complete) = s.finish().unwrap();
        assert_eq!(usage.input_tokens, 5);
        assert!(!complete);
    }

    #[test]
    fn json_usage_is_read_at_the_end() {
        let mut s = Scanner::new("application/json");
        s.feed(br#"{"id":"m","stop_reason":"end_turn","usage":{"input_tokens":4,"#);
        s.feed(br#""output_tokens":2,"cache_creation":{"ephemeral_1h_input_tokens":1},"cache_creation_input_tokens":1}}"#);
        let (usage, complete) = s.finish().unwrap();
        assert_eq!(
            (usage.input_tokens, usage.output_tokens, usage.cache_creation_1h_input_tokens),
            (4, 2, 1)
        );
        assert!(complete);
    }

    #[test]
    fn an_answer_without_usage_reports_none() {
        let mut s = Scanner::new("application/json");
        s.feed(br#"{"data":[]}"#);
        assert!(s.finish().is_none());
    }
}
