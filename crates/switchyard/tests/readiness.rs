//! `/health/readiness` as a load balancer reads it: LiteLLM's keys, the state of the stores
//! replicas share (PostgreSQL for the ledger and keys, Redis for limits, the response cache
//! and stored Responses) on the machine's real servers, cut through relays the test controls,
//! and when it answers 503 (draining; Redis away under `fail_closed`) and when not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod limits_support;
mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use switchyard::config::MapEnv;
use switchyard::keys::{Keys, POLL, Settings as KeySettings};
use switchyard::ledger::{Ledger, Settings as LedgerSettings};
use switchyard::secret::Secret;
use switchyard::server::Handle;

use ledger_support::{Relay, TestDb, eventually};
use limits_support::{MASTER, REDIS, RedisPrefix, chat, client, deployment, mock, post_chat};

/// A gateway whose limits (a global budget, so every request is counted), response cache
/// and stored Responses are all on the Redis at `redis`, under `prefix`.
async fn on_redis(
    mock: &mock_upstream::MockUpstream,
    redis: &Relay,
    prefix: &RedisPrefix,
    fail_closed: bool,
) -> Handle {
    let text = format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\n  redis_host: 127.0.0.1\n  \
         redis_port: {}\ngeneral_settings:\n  master_key: {MASTER}\n  redis_key_prefix: \
         \"{}\"\n  fail_closed: {fail_closed}\nlitellm_settings:\n  max_budget: 100\n  \
         cache: true\n  cache_params:\n    type: redis\n    host: 127.0.0.1\n    port: {}\n    \
         namespace: \"{}cache\"\n",
        deployment(mock, "cheap", "anthropic/claude-haiku-4-5", &[]),
        redis.addr.port(),
        prefix.0,
        redis.addr.port(),
        prefix.0,
    );
    support::gateway(&text, &MapEnv::default()).await
}

