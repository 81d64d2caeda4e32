//! What is known of each deployment from the traffic it served: the last failure, if it
//! has not answered successfully since. Read by `/health`; written by the router.
//!
//! The success path costs one relaxed atomic load; the lock is taken only when a
//! deployment fails or recovers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use crate::classify::UpstreamError;

#[derive(Debug, Clone)]
pub struct Failure {
    pub error: UpstreamError,
    pub at: SystemTime,
}

#[derive(Debug, Default)]
pub struct DeploymentHealth {
    failing: AtomicBool,
    last_failure: Mutex<Option<Failure>>,
}

impl DeploymentHealth {
    pub fn record_success(&self) {
        if self.failing.load(Ordering::Relaxed) {
            self.failing.store(false, Ordering::Relaxed);
            if let Ok(mut last) = self.last_failure.lock() {
                *last = None;
            }
        }
    }

    pub fn record_failure(&self, error: &UpstreamError) {
        if let Ok(mut last) = self.last_failure.lock() {
            *last = Some(Failure { error: error.clone(), at: SystemTime::now() });
        }
        self.failing.store(true, Ordering::Relaxed);
    }

    /// The failure since the last success, if any.
    pub fn last_failure(&self) -> Option<Failure> {
        if !self.failing.load(Ordering::Relaxed) {
            return None;
        }
        self.last_failure.lock().ok().and_then(|last| last.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::ErrorKind;

    #[test]
    fn a_success_clears_the_last_failure() {
        let h = DeploymentHealth::default();
        assert!(h.last_failure().is_none());
        h.record_failure(&UpstreamError::new(ErrorKind::RateLimited, "slow down"));
        assert_eq!(h.last_failure().map(|f| f.error.kind), Some(ErrorKind::RateLimited));
        h.record_success();
        assert!(h.last_failure().is_none());
    }
}
