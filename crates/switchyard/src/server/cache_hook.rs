//! The response cache on the request path, shared by both chat handlers: after the key's
//! rules (so the key sees the model the request is routed to) and before the router. A hit
//! answers without an upstream call and without admission (no rate limit, no budget
//! reservation: it reaches no deployment and costs nothing); a miss is stored once served.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::Runtime;
use crate::cache::{Cache, Control, Status};
use crate::canonical::{ChatRequest, ChatResponse};
use crate::provider::EventStream;

const CACHE_KEY: HeaderName = HeaderName::from_static("x-litellm-cache-key");
const CACHE_STATUS: HeaderName = HeaderName::from_static("x-switchyard-cache");

/// One request's use of the cache.
pub(super) struct Lookup {
    cache: Arc<Cache>,
    pub key: String,
    no_store: bool,
    ttl: Option<Duration>,
    status: Status,
}

/// The cached answer to `chat` if there is one, and the lookup that stores a fresh answer
/// otherwise; `(None, None)` when the cache is off for this request.
pub(super) async fn lookup(
    runtime: &Runtime,
    headers: &HeaderMap,
    chat: &ChatRequest,
    messages: bool,
) -> (Option<Lookup>, Option<ChatResponse>) {
    lookup_covered(runtime, headers, chat, |c| c.covers(messages)).await
}

/// [`lookup`] for the surface `covered` says the cache serves.
pub(super) async fn lookup_covered(
    runtime: &Runtime,
    headers: &HeaderMap,
    chat: &ChatRequest,
    covered: impl Fn(&Cache) -> bool,
) -> (Option<Lookup>, Option<ChatResponse>) {
    let Some(cache) = runtime.cache.as_ref().filter(|c| covered(c)) else {
        return (None, None);
    };
    let control = Control::of(chat, headers, cache.config().default_on);
    if !control.on {
        return (None, None);
    }
    let key = cache.key_for(chat, &control);
    let (status, hit) = if control.no_cache {
        cache.count_bypass();
        (Status::Bypass, None)
    } else {
        match cache.get(&key, control.max_age).await {
            Ok(Some(entry)) => (Status::Hit, Some(entry.into_response())),
            Ok(None) => (Status::Miss, None),
            Err(()) => (Status::Bypass, None),
        }
    };
    let lookup =
        Lookup { cache: cache.clone(), key, no_store: control.no_store, ttl: control.ttl, status };
    (Some(lookup), hit)
}

impl Lookup {
    /// `x-litellm-cache-key` and `x-switchyard-cache: hit | miss | bypass`.
    pub fn headers(&self, headers: &mut HeaderMap) {
        if let Ok(key) = HeaderValue::from_str(&self.key) {
            headers.insert(CACHE_KEY, key);
        }
        headers.insert(CACHE_STATUS, HeaderValue::from_static(self.status.as_str()));
    }

    /// Stores a JSON answer (in the background: the client does not wait on Redis).
    pub fn store(&self, answer: &ChatResponse) {
        if self.no_store {
            return;
        }
        let (cache, key, ttl, answer) =
            (self.cache.clone(), self.key.clone(), self.ttl, answer.clone());
        tokio::spawn(async move { cache.put(&key, &answer, ttl).await });
    }

    /// A live stream that is stored once it completed normally.
    pub fn tee(&self, events: EventStream) -> EventStream {
        if self.no_store {
            return events;
        }
        self.cache.clone().tee(self.key.clone(), self.ttl, events)
    }
}

/// A cached answer as the events of a live stream.
pub(super) fn replay(answer: &ChatResponse) -> EventStream {
    Box::pin(futures_util::stream::iter(crate::cache::events(answer).into_iter().map(Ok)))
}
