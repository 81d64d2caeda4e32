//! The HTTP surface of an in-process gateway on port 0: auth (GW-01), unknown models
//! (GW-02), malformed and oversized bodies, models list, health, request ids.
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
    model_info:
      id: cheap-mock
  - model_name: balanced
    litellm_params:
      model: anthropic/claude-sonnet-4-6
      mock_response: "balanced answer"
  - model_name: unreachable
    litellm_params:
      model: anthropic/claude-opus-4-6
      api_key: sk-ant-not-used
      api_base: http://127.0.0.1:1
general_settings:
  master_key: sk-gw-test-0123456789
  max_request_body_size_mb: 1
"#;

async fn gateway() -> Handle {
    support::gateway(CONFIG, &MapEnv::default()).await
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn chat(gw: &Handle, body: Value) -> reqwest::Response {
    http()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

async fn error_of(resp: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = resp.status().as_u16();
    let class =
        resp.headers().get("x-switchyard-error-class").map(|v| v.to_str().unwrap().to_owned());
    let body: Value = resp.json().await.unwrap();
    (status, class, body["error"].clone())
}

#[tokio::test]
async fn gw01_a_request_without_a_key_is_a_401_that_says_how_to_send_one() {
    let gw = gateway().await;
    let resp = http()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .json(&hello("cheap"))
        .send()
        .await
        .unwrap();
    let (status, class, err) = error_of(resp).await;
    assert_eq!(status, 401);
    assert_eq!(class.as_deref(), Some("unauthorized"));
    assert_eq!(err["type"], "auth_error", "LiteLLM's type for a refused gateway key");
    assert_eq!(err["code"], "401");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("Missing gateway key"), "{msg}");
    assert!(msg.contains("Authorization: Bearer") && msg.contains("x-api-key"), "{msg}");
    assert!(!msg.contains(KEY), "the master key must never appear in an error");
}

#[tokio::test]
async fn gw01_a_wrong_key_is_rejected_without_being_echoed() {
    let gw = gateway().await;
    for (header, value) in
        [("authorization", "Bearer sk-wrong-key-999"), ("x-api-key", "sk-wrong-key-999")]
    {
        let resp = http()
            .post(format!("{}/v1/chat/completions", gw.url()))
            .header(header, value)
            .json(&hello("cheap"))
            .send()
            .await
            .unwrap();
        let (status, _, err) = error_of(resp).await;
        assert_eq!(status, 401);
        let msg = err["message"].as_str().unwrap();
        assert!(msg.contains("Invalid gateway key"), "{msg}");
        assert!(!msg.contains("sk-wrong-key-999"), "{msg}");
        assert!(!msg.contains(KEY), "{msg}");
    }
}

#[tokio::test]
async fn the_key_is_accepted_as_bearer_or_x_api_key() {
    let gw = gateway().await;
    let resp = chat(&gw, hello("cheap")).await;
    assert_eq!(resp.status(), 200);
    let resp = http()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .header("x-api-key", KEY)
        .json(&hello("balanced"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "balanced answer");
}

#[tokio::test]
async fn gw02_an_unknown_model_names_itself_and_the_aliases_that_exist() {
    let gw = gateway().await;
    let (status, class, err) = error_of(chat(&gw, hello("gpt-5-turbo")).await).await;
    assert_eq!(status, 400);
    assert_eq!(class.as_deref(), Some("unknown_model"));
    assert_eq!(err["param"], "model");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("gpt-5-turbo"), "{msg}");
    assert!(msg.contains("cheap, balanced, unreachable"), "{msg}");
    assert!(msg.contains("Fix:"), "{msg}");
}

#[tokio::test]
async fn a_deployment_id_addresses_exactly_that_deployment() {
    let gw = gateway().await;
    let resp = chat(&gw, hello("cheap-mock")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-litellm-model-id"], "cheap-mock");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "cheap answer");
}

#[tokio::test]
async fn malformed_bodies_are_400s_in_openai_shape_naming_the_field() {
    let gw = gateway().await;
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        ("{not json", None, "JSON"),
        (r#"{"messages":[{"role":"user","content":"hi"}]}"#, Some("model"), "model"),
        (r#"{"model":"cheap"}"#, Some("messages"), "messages"),
        (r#"{"model":"cheap","messages":"hi"}"#, Some("messages"), "messages"),
        (r#"{"model":"cheap","messages":[{"role":"user","content":42}]}"#, None, "content"),
        (r#"{"model":7,"messages":[]}"#, Some("model"), "model"),
    ];
    for (body, param, mentions) in cases {
        let resp = http()
            .post(format!("{}/v1/chat/completions", gw.url()))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, class, err) = error_of(resp).await;
        assert_eq!(status, 400, "body {body}");
        assert_eq!(class.as_deref(), Some("invalid_request"), "body {body}");
        assert_eq!(err["type"], "invalid_request_error", "body {body}");
        if let Some(param) = param {
            assert_eq!(err["param"], param, "body {body}: {err}");
        }
        let msg = err["message"].as_str().unwrap();
        assert!(msg.contains(mentions), "body {body}: message {msg:?} should mention {mentions}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_not_a_hang() {
    let gw = gateway().await;
    let big = "x".repeat(1024 * 1024 + 10);
    let body = json!({"model": "cheap", "messages": [{"role": "user", "content": big}]});
    let (status, class, err) = error_of(chat(&gw, body).await).await;
    assert_eq!(status, 413);
    assert_eq!(class.as_deref(), Some("payload_too_large"));
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("1048576 bytes"), "{msg}");
    assert!(msg.contains("max_request_body_size_mb"), "{msg}");
}

#[tokio::test]
async fn models_lists_the_aliases_in_config_order() {
    let gw = gateway().await;
    for path in ["/v1/models", "/models"] {
        let resp = http().get(format!("{}{path}", gw.url())).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["object"], "list");
        let ids: Vec<&str> =
            body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["cheap", "balanced", "unreachable"]);
        assert_eq!(body["data"][0]["object"], "model");
    }
    let anonymous = http().get(format!("{}/v1/models", gw.url())).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn health_shows_a_failed_deployment_as_unhealthy_with_its_diagnosis() {
    let gw = gateway().await;
    // `cached=true`: what traffic showed, without live probes (`tests/diagnostics.rs`
    // covers those).
    let health = |gw: &Handle| {
        let url = format!("{}/health?cached=true", gw.url());
        async move {
            let resp = http().get(url).bearer_auth(KEY).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    let before = health(&gw).await;
    assert_eq!(before["healthy_count"], 3);
    assert_eq!(before["unhealthy_count"], 0);

    let (status, _, _) = error_of(chat(&gw, hello("unreachable")).await).await;
    assert!(status >= 400);

    let after = health(&gw).await;
    assert_eq!(after["healthy_count"], 2);
    assert_eq!(after["unhealthy_count"], 1);
    let bad = &after["unhealthy_endpoints"][0];
    assert_eq!(bad["model_name"], "unreachable");
    assert_eq!(bad["model"], "anthropic/claude-opus-4-6");
    assert!(bad["error"].as_str().is_some());
    assert!(bad["diagnosis"]["remedy"].as_str().is_some());
    assert!(!after.to_string().contains("sk-ant-not-used"), "health must never show a key");
}

#[tokio::test]
async fn probes_need_no_key_and_health_does() {
    let gw = gateway().await;
    let live = http().get(format!("{}/health/liveliness", gw.url())).send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.json::<Value>().await.unwrap(), json!("I'm alive!"));
    let ready = http().get(format!("{}/health/readiness", gw.url())).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "connected");
    let health = http().get(format!("{}/health", gw.url())).send().await.unwrap();
    assert_eq!(health.status(), 401);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_keeps_the_clients() {
    let gw = gateway().await;
    let resp = http()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(KEY)
        .header("x-request-id", "trace-abc-123")
        .json(&hello("cheap"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-abc-123");
    let a = chat(&gw, hello("cheap")).await;
    let b = chat(&gw, hello("nope")).await;
    let (ia, ib) = (a.headers()["x-request-id"].clone(), b.headers()["x-request-id"].clone());
    assert_ne!(ia, ib);
    assert!(ia.to_str().unwrap().starts_with("req_"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_openai_shape() {
    let gw = gateway().await;
    let resp = http().get(format!("{}/v1/nothing-here", gw.url())).send().await.unwrap();
    let (status, _, err) = error_of(resp).await;
    assert_eq!(status, 404);
    assert!(err["message"].as_str().unwrap().contains("/v1/nothing-here"));
    let resp = http()
        .get(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let (status, _, err) = error_of(resp).await;
    assert_eq!(status, 405);
    assert!(err["message"].as_str().unwrap().contains("GET"));
}

/// Claude Code's `HEAD /` before its first request, and a load balancer's `GET /`: 200
/// without a key, naming the product, with no configuration in it.
#[tokio::test]
async fn the_root_answers_without_a_key() {
    let gw = gateway().await;
    let head = http().head(format!("{}/", gw.url())).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let resp = http().get(format!("{}/", gw.url())).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["name"], "switchyard");
    assert!(!body.to_string().contains(KEY));
}
