//! Batches the gateway runs itself, on SQLite and on the machine's PostgreSQL (a fresh
//! database per test): OpenAI files and batches with their output and error files, Anthropic
//! message batches and their results, cancelling, per-key visibility and budgets, ledger rows
//! at batch prices, and a batch that survives its gateway being killed mid-way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod batch_support;
mod ledger_support;
mod ops_support;
mod support;

use std::path::Path;
use std::time::Duration;

use batch_support::{PATIENCE, lines, rows_until, send, wait_for};
use ledger_support::{ANT_KEY, MASTER, TestDb, eventually};
use mock_upstream::{MockUpstream, Reply, Usage};
use serde_json::{Value, json};
use switchyard::keys::POLL;
use switchyard::ledger::Ledger;
use switchyard::server::Handle;

/// Every answer reports 100 input and 20 output tokens.
fn usage() -> Usage {
    Usage { input_tokens: 100, output_tokens: 20, ..Usage::default() }
}

/// `priced` (full price $2/$10 per MTok, batch price $1/$5) and `bad` (a key the mock
/// refuses) on the mock Anthropic API; `local` (no prices) on its OpenAI-compatible API.
fn yaml(mock_url: &str, concurrency: usize) -> String {
    format!(
        "model_list:
  - model_name: priced
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: {ANT_KEY}
      api_base: {mock_url}
    model_info:
      input_cost_per_token: 0.000002
      output_cost_per_token: 0.00001
      input_cost_per_token_batches: 0.000001
      output_cost_per_token_batches: 0.000005
{}  batch_concurrency: {concurrency}
",
        batch_support::shared_entries(mock_url)
    )
}

struct Gw {
    mock: MockUpstream,
    gw: Handle,
    runner: Option<switchyard::batches::Handle>,
    ledger: Ledger,
    client: reqwest::Client,
}

/// An in-process gateway with a ledger, keys and batches in `dir` (SQLite) or `database_url`.
async fn start(dir: &Path, database_url: Option<&str>, reply: Reply, concurrency: usize) -> Gw {
    let mock = MockUpstream::builder().api_key(ANT_KEY).default_reply(reply).start().await;
    let (gw, runner, ledger) = gateway_on(&mock, dir, database_url, concurrency).await;
    Gw { mock, gw, runner: Some(runner), ledger, client: reqwest::Client::new() }
}

/// A gateway on `mock` (several may share one mock and one store).
async fn gateway_on(
    mock: &MockUpstream,
    dir: &Path,
    database_url: Option<&str>,
    concurrency: usize,
) -> (Handle, switchyard::batches::Handle, Ledger) {
    batch_support::gateway(&yaml(&mock.url(), concurrency), dir, database_url).await
}

impl Gw {
    async fn stop(mut self) {
        if let Some(runner) = self.runner.take() {
            runner.stop(Duration::from_secs(5)).await;
        }
        self.ledger.close(Duration::from_secs(5)).await;
        self.gw.shutdown().await.unwrap();
    }

