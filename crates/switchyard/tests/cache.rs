//! The response cache, in memory and on the machine's Redis (a fresh namespace per test,
//! deleted after): hits and misses on both surfaces, JSON and streamed; what the key
//! ignores; the per-request controls; TTL; failed or cut streams never stored; Redis cut
//! through a relay the test controls; the ledger row of a hit. The mock's recorder proves a
//! hit makes no upstream call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "ledger_support/mod.rs"]
mod ledger_support;
mod support;

use std::time::Duration;

use ledger_support::{Relay, eventually};
use mock_upstream::{MockUpstream, Reply};
use serde_json::{Value, json};
use switchyard::config::MapEnv;
use switchyard::ledger::{Ledger, Settings};
use switchyard::server::{Handle, Runtime};

const KEY: &str = "sk-ant-api03-cache-test-000000000000";
const MASTER: &str = "sk-gw-cache-0123456789";
const REDIS: &str = "127.0.0.1:6379";

fn yaml(mock: &MockUpstream, cache_params: &str) -> String {
    format!(
        "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_key: {KEY}\n      api_base: {}\n      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000001\nrouter_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER}\nlitellm_settings:\n  cache: true\n  cache_params:\n{cache_params}",
        mock.url()
    )
}

async fn gateway(cache_params: &str) -> (MockUpstream, Handle) {
    let mock = MockUpstream::builder().api_key(KEY).start().await;
    let cfg = support::config(&yaml(&mock, cache_params), &support::no_home());
    assert!(cfg.general.cache.is_some(), "the cache is on");
    let gw = support::start(cfg).await;
    (mock, gw)
}

fn chat(say: &str, stream: bool) -> Value {
    json!({"model": "cheap", "max_tokens": 16, "stream": stream,
           "messages": [{"role": "user", "content": format!("Say: {say}")}]})
}

/// What a client sees: status, `x-switchyard-cache`, `x-litellm-cache-key`, the answer's text.
struct Answer {
    status: u16,
    cache: String,
    key: String,
    text: String,
    body: String,
}

async fn post(gw: &Handle, path: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", gw.url()))
        .header("x-api-key", MASTER)
        .bearer_auth(MASTER)
        .header("anthropic-version", "2023-06-01")
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let header =
        |n: &str| resp.headers().get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let (cache, key) = (header("x-switchyard-cache"), header("x-litellm-cache-key"));
    let body = resp.text().await.unwrap();
    let stream = body.starts_with("data:") || body.starts_with("event:");
    let text = match (path, stream) {
        (_, true) => sse_text(&body),
        ("/v1/messages", false) => {
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            v["content"][0]["text"].as_str().unwrap_or_default().to_owned()
        }
        _ => {
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            v["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned()
        }
    };
    Answer { status, cache, key, text, body }
}

/// The text of an SSE stream in either format (error events carry none).
fn sse_text(body: &str) -> String {
    let mut text = String::new();
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data: ") else { continue };
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
        if v["type"] == "content_block_delta"
            && let Some(t) = v["delta"]["text"].as_str()
        {
            text.push_str(t);
        }
    }
    text
}

async fn chat_post(gw: &Handle, body: &Value) -> Answer {
    post(gw, "/v1/chat/completions", body, &[]).await
}

async fn stored(gw: &Handle, mock: &MockUpstream, body: Value) -> bool {
    let calls = mock.calls();
    let a = chat_post(gw, &body).await;
    a.cache == "hit" && mock.calls() == calls
}

