//! The cost of each answer end to end: an in-process gateway (port 0) against the mock's
//! Anthropic API, Bedrock runtime (InvokeModel and Converse) and OpenAI-compatible server.
//! A JSON answer carries LiteLLM's `x-litellm-response-cost` with the exact decimal its
//! reported usage costs at the built-in (or configured) price; an unpriced model carries
//! none; a streamed answer's charge is known when the stream ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::str::FromStr;

use futures_util::StreamExt;
use mock_upstream::{AwsIdentity, MockUpstream, Reply, Usage};
use serde_json::json;
use switchyard::canonical::{ChatRequest, ContentBlock, Message, Role};
use switchyard::config::{self};
use switchyard::cost::{Charged, Decimal};
use switchyard::router::Router;
use switchyard::server::Handle;

const ANTHROPIC_KEY: &str = "sk-ant-api03-test-0123456789abcdefghij";
const AWS_KEY: &str = "AKIAMOCKBEDROCK00001";
const AWS_SECRET: &str = "mockBedrockSecretAccessKey00000000000000";
const MASTER: &str = "sk-gw-master-0123456789";
const SONNET_45: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

/// `(alias, litellm_params.model, extra litellm_params lines)` → a config where each
/// deployment calls the mock.
fn yaml(mock: &MockUpstream, deps: &[(&str, &str, &[&str])]) -> String {
    let mut out = "model_list:\n".to_owned();
    for (alias, model, extra) in deps {
        out.push_str(&format!(
            "  - model_name: {alias}\n    litellm_params:\n      model: {model}\n"
        ));
        let params = if model.starts_with("anthropic/") {
            format!("api_key: {ANTHROPIC_KEY}\napi_base: {}", mock.url())
        } else if model.starts_with("bedrock/") {
            format!(
                "aws_access_key_id: {AWS_KEY}\naws_secret_access_key: {AWS_SECRET}\naws_region_name: us-east-1\naws_bedrock_runtime_endpoint: {}",
                mock.url()
            )
        } else {
            format!("api_key: {ANTHROPIC_KEY}\napi_base: {}/v1", mock.url())
        };
        for line in params.lines().chain(extra.iter().copied()) {
            out.push_str(&format!("      {line}\n"));
        }
    }
    out.push_str(&format!(
        "router_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER}\n"
    ));
    out
}

fn load(text: &str) -> config::Config {
    support::config(text, &support::no_home())
}

async fn mock() -> MockUpstream {
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.aws().identity(AwsIdentity::new(AWS_KEY, AWS_SECRET));
    mock
}

async fn setup(deps: &[(&str, &str, &[&str])]) -> (MockUpstream, Handle) {
    let mock = mock().await;
    let gw = support::start(load(&yaml(&mock, deps))).await;
    (mock, gw)
}

/// POSTs a non-streamed request for `alias` to `path` and returns the response-cost header.
async fn cost_of(gw: &Handle, path: &str, alias: &str) -> Option<String> {
    let body = json!({"model": alias, "max_tokens": 64,
                      "messages": [{"role": "user", "content": "Say: WORKS"}]});
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", gw.url()))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    let cost =
        resp.headers().get("x-litellm-response-cost").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(resp.status(), 200, "{alias}: {}", resp.text().await.unwrap());
    cost
}

fn usage(input: u64, output: u64, read: u64, write: u64, write_1h: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_input_tokens: read,
        cache_creation_input_tokens: write,
        cache_creation_1h_input_tokens: write_1h,
    }
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[tokio::test]
async fn an_anthropic_answer_with_cache_tokens_costs_the_exact_decimal_on_both_surfaces() {
    let (mock, gw) = setup(&[("balanced", "anthropic/claude-sonnet-4-6", &[])]).await;
    // Claude Sonnet 4.6: $3 input, $15 output, $0.30 cache read, $3.75 5-minute and $6
    // 1-hour cache writes per million tokens.
    // 10 × 3 + 5 × 15 + 2000 × 0.30 + 200 × 3.75 + 100 × 6 = 2055 millionths of a dollar.
    for path in ["/v1/chat/completions", "/v1/messages"] {
        mock.push(Reply::text("WORKS").usage(usage(10, 5, 2000, 300, 100)));
        assert_eq!(cost_of(&gw, path, "balanced").await.as_deref(), Some("0.002055"), "{path}");
    }
}

