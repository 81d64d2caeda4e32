//! The response cache (`litellm_settings.cache`): answers stored by a key over what
//! determines them (`key.rs`), in this process (`memory.rs`, bounded by bytes) or in Redis
//! (`redis.rs`, one key per entry with its TTL). An entry is the canonical answer
//! (`entry.rs`), so a hit is encoded for whichever surface asked, as JSON or as a stream.
//!
//! Per request, LiteLLM's `cache` object (`no-cache`, `no-store`, `ttl`, `s-maxage`,
//! `namespace`, `use-cache`) and a `Cache-Control: no-cache | no-store` header decide what
//! happens ([`Control`]). A streamed answer is stored only after its `Stop` event: a failed
//! or cut stream never is ([`Cache::tee`]).
//!
//! **Invariant:** the cache never fails a request: Redis unreachable means a bypass.

mod entry;
mod key;
pub(crate) mod memory;
pub(crate) mod redis;

pub use entry::{Accumulator, Entry, events};
pub use key::key;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::CACHE_CONTROL;
use bytes::Bytes;
use futures_util::Stream;
use serde_json::{Value, json};

use crate::canonical::{ChatRequest, ChatResponse, StreamEvent};
use crate::classify::UpstreamError;
use crate::config::response_cache::{CacheConfig, CacheStore, DEFAULT_NAMESPACE};
use crate::provider::EventStream;

enum Store {
    Memory(memory::Memory),
    Redis(redis::RedisStore),
}

#[derive(Default)]
struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
    bypasses: AtomicU64,
    stores: AtomicU64,
    store_errors: AtomicU64,
}

pub struct Cache {
    config: CacheConfig,
    store: Store,
    stats: Stats,
}

/// The cache's counters since start, and whether its store is unreachable now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub hits: u64,
    pub misses: u64,
    /// Lookups skipped: `no-cache`, or the store unreachable.
    pub bypasses: u64,
    pub stores: u64,
    pub store_errors: u64,
    pub degraded: bool,
}

/// What one request asked of the cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Control {
    /// Whether the cache is used at all (`mode`, `use-cache`, `caching: false`).
    pub on: bool,
    /// `no-cache`: do not answer from the cache (the fresh answer is still stored).
    pub no_cache: bool,
    /// `no-store`: do not store this answer.
    pub no_store: bool,
    pub ttl: Option<Duration>,
    /// `s-maxage`: accept an entry only if it is at most this old.
    pub max_age: Option<Duration>,
    pub namespace: Option<String>,
}

/// The outcome of a lookup, for the `x-switchyard-cache` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Hit,
    Miss,
    /// The request asked not to read (`no-cache`), or the store could not be reached.
    Bypass,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Hit => "hit",
            Status::Miss => "miss",
            Status::Bypass => "bypass",
        }
    }
}

fn seconds(v: &Value) -> Option<Duration> {
    let s = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (s >= 0.0).then(|| Duration::try_from_secs_f64(s).ok()).flatten()
}

fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.trim(), "true" | "True" | "1"),
        _ => false,
    }
}

