//! What the dashboard's overview shows of a time range, from the rows
//! [`super::read::Reader::scan`] yields: requests, failures by class, latency and gateway
//! overhead percentiles, cache hits, spend, and the same over time in buckets whose size
//! follows the range. Memory grows with the rows' durations (a few bytes each), not the rows.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime, Timelike};
use rust_decimal::Decimal;

use super::read::Entry;

/// The width of one point of the time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    /// Up to 6 hours by the minute, up to 14 days by the hour, longer by the day: a few
    /// hundred points at most for any range a chart shows.
    pub fn for_range(from: NaiveDateTime, to: NaiveDateTime) -> Self {
        let span = to - from;
        if span <= Duration::hours(6) {
            Self::Minute
        } else if span <= Duration::days(14) {
            Self::Hour
        } else {
            Self::Day
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    fn width(self) -> Duration {
        match self {
            Self::Minute => Duration::minutes(1),
            Self::Hour => Duration::hours(1),
            Self::Day => Duration::days(1),
        }
    }

    /// The start of the bucket `t` falls in.
    pub fn floor(self, t: NaiveDateTime) -> NaiveDateTime {
        let minute = t.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(t);
        match self {
            Self::Minute => minute,
            Self::Hour => minute.with_minute(0).unwrap_or(minute),
            Self::Day => t.date().and_time(chrono::NaiveTime::MIN),
        }
    }
}

/// One point of the series.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Point {
    pub start: NaiveDateTime,
    pub requests: u64,
    pub errors: u64,
    pub spend: Decimal,
    /// The median duration of the point's requests; `None` when it has none.
    pub p50_ms: Option<u64>,
}

#[derive(Default)]
struct Slot {
    requests: u64,
    errors: u64,
    spend: Decimal,
    durations: Vec<u32>,
}

/// The finished overview.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub requests: u64,
    /// Failed requests per error class (`unknown` when a row names none).
    pub errors: BTreeMap<String, u64>,
    pub latency_p50_ms: Option<u64>,
    pub latency_p99_ms: Option<u64>,
    /// Over the requests whose overhead was recorded (served by an upstream).
    pub overhead_p50_ms: Option<f64>,
    pub overhead_p99_ms: Option<f64>,
    pub cache_hits: u64,
    pub spend: Decimal,
    /// Requests of unknown cost, not in `spend`.
    pub unpriced: u64,
    pub series: Vec<Point>,
}

/// Series with more buckets than this list only the buckets that have requests.
const MAX_FILLED: i64 = 1_000;

/// Builds a [`Summary`] one row at a time.
pub struct Builder {
    bucket: Bucket,
    from: NaiveDateTime,
    to: NaiveDateTime,
    total: Slot,
    errors: BTreeMap<String, u64>,
    overheads: Vec<f64>,
    cache_hits: u64,
    unpriced: u64,
    series: BTreeMap<NaiveDateTime, Slot>,
}

impl Builder {
    pub fn new(from: NaiveDateTime, to: NaiveDateTime) -> Self {
        Self {
            bucket: Bucket::for_range(from, to),
            from,
            to,
            total: Slot::default(),
            errors: BTreeMap::new(),
            overheads: Vec::new(),
            cache_hits: 0,
            unpriced: 0,
            series: BTreeMap::new(),
        }
    }

    pub fn bucket(&self) -> Bucket {
        self.bucket
    }

    pub fn add(&mut self, e: &Entry) {
        let slot = self.series.entry(self.bucket.floor(e.start)).or_default();
        for s in [&mut self.total, slot] {
            s.requests += 1;
            s.errors += u64::from(e.failed);
            s.spend += e.spend.unwrap_or_default();
            if let Some(d) = e.duration_ms {
                s.durations.push(u32::try_from(d).unwrap_or(u32::MAX));
            }
        }
        if e.failed {
            let class = if e.error_class.is_empty() { "unknown" } else { e.error_class.as_str() };
            *self.errors.entry(class.to_owned()).or_default() += 1;
        }
        if let Some(o) = e.overhead_ms.filter(|o| o.is_finite()) {
            self.overheads.push(o);
        }
        self.cache_hits += u64::from(e.cache_hit);
        self.unpriced += u64::from(e.spend.is_none());
    }

