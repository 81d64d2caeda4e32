//! The Anthropic Messages surface of an in-process gateway on port 0, driven the way the
//! Anthropic SDK and Claude Code drive it: `/v1/messages` plain and streamed,
//! `count_tokens`, and every error (GW-01, GW-02, malformed bodies, unknown routes) in
//! Anthropic's own error shape. Deployments are `mock_response`s: no upstream needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use switchyard::config::MapEnv;
use switchyard::server::Handle;

const KEY: &str = "sk-gw-test-0123456789";

const CONFIG: &str = r#"
model_list:
  - model_name: cheap
    litellm_params:
      model: anthropic/claude-haiku-4-5
      mock_response: "cheap answer"
  - model_name: claude-sonnet-4-6
    litellm_params:
      model: anthropic/claude-sonnet-4-6
      mock_response: "It WORKS for Claude Code"
general_settings:
  master_key: sk-gw-test-0123456789
  max_request_body_size_mb: 1
"#;

async fn gateway() -> Handle {
    support::gateway(CONFIG, &MapEnv::default()).await
}

fn hello(model: &str) -> Value {
    json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "Say: WORKS"}]})
}

/// A request as the Anthropic Python SDK sends it: `x-api-key` and `anthropic-version`.
fn sdk_post(gw: &Handle, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{}{path}", gw.url()))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
}

/// Status, `x-switchyard-error-class`, and the body, asserting Anthropic's error shape
/// (`{"type":"error","error":{"type","message"},"request_id"}`) with a `request-id`
/// header that matches the body.
async fn anthropic_error(resp: reqwest::Response) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    let class = h["x-switchyard-error-class"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert!(body["error"]["type"].is_string() && body["error"]["message"].is_string(), "{body}");
    assert!(body["error"].get("code").is_none(), "not OpenAI's shape: {body}");
    assert_eq!(body["request_id"], h["request-id"].to_str().unwrap(), "{body}");
    assert_eq!(body["request_id"], h["x-request-id"].to_str().unwrap(), "{body}");
    (status, class, body["error"].clone())
}

/// `(event, data)` per SSE frame, asserting each frame's `event:` matches its data's type.
fn sse_events(text: &str) -> Vec<(String, Value)> {
    assert!(text.ends_with("\n\n"), "the stream must end on a frame boundary: {text:?}");
    text.trim_end()
        .split("\n\n")
        .map(|frame| {
            let (event, data) = frame.split_once('\n').unwrap();
            let event = event.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], event.as_str(), "{frame}");
            (event, data)
        })
        .collect()
}

fn streamed_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(e, d)| e == "content_block_delta" && d["delta"]["type"] == "text_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_plain_message_comes_back_as_an_anthropic_message() {
    let gw = gateway().await;
    let resp = sdk_post(&gw, "/v1/messages").json(&hello("cheap")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["x-litellm-model-group"], "cheap");
    assert!(h.contains_key("x-switchyard-deployment"));
    assert_eq!(h["request-id"], h["x-request-id"]);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-haiku-4-5");
    assert_eq!(body["content"], json!([{"type": "text", "text": "cheap answer"}]));
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    let usage = &body["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["output_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
}

#[tokio::test]
async fn a_streamed_message_is_the_anthropic_event_sequence() {
    let gw = gateway().await;
    let mut body = hello("cheap");
    body["stream"] = json!(true);
    let resp = sdk_post(&gw, "/v1/messages").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream; charset=utf-8");
    assert!(resp.headers().contains_key("request-id"));
    let events = sse_events(&resp.text().await.unwrap());

    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names[1], "content_block_start");
    assert!(names[2..names.len() - 3].iter().all(|n| *n == "content_block_delta"), "{names:?}");
    assert_eq!(names[names.len() - 3..], ["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(streamed_text(&events), "cheap answer");

    let start = &events[0].1["message"];
    assert_eq!(start["content"], json!([]));
    assert!(start["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let (_, delta) = &events[names.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["input_tokens"], start["usage"]["input_tokens"], "cumulative");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_claude_code_request_is_served_by_the_config_entry_for_its_model() {
    let gw = gateway().await;
    let body = json!({
        "model": "claude-sonnet-4-6",
        "max_tokens": 32000,
        "stream": true,
        "system": [{"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Say: WORKS", "cache_control": {"type": "ephemeral"}}
        ]}],
        "tools": [
            {"name": "Bash", "description": "Run a command",
             "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}},
            {"name": "Deferred", "description": "d", "input_schema": {"type": "object"}, "defer_loading": true}
        ],
        "metadata": {"user_id": "{\"device_id\":\"84da\"}"},
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"}
    });
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/messages?beta=true", gw.url()))
        .bearer_auth(KEY)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14")
        .header("x-app", "cli")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-litellm-model-group"], "claude-sonnet-4-6");
    let events = sse_events(&resp.text().await.unwrap());
    assert_eq!(streamed_text(&events), "It WORKS for Claude Code");
    assert_eq!(events.last().unwrap().0, "message_stop");
}

#[tokio::test]
async fn the_beta_query_is_accepted_on_plain_requests_too() {
    let gw = gateway().await;
    let resp = sdk_post(&gw, "/v1/messages?beta=true").json(&hello("cheap")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "cheap answer");
}

#[tokio::test]
async fn count_tokens_answers_input_tokens_without_max_tokens() {
    let gw = gateway().await;
    let count = |text: &'static str| {
        let req = sdk_post(&gw, "/v1/messages/count_tokens?beta=true")
            .json(&json!({"model": "cheap", "messages": [{"role": "user", "content": text}]}));
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["x-litellm-model-group"], "cheap");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
            body["input_tokens"].as_u64().unwrap()
        }
    };
    let short = count("hi").await;
    let long = count("a much longer question about the weather in Paris tomorrow").await;
    assert!(short > 0 && long > short, "{short} {long}");

    let resp = sdk_post(&gw, "/v1/messages/count_tokens")
        .json(&json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    let (status, class, _) = anthropic_error(resp).await;
    assert_eq!((status, class.as_str()), (400, "unknown_model"));
}

