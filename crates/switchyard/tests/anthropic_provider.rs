//! The Anthropic provider end to end: an OpenAI client → an in-process gateway (port 0) →
//! the mock Anthropic API. Asserts what reaches the upstream (recorded fixtures under
//! `tests/fixtures/anthropic/`), what the client receives (JSON and SSE), each ANT error
//! class, stream faults, fallback before the first event, timeouts and transport failures.
//!
//! `SWITCHYARD_UPDATE_FIXTURES=1` rewrites a fixture's `upstream_body` with what was sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mock_upstream::{MockUpstream, Reply, Usage};
use serde_json::{Value, json};
use switchyard::canonical::{ChatRequest, ContentBlock, Dialect, Message, Role};
use switchyard::config::{self, MapEnv};
use switchyard::provider::{self, Upstreams};
use switchyard::server::{self, Handle, Runtime};
use tokio::sync::Notify;

const KEY: &str = "sk-ant-api03-test-0123456789abcdefghij";
const MASTER: &str = "sk-gw-master-0123456789";

/// One deployment of `balanced` at `api_base`, with extra litellm_params lines.
fn yaml(api_base: &str, params: &[&str]) -> String {
    let mut extra = String::new();
    for line in params {
        extra.push_str(&format!("      {line}\n"));
    }
    format!(
        "model_list:\n  - model_name: balanced\n    litellm_params:\n      model: anthropic/claude-sonnet-4-6\n      api_key: os.environ/ANTHROPIC_API_KEY\n      api_base: {api_base}\n{extra}general_settings:\n  master_key: {MASTER}\n"
    )
}

fn env() -> MapEnv {
    MapEnv::new([("ANTHROPIC_API_KEY", KEY)])
}

fn load(text: &str) -> config::Config {
    config::load_from_str(text, Path::new("anthropic.yaml"), &env())
        .unwrap_or_else(|e| panic!("{e:?}"))
}

async fn gateway(text: &str) -> Handle {
    server::start("127.0.0.1:0".parse().unwrap(), Runtime::new(load(text))).await.unwrap()
}

async fn setup(params: &[&str]) -> (MockUpstream, Handle) {
    let mock = MockUpstream::builder().api_key(KEY).start().await;
    let gw = gateway(&yaml(&mock.url(), params)).await;
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

fn say(stream: bool) -> Value {
    json!({"model": "balanced", "stream": stream, "messages": [{"role": "user", "content": "Say: WORKS"}]})
}

/// The `data:` payloads of an SSE body, JSON with `created` zeroed, `[DONE]` as a string.
fn sse(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|frame| frame.strip_prefix("data: "))
        .map(|data| match serde_json::from_str::<Value>(data) {
            Ok(mut v) => {
                if v.get("created").is_some() {
                    v["created"] = json!(0);
                }
                v
            }
            Err(_) => Value::String(data.to_owned()),
        })
        .collect()
}

async fn json_of(resp: reqwest::Response) -> Value {
    let mut v: Value = resp.json().await.unwrap();
    if v.get("created").is_some() {
        v["created"] = json!(0);
    }
    v
}

#[tokio::test]
async fn representative_openai_requests_reach_the_upstream_as_recorded() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/anthropic");
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() >= 4, "fixtures missing in {}", dir.display());
    for case in cases {
        let mut fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(&case).unwrap()).unwrap();
        let (mock, gw) = setup(&[]).await;
        let resp = chat(&gw, &fixture["openai_request"]).await;
        assert_eq!(resp.status(), 200, "{}: {}", case.display(), resp.text().await.unwrap());
        resp.bytes().await.unwrap();

        let received = mock.received();
        assert_eq!(received.len(), 1, "{}", case.display());
        let got = &received[0];
        assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/v1/messages"));
        assert_eq!(got.header("x-api-key"), Some(KEY));
        assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(got.header("content-type"), Some("application/json"));
        assert_eq!(got.header("anthropic-beta"), None, "the OpenAI surface sets no betas");
        assert_eq!(got.header("authorization"), None, "the master key must not travel upstream");
        if std::env::var_os("SWITCHYARD_UPDATE_FIXTURES").is_some() {
            fixture["upstream_body"] = got.body.clone();
            std::fs::write(&case, serde_json::to_string_pretty(&fixture).unwrap() + "\n").unwrap();
            continue;
        }
        assert_eq!(got.body, fixture["upstream_body"], "{}", case.display());
    }
}