async fn readiness(gw: &Handle) -> (u16, Value) {
    let resp = client().get(format!("{}/health/readiness", gw.url())).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_shows_degraded_but_keeps_the_replica_in_rotation() {
    let prefix = RedisPrefix::new();
    let relay = Relay::start(REDIS.parse().unwrap()).await;
    let mock = mock().await;
    let gw = on_redis(&mock, &relay, &prefix, false).await;
    let c = client();
    assert_eq!(post_chat(&c, &gw.url(), &chat("cheap", None)).await.status(), 200);

    let (status, ready) = readiness(&gw).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "connected", "{ready}");
    assert_eq!(ready["cache"], "redis", "LiteLLM's cache type: {ready}");
    assert_eq!(ready["db"], "Not connected", "{ready}");
    assert!(ready["litellm_version"].is_string(), "{ready}");
    assert_eq!(ready["success_callbacks"], serde_json::json!([]), "{ready}");
    assert!(ready["last_updated"].as_str().is_some_and(|t| t.ends_with('Z')), "{ready}");
    let redis = &ready["stores"]["redis"];
    assert_eq!(redis["state"], "connected", "{ready}");
    assert_eq!(
        redis["used_by"],
        serde_json::json!(["limits", "response_cache", "responses", "cooldowns"]),
        "{ready}"
    );
    assert_eq!(ready["stores"]["database"]["state"], "not configured", "{ready}");

    relay.cut();
    assert_eq!(
        post_chat(&c, &gw.url(), &chat("cheap", None)).await.status(),
        200,
        "served on local counters while Redis is away"
    );
    let (status, ready) = readiness(&gw).await;
    assert_eq!(status, 200, "an outage every replica shares must not empty the pool: {ready}");
    assert_eq!(ready["status"], "connected", "{ready}");
    let redis = &ready["stores"]["redis"];
    assert_eq!(redis["state"], "degraded", "{ready}");
    let meanwhile = redis["meanwhile"].to_string();
    assert!(meanwhile.contains("counted in this replica only"), "{meanwhile}");
    assert!(redis["error"].is_string(), "{ready}");
    assert!(!ready.to_string().contains("redis://"), "no Redis URL in readiness");

    relay.restore();
    let back = eventually(Duration::from_secs(10), || async {
        readiness(&gw).await.1["stores"]["redis"]["state"] == "connected"
    })
    .await;
    assert!(back, "{}", readiness(&gw).await.1);
    gw.shutdown().await.unwrap();
    prefix.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_takes_the_replica_out_while_redis_is_away_and_back_without_traffic() {
    let prefix = RedisPrefix::new();
    let relay = Relay::start(REDIS.parse().unwrap()).await;
    let mock = mock().await;
    let gw = on_redis(&mock, &relay, &prefix, true).await;
    let c = client();
    assert_eq!(post_chat(&c, &gw.url(), &chat("cheap", None)).await.status(), 200);
    assert_eq!(readiness(&gw).await.0, 200);

    relay.cut();
    assert_eq!(post_chat(&c, &gw.url(), &chat("cheap", None)).await.status(), 503);
    let (status, ready) = readiness(&gw).await;
    assert_eq!(status, 503, "requests with limits are refused here: {ready}");
    assert_eq!(ready["status"], "unavailable", "{ready}");
    assert_eq!(ready["error"]["id"], "LIM-03", "{ready}");
    let message = ready["error"]["message"].as_str().unwrap();
    assert!(message.contains("fail_closed") && message.contains("Fix:"), "{message}");
    assert!(!message.contains("redis://"), "{message}");
    assert!(ready["stores"]["redis"]["meanwhile"].to_string().contains("refused"), "{ready}");

    // Out of rotation, the replica gets no requests: readiness alone must notice Redis back.
    relay.restore();
    let calls = mock.calls();
    let back = eventually(Duration::from_secs(10), || async {
        let (status, ready) = readiness(&gw).await;
        status == 200 && ready["stores"]["redis"]["state"] == "connected"
    })
    .await;
    assert!(back, "{}", readiness(&gw).await.1);
    assert_eq!(mock.calls(), calls);
    gw.shutdown().await.unwrap();
    prefix.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_shows_degraded_ledger_and_keys_and_stays_ready() {
    let db = TestDb::create().await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let mock = mock().await;
    let (gw, ledger) = on_database(&mock, &db, &relay, dir.path(), "").await;
    let c = client();
    assert_eq!(post_chat(&c, &gw.url(), &chat("cheap", None)).await.status(), 200);
    ledger.flush().await;

    let (status, ready) = readiness(&gw).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["db"], "connected", "{ready}");
    let database = &ready["stores"]["database"];
    assert_eq!(database["state"], "connected", "{ready}");
    assert_eq!(database["used_by"], serde_json::json!(["ledger", "keys"]), "{ready}");
    assert_eq!(ready["stores"]["redis"]["state"], "not configured", "{ready}");
    assert_eq!(ready["cache"], Value::Null, "{ready}");

    relay.cut();
    assert_eq!(post_chat(&c, &gw.url(), &chat("cheap", None)).await.status(), 200);
    let degraded = eventually(Duration::from_secs(20), || async {
        ledger.flush().await;
        let (status, ready) = readiness(&gw).await;
        status == 200
            && ready["db"] == "disconnected"
            && ready["stores"]["database"]["meanwhile"].as_array().is_some_and(|m| m.len() == 2)
    })
    .await;
    let (status, ready) = readiness(&gw).await;
    assert!(degraded, "{status} {ready}");
    let database = &ready["stores"]["database"];
    assert_eq!(database["state"], "degraded", "{ready}");
    assert!(database["meanwhile"].to_string().contains("spooled"), "{ready}");
    assert!(database["error"].is_string(), "{ready}");
    assert_eq!(ready["status"], "connected", "the ledger spools: still serving");

    relay.restore();
    let back = eventually(Duration::from_secs(30), || async {
        ledger.flush().await;
        readiness(&gw).await.1["stores"]["database"]["state"] == "connected"
    })
    .await;
    assert!(back, "{}", readiness(&gw).await.1);
    gw.shutdown().await.unwrap();
    ledger.close(Duration::from_secs(5)).await;
}

/// A gateway whose keys and ledger are in `db`, reached through `relay`.
async fn on_database(
    mock: &mock_upstream::MockUpstream,
    db: &TestDb,
    relay: &Relay,
    dir: &Path,
    sections: &str,
) -> (Handle, Ledger) {
    let url = Secret::new(db.url_at(relay.addr));
    let cfg = limits_support::config(
        &[deployment(mock, "cheap", "anthropic/claude-haiku-4-5", &[])],
        sections,
    );
    let gw = support::start(cfg).await;
    let keys =
        Keys::open(&KeySettings { database_url: Some(url.clone()), state_dir: dir.to_owned() })
            .unwrap();
    keys.start(POLL).await;
    gw.state.set_keys(keys);
    let ledger = Ledger::open(&LedgerSettings {
        database_url: Some(url),
        state_dir: dir.to_owned(),
        retention: None,
    })
    .unwrap();
    gw.state.set_ledger(ledger.clone());
    (gw, ledger)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_takes_the_replica_out_while_the_key_database_is_away() {
    let db = TestDb::create().await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let mock = mock().await;
    let (gw, ledger) = on_database(&mock, &db, &relay, dir.path(), "  fail_closed: true\n").await;
    assert_eq!(readiness(&gw).await.0, 200);

    relay.cut();
    let refusing =
        eventually(Duration::from_secs(10), || async { readiness(&gw).await.0 == 503 }).await;
    let (_, ready) = readiness(&gw).await;
    assert!(refusing, "{ready}");
    assert_eq!(ready["status"], "unavailable", "{ready}");
    assert_eq!(ready["error"]["id"], "KEY-10", "{ready}");
    assert!(ready["error"]["message"].as_str().unwrap().contains("Fix:"), "{ready}");
    assert_eq!(ready["stores"]["database"]["state"], "degraded", "{ready}");

    relay.restore();
    let back =
        eventually(Duration::from_secs(10), || async { readiness(&gw).await.0 == 200 }).await;
    assert!(back, "{}", readiness(&gw).await.1);
    gw.shutdown().await.unwrap();
    ledger.close(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn draining_answers_503_with_what_to_do_and_the_local_cache_type() {
    let mock = mock().await;
    let cfg = limits_support::config(
        &[deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &[])],
        "litellm_settings:\n  cache: true\n  cache_params:\n    type: local\n",
    );
    let gw = support::start(cfg).await;
    let (status, ready) = readiness(&gw).await;
    assert_eq!((status, ready["cache"].as_str()), (200, Some("local")), "{ready}");
    let resp = post_chat(&client(), &gw.url(), &chat("cheap", None)).await;
    assert!(resp.headers().get("connection").is_none(), "kept alive while serving normally");
    assert!(ready["error"].is_null(), "{ready}");

    gw.state.start_draining();
    let (status, ready) = readiness(&gw).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "draining", "{ready}");
    assert_eq!(ready["error"]["id"], "GW-09", "{ready}");
    assert!(ready["error"]["message"].as_str().unwrap().contains("Fix:"), "{ready}");
    let resp = post_chat(&client(), &gw.url(), &chat("cheap", None)).await;
    assert_eq!(resp.status(), 200, "a request that still arrives while draining is served");
    assert_eq!(
        resp.headers().get("connection").map(|v| v.to_str().unwrap()),
        Some("close"),
        "a kept-alive client is told to reconnect, to another replica"
    );
    gw.shutdown().await.unwrap();
}
