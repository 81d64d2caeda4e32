//! A chat completions stream relayed as the server's chunks (`fastpath::stream`), read only
//! for usage, the end (`data: [DONE]`, or a finish reason when the body ends without it)
//! and error objects.
//!
//! The upstream is always asked for usage (`relay::body`). A client that did not ask gets
//! what it would have got without asking: the usage chunk (`"choices":[]`) left out, and
//! the `"usage":null` the server adds to every other chunk removed.

use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use super::Site;
use super::response::WireUsage;
use super::stream::{Idle, failure};
use crate::canonical::Usage;
use crate::classify::UpstreamError;
use crate::fastpath::sse::events;
use crate::fastpath::stream::{self, Read, Reader};
use crate::fastpath::{Chunk, ChunkStream};
use crate::provider::http::{Error, Response, Timeout, broken, timeout_error};

const DONE: &[u8] = b"data: [DONE]\n\n";

/// Reads `response` (a 200 with an SSE body) up to its first chunk — the commit point, as
/// `stream::open` — and relays the rest as it arrives. `include_usage`: the client asked
/// for the usage chunk.
pub(super) async fn open(
    response: Response,
    site: Arc<Site>,
    idle: Idle,
    include_usage: bool,
) -> Result<ChunkStream, UpstreamError> {
    let reader = Chunks::new(site, idle, include_usage);
    stream::open(Box::pin(response.bytes_stream()), reader, idle.after).await
}

struct Chunks {
    site: Arc<Site>,
    idle: Idle,
    include_usage: bool,
    /// Upstream chunks read so far, for messages.
    seen: usize,
    started: bool,
    /// A finish reason arrived: the answer is complete even if the body ends now.
    answered: bool,
    /// The last usage reported; the canonical path reports it once, at the end.
    usage: Option<Usage>,
}

impl Chunks {
    fn new(site: Arc<Site>, idle: Idle, include_usage: bool) -> Self {
        Self { site, idle, include_usage, seen: 0, started: false, answered: false, usage: None }
    }
}

/// What the gateway reads of a chunk; the rest is skipped unread.
#[derive(Deserialize)]
struct Peek {
    #[serde(default)]
    choices: Vec<PeekChoice>,
    /// `Some(None)`: `"usage": null`.
    #[serde(default, deserialize_with = "present")]
    usage: Option<Option<WireUsage>>,
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct PeekChoice {
    #[serde(default)]
    index: usize,
    finish_reason: Option<IgnoredAny>,
}

fn present<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Option<WireUsage>>, D::Error> {
    Option::<WireUsage>::deserialize(de).map(Some)
}

impl Reader for Chunks {
    type Error = Error;

    fn read(&mut self, piece: Bytes) -> Read {
        let mut cut = piece.len();
        let mut complete = false;
        let mut failed = None;
        // Set once something is left out: what is kept, up to `kept` in `piece`.
        let mut edited: Option<BytesMut> = None;
        let mut kept = 0;
        for event in events(&piece) {
            self.seen += 1;
            let data = event.data.trim();
            if data == "[DONE]" {
                self.started = true;
                complete = true;
                cut = event.end;
                break;
            }
            if data.is_empty() {
                continue;
            }
            let peek = match serde_json::from_str::<Peek>(data) {
                Ok(peek) if peek.error.is_none() => peek,
                // An error object, or a chunk the canonical path could not read either.
                _ => match failure(data, &self.site) {
                    Some(err) => {
                        failed = Some(err);
                        cut = event.start;
                        break;
                    }
                    None => {
                        self.started = true;
                        continue;
                    }
                },
            };
            self.started = true;
            if let Some(Some(usage)) = peek.usage {
                self.usage = Some(usage.canonical());
            }
            if peek.choices.iter().any(|c| c.index == 0 && c.finish_reason.is_some()) {
                self.answered = true;
            }
            if self.include_usage {
                continue;
            }
            let raw = &piece[event.start..event.end];
            let left_out = match peek.usage {
                Some(Some(_)) if peek.choices.is_empty() => Some(0..raw.len()),
                Some(None) => null_member(raw, b"usage"),
                _ => None,
            };
            if let Some(range) = left_out {
                let out = edited.get_or_insert_with(|| BytesMut::with_capacity(piece.len()));
                out.extend_from_slice(&piece[kept..event.start + range.start]);
                kept = event.start + range.end;
            }
        }
        let bytes = match edited {
            None => piece.slice(..cut),
            Some(mut out) => {
                out.extend_from_slice(&piece[kept..cut]);
                out.freeze()
            }
        };
        let usage = if complete { self.usage } else { None };
        Read { chunk: Chunk { bytes, usage, complete }, failed }
    }

    fn started(&self) -> bool {
        self.started
    }

    /// A server that ends the body after the finish reason without `[DONE]` (some do) has
    /// still answered completely: the client gets the `[DONE]` it expects.
    fn ended(&mut self) -> Result<Chunk, UpstreamError> {
        if self.answered {
            return Ok(Chunk {
                bytes: Bytes::from_static(DONE),
                usage: self.usage,
                complete: true,
            });
        }
        let what = format!("the stream ended after {} chunks, before [DONE]", self.seen);
        Err(broken(&self.site.destination(), &what))
    }

