//! Load shedding: `general_settings.global_max_parallel_requests` caps the model requests
//! the gateway serves at once. A request beyond the cap waits in a bounded queue for up to
//! `max_queue_wait_seconds`; when the queue is full or the wait runs out it is refused with
//! 429 and `retry-after` (LIM-04) in the caller's error shape.
//!
//! The slot is held until the answer's body is done (a stream until its last event, or
//! until the client goes away), so an admitted stream is never cut to make room: only new
//! requests wait. Only model routes pass through here; health, metrics and management
//! routes are never counted or refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{AppState, errors};
use crate::classify::{ApiError, Diagnosis, ErrorKind};
use crate::config::Shedding;

/// The gateway's slots for model requests. Kept across reloads while the cap is unchanged,
/// so requests admitted before a reload still hold their slots after it.
#[derive(Clone)]
pub struct Gate {
    cap: usize,
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_wait: Duration,
    max_queued: usize,
}

/// Why a request was refused.
enum Shed {
    QueueFull,
    Waited,
}

impl Gate {
    /// The gate `settings` ask for, reusing `previous`'s slots when the cap is the same.
    /// With a new cap the count starts afresh: requests in flight keep their old slots
    /// and are not counted against the new cap.
    pub fn for_settings(settings: &Shedding, previous: Option<&Gate>) -> Option<Gate> {
        let cap = settings.max_parallel?;
        let (slots, waiting) = match previous {
            Some(p) if p.cap == cap => (p.slots.clone(), p.waiting.clone()),
            _ => (Arc::new(Semaphore::new(cap)), Arc::new(AtomicUsize::new(0))),
        };
        Some(Gate {
            cap,
            slots,
            waiting,
            max_wait: settings.max_wait,
            max_queued: settings.max_queued,
        })
    }

    async fn enter(&self) -> Result<OwnedSemaphorePermit, Shed> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _leave = Leave(&self.waiting);
        if queued >= self.max_queued || self.max_wait.is_zero() {
            return Err(Shed::QueueFull);
        }
        let metrics = crate::metrics::global();
        metrics.queued(1);
        // The semaphore is fair: waiters are admitted in arrival order.
        let waited = tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned()).await;
        metrics.queued(-1);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Shed::Waited),
        }
    }

    fn refusal(&self, why: &Shed) -> ApiError {
        let wait = self.max_wait.as_secs_f64();
        let why = match why {
            Shed::QueueFull if self.max_wait.is_zero() => {
                "and max_queue_wait_seconds is 0, so a request beyond it is refused at once"
                    .to_owned()
            }
            Shed::QueueFull => format!(
                "and {} requests already wait for a slot (general_settings.max_queued_requests)",
                self.max_queued
            ),
            Shed::Waited => {
                format!(
                    "and this request waited {wait}s (max_queue_wait_seconds) without one freeing"
                )
            }
        };
        let mut err = ApiError::new(
            ErrorKind::RateLimited,
            "The gateway is at capacity: too many requests in flight. Retry shortly.",
        )
        .with_diagnosis(Diagnosis::new(
            "LIM-04",
            format!(
                "The gateway serves at most {} model requests at once \
                 (general_settings.global_max_parallel_requests), {why}. Requests in flight, \
                 streams included, are never cut to make room.",
                self.cap
            ),
            "Retry after the time given; if this is frequent, raise \
             general_settings.global_max_parallel_requests or max_queue_wait_seconds, or add \
             a replica.",
        ));
        err.retry_after = Some(Duration::from_secs(1));
        err
    }
}

/// Takes the caller out of the wait count however `enter` ends (admitted, refused, or the
/// client gone while waiting).
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Middleware on the model routes: a slot for the whole request, or LIM-04.
pub async fn admit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(gate) = state.runtime().gate.clone() else {
        return next.run(req).await;
    };
    match gate.enter().await {
        Ok(permit) => {
            let response = next.run(req).await;
            // The slot rides in the body: freed when the last byte is sent or the body is
            // dropped, never while a stream is still flowing.
            response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _ = &permit;
                    frame
                }))
            })
        }
        Err(why) => {
            crate::metrics::global().shed();
            let err = gate.refusal(&why);
            tracing::debug!(path = req.uri().path(), "LIM-04: request shed at the parallel cap");
            errors::error_response(req.uri().path(), req.headers(), &err)
        }
    }
}
