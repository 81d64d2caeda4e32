//! `doctor`'s view of the Redis that budgets and rate limits share between replicas: whether it
//! answers a `PING`, and what the gateway does while it does not. Nothing is written.

use std::time::Duration;

use serde::Serialize;

use crate::config::Config;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedisReport {
    /// `host:port`; never a password.
    pub place: String,
    /// `ok`, `unreachable`, or `not_checked` (`--offline`).
    pub state: &'static str,
    pub error: Option<String>,
    pub fail_closed: bool,
}

const TIMEOUT: Duration = Duration::from_secs(2);

/// `None` when no Redis is configured (counters are per process).
pub async fn check(config: &Config, offline: bool) -> Option<RedisReport> {
    let settings = config.general.redis.as_ref()?;
    let report = |state, error| RedisReport {
        place: settings.place.clone(),
        state,
        error,
        fail_closed: settings.fail_closed,
    };
    if offline {
        return Some(report("not_checked", None));
    }
    let ping = async {
        let client = redis::Client::open(settings.url.expose())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    Some(match tokio::time::timeout(TIMEOUT, ping).await {
        Ok(Ok(_)) => report("ok", None),
        // The crate's messages name the host, never the password.
        Ok(Err(e)) => report("unreachable", Some(e.to_string())),
        Err(_) => report("unreachable", Some(format!("no answer within {}s", TIMEOUT.as_secs()))),
    })
}
