//! An admitted request's hold on its limits, settled to the actual cost or released when
//! dropped — a failed attempt, a cancelled request — in the background.

use std::sync::Arc;

use super::check::{Check, Nanos, Settlement};
use super::{Limits, RateHeaders, to_nanos};

/// What a reservation holds, to settle or release.
pub(super) struct Held {
    pub(super) engine: Arc<Limits>,
    pub(super) checks: Vec<Check>,
    pub(super) local: bool,
    pub(super) reserved: Nanos,
    pub(super) tokens: i64,
}

/// An admitted request's hold on its limits. Settle it with the actual cost; dropped
/// unsettled (failure, cancellation), it releases everything it reserved, in the
/// background.
pub struct Reservation {
    pub(super) held: Option<Held>,
    pub headers: RateHeaders,
}

impl Reservation {
    pub fn none() -> Self {
        Self { held: None, headers: RateHeaders::default() }
    }

    /// Counts what the request actually spent and used. `cost` `None` with a known price
    /// (the charge never arrived) keeps the whole reservation as spent.
    pub fn settle(mut self, charge: Option<&crate::cost::Charge>) {
        let Some(held) = self.held.take() else { return };
        let done = match charge {
            Some(c) => Settlement {
                cost: c.cost.map_or(0, to_nanos),
                tokens: i64::try_from(c.usage.total_input_tokens() + c.usage.output_tokens)
                    .unwrap_or(i64::MAX),
            },
            None => Settlement { cost: held.reserved, tokens: held.tokens },
        };
        finish(held, done);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            finish(held, Settlement::default());
        }
    }
}

fn finish(held: Held, done: Settlement) {
    let now = held.engine.clock.now().timestamp();
    // In-process counters settle under their locks right here: a task per request would
    // cost a spawn and, on an idle worker, a wake-up.
    if held.engine.backend.settle_now(&held.checks, done, now) {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(async move {
                held.engine.backend.settle(&held.checks, done, held.local, now).await;
            });
        }
        Err(_) => tracing::warn!(
            "a reservation was released outside the runtime; it expires with its window"
        ),
    }
}
