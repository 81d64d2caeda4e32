//! The Message Batches emulation seen from an HTTP client: the batch's lifecycle and shapes,
//! results from the script, paging, cancel, and the API's refusals.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed unwrap is a failed test"
)]

use std::time::{Duration, Instant};

use mock_upstream::{MockUpstream, Reply};
use serde_json::{Value, json};

async fn call(mock: &MockUpstream, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = reqwest::Client::new()
        .request(method, format!("{}/v1/messages/batches{path}", mock.url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01");
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn json_call(
    mock: &MockUpstream,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, text) = call(mock, method, path, body).await;
    (status, serde_json::from_str(&text).unwrap())
}

fn batch(ids: &[&str]) -> Value {
    let requests: Vec<Value> = ids
        .iter()
        .map(|id| json!({"custom_id": id, "params": {"model": "claude-haiku-4-5", "max_tokens": 8,
                                                     "messages": [{"role": "user", "content": "Say: HI"}]}}))
        .collect();
    json!({ "requests": requests })
}

async fn until_ended(mock: &MockUpstream, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, b) = json_call(mock, "GET", &format!("/{id}"), None).await;
        if b["processing_status"] == "ended" {
            return b;
        }
        assert!(Instant::now() < deadline, "never ended: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_batch_is_processed_from_the_script_then_ends_with_results() {
    let mock = MockUpstream::start().await;
    mock.set_batch_delay(Duration::from_millis(300));
    mock.push(Reply::text("first"));
    mock.push(Reply::error(529, "overloaded_error", "Overloaded"));
    let mut body = batch(&["a", "b", "c"]);
    body["requests"][2]["params"].as_object_mut().unwrap().remove("max_tokens");
    let (status, created) = json_call(&mock, "POST", "", Some(body)).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["type"], "message_batch");
    assert_eq!(created["processing_status"], "in_progress");
    assert_eq!(created["request_counts"]["processing"], 3);
    assert_eq!(created["results_url"], Value::Null);
    assert!(created["expires_at"].as_str().unwrap().ends_with('Z'), "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, early) = json_call(&mock, "GET", &format!("/{id}/results"), None).await;
    assert_eq!((status, early["error"]["type"].as_str()), (400, Some("invalid_request_error")));

    let ended = until_ended(&mock, &id).await;
    assert_eq!(
        ended["request_counts"],
        json!({"processing": 0, "succeeded": 1, "errored": 2, "canceled": 0, "expired": 0})
    );
    assert!(ended["ended_at"].is_string());
    let url = ended["results_url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/v1/messages/batches/{id}/results")), "{url}");
    let (_, text) = call(&mock, "GET", &format!("/{id}/results"), None).await;
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["custom_id"], "a");
    assert_eq!(lines[0]["result"]["message"]["content"][0]["text"], "first");
    assert_eq!(lines[0]["result"]["message"]["model"], "claude-haiku-4-5");
    assert_eq!(lines[1]["result"]["error"]["error"]["type"], "overloaded_error");
    // The API checks params only when it processes them.
    assert_eq!(lines[2]["result"]["error"]["error"]["message"], "max_tokens: Field required");
}

#[tokio::test]
async fn batches_page_newest_first_and_cancel() {
    let mock = MockUpstream::start().await;
    mock.set_batch_delay(Duration::from_secs(600));
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, b) = json_call(&mock, "POST", "", Some(batch(&["x", "y"]))).await;
        ids.push(b["id"].as_str().unwrap().to_owned());
    }
    let (_, page) = json_call(&mock, "GET", "?limit=2", None).await;
    assert_eq!(
        (page["first_id"].as_str(), page["last_id"].as_str()),
        (Some(&*ids[2]), Some(&*ids[1]))
    );
    assert_eq!(page["has_more"], true);
    let (_, rest) = json_call(&mock, "GET", &format!("?limit=2&after_id={}", ids[1]), None).await;
    assert_eq!(
        (rest["first_id"].as_str(), rest["has_more"].as_bool()),
        (Some(&*ids[0]), Some(false))
    );

    let (_, cancelling) = json_call(&mock, "POST", &format!("/{}/cancel", ids[0]), None).await;
    assert!(cancelling["cancel_initiated_at"].is_string(), "{cancelling}");
    let ended = until_ended(&mock, &ids[0]).await;
    assert_eq!(ended["request_counts"]["canceled"], 2, "{ended}");

    let (status, missing) = json_call(&mock, "GET", "/msgbatch_nope", None).await;
    assert_eq!((status, missing["error"]["type"].as_str()), (404, Some("not_found_error")));
    let denied = reqwest::Client::new()
        .get(format!("{}/v1/messages/batches", mock.url()))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 401);
}
