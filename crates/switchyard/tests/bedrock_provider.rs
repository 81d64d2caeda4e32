//! The Bedrock provider end to end: OpenAI and Anthropic clients → an in-process gateway
//! (port 0) → the mock's Bedrock runtime emulation, which verifies SigV4 as AWS does and
//! answers in real event-stream framing with AWS's own errors. Asserts what reaches Bedrock
//! (path encoding, signed headers, the InvokeModel body), what the client receives (JSON and
//! SSE, usage with cache tokens), every AWS-xx class the runtime can provoke, exception
//! frames before and after the first client byte, and the Bedrock API key path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;

use mock_upstream::{AwsError, AwsIdentity, MockUpstream, Reply, Usage};
use serde_json::{Value, json};
use switchyard::canonical::{ChatRequest, ContentBlock, Message, Role};
use switchyard::config::{self, MapEnv};
use switchyard::provider::{self, Upstreams};
use switchyard::server::Handle;

const KEY: &str = "AKIAMOCKBEDROCK00001";
const SECRET: &str = "mockBedrockSecretAccessKey00000000000000";
const TEMP_KEY: &str = "ASIAMOCKBEDROCK00002";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEMockSessionTokenForBedrockTests==";
const API_KEY: &str = "ABSKQmVkcm9ja0FQSUtleS1tb2NrLTAxMjM0NTY3ODk=";
const MASTER: &str = "sk-gw-master-0123456789";
const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const SONNET: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0";

/// One deployment: alias, id, model id and extra litellm_params lines.
struct Dep<'a> {
    alias: &'a str,
    id: &'a str,
    model: &'a str,
    params: Vec<String>,
}

fn keys(key: &str, secret: &str) -> Vec<String> {
    vec![format!("aws_access_key_id: {key}"), format!("aws_secret_access_key: {secret}")]
}

fn dep<'a>(alias: &'a str, id: &'a str, model: &'a str, params: Vec<String>) -> Dep<'a> {
    Dep { alias, id, model, params }
}

fn yaml(mock: &MockUpstream, deps: &[Dep<'_>]) -> String {
    let mut out = "model_list:\n".to_owned();
    for (i, d) in deps.iter().enumerate() {
        out.push_str(&format!(
            "  - model_name: {}\n    litellm_params:\n      model: {}\n      order: {}\n",
            d.alias,
            if d.model.starts_with("mock:") {
                "anthropic/claude-sonnet-4-6".into()
            } else {
                format!("bedrock/{}", d.model)
            },
            i + 1
        ));
        if let Some(text) = d.model.strip_prefix("mock:") {
            out.push_str(&format!("      mock_response: {text}\n"));
        } else {
            out.push_str(&format!(
                "      aws_region_name: us-east-1\n      aws_bedrock_runtime_endpoint: {}\n",
                mock.url()
            ));
        }
        for p in &d.params {
            out.push_str(&format!("      {p}\n"));
        }
        out.push_str(&format!("    model_info:\n      id: {}\n", d.id));
    }
    out.push_str(&format!(
        "router_settings:\n  num_retries: 0\n  disable_cooldowns: true\ngeneral_settings:\n  master_key: {MASTER}\n"
    ));
    out
}

fn load(text: &str, env: &MapEnv) -> config::Config {
    support::config(text, env)
}

async fn gateway(text: &str) -> Handle {
    let env = support::no_home();
    support::start(load(text, &env)).await
}

/// A mock that knows the long-term test key, and a gateway with `deps`.
async fn setup(deps: &[Dep<'_>]) -> (MockUpstream, Handle) {
    let mock = MockUpstream::start().await;
    mock.aws().identity(AwsIdentity::new(KEY, SECRET));
    let gw = gateway(&yaml(&mock, deps)).await;
    (mock, gw)
}

async fn post(gw: &Handle, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", gw.url()))
        .bearer_auth(MASTER)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn say(alias: &str, stream: bool) -> Value {
    json!({"model": alias, "stream": stream, "stream_options": {"include_usage": true},
           "messages": [{"role": "user", "content": "Say: WORKS"}]})
}

/// The `data:` payloads of an SSE body, JSON where they parse.
fn sse(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|frame| frame.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned())))
        .collect()
}

