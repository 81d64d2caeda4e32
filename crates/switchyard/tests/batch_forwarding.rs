//! Anthropic message batches whose requests all go to one Anthropic account, forwarded to
//! the (mock) Anthropic Batches API: created there with the deployments' models and key, read
//! through while in progress, results from the upstream, one ledger row per succeeded request
//! at batch prices exactly once (results read twice, the gateway restarted), cancel, list,
//! `switchyard batches`, and the upstream's refusals as BAT errors. Batches mixing providers
//! stay with the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod batch_support;
mod ledger_support;
mod ops_support;
mod support;

use std::path::Path;
use std::time::Duration;

use batch_support::REFUSED_KEY;
use batch_support::{PATIENCE, batch_rows as rows, lines, rows_until, send, wait_for};
use ledger_support::{ANT_KEY, MASTER, TestDb, eventually};
use mock_upstream::{MockUpstream, Reply, Usage};
use serde_json::{Value, json};
use switchyard::ledger::Ledger;
use switchyard::server::Handle;

/// `haiku` (batch rates $1/$5 per MTok written) and `sonnet` (none: Anthropic's half of its
/// $3/$15) on one Anthropic account; `bad` (a key the mock refuses) and `local` (an
/// OpenAI-compatible server).
fn yaml(mock_url: &str) -> String {
    format!(
        "model_list:
  - model_name: haiku
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: {ANT_KEY}
      api_base: {mock_url}
    model_info:
      id: ant-haiku
      input_cost_per_token: 0.000002
      output_cost_per_token: 0.00001
      input_cost_per_token_batches: 0.000001
      output_cost_per_token_batches: 0.000005
  - model_name: sonnet
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_key: {ANT_KEY}
      api_base: {mock_url}
    model_info:
      input_cost_per_token: 0.000003
      output_cost_per_token: 0.000015
{}",
        batch_support::shared_entries(mock_url)
    )
}

struct Gw {
    gw: Handle,
    runner: switchyard::batches::Handle,
    ledger: Ledger,
    client: reqwest::Client,
}

async fn gateway(mock: &MockUpstream, dir: &Path, database_url: Option<&str>) -> Gw {
    let (gw, runner, ledger) = batch_support::gateway(&yaml(&mock.url()), dir, database_url).await;
    Gw { gw, runner, ledger, client: reqwest::Client::new() }
}

/// The mock Anthropic API, every answer `DONE` with 100 input and 20 output tokens.
async fn mock() -> MockUpstream {
    let reply = Reply::text("DONE").usage(Usage {
        input_tokens: 100,
        output_tokens: 20,
        ..Usage::default()
    });
    MockUpstream::builder().api_key(ANT_KEY).default_reply(reply).start().await
}

impl Gw {
    async fn stop(self) {
        self.runner.stop(Duration::from_secs(5)).await;
        self.ledger.close(Duration::from_secs(5)).await;
        self.gw.shutdown().await.unwrap();
    }

    async fn send_text(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        send(&self.client, &self.gw.url(), MASTER, method, path, body).await
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send_as(MASTER, method, path, body).await
    }