    fn transport(&self, e: &Error) -> UpstreamError {
        self.site.transport(e)
    }

    fn idle(&self) -> UpstreamError {
        timeout_error(&self.site.who, Timeout::Idle, self.idle.after, self.idle.setting)
    }
}

/// Where the top-level member `"key": null` of the JSON object in `raw` is, with the comma
/// that joins it to a neighbour: removing that range leaves the object valid without it.
fn null_member(raw: &[u8], key: &[u8]) -> Option<Range<usize>> {
    let skip_ws = |mut i: usize| {
        while raw.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let mut depth = 0usize;
    // The comma before the current top-level member, if it has one before it.
    let mut comma = None;
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < raw.len() && raw[i] != b'"' {
                    i += if raw[i] == b'\\' { 2 } else { 1 };
                }
                let end = (i + 1).min(raw.len());
                if depth == 1 && raw.get(start + 1..i) == Some(key) {
                    let colon = skip_ws(end);
                    if raw.get(colon) == Some(&b':') {
                        let value = skip_ws(colon + 1);
                        if raw.get(value..value + 4) == Some(b"null") {
                            let after = value + 4;
                            let next = skip_ws(after);
                            return Some(match comma {
                                Some(c) => c..after,
                                None if raw.get(next) == Some(&b',') => start..skip_ws(next + 1),
                                None => start..after,
                            });
                        }
                    }
                }
                i = end;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return None;
                }
            }
            b',' if depth == 1 => comma = Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::ErrorKind;

    fn without_null_usage(raw: &str) -> String {
        match null_member(raw.as_bytes(), b"usage") {
            Some(r) => format!("{}{}", &raw[..r.start], &raw[r.end..]),
            None => raw.to_owned(),
        }
    }

    #[test]
    fn a_top_level_null_usage_is_removed_with_its_comma() {
        for (raw, want) in [
            (r#"data: {"id":"a","choices":[],"usage":null}"#, r#"data: {"id":"a","choices":[]}"#),
            (r#"data: {"usage": null, "id":"a"}"#, r#"data: {"id":"a"}"#),
            (r#"data: {"usage":null}"#, r#"data: {}"#),
            (
                r#"data: {"c":"\"usage\":null","d":{"usage":null},"usage":null,"o":1}"#,
                r#"data: {"c":"\"usage\":null","d":{"usage":null},"o":1}"#,
            ),
        ] {
            assert_eq!(without_null_usage(raw), want);
        }
        for raw in [r#"data: {"usage":{"prompt_tokens":1}}"#, r#"data: {"d":{"usage":null}}"#] {
            assert_eq!(without_null_usage(raw), raw);
        }
    }

    fn reader(include_usage: bool) -> Chunks {
        let idle = Idle { after: std::time::Duration::from_secs(1), setting: "t" };
        Chunks::new(Arc::new(super::super::tests::site()), idle, include_usage)
    }

    const STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\n",
        "data: [DONE]\n\n",
        "data: {\"after\":true}\n\n",
    );

    #[test]
    fn the_usage_a_client_did_not_ask_for_is_left_out_but_read() {
        let Read { chunk, failed } = reader(false).read(Bytes::from_static(STREAM.as_bytes()));
        assert!(failed.is_none());
        assert!(chunk.complete);
        assert_eq!(
            std::str::from_utf8(&chunk.bytes).unwrap(),
            concat!(
                "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
                "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
                "data: [DONE]\n\n",
            )
        );
        let usage = chunk.usage.unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (7, 2));
    }

    #[test]
    fn a_client_that_asked_gets_the_chunks_as_sent() {
        let Read { chunk, .. } = reader(true).read(Bytes::from_static(STREAM.as_bytes()));
        let end = STREAM.find("data: {\"after\"").unwrap();
        assert_eq!(&chunk.bytes[..], &STREAM.as_bytes()[..end]);
        assert_eq!(chunk.usage.unwrap().output_tokens, 2);
    }

    #[test]
    fn a_body_that_ends_after_the_finish_reason_is_complete_and_gets_its_done() {
        let mut r = reader(false);
        let end = STREAM.find("data: [DONE]").unwrap();
        let Read { chunk, .. } = r.read(Bytes::copy_from_slice(&STREAM.as_bytes()[..end]));
        assert!(!chunk.complete);
        assert!(chunk.usage.is_none(), "usage is reported with the end, as translated");
        let last = r.ended().unwrap();
        assert_eq!((&last.bytes[..], last.complete), (DONE, true));
        assert_eq!(last.usage.unwrap().input_tokens, 7);
    }

    #[test]
    fn an_error_object_ends_what_is_relayed() {
        let mut r = reader(true);
        let piece = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"code\":null}}\n\n",
        );
        let Read { chunk, failed } = r.read(Bytes::from_static(piece.as_bytes()));
        assert_eq!(&chunk.bytes[..], &piece.as_bytes()[..piece.find("data: {\"error").unwrap()]);
        assert!(!chunk.complete);
        assert_eq!(failed.unwrap().kind, ErrorKind::UpstreamUnavailable);
        assert!(r.ended().is_err(), "no finish reason: the body ending is a failure");
    }
}
