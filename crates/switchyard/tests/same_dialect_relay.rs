//! The same-dialect fast path (`fastpath`): `/v1/messages` to an Anthropic deployment and
//! `/v1/chat/completions` to an OpenAI-compatible one relay the client's body and the
//! upstream's answer. Each test runs the same requests through
//! two gateways on two identical mocks — one relaying, one with
//! `disable_same_dialect_relay: true`, which translates as every other request is — and
//! asserts the clients see the same thing — JSON answers, streams event by event, errors
//! after the first event, the same failover before it — and the same headers.
//!
//! What may differ is the order of keys inside a JSON object: the relay passes on the
//! upstream's, the translation writes the Messages API's own order. The mock writes its keys
//! sorted, so each JSON body and SSE `data:` is compared as a JSON value; the API itself
//! writes the order the translation writes, so against it the bytes are the same. And what
//! the canonical types do not hold reaches a relayed client only: here, the empty
//! `signature` a thinking block starts with (the translation leaves an empty one out).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod support;

use std::path::Path;
use std::time::Duration;

use ledger_support::{eventually, settings, sqlite_pool, sqlite_rows};
use mock_upstream::{MockUpstream, Reply, Usage};
use serde_json::{Value, json};
use switchyard::config::{self, MapEnv};
use switchyard::ledger::Ledger;
use switchyard::server::{self, Handle, Runtime};

const KEY: &str = "sk-ant-api03-test-0123456789abcdefghij";
const MASTER: &str = "sk-gw-master-0123456789";

fn yaml(bases: &[&str], relay: bool, extra: &str) -> String {
    let mut text = String::from("model_list:\n");
    for (i, base) in bases.iter().enumerate() {
        text.push_str(&format!(
            "  - model_name: balanced\n    litellm_params:\n      model: anthropic/claude-sonnet-4-6\n      api_key: os.environ/ANTHROPIC_API_KEY\n      api_base: {base}\n      order: {}\n    model_info:\n      id: d{i}\n",
            i + 1
        ));
    }
    text.push_str(&format!(
        "general_settings:\n  master_key: {MASTER}\n  disable_same_dialect_relay: {}\n{extra}",
        !relay
    ));
    text
}

async fn gateway(text: &str) -> Handle {
    let env = MapEnv::new([("ANTHROPIC_API_KEY", KEY)]);
    let cfg = config::load_from_str(text, Path::new("relay.yaml"), &env)
        .unwrap_or_else(|e| panic!("{e:?}"));
    server::start("127.0.0.1:0".parse().unwrap(), Runtime::new(cfg)).await.unwrap()
}

/// A mock and a gateway in front of it, relaying or translating.
async fn setup(relay: bool) -> (MockUpstream, Handle) {
    let mock = MockUpstream::builder().api_key(KEY).start().await;
    let gw = gateway(&yaml(&[&mock.url()], relay, "")).await;
    (mock, gw)
}

/// What a client sees: status, the headers that describe the answer, the body.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    content_type: String,
    cost: Option<String>,
    model_id: Option<String>,
    /// JSON, or per SSE frame its lines with `data:` parsed.
    body: Vec<Value>,
}

async fn messages(gw: &Handle, mock: &MockUpstream, body: &Value) -> Seen {
    let request = reqwest::Client::new()
        .post(format!("{}/v1/messages", gw.url()))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01");
    seen(request.json(body), mock).await
}

/// What the client sees of the answer to `request`.
async fn seen(request: reqwest::RequestBuilder, mock: &MockUpstream) -> Seen {
    let resp = request.send().await.unwrap();
    let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (status, content_type) = (resp.status().as_u16(), header("content-type").unwrap());
    let (cost, model_id) = (header("x-litellm-response-cost"), header("x-litellm-model-id"));
    let body = tokio::time::timeout(Duration::from_secs(5), resp.text()).await.unwrap().unwrap();
    // Transport errors name the upstream's address; each gateway has its own mock.
    let body = body.replace(&mock.addr().to_string(), "MOCK");
    Seen { status, content_type, cost, model_id, body: parsed(&body) }
}

