//! `type: redis`: one key per entry (`<namespace>:<sha256>`), written with `SET … PX` so it
//! expires with its TTL. Every call has a short timeout: an unreachable Redis costs a
//! request at most that, after which the cache is marked degraded (shown by `/health` and
//! `/cache/stats`), requests bypass it without calling Redis, and a background probe once a
//! second brings it back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long one Redis call may take before the cache counts Redis as unreachable.
const TIMEOUT: Duration = Duration::from_millis(250);
const PROBE_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

#[derive(Debug, Clone)]
struct State {
    degraded: Option<(DateTime<Utc>, String)>,
    next_probe: DateTime<Utc>,
}

pub struct RedisStore {
    conn: ConnectionManager,
    pub place: String,
    state: Arc<Mutex<State>>,
    probing: Arc<AtomicBool>,
}

/// Redis could not be used for this request.
#[derive(Debug)]
pub struct Down;

impl RedisStore {
    /// Connects on first use: the start never waits on Redis.
    pub fn new(url: &str, place: String) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("{:?} ({place})", e.kind()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(0)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("{:?} ({place})", e.kind()))?;
        Ok(Self {
            conn,
            place,
            state: Arc::new(Mutex::new(State {
                degraded: None,
                next_probe: DateTime::<Utc>::UNIX_EPOCH,
            })),
            probing: Arc::new(AtomicBool::new(false)),
        })
    }

    /// When Redis was found unreachable and why, while it still is.
    pub fn degraded(&self) -> Option<(DateTime<Utc>, String)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).degraded.clone()
    }

    /// Whether to call Redis now; while degraded, starts a probe (at most one a second).
    fn usable(&self) -> bool {
        let now = Utc::now();
        {
            let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if s.degraded.is_none() {
                return true;
            }
            if s.next_probe > now {
                return false;
            }
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            return false;
        }
        let mut conn = self.conn.clone();
        let state = self.state.clone();
        let probing = self.probing.clone();
        let place = self.place.clone();
        tokio::spawn(async move {
            let pong: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            match pong {
                Ok(_) => {
                    if let Some((since, _)) = s.degraded.take() {
                        tracing::info!(redis = %place, %since, "Redis answers again; responses are cached again");
                    }
                }
                Err(_) => s.next_probe = Utc::now() + PROBE_EVERY,
            }
            drop(s);
            probing.store(false, Ordering::Release);
        });
        false
    }

    fn degrade(&self, error: &redis::RedisError) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.degraded.is_none() {
            let text = describe(error);
            tracing::warn!(redis = %self.place, error = %text, "Redis is unreachable; requests bypass the response cache until it answers");
            s.degraded = Some((Utc::now(), text));
        }
        s.next_probe = Utc::now() + PROBE_EVERY;
    }

    fn check<T>(&self, r: redis::RedisResult<T>) -> Result<T, Down> {
        r.map_err(|e| {
            self.degrade(&e);
            Down
        })
    }

    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, Down> {
        if !self.usable() {
            return Err(Down);
        }
        let mut conn = self.conn.clone();
        let got: redis::RedisResult<Option<Vec<u8>>> =
            redis::cmd("GET").arg(key).query_async(&mut conn).await;
        Ok(self.check(got)?.map(Bytes::from))
    }

    pub async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), Down> {
        if !self.usable() {
            return Err(Down);
        }
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        let set: redis::RedisResult<()> =
            redis::cmd("SET").arg(key).arg(value).arg("PX").arg(ms).query_async(&mut conn).await;
        self.check(set)
    }

    pub async fn delete(&self, keys: &[String]) -> Result<u64, String> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let n: redis::RedisResult<u64> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
        n.map_err(|e| describe(&e))
    }

    /// Every key under `prefix` (SCAN, never KEYS): for stats and clear.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, String> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(|e| describe(&e))?;
            out.extend(batch);
            cursor = next;
            if cursor == 0 {
                return Ok(out);
            }
        }
    }

    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        pong.map(|_| ()).map_err(|e| describe(&e))
    }
}

/// A Redis error as one line without anything secret in it.
fn describe(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "no answer within 250 ms".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_connection_dropped() || e.is_io_error() {
        "connection lost".to_owned()
    } else {
        format!("{:?}", e.kind())
    }
}