fn request(text: &str, betas: &[&str]) -> ChatRequest {
    ChatRequest {
        model: "balanced".into(),
        messages: vec![Message { role: Role::User, content: vec![ContentBlock::text(text)] }],
        max_tokens: Some(32),
        betas: betas.iter().map(|b| (*b).to_owned()).collect(),
        dialect: Dialect::Anthropic,
        extra: json!({"service_tier": "auto", "thinking": {"type": "disabled"}})
            .as_object()
            .unwrap()
            .clone(),
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn betas_are_one_header_and_anthropic_extras_pass_through_and_tokens_are_counted() {
    let mock = MockUpstream::builder().api_key(KEY).start().await;
    let cfg = load(&yaml(&mock.url(), &[]));
    let deployment = cfg.groups[0].deployments[0].clone();
    let upstreams = Upstreams::with_env(&cfg, &MapEnv::default());
    let anthropic = provider::for_deployment(&deployment, &upstreams);

    let answer = anthropic
        .send(&request("Say: OK", &["prompt-caching-2024-07-31", "context-1m-2025-08-07"]))
        .await
        .unwrap();
    assert_eq!(answer.content, vec![ContentBlock::text("OK")]);
    let tokens = anthropic.count_tokens(&request("Say: OK", &[])).await.unwrap();
    assert!(tokens > 0);

    let received = mock.received();
    assert_eq!(
        received[0].header("anthropic-beta"),
        Some("prompt-caching-2024-07-31,context-1m-2025-08-07")
    );
    assert_eq!(received[0].body["service_tier"], "auto");
    assert_eq!(received[0].body["thinking"], json!({"type": "disabled"}));
    assert_eq!(received[1].path, "/v1/messages/count_tokens");
    assert_eq!(received[1].header("anthropic-beta"), None);
    let counted = received[1].body.as_object().unwrap();
    assert!(
        !counted.contains_key("max_tokens") && !counted.contains_key("service_tier"),
        "{counted:?}"
    );
    assert_eq!(counted["model"], "claude-sonnet-4-6");
}

fn cached_usage() -> Usage {
    Usage {
        input_tokens: 10,
        output_tokens: 5,
        cache_creation_input_tokens: 3,
        cache_read_input_tokens: 100,
        ..Usage::default()
    }
}

#[tokio::test]
async fn a_text_answer_with_cache_usage_is_the_exact_chat_completion() {
    let (mock, gw) = setup(&[]).await;
    mock.push(Reply::text("Hello world").usage(cached_usage()));
    let resp = chat(&gw, &say(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        json_of(resp).await,
        json!({"id": "msg_mock_000001", "object": "chat.completion", "created": 0, "model": "claude-sonnet-4-6",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world"},
                            "logprobs": null, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 113, "completion_tokens": 5, "total_tokens": 118,
                         "prompt_tokens_details": {"cached_tokens": 100},
                         "cache_creation_input_tokens": 3, "cache_read_input_tokens": 100}})
    );
}

#[tokio::test]
async fn a_tool_call_is_the_exact_chat_completion() {
    let (mock, gw) = setup(&[]).await;
    mock.push(Reply::tool_use("get_weather", json!({"city": "Paris"})).usage(cached_usage()));
    let v = json_of(chat(&gw, &say(false)).await).await;
    assert_eq!(
        v["choices"][0],
        json!({"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                  {"id": "toolu_mock_000001_0", "type": "function",
                   "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
               "logprobs": null, "finish_reason": "tool_calls"})
    );
}

#[tokio::test]
async fn a_streamed_text_answer_is_the_exact_chunk_sequence() {
    let (mock, gw) = setup(&[]).await;
    mock.push(Reply::text_chunks(["Hello", " world"]).usage(cached_usage()).with_ping());
    let mut body = say(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = chat(&gw, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "msg_mock_000001", "object": "chat.completion.chunk", "created": 0, "model": "claude-sonnet-4-6",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}], "usage": null})
    };
    assert_eq!(
        sse(&resp.text().await.unwrap()),
        vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Hello"}), Value::Null),
            chunk(json!({"content": " world"}), Value::Null),
            chunk(json!({}), json!("stop")),
            json!({"id": "msg_mock_000001", "object": "chat.completion.chunk", "created": 0, "model": "claude-sonnet-4-6",
                   "choices": [], "usage": {"prompt_tokens": 113, "completion_tokens": 5, "total_tokens": 118,
                   "prompt_tokens_details": {"cached_tokens": 100}, "cache_creation_input_tokens": 3, "cache_read_input_tokens": 100}}),
            json!("[DONE]"),
        ]
    );
}

