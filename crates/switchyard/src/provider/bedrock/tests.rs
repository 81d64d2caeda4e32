//! The provider's load-time decisions: endpoint, URLs, region, what blocks a deployment, and
//! usage from InvokeModel's headers.

use std::path::Path;

use super::*;
use crate::config::{self, Config, MapEnv};

fn load(params: &[&str], env: &MapEnv) -> Config {
    let mut yaml = "model_list:\n  - model_name: balanced\n    litellm_params:\n".to_owned();
    for line in params {
        yaml.push_str(&format!("      {line}\n"));
    }
    config::load_from_str(&yaml, Path::new("c.yaml"), env).unwrap()
}

fn provider(params: &[&str], env: &MapEnv) -> BedrockProvider {
    let cfg = load(params, env);
    let upstreams = Upstreams::with_env(&cfg, env);
    BedrockProvider::new(&cfg.groups[0].deployments[0], &upstreams)
}

/// A deployment with static keys, for tests that need a [`Site`].
pub(super) fn site() -> Site {
    let env = MapEnv::new([("HOME", "/nonexistent")]);
    let p = provider(
        &[
            "model: bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "aws_access_key_id: AKIAEXAMPLE000000000",
            "aws_secret_access_key: secret",
            "aws_region_name: us-east-1",
        ],
        &env,
    );
    Arc::into_inner(p.site).unwrap()
}

#[test]
fn urls_encode_the_model_id_and_count_tokens_names_the_foundation_model() {
    let env = MapEnv::new([("HOME", "/nonexistent")]);
    let p = provider(
        &[
            "model: bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "aws_region_name: eu-west-1",
            "aws_profile_name: cc",
        ],
        &env,
    );
    assert!(p.blocked.is_none());
    assert_eq!(
        p.invoke_url,
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"
    );
    assert!(p.stream_url.ends_with("v1%3A0/invoke-with-response-stream"));
    assert_eq!(
        p.count_url,
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens"
    );
    assert_eq!(
        p.site.who,
        "the deployment of `balanced` (bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0, eu-west-1)"
    );
    assert_eq!(p.site.host_port, "bedrock-runtime.eu-west-1.amazonaws.com:443");
}

#[test]
fn the_endpoint_comes_from_the_deployment_then_the_environment() {
    let env = MapEnv::new([
        ("HOME", "/nonexistent"),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:9/"),
    ]);
    let model = "model: bedrock/anthropic.claude-3-haiku-20240307-v1:0";
    let p = provider(&[model, "aws_region_name: us-east-1"], &env);
    assert!(p.invoke_url.starts_with("http://127.0.0.1:9/model/"), "{}", p.invoke_url);
    let p = provider(
        &[model, "aws_region_name: us-east-1", "aws_bedrock_runtime_endpoint: http://localhost:8/"],
        &env,
    );
    assert!(p.invoke_url.starts_with("http://localhost:8/model/"), "{}", p.invoke_url);
    let ignore = MapEnv::new([
        ("HOME", "/nonexistent"),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:9/"),
        ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
    ]);
    let p = provider(&[model, "aws_region_name: us-east-1"], &ignore);
    assert!(p.invoke_url.starts_with("https://bedrock-runtime.us-east-1.amazonaws.com/"));
}

#[test]
fn an_arn_gives_its_region_and_travels_encoded() {
    let env = MapEnv::new([("HOME", "/nonexistent")]);
    let arn = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0";
    let p = provider(&[&format!("model: bedrock/{arn}")], &env);
    assert!(p.blocked.is_none(), "{:?}", p.blocked);
    assert!(p.invoke_url.starts_with(
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.anthropic"
    ), "{}", p.invoke_url);
}