fn auth_header(r: &mock_upstream::Received) -> &str {
    r.header("authorization").unwrap_or_default()
}

#[tokio::test]
async fn sigv4_is_accepted_for_a_plain_id_a_geo_profile_and_an_arn() {
    let mut temporary = keys(TEMP_KEY, SECRET);
    temporary.push(format!("aws_session_token: {TOKEN}"));
    let (mock, gw) = setup(&[
        dep("plain", "d-plain", HAIKU, keys(KEY, SECRET)),
        dep("geo", "d-geo", SONNET, temporary),
        dep("arn", "d-arn", ARN, keys(KEY, SECRET)),
    ])
    .await;
    mock.aws().identity(AwsIdentity::new(TEMP_KEY, SECRET).session_token(TOKEN));
    for alias in ["plain", "geo", "arn"] {
        let resp = post(&gw, "/v1/chat/completions", &say(alias, false)).await;
        assert_eq!(resp.status(), 200, "{alias}: {}", resp.text().await.unwrap());
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "WORKS", "{alias}");
    }
    let received = mock.received();
    assert_eq!(received.len(), 3, "each accepted first time, no retries");
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke",
            "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke",
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke",
        ]
    );
    assert!(auth_header(&received[0]).starts_with(&format!("AWS4-HMAC-SHA256 Credential={KEY}/")));
    assert!(auth_header(&received[0]).contains(
        "/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
    ));
    assert!(
        auth_header(&received[1])
            .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,")
    );
    assert_eq!(received[1].header("x-amz-security-token"), Some(TOKEN));
    for r in &received {
        assert_eq!(r.body["anthropic_version"], "bedrock-2023-05-31");
        assert!(r.body.get("model").is_none() && r.body.get("stream").is_none(), "{}", r.body);
        assert!(r.header("x-api-key").is_none() && r.header("anthropic-version").is_none());
        assert!(!auth_header(r).contains(MASTER), "the master key must not travel upstream");
    }
}

#[tokio::test]
async fn representative_requests_reach_bedrock_as_the_anthropic_body_with_bedrocks_changes() {
    // One translation for two upstreams: the Anthropic fixtures' bodies, less `model` and
    // `stream`, plus `anthropic_version`; and the Bedrock-only fixtures as recorded.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut cases: Vec<PathBuf> = ["anthropic", "bedrock"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap().map(|e| e.unwrap().path()))
        .collect();
    cases.sort();
    assert!(cases.len() >= 5);
    for case in cases {
        let fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(&case).unwrap()).unwrap();
        let (mock, gw) = setup(&[dep("balanced", "d1", HAIKU, keys(KEY, SECRET))]).await;
        let (path, request, expected) = match fixture.get("openai_request") {
            Some(req) => {
                let mut expected = fixture["upstream_body"].clone();
                let body = expected.as_object_mut().unwrap();
                body.remove("model");
                body.remove("stream");
                body.insert("anthropic_version".into(), json!("bedrock-2023-05-31"));
                ("/v1/chat/completions", req.clone(), expected)
            }
            None => (
                "/v1/messages",
                fixture["anthropic_request"].clone(),
                fixture["upstream_body"].clone(),
            ),
        };
        let mut builder =
            reqwest::Client::new().post(format!("{}{path}", gw.url())).bearer_auth(MASTER);
        for (name, value) in fixture["headers"].as_object().into_iter().flatten() {
            builder = builder.header(name.as_str(), value.as_str().unwrap());
        }
        let resp = builder.json(&request).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}: {}", case.display(), resp.text().await.unwrap());
        resp.bytes().await.unwrap();
        let received = mock.received();
        assert_eq!(received.len(), 1, "{}", case.display());
        assert_eq!(received[0].body, expected, "{}", case.display());
    }
}

