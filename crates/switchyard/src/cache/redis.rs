//! `type: redis`: one key per entry (`<namespace>:<sha256>`), written with `SET … PX` so it
//! expires with its TTL. Every call has a short timeout: an unreachable Redis costs a
//! request at most that, after which the cache is marked degraded (shown by `/health` and
//! `/cache/stats`), requests bypass it without calling Redis, and a background probe once a
//! second brings it back.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::redis_outage::{Outage, describe};

/// How long one Redis call may take before the cache counts Redis as unreachable.
const TIMEOUT: Duration = Duration::from_millis(250);
pub struct RedisStore {
    conn: ConnectionManager,
    pub place: String,
    outage: Outage,
    /// What requests do while Redis is unreachable, for the warning.
    meanwhile: &'static str,
}

/// Redis could not be used for this request.
#[derive(Debug)]
pub struct Down;

impl RedisStore {
    /// Connects on first use: the start never waits on Redis.
    pub fn new(url: &str, place: String) -> Result<Self, String> {
        Self::for_use(
            url,
            place,
            "Redis answers again; responses are cached again",
            "requests bypass the response cache until it answers",
        )
    }

    /// A store whose outage messages say what it is for: `recovered` when Redis answers
    /// again, `meanwhile` what requests do until then.
    pub fn for_use(
        url: &str,
        place: String,
        recovered: &'static str,
        meanwhile: &'static str,
    ) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("{:?} ({place})", e.kind()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(0)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("{:?} ({place})", e.kind()))?;
        let outage = Outage::new(place.clone(), recovered);
        Ok(Self { conn, place, outage, meanwhile })
    }

    /// When Redis was found unreachable and why, while it still is.
    pub fn degraded(&self) -> Option<(DateTime<Utc>, String)> {
        self.outage.degraded()
    }

    /// Like [`Self::degraded`], and while it is, starts the once-a-second probe: health
    /// endpoints see Redis come back even when no request uses the store.
    pub fn degraded_probing(&self) -> Option<(DateTime<Utc>, String)> {
        self.outage.probe(&self.conn);
        self.outage.degraded()
    }

    /// Whether to call Redis now; while degraded, starts a probe (at most one a second).
    fn usable(&self) -> bool {
        if self.outage.degraded().is_none() {
            return true;
        }
        self.outage.probe(&self.conn);
        false
    }

    fn degrade(&self, error: &redis::RedisError) {
        let text = describe(error, TIMEOUT);
        if self.outage.fail(text.clone()) {
            tracing::warn!(redis = %self.place, error = %text, "Redis is unreachable; {}", self.meanwhile);
        }
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
        n.map_err(|e| describe(&e, TIMEOUT))
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
                .map_err(|e| describe(&e, TIMEOUT))?;
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
        pong.map(|_| ()).map_err(|e| describe(&e, TIMEOUT))
    }
}