fn parsed(body: &str) -> Vec<Value> {
    if let Ok(mut v) = serde_json::from_str::<Value>(body) {
        // Request ids differ between two requests, whichever path served them.
        if v.get("request_id").is_some() {
            v["request_id"] = json!("-");
        }
        return vec![v];
    }
    assert!(body.ends_with("\n\n"), "a stream ends on a frame boundary: {body:?}");
    body.trim_end()
        .split("\n\n")
        .map(|frame| {
            let lines = frame.lines().map(|line| match line.strip_prefix("data: ") {
                Some(data) => serde_json::from_str(data).unwrap_or_else(|_| json!(data)),
                None => json!(line),
            });
            Value::Array(lines.collect())
        })
        .collect()
}

/// Usage given explicitly: the mock otherwise estimates input tokens from the body's size,
/// and a relayed body is not the size of a re-encoded one.
fn usage() -> Usage {
    Usage {
        input_tokens: 10,
        output_tokens: 5,
        cache_creation_input_tokens: 3,
        cache_read_input_tokens: 100,
        cache_creation_1h_input_tokens: 1,
    }
}

fn ask(stream: bool) -> Value {
    json!({"model": "balanced", "max_tokens": 256, "stream": stream,
           "messages": [{"role": "user", "content": "Say: WORKS"}]})
}

/// The client's view of `body` answered by `reply`, relayed and translated.
async fn both(reply: impl Fn() -> Reply, body: &Value) -> (Seen, Seen, Vec<Value>) {
    let (relay_mock, relay) = setup(true).await;
    let (canon_mock, canon) = setup(false).await;
    relay_mock.push(reply());
    canon_mock.push(reply());
    let mut relayed = messages(&relay, &relay_mock, body).await;
    let translated = messages(&canon, &canon_mock, body).await;
    for frame in &mut relayed.body {
        if let Some(block) = frame.pointer_mut("/1/content_block").and_then(Value::as_object_mut)
            && block.get("signature") == Some(&json!(""))
        {
            block.remove("signature");
        }
    }
    let sent = relay_mock.received().into_iter().map(|r| r.body).collect();
    (relayed, translated, sent)
}

