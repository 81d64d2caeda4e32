//! An outage of a Redis that a feature shares between replicas (the limits' counters, the
//! response cache): since when and why it is unreachable, and one background `PING` at a
//! time, at most once a second, to learn when it answers again. The features decide what
//! to do meanwhile; this only keeps the state `/health` shows, without a call to Redis on
//! the request path while it is down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;

/// How often Redis is probed while it is unreachable.
const PROBE_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

#[derive(Debug)]
struct State {
    degraded: Option<(DateTime<Utc>, String)>,
    next_probe: DateTime<Utc>,
}

pub struct Outage {
    /// Host and port, for the log (never a password).
    place: String,
    /// Logged when Redis answers again.
    recovered: &'static str,
    state: Arc<Mutex<State>>,
    probing: Arc<AtomicBool>,
}

impl Outage {
    pub fn new(place: String, recovered: &'static str) -> Self {
        Self {
            place,
            recovered,
            state: Arc::new(Mutex::new(State {
                degraded: None,
                next_probe: DateTime::<Utc>::UNIX_EPOCH,
            })),
            probing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// When Redis was found unreachable and why, while it still is.
    pub fn degraded(&self) -> Option<(DateTime<Utc>, String)> {
        self.lock().degraded.clone()
    }

    /// Records a failed call; `true` when it starts an outage (the caller logs it, once).
    pub fn fail(&self, error: String) -> bool {
        let mut s = self.lock();
        s.next_probe = Utc::now() + PROBE_EVERY;
        if s.degraded.is_some() {
            return false;
        }
        s.degraded = Some((Utc::now(), error));
        true
    }

    /// While degraded: starts a background probe when one is due and none is in flight.
    pub fn probe(&self, conn: &ConnectionManager) {
        {
            let s = self.lock();
            if s.degraded.is_none() || s.next_probe > Utc::now() {
                return;
            }
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut conn = conn.clone();
        let state = self.state.clone();
        let probing = self.probing.clone();
        let (place, recovered) = (self.place.clone(), self.recovered);
        tokio::spawn(async move {
            let pong: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            match pong {
                Ok(_) => {
                    if let Some((since, _)) = s.degraded.take() {
                        tracing::info!(redis = %place, %since, "{recovered}");
                    }
                }
                Err(_) => s.next_probe = Utc::now() + PROBE_EVERY,
            }
            drop(s);
            probing.store(false, Ordering::Release);
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A Redis error as one line without anything secret in it; `timeout` is the call's limit.
pub fn describe(e: &redis::RedisError, timeout: Duration) -> String {
    if e.is_timeout() {
        let ms = timeout.as_millis();
        if ms.is_multiple_of(1000) {
            format!("no answer within {} s", ms / 1000)
        } else {
            format!("no answer within {ms} ms")
        }
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_connection_dropped() || e.is_io_error() {
        "connection lost".to_owned()
    } else {
        format!("{:?}", e.kind())
    }
}