#[tokio::test]
async fn both_surfaces_stream_with_usage_including_cache_tokens() {
    let usage = Usage {
        input_tokens: 12,
        output_tokens: 5,
        cache_creation_input_tokens: 100,
        cache_read_input_tokens: 2000,
        ..Usage::default()
    };
    let (mock, gw) = setup(&[dep("balanced", "d1", SONNET, keys(KEY, SECRET))]).await;

    mock.push(Reply::text("Hello world").usage(usage));
    let resp = post(&gw, "/v1/chat/completions", &say("balanced", false)).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello world");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 2112, "completion_tokens": 5, "total_tokens": 2117,
               "prompt_tokens_details": {"cached_tokens": 2000},
               "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000})
    );

    mock.push(Reply::text("Hello world").usage(usage));
    let resp = post(&gw, "/v1/chat/completions", &say("balanced", true)).await;
    assert_eq!(resp.status(), 200);
    let events = sse(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let text: String =
        events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Hello world");
    let usage_chunk = events.iter().find(|e| e["usage"].is_object()).expect("a usage chunk");
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 2112);
    assert_eq!(usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"], 2000);
    assert_eq!(
        mock.received()[1].path,
        format!("/model/{}/invoke-with-response-stream", SONNET.replace(':', "%3A"))
    );

    mock.push(Reply::text("Hello world").usage(usage));
    let body = json!({"model": "balanced", "max_tokens": 64, "stream": true,
                      "messages": [{"role": "user", "content": "Say: WORKS"}]});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/messages", gw.url()))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = sse(&resp.text().await.unwrap());
    assert_eq!(events[0]["type"], "message_start");
    assert_eq!(events[0]["message"]["usage"]["cache_read_input_tokens"], 2000);
    assert_eq!(events[0]["message"]["usage"]["cache_creation_input_tokens"], 100);
    assert_eq!(events.last().unwrap()["type"], "message_stop");
    let delta = events.iter().find(|e| e["type"] == "message_delta").unwrap();
    assert_eq!(delta["usage"]["output_tokens"], 5);
    let sent = &mock.received()[2];
    assert_eq!(sent.body["anthropic_beta"], json!(["prompt-caching-2024-07-31"]));
    assert!(sent.header("anthropic-beta").is_none(), "betas travel in the body on Bedrock");
}

#[tokio::test]
async fn a_wrong_secret_is_aws11_at_the_client() {
    let (_mock, gw) = setup(&[dep(
        "balanced",
        "d1",
        HAIKU,
        keys(KEY, "notTheRightSecret000000000000000000000000"),
    )])
    .await;
    let resp = post(&gw, "/v1/chat/completions", &say("balanced", false)).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-switchyard-error-class"], "credentials_invalid");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "credentials_invalid");
    assert_eq!(v["error"]["diagnosis"]["id"], "AWS-11");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("does not belong to the access key AKIA…"), "{message}");
    assert!(!message.contains("notTheRightSecret") && !message.contains(KEY), "{message}");
}

