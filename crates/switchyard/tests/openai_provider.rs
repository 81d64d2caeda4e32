//! The OpenAI-compatible provider end to end: OpenAI and Anthropic clients → an in-process
//! gateway (port 0) → the mock's chat completions emulation. Asserts the exact upstream body
//! (pass-through from the OpenAI surface, translation from the Anthropic one), what clients
//! receive for text, tool and usage streams, each error class, and the `free → cheap`
//! fallback when the local server is down or slow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use mock_upstream::{MockUpstream, Reply, Usage};
use serde_json::{Value, json};
use switchyard::config::{self, MapEnv};
use switchyard::server::{self, Handle, Runtime};

const KEY: &str = "sk-proj-test-0123456789abcdefghijklmn";
const MASTER: &str = "sk-gw-master-0123456789";

/// One `free` deployment of `model` at `api_base`, with extra litellm_params lines, and a
/// `cheap` alias answered by a mock response.
fn yaml(model: &str, api_base: &str, params: &[&str]) -> String {
    let mut extra = String::new();
    for line in params {
        extra.push_str(&format!("      {line}\n"));
    }
    format!(
        "model_list:\n  - model_name: free\n    litellm_params:\n      model: {model}\n      api_base: {api_base}\n{extra}  - model_name: cheap\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_key: sk-ant-unused\n      mock_response: FROM CHEAP\nrouter_settings:\n  fallbacks: [{{\"free\": [\"cheap\"]}}]\ngeneral_settings:\n  master_key: {MASTER}\n"
    )
}

async fn gateway(text: &str) -> Handle {
    let cfg = config::load_from_str(text, Path::new("openai.yaml"), &MapEnv::default())
        .unwrap_or_else(|e| panic!("{e:?}"));
    server::start("127.0.0.1:0".parse().unwrap(), Runtime::new(cfg)).await.unwrap()
}

