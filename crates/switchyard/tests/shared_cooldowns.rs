//! Cooldowns shared by replicas through the machine's real Redis (a fresh key prefix per
//! test, deleted afterwards): in-process gateways on one config, a mock upstream that
//! refuses one deployment's key, and Redis cut through a TCP relay the test controls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod limits_support;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use mock_upstream::MockUpstream;
use serde_json::Value;
use switchyard::config::{self};
use switchyard::server::Handle;

use ledger_support::{Relay, eventually};
use limits_support::*;

/// The healthy deployment answers; the broken one's upstream refuses the gateway's key
/// (401 `authentication_error`: credentials_invalid, which cools at once).
struct Upstreams {
    healthy: MockUpstream,
    broken: MockUpstream,
}

impl Upstreams {
    async fn start() -> Self {
        let broken = MockUpstream::builder().api_key("sk-ant-api03-another-account").start().await;
        Self { healthy: mock().await, broken }
    }

    /// Both in one group, the broken one tried first (`order`), cooling for two minutes.
    fn config(&self, redis: SocketAddr, prefix: &str) -> config::Config {
        let entry = |mock: &MockUpstream, order: u32, id: &str| {
            let d = deployment(
                mock,
                "cheap",
                "anthropic/claude-haiku-4-5",
                &[&format!("order: {order}")],
            );
            format!("{d}    model_info:\n      id: {id}\n")
        };
        let text = format!(
            "model_list:\n{}{}router_settings:\n  num_retries: 0\n  cooldown_time: 120\n  \
             redis_host: {}\n  redis_port: {}\ngeneral_settings:\n  master_key: {MASTER}\n  \
             redis_key_prefix: \"{prefix}\"\n",
            entry(&self.broken, 1, "broken"),
            entry(&self.healthy, 2, "healthy"),
            redis.ip(),
            redis.port(),
        );
        support::config(&text, &support::no_home())
    }
}

async fn gateway(config: config::Config) -> Handle {
    support::start(config).await
}

