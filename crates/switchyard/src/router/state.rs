//! What the router knows of each deployment while it serves: requests in flight, a latency
//! average, this minute's usage, recent failures, the cooldown, and the last failure (for
//! `/health` and `doctor`).
//!
//! With Redis, a cooldown this replica decides is announced to the others (`shared`), and
//! one another replica decided is applied here (`apply_shared`) without counting as a
//! failure of this replica.
//!
//! Each deployment has its own state, so requests to different deployments never contend;
//! the hot checks (in flight, cooling) are atomics. Time is `tokio::time::Instant`, so tests
//! run on a paused clock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::time::Instant;

use super::shared::Announcer;
use crate::classify::{Cooling, UpstreamError};

const WINDOW: Duration = Duration::from_secs(60);

/// How a deployment cools, resolved from router settings and its own `cooldown_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CooldownPolicy {
    pub allowed_fails: u32,
    pub cooldown_time: Duration,
    pub disabled: bool,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub error: UpstreamError,
    pub at: SystemTime,
}

/// Why a deployment is cooling and until when.
#[derive(Debug, Clone)]
pub struct Cooldown {
    pub until: Instant,
    pub reason: UpstreamError,
    /// The replica that decided it, when another one did (shared through Redis).
    pub by: Option<Arc<str>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Counted failures within the last minute, oldest first.
    failures: VecDeque<Instant>,
    minute_start: Option<Instant>,
    requests_this_minute: u64,
    tokens_this_minute: u64,
    last_failure: Option<Failure>,
    cooldown: Option<Cooldown>,
    /// How many times the deployment started cooling, by the status that cooled it (for
    /// `litellm_deployment_cooled_down`; statuses are few, so a short list).
    cooled: Vec<(u16, u64)>,
}

#[derive(Debug)]
pub struct DeploymentState {
    epoch: Instant,
    in_flight: AtomicU32,
    /// Exponentially weighted average of successful latencies, in microseconds; 0 = unknown.
    latency_us: AtomicU64,
    /// Milliseconds after `epoch` until which the deployment cools; 0 = not cooling.
    cool_until_ms: AtomicU64,
    inner: Mutex<Inner>,
    /// Where this replica announces the cooldowns it decides; none without shared Redis.
    announcer: ArcSwapOption<Announcer>,
}

impl Default for DeploymentState {
    fn default() -> Self {
        Self::new()
    }
}

