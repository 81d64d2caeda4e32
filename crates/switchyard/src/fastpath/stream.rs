//! A relayed stream, whatever its dialect: the upstream's body cut into whole events
//! (`sse.rs`), each piece read by the dialect's [`Reader`] for what the gateway needs, and
//! relayed as [`Chunk`]s. The commit point, the idle timeout and how a failure ends the
//! stream are the same for every dialect, as on the canonical path.
//!
//! Nothing is spawned and only an unfinished event is held: dropping the stream drops the
//! upstream connection.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::sse::Splitter;
use super::{Chunk, ChunkStream};
use crate::classify::UpstreamError;

/// A relayed body as it arrives.
pub type Body<E> = Pin<Box<dyn Stream<Item = Result<Bytes, E>> + Send>>;

/// What a dialect reads of its own events.
pub trait Reader: Send + 'static {
    /// How reading the body fails.
    type Error: Send + 'static;
    /// One piece of whole events: what of it the client gets and what it reported. An error
    /// event ends the answer: it and what follows it are not relayed.
    fn read(&mut self, piece: Bytes) -> Read;
    /// An event other than an error arrived: the stream is committed.
    fn started(&self) -> bool;
    /// The body ended after what was read: the last chunk, when the answer is complete
    /// without its end marker, or the failure.
    fn ended(&mut self) -> Result<Chunk, UpstreamError>;
    /// The body broke.
    fn transport(&self, e: &Self::Error) -> UpstreamError;
    /// Nothing arrived for the idle timeout.
    fn idle(&self) -> UpstreamError;
}

/// What [`Reader::read`] found in a piece.
pub struct Read {
    pub chunk: Chunk,
    /// An error event, after the events of `chunk`.
    pub failed: Option<UpstreamError>,
}

