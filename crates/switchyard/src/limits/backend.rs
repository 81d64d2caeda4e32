//! Where counters live, behind one small trait: in process ([`super::memory`]) or in Redis
//! ([`super::redis`]), and the engine's state as `/health` shows it.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;

use super::check::{Check, Settlement, Verdict};
use super::memory::Memory;

/// Counted by a backend: in process or shared.
pub trait Backend: Send + Sync {
    /// Checks every counter and, when all pass, increases them; `bool`: counted locally
    /// (Redis was unreachable).
    fn admit<'a>(
        &'a self,
        checks: &'a [Check],
        now: i64,
    ) -> BoxFuture<'a, Result<(Verdict, bool), Unavailable>>;
    fn settle<'a>(
        &'a self,
        checks: &'a [Check],
        done: Settlement,
        local: bool,
        now: i64,
    ) -> BoxFuture<'a, ()>;
    /// Settles at once, without a task, when the backend can do it without waiting (the
    /// in-process counters): `false` when it cannot, and [`Backend::settle`] is spawned.
    fn settle_now(&self, _checks: &[Check], _done: Settlement, _now: i64) -> bool {
        false
    }
    /// Sets a budget counter's spend unless it already has one.
    fn seed<'a>(&'a self, key: &'a str, spent: i64, ttl: i64, now: i64) -> BoxFuture<'a, ()>;
    /// A budget counter's spend and reservations.
    fn read<'a>(&'a self, key: &'a str, now: i64) -> BoxFuture<'a, (i64, i64)>;
    fn health(&self) -> Health;
}

/// The shared backend is unreachable and the gateway fails closed.
#[derive(Debug, Clone)]
pub struct Unavailable {
    pub place: String,
    pub error: String,
}

/// The engine's state for `/health`.
#[derive(Debug, Clone)]
pub struct Health {
    pub backend: &'static str,
    pub degraded: Option<(DateTime<Utc>, String)>,
    pub fail_closed: bool,
    pub place: Option<String>,
}

#[derive(Serialize)]
pub(super) struct HealthJson<'a> {
    pub(super) backend: &'static str,
    pub(super) state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) redis: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<&'a str>,
    pub(super) fail_closed: bool,
    pub(super) soft_budget_crossings: u64,
}

pub(super) struct InProcess(pub(super) Memory);

impl Backend for InProcess {
    fn admit<'a>(
        &'a self,
        checks: &'a [Check],
        now: i64,
    ) -> BoxFuture<'a, Result<(Verdict, bool), Unavailable>> {
        Box::pin(std::future::ready(Ok((self.0.admit(checks, now), true))))
    }
    fn settle<'a>(
        &'a self,
        checks: &'a [Check],
        done: Settlement,
        _local: bool,
        now: i64,
    ) -> BoxFuture<'a, ()> {
        self.0.settle(checks, done, now);
        Box::pin(std::future::ready(()))
    }
    fn settle_now(&self, checks: &[Check], done: Settlement, now: i64) -> bool {
        self.0.settle(checks, done, now);
        true
    }
    fn seed<'a>(&'a self, key: &'a str, spent: i64, ttl: i64, now: i64) -> BoxFuture<'a, ()> {
        self.0.seed(key, spent, ttl, now);
        Box::pin(std::future::ready(()))
    }
    fn read<'a>(&'a self, key: &'a str, now: i64) -> BoxFuture<'a, (i64, i64)> {
        Box::pin(std::future::ready(self.0.read(key, now)))
    }
    fn health(&self) -> Health {
        Health { backend: "memory", degraded: None, fail_closed: false, place: None }
    }
}
