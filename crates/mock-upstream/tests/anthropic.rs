//! The Anthropic emulation seen from an HTTP client: scripting, wire shapes, faults, recorder.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed unwrap is a failed test"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mock_upstream::{MockUpstream, Reply, Usage};
use serde_json::{Value, json};
use tokio::sync::Notify;

fn request(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": "Say: WORKS"}],
    })
}

async fn post(mock: &MockUpstream, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", mock.url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn messages(mock: &MockUpstream, stream: bool) -> reqwest::Response {
    post(mock, "/v1/messages", &request(stream)).await
}

/// `(event name, data)` pairs of a complete SSE body.
fn parse_sse(text: &str) -> Vec<(String, Value)> {
    text.split_terminator("\n\n")
        .map(|frame| {
            let (event, data) = frame.split_once('\n').unwrap();
            let event = event.strip_prefix("event: ").unwrap().to_owned();
            let data = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            (event, data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

#[tokio::test]
async fn script_is_served_in_order_then_the_default() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::error(529, "overloaded_error", "Overloaded").retry_after(3));
    mock.push(Reply::text("Hi there").header("anthropic-ratelimit-requests-remaining", "9"));

    let first = messages(&mock, false).await;
    assert_eq!(first.status(), 529);
    assert_eq!(first.headers()["retry-after"], "3");
    assert_eq!(first.headers()["request-id"], "req_mock_000001");
    let body: Value = first.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
               "request_id": "req_mock_000001"})
    );

    let second = messages(&mock, false).await;
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["anthropic-ratelimit-requests-remaining"], "9");
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["id"], "msg_mock_000002");
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-sonnet-4-6");
    assert_eq!(body["content"], json!([{"type": "text", "text": "Hi there"}]));
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    let usage = &body["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0);
    assert!(usage["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert_eq!(usage["cache_creation_input_tokens"], 0);

    // Script empty: the default echoes `Say: WORKS`.
    let third: Value = messages(&mock, false).await.json().await.unwrap();
    assert_eq!(third["content"][0]["text"], "WORKS");
    mock.set_default(Reply::text("default answer"));
    let fourth: Value = messages(&mock, false).await.json().await.unwrap();
    assert_eq!(fourth["content"][0]["text"], "default answer");
    assert_eq!((mock.calls(), mock.pending()), (4, 0));
}

#[tokio::test]
async fn text_stream_has_the_real_event_sequence() {
    let mock = MockUpstream::start().await;
    let usage = Usage {
        input_tokens: 10,
        output_tokens: 5,
        cache_creation_input_tokens: 3,
        cache_read_input_tokens: 200,
        ..Usage::default()
    };
    mock.push(Reply::text("Hello big world").usage(usage).with_ping());
    let response = messages(&mock, true).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream; charset=utf-8");
    let events = parse_sse(&response.text().await.unwrap());
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str());
    }
    let start = &events[0].1["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["model"], "claude-sonnet-4-6");
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["usage"]["input_tokens"], 10);
    assert_eq!(start["usage"]["cache_read_input_tokens"], 200);
    assert_eq!(events[1].1["content_block"], json!({"type": "text", "text": ""}));
    let text: String = events[3..6]
        .iter()
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "Hello big world");
    let delta = &events[7].1;
    assert_eq!(delta["delta"], json!({"stop_reason": "end_turn", "stop_sequence": null}));
    assert_eq!(
        delta["usage"],
        json!({"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 3,
               "cache_read_input_tokens": 200})
    );
}

#[tokio::test]
async fn tool_use_streams_json_fragments_and_answers_json() {
    let mock = MockUpstream::start().await;
    let input = json!({"city": "Paris", "unit": "celsius"});
    mock.push(Reply::text("Checking.").then_tool_use("get_weather", input.clone()));
    mock.push(Reply::tool_use("get_weather", input.clone()));

    let events = parse_sse(&messages(&mock, true).await.text().await.unwrap());
    let tool_start = events
        .iter()
        .find(|(n, d)| n == "content_block_start" && d["content_block"]["type"] == "tool_use")
        .unwrap();
    assert_eq!(tool_start.1["index"], 1);
    assert_eq!(tool_start.1["content_block"]["name"], "get_weather");
    assert_eq!(tool_start.1["content_block"]["input"], json!({}));
    assert!(tool_start.1["content_block"]["id"].as_str().unwrap().starts_with("toolu_"));
    let fragments: Vec<&str> = events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "input_json_delta")
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert!(fragments.len() > 1);
    assert_eq!(serde_json::from_str::<Value>(&fragments.concat()).unwrap(), input);
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");

    let body: Value = messages(&mock, false).await.json().await.unwrap();
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["content"][0]["type"], "tool_use");
    assert_eq!(body["content"][0]["input"], input);
}

