//! Turns pre-rendered events into a response body that can pause, hold, fail or drop mid-way:
//! the fault injection every emulated provider shares. It never renders a wire format itself.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::Notify;

/// Where, counted in events already sent, the body misbehaves. An index past the last event
/// means "after the last event, before the body ends".
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub hold: Option<(usize, Arc<Notify>)>,
    pub drop: Option<usize>,
    /// The already-rendered final event (e.g. an SSE `error` event) and where it replaces the rest.
    pub error: Option<(usize, Bytes)>,
    pub gap: Duration,
}

struct State {
    events: Vec<Bytes>,
    next: usize,
    plan: Plan,
    done: bool,
}

/// A body that yields each event as its own frame, flushed before the next one is produced.
pub(crate) fn body(events: Vec<Bytes>, plan: Plan) -> Body {
    let state = State { events, next: 0, plan, done: false };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let reached = |at: usize, st: &State| st.next >= at || st.next >= st.events.len();
        if let Some((at, release)) = st.plan.hold.take() {
            if reached(at, &st) {
                release.notified().await;
            } else {
                st.plan.hold = Some((at, release));
            }
        }
        if st.plan.drop.is_some_and(|at| reached(at, &st)) {
            st.done = true;
            // Let the server flush what was sent: a body error discards its write buffer.
            tokio::task::yield_now().await;
            let err = io::Error::new(io::ErrorKind::ConnectionAborted, "scripted disconnect");
            return Some((Err(err), st));
        }
        if let Some((at, event)) = st.plan.error.take() {
            if reached(at, &st) {
                st.done = true;
                return Some((Ok(event), st));
            }
            st.plan.error = Some((at, event));
        }
        let event = st.events.get(st.next)?.clone();
        if st.next > 0 {
            if st.plan.gap.is_zero() {
                // Pending once, so the server flushes the previous event on its own.
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(st.plan.gap).await;
            }
        }
        st.next += 1;
        Some((Ok::<_, io::Error>(event), st))
    });
    Body::from_stream(stream)
}