#[tokio::test]
async fn invoke_for_non_claude_and_no_region_are_configuration_errors_before_sending() {
    let env = MapEnv::new([("HOME", "/nonexistent")]);
    let req = ChatRequest { messages: Vec::new(), ..ChatRequest::default() };
    let cases = [
        (
            vec!["model: bedrock/invoke/amazon.nova-pro-v1:0", "aws_region_name: us-east-1"],
            "CFG-04",
            "bedrock/converse/amazon.nova-pro-v1:0",
        ),
        (vec!["model: bedrock/converse/meta.llama3-70b-instruct-v1:0"], "AWS-14", "region"),
        (vec!["model: bedrock/anthropic.claude-3-haiku-20240307-v1:0"], "AWS-14", "region"),
    ];
    for (params, id, needle) in cases {
        let p = provider(&params, &env);
        let e = p.send(&req).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Configuration, "{params:?}");
        let d = e.diagnosis.unwrap();
        assert_eq!(d.id, id, "{params:?}");
        assert!(
            format!("{} {} {}", e.message, d.cause, d.remedy).contains(needle),
            "{params:?}: {d:?}"
        );
        assert!(p.stream(&req).await.is_err());
        assert!(p.count_tokens(&req).await.is_err());
    }
}

#[test]
fn the_region_can_come_from_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
    std::fs::write(dir.path().join(".aws/config"), "[profile cc]\nregion = ap-northeast-1\n")
        .unwrap();
    let env = MapEnv::new([("HOME", dir.path().to_str().unwrap())]);
    let p = provider(
        &["model: bedrock/anthropic.claude-3-haiku-20240307-v1:0", "aws_profile_name: cc"],
        &env,
    );
    assert!(p.blocked.is_none());
    assert!(p.invoke_url.starts_with("https://bedrock-runtime.ap-northeast-1.amazonaws.com/"));
    assert_eq!(
        p.site.ctx.profile_model.as_deref(),
        Some("apac.anthropic.claude-3-haiku-20240307-v1:0")
    );
}

#[test]
fn a_bedrock_api_key_means_bearer_auth_and_no_credentials() {
    let env = MapEnv::new([
        ("HOME", "/nonexistent"),
        ("AWS_BEARER_TOKEN_BEDROCK", "ABSKexample0123456789"),
    ]);
    let p = provider(
        &["model: bedrock/anthropic.claude-3-haiku-20240307-v1:0", "aws_region_name: us-east-1"],
        &env,
    );
    match &p.auth {
        Auth::Bearer(Ok(value)) => {
            assert!(value.is_sensitive());
            assert_eq!(value.to_str().unwrap(), "Bearer ABSKexample0123456789");
        }
        _ => panic!("expected bearer auth"),
    }
}

#[test]
fn usage_headers_fill_what_the_body_left_out() {
    let mut h = HeaderMap::new();
    h.insert("x-amzn-bedrock-input-token-count", "12".parse().unwrap());
    h.insert("x-amzn-bedrock-output-token-count", "5".parse().unwrap());
    h.insert("x-amzn-bedrock-cache-read-input-token-count", "2000".parse().unwrap());
    let mut usage = Usage { output_tokens: 7, ..Usage::default() };
    usage_from_headers(&mut usage, &h);
    assert_eq!(
        usage,
        Usage {
            input_tokens: 12,
            output_tokens: 7,
            cache_read_input_tokens: 2000,
            cache_creation_input_tokens: 0,
            cache_creation_1h_input_tokens: 0,
        }
    );
}

#[test]
fn only_unavailability_falls_back_to_an_estimate() {
    let mut e = UpstreamError::new(
        ErrorKind::InvalidRequest,
        "The provided model doesn't support counting tokens.",
    );
    assert!(counting_unavailable(&e));
    e.kind = ErrorKind::CredentialsInvalid;
    assert!(!counting_unavailable(&e));
    e.kind = ErrorKind::PermissionDenied;
    e.message = "User: x is not authorized to perform: bedrock:CountTokens on resource: y".into();
    assert!(counting_unavailable(&e));
    e.message = "User: x is not authorized to perform: bedrock:InvokeModel on resource: y".into();
    assert!(!counting_unavailable(&e));
}