/// Decrements the in-flight count when the attempt (or the stream it committed to) ends,
/// however it ends.
pub struct InFlight(Arc<DeploymentState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl DeploymentState {
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            in_flight: AtomicU32::new(0),
            latency_us: AtomicU64::new(0),
            cool_until_ms: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
            announcer: ArcSwapOption::empty(),
        }
    }

    /// Announces this replica's cooldowns through `announcer` from now on (none: keep them
    /// local). Set on every router build, since the state outlives the router on reloads.
    pub fn share_through(&self, announcer: Option<Arc<Announcer>>) {
        self.announcer.store(announcer);
    }

    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Average latency of successful attempts; `None` until one succeeded.
    pub fn latency(&self) -> Option<Duration> {
        match self.latency_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Counts a request against this minute's `rpm`/`tpm` budget.
    pub fn count_request(&self, now: Instant, tokens: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            roll_minute(&mut inner, now);
            inner.requests_this_minute += 1;
            inner.tokens_this_minute += tokens;
        }
    }

    /// Requests and tokens counted this minute.
    pub fn usage(&self, now: Instant) -> (u64, u64) {
        match self.inner.lock() {
            Ok(mut inner) => {
                roll_minute(&mut inner, now);
                (inner.requests_this_minute, inner.tokens_this_minute)
            }
            Err(_) => (0, 0),
        }
    }

    pub fn record_success(&self, latency: Duration) {
        let sample = latency.as_micros().clamp(1, u128::from(u64::MAX)) as u64;
        let old = self.latency_us.load(Ordering::Relaxed);
        // Weight 1/4 on the newest sample: reacts within a few requests, ignores one outlier.
        let new = if old == 0 { sample } else { old - old / 4 + sample / 4 };
        self.latency_us.store(new.max(1), Ordering::Relaxed);
        if let Ok(mut inner) = self.inner.lock()
            && inner.last_failure.is_some()
            && inner.cooldown.is_none()
        {
            inner.last_failure = None;
        }
    }

    /// Records a failed attempt and cools the deployment when the kind and the policy say
    /// so. Returns the end of the cooldown when it is cooling.
    pub fn record_failure(
        &self,
        error: &UpstreamError,
        now: Instant,
        policy: CooldownPolicy,
    ) -> Option<Instant> {
        let (until, extended) = self.cool_for_failure(error, now, policy)?;
        if extended && let Some(announcer) = self.announcer.load_full() {
            announcer.announce(until.saturating_duration_since(now), error);
        }
        Some(until)
    }

    /// The cooldown a failure leads to, and whether it started or lengthened one.
    fn cool_for_failure(
        &self,
        error: &UpstreamError,
        now: Instant,
        policy: CooldownPolicy,
    ) -> Option<(Instant, bool)> {
        let Ok(mut inner) = self.inner.lock() else { return None };
        inner.last_failure = Some(Failure { error: error.clone(), at: SystemTime::now() });
        if policy.disabled {
            return None;
        }
        let cool_for = match error.kind.cooling() {
            Cooling::Never => return None,
            // A `retry-after` says exactly how long the upstream wants us away.
            Cooling::Now => error.retry_after.unwrap_or(policy.cooldown_time),
            Cooling::Counted => {
                while inner.failures.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                    inner.failures.pop_front();
                }
                inner.failures.push_back(now);
                if inner.failures.len() as u32 <= policy.allowed_fails {
                    return None;
                }
                error.retry_after.unwrap_or(policy.cooldown_time).max(policy.cooldown_time)
            }
        };
        let until = now + cool_for;
        // Re-cooling extends a cooldown, never shortens it.
        let (until, extended) = match &inner.cooldown {
            Some(current) if current.until > now && current.until >= until => {
                (current.until, false)
            }
            _ => (until, true),
        };
        if inner.cooldown.as_ref().is_none_or(|c| c.until <= now) {
            let status = error.status.unwrap_or_else(|| error.kind.http_status().as_u16());
            match inner.cooled.iter_mut().find(|(s, _)| *s == status) {
                Some((_, n)) => *n += 1,
                None => inner.cooled.push((status, 1)),
            }
        }
        // A longer cooldown another replica sent keeps its own reason.
        if extended || inner.cooldown.as_ref().is_none_or(|c| c.by.is_none()) {
            inner.cooldown = Some(Cooldown { until, reason: error.clone(), by: None });
        }
        self.store_until(until);
        Some((until, extended))
    }

    /// Applies a cooldown another replica decided: the same deadline and its reason, unless
    /// a cooldown here already lasts as long. It is not a failure of this replica: failure
    /// counts, the last failure and the cooled-down counter are left alone, and it is not
    /// announced again. Returns whether it changed anything.
    pub fn apply_shared(
        &self,
        until: Instant,
        reason: UpstreamError,
        by: Arc<str>,
        now: Instant,
    ) -> bool {
        if until <= now {
            return false;
        }
        let Ok(mut inner) = self.inner.lock() else { return false };
        if inner.cooldown.as_ref().is_some_and(|c| c.until >= until) {
            return false;
        }
        inner.cooldown = Some(Cooldown { until, reason, by: Some(by) });
        self.store_until(until);
        true
    }

    fn store_until(&self, until: Instant) {
        let ms = until.duration_since(self.epoch).as_millis().max(1) as u64;
        self.cool_until_ms.store(ms, Ordering::Relaxed);
    }

    /// The cooldown in force at `now`, if any.
    pub fn cooldown(&self, now: Instant) -> Option<Cooldown> {
        let ms = self.cool_until_ms.load(Ordering::Relaxed);
        if ms == 0 || self.epoch + Duration::from_millis(ms) <= now {
            return None;
        }
        self.inner.lock().ok().and_then(|inner| inner.cooldown.clone()).filter(|c| c.until > now)
    }

    pub fn is_cooling(&self, now: Instant) -> bool {
        let ms = self.cool_until_ms.load(Ordering::Relaxed);
        ms != 0 && self.epoch + Duration::from_millis(ms) > now
    }

    /// How many times the deployment started cooling, by the status that cooled it.
    pub fn cooldowns(&self) -> Vec<(u16, u64)> {
        self.inner.lock().map(|inner| inner.cooled.clone()).unwrap_or_default()
    }

    /// The failure since the last success, if any (kept while cooling).
    pub fn last_failure(&self) -> Option<Failure> {
        self.inner.lock().ok().and_then(|inner| inner.last_failure.clone())
    }
}

