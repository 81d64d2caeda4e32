//! The pass-through routes end to end against the mock upstream: `/anthropic/{path}` relayed
//! as bytes to the mock Anthropic API with the deployment's key (JSON, SSE, another path, an
//! upstream error), and `/bedrock/{path}`: InvokeModel and its stream through the router to
//! the mock's Bedrock emulation (SigV4 checked, failover), a path the gateway does not model
//! signed and relayed, errors in Bedrock's shape. Ledger rows on SQLite in a temporary state
//! directory; auth and budgets as on every route; no gateway key ever reaches the upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod support;

use std::time::Duration;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use base64::Engine as _;
use bytes::Bytes;
use ledger_support::{Row, eventually, settings, sqlite_pool, sqlite_rows};
use mock_upstream::{AwsError, AwsIdentity, MockUpstream, Reply, Usage};
use serde_json::{Value, json};
use sha2::Digest as _;
use switchyard::server::Handle;

const MASTER: &str = "sk-gw-passthrough-0123456789";
const ANT_KEY: &str = "sk-ant-api03-passthrough-00000000000";
const AWS_KEY: &str = "AKIAMOCKPASSTHRU0001";
const AWS_SECRET: &str = "mockPassthroughSecretAccessKey0000000000";
const SONNET: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// `claude`: an Anthropic deployment; `sonnet`: two Bedrock deployments of SONNET, the first
/// (order 1) with credentials the mock does not know, so every request fails over.
fn yaml(mock: &MockUpstream, extra: &str) -> String {
    let url = mock.url();
    let bedrock = |id: &str, key: &str, order: u32| {
        format!(
            "  - model_name: sonnet\n    litellm_params:\n      model: bedrock/{SONNET}\n      aws_access_key_id: {key}\n      aws_secret_access_key: {AWS_SECRET}\n      aws_region_name: us-east-1\n      aws_bedrock_runtime_endpoint: {url}\n      order: {order}\n    model_info:\n      id: {id}\n"
        )
    };
    format!(
        "model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_key: {ANT_KEY}\n      api_base: {url}\n    model_info:\n      id: claude-1\n{}{}router_settings:\n  num_retries: 0\n  disable_cooldowns: true\ngeneral_settings:\n  master_key: {MASTER}\n{extra}",
        bedrock("sonnet-unknown-key", "AKIAMOCKNOTKNOWN0000", 1),
        bedrock("sonnet-good", AWS_KEY, 2),
    )
}

struct Setup {
    mock: MockUpstream,
    gw: Handle,
    dir: tempfile::TempDir,
}

async fn setup(extra: &str) -> Setup {
    let mock = MockUpstream::builder().api_key(ANT_KEY).start().await;
    mock.aws().identity(AwsIdentity::new(AWS_KEY, AWS_SECRET));
    let env = support::no_home();
    let gw = support::gateway(&yaml(&mock, extra), &env).await;
    let dir = tempfile::tempdir().unwrap();
    gw.state.set_ledger(switchyard::ledger::Ledger::open(&settings(dir.path(), None)).unwrap());
    Setup { mock, gw, dir }
}

impl Setup {
    async fn rows(&self, n: usize) -> Vec<Row> {
        let file = self.dir.path().join("ledger.sqlite3");
        let written = eventually(Duration::from_secs(10), || {
            let file = file.clone();
            let dir = self.dir.path().to_owned();
            async move {
                if !file.exists() {
                    return false;
                }
                let pool = sqlite_pool(&dir).await;
                let count: Result<i64, _> =
                    sqlx::query_scalar(r#"SELECT count(*) FROM "LiteLLM_SpendLogs""#)
                        .fetch_one(&pool)
                        .await;
                count.is_ok_and(|c| c >= n as i64)
            }
        })
        .await;
        assert!(written, "{n} ledger rows were written");
        sqlite_rows(&sqlite_pool(self.dir.path()).await).await
    }

    /// No request the upstream received carried the gateway key in any header.
    fn gateway_key_never_forwarded(&self) {
        for r in self.mock.received() {
            for (name, value) in &r.headers {
                assert!(
                    !value.to_str().unwrap_or_default().contains(MASTER),
                    "{name} carried the gateway key"
                );
            }
        }
    }
}

fn messages(stream: bool) -> Value {
    json!({"model": "claude-haiku-4-5", "max_tokens": 16, "stream": stream,
           "messages": [{"role": "user", "content": "Say: WORKS"}]})
}

fn invoke_body() -> Value {
    json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 16,
           "messages": [{"role": "user", "content": "Say: WORKS"}]})
}

fn usage(input: u64, output: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
}