    async fn send_as(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = send(&self.client, &self.gw.url(), key, method, path, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn create(&self, aliases: &[&str]) -> (u16, Value) {
        let body = batch_support::message_batch(aliases);
        self.send("POST", "/v1/messages/batches", Some(body)).await
    }

    async fn until_ended(&self, id: &str) -> Value {
        let path = format!("/v1/messages/batches/{id}");
        wait_for(&self.client, &self.gw.url(), MASTER, &path, "processing_status", &["ended"]).await
    }
}

/// The create calls the mock received.
fn upstream_creates(mock: &MockUpstream) -> Vec<mock_upstream::Received> {
    mock.received()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/messages/batches")
        .collect()
}

async fn forwarded_and_charged_once(db: Option<&TestDb>) {
    let dir = tempfile::tempdir().unwrap();
    let url = db.map(TestDb::url);
    let mock = mock().await;
    // Long enough for the first read to find it in progress.
    mock.set_batch_delay(Duration::from_secs(2));
    let gw = gateway(&mock, dir.path(), url.as_deref()).await;
    let (status, batch) = gw.create(&["haiku", "sonnet", "haiku"]).await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["type"], "message_batch");
    assert_eq!(batch["processing_status"], "in_progress");
    assert_eq!(batch["request_counts"]["processing"], 3);
    let id = batch["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("msgbatch_"), "{id}");

    // Sent as one batch with the deployments' models and key; no request ran here.
    let creates = upstream_creates(&mock);
    assert_eq!(creates.len(), 1, "{creates:#?}");
    assert_eq!(creates[0].header("x-api-key"), Some(ANT_KEY));
    let models: Vec<&str> = creates[0].body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["params"]["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"]);
    assert!(mock.received().iter().all(|r| r.path != "/v1/messages"), "run by the gateway");

    let (_, now) = gw.send("GET", &format!("/v1/messages/batches/{id}"), None).await;
    assert_eq!(now["processing_status"], "in_progress", "{now:#}");
    assert_eq!(now["results_url"], Value::Null);
    let (status, early) = gw.send("GET", &format!("/v1/messages/batches/{id}/results"), None).await;
    assert_eq!(status, 400, "{early}");
    assert_eq!(early["error"]["diagnosis"]["id"], "BAT-04", "{early}");

    let ended = gw.until_ended(&id).await;
    assert_eq!(
        ended["request_counts"],
        json!({"processing": 0, "succeeded": 3, "errored": 0, "canceled": 0, "expired": 0})
    );
    assert!(ended["results_url"].as_str().unwrap().starts_with(&gw.gw.url()), "{ended:#}");
    for _ in 0..2 {
        let (status, text) =
            gw.send_text("GET", &format!("/v1/messages/batches/{id}/results"), None).await;
        assert_eq!(status, 200, "{text}");
        let results = lines(&text);
        let ids: Vec<&str> = results.iter().map(|r| r["custom_id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["req-0", "req-1", "req-2"]);
        for r in &results {
            assert_eq!(r["result"]["type"], "succeeded", "{r}");
            assert_eq!(r["result"]["message"]["content"][0]["text"], "DONE", "{r}");
        }
    }

    // One row per request at the batch prices: haiku 100 × $1 + 20 × $5 per MTok, sonnet
    // 100 × $1.5 + 20 × $7.5 (half its $3/$15).
    let found = rows_until(dir.path(), db, &id, 3).await;
    let mut spends: Vec<(String, String, String)> = found
        .iter()
        .map(|r| {
            assert_eq!(r.call_type, "aretrieve_batch", "{r:?}");
            assert_eq!(r.status, "success");
            assert_eq!((r.prompt_tokens, r.completion_tokens), (100, 20));
            let custom = r.metadata["batch_custom_id"].as_str().unwrap().to_owned();
            (custom, r.model_group.clone(), r.spend.clone().unwrap())
        })
        .collect();
    spends.sort();
    let spend = |s: &str| s.parse::<f64>().unwrap();
    assert_eq!(spends.len(), 3, "{found:#?}");
    assert_eq!((spends[0].0.as_str(), spends[0].1.as_str()), ("req-0", "haiku"));
    assert!((spend(&spends[0].2) - 0.0002).abs() < 1e-12, "{spends:?}");
    assert_eq!(spends[1].1, "sonnet");
    assert!((spend(&spends[1].2) - 0.0003).abs() < 1e-12, "{spends:?}");

    // Restarted on the same store: the batch is as it was, and nothing is charged again.
    gw.stop().await;
    let gw = gateway(&mock, dir.path(), url.as_deref()).await;
    let (status, text) =
        gw.send_text("GET", &format!("/v1/messages/batches/{id}/results"), None).await;
    assert_eq!((status, lines(&text).len()), (200, 3), "{text}");
    let (_, listed) = gw.send("GET", "/v1/messages/batches?limit=5", None).await;
    assert_eq!(listed["data"][0]["id"], id.as_str(), "{listed:#}");
    assert_eq!(listed["data"][0]["processing_status"], "ended");
    assert_eq!(listed["first_id"], id.as_str());
    let store = gw.gw.state.batches().unwrap().store.clone();
    let stored = store.batch(&id).await.unwrap().unwrap();
    assert_eq!(stored.runs_at(), "anthropic");
    assert_eq!(stored.counts.cost.normalize().to_string(), "0.0007", "{stored:?}");
    gw.stop().await;
    assert_eq!(rows(dir.path(), db, &id).await.len(), 3, "each request charged once");
    assert_eq!(upstream_creates(&mock).len(), 1);
}

#[tokio::test]
async fn an_anthropic_only_batch_is_forwarded_and_charged_once_on_both_stores() {
    forwarded_and_charged_once(None).await;
    forwarded_and_charged_once(Some(&TestDb::create().await)).await;
}

/// A gateway on a mock whose batches wait ten minutes before answering anything.
async fn held() -> (tempfile::TempDir, MockUpstream, Gw) {
    let dir = tempfile::tempdir().unwrap();
    let mock = mock().await;
    mock.set_batch_delay(Duration::from_secs(600));
    let gw = gateway(&mock, dir.path(), None).await;
    (dir, mock, gw)
}

#[tokio::test]
async fn a_forwarded_batch_is_cancelled_upstream() {
    // Nothing is answered before the cancel.
    let (dir, mock, gw) = held().await;
    let (status, batch) = gw.create(&["haiku", "haiku", "sonnet"]).await;
    assert_eq!(status, 200, "{batch}");
    let id = batch["id"].as_str().unwrap().to_owned();
    let (status, cancelling) =
        gw.send("POST", &format!("/v1/messages/batches/{id}/cancel"), None).await;
    assert_eq!(status, 200, "{cancelling}");
    assert!(cancelling["cancel_initiated_at"].is_string(), "{cancelling:#}");
    let cancels = mock.received().iter().filter(|r| r.path.ends_with("/cancel")).count();
    assert_eq!(cancels, 1, "the cancel went upstream");
    let ended = gw.until_ended(&id).await;
    assert_eq!(ended["request_counts"]["canceled"], 3, "{ended:#}");
    let (_, text) = gw.send_text("GET", &format!("/v1/messages/batches/{id}/results"), None).await;
    assert!(lines(&text).iter().all(|r| r["result"]["type"] == "canceled"), "{text}");
    let (status, again) = gw.send("POST", &format!("/v1/messages/batches/{id}/cancel"), None).await;
    assert_eq!(status, 400, "{again}");
    assert_eq!(again["error"]["diagnosis"]["id"], "BAT-04");
    // Nothing was served: nothing is charged.
    tokio::time::sleep(switchyard::batches::runner::HEARTBEAT * 2).await;
    assert!(rows(dir.path(), None, &id).await.is_empty());
    let (status, deleted) = gw.send("DELETE", &format!("/v1/messages/batches/{id}"), None).await;
    assert_eq!((status, deleted["type"].as_str()), (200, Some("message_batch_deleted")));
    gw.stop().await;
}

#[tokio::test]
async fn upstream_refusals_are_bat_errors_in_anthropics_shape() {
    let (_dir, mock, gw) = held().await;
    // The deployment's key is refused: the client learns whose key and what to do.
    let (status, refused) = gw.create(&["bad"]).await;
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["error"]["diagnosis"]["id"], "BAT-07", "{refused:#}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("refused") && message.contains("`bad`"), "{message}");
    assert!(!refused.to_string().contains(REFUSED_KEY), "the key leaked: {refused}");
    let (_, listed) = gw.send("GET", "/v1/messages/batches", None).await;
    assert_eq!(listed["data"], json!([]), "a refused batch is not kept: {listed}");

    // The upstream forgets the batch: reading it says so.
    let (status, batch) = gw.create(&["haiku"]).await;
    assert_eq!(status, 200, "{batch}");
    let id = batch["id"].as_str().unwrap();
    mock.reset();
    let (status, gone) = gw.send("GET", &format!("/v1/messages/batches/{id}"), None).await;
    assert_eq!(status, 404, "{gone}");
    assert_eq!(gone["error"]["diagnosis"]["id"], "BAT-08", "{gone:#}");
    assert!(gone["request_id"].is_string() || gone["error"]["message"].is_string(), "{gone}");
    gw.stop().await;
}

#[tokio::test]
async fn a_batch_mixing_providers_or_accounts_runs_in_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let mock = mock().await;
    let gw = gateway(&mock, dir.path(), None).await;
    for aliases in [&["haiku", "local"][..], &["haiku", "bad"][..]] {
        let (status, batch) = gw.create(aliases).await;
        assert_eq!(status, 200, "{batch}");
        let id = batch["id"].as_str().unwrap();
        let ended = gw.until_ended(id).await;
        assert_eq!(ended["request_counts"]["processing"], 0, "{ended:#}");
        let store = gw.gw.state.batches().unwrap().store.clone();
        assert_eq!(store.batch(id).await.unwrap().unwrap().runs_at(), "gateway");
    }
    assert!(upstream_creates(&mock).is_empty(), "nothing was forwarded");
    assert!(mock.received().iter().any(|r| r.path == "/v1/chat/completions"));
    gw.stop().await;
}

/// The real binary: `switchyard batches list|show` name where a forwarded batch runs and
/// its cost, and a restarted gateway's background poll ends and charges a batch nobody reads.
#[tokio::test]
async fn the_command_line_shows_forwarded_batches_polled_in_the_background() {
    let ops = ops_support::Ops::new();
    let mock = mock().await;
    mock.set_batch_delay(Duration::from_secs(3));
    let config = ops.write("fwd.yaml", &yaml(&mock.url()));
    let status = ops.start(&config, &[]).await;
    let base = status["url"].as_str().unwrap().to_owned();
    let client = ops_support::http();
    let body = Some(batch_support::message_batch(&["haiku", "haiku"]));
    let (_, text) = send(&client, &base, MASTER, "POST", "/v1/messages/batches", body).await;
    let created: Value = serde_json::from_str(&text).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    // Stopped while the batch is in progress upstream, started again: its poll carries on.
    assert_eq!(ops.run(&["stop"]).await.code, 0);
    ops.start(&config, &[]).await;
    let cfg = config.to_str().unwrap();
    let ended = eventually(PATIENCE, || async {
        let out = ops.run(&["batches", "show", &id, "--json", "--config", cfg]).await;
        serde_json::from_str::<Value>(&out.stdout)
            .is_ok_and(|v| v["status"] == "completed" && v["cost_usd"] == "0.0004")
    })
    .await;
    let out = ops.run(&["batches", "show", &id, "--json", "--config", cfg]).await;
    assert!(ended, "never ended and charged without a client reading it: {out}");
    let shown: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown["runs_at"], "anthropic", "{shown:#}");
    assert_eq!(shown["request_counts"]["succeeded"], 2);
    let out = ops.run(&["batches", "list", "--config", cfg]).await;
    assert_eq!(out.code, 0, "{out}");
    let row = out.stdout.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..4], ["anthropic", "anthropic", "completed"], "{out}");
    let out = ops.run(&["batches", "cancel", &id, "--config", cfg]).await;
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("[BAT-04]"), "{out}");
    assert_eq!(ops.run(&["stop"]).await.code, 0);
}