#[tokio::test]
async fn a_streamed_tool_call_sends_id_and_name_then_argument_fragments() {
    let (mock, gw) = setup(&[]).await;
    mock.push(Reply::tool_use("get_weather", json!({"city": "Paris"})));
    let chunks = sse(&chat(&gw, &say(true)).await.text().await.unwrap());
    let calls: Vec<&Value> =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"].get("tool_calls")).collect();
    assert_eq!(
        calls[0],
        &json!([{"index": 0, "id": "toolu_mock_000001_0", "type": "function",
                                  "function": {"name": "get_weather", "arguments": ""}}])
    );
    let args: String =
        calls[1..].iter().map(|c| c[0]["function"]["arguments"].as_str().unwrap()).collect();
    assert_eq!(args, r#"{"city":"Paris"}"#);
    assert!(calls.len() >= 3, "arguments arrive in fragments: {calls:?}");
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn response_format_answers_arrive_as_json_text_with_finish_reason_stop() {
    let (mock, gw) = setup(&[]).await;
    let answer = json!({"colors": ["red", "blue"]});
    mock.push(Reply::tool_use("json_tool_call", answer.clone()));
    mock.push(Reply::tool_use("json_tool_call", answer.clone()));
    let mut body = say(false);
    body["response_format"] = json!({"type": "json_object"});
    let v = json_of(chat(&gw, &body).await).await;
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": answer.to_string()})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    body["stream"] = json!(true);
    let chunks = sse(&chat(&gw, &body).await.text().await.unwrap());
    let text: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), answer);
    assert!(chunks.iter().all(|c| c["choices"][0]["delta"].get("tool_calls").is_none()));
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        mock.received()[1].body["tool_choice"],
        json!({"type": "tool", "name": "json_tool_call"})
    );
}

