//! Server-sent events read incrementally from a relayed body: whole events are cut from
//! what has arrived (zero-copy) so they can be relayed as they came, and each is read only
//! for its name and `data`. A partial event waits for the rest of it; nothing else is held.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};

/// Buffers a body's bytes until they end an event.
#[derive(Default)]
pub struct Splitter {
    buf: BytesMut,
    /// Bytes of `buf` already searched for an event's end.
    searched: usize,
}

impl Splitter {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Every complete event received so far, as one piece; `None` while none is complete.
    pub fn take(&mut self) -> Option<Bytes> {
        let end = last_boundary(&self.buf, self.searched.saturating_sub(3));
        self.searched = self.buf.len();
        let end = end?;
        self.searched -= end;
        Some(self.buf.split_to(end).freeze())
    }

    /// Whether bytes of an unfinished event are waiting.
    pub fn has_partial(&self) -> bool {
        !self.buf.iter().all(u8::is_ascii_whitespace)
    }
}

/// The end (after its blank line) of the last complete event in `buf`, searching from `from`.
fn last_boundary(buf: &[u8], from: usize) -> Option<usize> {
    let mut last = None;
    let mut i = from;
    while i + 1 < buf.len() {
        match (buf[i], buf[i + 1]) {
            (b'\n', b'\n') | (b'\r', b'\r') => {
                last = Some(i + 2);
                i += 2;
            }
            (b'\r', b'\n') if buf.get(i + 2..i + 4) == Some(b"\r\n") => {
                last = Some(i + 4);
                i += 4;
            }
            _ => i += 1,
        }
    }
    last
}

/// One event inside a piece from [`Splitter::take`].
pub struct Event<'a> {
    /// Where the event starts and ends in its piece.
    pub start: usize,
    pub end: usize,
    /// `event:`; empty when the event has none.
    pub name: &'a str,
    /// The `data:` lines, joined by newlines as SSE joins them.
    pub data: Cow<'a, str>,
}

/// The events of `piece`, in order.
pub fn events(piece: &[u8]) -> Vec<Event<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < piece.len() {
        let rest = &piece[start..];
        let len = first_boundary(rest).unwrap_or(rest.len());
        let raw = &rest[..len];
        let mut name = "";
        let mut data: Option<Cow<'_, str>> = None;
        for line in raw.split(|&b| b == b'\n' || b == b'\r') {
            let Ok(line) = std::str::from_utf8(line) else { continue };
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line, ""),
            };
            match field {
                "event" => name = value,
                "data" => {
                    data = Some(match data {
                        None => Cow::Borrowed(value),
                        Some(before) => Cow::Owned(format!("{before}\n{value}")),
                    });
                }
                _ => {}
            }
        }
        // A piece of blank lines or comments only is no event.
        if data.is_some() || !name.is_empty() {
            out.push(Event { start, end: start + len, name, data: data.unwrap_or_default() });
        }
        start += len;
    }
    out
}

fn first_boundary(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < buf.len() {
        match (buf[i], buf[i + 1]) {
            (b'\n', b'\n') | (b'\r', b'\r') => return Some(i + 2),
            (b'\r', b'\n') if buf.get(i + 2..i + 4) == Some(b"\r\n") => return Some(i + 4),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: comment\n\nevent: ping\r\ndata: {}\r\n\r\ndata: x\ndata: y\n\n";

    #[test]
    fn events_are_cut_whole_whatever_the_chunking() {
        for size in [1, 2, 3, 5, 17, STREAM.len()] {
            let mut split = Splitter::default();
            let mut seen = Vec::new();
            let mut relayed = Vec::new();
            for chunk in STREAM.as_bytes().chunks(size) {
                split.push(chunk);
                if let Some(piece) = split.take() {
                    relayed.extend_from_slice(&piece);
                    for e in events(&piece) {
                        assert!(
                            piece[e.start..e.end].ends_with(b"\n\n")
                                || piece[e.start..e.end].ends_with(b"\r\n\r\n")
                        );
                        seen.push((e.name.to_owned(), e.data.into_owned()));
                    }
                }
            }
            assert_eq!(relayed, STREAM.as_bytes(), "size {size}");
            assert!(!split.has_partial());
            assert_eq!(
                seen,
                [
                    ("message_start".to_owned(), "{\"a\":1}".to_owned()),
                    ("ping".to_owned(), "{}".to_owned()),
                    (String::new(), "x\ny".to_owned()),
                ],
                "size {size}"
            );
        }
    }

    #[test]
    fn a_partial_event_waits() {
        let mut split = Splitter::default();
        split.push(b"event: a\ndata: {\"b\":");
        assert!(split.take().is_none());
        assert!(split.has_partial());
        split.push(b"2}\n");
        assert!(split.take().is_none());
        split.push(b"\n");
        assert_eq!(&split.take().unwrap()[..], b"event: a\ndata: {\"b\":2}\n\n");
    }
}