    async fn send(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text) = self.send_text(key, method, path, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn send_text(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        send(&self.client, &self.gw.url(), key, method, path, body).await
    }

    async fn generate(&self, body: Value) -> String {
        let (status, out) = self.send(MASTER, "POST", "/key/generate", Some(body)).await;
        assert_eq!(status, 200, "{out}");
        out["key"].as_str().unwrap().to_owned()
    }
}

/// `POST /v1/files` as the SDKs send it: multipart with `purpose` and `file`.
async fn upload(client: &reqwest::Client, base: &str, key: &str, content: &str) -> (u16, Value) {
    let boundary = "sy-batch-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"input.jsonl\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{content}\r\n--{boundary}--\r\n"
    );
    let resp = client
        .post(format!("{base}/v1/files"))
        .bearer_auth(key)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// An input file of chat requests: (custom_id, alias) per line.
fn input(lines: &[(&str, &str)]) -> String {
    lines
        .iter()
        .map(|(id, alias)| {
            json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
                   "body": {"model": alias, "max_tokens": 16,
                            "messages": [{"role": "user", "content": format!("Say {id}")}]}})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Uploads `content` and creates an OpenAI batch over it; returns the batch.
async fn create_openai(client: &reqwest::Client, base: &str, key: &str, content: &str) -> Value {
    let (status, file) = upload(client, base, key, content).await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(file["object"], "file");
    assert_eq!(file["purpose"], "batch");
    assert_eq!(file["bytes"], content.len());
    let (status, text) = send(
        client,
        base,
        key,
        "POST",
        "/v1/batches",
        Some(json!({"input_file_id": file["id"], "endpoint": "/v1/chat/completions",
                    "completion_window": "24h", "metadata": {"team": "nightly"}})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn completes_with_results_and_ledger_rows(db: Option<&TestDb>) {
    let dir = tempfile::tempdir().unwrap();
    let url = db.map(TestDb::url);
    let gw = start(dir.path(), url.as_deref(), Reply::text("DONE").usage(usage()), 4).await;
    let base = gw.gw.url();
    let content = input(&[("first", "priced"), ("second", "priced"), ("refused", "bad")]);
    let batch = create_openai(&gw.client, &base, MASTER, &content).await;
    assert_eq!(batch["object"], "batch");
    assert_eq!(batch["status"], "in_progress");
    assert_eq!(batch["request_counts"]["total"], 3);
    assert_eq!(batch["metadata"]["team"], "nightly");
    let id = batch["id"].as_str().unwrap();
    assert!(id.starts_with("batch_"), "{id}");

    let done = wait_for(
        &gw.client,
        &base,
        MASTER,
        &format!("/v1/batches/{id}"),
        "status",
        &["completed", "failed"],
    )
    .await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["request_counts"], json!({"total": 3, "completed": 2, "failed": 1}));
    assert!(done["completed_at"].as_i64().unwrap() >= done["created_at"].as_i64().unwrap());

    let (status, out) = gw
        .send_text(
            MASTER,
            "GET",
            &format!("/v1/files/{}/content", done["output_file_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let out = lines(&out);
    assert_eq!(out.len(), 2);
    for (line, custom_id) in out.iter().zip(["first", "second"]) {
        assert_eq!(line["custom_id"], custom_id);
        assert_eq!(line["response"]["status_code"], 200);
        assert_eq!(line["response"]["body"]["object"], "chat.completion");
        assert_eq!(line["response"]["body"]["choices"][0]["message"]["content"], "DONE");
        assert_eq!(line["error"], Value::Null);
        assert!(line["id"].as_str().unwrap().starts_with("batch_req_"), "{line}");
    }
    let (_, errors) = gw
        .send_text(
            MASTER,
            "GET",
            &format!("/v1/files/{}/content", done["error_file_id"].as_str().unwrap()),
            None,
        )
        .await;
    let errors = lines(&errors);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["custom_id"], "refused");
    assert_eq!(errors[0]["response"]["status_code"], 401, "{:#}", errors[0]);
    assert!(errors[0]["response"]["body"]["error"]["message"].is_string(), "{:#}", errors[0]);

    // One ledger row per request, at the batch price: 100 × $1/MTok + 20 × $5/MTok.
    let rows = rows_until(dir.path(), db, id, 3).await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    for r in &rows {
        assert_eq!(r.call_type, "aretrieve_batch");
        assert_eq!(
            r.model_group,
            if r.metadata["batch_custom_id"] == "refused" { "bad" } else { "priced" }
        );
    }
    let served: Vec<_> = rows.iter().filter(|r| r.status == "success").collect();
    assert_eq!(served.len(), 2);
    for r in served {
        let spend: f64 = r.spend.as_deref().unwrap().parse().unwrap();
        assert!((spend - 0.0002).abs() < 1e-12, "batch price, not the full 0.0004: {r:?}");
        assert_eq!((r.prompt_tokens, r.completion_tokens), (100, 20));
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_batch_completes_with_result_files_and_ledger_rows_on_sqlite() {
    completes_with_results_and_ledger_rows(None).await;
}

#[tokio::test]
async fn a_batch_completes_with_result_files_and_ledger_rows_on_postgres() {
    let db = TestDb::create().await;
    completes_with_results_and_ledger_rows(Some(&db)).await;
}

#[tokio::test]
async fn malformed_input_lines_make_a_failed_batch_naming_each_line() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None, Reply::text("DONE"), 2).await;
    let content = format!("{}\nnot json\n", input(&[("a", "priced")]));
    let batch = create_openai(&gw.client, &gw.gw.url(), MASTER, &content).await;
    assert_eq!(batch["status"], "failed", "{batch:#}");
    assert_eq!(batch["errors"]["data"][0]["line"], 2);
    assert_eq!(batch["errors"]["data"][0]["code"], "invalid_json_line");
    assert_eq!(gw.mock.calls(), 0, "nothing of a failed batch runs");
    gw.stop().await;
}

#[tokio::test]
async fn a_responses_batch_answers_with_response_objects() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None, Reply::text("DONE").usage(usage()), 2).await;
    let base = gw.gw.url();
    let line = json!({"custom_id": "r1", "method": "POST", "url": "/v1/responses",
                      "body": {"model": "priced", "input": "Say DONE", "max_output_tokens": 16}});
    let (status, file) = upload(&gw.client, &base, MASTER, &line.to_string()).await;
    assert_eq!(status, 200, "{file}");
    let (status, batch) = gw
        .send(
            MASTER,
            "POST",
            "/v1/batches",
            Some(json!({"input_file_id": file["id"],
              "endpoint": "/v1/responses", "completion_window": "24h"})),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    let id = batch["id"].as_str().unwrap();
    let done =
        wait_for(&gw.client, &base, MASTER, &format!("/v1/batches/{id}"), "status", &["completed"])
            .await;
    let (_, out) = gw
        .send_text(
            MASTER,
            "GET",
            &format!("/v1/files/{}/content", done["output_file_id"].as_str().unwrap()),
            None,
        )
        .await;
    let out = lines(&out);
    let body = &out[0]["response"]["body"];
    assert_eq!(body["object"], "response", "{body:#}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["output"][0]["content"][0]["text"], "DONE", "{body:#}");
    // A batch's endpoint is the same for every line.
    let (status, refused) = gw
        .send(
            MASTER,
            "POST",
            "/v1/batches",
            Some(json!({"input_file_id": file["id"],
              "endpoint": "/v1/embeddings", "completion_window": "24h"})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["diagnosis"]["id"], "BAT-04");
    gw.stop().await;
}

#[tokio::test]
async fn two_replicas_on_one_database_never_run_the_same_item() {
    let db = TestDb::create().await;
    // Slow enough that one replica alone would need longer than the other's next look for
    // work (every 2 s): both take part.
    let reply = Reply::text("DONE").usage(usage()).delay(Duration::from_millis(500));
    let mock = MockUpstream::builder().api_key(ANT_KEY).default_reply(reply).start().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, runner_a, ledger_a) = gateway_on(&mock, dir_a.path(), Some(&db.url()), 4).await;
    let (b, runner_b, ledger_b) = gateway_on(&mock, dir_b.path(), Some(&db.url()), 4).await;
    let client = reqwest::Client::new();
    let ids: Vec<String> = (0..24).map(|i| format!("item-{i:02}")).collect();
    let lines_in: Vec<(&str, &str)> = ids.iter().map(|id| (id.as_str(), "priced")).collect();
    let batch = create_openai(&client, &a.url(), MASTER, &input(&lines_in)).await;
    let id = batch["id"].as_str().unwrap();
    // Created on one replica, visible and finished on the other.
    let done =
        wait_for(&client, &b.url(), MASTER, &format!("/v1/batches/{id}"), "status", &["completed"])
            .await;
    assert_eq!(done["request_counts"]["completed"], 24, "{done:#}");
    // Each request reached the upstream once, whichever replica ran it.
    let mut asked: Vec<String> = mock
        .received()
        .iter()
        .filter_map(|r| {
            let content = &r.body["messages"][0]["content"];
            content.as_str().or_else(|| content[0]["text"].as_str()).map(str::to_owned)
        })
        .collect();
    asked.sort();
    let expected: Vec<String> = ids.iter().map(|id| format!("Say {id}")).collect();
    assert_eq!(asked, expected);
    let rows = rows_until(dir_a.path(), Some(&db), id, 24).await;
    assert_eq!(rows.len(), 24);
    let runners: i64 = sqlx::query_scalar(
        r#"SELECT COUNT(DISTINCT "claimed_by") FROM "Switchyard_BatchItems" WHERE "batch_id" = $1"#,
    )
    .bind(id)
    .fetch_one(&db.pool().await)
    .await
    .unwrap();
    assert_eq!(runners, 2, "both replicas ran items of the batch");
    for (runner, ledger, gw) in [(runner_a, ledger_a, a), (runner_b, ledger_b, b)] {
        runner.stop(Duration::from_secs(5)).await;
        ledger.close(Duration::from_secs(5)).await;
        gw.shutdown().await.unwrap();
    }
}

async fn anthropic_batch_and_cancel(db: Option<&TestDb>) {
    let dir = tempfile::tempdir().unwrap();
    let url = db.map(TestDb::url);
    // One at a time, each answer slow: the cancel lands while the first is in flight.
    let gw = start(
        dir.path(),
        url.as_deref(),
        Reply::text("DONE").usage(usage()).delay(Duration::from_millis(1500)),
        1,
    )
    .await;
    // Not all on Anthropic: run by the gateway, not forwarded.
    let body = batch_support::message_batch(&["local"; 4]);
    let (status, batch) = gw.send(MASTER, "POST", "/v1/messages/batches", Some(body)).await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["type"], "message_batch");
    assert_eq!(batch["processing_status"], "in_progress");
    assert_eq!(batch["request_counts"]["processing"], 4);
    assert_eq!(batch["results_url"], Value::Null);
    let id = batch["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("msgbatch_"), "{id}");

    let started = eventually(PATIENCE, || async { gw.mock.calls() >= 1 }).await;
    assert!(started, "the first request never reached the upstream");
    let (status, cancelling) =
        gw.send(MASTER, "POST", &format!("/v1/messages/batches/{id}/cancel"), None).await;
    assert_eq!(status, 200, "{cancelling}");
    assert!(cancelling["cancel_initiated_at"].is_string(), "{cancelling:#}");
    // Results are not there before the batch ends.
    let ended = wait_for(
        &gw.client,
        &gw.gw.url(),
        MASTER,
        &format!("/v1/messages/batches/{id}"),
        "processing_status",
        &["ended"],
    )
    .await;
    assert_eq!(
        ended["request_counts"],
        json!({"processing": 0, "succeeded": 1, "errored": 0, "canceled": 3, "expired": 0}),
        "the request in flight finishes, the rest are canceled"
    );
    let results_url = ended["results_url"].as_str().unwrap();
    assert!(results_url.ends_with(&format!("/v1/messages/batches/{id}/results")), "{results_url}");
    let (status, results) =
        gw.send_text(MASTER, "GET", &format!("/v1/messages/batches/{id}/results"), None).await;
    assert_eq!(status, 200, "{results}");
    let results = lines(&results);
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["custom_id"], "req-0");
    assert_eq!(results[0]["result"]["type"], "succeeded");
    assert_eq!(results[0]["result"]["message"]["type"], "message");
    assert_eq!(results[0]["result"]["message"]["content"][0]["text"], "DONE");
    for r in &results[1..] {
        assert_eq!(r["result"]["type"], "canceled", "{r}");
    }
    assert_eq!(gw.mock.calls(), 1, "canceled requests never reach the upstream");

    // Ended: cancelling again is refused with its reason; deleting works.
    let (status, again) =
        gw.send(MASTER, "POST", &format!("/v1/messages/batches/{id}/cancel"), None).await;
    assert_eq!(status, 400, "{again}");
    assert_eq!(again["type"], "error");
    assert_eq!(again["error"]["diagnosis"]["id"], "BAT-04", "{again}");
    let (status, deleted) =
        gw.send(MASTER, "DELETE", &format!("/v1/messages/batches/{id}"), None).await;
    assert_eq!((status, deleted["type"].as_str()), (200, Some("message_batch_deleted")));
    let (status, _) = gw.send(MASTER, "GET", &format!("/v1/messages/batches/{id}"), None).await;
    assert_eq!(status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn an_anthropic_batch_can_be_cancelled_on_sqlite() {
    anthropic_batch_and_cancel(None).await;
}

#[tokio::test]
async fn an_anthropic_batch_can_be_cancelled_on_postgres() {
    let db = TestDb::create().await;
    anthropic_batch_and_cancel(Some(&db)).await;
}

#[tokio::test]
async fn a_key_sees_only_its_own_batches_and_its_budget_applies_per_item() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), Some(&db.url()), Reply::text("DONE").usage(usage()), 2).await;
    let base = gw.gw.url();
    let alice = gw.generate(json!({"key_alias": "alice"})).await;
    // A budget smaller than one request's reservation: every item is refused for it.
    let bob = gw.generate(json!({"key_alias": "bob", "max_budget": 0.0000001})).await;
    // Keys are seen by the gateway within a poll.
    tokio::time::sleep(POLL * 3).await;

    let mine = create_openai(&gw.client, &base, &alice, &input(&[("a1", "priced")])).await;
    let mine_id = mine["id"].as_str().unwrap();
    let file_id = mine["input_file_id"].as_str().unwrap();
    for path in [
        format!("/v1/batches/{mine_id}"),
        format!("/v1/files/{file_id}"),
        format!("/v1/files/{file_id}/content"),
    ] {
        let (status, body) = gw.send(&bob, "GET", &path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["diagnosis"]["id"], "BAT-03", "{body}");
    }
    let (status, _) = gw.send(&bob, "POST", &format!("/v1/batches/{mine_id}/cancel"), None).await;
    assert_eq!(status, 404);
    let (_, listed) = gw.send(&bob, "GET", "/v1/batches", None).await;
    assert_eq!(listed["data"], json!([]), "{listed}");
    let (_, listed) = gw.send(&alice, "GET", "/v1/batches", None).await;
    assert_eq!(listed["data"][0]["id"], mine_id);
    let (status, _) = gw.send(MASTER, "GET", &format!("/v1/batches/{mine_id}"), None).await;
    assert_eq!(status, 200, "the master key sees every batch");

    let theirs =
        create_openai(&gw.client, &base, &bob, &input(&[("b1", "priced"), ("b2", "priced")])).await;
    let theirs_id = theirs["id"].as_str().unwrap();
    let done = wait_for(
        &gw.client,
        &base,
        &bob,
        &format!("/v1/batches/{theirs_id}"),
        "status",
        &["completed"],
    )
    .await;
    assert_eq!(done["request_counts"], json!({"total": 2, "completed": 0, "failed": 2}));
    assert_eq!(done["output_file_id"], Value::Null, "nothing was answered");
    let (_, errors) = gw
        .send_text(
            &bob,
            "GET",
            &format!("/v1/files/{}/content", done["error_file_id"].as_str().unwrap()),
            None,
        )
        .await;
    for line in lines(&errors) {
        assert_eq!(line["response"]["status_code"], 400, "{line}");
        assert_eq!(line["response"]["body"]["error"]["type"], "budget_exceeded", "{line}");
        assert_eq!(line["response"]["body"]["error"]["diagnosis"]["id"], "BUD-01", "{line}");
    }
    let mine_done = wait_for(
        &gw.client,
        &base,
        &alice,
        &format!("/v1/batches/{mine_id}"),
        "status",
        &["completed"],
    )
    .await;
    assert_eq!(mine_done["request_counts"]["completed"], 1);
    // The rows carry each owner's key hash.
    let rows = rows_until(dir.path(), Some(&db), theirs_id, 2).await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows.iter().all(|r| r.api_key == switchyard::attribution::hash_key(&bob)), "{rows:#?}");
    assert!(rows.iter().all(|r| r.status == "failure"));
    gw.stop().await;
}

/// The real binary, killed (SIGKILL) while items are in flight and started again on the
/// same store: every item is answered exactly once, in the output file and in the ledger.
async fn survives_a_kill(db: Option<&TestDb>) {
    use switchyard::daemon::process::{self, Sig};
    let ops = ops_support::Ops::new();
    let mock = MockUpstream::builder()
        .api_key(ANT_KEY)
        .default_reply(Reply::text("DONE").usage(usage()).delay(Duration::from_secs(2)))
        .start()
        .await;
    let mut text = yaml(&mock.url(), 2);
    if let Some(db) = db {
        text.push_str(&format!("  database_url: {}\n", db.url()));
    }
    let config = ops.write("batches.yaml", &text);
    let status = ops.start(&config, &[]).await;
    let base = status["url"].as_str().unwrap().to_owned();
    let client = ops_support::http();
    let ids: Vec<String> = (0..6).map(|i| format!("item-{i}")).collect();
    let lines_in: Vec<(&str, &str)> = ids.iter().map(|id| (id.as_str(), "priced")).collect();
    let batch = create_openai(&client, &base, MASTER, &input(&lines_in)).await;
    let id = batch["id"].as_str().unwrap().to_owned();

    // Two items in flight (the concurrency), answers two seconds away: kill the gateway.
    let in_flight = eventually(PATIENCE, || async { mock.calls() >= 2 }).await;
    assert!(in_flight, "no item reached the upstream");
    let pid = ops.recorded_pid().unwrap();
    process::signal(pid, Sig::Kill).unwrap();
    let gone = eventually(PATIENCE, || async { !process::alive(pid) }).await;
    assert!(gone, "the gateway survived SIGKILL");

    let status = ops.start(&config, &[]).await;
    let base = status["url"].as_str().unwrap().to_owned();
    let done =
        wait_for(&client, &base, MASTER, &format!("/v1/batches/{id}"), "status", &["completed"])
            .await;
    assert_eq!(
        done["request_counts"],
        json!({"total": 6, "completed": 6, "failed": 0}),
        "{done:#}"
    );
    let (status, out) = send(
        &client,
        &base,
        MASTER,
        "GET",
        &format!("/v1/files/{}/content", done["output_file_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let mut answered: Vec<String> =
        lines(&out).iter().map(|l| l["custom_id"].as_str().unwrap().to_owned()).collect();
    answered.sort();
    assert_eq!(answered, ids, "every item answered exactly once");
    // The items cut off ran again (at most once each); the others ran once.
    let calls = mock.calls();
    assert!((6..=8).contains(&calls), "{calls} upstream calls for 6 items, 2 of them cut off");
    let rows = rows_until(&ops.state(), db, &id, 6).await;
    let mut recorded: Vec<String> =
        rows.iter().map(|r| r.metadata["batch_custom_id"].as_str().unwrap().to_owned()).collect();
    recorded.sort();
    assert_eq!(recorded, ids, "one ledger row per item: {rows:#?}");

    // The command line reads the same store: the batch, its counts and its cost (six
    // requests at the batch price).
    let cfg = config.to_str().unwrap();
    let out = ops.run(&["batches", "list", "--config", cfg]).await;
    assert_eq!(out.code, 0, "{out}");
    let row = out.stdout.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[1..9],
        ["openai", "gateway", "completed", "master", "key", "6", "6", "0"],
        "{out}"
    );
    let out = ops.run(&["batches", "show", &id, "--json", "--config", cfg]).await;
    assert_eq!(out.code, 0, "{out}");
    let shown: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown["cost_usd"], "0.0012", "{shown:#}");
    assert_eq!(shown["request_counts"]["succeeded"], 6);
    let out = ops.run(&["batches", "cancel", &id, "--config", cfg]).await;
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("has already ended (completed) [BAT-04]"), "{out}");
    let out = ops.run(&["batches", "show", "batch_missing", "--config", cfg]).await;
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("[BAT-03]"), "{out}");
    let out = ops.run(&["stop"]).await;
    assert_eq!(out.code, 0, "{out}");
}

#[tokio::test]
async fn a_batch_survives_its_gateway_being_killed_on_sqlite() {
    survives_a_kill(None).await;
}

#[tokio::test]
async fn a_batch_survives_its_gateway_being_killed_on_postgres() {
    let db = TestDb::create().await;
    survives_a_kill(Some(&db)).await;
}

/// The first start on an empty state directory: the batch runner creates its tables before
/// its first heartbeat, so the log holds no warning (a runner that touched them first would
/// say "the store cannot be reached: no such table" every heartbeat until a batch existed).
#[tokio::test]
async fn a_first_start_on_an_empty_state_directory_logs_no_warning() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.yaml");
    std::fs::write(
        &config,
        "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      mock_response: WORKS\n",
    )
    .unwrap();
    let mut cmd = support::serve_command(&config, &dir.path().join("state"), dir.path());
    cmd.args(["--no-watch", "--log-format", "json", "--log-level", "info"])
        .env_remove("SWITCHYARD_LOG")
        .env_remove("RUST_LOG");
    let (served, mut stderr) = support::spawn_ready_piping_stderr(cmd).await;
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        stderr.read_to_string(&mut log).unwrap();
        log
    });
    // Two heartbeats of the runner, then a graceful stop (which gives back its claims).
    tokio::time::sleep(switchyard::batches::runner::HEARTBEAT * 2 + Duration::from_millis(500))
        .await;
    assert!(served.stop().await.success());
    let log = reader.join().unwrap();
    assert!(log.contains("\"ledger flushed\"") || log.contains("stopped"), "{log}");
    let loud: Vec<&str> = log
        .lines()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
            matches!(v["level"].as_str(), Some("WARN" | "ERROR"))
        })
        .collect();
    assert!(loud.is_empty(), "a fresh start logged:\n{}", loud.join("\n"));
}