    pub fn finish(mut self) -> Summary {
        self.total.durations.sort_unstable();
        self.overheads.sort_unstable_by(f64::total_cmp);
        let points = self
            .series
            .into_iter()
            .map(|(start, mut slot)| {
                slot.durations.sort_unstable();
                let point = Point {
                    start,
                    requests: slot.requests,
                    errors: slot.errors,
                    spend: slot.spend,
                    p50_ms: percentile(&slot.durations, 50).map(u64::from),
                };
                (start, point)
            })
            .collect();
        Summary {
            requests: self.total.requests,
            errors: self.errors,
            latency_p50_ms: percentile(&self.total.durations, 50).map(u64::from),
            latency_p99_ms: percentile(&self.total.durations, 99).map(u64::from),
            overhead_p50_ms: percentile(&self.overheads, 50),
            overhead_p99_ms: percentile(&self.overheads, 99),
            cache_hits: self.cache_hits,
            spend: self.total.spend,
            unpriced: self.unpriced,
            series: series(self.bucket, self.from, self.to, points),
        }
    }
}

/// The points in time order, with an empty point for every bucket of the range that has no
/// requests (unless there would be more than [`MAX_FILLED`]).
pub(super) fn series(
    bucket: Bucket,
    from: NaiveDateTime,
    to: NaiveDateTime,
    mut points: BTreeMap<NaiveDateTime, Point>,
) -> Vec<Point> {
    let width = bucket.width();
    let first = bucket.floor(from);
    let count = (to - first).num_seconds() / width.num_seconds().max(1);
    if count <= MAX_FILLED {
        let mut t = first;
        while t < to {
            points.entry(t).or_insert_with(|| Point { start: t, ..Point::default() });
            t += width;
        }
    }
    points.into_values().collect()
}

/// The nearest-rank percentile of sorted values: a value that occurred, never interpolated.
fn percentile<T: Copy>(sorted: &[T], p: usize) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap()
    }

    fn entry(start: &str, ms: u64, failed: bool, class: &str) -> Entry {
        Entry {
            start: at(start),
            duration_ms: Some(ms),
            failed,
            error_class: class.to_owned(),
            spend: Some(Decimal::new(1, 2)),
            ..Entry::default()
        }
    }

    #[test]
    fn the_bucket_follows_the_range() {
        let from = at("2026-12-01T00:00:00");
        assert_eq!(Bucket::for_range(from, at("2026-12-01T06:00:00")), Bucket::Minute);
        assert_eq!(Bucket::for_range(from, at("2026-12-08T00:00:00")), Bucket::Hour);
        assert_eq!(Bucket::for_range(from, at("2027-01-01T00:00:00")), Bucket::Day);
        assert_eq!(Bucket::Hour.floor(at("2026-12-01T10:59:59")), at("2026-12-01T10:00:00"));
    }

    #[test]
    fn percentiles_are_values_that_occurred() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7u32], 99), Some(7));
        assert_eq!(percentile::<u32>(&[], 50), None);
    }

    #[test]
    fn errors_by_class_and_an_empty_hour_is_a_zero_point() {
        let mut b = Builder::new(at("2026-12-01T00:00:00"), at("2026-12-01T03:00:00"));
        assert_eq!(b.bucket(), Bucket::Minute);
        let mut b2 = Builder::new(at("2026-12-01T00:00:00"), at("2026-12-02T00:00:00"));
        b2.add(&entry("2026-12-01T00:10:00", 100, false, ""));
        b2.add(&entry("2026-12-01T00:20:00", 300, true, "rate_limited"));
        b2.add(&entry("2026-12-01T02:00:00", 200, true, ""));
        let s = b2.finish();
        assert_eq!(s.requests, 3);
        assert_eq!(s.errors.get("rate_limited"), Some(&1));
        assert_eq!(s.errors.get("unknown"), Some(&1));
        assert_eq!((s.latency_p50_ms, s.latency_p99_ms), (Some(200), Some(300)));
        assert_eq!(s.series.len(), 24, "every hour of the day, empty ones too");
        assert_eq!((s.series[0].requests, s.series[0].errors), (2, 1));
        assert_eq!(s.series[1].requests, 0);
        assert_eq!(s.series[1].p50_ms, None);
        assert_eq!(s.spend, Decimal::new(3, 2));
        b.add(&entry("2026-12-01T00:00:30", 5, false, ""));
        assert_eq!(b.finish().series.len(), 180);
    }
}
