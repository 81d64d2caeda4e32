//! The two background tasks behind shared cooldowns: `publish` writes this replica's
//! cooldowns (key with TTL, then PUBLISH), `subscribe` holds its own connection on the
//! channel, loads the keys in force whenever it (re)connects or a router attaches, and
//! reconnects with backoff. Both only log and update the link state when Redis is away.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Inner, Outgoing, wire};
use crate::redis_outage::describe;

/// How long one Redis call may take.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How often the subscriber checks a quiet connection is still there.
const PING_EVERY: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(super) async fn publish(
    client: redis::Client,
    inner: Arc<Inner>,
    mut rx: tokio::sync::mpsc::Receiver<Outgoing>,
) {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
        .set_number_of_retries(0)
        .set_max_delay(Duration::from_millis(500));
    let mut conn = match ConnectionManager::new_lazy_with_config(client, config) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(redis = %inner.place, error = ?e.kind(), "cooldowns this replica decides are not shared");
            return;
        }
    };
    let channel = inner.channel();
    let mut failing = false;
    while let Some(out) = rx.recv().await {
        let ms = u64::try_from(out.ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let sent: redis::RedisResult<()> = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&out.key)
            .arg(&out.payload)
            .arg("PX")
            .arg(ms)
            .ignore()
            .cmd("PUBLISH")
            .arg(&channel)
            .arg(&out.payload)
            .ignore()
            .query_async(&mut conn)
            .await;
        match sent {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(redis = %inner.place, error = %describe(&e, TIMEOUT), "a cooldown could not be shared: Redis does not answer; this replica keeps it for itself");
            }
            Err(_) => {}
        }
    }
}

pub(super) async fn subscribe(client: redis::Client, inner: Arc<Inner>) {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
        .set_number_of_retries(0);
    let reader = ConnectionManager::new_lazy_with_config(client.clone(), config).ok();
    let mut backoff = FIRST_BACKOFF;
    let mut was_down = false;
    loop {
        let ended = match session(&client, reader.clone(), &inner, was_down).await {
            Ok(e) | Err(e) => e,
        };
        let starts_outage = {
            let mut link = inner.link();
            if link.connected {
                backoff = FIRST_BACKOFF;
            }
            link.connected = false;
            let starts = link.down.is_none();
            if starts {
                link.down = Some((chrono::Utc::now(), ended.clone()));
            }
            starts
        };
        if starts_outage {
            tracing::warn!(
                redis = %inner.place,
                error = %ended,
                "shared cooldowns are not connected: Redis does not answer; this replica cools deployments on its own until it reconnects"
            );
        }
        was_down = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: subscribe, load the cooldowns in force, then apply every
/// announcement until the connection ends. Returns why it ended.
async fn session(
    client: &redis::Client,
    reader: Option<ConnectionManager>,
    inner: &Inner,
    was_down: bool,
) -> Result<String, String> {
    let pubsub = tokio::time::timeout(TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))?
        .map_err(|e| describe(&e, TIMEOUT))?;
    let (mut sink, mut stream) = pubsub.split();
    tokio::time::timeout(TIMEOUT, sink.subscribe(inner.channel()))
        .await
        .map_err(|_| "no answer to SUBSCRIBE".to_owned())?
        .map_err(|e| describe(&e, TIMEOUT))?;
    // Subscribed first, loaded second: nothing announced in between is missed.
    let mut reader = reader.ok_or_else(|| "the Redis URL is unusable".to_owned())?;
    let loaded = load(&mut reader, inner).await?;
    {
        let mut link = inner.link();
        link.connected = true;
        link.down = None;
    }
    if was_down {
        tracing::info!(redis = %inner.place, loaded, "shared cooldowns are connected again");
    } else {
        tracing::debug!(redis = %inner.place, loaded, "shared cooldowns are connected");
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return Ok("connection lost".to_owned()) };
                match wire::decode(msg.get_payload_bytes()) {
                    Ok(received) => { inner.apply(&received); }
                    Err(why) => tracing::debug!(%why, "ignored a message on the cooldown channel"),
                }
            }
            () = inner.rescan.notified() => {
                load(&mut reader, inner).await?;
            }
            _ = ping.tick() => {
                // Subscribed, Redis answers PING with an array, not PONG.
                let pong: Result<redis::RedisResult<redis::Value>, _> =
                    tokio::time::timeout(TIMEOUT, sink.ping()).await;
                match pong {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(describe(&e, TIMEOUT)),
                    Err(_) => return Err(format!("no answer within {} s", TIMEOUT.as_secs())),
                }
            }
        }
    }
}

/// Applies every cooldown key in force (SCAN, never KEYS), each for what its TTL leaves;
/// returns how many changed a deployment here.
async fn load(conn: &mut ConnectionManager, inner: &Inner) -> Result<usize, String> {
    let mut cursor: u64 = 0;
    let mut applied = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(inner.key_pattern())
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await
            .map_err(|e| describe(&e, TIMEOUT))?;
        for key in keys {
            let (value, ttl_ms): (Option<Vec<u8>>, i64) = redis::pipe()
                .cmd("GET")
                .arg(&key)
                .cmd("PTTL")
                .arg(&key)
                .query_async(conn)
                .await
                .map_err(|e| describe(&e, TIMEOUT))?;
            // A key without a TTL is not ours to trust; an expired one is gone.
            let (Some(value), Ok(left @ 1..)) = (value, u64::try_from(ttl_ms)) else { continue };
            if let Ok(mut received) = wire::decode(&value) {
                received.ttl = Duration::from_millis(left);
                applied += inner.apply(&received);
            }
        }
        cursor = next;
        if cursor == 0 {
            return Ok(applied);
        }
    }
}