async fn get(gw: &Handle, path: &str) -> Value {
    client()
        .get(format!("{}{path}", gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn sharing_connected(gw: &Handle) -> bool {
    get(gw, "/health/readiness").await["cooldowns"]["connected"] == true
}

/// The `broken` endpoint of `/health` (answered from what the gateway knows, no probe).
async fn broken_endpoint(gw: &Handle) -> Option<Value> {
    let health = get(gw, "/health?cached=true").await;
    health["unhealthy_endpoints"].as_array()?.iter().find(|e| e["model_id"] == "broken").cloned()
}

/// One chat request; returns the id of the deployment that served it.
async fn served_by(gw: &Handle) -> String {
    let resp = post_chat(&client(), &gw.url(), &chat("cheap", None)).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    resp.headers()["x-litellm-model-id"].to_str().unwrap().to_owned()
}

fn redis_addr() -> SocketAddr {
    REDIS.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_one_replica_cooled_is_skipped_by_the_others_and_by_one_started_later() {
    let prefix = RedisPrefix::new();
    let up = Upstreams::start().await;
    let a = gateway(up.config(redis_addr(), &prefix.0)).await;
    let b = gateway(up.config(redis_addr(), &prefix.0)).await;
    for gw in [&a, &b] {
        assert!(eventually(Duration::from_secs(10), || sharing_connected(gw)).await);
    }

    // A tries the broken deployment first, cools it, and fails over.
    assert_eq!(served_by(&a).await, "healthy");
    assert_eq!(up.broken.calls(), 1);

    // B learns of it without a request of its own, with the cause and who decided it.
    assert!(
        eventually(Duration::from_secs(10), || async { broken_endpoint(&b).await.is_some() }).await
    );
    let seen = broken_endpoint(&b).await.unwrap();
    assert_eq!(seen["error_class"], "credentials_invalid", "{seen}");
    assert!(seen["cooled_by"].as_str().unwrap().contains("pid"), "{seen}");
    assert!(seen["error"].as_str().unwrap().starts_with("cooled by replica "), "{seen}");
    assert!(seen["error"].as_str().unwrap().contains("HTTP 401"), "{seen}");
    let left = seen["cooldown_remaining_seconds"].as_f64().unwrap();
    assert!(left > 60.0 && left <= 120.0, "{seen}");
    assert!(seen["diagnosis"]["id"].as_str().is_some_and(|id| id.starts_with("ANT-")), "{seen}");

    // B's next request goes straight to the healthy deployment.
    assert_eq!(served_by(&b).await, "healthy");
    assert_eq!(up.broken.calls(), 1, "B did not try the deployment A cooled");
    let metrics =
        client().get(format!("{}/metrics", b.url())).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("litellm_deployment_state{")
            && l.contains("model_id=\"broken\"")
            && l.ends_with(" 2.0")),
        "B's metrics show the deployment cooling:\n{metrics}"
    );

    // The key carries the time left and nothing secret.
    let mut conn = redis::Client::open(format!("redis://{REDIS}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}cooldown:broken:*", prefix.0))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (value, ttl): (String, i64) =
        redis::pipe().get(&keys[0]).pttl(&keys[0]).query_async(&mut conn).await.unwrap();
    assert!(ttl > 60_000 && ttl <= 120_000, "{ttl}");
    assert!(!value.contains(KEY) && !value.contains("sk-ant"), "{value}");
    assert!(!value.contains("invalid x-api-key"), "the upstream's message stays local: {value}");

    // A replica that starts now loads the cooldown in force.
    let c = gateway(up.config(redis_addr(), &prefix.0)).await;
    assert!(
        eventually(Duration::from_secs(10), || async { broken_endpoint(&c).await.is_some() }).await
    );
    assert_eq!(served_by(&c).await, "healthy");
    assert_eq!(up.broken.calls(), 1, "the later replica did not try it either");

    for gw in [a, b, c] {
        gw.shutdown().await.unwrap();
    }
    prefix.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_configuration_of_the_same_id_is_not_cooled() {
    let prefix = RedisPrefix::new();
    let up = Upstreams::start().await;
    let other = Upstreams::start().await;
    let a = gateway(up.config(redis_addr(), &prefix.0)).await;
    // Same ids, other upstream addresses: not the same deployments.
    let b = gateway(other.config(redis_addr(), &prefix.0)).await;
    for gw in [&a, &b] {
        assert!(eventually(Duration::from_secs(10), || sharing_connected(gw)).await);
    }
    assert_eq!(served_by(&a).await, "healthy");
    assert_eq!(up.broken.calls(), 1);
    // A third replica on A's config learns of it: the announcement went out.
    let c = gateway(up.config(redis_addr(), &prefix.0)).await;
    assert!(
        eventually(Duration::from_secs(10), || async { broken_endpoint(&c).await.is_some() }).await
    );
    assert!(broken_endpoint(&b).await.is_none(), "B's `broken` calls another upstream");
    assert_eq!(served_by(&b).await, "healthy");
    assert_eq!(other.broken.calls(), 1, "B tried its own deployment");
    for gw in [a, b, c] {
        gw.shutdown().await.unwrap();
    }
    prefix.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_cut_each_replica_cools_on_its_own_and_keeps_serving() {
    let prefix = RedisPrefix::new();
    let relay = Relay::start(redis_addr()).await;
    let up = Upstreams::start().await;
    let a = gateway(up.config(relay.addr, &prefix.0)).await;
    let b = gateway(up.config(relay.addr, &prefix.0)).await;
    for gw in [&a, &b] {
        assert!(eventually(Duration::from_secs(10), || sharing_connected(gw)).await);
    }

    relay.cut();
    for gw in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(15), || async { !sharing_connected(gw).await }).await
        );
    }
    let status = get(&a, "/health/readiness").await["cooldowns"].clone();
    assert!(status["error"].as_str().is_some_and(|e| !e.is_empty()), "{status}");
    assert!(status["disconnected_since"].is_string(), "{status}");

    // A cools the broken deployment itself and keeps serving.
    assert_eq!(served_by(&a).await, "healthy");
    assert_eq!(served_by(&a).await, "healthy");
    assert_eq!(up.broken.calls(), 1, "A's own cooldown holds without Redis");
    let on_a = broken_endpoint(&a).await.unwrap();
    assert!(on_a.get("cooled_by").is_none(), "{on_a}");
    // B, not told, finds out for itself and serves too.
    assert_eq!(served_by(&b).await, "healthy");
    assert_eq!(up.broken.calls(), 2);

    // Back: both reconnect.
    relay.restore();
    for gw in [&a, &b] {
        assert!(eventually(Duration::from_secs(15), || sharing_connected(gw)).await);
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    prefix.clean().await;
}
