//! The credentials cache of one deployment: answers from memory while the credentials are
//! fresh, refreshes them before they expire, and runs one refresh at a time — callers that
//! arrive during a refresh await its outcome instead of starting their own.
//!
//! Never blocks a request while usable credentials exist: inside the refresh window one
//! caller refreshes and the others keep signing with the current credentials. Nothing is
//! cached after a failure, so the next request after `aws sso login` tries again.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;

use crate::classify::CredentialFailure;

/// Credentials that expire sooner than this are refreshed by the next caller.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// Credentials with less than this left are not used: callers wait for the refresh.
pub const MIN_LEFT: Duration = Duration::from_secs(30);

/// Why credentials could not be loaded, in the words of aws-config (sources included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub failure: CredentialFailure,
    pub detail: String,
}

#[derive(Default)]
pub struct Cache {
    current: RwLock<Option<Credentials>>,
    /// Held by the one refresh in flight; remembers how the last refresh ended.
    refresh: tokio::sync::Mutex<Outcome>,
    /// Bumped when a refresh ends, so waiters can tell that one happened while they waited.
    generation: AtomicU64,
}

#[derive(Default)]
struct Outcome {
    generation: u64,
    error: Option<LoadError>,
}

impl Cache {
    /// The credentials to sign with now; `load` runs only when they must be (re)loaded.
    pub async fn get<F, Fut>(&self, load: F) -> Result<Credentials, LoadError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Credentials, LoadError>>,
    {
        self.get_at(SystemTime::now(), load).await
    }

    /// The credentials currently held, if any (for `doctor`).
    pub fn current(&self) -> Option<Credentials> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    async fn get_at<F, Fut>(&self, now: SystemTime, load: F) -> Result<Credentials, LoadError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Credentials, LoadError>>,
    {
        if let Some(current) = self.current() {
            if left(&current, now) > REFRESH_BEFORE {
                return Ok(current);
            }
            if left(&current, now) > MIN_LEFT {
                // Refresh early, but only if nobody else is: the rest keep signing.
                let Ok(mut outcome) = self.refresh.try_lock() else { return Ok(current) };
                return Ok(self.load(&mut outcome, load).await.unwrap_or(current));
            }
        }
        let seen = self.generation.load(Ordering::Acquire);
        let mut outcome = self.refresh.lock().await;
        if let Some(current) = self.current()
            && left(&current, now) > MIN_LEFT
        {
            return Ok(current);
        }
        if outcome.generation != seen {
            // A refresh ended while this caller waited for it: share its failure.
            if let Some(error) = &outcome.error {
                return Err(error.clone());
            }
        }
        self.load(&mut outcome, load).await
    }

    async fn load<F, Fut>(&self, outcome: &mut Outcome, load: F) -> Result<Credentials, LoadError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Credentials, LoadError>>,
    {
        let result = load().await;
        match &result {
            Ok(fresh) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(fresh.clone());
                outcome.error = None;
            }
            Err(error) => {
                tracing::debug!(detail = %error.detail, "AWS credentials could not be refreshed");
                outcome.error = Some(error.clone());
            }
        }
        outcome.generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        result
    }
}

/// How long until `credentials` expire; static credentials never do.
fn left(credentials: &Credentials, now: SystemTime) -> Duration {
    match credentials.expiry() {
        None => Duration::MAX,
        Some(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn creds(key: &str, expiry: Option<SystemTime>) -> Credentials {
        Credentials::new(key, "secret", Some("token".into()), expiry, "test")
    }

    fn failure() -> LoadError {
        LoadError {
            failure: CredentialFailure::Provider,
            detail: "the SSO token has expired and cannot be refreshed".into(),
        }
    }

    #[tokio::test]
    async fn fresh_credentials_are_served_from_memory_and_static_ones_forever() {
        let cache = Cache::default();
        let now = SystemTime::now();
        let got = cache.get_at(now, || async { Ok(creds("ASIA1", None)) }).await.unwrap();
        assert_eq!(got.access_key_id(), "ASIA1");
        let later = now + Duration::from_secs(86_400 * 365);
        let got = cache.get_at(later, || async { Err(failure()) }).await.unwrap();
        assert_eq!(got.access_key_id(), "ASIA1");
    }

    #[tokio::test]
    async fn credentials_near_expiry_are_refreshed_early_and_kept_if_that_fails() {
        let cache = Cache::default();
        let now = SystemTime::now();
        let expiry = Some(now + Duration::from_secs(3600));
        cache.get_at(now, || async move { Ok(creds("ASIA1", expiry)) }).await.unwrap();
        // Four minutes left: refreshed by this caller; a failure keeps the current ones.
        let soon = now + Duration::from_secs(3600 - 240);
        let got = cache.get_at(soon, || async { Err(failure()) }).await.unwrap();
        assert_eq!(got.access_key_id(), "ASIA1");
        let got = cache.get_at(soon, || async { Ok(creds("ASIA2", None)) }).await.unwrap();
        assert_eq!(got.access_key_id(), "ASIA2");
    }

    #[tokio::test]
    async fn expired_credentials_fail_until_a_load_succeeds_nothing_is_cached_on_failure() {
        let cache = Cache::default();
        let now = SystemTime::now();
        let past = Some(now - Duration::from_secs(1));
        cache.get_at(now, || async move { Ok(creds("ASIA1", past)) }).await.unwrap();
        assert_eq!(cache.get_at(now, || async { Err(failure()) }).await.unwrap_err(), failure());
        // `aws sso login` happened: the next request loads again and succeeds.
        let got = cache.get_at(now, || async { Ok(creds("ASIA2", None)) }).await.unwrap();
        assert_eq!(got.access_key_id(), "ASIA2");
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_refresh() {
        let cache = Arc::new(Cache::default());
        let loads = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, loads, gate) = (cache.clone(), loads.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        gate.notified().await;
                        Err(failure())
                    })
                    .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.notify_one();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap_err(), failure());
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one refresh for eight callers");
    }
}