#[tokio::test]
async fn memory_hits_on_both_surfaces_json_and_stream_without_an_upstream_call() {
    let (mock, gw) = gateway("    type: local\n").await;

    let miss = chat_post(&gw, &chat("ALPHA", false)).await;
    assert_eq!((miss.status, miss.cache.as_str(), miss.text.as_str()), (200, "miss", "ALPHA"));
    assert_eq!(miss.key.len(), 64, "the key is a sha256: {}", miss.key);
    assert_eq!(mock.calls(), 1);

    // Served from the cache: the same key, no upstream call, JSON and streamed.
    assert!(eventually(Duration::from_secs(5), || stored(&gw, &mock, chat("ALPHA", false))).await);
    let hit = chat_post(&gw, &chat("ALPHA", false)).await;
    assert_eq!(
        (hit.cache.as_str(), hit.text.as_str(), hit.key.as_str()),
        ("hit", "ALPHA", miss.key.as_str())
    );
    let streamed = chat_post(&gw, &chat("ALPHA", true)).await;
    assert_eq!((streamed.cache.as_str(), streamed.text.as_str()), ("hit", "ALPHA"));
    assert!(streamed.body.ends_with("data: [DONE]\n\n"), "{}", streamed.body);
    assert!(!streamed.body.contains("\"error\""), "{}", streamed.body);
    let v: Value = serde_json::from_str(&hit.body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    // An answer stored from one surface answers the other in its own format.
    let other = post(&gw, "/v1/messages", &chat("ALPHA", false), &[]).await;
    assert_eq!((other.cache.as_str(), other.text.as_str()), ("hit", "ALPHA"));
    let v: Value = serde_json::from_str(&other.body).unwrap();
    assert_eq!(v["type"], "message");

    // The Anthropic surface: its own miss, then hits as JSON and as a stream.
    let m = post(&gw, "/v1/messages", &chat("BETA", false), &[]).await;
    assert_eq!((m.status, m.cache.as_str(), m.text.as_str()), (200, "miss", "BETA"));
    let calls = mock.calls();
    let ok = eventually(Duration::from_secs(5), || async {
        post(&gw, "/v1/messages", &chat("BETA", false), &[]).await.cache == "hit"
    })
    .await;
    assert!(ok);
    let s = post(&gw, "/v1/messages", &chat("BETA", true), &[]).await;
    assert_eq!((s.cache.as_str(), s.text.as_str()), ("hit", "BETA"));
    assert!(s.body.contains("event: message_stop"), "{}", s.body);
    assert!(!s.body.contains("event: error"), "{}", s.body);
    let j = post(&gw, "/v1/messages", &chat("BETA", false), &[]).await;
    let v: Value = serde_json::from_str(&j.body).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(mock.calls(), calls, "hits never reach the upstream");

    // A streamed miss is stored once it completed; then JSON and streams hit.
    let first = chat_post(&gw, &chat("GAMMA DELTA", true)).await;
    assert_eq!((first.cache.as_str(), first.text.as_str()), ("miss", "GAMMA DELTA"));
    assert!(
        eventually(Duration::from_secs(5), || stored(&gw, &mock, chat("GAMMA DELTA", true))).await
    );
    let j = chat_post(&gw, &chat("GAMMA DELTA", false)).await;
    assert_eq!((j.cache.as_str(), j.text.as_str()), ("hit", "GAMMA DELTA"));

    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_key_ignores_user_tags_and_metadata_but_not_sampling() {
    let (mock, gw) = gateway("    type: local\n").await;
    let base = chat_post(&gw, &chat("KAPPA", false)).await;
    assert_eq!(base.cache, "miss");
    assert!(eventually(Duration::from_secs(5), || stored(&gw, &mock, chat("KAPPA", false))).await);

    let mut other = chat("KAPPA", false);
    other["user"] = json!("someone-else");
    other["metadata"] = json!({"tags": ["team-x"], "session_id": "s-1"});
    other["tags"] = json!(["y"]);
    let a = post(&gw, "/v1/chat/completions", &other, &[("x-litellm-tags", "z")]).await;
    assert_eq!((a.cache.as_str(), a.key.as_str()), ("hit", base.key.as_str()));

    let mut hotter = chat("KAPPA", false);
    hotter["temperature"] = json!(0.9);
    let b = chat_post(&gw, &hotter).await;
    assert_eq!(b.cache, "miss");
    assert_ne!(b.key, base.key);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn per_request_controls_and_ttl() {
    let (mock, gw) = gateway("    type: local\n    ttl: 60\n").await;
    let with = |say: &str, cache: Value| {
        let mut b = chat(say, false);
        b["cache"] = cache;
        b
    };

    // no-store: answered, never stored.
    let a = chat_post(&gw, &with("NOSTORE", json!({"no-store": true}))).await;
    assert_eq!(a.cache, "miss");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(chat_post(&gw, &chat("NOSTORE", false)).await.cache, "miss");
    // The header says the same.
    let h =
        post(&gw, "/v1/chat/completions", &chat("HDR", false), &[("cache-control", "no-store")])
            .await;
    assert_eq!(h.cache, "miss");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(chat_post(&gw, &chat("HDR", false)).await.cache, "miss");

    // no-cache: the upstream answers although an entry exists.
    assert!(eventually(Duration::from_secs(5), || stored(&gw, &mock, chat("HDR", false))).await);
    let calls = mock.calls();
    let n = chat_post(&gw, &with("HDR", json!({"no-cache": true}))).await;
    assert_eq!((n.cache.as_str(), mock.calls()), ("bypass", calls + 1));
    let n =
        post(&gw, "/v1/chat/completions", &chat("HDR", false), &[("cache-control", "no-cache")])
            .await;
    assert_eq!((n.cache.as_str(), mock.calls()), ("bypass", calls + 2));

    // s-maxage: an entry older than that is not used.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let old = chat_post(&gw, &with("HDR", json!({"s-maxage": 1}))).await;
    assert_eq!(old.cache, "miss");
    assert_eq!(chat_post(&gw, &with("HDR", json!({"s-maxage": 60}))).await.cache, "hit");

    // namespace: its own entries.
    let ns = chat_post(&gw, &with("HDR", json!({"namespace": "other"}))).await;
    assert_eq!(ns.cache, "miss");
    assert!(ns.key.starts_with("other:"), "{}", ns.key);

    // ttl: the entry expires.
    let t = chat_post(&gw, &with("TTL", json!({"ttl": 1}))).await;
    assert_eq!(t.cache, "miss");
    assert!(eventually(Duration::from_secs(5), || stored(&gw, &mock, chat("TTL", false))).await);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let calls = mock.calls();
    assert_eq!(chat_post(&gw, &chat("TTL", false)).await.cache, "miss");
    assert_eq!(mock.calls(), calls + 1);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn default_off_caches_only_requests_that_ask() {
    let (mock, gw) = gateway("    type: local\n    mode: default_off\n").await;
    let a = chat_post(&gw, &chat("OFF", false)).await;
    assert_eq!((a.cache.as_str(), a.key.as_str()), ("", ""));
    let mut ask = chat("OFF", false);
    ask["cache"] = json!({"use-cache": true});
    assert_eq!(chat_post(&gw, &ask).await.cache, "miss");
    assert!(
        eventually(Duration::from_secs(5), || async { chat_post(&gw, &ask).await.cache == "hit" })
            .await
    );
    let calls = mock.calls();
    assert_eq!(chat_post(&gw, &chat("OFF", false)).await.cache, "");
    assert_eq!(mock.calls(), calls + 1);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_or_cut_stream_is_never_stored() {
    let (mock, gw) = gateway("    type: local\n").await;
    mock.push(Reply::text("Hello world").with_stream_error_after(
        3,
        "overloaded_error",
        "Overloaded",
    ));
    let failed = chat_post(&gw, &chat("ERR", true)).await;
    assert!(failed.body.contains("error"), "{}", failed.body);
    mock.push(Reply::text("Hello world").stream_drop_after(3));
    let cut = post(&gw, "/v1/messages", &chat("CUT", true), &[]).await;
    assert!(cut.body.contains("error"), "{}", cut.body);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let calls = mock.calls();
    let again = chat_post(&gw, &chat("ERR", true)).await;
    assert_eq!((again.cache.as_str(), again.text.as_str()), ("miss", "ERR"));
    let again = post(&gw, "/v1/messages", &chat("CUT", true), &[]).await;
    assert_eq!((again.cache.as_str(), again.text.as_str()), ("miss", "CUT"));
    assert_eq!(mock.calls(), calls + 2);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_hit_is_a_ledger_row_with_cache_hit_and_no_spend() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, gw) = gateway("    type: local\n").await;
    let ledger = Ledger::open(&Settings {
        database_url: None,
        state_dir: dir.path().to_owned(),
        retention: None,
    })
    .unwrap();
    gw.state.set_ledger(ledger.clone());
    let id = |n: &str| format!("cache-row-{n}");
    post(&gw, "/v1/chat/completions", &chat("ROW", false), &[("x-request-id", &id("1"))]).await;
    assert!(eventually(Duration::from_secs(5), || stored(&gw, &mock, chat("ROW", false))).await);
    let hit =
        post(&gw, "/v1/chat/completions", &chat("ROW", true), &[("x-request-id", &id("2"))]).await;
    assert_eq!(hit.cache, "hit");

    let file = dir.path().join("ledger.sqlite3");
    assert!(eventually(Duration::from_secs(5), || async { file.exists() }).await);
    let pool = ledger_support::sqlite_pool(dir.path()).await;
    let rows = || async {
        sqlx::query_as::<_, (String, String, Option<String>, String)>(
            r#"SELECT request_id, cache_hit, CAST(spend AS TEXT), metadata FROM "LiteLLM_SpendLogs" WHERE request_id LIKE 'cache-row-%' ORDER BY request_id"#,
        )
        .fetch_all(&pool)
        .await
        .unwrap_or_default()
    };
    assert!(eventually(Duration::from_secs(5), || async { rows().await.len() == 2 }).await);
    let rows = rows().await;
    assert_eq!(rows[0].1, "False");
    assert_ne!(rows[0].2.as_deref(), Some("0"));
    let (_, hit_flag, spend, metadata) = &rows[1];
    assert_eq!(hit_flag, "True");
    assert_eq!(spend.as_deref(), Some("0"));
    assert!(metadata.contains("cache_key"), "{metadata}");
    gw.shutdown().await.unwrap();
    ledger.close(Duration::from_secs(5)).await;
}

/// A namespace of its own on the machine's Redis; its keys are deleted when dropped.
struct Namespace(String);

impl Namespace {
    fn new() -> Self {
        Self(format!("sy-cache-test-{:016x}", fastrand::u64(..)))
    }

    async fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(format!("redis://{REDIS}")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("KEYS").arg(format!("{}:*", self.0)).query_async(&mut conn).await.unwrap()
    }

    async fn pttl(&self, key: &str) -> i64 {
        let client = redis::Client::open(format!("redis://{REDIS}")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("PTTL").arg(key).query_async(&mut conn).await.unwrap()
    }

    async fn clean(&self) {
        let keys = self.keys().await;
        if keys.is_empty() {
            return;
        }
        let client = redis::Client::open(format!("redis://{REDIS}")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: i64 = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.unwrap();
    }
}

#[tokio::test]
async fn redis_one_key_per_entry_with_its_ttl_and_the_admin_routes() {
    let ns = Namespace::new();
    let params = format!(
        "    type: redis\n    host: 127.0.0.1\n    port: 6379\n    ttl: 120\n    namespace: {}\n",
        ns.0
    );
    let (mock, gw) = gateway(&params).await;
    let miss = chat_post(&gw, &chat("REDIS", false)).await;
    assert_eq!(miss.cache, "miss");
    assert!(miss.key.starts_with(&format!("{}:", ns.0)), "{}", miss.key);
    assert!(eventually(Duration::from_secs(5), || stored(&gw, &mock, chat("REDIS", false))).await);
    assert_eq!(ns.keys().await, vec![miss.key.clone()]);
    let ttl = ns.pttl(&miss.key).await;
    assert!(ttl > 0 && ttl <= 120_000, "PTTL {ttl}");
    // The same request on the Anthropic surface is the same entry, as a stream there.
    let s = post(&gw, "/v1/messages", &chat("REDIS", true), &[]).await;
    assert_eq!(
        (s.cache.as_str(), s.text.as_str(), s.key.as_str()),
        ("hit", "REDIS", miss.key.as_str())
    );

    let client = reqwest::Client::new();
    let stats: Value = client
        .get(format!("{}/cache/stats", gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stats["hits"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["entries"], 1, "one entry answers both surfaces: {stats}");
    let ping = client.get(format!("{}/cache/ping", gw.url())).bearer_auth(MASTER).send().await;
    assert_eq!(ping.unwrap().status().as_u16(), 200);
    let flushed: Value = client
        .post(format!("{}/cache/flushall", gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(flushed["deleted"], 1, "{flushed}");
    assert!(ns.keys().await.is_empty());
    assert_eq!(chat_post(&gw, &chat("REDIS", false)).await.cache, "miss");
    gw.shutdown().await.unwrap();
    ns.clean().await;
}

#[tokio::test]
async fn redis_cut_mid_run_serves_uncached_and_shows_in_health() {
    let ns = Namespace::new();
    let relay = Relay::start(REDIS.parse().unwrap()).await;
    let params = format!(
        "    type: redis\n    host: 127.0.0.1\n    port: {}\n    namespace: {}\n",
        relay.addr.port(),
        ns.0
    );
    let (mock, gw) = gateway(&params).await;
    assert_eq!(chat_post(&gw, &chat("CUT", false)).await.cache, "miss");
    assert!(eventually(Duration::from_secs(5), || stored(&gw, &mock, chat("CUT", false))).await);

    relay.cut();
    let calls = mock.calls();
    for _ in 0..3 {
        let a = chat_post(&gw, &chat("CUT", false)).await;
        assert_eq!((a.status, a.text.as_str(), a.cache.as_str()), (200, "CUT", "bypass"));
        let s = post(&gw, "/v1/messages", &chat("CUT", true), &[]).await;
        assert_eq!((s.status, s.text.as_str(), s.cache.as_str()), (200, "CUT", "bypass"));
    }
    assert_eq!(mock.calls(), calls + 6, "served uncached, by the upstream");
    let health: Value = reqwest::Client::new()
        .get(format!("{}/health?cached=true", gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["cache"]["degraded"], true, "{health}");
    assert!(health["cache"]["error"].is_string(), "{health}");

    relay.restore();
    assert!(eventually(Duration::from_secs(10), || stored(&gw, &mock, chat("CUT", false))).await);
    gw.shutdown().await.unwrap();
    ns.clean().await;
}

/// Runs the binary's `cache` command against `gw`; returns (exit code, stdout, stderr).
async fn cli(gw: &Handle, args: &[&str], key: &str) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.arg("cache").args(args).args(["--url", &gw.url(), "--key", key]);
    cmd.env("HOME", "/nonexistent").env_remove("SWITCHYARD_MASTER_KEY");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cache_command_shows_stats_and_clears_the_running_gateway() {
    let (mock, gw) = gateway("    type: local\n").await;
    chat_post(&gw, &chat("CLI", false)).await;
    assert!(eventually(Duration::from_secs(5), || stored(&gw, &mock, chat("CLI", false))).await);

    let (code, out, err) = cli(&gw, &["stats"], MASTER).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("entries   1"), "{out}");
    assert!(out.contains("store     local"), "{out}");
    let (code, out, _) = cli(&gw, &["stats", "--json"], MASTER).await;
    assert_eq!(code, 0);
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["health"]["type"], "local");
    assert!(stats["hits"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["misses"].as_u64().unwrap() >= 1, "{stats}");

    // One entry deleted by its key (LiteLLM's /cache/delete), then stored again.
    let key = chat_post(&gw, &chat("CLI", false)).await.key;
    let deleted: Value = reqwest::Client::new()
        .post(format!("{}/cache/delete", gw.url()))
        .bearer_auth(MASTER)
        .json(&json!({"keys": [key]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deleted["deleted"], 1, "{deleted}");
    assert_eq!(chat_post(&gw, &chat("CLI", false)).await.cache, "miss");
    assert!(eventually(Duration::from_secs(5), || stored(&gw, &mock, chat("CLI", false))).await);

    let (code, out, err) = cli(&gw, &["clear"], "sk-wrong-key-000000").await;
    assert_eq!(code, 1, "{out}{err}");
    let (code, out, err) = cli(&gw, &["clear"], MASTER).await;
    assert_eq!((code, out.trim()), (0, "deleted 1 cached answers"), "{err}");
    assert_eq!(chat_post(&gw, &chat("CLI", false)).await.cache, "miss");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn supported_call_types_and_caching_false_turn_it_off_and_a_reload_keeps_it() {
    let params = "    type: local\n    supported_call_types: [acompletion]\n";
    let (mock, gw) = gateway(params).await;
    let m = post(&gw, "/v1/messages", &chat("SCT", false), &[]).await;
    assert_eq!((m.status, m.cache.as_str()), (200, ""), "messages are not cached");
    let mut off = chat("SCT", false);
    off["caching"] = json!(false);
    assert_eq!(chat_post(&gw, &off).await.cache, "");
    assert_eq!(chat_post(&gw, &chat("SCT", false)).await.cache, "miss");
    assert!(eventually(Duration::from_secs(5), || stored(&gw, &mock, chat("SCT", false))).await);

    // A reload with the same cache settings keeps the entries.
    let cfg = support::config(&yaml(&mock, params), &support::no_home());
    let previous = gw.state.runtime();
    gw.state.replace(Runtime::reloaded(cfg, &previous));
    assert_eq!(chat_post(&gw, &chat("SCT", false)).await.cache, "hit");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cached_tool_call_streams_like_a_live_one() {
    let (mock, gw) = gateway("    type: local\n").await;
    mock.set_default(Reply::tool_use("get_weather", json!({"city": "Paris", "days": [1, 2]})));
    let mut body = chat("weather", true);
    body["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let live = chat_post(&gw, &body).await;
    assert_eq!(live.cache, "miss");
    assert!(
        eventually(Duration::from_secs(5), || async { chat_post(&gw, &body).await.cache == "hit" })
            .await
    );
    let calls = mock.calls();
    let cached = chat_post(&gw, &body).await;
    assert_eq!(mock.calls(), calls);
    let summary = |sse: &str| {
        let (mut name, mut args, mut finish) = (String::new(), String::new(), String::new());
        for data in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
            let Ok(v) = serde_json::from_str::<Value>(data) else { continue };
            let choice = &v["choices"][0];
            if let Some(call) = choice["delta"]["tool_calls"].get(0) {
                name.push_str(call["function"]["name"].as_str().unwrap_or_default());
                args.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = f.to_owned();
            }
        }
        let args: Value = serde_json::from_str(&args).unwrap_or_default();
        (name, args, finish)
    };
    assert_eq!(summary(&cached.body), summary(&live.body));
    assert_eq!(
        summary(&cached.body),
        (
            "get_weather".to_owned(),
            json!({"city": "Paris", "days": [1, 2]}),
            "tool_calls".to_owned()
        )
    );
    gw.shutdown().await.unwrap();
}

#[test]
fn redis_is_found_as_litellm_finds_it_and_local_is_bounded_by_bytes() {
    use switchyard::config::response_cache::CacheStore;
    let load = |params: &str, env: &[(&str, &str)]| {
        let text = format!(
            "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: claude-haiku-4-5\n      mock_response: ok\nlitellm_settings:\n  cache: true\n  cache_params:\n{params}"
        );
        let mut vars = vec![("HOME", "/nonexistent")];
        vars.extend_from_slice(env);
        support::config(&text, &MapEnv::new(vars))
    };
    let cfg = load(
        "    type: redis\n",
        &[("REDIS_HOST", "10.0.0.7"), ("REDIS_PORT", "6380"), ("REDIS_PASSWORD", "p@ss")],
    );
    let cache = cfg.general.cache.unwrap();
    let CacheStore::Redis { url, place } = &cache.store else { panic!("{cache:?}") };
    assert_eq!(place, "10.0.0.7:6380");
    assert_eq!(url.expose(), "redis://:p%40ss@10.0.0.7:6380");
    assert_eq!((cache.ttl, cache.default_on), (Duration::from_secs(600), true));

    let cfg =
        load("    type: redis\n    host: cache.internal\n", &[("REDIS_URL", "redis://other:1")]);
    let CacheStore::Redis { place, .. } = &cfg.general.cache.unwrap().store else { panic!() };
    assert_eq!(place, "cache.internal:6379", "cache_params win over the environment");

    let cfg = load("    max_size_bytes: 1048576\n    ttl: 5\n    mode: default_off\n", &[]);
    let cache = cfg.general.cache.unwrap();
    assert_eq!(cache.store, CacheStore::Local { max_bytes: 1_048_576 });
    assert_eq!((cache.ttl, cache.default_on), (Duration::from_secs(5), false));

    let cfg = load("    type: s3\n", &[]);
    assert!(cfg.general.cache.is_none());
    assert!(cfg.warnings.iter().any(|w| w.key == "litellm_settings.cache_params.type"));
}