#[tokio::test]
async fn a_forwarded_batch_belongs_to_its_key_and_is_charged_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let mock = mock().await;
    let gw = gateway(&mock, dir.path(), None).await;
    let mut keys = Vec::new();
    for alias in ["nightly", "other"] {
        let (status, made) =
            gw.send("POST", "/key/generate", Some(json!({"key_alias": alias}))).await;
        assert_eq!(status, 200, "{made}");
        keys.push(made["key"].as_str().unwrap().to_owned());
    }
    // Keys are seen by the gateway within a poll.
    tokio::time::sleep(switchyard::keys::POLL * 3).await;
    let body = Some(batch_support::message_batch(&["haiku"]));
    let (status, batch) = gw.send_as(&keys[0], "POST", "/v1/messages/batches", body).await;
    assert_eq!(status, 200, "{batch}");
    let id = batch["id"].as_str().unwrap();
    assert_eq!(upstream_creates(&mock).len(), 1, "forwarded");
    let (status, hidden) =
        gw.send_as(&keys[1], "GET", &format!("/v1/messages/batches/{id}"), None).await;
    assert_eq!(status, 404, "{hidden}");
    assert_eq!(hidden["error"]["diagnosis"]["id"], "BAT-03");
    let path = format!("/v1/messages/batches/{id}");
    wait_for(&gw.client, &gw.gw.url(), &keys[0], &path, "processing_status", &["ended"]).await;
    let found = rows_until(dir.path(), None, id, 1).await;
    assert_eq!(found[0].api_key, switchyard::attribution::hash_key(&keys[0]), "{found:#?}");
    assert_eq!(found[0].metadata["user_api_key_alias"], "nightly", "{found:#?}");
    gw.stop().await;
}
