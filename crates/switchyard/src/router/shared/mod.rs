//! Cooldowns shared by replicas through Redis (LiteLLM shares its cooldowns through the
//! router's Redis too): a deployment one replica cooled — expired credentials, a missing
//! permission, a 429 — is skipped by every replica until the cooldown ends, instead of
//! being tried again by each.
//!
//! A cooldown this replica decides (`state.rs`) is handed to an [`Announcer`], which queues
//! it for a background task: one key per deployment, `<prefix>cooldown:<id>:<fingerprint>`,
//! whose TTL is the time left (replicas that start or reconnect later load the keys in
//! force), and a PUBLISH on `<prefix>cooldowns` so the others apply it at once. A subscriber
//! task on its own connection applies what the others announce to the current router's
//! deployments (`wire` says which deployment is the same one). Nothing on the request path
//! waits on Redis: announcing is a `try_send`, and with Redis away every replica keeps
//! cooling on its own.

mod link;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use super::{DeploymentState, Target};
use crate::classify::UpstreamError;
use crate::config::{Config, RedisConfig};

/// Announcements waiting for the background task; beyond, new ones are dropped (cooldowns
/// come a few at a time; a full queue means Redis is stuck, and local cooling goes on).
const QUEUE: usize = 256;

/// One cooldown on its way to Redis.
struct Outgoing {
    key: String,
    payload: String,
    ttl: Duration,
}

/// Where one deployment announces the cooldowns this replica decides for it.
pub struct Announcer {
    id: String,
    fp: String,
    key: String,
    replica: Arc<Replica>,
    tx: mpsc::Sender<Outgoing>,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer").field("key", &self.key).finish_non_exhaustive()
    }
}

impl Announcer {
    /// Queues the cooldown for every replica; never waits.
    pub fn announce(&self, left: Duration, reason: &UpstreamError) {
        if left.is_zero() {
            return;
        }
        let payload =
            wire::encode(&self.id, &self.fp, self.replica.origin, &self.replica.name, reason, left);
        let out = Outgoing { key: self.key.clone(), payload, ttl: left };
        if self.tx.try_send(out).is_err() {
            tracing::debug!(deployment = %self.id, "a cooldown was not shared: the queue to Redis is full");
        }
    }
}

/// This process among the replicas.
struct Replica {
    /// Random per process, so a replica ignores its own announcements even when two share a
    /// host name and pid (two gateways in one process, containers that are all pid 1).
    origin: u64,
    /// Host and pid, for people.
    name: String,
}

impl Replica {
    fn new() -> Self {
        let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
        let host = if host.is_empty() { "unknown host".to_owned() } else { host };
        Self { origin: fastrand::u64(1..), name: format!("{host} (pid {})", std::process::id()) }
    }
}

/// The current router's deployments by id, each with its fingerprint and live state.
type Registry = HashMap<String, Vec<(String, Arc<DeploymentState>)>>;

/// Whether the subscriber is connected, for `/health` and the log.
#[derive(Debug, Clone, Default)]
struct Link {
    connected: bool,
    /// Since when it is not connected, and why (none before the first attempt ended).
    down: Option<(DateTime<Utc>, String)>,
    /// Cooldowns applied from other replicas since the start.
    received: u64,
}

/// What the background tasks share with the handle.
struct Inner {
    prefix: String,
    place: String,
    replica: Arc<Replica>,
    registry: ArcSwap<Registry>,
    link: Mutex<Link>,
    /// Set when a router attaches: the subscriber loads the keys in force for it.
    rescan: Notify,
}

impl Inner {
    fn channel(&self) -> String {
        format!("{}cooldowns", self.prefix)
    }

    fn key_pattern(&self) -> String {
        format!("{}cooldown:*", self.prefix)
    }

    fn link(&self) -> std::sync::MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a cooldown read from Redis to every matching deployment; returns how many
    /// changed.
    fn apply(&self, r: &wire::Received) -> usize {
        if r.origin == self.replica.origin {
            return 0;
        }
        let now = tokio::time::Instant::now();
        let registry = self.registry.load();
        let Some(states) = registry.get(&r.id) else { return 0 };
        let mut applied = 0;
        for (fp, state) in states.iter().filter(|(fp, _)| *fp == r.fp) {
            if state.apply_shared(now + r.ttl, r.reason.clone(), r.by.clone(), now) {
                applied += 1;
                tracing::info!(
                    deployment = %r.id,
                    fingerprint = %fp,
                    by = %r.by,
                    class = r.reason.kind.as_str(),
                    diagnosis = r.reason.diagnosis.as_ref().map_or("", |d| d.id),
                    seconds = r.ttl.as_secs_f64(),
                    "cooling a deployment another replica cooled"
                );
            }
        }
        if applied > 0 {
            self.link().received += 1;
        }
        applied
    }
}