/// A scripted answer, named for the assertion that fails.
type Case = (&'static str, Box<dyn Fn() -> Reply>);

fn replies() -> Vec<Case> {
    vec![
        ("text", Box::new(|| Reply::text("Hello world").usage(usage()))),
        (
            "tool use",
            Box::new(|| Reply::tool_use("get_weather", json!({"city": "Paris"})).usage(usage())),
        ),
        (
            "thinking, text, tool",
            Box::new(|| {
                Reply::text("Let me look.")
                    .with_thinking("The user wants weather.")
                    .then_tool_use("look", json!({"q": "x"}))
                    .usage(usage())
            }),
        ),
        (
            "max tokens",
            Box::new(|| Reply::text_chunks(["Hel", "lo"]).stop_reason("max_tokens").usage(usage())),
        ),
        ("pings", Box::new(|| Reply::text("Hi").with_ping().usage(usage()))),
    ]
}

#[tokio::test]
async fn json_answers_are_the_same_relayed_or_translated() {
    for (name, reply) in replies() {
        let (relayed, translated, sent) = both(&reply, &ask(false)).await;
        assert_eq!(relayed.status, 200, "{name}: {relayed:?}");
        assert_eq!(relayed, translated, "{name}");
        assert_eq!(sent[0]["model"], "claude-sonnet-4-6", "{name}");
    }
}

#[tokio::test]
async fn streams_are_the_same_relayed_or_translated() {
    for (name, reply) in replies() {
        let (relayed, translated, _) = both(&reply, &ask(true)).await;
        assert_eq!(relayed.status, 200, "{name}: {relayed:?}");
        assert_eq!(
            relayed.body.last(),
            Some(&json!(["event: message_stop", {"type": "message_stop"}]))
        );
        assert_eq!(relayed, translated, "{name}");
    }
}

#[tokio::test]
async fn failures_after_the_first_event_end_both_streams_alike() {
    let cases: Vec<Case> = vec![
        (
            "error event",
            Box::new(|| {
                Reply::stream_error_after(3, "overloaded_error", "Overloaded").usage(usage())
            }),
        ),
        (
            "dropped",
            Box::new(|| Reply::text("Hello big world").stream_drop_after(4).usage(usage())),
        ),
    ];
    for (name, reply) in cases {
        let (relayed, translated, _) = both(&reply, &ask(true)).await;
        let last = relayed.body.last().unwrap();
        assert_eq!(last[0], "event: error", "{name}: {relayed:?}");
        assert_eq!(relayed, translated, "{name}");
    }
}

#[tokio::test]
async fn upstream_errors_reach_the_client_alike() {
    for stream in [false, true] {
        let reply = || Reply::error(400, "invalid_request_error", "prompt is too long");
        let (relayed, translated, _) = both(reply, &ask(stream)).await;
        assert_eq!(relayed.status, 400, "{relayed:?}");
        assert_eq!(relayed, translated);
    }
}

#[tokio::test]
async fn a_failure_before_the_first_event_falls_back_alike() {
    for failing in [
        Reply::error(529, "overloaded_error", "Overloaded"),
        Reply::stream_error_after(0, "overloaded_error", "Overloaded"),
    ] {
        let mut seen = Vec::new();
        for relay in [true, false] {
            let first = MockUpstream::builder().api_key(KEY).start().await;
            let second = MockUpstream::builder().api_key(KEY).start().await;
            first.set_default(failing.clone());
            second.set_default(Reply::text("WORKS").usage(usage()));
            let gw = gateway(&yaml(&[&first.url(), &second.url()], relay, "")).await;
            let answer = messages(&gw, &first, &ask(true)).await;
            assert_eq!(answer.model_id.as_deref(), Some("d1"), "{answer:?}");
            assert_eq!((first.calls(), second.calls()), (1, 1));
            seen.push(answer);
        }
        assert_eq!(seen[0], seen[1]);
    }
}

#[tokio::test]
async fn the_upstream_gets_the_clients_body_without_the_gateways_parameters() {
    let body = json!({
        "model": "balanced", "max_tokens": 64,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi", "citations": null}]}],
        "metadata": {"user_id": "u-1", "tags": ["team-a"]},
        "tags": ["x"], "fallbacks": ["other"], "num_retries": 1,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "stop_sequences": [], "tool_choice": {"type": "auto"}, "temperature": null,
        "anthropic_version": "bedrock-2023-05-31",
    });
    let (relayed, translated, sent) = both(|| Reply::text("ok").usage(usage()), &body).await;
    assert_eq!(relayed, translated);
    assert_eq!(
        sent[0],
        json!({
            "model": "claude-sonnet-4-6", "max_tokens": 64,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi", "citations": null}]}],
            "metadata": {"user_id": "u-1"},
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        })
    );
}

/// `free`: an OpenAI-compatible deployment at `mock`, relaying or translating.
async fn openai_gateway(mock: &MockUpstream, relay: bool) -> Handle {
    openai_gateway_at(&[&mock.url()], relay).await
}

/// `free`: an OpenAI-compatible deployment `d{i}` at each of `bases`, tried in that order.
async fn openai_gateway_at(bases: &[&str], relay: bool) -> Handle {
    let mut text = String::from("model_list:\n");
    for (i, base) in bases.iter().enumerate() {
        text.push_str(&format!(
            "  - model_name: free\n    litellm_params:\n      model: openai/gpt-4o\n      api_key: sk-openai-test\n      api_base: {base}/v1\n      order: {}\n    model_info:\n      id: d{i}\n",
            i + 1
        ));
    }
    text.push_str(&format!(
        "general_settings:\n  master_key: {MASTER}\n  disable_same_dialect_relay: {}\n",
        !relay
    ));
    gateway(&text).await
}

/// The chat completion `body` gets, relayed and translated, and what the relaying gateway's
/// upstream received. Left out of both answers, as they legitimately differ: `created` (the
/// server's time, or the gateway's), `system_fingerprint` and a message's `"refusal": null`
/// (relayed only), and `usage` beyond its token counts (relayed: the server's details;
/// translated: LiteLLM's shape).
async fn chat_both(reply: impl Fn() -> Reply, body: &Value) -> (Value, Value, Value) {
    let (mut relayed, mut translated, sent) = chat_answers(reply, body).await;
    for answer in [&mut relayed, &mut translated] {
        let o = answer.as_object_mut().unwrap();
        o.remove("created");
        o.remove("system_fingerprint");
        if let Some(message) = o["choices"][0]["message"].as_object_mut()
            && message.get("refusal") == Some(&Value::Null)
        {
            message.remove("refusal");
        }
        let u = &o["usage"];
        let counts = json!({
            "prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
            "total_tokens": u["total_tokens"],
            "cached_tokens": u["prompt_tokens_details"]["cached_tokens"],
        });
        o.insert("usage".into(), counts);
    }
    (relayed, translated, sent)
}

/// As [`chat_both`], the answers whole.
async fn chat_answers(reply: impl Fn() -> Reply, body: &Value) -> (Value, Value, Value) {
    let mut answers = Vec::new();
    let mut sent = Value::Null;
    for relay in [true, false] {
        let mock = MockUpstream::start().await;
        mock.push(reply());
        let gw = openai_gateway(&mock, relay).await;
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", gw.url()))
            .bearer_auth(MASTER)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], "application/json");
        answers.push(resp.json::<Value>().await.unwrap());
        if relay {
            sent = mock.received()[0].body.clone();
        }
    }
    let translated = answers.pop().unwrap();
    (answers.pop().unwrap(), translated, sent)
}