/// `(status, error.code, retry-after, message)` of a non-streamed request answered by `reply`.
async fn failure(reply: Reply) -> (u16, String, Option<String>, String) {
    // No retries: this checks how one upstream answer is classified, not the router.
    let (mock, gw) = setup(&["num_retries: 0"]).await;
    mock.set_default(reply);
    let resp = chat(&gw, &say(false)).await;
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let v: Value = resp.json().await.unwrap();
    let code = v["error"]["code"].as_str().unwrap().to_owned();
    (status, code, retry, v["error"]["message"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn each_anthropic_error_class_reaches_the_client_with_its_status_and_code() {
    let cases = [
        (
            Reply::error(401, "authentication_error", "invalid x-api-key"),
            401,
            "credentials_invalid",
            "ANTHROPIC_API_KEY",
        ),
        (
            Reply::error(403, "permission_error", "not allowed"),
            403,
            "permission_denied",
            "cannot use model `claude-sonnet-4-6`",
        ),
        (
            Reply::error(404, "not_found_error", "model: claude-sonnet-4-6"),
            404,
            "model_not_found",
            "Close matches",
        ),
        (
            Reply::error(
                400,
                "invalid_request_error",
                "prompt is too long: 209303 tokens > 200000 maximum",
            ),
            400,
            "context_window",
            "209303",
        ),
        (
            Reply::error(
                400,
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API.",
            ),
            400,
            "billing",
            "Add credits",
        ),
        (
            Reply::error(429, "rate_limit_error", "slow down").retry_after(7),
            429,
            "rate_limited",
            "rate-limited",
        ),
        (Reply::error(529, "overloaded_error", "Overloaded"), 529, "overloaded", "Transient"),
        (
            Reply::error(500, "api_error", "Internal server error"),
            502,
            "upstream_unavailable",
            "Transient",
        ),
        (
            Reply::error(
                413,
                "request_too_large",
                "Request exceeds the maximum allowed number of bytes.",
            ),
            413,
            "payload_too_large",
            "32 MB",
        ),
        (
            Reply::error(400, "invalid_request_error", "temperature: range: 0..1"),
            400,
            "invalid_request",
            "temperature: range: 0..1",
        ),
    ];
    for (reply, status, code, says) in cases {
        let (got_status, got_code, retry, message) = failure(reply).await;
        assert_eq!((got_status, got_code.as_str()), (status, code), "{message}");
        assert!(message.contains(says), "{code}: `{says}` missing from: {message}");
        assert!(message.contains("balanced"), "{message}");
        assert!(!message.contains(KEY), "the key leaked: {message}");
        assert_eq!(retry.as_deref(), (code == "rate_limited").then_some("7"), "{code}");
    }
}

#[tokio::test]
async fn unsupported_openai_parameters_are_refused_by_name_or_dropped_with_drop_params() {
    let (mock, gw) = setup(&[]).await;
    let mut body = say(false);
    body["seed"] = json!(7);
    let resp = chat(&gw, &body).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("`seed`") && message.contains("drop_params: true"), "{message}");
    assert_eq!(mock.calls(), 0, "nothing is sent upstream");

    let (mock, gw) = setup(&["drop_params: true"]).await;
    assert_eq!(chat(&gw, &body).await.status(), 200);
    assert!(mock.received()[0].body.get("seed").is_none());
}

/// The client's SSE body, read to the end within 5 s.
async fn stream_text(gw: &Handle) -> String {
    let resp = chat(gw, &say(true)).await;
    assert_eq!(resp.status(), 200);
    tokio::time::timeout(Duration::from_secs(5), resp.text()).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_stream_that_drops_midway_ends_with_an_error_chunk_then_done() {
    let (mock, gw) = setup(&[]).await;
    mock.push(Reply::text("Hello big world").stream_drop_after(4));
    let chunks = sse(&stream_text(&gw).await);
    let n = chunks.len();
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hello");
    assert_eq!(chunks[n - 2]["error"]["code"], "upstream_unavailable", "{chunks:?}");
    let message = chunks[n - 2]["error"]["message"].as_str().unwrap();
    assert!(message.contains("broke off") && message.contains("retry"), "{message}");
    assert_eq!(chunks[n - 1], json!("[DONE]"));
}

#[tokio::test]
async fn an_error_event_after_the_first_event_ends_with_an_error_chunk_then_done() {
    let (mock, gw) = setup(&[]).await;
    mock.push(Reply::stream_error_after(3, "overloaded_error", "Overloaded"));
    let chunks = sse(&stream_text(&gw).await);
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["error"]["code"], "overloaded", "{chunks:?}");
    assert!(chunks[n - 2]["error"]["message"].as_str().unwrap().contains("Overloaded"));
    assert_eq!(chunks[n - 1], json!("[DONE]"));
}

/// `balanced` with a deployment at `first` (order 1), then one at `second` (order 2).
fn two_deployments(first: &str, second: &str) -> String {
    let entry = |base: &str, order: u32, id: &str| {
        format!(
            "  - model_name: balanced\n    litellm_params:\n      model: anthropic/claude-sonnet-4-6\n      api_key: os.environ/ANTHROPIC_API_KEY\n      api_base: {base}\n      order: {order}\n    model_info:\n      id: {id}\n"
        )
    };
    format!(
        "model_list:\n{}{}general_settings:\n  master_key: {MASTER}\n",
        entry(first, 1, "first"),
        entry(second, 2, "second")
    )
}

#[tokio::test]
async fn a_failure_before_the_first_event_falls_back_to_the_next_deployment() {
    for failing in [
        Reply::error(529, "overloaded_error", "Overloaded"),
        Reply::stream_error_after(0, "overloaded_error", "Overloaded"),
    ] {
        let first = MockUpstream::start().await;
        let second = MockUpstream::start().await;
        first.set_default(failing);
        let gw = gateway(&two_deployments(&first.url(), &second.url())).await;
        let resp = chat(&gw, &say(true)).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-litellm-model-id"], "second");
        let chunks = sse(&resp.text().await.unwrap());
        let text: String =
            chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "WORKS");
        assert_eq!((first.calls(), second.calls()), (1, 1));
    }
}

#[tokio::test]
async fn the_first_event_reaches_the_client_while_the_upstream_holds_back_the_rest() {
    let (mock, gw) = setup(&[]).await;
    let release = Arc::new(Notify::new());
    // message_start, content_block_start, the first text delta; then the mock waits.
    mock.push(Reply::text_chunks(["Hello", " world"]).hold_after(3, release.clone()));
    let mut resp = chat(&gw, &say(true)).await;
    let mut seen = String::new();
    let early = tokio::time::timeout(Duration::from_secs(5), async {
        while !seen.contains("\"content\":\"Hello\"") {
            let chunk = resp.chunk().await.unwrap().expect("the stream ended early");
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await;
    assert!(early.is_ok(), "the first text did not arrive while the upstream held back: {seen}");
    assert!(!seen.contains(" world") && !seen.contains("[DONE]"), "{seen}");
    release.notify_one();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(seen.contains(" world") && seen.ends_with("data: [DONE]\n\n"), "{seen}");
}

#[tokio::test]
async fn timeouts_fire_at_their_configured_values() {
    // A whole request slower than `timeout` (not retried, to see the timeout itself).
    let (mock, gw) = setup(&["timeout: 0.2", "num_retries: 0"]).await;
    mock.push(Reply::text("late").delay(Duration::from_millis(700)));
    let started = std::time::Instant::now();
    let resp = chat(&gw, &say(false)).await;
    assert!(started.elapsed() < Duration::from_millis(600), "{:?}", started.elapsed());
    assert_eq!(resp.status(), 504);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "timeout");
    assert!(v["error"]["message"].as_str().unwrap().contains("0.2 s"), "{v}");

    // No first event within `stream_timeout`: an ordinary failed attempt (a 504, no stream).
    let (mock, gw) = setup(&["stream_timeout: 0.2", "num_retries: 0"]).await;
    mock.push(Reply::text("late").delay(Duration::from_millis(700)));
    let resp = chat(&gw, &say(true)).await;
    assert_eq!(resp.status(), 504);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("stream_timeout"), "{v}");

    // Silence mid-stream longer than `stream_timeout`: an error chunk, then [DONE].
    let (mock, gw) = setup(&["stream_timeout: 0.2"]).await;
    mock.push(Reply::text("slow answer").event_gap(Duration::from_millis(500)));
    let chunks = sse(&stream_text(&gw).await);
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["error"]["code"], "timeout", "{chunks:?}");
    assert_eq!(chunks[n - 1], json!("[DONE]"));
}

#[tokio::test]
async fn a_deployment_without_a_key_fails_without_calling_the_upstream() {
    let mock = MockUpstream::start().await;
    let text = yaml(&mock.url(), &[]).replace("      api_key: os.environ/ANTHROPIC_API_KEY\n", "");
    let cfg = config::load_from_str(&text, Path::new("a.yaml"), &MapEnv::default()).unwrap();
    let gw = server::start("127.0.0.1:0".parse().unwrap(), Runtime::new(cfg)).await.unwrap();
    let resp = chat(&gw, &say(false)).await;
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "credentials_missing");
    assert!(v["error"]["message"].as_str().unwrap().contains("ANTHROPIC_API_KEY"), "{v}");
    assert_eq!(mock.calls(), 0);
}

