//! The headline: tier `cheap` lists Bedrock first and the Anthropic API second. Bedrock
//! rejects the credentials (AWS-01, UnrecognizedClientException); the client still gets a
//! 200 from the Anthropic deployment, the headers name both attempts, the Bedrock
//! deployment is cooled and shown unhealthy with its diagnosis in `/health`, and later
//! requests go straight to Anthropic until the cooldown ends — streaming included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use mock_upstream::MockUpstream;
use serde_json::{Value, json};
use switchyard::config::{self, MapEnv};
use switchyard::server::{self, Handle, Runtime};

const MASTER: &str = "sk-gw-failover-0123456789";
const ANTHROPIC_KEY: &str = "sk-ant-api03-failover-test-key-000000";
/// Stale keys exported into an env file long ago: AWS does not know them.
const STALE_KEY: &str = "ASIASTALEKEY00000001";
const STALE_SECRET: &str = "staleSecretAccessKey0000000000000000000000";

fn yaml(mock: &MockUpstream, cooldown_secs: f64) -> String {
    format!(
        r#"model_list:
  - model_name: cheap
    litellm_params:
      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0
      aws_region_name: us-east-1
      aws_access_key_id: {STALE_KEY}
      aws_secret_access_key: {STALE_SECRET}
      aws_session_token: IQoJb3JpZ2luX2VjStaleSessionToken==
      aws_bedrock_runtime_endpoint: {url}
      order: 1
    model_info:
      id: cheap-bedrock
  - model_name: cheap
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: {ANTHROPIC_KEY}
      api_base: {url}
      order: 2
    model_info:
      id: cheap-anthropic
router_settings:
  cooldown_time: {cooldown_secs}
general_settings:
  master_key: {MASTER}
"#,
        url = mock.url()
    )
}

async fn setup(cooldown_secs: f64) -> (MockUpstream, Handle) {
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    let cfg = config::load_from_str(
        &yaml(&mock, cooldown_secs),
        Path::new("failover.yaml"),
        &MapEnv::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let gw = server::start("127.0.0.1:0".parse().unwrap(), Runtime::new(cfg)).await.unwrap();
    (mock, gw)
}

async fn ask(gw: &Handle, stream: bool) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(MASTER)
        .json(&json!({
            "model": "cheap",
            "stream": stream,
            "messages": [{"role": "user", "content": "Say: WORKS"}]
        }))
        .send()
        .await
        .unwrap()
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// (path, number of requests) the mock received for Bedrock and for Anthropic.
fn upstream_calls(mock: &MockUpstream) -> (usize, usize) {
    let received = mock.received();
    let bedrock = received.iter().filter(|r| r.path.starts_with("/model/")).count();
    let anthropic = received.iter().filter(|r| r.path == "/v1/messages").count();
    (bedrock, anthropic)
}

async fn health(gw: &Handle) -> Value {
    reqwest::Client::new()
        .get(format!("{}/health?cached=true", gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn bedrock_rejects_the_credentials_and_the_anthropic_api_serves() {
    let (mock, gw) = setup(30.0).await;

    let resp = ask(&gw, false).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-deployment"), "cheap-anthropic");
    assert_eq!(header(&resp, "x-litellm-model-id"), "cheap-anthropic");
    assert_eq!(
        header(&resp, "x-switchyard-attempts"),
        "cheap-bedrock=credentials_invalid, cheap-anthropic=ok"
    );
    assert_eq!(header(&resp, "x-litellm-attempted-retries"), "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "WORKS");
    assert_eq!(upstream_calls(&mock), (1, 1));

    // Bedrock is cooled and shown unhealthy with the diagnosis: unrecognised credentials,
    // not a missing permission.
    let h = health(&gw).await;
    assert_eq!(h["unhealthy_count"], 1, "{h}");
    let bad = &h["unhealthy_endpoints"][0];
    assert_eq!(bad["model_id"], "cheap-bedrock");
    assert_eq!(bad["error_class"], "credentials_invalid");
    assert_eq!(bad["diagnosis"]["id"], "AWS-01");
    let cause = bad["diagnosis"]["cause"].as_str().unwrap();
    assert!(cause.contains("not a missing permission"), "{cause}");
    // The keys are written in the config, so the fix is an edit there, not an unexport.
    let remedy = bad["diagnosis"]["remedy"].as_str().unwrap();
    assert!(remedy.contains("Remove aws_access_key_id"), "{remedy}");
    assert!(remedy.contains("aws_profile_name"), "{remedy}");
    assert!(bad["cooldown_remaining_seconds"].as_f64().unwrap() > 0.0, "{bad}");
    assert!(!h.to_string().contains(STALE_SECRET), "health must never show a secret");
    assert_eq!(h["healthy_endpoints"][0]["model_id"], "cheap-anthropic");

    // While Bedrock cools, requests go straight to Anthropic.
    for _ in 0..3 {
        let resp = ask(&gw, false).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-switchyard-attempts"), "cheap-anthropic=ok");
    }
    assert_eq!(upstream_calls(&mock), (1, 4));
}

#[tokio::test]
async fn the_same_failover_happens_for_a_stream_before_its_first_byte() {
    let (mock, gw) = setup(30.0).await;
    let resp = ask(&gw, true).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-switchyard-attempts"),
        "cheap-bedrock=credentials_invalid, cheap-anthropic=ok"
    );
    let text = resp.text().await.unwrap();
    let content: String = text
        .split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(content, "WORKS");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let resp = ask(&gw, true).await;
    assert_eq!(header(&resp, "x-switchyard-attempts"), "cheap-anthropic=ok");
    resp.text().await.unwrap();
    assert_eq!(upstream_calls(&mock), (1, 2));
}

#[tokio::test]
async fn bedrock_is_tried_again_once_its_cooldown_ends() {
    let (mock, gw) = setup(0.3).await;
    assert_eq!(ask(&gw, false).await.status(), 200);
    assert_eq!(upstream_calls(&mock), (1, 1));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resp = ask(&gw, false).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-switchyard-attempts"),
        "cheap-bedrock=credentials_invalid, cheap-anthropic=ok"
    );
    assert_eq!(upstream_calls(&mock), (2, 2));
}