/// The Anthropic events inside an event-stream body, and the exception frames' types.
fn event_stream(body: &[u8]) -> (Vec<Value>, Vec<String>) {
    let mut buf = Bytes::copy_from_slice(body);
    let mut decoder = MessageFrameDecoder::new();
    let (mut events, mut exceptions) = (Vec::new(), Vec::new());
    while !buf.is_empty() {
        let DecodedFrame::Complete(m) = decoder.decode_frame(&mut buf).unwrap() else {
            panic!("a truncated frame");
        };
        let header = |n: &str| {
            m.headers()
                .iter()
                .find(|h| h.name().as_str() == n)
                .map(|h| h.value().as_string().unwrap().as_str().to_owned())
        };
        if let Some(kind) = header(":exception-type") {
            exceptions.push(kind);
            continue;
        }
        let payload: Value = serde_json::from_slice(m.payload()).unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(payload["bytes"].as_str().unwrap())
            .unwrap();
        events.push(serde_json::from_slice(&raw).unwrap());
    }
    (events, exceptions)
}

#[tokio::test]
async fn anthropic_json_and_sse_are_relayed_with_the_deployments_key_and_recorded() {
    let s = setup("").await;
    s.mock.push(Reply::text("WORKS").usage(usage(11, 5)));
    s.mock.push(Reply::text_chunks(["WO", "RKS"]).usage(usage(13, 7)));
    let client = reqwest::Client::new();
    let url = format!("{}/anthropic/v1/messages", s.gw.url());
    let json_answer = client
        .post(&url)
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("x-request-id", "pt-1")
        .json(&messages(false))
        .send()
        .await
        .unwrap();
    assert_eq!(json_answer.status(), 200);
    assert_eq!(json_answer.headers()["x-litellm-model-id"], "claude-1");
    let v: Value = json_answer.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "WORKS");
    assert_eq!(v["usage"]["input_tokens"], 11);

    let sse = client
        .post(&url)
        .bearer_auth(MASTER)
        .header("anthropic-version", "2023-06-01")
        .header("x-request-id", "pt-2")
        .json(&messages(true))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    assert!(sse.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = sse.text().await.unwrap();
    assert!(text.contains("event: message_stop"), "{text}");
    assert!(text.contains("\"text\":\"WO\""), "the upstream's own events arrive: {text}");

    let received = s.mock.received();
    assert_eq!(received.len(), 2);
    for r in &received {
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(
            r.header("x-api-key"),
            Some(ANT_KEY),
            "the deployment's key, never the client's"
        );
        assert!(r.header("authorization").is_none() && r.header("proxy-authorization").is_none());
        assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(r.body["model"], "claude-haiku-4-5", "the body goes as the client sent it");
    }
    assert_eq!(received[0].header("anthropic-beta"), Some("prompt-caching-2024-07-31"));
    s.gateway_key_never_forwarded();

    let rows = s.rows(2).await;
    for (row, (id, input, output)) in rows.iter().zip([("pt-1", 11, 5), ("pt-2", 13, 7)]) {
        assert_eq!(row.request_id, id);
        assert_eq!(row.call_type, "pass_through_endpoint");
        assert_eq!((row.prompt_tokens, row.completion_tokens), (input, output), "{row:?}");
        assert_eq!(row.model, "claude-haiku-4-5");
        assert_eq!(row.model_group, "claude");
        assert_eq!(row.model_id, "claude-1");
        assert_eq!(row.status, "success");
        let spend: f64 = row.spend.as_deref().expect("a priced model has a cost").parse().unwrap();
        assert!(spend > 0.0, "{row:?}");
        assert!(!row.api_key.contains(MASTER) && !row.metadata.to_string().contains(MASTER));
    }
}

#[tokio::test]
async fn other_anthropic_paths_and_upstream_errors_come_back_as_the_upstream_sent_them() {
    let s = setup("").await;
    let client = reqwest::Client::new();
    let count = client
        .post(format!("{}/anthropic/v1/messages/count_tokens?beta=true", s.gw.url()))
        .header("x-api-key", MASTER)
        .json(
            &json!({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(count.status(), 200);
    assert!(count.json::<Value>().await.unwrap()["input_tokens"].as_u64().unwrap() > 0);
    let received = s.mock.received();
    assert_eq!(received[0].path, "/v1/messages/count_tokens");
    assert_eq!(received[0].query.as_deref(), Some("beta=true"));

    s.mock.push(
        Reply::error(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        )
        .retry_after(7),
    );
    let refused = client
        .post(format!("{}/anthropic/v1/messages", s.gw.url()))
        .header("x-api-key", MASTER)
        .header("x-request-id", "pt-err")
        .json(&messages(false))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "7");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "the upstream's own error: {body}");
    let rows = s.rows(1).await;
    assert_eq!(rows[0].status, "failure");
    assert_eq!(rows[0].call_type, "pass_through_endpoint");
    assert_eq!(rows[0].metadata["error_information"]["error_class"], "rate_limited");
}

#[tokio::test]
async fn both_routes_refuse_a_missing_key_in_their_clients_shape_before_any_upstream_call() {
    let s = setup("").await;
    let client = reqwest::Client::new();
    let anthropic = client
        .post(format!("{}/anthropic/v1/messages", s.gw.url()))
        .json(&messages(false))
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 401);
    let body: Value = anthropic.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("Fix:"));

    let bedrock = client
        .post(format!("{}/bedrock/model/{SONNET}/invoke", s.gw.url()))
        .json(&invoke_body())
        .send()
        .await
        .unwrap();
    assert_eq!(bedrock.status(), 401);
    assert_eq!(bedrock.headers()["x-amzn-errortype"], "AccessDeniedException");
    let body: Value = bedrock.json().await.unwrap();
    assert_eq!(body["diagnosis"]["id"], "GW-01");
    assert!(body["message"].as_str().unwrap().contains("Missing gateway key"));
    assert!(s.mock.received().is_empty(), "nothing reached the upstream");
}

