//! `type: local`: entries in this process, bounded by their bytes (key and serialized
//! answer), evicting the least recently used first; an entry past its TTL is gone at its
//! next read. Sixteen shards, each with its own lock and a sixteenth of the bytes, so no
//! lock is shared by all requests.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

const SHARDS: usize = 16;

pub struct Memory {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

struct Slot {
    value: Bytes,
    expires: Instant,
    tick: u64,
}

struct Shard {
    map: HashMap<String, Slot>,
    /// Recency: the oldest use first.
    order: BTreeMap<u64, String>,
    used: u64,
    cap: u64,
    tick: u64,
}

impl Shard {
    fn weight(key: &str, value: &Bytes) -> u64 {
        (key.len() + value.len()) as u64
    }

    fn remove(&mut self, key: &str) -> bool {
        match self.map.remove(key) {
            Some(slot) => {
                self.order.remove(&slot.tick);
                self.used -= Self::weight(key, &slot.value);
                true
            }
            None => false,
        }
    }
}

impl Memory {
    pub fn new(max_bytes: u64) -> Self {
        let cap = (max_bytes / SHARDS as u64).max(1);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    map: HashMap::new(),
                    order: BTreeMap::new(),
                    used: 0,
                    cap,
                    tick: 0,
                })
            })
            .collect();
        Self { shards, hasher: RandomState::new() }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        let now = Instant::now();
        let mut s = self.shard(key);
        let s = &mut *s;
        let slot = s.map.get(key)?;
        if slot.expires <= now {
            s.remove(key);
            return None;
        }
        s.tick += 1;
        let tick = s.tick;
        let slot = s.map.get_mut(key)?;
        let old = std::mem::replace(&mut slot.tick, tick);
        let value = slot.value.clone();
        if let Some(k) = s.order.remove(&old) {
            s.order.insert(tick, k);
        }
        Some(value)
    }

    /// Stores `value` for `ttl`; an entry larger than a shard's share is not stored.
    pub fn put(&self, key: &str, value: Bytes, ttl: Duration) {
        let mut s = self.shard(key);
        s.remove(key);
        let weight = Shard::weight(key, &value);
        if weight > s.cap {
            return;
        }
        while s.used + weight > s.cap {
            let Some((_, oldest)) = s.order.pop_first() else { break };
            if let Some(slot) = s.map.remove(&oldest) {
                s.used -= Shard::weight(&oldest, &slot.value);
            }
        }
        s.tick += 1;
        let tick = s.tick;
        s.used += weight;
        s.order.insert(tick, key.to_owned());
        s.map.insert(key.to_owned(), Slot { value, expires: Instant::now() + ttl, tick });
    }

    pub fn delete(&self, key: &str) -> bool {
        self.shard(key).remove(key)
    }

    /// Drops every entry; returns how many there were.
    pub fn clear(&self) -> u64 {
        let mut n = 0;
        for shard in &self.shards {
            let mut s = shard.lock().unwrap_or_else(PoisonError::into_inner);
            n += s.map.len() as u64;
            s.map.clear();
            s.order.clear();
            s.used = 0;
        }
        n
    }

    /// (entries, bytes, bound in bytes).
    pub fn size(&self) -> (u64, u64, u64) {
        let mut out = (0, 0, 0);
        for shard in &self.shards {
            let s = shard.lock().unwrap_or_else(PoisonError::into_inner);
            out.0 += s.map.len() as u64;
            out.1 += s.used;
            out.2 += s.cap;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_bytes_evicting_the_least_recently_used() {
        // 16 shards of 100 bytes: put enough 40-byte entries that every shard overflows.
        let m = Memory::new(1600);
        let keys: Vec<String> = (0..200).map(|i| format!("k{i:03}")).collect();
        for k in &keys {
            m.put(k, Bytes::from(vec![b'x'; 36]), Duration::from_secs(60));
            // Keep the first key recently used: it must survive.
            assert!(m.get(&keys[0]).is_some());
        }
        let (entries, bytes, cap) = m.size();
        assert!(bytes <= cap, "{bytes} > {cap}");
        assert!((16..200).contains(&entries));
        assert!(m.get(&keys[0]).is_some());
        assert!(m.get(&keys[1]).is_none() || m.get(&keys[2]).is_none());
    }

    #[test]
    fn an_entry_expires_and_too_large_is_not_stored() {
        let m = Memory::new(1600);
        m.put("a", Bytes::from_static(b"v"), Duration::ZERO);
        assert!(m.get("a").is_none());
        m.put("big", Bytes::from(vec![0; 500]), Duration::from_secs(60));
        assert!(m.get("big").is_none());
        m.put("b", Bytes::from_static(b"v"), Duration::from_secs(60));
        assert_eq!(m.clear(), 1);
        assert_eq!(m.size().0, 0);
    }
}
