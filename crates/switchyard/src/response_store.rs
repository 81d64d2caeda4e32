//! Stored Responses (`store: true`): each Response object with the whole conversation it
//! ended (input and output as canonical messages), kept for [`TTL`] so a later request can
//! continue it with `previous_response_id` and `GET /v1/responses/{id}` can return it.
//!
//! In Redis when the gateway has one (`router_settings.redis_*`: replicas share
//! conversations), under `<prefix>response:<id>` with a TTL; otherwise in process, bounded by
//! bytes (the response cache's store). An unreachable Redis never fails a request that does
//! not need a stored response: storing is skipped, with a warning.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache::memory::Memory;
use crate::cache::redis::RedisStore;
use crate::canonical::Message;
use crate::config::Config;

/// How long a stored Response can be continued or read back.
pub const TTL: Duration = Duration::from_secs(60 * 60);

/// The in-process store's bound.
const MEMORY_BYTES: u64 = 64 * 1024 * 1024;

/// One stored Response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    /// The Response object as the client received it.
    pub response: Value,
    /// The conversation up to and including this Response's output.
    pub messages: Vec<Message>,
    /// The same conversation as Responses items (the inputs as sent, the output items), for
    /// an upstream that takes the Responses API as is.
    #[serde(default)]
    pub items: Vec<Value>,
}

/// The store could not be reached; `place` is `host:port`.
#[derive(Debug)]
pub struct Unreachable {
    pub place: String,
}

enum Backend {
    Memory(Memory),
    Redis { store: RedisStore, prefix: String },
}

pub struct ResponseStore {
    backend: Backend,
}

impl ResponseStore {
    pub fn for_config(config: &Config) -> Self {
        if let Some(redis) = &config.general.redis {
            match RedisStore::for_use(
                redis.url.expose(),
                redis.place.clone(),
                "Redis answers again; Responses are stored again",
                "Responses are not stored (previous_response_id cannot find them) until it answers",
            ) {
                Ok(store) => {
                    let prefix = format!("{}response:", redis.prefix);
                    return Self { backend: Backend::Redis { store, prefix } };
                }
                Err(err) => {
                    tracing::warn!(redis = %redis.place, error = %err, "Responses are stored in process: the Redis URL is unusable");
                }
            }
        }
        Self::in_process()
    }

    pub fn in_process() -> Self {
        Self { backend: Backend::Memory(Memory::new(MEMORY_BYTES)) }
    }

    /// `None` in process; else whether the shared Redis is unreachable now, since when, why.
    pub fn redis_outage(&self) -> Option<Option<(chrono::DateTime<chrono::Utc>, String)>> {
        match &self.backend {
            Backend::Memory(_) => None,
            Backend::Redis { store, .. } => Some(store.degraded_probing()),
        }
    }

    pub async fn put(&self, id: &str, stored: &Stored) {
        let Ok(bytes) = serde_json::to_vec(stored) else { return };
        match &self.backend {
            Backend::Memory(m) => m.put(id, Bytes::from(bytes), TTL),
            Backend::Redis { store, prefix } => {
                // An outage is logged once by the store itself.
                let _ = store.put(&format!("{prefix}{id}"), &bytes, TTL).await;
            }
        }
    }

    /// The stored Response `id`; `Ok(None)` when unknown or expired.
    pub async fn get(&self, id: &str) -> Result<Option<Stored>, Unreachable> {
        if !plausible(id) {
            return Ok(None);
        }
        let bytes = match &self.backend {
            Backend::Memory(m) => m.get(id),
            Backend::Redis { store, prefix } => store
                .get(&format!("{prefix}{id}"))
                .await
                .map_err(|_| Unreachable { place: store.place.clone() })?,
        };
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Deletes `id`; whether it was there.
    pub async fn delete(&self, id: &str) -> Result<bool, Unreachable> {
        if !plausible(id) {
            return Ok(false);
        }
        match &self.backend {
            Backend::Memory(m) => Ok(m.delete(id)),
            Backend::Redis { store, prefix } => store
                .delete(&[format!("{prefix}{id}")])
                .await
                .map(|n| n > 0)
                .map_err(|_| Unreachable { place: store.place.clone() }),
        }
    }
}

/// Ids are ours (`resp_` and hex): anything else is unknown without a lookup, and never
/// becomes part of a Redis key.
fn plausible(id: &str) -> bool {
    id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::canonical::{ContentBlock, Role};

    #[tokio::test]
    async fn a_stored_response_reads_back_until_deleted() {
        let store = ResponseStore::in_process();
        let stored = Stored {
            response: json!({"id": "resp_1"}),
            messages: vec![Message { role: Role::User, content: vec![ContentBlock::text("hi")] }],
            items: vec![json!({"role": "user", "content": "hi"})],
        };
        store.put("resp_1", &stored).await;
        let got = store.get("resp_1").await.unwrap().unwrap();
        assert_eq!(got.messages, stored.messages);
        assert!(store.get("resp_2").await.unwrap().is_none());
        assert!(store.get("../../etc").await.unwrap().is_none());
        assert!(store.delete("resp_1").await.unwrap());
        assert!(store.get("resp_1").await.unwrap().is_none());
    }
}