#[tokio::test]
async fn thinking_streams_before_the_text() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::text("42").with_thinking("Let me"));
    let events = parse_sse(&messages(&mock, true).await.text().await.unwrap());
    assert_eq!(events[1].1["content_block"]["type"], "thinking");
    let kinds: Vec<&str> = events.iter().filter_map(|(_, d)| d["delta"]["type"].as_str()).collect();
    assert_eq!(kinds, ["thinking_delta", "thinking_delta", "signature_delta", "text_delta"]);
}

/// Reads a streaming body until it ends or fails: the text received, and whether it failed.
async fn read_until_end(response: reqwest::Response) -> (String, bool) {
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => text.push_str(std::str::from_utf8(&bytes).unwrap()),
            Err(_) => return (text, true),
        }
    }
    (text, false)
}

#[tokio::test]
async fn drop_after_closes_the_connection_mid_stream() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::text("Hello world").stream_drop_after(3));
    let response = messages(&mock, true).await;
    assert_eq!(response.status(), 200);
    let (text, failed) = read_until_end(response).await;
    assert!(failed, "the body must end in an error, got a clean end after {text:?}");
    let events = parse_sse(&text);
    assert_eq!(names(&events), ["message_start", "content_block_start", "content_block_delta"]);

    // A non-streaming request gets the headers and half a JSON body.
    mock.push(Reply::text("Hello world").stream_drop_after(3));
    let response = messages(&mock, false).await;
    assert_eq!(response.status(), 200);
    let (text, failed) = read_until_end(response).await;
    assert!(failed);
    assert!(!text.is_empty() && serde_json::from_str::<Value>(&text).is_err());
}

#[tokio::test]
async fn hold_after_holds_the_stream_until_released() {
    let mock = MockUpstream::start().await;
    let release = Arc::new(Notify::new());
    mock.push(Reply::text("Hello world").hold_after(1, Arc::clone(&release)));
    let response = messages(&mock, true).await;
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(std::str::from_utf8(&first).unwrap().starts_with("event: message_start\n"));
    let held = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(held.is_err(), "the second event must be held back");
    release.notify_one();
    let mut rest = String::new();
    while let Some(chunk) = stream.next().await {
        rest.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    let events = parse_sse(&rest);
    assert_eq!(events.first().unwrap().0, "content_block_start");
    assert_eq!(events.last().unwrap().0, "message_stop");
}

#[tokio::test]
async fn stream_error_after_sends_an_error_event() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::stream_error_after(2, "overloaded_error", "Overloaded"));
    let response = messages(&mock, true).await;
    assert_eq!(response.status(), 200);
    let (text, failed) = read_until_end(response).await;
    assert!(!failed);
    let events = parse_sse(&text);
    assert_eq!(names(&events), ["message_start", "content_block_start", "error"]);
    assert_eq!(
        events[2].1,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );

    // Without streaming, the same failure is an HTTP error.
    mock.push(Reply::stream_error_after(2, "overloaded_error", "Overloaded"));
    assert_eq!(messages(&mock, false).await.status(), 529);
}

