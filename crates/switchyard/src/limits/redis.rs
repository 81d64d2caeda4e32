//! The Redis backend: every replica checks and counts in the same Redis, each admission and
//! each settlement one Lua script (EVALSHA), so N replicas enforce one budget atomically.
//! Keys live under a configurable prefix and expire when their window does.
//!
//! When Redis cannot be reached the backend says so (`/health`, a warning in the log) and
//! either keeps serving on in-process counters or, with `fail_closed`, refuses; it probes
//! Redis at most once a second meanwhile and goes back to it as soon as it answers.

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use super::check::{Check, CheckKind, Settlement, Verdict};
use super::memory::Memory;
use super::{Backend, Health, Unavailable};
use crate::redis_outage::{Outage, describe};

const ADMIT: &str = r"
local n = #KEYS
local seen = {}
for i = 1, n do
  local b = (i - 1) * 4
  local kind = ARGV[b + 1]
  local limit = tonumber(ARGV[b + 2])
  local amount = tonumber(ARGV[b + 3])
  local u, r = 0, 0
  if kind == 'b' then
    local v = redis.call('HMGET', KEYS[i], 'u', 'r')
    u = tonumber(v[1]) or 0
    r = tonumber(v[2]) or 0
  else
    u = tonumber(redis.call('GET', KEYS[i])) or 0
  end
  local t = u + r
  local ok
  if kind == 'b' or kind == 't' then
    ok = t < limit and t + amount <= limit
  else
    ok = t + 1 <= limit
  end
  if not ok then return {i, u, r} end