#[tokio::test]
async fn a_budget_refuses_a_pass_through_request_before_the_upstream() {
    let s = setup("litellm_settings:\n  max_budget: 0.0000001\n  budget_duration: 1d\n").await;
    let refused = reqwest::Client::new()
        .post(format!("{}/anthropic/v1/messages", s.gw.url()))
        .header("x-api-key", MASTER)
        .json(&messages(false))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["diagnosis"]["id"], "BUD-01", "{body}");
    assert!(s.mock.received().is_empty());
}

#[tokio::test]
async fn bedrock_invoke_goes_through_the_router_with_failover_json_and_stream() {
    let s = setup("").await;
    s.mock.push(Reply::text("WORKS").usage(usage(21, 3)));
    s.mock.push(Reply::text_chunks(["WO", "RKS"]).usage(usage(22, 4)));
    let client = reqwest::Client::new();
    // Claude Code sends the model id unencoded; the SDKs encode the colon.
    let json_answer = client
        .post(format!("{}/bedrock/model/{SONNET}/invoke", s.gw.url()))
        .bearer_auth(MASTER)
        .header("x-request-id", "br-1")
        .json(&invoke_body())
        .send()
        .await
        .unwrap();
    assert_eq!(json_answer.status(), 200);
    assert_eq!(json_answer.headers()["x-litellm-model-id"], "sonnet-good");
    assert_eq!(json_answer.headers()["x-amzn-bedrock-input-token-count"], "21");
    let v: Value = json_answer.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "WORKS");

    let stream = client
        .post(format!(
            "{}/bedrock/model/{}/invoke-with-response-stream",
            s.gw.url(),
            SONNET.replace(':', "%3A")
        ))
        .bearer_auth(MASTER)
        .header("anthropic-beta", "claude-code-20250219")
        .header("x-request-id", "br-2")
        .json(&invoke_body())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "application/vnd.amazon.eventstream");
    let (events, exceptions) = event_stream(&stream.bytes().await.unwrap());
    assert!(exceptions.is_empty());
    let text: String = events.iter().filter_map(|e| e["delta"]["text"].as_str()).collect();
    assert_eq!(text, "WORKS");
    assert_eq!(events.last().unwrap()["type"], "message_stop");

    // Each request: the unknown key's deployment refused (the mock checks SigV4), then the
    // good one served.
    let received = s.mock.received();
    assert_eq!(received.len(), 4, "{:?}", received.iter().map(|r| &r.path).collect::<Vec<_>>());
    assert!(received[1].header("authorization").unwrap().contains(AWS_KEY));
    assert_eq!(received[3].body["anthropic_beta"], json!(["claude-code-20250219"]));
    s.gateway_key_never_forwarded();

    let rows = s.rows(2).await;
    for (row, (id, input, output)) in rows.iter().zip([("br-1", 21, 3), ("br-2", 22, 4)]) {
        assert_eq!(row.request_id, id);
        assert_eq!(row.call_type, "pass_through_endpoint");
        assert_eq!(row.model_group, "sonnet");
        assert_eq!(row.model_id, "sonnet-good");
        assert_eq!((row.prompt_tokens, row.completion_tokens), (input, output));
        assert_eq!(row.metadata["attempts"][0]["model_id"], "sonnet-unknown-key", "{row:?}");
    }
}