#[tokio::test]
async fn gw01_a_missing_or_wrong_key_is_an_anthropic_authentication_error() {
    let gw = gateway().await;
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", gw.url()))
            .header("anthropic-version", "2023-06-01")
            .json(&hello("cheap"))
            .send()
            .await
            .unwrap();
        let (status, class, err) = anthropic_error(resp).await;
        assert_eq!((status, class.as_str()), (401, "unauthorized"));
        assert_eq!(err["type"], "authentication_error");
        let msg = err["message"].as_str().unwrap();
        assert!(msg.contains("Missing gateway key") && msg.contains("x-api-key"), "{msg}");
        assert!(!msg.contains(KEY), "the master key must never appear in an error");
    }
    for (header, value) in
        [("x-api-key", "sk-wrong-key-999"), ("authorization", "Bearer sk-wrong-key-999")]
    {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/messages", gw.url()))
            .header(header, value)
            .json(&hello("cheap"))
            .send()
            .await
            .unwrap();
        let (status, _, err) = anthropic_error(resp).await;
        assert_eq!(status, 401);
        let msg = err["message"].as_str().unwrap();
        assert!(msg.contains("Invalid gateway key"), "{msg}");
        assert!(!msg.contains("sk-wrong-key-999") && !msg.contains(KEY), "{msg}");
    }
}

#[tokio::test]
async fn openai_paths_keep_the_openai_error_shape() {
    let gw = gateway().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .json(&json!({"model": "cheap", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "401");
    assert!(body.get("type").is_none(), "{body}");
}

#[tokio::test]
async fn gw02_an_unknown_model_names_the_configured_ones() {
    let gw = gateway().await;
    let resp = sdk_post(&gw, "/v1/messages").json(&hello("claude-opus-9")).send().await.unwrap();
    let (status, class, err) = anthropic_error(resp).await;
    assert_eq!((status, class.as_str()), (400, "unknown_model"));
    assert_eq!(err["type"], "invalid_request_error");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("Unknown model `claude-opus-9`"), "{msg}");
    assert!(msg.contains("cheap, claude-sonnet-4-6"), "{msg}");
    assert!(msg.contains("model_name: claude-opus-9"), "{msg}");
}

#[tokio::test]
async fn malformed_bodies_are_400s_naming_the_field() {
    let gw = gateway().await;
    let send = |body: &'static str| {
        sdk_post(&gw, "/v1/messages").header("content-type", "application/json").body(body).send()
    };
    let cases = [
        (r#"{"model": "cheap", "messages": ["#, "The request body is not valid JSON"),
        (
            r#"{"model": "cheap", "messages": [{"role": "user", "content": "x"}]}"#,
            "max_tokens: missing required field",
        ),
        (
            r#"{"model": "cheap", "max_tokens": "ten", "messages": [{"role": "user", "content": "x"}]}"#,
            "max_tokens: invalid type",
        ),
        (
            r#"{"model": "cheap", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]}"#,
            "messages[0].content: invalid type",
        ),
        (
            r#"{"model": "cheap", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "x"}}]}]}"#,
            "messages[0].content[0].source.media_type: missing required field",
        ),
        (
            r#"{"model": "cheap", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": [{"name": "f"}]}"#,
            "tools[0].input_schema: missing required field",
        ),
    ];
    for (body, expected) in cases {
        let (status, class, err) = anthropic_error(send(body).await.unwrap()).await;
        assert_eq!((status, class.as_str()), (400, "invalid_request"), "{body}");
        assert_eq!(err["type"], "invalid_request_error");
        let msg = err["message"].as_str().unwrap();
        assert!(msg.starts_with(expected), "{body} → {msg}");
    }
}

#[tokio::test]
async fn an_oversized_body_is_an_anthropic_request_too_large() {
    let gw = gateway().await;
    let big = "x".repeat(1024 * 1024 + 1);
    let body =
        json!({"model": "cheap", "max_tokens": 5, "messages": [{"role": "user", "content": big}]});
    let resp = sdk_post(&gw, "/v1/messages").json(&body).send().await.unwrap();
    let (status, _, err) = anthropic_error(resp).await;
    assert_eq!(status, 413);
    assert_eq!(err["type"], "request_too_large");
}

#[tokio::test]
async fn unknown_messages_routes_and_methods_answer_in_anthropic_shape() {
    let gw = gateway().await;
    let resp = sdk_post(&gw, "/v1/messages/unknown").json(&json!({})).send().await.unwrap();
    let (status, _, err) = anthropic_error(resp).await;
    assert_eq!(status, 404);
    assert_eq!(err["type"], "not_found_error");
    assert!(err["message"].as_str().unwrap().contains("POST /v1/messages"), "{err}");

    let resp = reqwest::Client::new()
        .get(format!("{}/v1/messages", gw.url()))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    let (status, _, err) = anthropic_error(resp).await;
    assert_eq!(status, 405);
    assert_eq!(err["type"], "invalid_request_error");
}