end
local out = {0}
for i = 1, n do
  local b = (i - 1) * 4
  local kind = ARGV[b + 1]
  local amount = ARGV[b + 3]
  local ttl = tonumber(ARGV[b + 4])
  local u, r = 0, 0
  if kind == 'b' then
    r = redis.call('HINCRBY', KEYS[i], 'r', amount)
    u = tonumber(redis.call('HGET', KEYS[i], 'u')) or 0
  elseif kind == 't' then
    u = redis.call('INCRBY', KEYS[i], amount)
  else
    u = redis.call('INCR', KEYS[i])
  end
  if redis.call('TTL', KEYS[i]) < ttl then redis.call('EXPIRE', KEYS[i], ttl) end
  out[#out + 1] = u
  out[#out + 1] = r
end
return out
";

const SETTLE: &str = r"
for i = 1, #KEYS do
  local b = (i - 1) * 4
  local kind = ARGV[b + 1]
  local release = ARGV[b + 2]
  local add = ARGV[b + 3]
  local ttl = tonumber(ARGV[b + 4])
  if kind == 'b' then
    if redis.call('HINCRBY', KEYS[i], 'r', -tonumber(release)) < 0 then
      redis.call('HSET', KEYS[i], 'r', 0)
    end
    redis.call('HINCRBY', KEYS[i], 'u', add)
  elseif kind == 't' then
    if redis.call('INCRBY', KEYS[i], add) < 0 then redis.call('SET', KEYS[i], 0) end
  elseif kind == 'p' then
    if redis.call('DECR', KEYS[i]) < 0 then redis.call('SET', KEYS[i], 0) end
  end
  if kind ~= 'q' and redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ttl) end
end
return 0
";

const SEED: &str = r"
if redis.call('HSETNX', KEYS[1], 'u', ARGV[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return tonumber(redis.call('HGET', KEYS[1], 'u'))
";

/// How long a Redis call may take before the backend counts Redis as unreachable.
const TIMEOUT: Duration = Duration::from_millis(1000);
pub struct RedisBackend {
    conn: ConnectionManager,
    prefix: String,
    /// Where Redis is, for messages (host and port, never a password).
    place: String,
    fail_closed: bool,
    admit: Script,
    settle: Script,
    seed: Script,
    local: Memory,
    outage: Outage,
}

impl RedisBackend {
    /// A backend that connects on first use (it never blocks the start on Redis).
    pub fn new(
        url: &str,
        place: String,
        prefix: String,
        fail_closed: bool,
    ) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("{:?} ({place})", e.kind()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("{:?} ({place})", e.kind()))?;
        let outage = Outage::new(
            place.clone(),
            "Redis answers again; budgets and rate limits are shared again",
        );
        Ok(Self {
            conn,
            prefix,
            place,
            fail_closed,
            admit: Script::new(ADMIT),
            settle: Script::new(SETTLE),
            seed: Script::new(SEED),
            local: Memory::default(),
            outage,
        })
    }

    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }

    fn degrade(&self, error: &redis::RedisError) {
        let text = describe(error, TIMEOUT);
        if self.outage.fail(text.clone()) {
            tracing::warn!(
                redis = %self.place,
                error = %text,
                fail_closed = self.fail_closed,
                "LIM-03: Redis is unreachable; budgets and rate limits are counted in this process only until it answers"
            );
        }
    }

    async fn admit_remote(&self, checks: &[Check]) -> redis::RedisResult<Verdict> {
        let mut inv = self.admit.prepare_invoke();
        for c in checks {
            inv.key(self.key(&c.key));
            inv.arg(c.kind.code()).arg(c.limit).arg(c.amount).arg(c.ttl);
        }
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = inv.invoke_async(&mut conn).await?;
        Ok(match reply.first() {
            Some(&0) => Verdict::Admitted {
                used: reply[1..]
                    .chunks(2)
                    .map(|p| (p[0], p.get(1).copied().unwrap_or(0)))
                    .collect(),
            },
            Some(&i) => Verdict::Refused {
                index: usize::try_from(i - 1).unwrap_or(0),
                used: reply.get(1).copied().unwrap_or(0),
                reserved: reply.get(2).copied().unwrap_or(0),
            },
            None => Verdict::Admitted { used: Vec::new() },
        })
    }

    async fn settle_remote(&self, checks: &[Check], done: Settlement) -> redis::RedisResult<()> {
        let mut inv = self.settle.prepare_invoke();
        for c in checks {
            inv.key(self.key(&c.key));
            let (release, add) = match c.kind {
                CheckKind::Budget => (c.amount, done.cost),
                CheckKind::Tokens => (0, done.tokens - c.amount),
                CheckKind::Requests | CheckKind::Parallel => (0, 0),
            };
            inv.arg(c.kind.code()).arg(release).arg(add).arg(c.ttl);
        }
        let mut conn = self.conn.clone();
        let _: Value = inv.invoke_async(&mut conn).await?;
        Ok(())
    }
}

impl Backend for RedisBackend {
    fn admit<'a>(
        &'a self,
        checks: &'a [Check],
        now: i64,
    ) -> BoxFuture<'a, Result<(Verdict, bool), Unavailable>> {
        Box::pin(async move {
            if self.outage.degraded().is_none() {
                match self.admit_remote(checks).await {
                    Ok(v) => return Ok((v, false)),
                    Err(e) => self.degrade(&e),
                }
            } else {
                self.outage.probe(&self.conn);
            }
            if self.fail_closed {
                let error = self.outage.degraded().map(|(_, e)| e).unwrap_or_default();
                return Err(Unavailable { place: self.place.clone(), error });
            }
            Ok((self.local.admit(checks, now), true))
        })
    }

    fn settle<'a>(
        &'a self,
        checks: &'a [Check],
        done: Settlement,
        local: bool,
        now: i64,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if local {
                self.local.settle(checks, done, now);
                return;
            }
            // A reservation made in Redis is settled there; a short outage is retried so
            // the reservation does not stay held until its window ends.
            for attempt in 0..3u32 {
                match self.settle_remote(checks, done).await {
                    Ok(()) => return,
                    Err(e) => {
                        self.degrade(&e);
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1)))
                            .await;
                    }
                }
            }
            tracing::warn!(redis = %self.place, "LIM-03: a reservation could not be settled in Redis; it is held until its window ends");
        })
    }

    fn seed<'a>(&'a self, key: &'a str, spent: i64, ttl: i64, now: i64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.local.seed(key, spent, ttl, now);
            let mut conn = self.conn.clone();
            let seeded: redis::RedisResult<Value> =
                self.seed.key(self.key(key)).arg(spent).arg(ttl).invoke_async(&mut conn).await;
            if let Err(e) = seeded {
                self.degrade(&e);
            }
        })
    }

    fn read<'a>(&'a self, key: &'a str, now: i64) -> BoxFuture<'a, (i64, i64)> {
        Box::pin(async move {
            if self.outage.degraded().is_some() {
                return self.local.read(key, now);
            }
            let mut conn = self.conn.clone();
            let read: redis::RedisResult<(Option<i64>, Option<i64>)> = redis::cmd("HMGET")
                .arg(self.key(key))
                .arg("u")
                .arg("r")
                .query_async(&mut conn)
                .await;
            match read {
                Ok((u, r)) => (u.unwrap_or(0), r.unwrap_or(0)),
                Err(e) => {
                    self.degrade(&e);
                    self.local.read(key, now)
                }
            }
        })
    }

    fn health(&self) -> Health {
        // A replica that readiness took out of rotation gets no traffic to notice Redis is
        // back: asking for its health starts the probe (at most one a second, in the
        // background) that traffic would.
        self.outage.probe(&self.conn);
        Health {
            backend: "redis",
            degraded: self.outage.degraded(),
            fail_closed: self.fail_closed,
            place: Some(self.place.clone()),
        }
    }
}
