//! Scripting the mock over HTTP (`/_mock/*`), as the Python SDK suite does through the binary.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed unwrap is a failed test"
)]

use std::time::Duration;

use mock_upstream::MockUpstream;
use serde_json::{Value, json};

async fn admin(mock: &MockUpstream, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", mock.url());
    let request = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    };
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn messages(mock: &MockUpstream, stream: bool, text: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/messages?beta=true", mock.url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({
            "model": "claude-sonnet-4-6",
            "max_tokens": 64,
            "stream": stream,
            "messages": [{"role": "user", "content": text}],
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn specs_pushed_over_http_script_the_replies() {
    let mock = MockUpstream::builder().admin(true).start().await;
    let specs = json!([
        {"error": {"type": "overloaded_error", "message": "Overloaded"}, "retry_after": 3},
        {"text": "Let me check", "tool_use": {"name": "get_weather", "input": {"city": "Paris"}},
         "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 200},
         "headers": {"anthropic-ratelimit-requests-remaining": "9"}},
    ]);
    assert_eq!(
        admin(&mock, "POST", "/_mock/push", Some(specs)).await,
        (200, json!({"pending": 2}))
    );

    let first = messages(&mock, false, "Say: hi").await;
    assert_eq!(first.status(), 529);
    assert_eq!(first.headers()["retry-after"], "3");
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["error"], json!({"type": "overloaded_error", "message": "Overloaded"}));

    let second = messages(&mock, false, "Say: hi").await;
    assert_eq!(second.headers()["anthropic-ratelimit-requests-remaining"], "9");
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["content"][0], json!({"type": "text", "text": "Let me check"}));
    assert_eq!(body["content"][1]["name"], "get_weather");
    assert_eq!(body["content"][1]["input"], json!({"city": "Paris"}));
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["usage"]["cache_read_input_tokens"], 200);
    assert_eq!(body["usage"]["cache_creation_input_tokens"], 0);

    // Script empty: the default echo, then a default set over HTTP.
    let third: Value = messages(&mock, false, "Say: hi").await.json().await.unwrap();
    assert_eq!(third["content"][0]["text"], "hi");
    let (status, _) = admin(&mock, "POST", "/_mock/default", Some(json!({"text": "fixed"}))).await;
    assert_eq!(status, 200);
    let fourth: Value = messages(&mock, false, "Say: hi").await.json().await.unwrap();
    assert_eq!(fourth["content"][0]["text"], "fixed");
    assert_eq!(
        admin(&mock, "GET", "/_mock/calls", None).await.1,
        json!({"calls": 4, "pending": 0})
    );
}

#[tokio::test]
async fn received_lists_requests_and_reset_starts_over() {
    let mock = MockUpstream::builder().admin(true).start().await;
    let _ = messages(&mock, false, "Say: one").await;
    let (status, received) = admin(&mock, "GET", "/_mock/received", None).await;
    assert_eq!(status, 200);
    let received = received.as_array().unwrap();
    assert_eq!(received.len(), 1, "admin calls are not recorded: {received:?}");
    let first = &received[0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/v1/messages");
    assert_eq!(first["query"], "beta=true");
    assert_eq!(first["headers"]["x-api-key"], "sk-ant-test");
    assert_eq!(first["body"]["messages"][0]["content"], "Say: one");

    admin(&mock, "POST", "/_mock/push", Some(json!({"text": "queued"}))).await;
    admin(&mock, "POST", "/_mock/default", Some(json!({"text": "changed"}))).await;
    assert_eq!(admin(&mock, "POST", "/_mock/reset", None).await.0, 200);
    assert_eq!(admin(&mock, "GET", "/_mock/received", None).await.1, json!([]));
    assert_eq!(
        admin(&mock, "GET", "/_mock/calls", None).await.1,
        json!({"calls": 0, "pending": 0})
    );
    let body: Value = messages(&mock, false, "Say: again").await.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "again", "reset restores the echo default");
    assert_eq!(body["id"], "msg_mock_000001", "reset restarts the ids");
}

#[tokio::test]
async fn stream_faults_and_hold_are_scriptable() {
    let mock = MockUpstream::builder().admin(true).start().await;
    let specs = json!([
        {"stream_error_after": {"events": 2, "type": "overloaded_error", "message": "Overloaded"}},
        {"text": "a b c", "hold_after": 2},
    ]);
    admin(&mock, "POST", "/_mock/push", Some(specs)).await;
    let text = messages(&mock, true, "Say: x").await.text().await.unwrap();
    assert_eq!(text.matches("event: ").count(), 3, "{text}");
    assert!(text.contains("event: error\ndata: {"), "{text}");

    let mut held = messages(&mock, true, "Say: x").await;
    let mut seen = String::new();
    while seen.matches("\n\n").count() < 2 {
        seen.push_str(std::str::from_utf8(&held.chunk().await.unwrap().unwrap()).unwrap());
    }
    let waiting = tokio::time::timeout(Duration::from_millis(100), held.chunk()).await;
    assert!(waiting.is_err(), "the third event must wait for the release");
    admin(&mock, "POST", "/_mock/release", None).await;
    let rest = held.text().await.unwrap();
    assert!(rest.contains("message_stop"), "{rest}");
}

