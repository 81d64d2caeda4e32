//! What one served answer used and cost, handed to whoever records it (the response header
//! now, the ledger next): at once for a JSON answer, when the stream ends for a streamed one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use rust_decimal::Decimal;
use tokio::sync::oneshot;

use super::price::Price;
use crate::canonical::{StreamEvent, Usage};
use crate::classify::ErrorKind;
use crate::fastpath::{Chunk, ChunkStream};
use crate::provider::EventStream;

/// The usage an answer reported and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub usage: Usage,
    /// USD; `None` when the deployment's price is unknown (never recorded as 0).
    pub cost: Option<Decimal>,
    /// Whether the answer ended normally. A stream that failed or that the client left early
    /// is charged for what the upstream reported until then.
    pub complete: bool,
    /// How a stream failed after its first event, when it did: the request failed although
    /// the client had an answer started (a client leaving early is not a failure).
    pub failure: Option<StreamFailure>,
}

/// A stream's failure as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamFailure {
    pub kind: ErrorKind,
    /// The diagnosis's catalog id (`NET-01`, `NET-03`, …).
    pub diagnosis: Option<&'static str>,
}

impl Charge {
    pub fn new(usage: Usage, price: &Price, complete: bool) -> Self {
        Self { usage, cost: price.cost(&usage), complete, failure: None }
    }
}

/// The charge of an embedding answer: its input tokens at the input rate (embeddings have no
/// output, so no output rate is needed to know the cost).
pub fn embedding_charge(input_tokens: u64, price: &Price) -> Charge {
    let usage = Usage { input_tokens, ..Usage::default() };
    Charge { usage, cost: price.input_cost(input_tokens), complete: true, failure: None }
}

/// A served request's charge: known now, known when its stream ends, or none (counting
/// tokens serves no answer).
#[derive(Debug)]
pub enum Charged {
    None,
    Now(Charge),
    AtEnd(PendingCharge),
}

impl Charged {
    /// The charge, if it is known already.
    pub fn now(&self) -> Option<&Charge> {
        match self {
            Self::Now(charge) => Some(charge),
            Self::None | Self::AtEnd(_) => None,
        }
    }
}

/// Resolves to a streamed answer's charge once its stream has ended or been dropped.
#[derive(Debug)]
pub struct PendingCharge(oneshot::Receiver<Charge>);

impl PendingCharge {
    /// A charge delivered by whoever holds the sender (the limits settle a stream's
    /// reservation and pass its charge on).
    pub fn channel() -> (oneshot::Sender<Charge>, PendingCharge) {
        let (tx, rx) = oneshot::channel();
        (tx, PendingCharge(rx))
    }
}

impl Future for PendingCharge {
    /// `None` only if the stream was never polled to an end nor dropped (it always is).
    type Output = Option<Charge>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(Result::ok)
    }
}

/// `events` as they are, metered: the usage they report (the opening event's, updated by
/// the closing delta's) is charged at `price` once the stream ends or is dropped.
pub fn meter(events: EventStream, price: Arc<Price>) -> (EventStream, PendingCharge) {
    let (tx, rx) = oneshot::channel();
    let mut meter =
        Meter { usage: Usage::default(), complete: false, failure: None, price, tx: Some(tx) };
    let events = events.map(move |item| {
        match &item {
            Ok(event) => meter.observe(event),
            Err(e) => meter.fail(e),
        }
        item
    });
    (Box::pin(events), PendingCharge(rx))
}

/// [`meter`] for a relayed stream, whose chunks carry the usage their events reported.
pub fn meter_chunks(chunks: ChunkStream, price: Arc<Price>) -> (ChunkStream, PendingCharge) {
    let (tx, rx) = oneshot::channel();
    let mut meter =
        Meter { usage: Usage::default(), complete: false, failure: None, price, tx: Some(tx) };
    let chunks = chunks.map(move |item| {
        match &item {
            Ok(chunk) => meter.observe_chunk(chunk),
            Err(e) => meter.fail(e),
        }
        item
    });
    (Box::pin(chunks), PendingCharge(rx))
}

struct Meter {
    usage: Usage,
    complete: bool,
    failure: Option<StreamFailure>,
    price: Arc<Price>,
    tx: Option<oneshot::Sender<Charge>>,
}

impl Meter {
    /// The stream failed after its first event: the ledger records the failure with what was
    /// charged so far.
    fn fail(&mut self, e: &crate::classify::UpstreamError) {
        self.failure =
            Some(StreamFailure { kind: e.kind, diagnosis: e.diagnosis.as_ref().map(|d| d.id) });
    }