/// A mock that takes KEY, and a gateway with `openai/gpt-4o` at it.
async fn setup(params: &[&str]) -> (MockUpstream, Handle) {
    let mock = MockUpstream::builder().api_key(KEY).start().await;
    let mut all = vec![format!("api_key: {KEY}")];
    all.extend(params.iter().map(|p| (*p).to_owned()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let gw = gateway(&yaml("openai/gpt-4o", &format!("{}/v1", mock.url()), &all)).await;
    (mock, gw)
}

async fn chat(gw: &Handle, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(MASTER)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn messages(gw: &Handle, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/messages", gw.url()))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The `data:` payloads of an SSE body as JSON (`[DONE]` as a string).
fn sse(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|frame| frame.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned())))
        .collect()
}

#[tokio::test]
async fn an_openai_request_passes_through_with_only_the_model_replaced() {
    let (mock, gw) = setup(&[]).await;
    let request = json!({
        "model": "free",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"x\":1}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
        ],
        "tools": [{"type": "function", "function": {"name": "look", "description": "Look",
                   "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}],
        "tool_choice": "auto",
        "max_completion_tokens": 50,
        "temperature": 0.2,
        "stop": ["END"],
        "seed": 7,
        "logprobs": false,
        "frobnicate": {"keep": true},
        "response_format": {"type": "json_object"},
        "user": "u-1"
    });
    let resp = chat(&gw, &request).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let got = &mock.received()[0];
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(got.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    // Only `model` differs, and the token limit is named as compatible servers all take it
    // (`max_completion_tokens` goes to api.openai.com itself).
    let mut expected = request.clone();
    expected["model"] = json!("gpt-4o");
    let limit = expected.as_object_mut().unwrap().remove("max_completion_tokens").unwrap();
    expected["max_tokens"] = limit;
    assert_eq!(got.body, expected);
}

#[tokio::test]
async fn an_anthropic_request_is_translated() {
    let (mock, gw) = setup(&[]).await;
    let request = json!({
        "model": "free",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                {"type": "text", "text": "And this?"}
            ]}
        ],
        "tools": [{"name": "get_weather", "description": "Weather",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "stop_sequences": ["STOP"],
        "temperature": 0.5,
        "metadata": {"user_id": "user-7"},
        "stream": false
    });
    let resp = messages(&gw, &request).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let got = &mock.received()[0];
    assert_eq!(
        got.body,
        json!({
            "model": "gpt-4o",
            "max_tokens": 100,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [{"id": "toolu_1",
                  "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                    {"type": "text", "text": "And this?"}
                ]}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                       "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "stop": ["STOP"],
            "temperature": 0.5,
            "user": "user-7"
        })
    );
}

#[tokio::test]
async fn anthropic_only_parameters_are_refused_by_name_or_dropped() {
    let (_mock, gw) = setup(&[]).await;
    let body = json!({"model": "free", "max_tokens": 10, "container": "c1",
                      "messages": [{"role": "user", "content": "Hi"}]});
    let resp = messages(&gw, &body).await;
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("`container`") && text.contains("drop_params"), "{text}");
    let (mock, gw) = setup(&["drop_params: true"]).await;
    assert_eq!(messages(&gw, &body).await.status(), 200);
    assert!(mock.received()[0].body.get("container").is_none());
}

fn usage() -> Usage {
    Usage { input_tokens: 10, output_tokens: 4, cache_read_input_tokens: 6, ..Usage::default() }
}

#[tokio::test]
async fn openai_clients_get_text_tool_and_usage_streams() {
    let (mock, gw) = setup(&[]).await;
    mock.push(Reply::text("Hello big world").usage(usage()));
    let body = json!({"model": "free", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "Hi"}]});
    let resp = chat(&gw, &body).await;
    assert_eq!(resp.status(), 200);
    let chunks = sse(&resp.text().await.unwrap());
    let sent = &mock.received()[0].body;
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    let text: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Hello big world");
    let n = chunks.len();
    assert_eq!(chunks[n - 1], json!("[DONE]"));
    assert_eq!(chunks[n - 2]["usage"]["prompt_tokens"], 16, "{chunks:?}");
    assert_eq!(chunks[n - 2]["usage"]["completion_tokens"], 4);
    assert_eq!(chunks[n - 2]["usage"]["prompt_tokens_details"]["cached_tokens"], 6);

    // Without include_usage from the client, the upstream is still asked for usage.
    mock.push(Reply::text("Sure.").then_tool_use("get_weather", json!({"city": "Paris"})));
    let body = json!({"model": "free", "stream": true, "messages": [{"role": "user", "content": "Hi"}],
                      "tools": [{"type": "function", "function": {"name": "get_weather"}}]});
    let chunks = sse(&chat(&gw, &body).await.text().await.unwrap());
    assert_eq!(mock.received()[1].body["stream_options"], json!({"include_usage": true}));
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, r#"{"city":"Paris"}"#);
    let finish: Vec<&str> =
        chunks.iter().filter_map(|c| c["choices"][0]["finish_reason"].as_str()).collect();
    assert_eq!(finish, ["tool_calls"]);
}

#[tokio::test]
async fn anthropic_clients_get_text_tool_and_usage_streams() {
    let (mock, gw) = setup(&[]).await;
    mock.push(
        Reply::text("Let me look.")
            .then_tool_use("get_weather", json!({"city": "Paris"}))
            .usage(usage()),
    );
    let body = json!({"model": "free", "max_tokens": 50, "stream": true,
                      "messages": [{"role": "user", "content": "Weather?"}],
                      "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]});
    let resp = messages(&gw, &body).await;
    assert_eq!(resp.status(), 200);
    let events = sse(&resp.text().await.unwrap());
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types.first(), Some(&"message_start"));
    assert_eq!(types.last(), Some(&"message_stop"));
    let text: String = events.iter().filter_map(|e| e["delta"]["text"].as_str()).collect();
    assert_eq!(text, "Let me look.");
    let tool = events.iter().find(|e| e["content_block"]["type"] == "tool_use").unwrap();
    assert_eq!(tool["content_block"]["name"], "get_weather");
    let args: String = events.iter().filter_map(|e| e["delta"]["partial_json"].as_str()).collect();
    assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({"city": "Paris"}));
    let delta = events.iter().find(|e| e["type"] == "message_delta").unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 4);
    assert_eq!(delta["usage"]["cache_read_input_tokens"], 6);

    // Non-streamed: the same translation as one message.
    mock.push(Reply::text("Plain answer").usage(usage()));
    let body =
        json!({"model": "free", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]});
    let v: Value = messages(&gw, &body).await.json().await.unwrap();
    assert_eq!(v["content"], json!([{"type": "text", "text": "Plain answer"}]));
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["input_tokens"], 10);
}