#[tokio::test]
async fn openai_json_answers_are_the_same_relayed_or_translated() {
    let body = json!({"model": "free", "max_tokens": 32, "user": "u-1",
                      "messages": [{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "Say: WORKS"}],
                      "tags": ["a"], "metadata": {"tags": ["b"]}, "seed": 7});
    for (name, reply) in replies() {
        let (relayed, translated, sent) = chat_both(&reply, &body).await;
        assert_eq!(relayed, translated, "{name}");
        assert_eq!(
            sent,
            json!({"model": "gpt-4o", "user": "u-1", "seed": 7, "max_tokens": 32,
                   "messages": [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Say: WORKS"}]}),
            "{name}"
        );
    }
}

/// What an OpenAI client sees of a chat completions stream, as [`messages`] reads it.
async fn chat_stream(gw: &Handle, mock: &MockUpstream, body: &Value) -> Seen {
    let request = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(MASTER);
    seen(request.json(body), mock).await
}

/// `frame` without what legitimately differs between a relayed chunk and a translated one:
/// `created` and `system_fingerprint` (as for JSON answers), and `usage` beyond its token
/// counts.
fn comparable(mut frame: Value) -> Value {
    for line in frame.as_array_mut().into_iter().flatten() {
        let Some(o) = line.as_object_mut() else { continue };
        o.remove("created");
        o.remove("system_fingerprint");
        if let Some(u) = o.get("usage").filter(|u| u.is_object()) {
            let counts = json!({
                "prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
                "total_tokens": u["total_tokens"],
                "cached_tokens": u["prompt_tokens_details"]["cached_tokens"],
            });
            o.insert("usage".into(), counts);
        }
    }
    frame
}

fn chat_ask(include_usage: bool) -> Value {
    let mut body = json!({"model": "free", "max_tokens": 32, "stream": true,
                          "messages": [{"role": "user", "content": "Say: WORKS"}]});
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// The client's view of a stream answered by `reply`, relayed and translated (with the
/// differences [`comparable`] removes), and the body the relaying gateway's upstream got.
async fn chat_streams(reply: impl Fn() -> Reply, body: &Value) -> (Seen, Seen, Value) {
    let mut seen = Vec::new();
    let mut sent = Value::Null;
    for relay in [true, false] {
        let mock = MockUpstream::start().await;
        mock.push(reply());
        let gw = openai_gateway(&mock, relay).await;
        let mut answer = chat_stream(&gw, &mock, body).await;
        // The server's own chunks reach a relayed client only (the translation writes no
        // `system_fingerprint`).
        let chunks: Vec<&Value> =
            answer.body.iter().filter(|f| f[0]["object"].is_string()).collect();
        assert!(!chunks.is_empty(), "{answer:?}");
        let servers = chunks.iter().all(|f| f[0].get("system_fingerprint").is_some());
        assert_eq!(servers, relay, "relay {relay}: {answer:?}");
        answer.body = answer.body.into_iter().map(comparable).collect();
        seen.push(answer);
        if relay {
            sent = mock.received()[0].body.clone();
        }
    }
    let translated = seen.pop().unwrap();
    (seen.pop().unwrap(), translated, sent)
}

/// Whether `frame` is a chunk that carries a `usage` member, null or not.
fn has_usage(frame: &Value) -> bool {
    frame[0].get("usage").is_some()
}

#[tokio::test]
async fn openai_streams_are_the_same_relayed_or_translated() {
    for include_usage in [false, true] {
        for (name, reply) in replies() {
            let (relayed, translated, sent) = chat_streams(&reply, &chat_ask(include_usage)).await;
            let name = format!("{name}, include_usage: {include_usage}");
            assert_eq!(relayed.status, 200, "{name}: {relayed:?}");
            assert_eq!(relayed.body.last(), Some(&json!(["[DONE]"])), "{name}");
            assert_eq!(relayed, translated, "{name}");
            // Usage is always asked of the upstream; the client sees it only when it asked.
            assert_eq!(sent["stream_options"], json!({"include_usage": true}), "{name}");
            assert_eq!(sent["stream"], json!(true), "{name}");
            let usage_chunks =
                relayed.body.iter().filter(|f| f[0]["usage"]["completion_tokens"] == 5).count();
            assert_eq!(usage_chunks, usize::from(include_usage), "{name}: {relayed:?}");
            if !include_usage {
                assert!(!relayed.body.iter().any(has_usage), "{name}: {relayed:?}");
            }
        }
    }
}

#[tokio::test]
async fn openai_streams_that_fail_after_the_first_chunk_end_alike() {
    let cases: Vec<Case> = vec![
        (
            "error object",
            Box::new(|| Reply::stream_error_after(3, "server_error", "boom").usage(usage())),
        ),
        (
            "rate limited",
            Box::new(|| {
                Reply::stream_error_after(2, "rate_limit_exceeded", "slow down").usage(usage())
            }),
        ),
        (
            "dropped",
            Box::new(|| Reply::text("Hello big world").stream_drop_after(4).usage(usage())),
        ),
    ];
    for include_usage in [false, true] {
        for (name, reply) in &cases {
            let (relayed, translated, _) = chat_streams(reply, &chat_ask(include_usage)).await;
            assert_eq!(relayed.status, 200, "{name}: {relayed:?}");
            let error = &relayed.body[relayed.body.len() - 2];
            assert!(error[0]["error"]["message"].is_string(), "{name}: {relayed:?}");
            assert_eq!(relayed.body.last(), Some(&json!(["[DONE]"])), "{name}");
            assert_eq!(relayed, translated, "{name}");
        }
    }
}

#[tokio::test]
async fn an_openai_stream_failing_before_its_first_chunk_falls_back_alike() {
    for failing in [
        Reply::error(429, "rate_limit_exceeded", "slow down"),
        Reply::stream_error_after(0, "server_error", "boom"),
    ] {
        let mut seen = Vec::new();
        for relay in [true, false] {
            let first = MockUpstream::start().await;
            let second = MockUpstream::start().await;
            first.set_default(failing.clone());
            second.set_default(Reply::text("WORKS").usage(usage()));
            let gw = openai_gateway_at(&[&first.url(), &second.url()], relay).await;
            let mut answer = chat_stream(&gw, &first, &chat_ask(false)).await;
            answer.body = answer.body.into_iter().map(comparable).collect();
            assert_eq!(answer.model_id.as_deref(), Some("d1"), "{answer:?}");
            assert_eq!((first.calls(), second.calls()), (1, 1));
            seen.push(answer);
        }
        assert_eq!(seen[0], seen[1]);
    }
}

#[tokio::test]
async fn openai_streams_are_charged_alike_whether_or_not_the_client_saw_the_usage() {
    let mut rows = Vec::new();
    for include_usage in [false, true] {
        for relay in [true, false] {
            let mock = MockUpstream::start().await;
            mock.push(Reply::text("Hello world").usage(usage()));
            let gw = openai_gateway(&mock, relay).await;
            let dir = tempfile::tempdir().unwrap();
            let ledger = Ledger::open(&settings(dir.path(), None)).unwrap();
            gw.state.set_ledger(ledger.clone());
            let seen = chat_stream(&gw, &mock, &chat_ask(include_usage)).await;
            assert_eq!(seen.body.last(), Some(&json!(["[DONE]"])));
            // The stream's charge is recorded once it has ended; the file, on the first row.
            let one = eventually(Duration::from_secs(10), || async {
                ledger.flush().await;
                dir.path().join("ledger.sqlite3").exists()
                    && sqlite_rows(&sqlite_pool(dir.path()).await).await.len() == 1
            })
            .await;
            assert!(one, "include_usage {include_usage}, relay {relay}: no ledger row");
            let row = sqlite_rows(&sqlite_pool(dir.path()).await).await.remove(0);
            rows.push((row.prompt_tokens, row.completion_tokens, row.spend, row.status));
        }
    }
    // 10 input tokens, 100 read from and 3 written to the cache; 5 out.
    assert_eq!(rows[0].0, 113, "{rows:?}");
    assert_eq!(rows[0].1, 5, "{rows:?}");
    assert!(rows[0].2.is_some(), "priced: {rows:?}");
    assert!(rows.iter().all(|r| *r == rows[0]), "{rows:?}");
}