#[tokio::test]
async fn bedrock_answers_cost_the_profile_price_regional_geo_dearer_than_global() {
    let geo = format!("bedrock/us.{SONNET_45}");
    let global = format!("bedrock/global.{SONNET_45}");
    let arn =
        format!("bedrock/arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{SONNET_45}");
    let (mock, gw) = setup(&[
        ("geo", &geo, &[]),
        ("global", &global, &[]),
        ("arn", &arn, &[]),
        ("nova", "bedrock/converse/us.amazon.nova-lite-v1:0", &[]),
    ])
    .await;
    let reported = usage(12, 5, 2000, 100, 0);
    // us.: $3.30 / $16.50 / $0.33 / $4.125 per million tokens (10 % over global).
    mock.push(Reply::text("WORKS").usage(reported));
    assert_eq!(cost_of(&gw, "/v1/chat/completions", "geo").await.as_deref(), Some("0.0011946"));
    // global.: $3 / $15 / $0.30 / $3.75.
    mock.push(Reply::text("WORKS").usage(reported));
    assert_eq!(cost_of(&gw, "/v1/messages", "global").await.as_deref(), Some("0.001086"));
    // An inference-profile ARN is priced as the profile it names.
    mock.push(Reply::text("WORKS").usage(reported));
    assert_eq!(cost_of(&gw, "/v1/messages", "arn").await.as_deref(), Some("0.0011946"));
    // Converse: Nova Lite, $0.06 input, $0.24 output per million tokens.
    mock.push(Reply::text("WORKS").usage(usage(1000, 200, 0, 0, 0)));
    assert_eq!(cost_of(&gw, "/v1/chat/completions", "nova").await.as_deref(), Some("0.000108"));
}

#[tokio::test]
async fn an_unpriced_model_has_no_cost_header_and_a_config_price_of_zero_costs_zero() {
    let (mock, gw) = setup(&[
        ("unpriced", "openai/our-finetune", &[]),
        (
            "local",
            "openai/our-local-model",
            &["input_cost_per_token: 0", "output_cost_per_token: 0"],
        ),
        (
            "priced",
            "openai/our-priced-model",
            &["input_cost_per_token: 0.000001", "output_cost_per_token: 0.000002"],
        ),
    ])
    .await;
    mock.push(Reply::text("WORKS").usage(usage(100, 20, 0, 0, 0)));
    assert_eq!(cost_of(&gw, "/v1/chat/completions", "unpriced").await, None);
    mock.push(Reply::text("WORKS").usage(usage(100, 20, 0, 0, 0)));
    assert_eq!(cost_of(&gw, "/v1/chat/completions", "local").await.as_deref(), Some("0"));
    mock.push(Reply::text("WORKS").usage(usage(100, 20, 0, 0, 0)));
    assert_eq!(cost_of(&gw, "/v1/messages", "priced").await.as_deref(), Some("0.00014"));
}

#[tokio::test]
async fn a_streamed_answer_has_no_cost_header() {
    let (mock, gw) = setup(&[("balanced", "anthropic/claude-sonnet-4-6", &[])]).await;
    mock.push(Reply::text("WORKS").usage(usage(10, 5, 0, 0, 0)));
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(MASTER)
        .json(&json!({"model": "balanced", "stream": true,
                      "messages": [{"role": "user", "content": "Say: WORKS"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-litellm-response-cost").is_none());
    let _: String = resp.text().await.unwrap();
}

fn say(alias: &str) -> ChatRequest {
    ChatRequest {
        model: alias.into(),
        messages: vec![Message {
            role: Role::User,
            content: vec![ContentBlock::text("Say: WORKS")],
        }],
        max_tokens: Some(64),
        stream: true,
        ..ChatRequest::default()
    }
}

/// Streams `alias` through a router to its end and returns what it was charged.
async fn streamed_charge(router: &Router, alias: &str) -> switchyard::cost::Charge {
    let served = router.stream(&say(alias)).await.unwrap_or_else(|e| panic!("{e:?}"));
    let Charged::AtEnd(pending) = served.charge else { panic!("a stream is charged at its end") };
    let events: Vec<_> = served.value.collect().await;
    assert!(events.iter().all(Result::is_ok), "{events:?}");
    pending.await.unwrap()
}

#[tokio::test]
async fn a_streamed_answer_is_charged_at_its_end_on_every_provider() {
    let mock = mock().await;
    let config = load(&yaml(
        &mock,
        &[
            ("anthropic", "anthropic/claude-sonnet-4-6", &[]),
            ("invoke", &format!("bedrock/global.{SONNET_45}"), &[]),
            ("converse", "bedrock/converse/us.amazon.nova-lite-v1:0", &[]),
            ("openai", "openai/gpt-4o-mini", &[]),
        ],
    ));
    let router = Router::new(&config);

    mock.push(Reply::text_chunks(["WO", "RKS"]).usage(usage(10, 5, 2000, 300, 100)));
    let charge = streamed_charge(&router, "anthropic").await;
    assert!(charge.complete);
    assert_eq!(charge.usage.cache_creation_1h_input_tokens, 100);
    assert_eq!(charge.cost, Some(d("0.002055")));

    mock.push(Reply::text_chunks(["WO", "RKS"]).usage(usage(12, 5, 2000, 100, 0)));
    assert_eq!(streamed_charge(&router, "invoke").await.cost, Some(d("0.001086")));

    mock.push(Reply::text_chunks(["WO", "RKS"]).usage(usage(1000, 200, 0, 0, 0)));
    assert_eq!(streamed_charge(&router, "converse").await.cost, Some(d("0.000108")));

    // gpt-4o-mini: $0.15 input, $0.60 output, $0.075 cached input per million tokens;
    // OpenAI's prompt_tokens include the cached ones.
    mock.push(Reply::text_chunks(["WO", "RKS"]).usage(usage(1000, 100, 1000, 0, 0)));
    assert_eq!(streamed_charge(&router, "openai").await.cost, Some(d("0.000285")));
}