/// `(status, error.code, retry-after, message)` of a non-streamed request answered by `reply`.
async fn failure(reply: Reply) -> (u16, String, Option<String>, String) {
    let (mock, gw) = setup(&["num_retries: 0"]).await;
    mock.set_default(reply);
    let body = json!({"model": "free", "messages": [{"role": "user", "content": "Hi"}],
                      "fallbacks": []});
    let resp = chat(&gw, &body).await;
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let v: Value = resp.json().await.unwrap();
    let code = v["error"]["code"].as_str().unwrap_or_default().to_owned();
    (status, code, retry, v["error"]["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn each_openai_error_class_reaches_the_client() {
    let cases = [
        (
            Reply::error(401, "invalid_api_key", "Incorrect API key provided"),
            401,
            "credentials_invalid",
            "did not accept",
        ),
        (
            Reply::error(403, "invalid_request_error", "not allowed to sample"),
            403,
            "permission_denied",
            "gpt-4o",
        ),
        (
            Reply::error(404, "model_not_found", "The model `gpt-4o` does not exist"),
            404,
            "model_not_found",
            "gpt-4o",
        ),
        (
            Reply::error(429, "rate_limit_exceeded", "Rate limit reached").retry_after(7),
            429,
            "rate_limited",
            "rate-limited",
        ),
        (
            Reply::error(
                400,
                "context_length_exceeded",
                "This model's maximum context length is 128000 tokens",
            ),
            400,
            "context_window",
            "context window",
        ),
        (
            Reply::error(400, "content_policy_violation", "rejected by our safety system"),
            400,
            "content_policy",
            "content policy",
        ),
        (
            Reply::error(400, "invalid_request_error", "Invalid 'messages[0]'"),
            400,
            "invalid_request",
            "Invalid 'messages[0]'",
        ),
        (
            Reply::error(500, "server_error", "The server had an error"),
            502,
            "upstream_unavailable",
            "transient",
        ),
        (
            Reply::error(503, "server_error", "The engine is currently overloaded"),
            529,
            "overloaded",
            "transient",
        ),
    ];
    for (reply, status, code, words) in cases {
        let (got_status, got_code, retry, message) = failure(reply).await;
        assert_eq!((got_status, got_code.as_str()), (status, code), "{message}");
        assert!(message.contains(words), "{words} not in: {message}");
        assert!(message.contains("free") && message.contains("openai/gpt-4o"), "{message}");
        assert!(!message.contains(KEY), "{message}");
        if code == "rate_limited" {
            assert_eq!(retry.as_deref(), Some("7"));
        }
    }
}

#[tokio::test]
async fn a_wrong_key_names_its_source_and_prefix() {
    let mock = MockUpstream::builder().api_key(KEY).start().await;
    let gw = gateway(&yaml(
        "openai/gpt-4o",
        &mock.url(),
        &["api_key: sk-proj-wrong-0123456789abcdefghij", "num_retries: 0"],
    ))
    .await;
    let body =
        json!({"model": "free", "messages": [{"role": "user", "content": "Hi"}], "fallbacks": []});
    let resp = chat(&gw, &body).await;
    assert_eq!(resp.status(), 401);
    let message =
        resp.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("sk-proj-…") && message.contains("openai.yaml"), "{message}");
    assert!(!message.contains("wrong-0123456789"), "{message}");
}

#[tokio::test]
async fn an_ollama_model_that_is_not_pulled_says_how_to_pull_it() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::error(
        404,
        "api_error",
        "model \"qwen3-coder:30b\" not found, try pulling it first",
    ));
    let gw = gateway(&yaml("ollama/qwen3-coder:30b", &mock.url(), &["num_retries: 0"])).await;
    let body =
        json!({"model": "free", "messages": [{"role": "user", "content": "Hi"}], "fallbacks": []});
    let resp = chat(&gw, &body).await;
    assert_eq!(resp.status(), 404);
    let text = resp.text().await.unwrap();
    assert!(text.contains("ollama pull qwen3-coder:30b"), "{text}");
    // No key configured: none is sent to a local server.
    assert_eq!(mock.received()[0].header("authorization"), None);
    assert_eq!(mock.received()[0].path, "/v1/chat/completions");
}

