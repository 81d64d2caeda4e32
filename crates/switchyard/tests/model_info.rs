//! `GET /model/info` (and `/v1/model/info`) end to end: LiteLLM's shape, the effective price
//! of each deployment with where each rate came from, `?litellm_model_id=` filtering, the
//! master key required, and no secret anywhere in the answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use switchyard::server::Handle;

const MASTER: &str = "sk-gw-master-0123456789";
const ANTHROPIC_KEY: &str = "sk-ant-api03-secret-model-info-0123456789";
const AWS_KEY: &str = "AKIAMODELINFOSECRET1";
const AWS_SECRET: &str = "modelInfoSecretAccessKey000000000000000";
const AWS_TOKEN: &str = "IQoJb3JpZ2luX2VjEModelInfoSessionToken";
const QUERY_KEY: &str = "query-key-in-api-base-0123456789";

fn yaml() -> String {
    format!(
        r#"model_list:
  - model_name: balanced
    litellm_params:
      model: anthropic/claude-sonnet-4-6
      api_key: {ANTHROPIC_KEY}
      api_base: https://user:{QUERY_KEY}@proxy.example/anthropic?key={QUERY_KEY}
      input_cost_per_token: 0.000002
    model_info:
      id: sonnet-direct
      max_input_tokens: 200000
  - model_name: balanced
    litellm_params:
      model: bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0
      aws_access_key_id: {AWS_KEY}
      aws_secret_access_key: {AWS_SECRET}
      aws_session_token: {AWS_TOKEN}
      aws_region_name: us-east-1
    model_info:
      id: sonnet-bedrock
  - model_name: local
    litellm_params:
      model: ollama/llama3.2
      input_cost_per_token: 0
      output_cost_per_token: 0
    model_info:
      id: llama-local
  - model_name: custom
    litellm_params:
      model: openai/my-finetune
      api_base: http://127.0.0.1:9/v1
      api_key: {ANTHROPIC_KEY}
    model_info:
      id: finetune
      input_cost_per_token: "0.000001"
general_settings:
  master_key: {MASTER}
"#
    )
}

async fn gateway() -> Handle {
    support::gateway(&yaml(), &support::no_home()).await
}

async fn get(gw: &Handle, path: &str, key: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", gw.url()));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn by_id<'a>(data: &'a [Value], id: &str) -> &'a Value {
    data.iter().find(|d| d["model_info"]["id"] == id).unwrap_or_else(|| panic!("no {id}"))
}

#[tokio::test]
async fn every_deployment_is_listed_in_litellm_s_shape_with_its_effective_price() {
    let gw = gateway().await;
    let (status, text) = get(&gw, "/model/info", Some(MASTER)).await;
    assert_eq!(status, 200, "{text}");
    for secret in [ANTHROPIC_KEY, AWS_KEY, AWS_SECRET, AWS_TOKEN, QUERY_KEY, MASTER] {
        assert!(!text.contains(secret), "a secret leaked: {text}");
        // Not even a prefix longer than the project's safe prefix (8 characters).
        assert!(!text.contains(&secret[..9]), "a secret's prefix leaked: {text}");
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 4);

    // Table prices, the config's input price winning over the table's.
    let direct = by_id(data, "sonnet-direct");
    assert_eq!(direct["model_name"], "balanced");
    let params = &direct["litellm_params"];
    assert_eq!(params["model"], "anthropic/claude-sonnet-4-6");
    assert_eq!(params["api_base"], "https://proxy.example/anthropic");
    assert!(params.get("api_key").is_none(), "{params}");
    let info = &direct["model_info"];
    assert_eq!(info["mode"], "chat");
    assert_eq!(info["litellm_provider"], "anthropic");
    assert_eq!(info["max_input_tokens"], 200_000);
    assert_eq!(info["input_cost_per_token"], json!(2e-6));
    assert_eq!(info["output_cost_per_token"], json!(1.5e-5));
    assert_eq!(info["cache_read_input_token_cost"], json!(3e-7));
    assert_eq!(info["cache_creation_input_token_cost"], json!(3.75e-6));
    assert_eq!(info["switchyard_price_known"], true);
    let sources = &info["switchyard_price_sources"];
    assert_eq!(sources["input_cost_per_token"], "litellm_params");
    assert!(
        sources["output_cost_per_token"]
            .as_str()
            .unwrap()
            .starts_with("built-in price table (anthropic claude-sonnet-4-6, "),
        "{sources}"
    );

    // Bedrock: no AWS secret in litellm_params; the geo profile's table price.
    let bedrock = by_id(data, "sonnet-bedrock");
    let params = bedrock["litellm_params"].as_object().unwrap();
    for key in ["aws_access_key_id", "aws_secret_access_key", "aws_session_token", "api_key"] {
        assert!(!params.contains_key(key), "{key} shown: {params:?}");
    }
    assert_eq!(params["aws_region_name"], "us-east-1");
    assert_eq!(bedrock["model_info"]["litellm_provider"], "bedrock");
    assert_eq!(bedrock["model_info"]["input_cost_per_token"], json!(3.3e-6));

    // A local model priced 0 is free, not unknown.
    let local = &by_id(data, "llama-local")["model_info"];
    assert_eq!(local["input_cost_per_token"], json!(0.0));
    assert_eq!(local["switchyard_price_known"], true);
    assert_eq!(local["switchyard_price_sources"]["output_cost_per_token"], "litellm_params");

    // Half a price is no price: the missing rate is null, never 0.
    let custom = &by_id(data, "finetune")["model_info"];
    assert_eq!(custom["input_cost_per_token"], json!(1e-6));
    assert_eq!(custom["switchyard_price_sources"]["input_cost_per_token"], "model_info");
    assert_eq!(custom["output_cost_per_token"], Value::Null);
    assert_eq!(custom["switchyard_price_known"], false);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_deployment_by_id_or_litellm_s_400_and_the_master_key_is_required() {
    let gw = gateway().await;
    let (status, text) =
        get(&gw, "/v1/model/info?litellm_model_id=llama-local", Some(MASTER)).await;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["model_name"], "local");

    let (status, text) = get(&gw, "/model/info?litellm_model_id=nope", Some(MASTER)).await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["detail"]["error"], "Model id = nope not found on litellm proxy");

    let (status, _) = get(&gw, "/model/info", None).await;
    assert_eq!(status, 401);
    let (status, _) = get(&gw, "/v1/model/info", Some("sk-wrong")).await;
    assert_eq!(status, 401);
    gw.shutdown().await.unwrap();
}