/// Every class the runtime can provoke, end to end: `(row, reply or None for an auth
/// failure set up by `auth`, status, class)`.
#[tokio::test]
async fn every_runtime_aws_class_is_recognised_end_to_end() {
    let scripted: Vec<(&str, AwsError, u16, &str)> = vec![
        ("AWS-05", AwsError::not_authorized(), 403, "permission_denied"),
        ("AWS-06", AwsError::explicit_deny_scp(), 403, "permission_denied"),
        ("AWS-06", AwsError::explicit_deny_identity_policy(), 403, "permission_denied"),
        ("AWS-07", AwsError::model_access_denied(), 403, "model_access"),
        ("AWS-08", AwsError::marketplace_subscription_missing(), 403, "model_access"),
        ("AWS-09", AwsError::on_demand_not_supported(), 400, "model_needs_profile"),
        ("AWS-10", AwsError::invalid_model_identifier(), 404, "model_not_found"),
        (
            "AWS-12",
            AwsError::new(
                403,
                "InvalidSignatureException",
                "Signature expired: 20250101T000000Z is now earlier than 20250101T000500Z (20250101T001000Z - 5 min.)",
            ),
            502,
            "clock_skew",
        ),
        ("AWS-15", AwsError::throttling(), 429, "rate_limited"),
        ("AWS-15", AwsError::throttling_tokens(), 429, "rate_limited"),
        ("AWS-16", AwsError::service_unavailable(), 502, "upstream_unavailable"),
        ("AWS-16", AwsError::internal_server(), 502, "upstream_unavailable"),
        ("AWS-16", AwsError::model_not_ready(), 502, "upstream_unavailable"),
        ("AWS-16", AwsError::model_error(), 502, "upstream_unavailable"),
        ("AWS-16", AwsError::model_timeout(), 504, "timeout"),
        ("AWS-17", AwsError::prompt_too_long(903_884, 200_000), 400, "context_window"),
        ("AWS-17", AwsError::input_too_long(), 400, "context_window"),
    ];
    for (row, error, status, class) in scripted {
        let (mock, gw) = setup(&[dep("balanced", "d1", HAIKU, keys(KEY, SECRET))]).await;
        let code = error.code().to_owned();
        mock.push(error.clone().into());
        mock.push(error.into());
        for stream in [false, true] {
            let resp = post(&gw, "/v1/chat/completions", &say("balanced", stream)).await;
            assert_eq!(resp.status(), status, "{row} {code} stream={stream}");
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["error"]["code"], class, "{row} {code}: {v}");
            assert_eq!(v["error"]["diagnosis"]["id"], row, "{row} {code}: {v}");
        }
    }

    // Authentication failures, decided by the emulation's own checks.
    let unknown = ("AWS-01", keys("AKIAUNKNOWNKEY000001", SECRET), 401, "credentials_invalid");
    let wrong = (
        "AWS-11",
        keys(KEY, "wrong0000000000000000000000000000000000"),
        401,
        "credentials_invalid",
    );
    let mut expired = keys(TEMP_KEY, SECRET);
    expired.push(format!("aws_session_token: {TOKEN}"));
    let expired = ("AWS-02", expired, 401, "credentials_expired");
    let bearer =
        ("AWS-13", vec!["api_key: not-a-bedrock-key".to_owned()], 401, "credentials_invalid");
    for (row, params, status, class) in [unknown, wrong, expired, bearer] {
        let (mock, gw) = setup(&[dep("balanced", "d1", HAIKU, params)]).await;
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        mock.aws()
            .identity(AwsIdentity::new(TEMP_KEY, SECRET).session_token(TOKEN).expires_at(past));
        let resp = post(&gw, "/v1/chat/completions", &say("balanced", false)).await;
        assert_eq!(resp.status(), status, "{row}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            (v["error"]["code"].as_str(), v["error"]["diagnosis"]["id"].as_str()),
            (Some(class), Some(row)),
            "{v}"
        );
        if row == "AWS-01" {
            let m = v["error"]["message"].as_str().unwrap();
            assert!(m.contains("not a missing permission") && m.contains("AKIA…"), "{m}");
        }
    }
}