/// The process's sharing of cooldowns: kept across reloads while the Redis settings stay
/// the same; dropping it stops its tasks.
pub struct SharedCooldowns {
    inner: Arc<Inner>,
    tx: mpsc::Sender<Outgoing>,
    settings: RedisConfig,
    tasks: Vec<AbortHandle>,
}

impl SharedCooldowns {
    /// On when the config names a Redis for the router and cooldowns are on (LiteLLM shares
    /// them whenever its router has Redis; `disable_cooldowns` is the only way off). Needs a
    /// tokio runtime (a command that builds a router outside one shares nothing).
    pub fn for_config(config: &Config) -> Option<Arc<Self>> {
        let settings = config.general.redis.as_ref()?;
        if config.router.disable_cooldowns {
            return None;
        }
        tokio::runtime::Handle::try_current().ok()?;
        match Self::start(settings) {
            Ok(shared) => {
                tracing::info!(redis = %settings.place, replica = %shared.inner.replica.name, "cooldowns are shared with the replicas on this Redis");
                Some(Arc::new(shared))
            }
            Err(error) => {
                tracing::warn!(redis = %settings.place, %error, "cooldowns are not shared with other replicas: the Redis URL is unusable");
                None
            }
        }
    }

    /// The sharing to keep for `config` after a reload: `previous` when it still fits.
    pub fn reloaded(config: &Config, previous: Option<&Arc<Self>>) -> Option<Arc<Self>> {
        match (previous, &config.general.redis) {
            (Some(p), Some(redis)) if p.settings == *redis && !config.router.disable_cooldowns => {
                Some(p.clone())
            }
            _ => Self::for_config(config),
        }
    }

    fn start(settings: &RedisConfig) -> Result<Self, String> {
        let client = redis::Client::open(settings.url.expose())
            .map_err(|e| format!("{:?} ({})", e.kind(), settings.place))?;
        let inner = Arc::new(Inner {
            prefix: settings.prefix.clone(),
            place: settings.place.clone(),
            replica: Arc::new(Replica::new()),
            registry: ArcSwap::default(),
            link: Mutex::new(Link::default()),
            rescan: Notify::new(),
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        let tasks = vec![
            tokio::spawn(link::publish(client.clone(), inner.clone(), rx)).abort_handle(),
            tokio::spawn(link::subscribe(client, inner.clone())).abort_handle(),
        ];
        Ok(Self { inner, tx, settings: settings.clone(), tasks })
    }

    /// Makes `targets` (a router's deployments) the ones received cooldowns apply to, gives
    /// each its announcer, and has the subscriber load the cooldowns in force for them.
    pub(super) fn attach<'a>(&self, targets: impl Iterator<Item = &'a Target>) {
        let mut registry = Registry::new();
        for t in targets {
            let d = &t.deployment;
            let fp = wire::fingerprint(d);
            let key = format!("{}cooldown:{}:{fp}", self.inner.prefix, d.id);
            t.state.share_through(Some(Arc::new(Announcer {
                id: d.id.clone(),
                fp: fp.clone(),
                key,
                replica: self.inner.replica.clone(),
                tx: self.tx.clone(),
            })));
            let states = registry.entry(d.id.clone()).or_default();
            if !states.iter().any(|(_, s)| Arc::ptr_eq(s, &t.state)) {
                states.push((fp, t.state.clone()));
            }
        }
        self.inner.registry.store(Arc::new(registry));
        self.inner.rescan.notify_one();
    }

    /// The sharing's state for `/health` and readiness.
    pub fn health_json(&self) -> Value {
        let link = self.inner.link().clone();
        let mut out = json!({
            "shared": "redis",
            "redis": self.inner.place,
            "replica": self.inner.replica.name,
            "connected": link.connected,
            "received": link.received,
        });
        if let (false, Some((since, error))) = (link.connected, &link.down) {
            out["disconnected_since"] = json!(since.to_rfc3339());
            out["error"] = json!(error);
            out["meanwhile"] =
                json!("this replica cools deployments on its own until Redis answers");
        }
        out
    }
}

impl Drop for SharedCooldowns {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