#[tokio::test]
async fn bedrock_errors_carry_the_diagnosis_in_bedrocks_shape() {
    let s = setup("").await;
    let unknown = reqwest::Client::new()
        .post(format!("{}/bedrock/model/us.anthropic.claude-opus-9-v1:0/invoke", s.gw.url()))
        .bearer_auth(MASTER)
        .json(&invoke_body())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    assert_eq!(unknown.headers()["x-amzn-errortype"], "ResourceNotFoundException");
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["diagnosis"]["id"], "GW-02", "{body}");
    assert!(body["message"].as_str().unwrap().contains("sonnet"), "the names that exist: {body}");

    // The first deployment's key is refused, the second is throttled: the router's final
    // error, with both attempts, as Bedrock's ThrottlingException.
    s.mock.push(AwsError::throttling().into());
    let refused = reqwest::Client::new()
        .post(format!("{}/bedrock/model/sonnet/invoke", s.gw.url()))
        .bearer_auth(MASTER)
        .json(&invoke_body())
        .send()
        .await
        .unwrap();
    let status = refused.status();
    let kind = refused.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["attempts"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!((status.as_u16(), kind.as_str()), (429, "ThrottlingException"), "{body}");
}

#[tokio::test]
async fn a_bedrock_path_the_gateway_does_not_model_is_signed_and_relayed() {
    let s = setup("").await;
    let converse = |model: &str| {
        reqwest::Client::new()
            .post(format!("{}/bedrock/model/{model}/converse", s.gw.url()))
            .header("x-api-key", MASTER)
            .header("x-amz-security-token", "a-token-of-the-clients-own")
            .json(&json!({"messages": [{"role": "user", "content": [{"text": "Say: WORKS"}]}],
                          "inferenceConfig": {"maxTokens": 16}}))
            .send()
    };
    // Named by its `model_info.id`: that deployment signs, and the path carries its model id.
    let served = converse("sonnet-good").await.unwrap();
    let status = served.status();
    let body: Value = served.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body["output"]["message"]["content"][0]["text"].is_string(), "{body}");
    // Named by the model id: the group's first deployment signs, whose key AWS does not know,
    // and AWS's own answer comes back as it was sent.
    let refused = converse(SONNET).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        refused.headers()["x-amzn-errortype"]
            .to_str()
            .unwrap()
            .starts_with("UnrecognizedClientException")
    );

    let received = s.mock.received();
    assert_eq!(received.len(), 2);
    let encoded = format!("/model/{}/converse", SONNET.replace(':', "%3A"));
    for (r, key) in received.iter().zip([AWS_KEY, "AKIAMOCKNOTKNOWN0000"]) {
        assert_eq!(r.path, encoded);
        assert!(r.header("authorization").unwrap().contains(&format!("Credential={key}/")));
        assert!(
            r.header("x-amz-security-token").is_none(),
            "the client's own signing headers stay behind"
        );
    }
    s.gateway_key_never_forwarded();
}

#[tokio::test]
async fn a_virtual_keys_rules_rate_limit_and_budget_apply_to_pass_through_calls() {
    let s = setup("").await;
    let keys = switchyard::keys::Keys::open(&switchyard::keys::Settings {
        database_url: None,
        state_dir: s.dir.path().to_owned(),
    })
    .unwrap();
    keys.start(switchyard::keys::POLL).await;
    s.gw.state.set_keys(keys.clone());
    let client = reqwest::Client::new();
    let generate = |body: Value| {
        let client = client.clone();
        let url = format!("{}/key/generate", s.gw.url());
        async move {
            let v: Value = client
                .post(url)
                .bearer_auth(MASTER)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["key"].as_str().unwrap().to_owned()
        }
    };
    let limited = generate(json!({"key_alias": "one-a-minute", "rpm_limit": 1})).await;
    let broke = generate(json!({"key_alias": "broke", "max_budget": 0.0000001})).await;
    let elsewhere = generate(json!({"key_alias": "sonnet-only", "models": ["sonnet"]})).await;
    let call = |key: String, id: &'static str| {
        let client = client.clone();
        let url = format!("{}/anthropic/v1/messages", s.gw.url());
        async move {
            let resp = client
                .post(url)
                .header("x-api-key", key)
                .header("x-request-id", id)
                .json(&messages(false))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let (status, _) = call(limited.clone(), "vk-1").await;
    assert_eq!(status, 200);
    let (status, body) = call(limited.clone(), "vk-2").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let (status, body) = call(broke, "vk-3").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["diagnosis"]["id"].as_str().unwrap().starts_with("BUD-"), "{body}");
    let (status, body) = call(elsewhere, "vk-4").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["diagnosis"]["id"], "KEY-04", "{body}");
    assert_eq!(s.mock.received().len(), 1, "only the admitted call reached the upstream");

    let rows = s.rows(1).await;
    assert_eq!(rows[0].request_id, "vk-1");
    assert_eq!(rows[0].api_key, format!("{:x}", sha2::Sha256::digest(limited.as_bytes())));
    let alias: Option<String> = sqlx::query_scalar(r#"SELECT key_alias FROM "LiteLLM_SpendLogs""#)
        .fetch_one(&sqlite_pool(s.dir.path()).await)
        .await
        .unwrap();
    assert_eq!(alias.as_deref(), Some("one-a-minute"));
}