/// Reads `body` up to its first event — the commit point: an error event, a broken body or
/// an end before it is an ordinary failed attempt — and relays the rest as it arrives, each
/// wait for more bounded by `idle`. The caller bounds the wait for the first event.
pub async fn open<R: Reader>(
    body: Body<R::Error>,
    reader: R,
    idle: Duration,
) -> Result<ChunkStream, UpstreamError> {
    let mut state =
        State { body, split: Splitter::default(), reader, idle, failed: None, done: false };
    let first = loop {
        match state.body.next().await {
            None => {
                state.done = true;
                break state.reader.ended()?;
            }
            Some(Err(e)) => return Err(state.reader.transport(&e)),
            Some(Ok(bytes)) => {
                let Some(chunk) = state.pull(&bytes) else { continue };
                if state.reader.started() {
                    state.done = chunk.complete;
                    break chunk;
                }
                if let Some(err) = state.failed.take() {
                    return Err(err);
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

struct State<R: Reader> {
    body: Body<R::Error>,
    split: Splitter,
    reader: R,
    idle: Duration,
    /// An error event: it ends the stream after the events before it.
    failed: Option<UpstreamError>,
    done: bool,
}

impl<R: Reader> State<R> {
    /// Adds `bytes`; what the complete events among what arrived give the client.
    fn pull(&mut self, bytes: &[u8]) -> Option<Chunk> {
        self.split.push(bytes);
        let piece = self.split.take()?;
        let Read { chunk, failed } = self.reader.read(piece);
        self.failed = failed;
        Some(chunk)
    }

    async fn next(&mut self) -> Option<Result<Chunk, UpstreamError>> {
        if let Some(err) = self.failed.take() {
            self.done = true;
            return Some(Err(err));
        }
        if self.done {
            return None;
        }
        loop {
            let Ok(item) = tokio::time::timeout(self.idle, self.body.next()).await else {
                self.done = true;
                return Some(Err(self.reader.idle()));
            };
            match item {
                Some(Ok(bytes)) => {
                    let Some(chunk) = self.pull(&bytes) else { continue };
                    self.done = chunk.complete;
                    if chunk.bytes.is_empty() && !chunk.complete {
                        // Nothing for the client: an error event is the next item, or more
                        // is awaited.
                        if let Some(err) = self.failed.take() {
                            self.done = true;
                            return Some(Err(err));
                        }
                        continue;
                    }
                    return Some(Ok(chunk));
                }
                None => {
                    self.done = true;
                    return Some(self.reader.ended());
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(self.reader.transport(&e)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::ErrorKind;

    /// Events `ok`, `end` (complete) and `err` (an error event).
    #[derive(Default)]
    struct Plain {
        started: bool,
    }

    impl Reader for Plain {
        type Error = std::io::Error;

        fn read(&mut self, piece: Bytes) -> Read {
            let mut failed = None;
            let mut cut = piece.len();
            let mut complete = false;
            for e in super::super::sse::events(&piece) {
                match &*e.data {
                    "err" => {
                        failed = Some(UpstreamError::new(ErrorKind::Overloaded, "busy"));
                        cut = e.start;
                        break;
                    }
                    "end" => {
                        self.started = true;
                        complete = true;
                        cut = e.end;
                        break;
                    }
                    _ => self.started = true,
                }
            }
            Read { chunk: Chunk { bytes: piece.slice(..cut), usage: None, complete }, failed }
        }
        fn started(&self) -> bool {
            self.started
        }
        fn ended(&mut self) -> Result<Chunk, UpstreamError> {
            Err(UpstreamError::new(ErrorKind::UpstreamUnavailable, "dropped"))
        }
        fn transport(&self, _: &std::io::Error) -> UpstreamError {
            UpstreamError::new(ErrorKind::UpstreamUnavailable, "broken")
        }
        fn idle(&self) -> UpstreamError {
            UpstreamError::new(ErrorKind::Timeout, "idle")
        }
    }

    fn body(parts: &[&'static str]) -> Body<std::io::Error> {
        let parts: Vec<Result<Bytes, std::io::Error>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p.as_bytes()))).collect();
        Box::pin(futures_util::stream::iter(parts))
    }

    async fn relay(parts: &[&'static str]) -> Result<Vec<Result<String, ErrorKind>>, ErrorKind> {
        let stream = open(body(parts), Plain::default(), Duration::from_secs(5))
            .await
            .map_err(|e| e.kind)?;
        let items: Vec<_> = stream.collect().await;
        Ok(items
            .into_iter()
            .map(|i| i.map(|c| String::from_utf8(c.bytes.to_vec()).unwrap()).map_err(|e| e.kind))
            .collect())
    }

    #[tokio::test]
    async fn an_error_before_the_first_event_fails_the_attempt() {
        assert_eq!(relay(&[": hi\n\n", "data: err\n\n"]).await, Err(ErrorKind::Overloaded));
        assert_eq!(relay(&["data: o"]).await, Err(ErrorKind::UpstreamUnavailable));
    }

    #[tokio::test]
    async fn events_before_an_error_are_relayed_then_the_error_ends_the_stream() {
        let out = relay(&["data: ok\n\ndata: ok\n", "\ndata: err\n\ndata: ok\n\n"]).await;
        assert_eq!(
            out,
            Ok(vec![
                Ok("data: ok\n\n".to_owned()),
                Ok("data: ok\n\n".to_owned()),
                Err(ErrorKind::Overloaded)
            ])
        );
        let out = relay(&["data: ok\n\n", "data: err\n\n"]).await;
        assert_eq!(out, Ok(vec![Ok("data: ok\n\n".to_owned()), Err(ErrorKind::Overloaded)]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silence_longer_than_the_idle_timeout_ends_the_stream() {
        let first = futures_util::stream::iter([Ok(Bytes::from_static(b"data: ok\n\n"))]);
        let silent = first.chain(futures_util::stream::pending());
        let stream = open(Box::pin(silent), Plain::default(), Duration::from_secs(30));
        let items: Vec<_> = stream.await.unwrap().collect().await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].as_ref().err().map(|e| e.kind), Some(ErrorKind::Timeout));
    }

    #[tokio::test]
    async fn the_end_event_ends_the_stream_and_an_early_end_fails_it() {
        let out = relay(&["data: ok\n\n", "data: end\n\ndata: ok\n\n", "data: ok\n\n"]).await;
        assert_eq!(out, Ok(vec![Ok("data: ok\n\n".to_owned()), Ok("data: end\n\n".to_owned())]));
        let out = relay(&["data: ok\n\n"]).await;
        assert_eq!(
            out,
            Ok(vec![Ok("data: ok\n\n".to_owned()), Err(ErrorKind::UpstreamUnavailable)])
        );
    }
}