fn roll_minute(inner: &mut Inner, now: Instant) {
    let stale = inner.minute_start.is_none_or(|start| now.duration_since(start) >= WINDOW);
    if stale {
        inner.minute_start = Some(now);
        inner.requests_this_minute = 0;
        inner.tokens_this_minute = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::ErrorKind;

    const POLICY: CooldownPolicy =
        CooldownPolicy { allowed_fails: 2, cooldown_time: Duration::from_secs(5), disabled: false };

    fn err(kind: ErrorKind) -> UpstreamError {
        UpstreamError::new(kind, "x")
    }

    #[tokio::test(start_paused = true)]
    async fn credentials_failures_cool_at_once_for_cooldown_time() {
        let s = DeploymentState::new();
        let now = Instant::now();
        let until = s.record_failure(&err(ErrorKind::CredentialsInvalid), now, POLICY);
        assert_eq!(until, Some(now + Duration::from_secs(5)));
        assert!(s.is_cooling(now));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!s.is_cooling(Instant::now()));
        assert!(s.cooldown(Instant::now()).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_sets_the_cooldown_length() {
        let s = DeploymentState::new();
        let now = Instant::now();
        let mut e = err(ErrorKind::RateLimited);
        e.retry_after = Some(Duration::from_secs(30));
        assert_eq!(s.record_failure(&e, now, POLICY), Some(now + Duration::from_secs(30)));
    }

    #[tokio::test(start_paused = true)]
    async fn recooling_extends_and_never_shortens() {
        let s = DeploymentState::new();
        let now = Instant::now();
        let mut long = err(ErrorKind::RateLimited);
        long.retry_after = Some(Duration::from_secs(60));
        s.record_failure(&long, now, POLICY);
        // A later, shorter cooldown keeps the longer deadline.
        let short = s.record_failure(&err(ErrorKind::CredentialsExpired), now, POLICY);
        assert_eq!(short, Some(now + Duration::from_secs(60)));
        // A later, longer one extends it.
        let mut longer = err(ErrorKind::RateLimited);
        longer.retry_after = Some(Duration::from_secs(90));
        assert_eq!(s.record_failure(&longer, now, POLICY), Some(now + Duration::from_secs(90)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cooldown_from_another_replica_cools_without_counting_as_a_failure_here() {
        let s = DeploymentState::new();
        let now = Instant::now();
        let by: Arc<str> = "web-2 (pid 7)".into();
        let until = now + Duration::from_secs(30);
        assert!(s.apply_shared(until, err(ErrorKind::CredentialsExpired), by.clone(), now));
        let c = s.cooldown(now).unwrap();
        assert_eq!((c.until, c.by.as_deref()), (until, Some("web-2 (pid 7)")));
        assert!(s.last_failure().is_none(), "this replica saw no failure");
        assert!(s.cooldowns().is_empty(), "the replica that decided counts the cooldown");
        // Shorter than the one in force: ignored.
        let shorter = now + Duration::from_secs(10);
        assert!(!s.apply_shared(shorter, err(ErrorKind::RateLimited), by.clone(), now));
        assert_eq!(s.cooldown(now).unwrap().until, until);
        // A shorter local failure keeps the longer shared deadline and its reason.
        assert_eq!(s.record_failure(&err(ErrorKind::CredentialsInvalid), now, POLICY), Some(until));
        assert_eq!(s.cooldown(now).unwrap().reason.kind, ErrorKind::CredentialsExpired);
        // A longer local one takes over with its own reason.
        let mut long = err(ErrorKind::RateLimited);
        long.retry_after = Some(Duration::from_secs(60));
        s.record_failure(&long, now, POLICY);
        let c = s.cooldown(now).unwrap();
        assert_eq!((c.reason.kind, c.by), (ErrorKind::RateLimited, None));
        // And a shared one never shortens it.
        assert!(!s.apply_shared(until, err(ErrorKind::CredentialsExpired), by, now));
        assert_eq!(s.cooldown(now).unwrap().until, now + Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_cool_only_past_allowed_fails_within_a_minute() {
        let s = DeploymentState::new();
        let e = err(ErrorKind::Overloaded);
        assert_eq!(s.record_failure(&e, Instant::now(), POLICY), None);
        assert_eq!(s.record_failure(&e, Instant::now(), POLICY), None);
        // A minute later the old failures no longer count.
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(s.record_failure(&e, Instant::now(), POLICY), None);
        assert_eq!(s.record_failure(&e, Instant::now(), POLICY), None);
        let now = Instant::now();
        assert_eq!(s.record_failure(&e, now, POLICY), Some(now + Duration::from_secs(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn request_faults_and_disabled_cooldowns_never_cool() {
        let s = DeploymentState::new();
        let now = Instant::now();
        assert_eq!(s.record_failure(&err(ErrorKind::InvalidRequest), now, POLICY), None);
        let off = CooldownPolicy { disabled: true, ..POLICY };
        assert_eq!(s.record_failure(&err(ErrorKind::CredentialsInvalid), now, off), None);
        assert!(!s.is_cooling(now));
        assert!(s.last_failure().is_some(), "the failure is still known to /health");
    }

    #[tokio::test(start_paused = true)]
    async fn usage_resets_every_minute_and_in_flight_counts_down_on_drop() {
        let s = Arc::new(DeploymentState::new());
        s.count_request(Instant::now(), 100);
        s.count_request(Instant::now(), 50);
        assert_eq!(s.usage(Instant::now()), (2, 150));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(s.usage(Instant::now()), (0, 0));
        {
            let _a = s.begin();
            let _b = s.begin();
            assert_eq!(s.in_flight(), 2);
        }
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn latency_is_a_smoothed_average_of_successes() {
        let s = DeploymentState::new();
        assert_eq!(s.latency(), None);
        s.record_success(Duration::from_millis(100));
        assert_eq!(s.latency(), Some(Duration::from_millis(100)));
        s.record_success(Duration::from_millis(500));
        assert_eq!(s.latency(), Some(Duration::from_millis(200)));
    }
}
