//! The storage behind the metrics: families of label sets, each with its cells (atomics),
//! and the latency histogram.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use super::OTHER;

/// Label sets one family holds at most; a new one beyond it is counted in the family's
/// overflow series (every label `other`), so memory stays bounded whatever clients send.
pub const MAX_SERIES: usize = 10_000;

pub(crate) struct Entry<const N: usize, V> {
    pub labels: [Box<str>; N],
    pub cells: V,
}

/// Label sets with `N` labels and their cells, found by a hash of the borrowed values (a
/// known set costs no allocation).
pub(crate) struct Family<const N: usize, V> {
    map: RwLock<HashMap<u64, Vec<Arc<Entry<N, V>>>>>,
    len: AtomicUsize,
    /// A fast hash with a per-process random seed: label values partly come from clients,
    /// who must not be able to pile their series into one bucket.
    hasher: foldhash::fast::RandomState,
}

impl<const N: usize, V: Default> Family<N, V> {
    pub fn new() -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            len: AtomicUsize::new(0),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Runs `f` on the cells of `labels`, creating them at first use.
    pub fn with(&self, labels: &[&str; N], f: impl FnOnce(&V)) {
        let hash = self.hash(labels);
        {
            let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = find(&map, hash, labels) {
                f(&e.cells);
                return;
            }
        }
        let overflow = [OTHER; N];
        let (labels, hash) = if self.len.load(Ordering::Relaxed) >= MAX_SERIES {
            (&overflow, self.hash(&overflow))
        } else {
            (labels, hash)
        };
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = find(&map, hash, labels) {
            f(&e.cells);
            return;
        }
        let entry = Arc::new(Entry {
            labels: std::array::from_fn(|i| Box::from(labels[i])),
            cells: V::default(),
        });
        f(&entry.cells);
        map.entry(hash).or_default().push(entry);
        self.len.fetch_add(1, Ordering::Relaxed);
    }

    /// Every label set, for a scrape.
    pub fn entries(&self) -> Vec<Arc<Entry<N, V>>> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.values().flatten().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    fn hash(&self, labels: &[&str; N]) -> u64 {
        self.hasher.hash_one(labels)
    }
}

fn find<'m, const N: usize, V>(
    map: &'m HashMap<u64, Vec<Arc<Entry<N, V>>>>,
    hash: u64,
    labels: &[&str; N],
) -> Option<&'m Arc<Entry<N, V>>> {
    map.get(&hash)?.iter().find(|e| e.labels.iter().zip(labels).all(|(a, b)| &**a == *b))
}

/// LiteLLM's latency buckets (seconds), so dashboards' `histogram_quantile` reads the same.
pub const BUCKETS: [f64; 35] = [
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0, 120.0, 180.0,
    240.0, 300.0,
];

/// Observations per bucket (not cumulative; the last is above every bound) and their sum.
pub(crate) struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: std::array::from_fn(|_| AtomicU64::new(0)), sum_us: AtomicU64::new(0) }
    }
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS.partition_point(|b| *b < secs);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Per-bucket counts and the sum in seconds, as of now.
    pub fn read(&self) -> ([u64; BUCKETS.len() + 1], f64) {
        let counts = std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed));
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (counts, sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_is_inclusive_and_beyond_the_last_is_counted() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(1000));
        let (counts, sum) = h.read();
        assert_eq!(counts[0], 1);
        assert_eq!(counts[BUCKETS.len()], 1);
        assert!((sum - 1000.005).abs() < 1e-6);
    }

    #[test]
    fn label_sets_beyond_the_cap_fold_into_one() {
        let f: Family<1, AtomicU64> = Family::new();
        for i in 0..MAX_SERIES + 50 {
            f.with(&[&i.to_string()], |c| {
                c.fetch_add(1, Ordering::Relaxed);
            });
        }
        assert_eq!(f.len(), MAX_SERIES + 1);
        let other = f.entries().into_iter().find(|e| &*e.labels[0] == OTHER).unwrap();
        assert_eq!(other.cells.load(Ordering::Relaxed), 50);
    }
}
