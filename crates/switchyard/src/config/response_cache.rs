//! `litellm_settings.cache` and `cache_params`: the response cache as LiteLLM configures it
//! (`type: local | redis`, `host`, `port`, `password`, `ttl`, `namespace`, `mode`,
//! `supported_call_types`), Redis found as LiteLLM finds it (the params, then REDIS_URL,
//! then REDIS_HOST/REDIS_PORT/REDIS_PASSWORD).

use std::time::Duration;

use serde::Deserialize;

use super::path::KeyPath;
use super::raw::{Flag, RawLitellmSettings, Seconds, Text, TextList};
use super::settings::place_of;
use super::validate::Ctx;
use crate::secret::Secret;

/// How long an entry lives when neither `cache_params.ttl` nor the request says: LiteLLM's
/// in-memory default. Redis entries get it too, so no cache key lives forever.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// `local`'s bound when `cache_params.max_size_bytes` is not written.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The Redis key prefix when no `namespace` is written, so `cache clear` never touches
/// another program's keys.
pub const DEFAULT_NAMESPACE: &str = "switchyard-cache";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    pub store: CacheStore,
    pub ttl: Duration,
    /// `cache_params.namespace`: every key starts with `<namespace>:`.
    pub namespace: Option<String>,
    /// `mode: default_on` (the default): every request is cached unless it opts out;
    /// `default_off`: only requests that send `cache: {"use-cache": true}`.
    pub default_on: bool,
    /// Which surfaces are cached (`supported_call_types`): chat completions, messages,
    /// responses.
    pub chat: bool,
    pub messages: bool,
    pub responses: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStore {
    /// In this process, bounded by the bytes of its entries.
    Local { max_bytes: u64 },
    /// One key per entry in Redis. `place` is `host:port` for messages (never the password).
    Redis { url: Secret, place: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a mapping of cache parameters (type: local|redis, ttl: ..., ...)")]
struct RawCacheParams {
    #[serde(rename = "type")]
    kind: Option<Text>,
    host: Option<Text>,
    port: Option<Text>,
    password: Option<Text>,
    url: Option<Text>,
    redis_url: Option<Text>,
    ttl: Option<Seconds>,
    namespace: Option<Text>,
    mode: Option<Text>,
    supported_call_types: Option<TextList>,
    max_size_bytes: Option<Seconds>,
}

pub(super) fn build(ctx: &mut Ctx<'_>, l: &RawLitellmSettings) -> Option<CacheConfig> {
    let lp = KeyPath::root().key("litellm_settings");
    let Some(Flag(true)) = l.cache else { return None };
    let pp = lp.key("cache_params");
    let p: RawCacheParams = ctx.raw(l.cache_params.clone(), &pp);
    let text =
        |t: &Option<Text>| t.as_ref().map(|Text(s)| s.trim().to_owned()).filter(|s| !s.is_empty());
    let env = |ctx: &mut Ctx<'_>, var: &str| {
        ctx.env.get(var).map(|v| v.value.trim().to_owned()).filter(|v| !v.is_empty())
    };
    let store = match text(&p.kind).as_deref().unwrap_or("local") {
        "local" | "in-memory" | "memory" => CacheStore::Local {
            max_bytes: p.max_size_bytes.map_or(DEFAULT_MAX_BYTES, |Seconds(b)| b as u64),
        },
        "redis" => {
            let url = match text(&p.url).or_else(|| text(&p.redis_url)) {
                Some(url) => Some(url),
                None if text(&p.host).is_some() => None,
                None => env(ctx, "REDIS_URL"),
            };
            let url = match url {
                Some(url) => url,
                None => {
                    let Some(host) = text(&p.host).or_else(|| env(ctx, "REDIS_HOST")) else {
                        ctx.warn(
                            "CFG-06",
                            &pp,
                            "cache_params.type is redis but no host is set (cache_params.host, \
                             REDIS_URL or REDIS_HOST); responses are not cached"
                                .to_owned(),
                        );
                        return None;
                    };
                    let port = text(&p.port)
                        .or_else(|| env(ctx, "REDIS_PORT"))
                        .unwrap_or_else(|| "6379".to_owned());
                    if port.parse::<u16>().is_err() {
                        ctx.warn(
                            "CFG-06",
                            &pp.key("port"),
                            format!(
                                "cache_params.port `{port}` is not a port number; responses are \
                                 not cached"
                            ),
                        );
                        return None;
                    }
                    match text(&p.password).or_else(|| env(ctx, "REDIS_PASSWORD")) {
                        Some(pw) => {
                            let pw = percent_encoding::utf8_percent_encode(
                                &pw,
                                percent_encoding::NON_ALPHANUMERIC,
                            );
                            format!("redis://:{pw}@{host}:{port}")
                        }
                        None => format!("redis://{host}:{port}"),
                    }
                }
            };
            let place = place_of(&url);
            CacheStore::Redis { url: Secret::new(url), place }
        }
        other => {
            ctx.warn(
                "CFG-06",
                &pp.key("type"),
                format!(
                    "cache type `{other}` is not implemented (local and redis are); responses \
                     are not cached"
                ),
            );
            return None;
        }
    };
    let ttl = match p.ttl {
        Some(Seconds(s)) if s > 0.0 => Duration::try_from_secs_f64(s).unwrap_or(DEFAULT_TTL),
        _ => DEFAULT_TTL,
    };
    let default_on = match text(&p.mode).as_deref() {
        None | Some("default_on") => true,
        Some("default_off") => false,
        Some(other) => {
            ctx.warn(
                "CFG-06",
                &pp.key("mode"),
                format!(
                    "cache mode `{other}` is not default_on or default_off; default_on is used"
                ),
            );
            true
        }
    };
    let (chat, messages, responses) = match &p.supported_call_types {
        None => (true, true, true),
        Some(TextList(types)) => {
            let has = |names: &[&str]| types.iter().any(|t| names.contains(&t.trim()));
            (
                has(&["completion", "acompletion"]),
                has(&["anthropic_messages", "aanthropic_messages"]),
                has(&["responses", "aresponses"]),
            )
        }
    };
    Some(CacheConfig {
        store,
        ttl,
        namespace: text(&p.namespace),
        default_on,
        chat,
        messages,
        responses,
    })
}