/// A loopback port nothing listens on.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// Ollama is not running: with the default retries, the refused connection is tried once,
/// the deployment cools, and `cheap` serves at once; while `free` cools, `cheap` serves
/// without `free` being tried or waited for.
#[tokio::test]
async fn free_falls_back_to_cheap_when_the_local_server_is_down() {
    let base = closed_port().await;
    let gw = gateway(&yaml("ollama/qwen3-coder:30b", &base, &[])).await;
    // Without the fallback: NET-01 asking whether Ollama runs, after one attempt.
    let body =
        json!({"model": "free", "messages": [{"role": "user", "content": "Hi"}], "fallbacks": []});
    let resp = chat(&gw, &body).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["x-switchyard-error-class"], "server_down");
    let text = resp.text().await.unwrap();
    assert!(text.contains("NET-01") && text.contains("Nothing listens there."), "{text}");
    assert!(text.contains("Is Ollama running at") && text.contains("ollama serve"), "{text}");
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["error"]["attempts"].as_array().map(Vec::len), Some(1), "{text}");

    let gw = gateway(&yaml("ollama/qwen3-coder:30b", &base, &[])).await;
    for (i, stream) in [false, true, false].into_iter().enumerate() {
        let body = json!({"model": "free", "stream": stream,
                          "messages": [{"role": "user", "content": "Hi"}]});
        let resp = chat(&gw, &body).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-litellm-model-group"], "cheap");
        assert_eq!(resp.headers()["x-switchyard-retries"], "0");
        let attempts = resp.headers()["x-switchyard-attempts"].to_str().unwrap().to_owned();
        let tried_free = attempts.matches("=server_down").count();
        assert_eq!(tried_free, usize::from(i == 0), "request {i}: {attempts}");
        assert!(attempts.ends_with("=ok"), "{attempts}");
        assert!(resp.text().await.unwrap().contains("FROM"));
    }
}

#[tokio::test]
async fn free_falls_back_to_cheap_when_the_local_server_is_slow() {
    let mock = MockUpstream::start().await;
    mock.set_default(Reply::text("late").delay(Duration::from_millis(800)));
    let gw = gateway(&yaml(
        "ollama/qwen3-coder:30b",
        &mock.url(),
        &["timeout: 0.2", "stream_timeout: 0.2", "num_retries: 0"],
    ))
    .await;
    for stream in [false, true] {
        let started = std::time::Instant::now();
        let body = json!({"model": "free", "stream": stream,
                          "messages": [{"role": "user", "content": "Hi"}]});
        let resp = chat(&gw, &body).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-litellm-model-group"], "cheap");
        assert!(resp.text().await.unwrap().contains("FROM"));
        assert!(started.elapsed() < Duration::from_millis(700), "{:?}", started.elapsed());
    }
}

#[tokio::test]
async fn a_stream_that_breaks_after_the_first_chunk_ends_with_an_error() {
    let (mock, gw) = setup(&[]).await;
    mock.push(Reply::text("one two three four").stream_drop_after(2));
    let body =
        json!({"model": "free", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let chunks = sse(&chat(&gw, &body).await.text().await.unwrap());
    let n = chunks.len();
    assert!(chunks[n - 2].get("error").is_some(), "{chunks:?}");
    assert_eq!(chunks[n - 1], json!("[DONE]"));
}