impl Control {
    /// From the request's `cache` object and `caching` flag and the `Cache-Control` header.
    pub fn of(chat: &ChatRequest, headers: &HeaderMap, default_on: bool) -> Self {
        let obj = chat.gateway.get("cache").and_then(Value::as_object);
        let get = |k: &str| obj.and_then(|o| o.get(k));
        let mut on = default_on || flag(get("use-cache"));
        if matches!(chat.gateway.get("caching"), Some(Value::Bool(false))) {
            on = false;
        }
        let mut c = Control {
            on,
            no_cache: flag(get("no-cache")),
            no_store: flag(get("no-store")),
            ttl: get("ttl").and_then(seconds).filter(|d| !d.is_zero()),
            max_age: get("s-maxage").and_then(seconds),
            namespace: get("namespace")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        };
        for value in headers.get_all(CACHE_CONTROL) {
            for part in value.to_str().unwrap_or_default().split(',') {
                match part.trim().to_ascii_lowercase().as_str() {
                    "no-cache" => c.no_cache = true,
                    "no-store" => c.no_store = true,
                    _ => {}
                }
            }
        }
        c
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Cache {
    /// The cache a config asks for, or none. A Redis URL the client cannot parse turns the
    /// cache off with a warning: the gateway serves uncached rather than not at all.
    pub fn for_config(config: &crate::config::Config) -> Option<Arc<Cache>> {
        let c = config.general.cache.as_ref()?;
        let store = match &c.store {
            CacheStore::Local { max_bytes } => Store::Memory(memory::Memory::new(*max_bytes)),
            CacheStore::Redis { url, place } => {
                match redis::RedisStore::new(url.expose(), place.clone()) {
                    Ok(r) => Store::Redis(r),
                    Err(err) => {
                        tracing::warn!(%err, "the response cache's Redis URL cannot be used; responses are not cached");
                        return None;
                    }
                }
            }
        };
        Some(Arc::new(Cache { config: c.clone(), store, stats: Stats::default() }))
    }

    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Whether this surface is cached (`supported_call_types`).
    pub fn covers(&self, messages: bool) -> bool {
        if messages { self.config.messages } else { self.config.chat }
    }

    /// Whether `POST /v1/responses` is cached.
    pub fn covers_responses(&self) -> bool {
        self.config.responses
    }

    /// The full key of `chat` under the request's namespace, else the configured one (and
    /// for Redis, the default namespace so every key is ours to clear).
    pub fn key_for(&self, chat: &ChatRequest, control: &Control) -> String {
        let ns = control.namespace.as_deref().or(self.config.namespace.as_deref()).or(
            match self.store {
                Store::Redis(_) => Some(DEFAULT_NAMESPACE),
                Store::Memory(_) => None,
            },
        );
        key(chat, ns)
    }

    /// The entry under `key` no older than `max_age`. `Err` when the store is unreachable.
    pub async fn get(&self, key: &str, max_age: Option<Duration>) -> Result<Option<Entry>, ()> {
        let bytes = match &self.store {
            Store::Memory(m) => m.get(key),
            Store::Redis(r) => match r.get(key).await {
                Ok(b) => b,
                Err(redis::Down) => {
                    self.stats.bypasses.fetch_add(1, Ordering::Relaxed);
                    return Err(());
                }
            },
        };
        let entry = bytes.and_then(|b| serde_json::from_slice::<Entry>(&b).ok()).filter(|e| {
            max_age.is_none_or(|age| {
                now_ms() - e.stored_at <= i64::try_from(age.as_millis()).unwrap_or(i64::MAX)
            })
        });
        let counter = if entry.is_some() { &self.stats.hits } else { &self.stats.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        if entry.is_some() {
            crate::metrics::global().cache_hit();
        } else {
            crate::metrics::global().cache_miss();
        }
        Ok(entry)
    }

    pub fn count_bypass(&self) {
        self.stats.bypasses.fetch_add(1, Ordering::Relaxed);
    }

    pub async fn put(&self, key: &str, answer: &ChatResponse, ttl: Option<Duration>) {
        let ttl = ttl.unwrap_or(self.config.ttl);
        let Ok(bytes) = serde_json::to_vec(&Entry::of(answer, now_ms())) else { return };
        let stored = match &self.store {
            Store::Memory(m) => {
                m.put(key, Bytes::from(bytes), ttl);
                true
            }
            Store::Redis(r) => r.put(key, &bytes, ttl).await.is_ok(),
        };
        let counter = if stored { &self.stats.stores } else { &self.stats.store_errors };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `events` passed through unchanged; once the stream's `Stop` arrives with no error
    /// before it, the answer it carried is stored under `key` (in the background).
    pub fn tee(
        self: Arc<Self>,
        key: String,
        ttl: Option<Duration>,
        events: EventStream,
    ) -> EventStream {
        Box::pin(Tee { inner: events, acc: Some(Accumulator::default()), cache: self, key, ttl })
    }

    /// The counters since start and whether the store is unreachable now (for metrics).
    pub fn snapshot(&self) -> Snapshot {
        let s = &self.stats;
        Snapshot {
            hits: s.hits.load(Ordering::Relaxed),
            misses: s.misses.load(Ordering::Relaxed),
            bypasses: s.bypasses.load(Ordering::Relaxed),
            stores: s.stores.load(Ordering::Relaxed),
            store_errors: s.store_errors.load(Ordering::Relaxed),
            degraded: match &self.store {
                Store::Memory(_) => false,
                Store::Redis(r) => r.degraded().is_some(),
            },
        }
    }

    /// `memory` or `redis`, as the state-store metrics name backends.
    pub fn backend(&self) -> &'static str {
        match &self.store {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }

    /// (entries, bytes, bound in bytes) of the in-process store; `None` for Redis, whose
    /// count takes a scan (`/cache/stats` does it, a scrape does not).
    pub fn memory_size(&self) -> Option<(u64, u64, u64)> {
        match &self.store {
            Store::Memory(m) => Some(m.size()),
            Store::Redis(_) => None,
        }
    }

    /// LiteLLM's cache `type` as readiness shows it: `local` or `redis`.
    pub fn kind(&self) -> &'static str {
        match &self.store {
            Store::Memory(_) => "local",
            Store::Redis(_) => "redis",
        }
    }

    /// `None` in process; else whether the shared Redis is unreachable now, since when, why.
    pub fn redis_outage(&self) -> Option<Option<(chrono::DateTime<chrono::Utc>, String)>> {
        match &self.store {
            Store::Memory(_) => None,
            Store::Redis(r) => Some(r.degraded_probing()),
        }
    }

    /// For `/health`: the store, and since when and why it is unreachable.
    pub fn health_json(&self) -> Value {
        match &self.store {
            Store::Memory(_) => json!({"type": "local", "degraded": false}),
            Store::Redis(r) => match r.degraded() {
                None => json!({"type": "redis", "redis": r.place, "degraded": false}),
                Some((since, error)) => json!({
                    "type": "redis", "redis": r.place, "degraded": true,
                    "since": since.to_rfc3339(), "error": error,
                }),
            },
        }
    }

    /// `/cache/stats`: counters since start, and what the store holds.
    pub async fn stats_json(&self) -> Value {
        let s = &self.stats;
        let mut out = json!({
            "hits": s.hits.load(Ordering::Relaxed),
            "misses": s.misses.load(Ordering::Relaxed),
            "bypasses": s.bypasses.load(Ordering::Relaxed),
            "stores": s.stores.load(Ordering::Relaxed),
            "store_errors": s.store_errors.load(Ordering::Relaxed),
            "ttl_seconds": self.config.ttl.as_secs_f64(),
            "mode": if self.config.default_on { "default_on" } else { "default_off" },
            "health": self.health_json(),
        });
        match &self.store {
            Store::Memory(m) => {
                let (entries, bytes, max) = m.size();
                out["entries"] = json!(entries);
                out["bytes"] = json!(bytes);
                out["max_bytes"] = json!(max);
            }
            Store::Redis(r) => {
                out["namespace"] = json!(self.prefix());
                out["entries"] = match r.keys(&self.prefix()).await {
                    Ok(keys) => json!(keys.len()),
                    Err(_) => Value::Null,
                };
            }
        }
        out
    }

    fn prefix(&self) -> String {
        format!("{}:", self.config.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE))
    }

    /// Drops every entry (in Redis, every key under the configured namespace); returns how
    /// many.
    pub async fn clear(&self) -> Result<u64, String> {
        match &self.store {
            Store::Memory(m) => Ok(m.clear()),
            Store::Redis(r) => {
                let keys = r.keys(&self.prefix()).await?;
                let mut n = 0;
                for chunk in keys.chunks(500) {
                    n += r.delete(chunk).await?;
                }
                Ok(n)
            }
        }
    }

    pub async fn delete(&self, keys: &[String]) -> Result<u64, String> {
        match &self.store {
            Store::Memory(m) => Ok(keys.iter().filter(|k| m.delete(k)).count() as u64),
            Store::Redis(r) => r.delete(keys).await,
        }
    }

    pub async fn ping(&self) -> Result<(), String> {
        match &self.store {
            Store::Memory(_) => Ok(()),
            Store::Redis(r) => r.ping().await,
        }
    }
}

struct Tee {
    inner: EventStream,
    /// `None` once the stream failed (nothing is stored) or was stored.
    acc: Option<Accumulator>,
    cache: Arc<Cache>,
    key: String,
    ttl: Option<Duration>,
}

impl Stream for Tee {
    type Item = Result<StreamEvent, UpstreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let next = this.inner.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(event))) => {
                if let Some(acc) = &mut this.acc {
                    acc.push(event);
                }
                if matches!(event, StreamEvent::Stop)
                    && let Some(answer) = this.acc.take().and_then(Accumulator::finish)
                {
                    let (cache, key, ttl) = (this.cache.clone(), this.key.clone(), this.ttl);
                    tokio::spawn(async move { cache.put(&key, &answer, ttl).await });
                }
            }
            Poll::Ready(Some(Err(_))) => this.acc = None,
            Poll::Ready(None) | Poll::Pending => {}
        }
        next
    }
}