#[tokio::test]
async fn connection_and_tls_failures_name_the_host_and_the_fix() {
    // Nothing listens on port 1: on loopback that is a server that is down.
    let gw = gateway(&yaml("http://127.0.0.1:1", &[])).await;
    let v: Value = chat(&gw, &say(false)).await.json().await.unwrap();
    assert_eq!(v["error"]["code"], "server_down", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("127.0.0.1:1") && message.contains("Start the server"), "{message}");

    // TLS spoken to a plain-HTTP server fails the handshake.
    let mock = MockUpstream::start().await;
    let gw = gateway(&yaml(&mock.url().replace("http://", "https://"), &[])).await;
    let resp = chat(&gw, &say(false)).await;
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "tls", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("ssl_verify: /path/to/ca.pem") && message.contains("last resort"),
        "{message}"
    );
}

/// A hand-rolled upstream: answers one request with the head of an SSE stream, then sends a
/// ping every 50 ms; resolves once the gateway closed the connection.
async fn upstream_that_reports_its_close(listener: tokio::net::TcpListener) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&request).contains("\"messages\"") {
        let n = sock.read(&mut buf).await.unwrap();
        request.extend_from_slice(&buf[..n]);
    }
    let chunk = |event: &str, data: Value| {
        let frame = format!("event: {event}\ndata: {data}\n\n");
        format!("{:x}\r\n{frame}\r\n", frame.len())
    };
    let mut out =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_owned();
    out += &chunk(
        "message_start",
        json!({"type": "message_start", "message": {"id": "m", "model": "c", "usage": {}}}),
    );
    out += &chunk(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    out += &chunk(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
    );
    sock.write_all(out.as_bytes()).await.unwrap();
    loop {
        tokio::select! {
            read = sock.read(&mut buf) => if matches!(read, Ok(0) | Err(_)) { return },
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                let ping = chunk("ping", json!({"type": "ping"}));
                if sock.write_all(ping.as_bytes()).await.is_err() { return }
            }
        }
    }
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_request() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let closed = tokio::spawn(upstream_that_reports_its_close(listener));
    let gw = gateway(&yaml(&base, &[])).await;
    let mut resp = chat(&gw, &say(true)).await;
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(std::str::from_utf8(&first).unwrap().contains("chat.completion.chunk"));
    drop(resp);
    let outcome = tokio::time::timeout(Duration::from_secs(3), closed).await;
    assert!(outcome.is_ok(), "the gateway kept the upstream stream open after the client left");
}