#[tokio::test]
async fn delay_comes_before_the_status_line() {
    let mock = MockUpstream::start().await;
    mock.push(Reply::text("slow").delay(Duration::from_millis(200)));
    let started = Instant::now();
    assert_eq!(messages(&mock, false).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn recorder_captures_every_request_with_headers_and_body() {
    let mock = MockUpstream::start().await;
    let client = reqwest::Client::new();
    client
        .post(format!("{}/v1/messages?beta=true", mock.url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "a,b")
        .json(&request(false))
        .send()
        .await
        .unwrap();
    // Rejected (no key) and unknown-path requests are recorded too.
    let unauthorized = client.post(format!("{}/v1/messages", mock.url())).body("{}");
    assert_eq!(unauthorized.send().await.unwrap().status(), 401);
    let missing = client.get(format!("{}/v1/models", mock.url())).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    let received = mock.received();
    assert_eq!(received.len(), 3);
    assert_eq!(mock.calls(), 3);
    let first = &received[0];
    assert_eq!((first.method.as_str(), first.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(first.query.as_deref(), Some("beta=true"));
    assert_eq!(first.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(first.header("anthropic-beta"), Some("a,b"));
    assert_eq!(first.body, request(false));
    assert_eq!(first.raw_body, serde_json::to_vec(&request(false)).unwrap());
    assert_eq!(received[1].header("x-api-key"), None);
    assert_eq!(received[1].body, json!({}));
    assert_eq!((received[2].method.as_str(), received[2].path.as_str()), ("GET", "/v1/models"));
    assert_eq!(received[2].body, Value::Null);
}

async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    (status, error["type"].as_str().unwrap().into(), error["message"].as_str().unwrap().into())
}

#[tokio::test]
async fn auth_and_validation_behave_like_the_api() {
    let mock = MockUpstream::builder().api_key("sk-ant-test").start().await;
    mock.push(Reply::text("scripted"));
    let client = reqwest::Client::new();
    let url = format!("{}/v1/messages", mock.url());
    let send = |key: Option<(&'static str, &'static str)>, version: bool, body: Value| {
        let mut builder = client.post(&url).json(&body);
        if let Some((name, value)) = key {
            builder = builder.header(name, value);
        }
        if version {
            builder = builder.header("anthropic-version", "2023-06-01");
        }
        builder.send()
    };
    let good = Some(("x-api-key", "sk-ant-test"));

    let (status, kind, message) = error_of(send(None, true, request(false)).await.unwrap()).await;
    assert_eq!((status, kind.as_str()), (401, "authentication_error"));
    assert_eq!(message, "x-api-key header is required");
    let wrong = Some(("x-api-key", "sk-ant-wrong"));
    let (status, _, message) = error_of(send(wrong, true, request(false)).await.unwrap()).await;
    assert_eq!((status, message.as_str()), (401, "invalid x-api-key"));
    let (status, kind, message) = error_of(send(good, false, request(false)).await.unwrap()).await;
    assert_eq!((status, kind.as_str()), (400, "invalid_request_error"));
    assert!(message.contains("anthropic-version"));
    for field in ["model", "max_tokens", "messages"] {
        let mut body = request(false);
        body.as_object_mut().unwrap().remove(field);
        let (status, kind, message) = error_of(send(good, true, body).await.unwrap()).await;
        assert_eq!((status, kind.as_str()), (400, "invalid_request_error"));
        assert_eq!(message, format!("{field}: Field required"));
    }

    // Rejections did not consume the script; a bearer token is accepted like x-api-key.
    assert_eq!(mock.pending(), 1);
    let bearer = Some(("authorization", "Bearer sk-ant-test"));
    let body: Value = send(bearer, true, request(false)).await.unwrap().json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "scripted");
}

#[tokio::test]
async fn count_tokens_is_deterministic() {
    let mock = MockUpstream::start().await;
    let body =
        json!({"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "Hi"}]});
    let first: Value = post(&mock, "/v1/messages/count_tokens", &body).await.json().await.unwrap();
    let second: Value = post(&mock, "/v1/messages/count_tokens", &body).await.json().await.unwrap();
    assert!(first["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(first, second);
    assert_eq!(first.as_object().unwrap().len(), 1);
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
async fn binary_serves_until_stopped() {
    use std::io::BufRead;
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
            .args(["--port", "0"])
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
    let url = line.trim().strip_prefix("mock-upstream listening on ").unwrap();
    let body: Value = reqwest::Client::new()
        .post(format!("{url}/v1/messages"))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&request(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["content"][0]["text"], "WORKS");
}