#[tokio::test]
async fn bad_specs_and_disabled_admin_say_what_is_wrong() {
    let mock = MockUpstream::builder().admin(true).start().await;
    let (status, body) =
        admin(&mock, "POST", "/_mock/push", Some(json!([{"text": "ok"}, {"txet": "x"}]))).await;
    assert_eq!(status, 400);
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("reply 1") && message.contains("txet"), "{message}");
    assert_eq!(admin(&mock, "GET", "/_mock/calls", None).await.1["pending"], 0, "all or nothing");
    assert_eq!(admin(&mock, "GET", "/_mock/nope", None).await.0, 404);

    let plain = MockUpstream::start().await;
    let response =
        reqwest::Client::new().post(format!("{}/_mock/reset", plain.url())).send().await.unwrap();
    assert_eq!(response.status(), 404, "admin routes are off by default");
    assert_eq!(plain.calls(), 1, "and the path is an ordinary recorded call");
}

/// Kills the spawned binary even when an assertion fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_with_admin_records_and_scripts() {
    use std::io::BufRead;
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
            .args(["--port", "0", "--admin"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let url = line.trim().strip_prefix("mock-upstream listening on ").unwrap().to_owned();
    let client = reqwest::Client::new();
    let pushed = client.post(format!("{url}/_mock/push")).json(&json!({"text": "scripted"}));
    assert_eq!(pushed.send().await.unwrap().status(), 200);
    let body: Value = client
        .post(format!("{url}/v1/messages"))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["content"][0]["text"], "scripted");
    let received: Value =
        client.get(format!("{url}/_mock/received")).send().await.unwrap().json().await.unwrap();
    assert_eq!(received.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn reset_forgets_a_release_nobody_waited_for() {
    let mock = MockUpstream::builder().admin(true).start().await;
    admin(&mock, "POST", "/_mock/release", None).await;
    admin(&mock, "POST", "/_mock/reset", None).await;
    admin(&mock, "POST", "/_mock/push", Some(json!({"text": "a b c", "hold_after": 2}))).await;
    let mut held = messages(&mock, true, "Say: x").await;
    let mut seen = String::new();
    while seen.matches("\n\n").count() < 2 {
        seen.push_str(std::str::from_utf8(&held.chunk().await.unwrap().unwrap()).unwrap());
    }
    let waiting = tokio::time::timeout(Duration::from_millis(100), held.chunk()).await;
    assert!(waiting.is_err(), "a release from before the reset must not count");
}

#[tokio::test]
async fn wire_faults_cut_a_response_at_a_byte_and_spare_the_next() {
    let mock = MockUpstream::builder().admin(true).start().await;
    let specs = json!([{"cut_at": {"body": 10}}, {"cut_at": {"head": 0}}, {"text": "whole"}]);
    assert_eq!(admin(&mock, "POST", "/_mock/push", Some(specs)).await.0, 200);

    // Ten bytes of the JSON body, then the connection closes.
    let cut = messages(&mock, false, "Say: hi").await;
    assert_eq!(cut.status(), 200);
    assert_eq!(cut.headers()["connection"], "close");
    let err = cut.bytes().await.unwrap_err();
    assert!(err.is_body() || err.is_decode(), "{err:?}");
    // Nothing at all: not even a status line.
    let client = reqwest::Client::new();
    let sent = client
        .post(format!("{}/v1/messages", mock.url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await;
    assert!(sent.is_err(), "{sent:?}");
    // The next reply is whole.
    let body: Value = messages(&mock, false, "Say: hi").await.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "whole");

    let bad = json!([{"cut_at": {"middle": 3}}]);
    assert_eq!(admin(&mock, "POST", "/_mock/push", Some(bad)).await.0, 400);
}

#[tokio::test]
async fn a_stalled_response_sends_its_bytes_then_nothing() {
    let mock = MockUpstream::builder().admin(true).start().await;
    let specs = json!([{"stall_at": {"body": 5}}]);
    assert_eq!(admin(&mock, "POST", "/_mock/push", Some(specs)).await.0, 200);
    let mut stalled = messages(&mock, true, "Say: hi").await;
    assert_eq!(stalled.status(), 200);
    let next = tokio::time::timeout(Duration::from_millis(300), async {
        let mut got = Vec::new();
        while let Ok(Some(chunk)) = stalled.chunk().await {
            got.extend_from_slice(&chunk);
        }
        got
    })
    .await;
    // Still open and silent after the first bytes (a stream's first chunk size and a little).
    assert!(next.is_err(), "the stalled stream ended: {next:?}");
}
