//! Where the engine reads the time: the system clock, or a clock a test sets and moves, so
//! a test crosses a period or a minute boundary without sleeping.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's UTC clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until it is moved.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// UTC time read as the wall clock at creation plus tokio's monotonic time since: never goes
/// backwards, and follows tokio's paused clock in tests (`tokio::time::advance`). The
/// in-process engine's default; Redis engines use [`SystemClock`] so replicas agree.
pub struct MonotonicClock {
    wall: DateTime<Utc>,
    base: tokio::time::Instant,
}

impl MonotonicClock {
    pub fn new() -> Self {
        Self { wall: Utc::now(), base: tokio::time::Instant::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.base);
        self.wall + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::zero())
    }
}