#[tokio::test]
async fn an_exception_frame_before_the_first_byte_falls_back_and_after_it_ends_the_stream() {
    let (mock, gw) = setup(&[
        dep("balanced", "bedrock-1", HAIKU, keys(KEY, SECRET)),
        dep("balanced", "fallback-1", "mock:from the fallback", Vec::new()),
    ])
    .await;
    // Before anything reached the client: an ordinary failed attempt; the next deployment serves.
    mock.push(AwsError::throttling().mid_stream(0));
    let resp = post(&gw, "/v1/chat/completions", &say("balanced", true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-deployment"], "fallback-1");
    let attempts = resp.headers()["x-switchyard-attempts"].to_str().unwrap().to_owned();
    assert_eq!(attempts, "bedrock-1=rate_limited, fallback-1=ok");
    let text: String = sse(&resp.text().await.unwrap())
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "from the fallback");

    // After the first event: the OpenAI stream ends with an error chunk, then [DONE].
    let (mock, gw) = setup(&[dep("balanced", "bedrock-1", HAIKU, keys(KEY, SECRET))]).await;
    mock.push(AwsError::model_stream_error().mid_stream(3));
    let resp = post(&gw, "/v1/chat/completions", &say("balanced", true)).await;
    assert_eq!(resp.status(), 200);
    let events = sse(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let error = &events[events.len() - 2]["error"];
    assert_eq!(error["code"], "upstream_unavailable", "{events:?}");
    assert!(error["message"].as_str().unwrap().contains("ModelStreamErrorException"), "{error}");

    // … and the Anthropic stream with an `error` event.
    mock.push(AwsError::throttling().mid_stream(3));
    let body = json!({"model": "balanced", "max_tokens": 64, "stream": true,
                      "messages": [{"role": "user", "content": "Say: WORKS"}]});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/messages", gw.url()))
        .header("x-api-key", MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.contains("event: error"), "{text}");
    let last = sse(&text).pop().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn a_bedrock_api_key_is_a_bearer_token_and_needs_no_aws_credentials() {
    let mock = MockUpstream::start().await;
    mock.aws().bedrock_api_key(API_KEY);
    let env = MapEnv::new([("HOME", "/nonexistent"), ("AWS_BEARER_TOKEN_BEDROCK", API_KEY)]);
    let text = yaml(&mock, &[dep("balanced", "d1", SONNET, Vec::new())]);
    let gw = support::start(load(&text, &env)).await;
    for stream in [false, true] {
        let resp = post(&gw, "/v1/chat/completions", &say("balanced", stream)).await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        resp.bytes().await.unwrap();
    }
    let received = mock.received();
    assert_eq!(received.len(), 2, "only the two Bedrock calls: no STS, no SSO, no metadata");
    for r in &received {
        assert_eq!(auth_header(r), format!("Bearer {API_KEY}"));
        for header in ["x-amz-date", "x-amz-security-token", "x-amz-content-sha256"] {
            assert!(r.header(header).is_none(), "{header} sent with a bearer key");
        }
    }
}

#[tokio::test]
async fn count_tokens_uses_bedrock_count_tokens_for_the_foundation_model() {
    let mock = MockUpstream::start().await;
    mock.aws().identity(AwsIdentity::new(KEY, SECRET));
    let env = support::no_home();
    let cfg = load(&yaml(&mock, &[dep("balanced", "d1", SONNET, keys(KEY, SECRET))]), &env);
    let upstreams = Upstreams::with_env(&cfg, &env);
    let bedrock = provider::for_deployment(&cfg.groups[0].deployments[0], &upstreams);
    let req = ChatRequest {
        model: "balanced".into(),
        messages: vec![Message {
            role: Role::User,
            content: vec![ContentBlock::text("Say: WORKS, please, now")],
        }],
        ..ChatRequest::default()
    };
    let counted = bedrock.count_tokens(&req).await.unwrap();
    assert!(counted > 0);
    let received = mock.received();
    assert_eq!(received[0].path, "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens");
    let body = received[0].body["input"]["invokeModel"]["body"].as_str().unwrap();
    let decoded: Value = serde_json::from_slice(&base64_decode(body)).unwrap();
    assert_eq!(decoded["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(decoded["messages"][0]["content"][0]["text"], "Say: WORKS, please, now");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

#[tokio::test]
async fn no_region_anywhere_is_aws14_before_anything_is_sent() {
    let home = tempfile::tempdir().unwrap();
    let env = MapEnv::new([("HOME", home.path().to_str().unwrap())]);
    let text = format!(
        "model_list:\n  - model_name: balanced\n    litellm_params:\n      model: bedrock/{HAIKU}\n      aws_profile_name: cc\n"
    );
    let cfg = load(&text, &env);
    let upstreams = Upstreams::with_env(&cfg, &env);
    let bedrock = provider::for_deployment(&cfg.groups[0].deployments[0], &upstreams);
    let req = ChatRequest { model: "balanced".into(), ..ChatRequest::default() };
    let err = bedrock.send(&req).await.unwrap_err();
    let d = err.diagnosis.unwrap();
    assert_eq!((err.kind.as_str(), d.id), ("configuration", "AWS-14"));
    assert!(d.cause.contains("`region` of profile `cc`"), "{}", d.cause);
    assert!(d.remedy.contains("aws_region_name"), "{}", d.remedy);
}
