//! An upstream answer relayed to the client as it arrives, chunk by chunk, its usage read on
//! the way (`usage::Scanner`) and charged when the body ends — or when the client goes away
//! first, as an incomplete answer.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use tokio::sync::oneshot;

use super::headers::client_response;
use super::usage::Scanner;
use crate::cost::{Charge, PendingCharge, Price};
use crate::limits::Reservation;

/// The client's response for `upstream`: its status and headers (less hop-by-hop ones) and
/// its body as a stream. With `price`, the body's usage is read, `reservation` settled at its
/// charge and the charge delivered to the returned `PendingCharge` when the body ends — in the
/// body's own poll, not a task of its own (a spawned task per request cost a cross-thread
/// wake-up). Without, `reservation` settles at once at what it reserved.
pub(super) fn relay(
    upstream: reqwest::Response,
    price: Option<Arc<Price>>,
    reservation: Reservation,
) -> (Response, Option<PendingCharge>) {
    let status = upstream.status();
    let headers = client_response(upstream.headers());
    let content_type = upstream
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let inner: BoxStream<'static, Result<Bytes, reqwest::Error>> =
        Box::pin(upstream.bytes_stream());
    let (body, pending) = match price {
        Some(price) => {
            let (tx, pending) = PendingCharge::channel();
            let meter = Meter { scanner: Scanner::new(&content_type), price, tx, reservation };
            let metered = Metered { inner, meter: Some(meter) };
            (Body::from_stream(metered), Some(pending))
        }
        None => {
            reservation.settle(None);
            (Body::from_stream(inner), None)
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    (response, pending)
}

struct Metered {
    inner: BoxStream<'static, Result<Bytes, reqwest::Error>>,
    /// Until the charge is delivered.
    meter: Option<Meter>,
}

struct Meter {
    scanner: Scanner,
    price: Arc<Price>,
    tx: oneshot::Sender<Charge>,
    reservation: Reservation,
}

impl Metered {
    /// Settles and delivers the charge of what was read (the reservation settles at what it
    /// reserved when no usage was seen); `ended`: the upstream's body ended cleanly.
    fn charge(&mut self, ended: bool) {
        let Some(Meter { scanner, price, tx, reservation }) = self.meter.take() else { return };
        match scanner.finish() {
            Some((usage, complete)) => {
                let charge = Charge::new(usage, &price, complete && ended);
                reservation.settle(Some(&charge));
                let _ = tx.send(charge);
            }
            None => reservation.settle(None),
        }
    }
}

impl Stream for Metered {
    type Item = Result<Bytes, reqwest::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = std::task::ready!(self.inner.as_mut().poll_next(cx));
        match &item {
            Some(Ok(chunk)) => {
                if let Some(Meter { scanner, .. }) = &mut self.meter {
                    scanner.feed(chunk);
                }
            }
            Some(Err(_)) => self.charge(false),
            None => self.charge(true),
        }
        Poll::Ready(item)
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        // The client went away before the end: what was read is charged, as incomplete.
        self.charge(false);
    }
}
