//! The in-process backend: one small mutex per counter, found through a sharded map, so
//! requests to different scopes never wait on each other and no lock is shared by all
//! requests. A request's counters are locked in key order (no deadlock), checked, and only
//! then increased: a request is admitted against every scope or against none.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::check::{Check, CheckKind, Settlement, Verdict};

const SHARDS: usize = 16;
/// Expired counters are swept from a shard every this many lookups in it.
const SWEEP_EVERY: u64 = 1024;

#[derive(Debug, Default)]
struct Counter {
    used: i64,
    reserved: i64,
    /// Unix seconds after which the counter is dropped.
    expires: i64,
}

/// foldhash, seeded per process: counter names (a key's 64-character hash among them) are
/// hashed twice per lookup, several lookups per request, where SipHash cost more than the
/// counting itself.
type Hasher = foldhash::fast::RandomState;

#[derive(Default)]
struct Shard {
    counters: Mutex<HashMap<String, Arc<Mutex<Counter>>, Hasher>>,
    lookups: AtomicU64,
}

pub struct Memory {
    shards: Vec<Shard>,
    hasher: Hasher,
}

impl Default for Memory {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| Shard::default()).collect(), hasher: Hasher::default() }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Memory {
    fn counter(&self, key: &str, now: i64, ttl: i64) -> Arc<Mutex<Counter>> {
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        let mut map = lock(&shard.counters);
        if shard.lookups.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            map.retain(|_, c| lock(c).expires > now);
        }
        // Looked up by `&str` first: a counter seen before costs no allocation.
        let c = match map.get(key) {
            Some(c) => c.clone(),
            None => map.entry(key.to_owned()).or_default().clone(),
        };
        drop(map);
        {
            let mut g = lock(&c);
            if g.expires != 0 && g.expires <= now {
                // Past its lifetime (the sweep has not reached it yet): it starts again, as
                // an expired Redis key would.
                *g = Counter::default();
            }
            g.expires = g.expires.max(now + ttl);
        }
        c
    }

    /// Checks every counter and increases them all, or none.
    pub fn admit(&self, checks: &[Check], now: i64) -> Verdict {
        let counters: Vec<_> = checks.iter().map(|c| self.counter(&c.key, now, c.ttl)).collect();
        let mut order: Vec<usize> = (0..checks.len()).collect();
        order.sort_by(|&a, &b| checks[a].key.cmp(&checks[b].key));
        order.dedup_by(|a, b| checks[*a].key == checks[*b].key);
        let mut guards: Vec<Option<MutexGuard<'_, Counter>>> =
            (0..checks.len()).map(|_| None).collect();
        for &i in &order {
            guards[i] = Some(lock(&counters[i]));
        }
        // A key listed twice (never in practice) shares the first listing's guard.
        let slot =
            |i: usize| order.iter().copied().find(|&j| checks[j].key == checks[i].key).unwrap_or(i);
        for (i, check) in checks.iter().enumerate() {
            let Some(g) = guards[slot(i)].as_ref() else { continue };
            if !check.fits(g.used, g.reserved) {
                return Verdict::Refused { index: i, used: g.used, reserved: g.reserved };
            }
        }
        let mut used = Vec::with_capacity(checks.len());
        for (i, check) in checks.iter().enumerate() {
            let Some(g) = guards[slot(i)].as_mut() else { continue };
            match check.kind {
                CheckKind::Budget => g.reserved += check.amount,
                CheckKind::Requests | CheckKind::Parallel => g.used += 1,
                CheckKind::Tokens => g.used += check.amount,
            }
            used.push((g.used, g.reserved));
        }
        Verdict::Admitted { used }
    }

    /// Ends a reservation: releases what was reserved and counts what was spent.
    pub fn settle(&self, checks: &[Check], done: Settlement, now: i64) {
        for check in checks {
            let c = self.counter(&check.key, now, check.ttl);
            let mut g = lock(&c);
            match check.kind {
                CheckKind::Budget => {
                    g.reserved = (g.reserved - check.amount).max(0);
                    g.used += done.cost;
                }
                CheckKind::Requests => {}
                CheckKind::Tokens => g.used = (g.used + done.tokens - check.amount).max(0),
                CheckKind::Parallel => g.used = (g.used - 1).max(0),
            }
        }
    }

    /// Sets a budget counter's spend when it has none yet (seeding from the ledger).
    pub fn seed(&self, key: &str, spent: i64, ttl: i64, now: i64) {
        let c = self.counter(key, now, ttl);
        let mut g = lock(&c);
        if g.used == 0 {
            g.used = spent;
        }
    }

    /// Spend and reservations of a counter.
    pub fn read(&self, key: &str, now: i64) -> (i64, i64) {
        let c = self.counter(key, now, 1);
        let g = lock(&c);
        (g.used, g.reserved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(key: &str, limit: i64, amount: i64) -> Check {
        Check { kind: CheckKind::Budget, key: key.into(), limit, amount, ttl: 60 }
    }

    #[test]
    fn all_or_nothing_across_scopes() {
        let m = Memory::default();
        let a = budget("b:a", 100, 60);
        let b = budget("b:b", 50, 60);
        assert!(matches!(m.admit(&[a.clone(), b], 0), Verdict::Refused { index: 1, .. }));
        assert_eq!(m.read("b:a", 0), (0, 0), "nothing reserved when one scope refuses");
        assert!(matches!(m.admit(std::slice::from_ref(&a), 0), Verdict::Admitted { .. }));
        assert!(matches!(m.admit(std::slice::from_ref(&a), 0), Verdict::Refused { index: 0, .. }));
        m.settle(std::slice::from_ref(&a), Settlement { cost: 10, tokens: 0 }, 0);
        assert_eq!(m.read("b:a", 0), (10, 0));
        assert!(matches!(m.admit(std::slice::from_ref(&a), 0), Verdict::Admitted { .. }));
    }
}