    fn observe_chunk(&mut self, chunk: &Chunk) {
        if let Some(usage) = &chunk.usage {
            self.usage.merge(usage);
        }
        self.complete |= chunk.complete;
    }

    fn observe(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Start { usage, .. } | StreamEvent::Delta { usage, .. } => {
                self.usage.merge(usage);
            }
            StreamEvent::Stop => self.complete = true,
            StreamEvent::BlockStart { .. }
            | StreamEvent::BlockDelta { .. }
            | StreamEvent::BlockStop { .. }
            | StreamEvent::Ping => {}
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            // Nobody waiting is fine: the charge is then not recorded anywhere yet.
            let mut charge = Charge::new(self.usage, &self.price, self.complete);
            charge.failure = self.failure;
            let _ = tx.send(charge);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use futures_util::stream;

    use super::*;
    use crate::classify::{ErrorKind, UpstreamError};
    use crate::cost::{Rate, Rates, Source};

    fn price() -> Arc<Price> {
        let rate = |s: &str| {
            Some(Rate { per_token: Decimal::from_str(s).unwrap(), source: Source::ModelInfo })
        };
        Arc::new(Price {
            base: Rates {
                input: rate("0.000001"),
                output: rate("0.000005"),
                cache_read: rate("0.0000001"),
                cache_write: rate("0.00000125"),
                cache_write_1h: rate("0.000002"),
            },
            long_context: None,
            batch: None,
        })
    }

    fn start(usage: Usage) -> StreamEvent {
        StreamEvent::Start { id: "m".into(), model: "c".into(), usage }
    }

    fn delta(usage: Usage) -> StreamEvent {
        StreamEvent::Delta { stop_reason: None, stop_sequence: None, usage }
    }

    #[tokio::test]
    async fn a_finished_stream_is_charged_its_opening_and_closing_usage() {
        let opening = Usage {
            input_tokens: 10,
            cache_read_input_tokens: 1000,
            cache_creation_input_tokens: 200,
            cache_creation_1h_input_tokens: 100,
            output_tokens: 1,
        };
        let events = vec![
            Ok(start(opening)),
            Ok(StreamEvent::Ping),
            Ok(delta(Usage { output_tokens: 40, ..Usage::default() })),
            Ok(StreamEvent::Stop),
        ];
        let (events, pending) = meter(Box::pin(stream::iter(events)), price());
        assert_eq!(events.count().await, 4);
        let charge = pending.await.unwrap();
        assert!(charge.complete);
        assert_eq!(charge.usage, Usage { output_tokens: 40, ..opening });
        // 10 × 1e-6 + 40 × 5e-6 + 1000 × 1e-7 + 100 × 1.25e-6 + 100 × 2e-6
        assert_eq!(charge.cost, Some(Decimal::from_str("0.000635").unwrap()));
    }

    #[tokio::test]
    async fn a_stream_left_early_or_failed_is_charged_what_was_reported() {
        let events = vec![
            Ok(start(Usage { input_tokens: 100, ..Usage::default() })),
            Err(UpstreamError::new(ErrorKind::UpstreamUnavailable, "cut")),
        ];
        let (mut events, pending) = meter(Box::pin(stream::iter(events)), price());
        let _ = events.next().await;
        drop(events);
        let charge = pending.await.unwrap();
        assert!(!charge.complete);
        assert_eq!(charge.cost, Some(Decimal::from_str("0.0001").unwrap()));
        // Left early: nothing failed.
        assert_eq!(charge.failure, None);
        let (events, pending) = meter(
            Box::pin(stream::iter(vec![
                Ok(start(Usage::default())),
                Err(UpstreamError::new(ErrorKind::Timeout, "silent")),
            ])),
            price(),
        );
        assert_eq!(events.count().await, 2);
        let charge = pending.await.unwrap();
        assert_eq!(charge.failure.map(|f| f.kind), Some(ErrorKind::Timeout));
    }

    #[tokio::test]
    async fn an_unpriced_stream_has_no_cost() {
        let events =
            vec![Ok(start(Usage { input_tokens: 5, ..Usage::default() })), Ok(StreamEvent::Stop)];
        let (events, pending) = meter(Box::pin(stream::iter(events)), Arc::new(Price::default()));
        assert_eq!(events.count().await, 2);
        let charge = pending.await.unwrap();
        assert_eq!(charge.usage.input_tokens, 5);
        assert_eq!(charge.cost, None);
    }
}
