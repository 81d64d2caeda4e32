//! `switchyard policy`: for a config with a bare model id, a `us.` profile and a `global.`
//! profile, stdout is valid IAM JSON naming exactly the foundation-model and
//! inference-profile ARNs IAM evaluates (every destination region of the US profile, the
//! region-less ARN of the global one); the account comes from STS (the mock), from
//! --account, or is a `*` placeholder said as such on stderr.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod diag_support;
mod support;

use std::process::{Command, Output};

use diag_support::Home;
use mock_upstream::{AwsIdentity, MockUpstream};
use serde_json::{Value, json};

const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const SONNET: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const OPUS: &str = "anthropic.claude-opus-4-6-v1";

fn config(home: &Home) -> std::path::PathBuf {
    home.write(
        "policy.yaml",
        &format!(
            "model_list:\n\
             \x20 - model_name: cheap\n    litellm_params:\n      model: bedrock/{HAIKU}\n      aws_region_name: us-east-1\n\
             \x20 - model_name: balanced\n    litellm_params:\n      model: bedrock/us.{SONNET}\n      aws_region_name: us-east-1\n\
             \x20 - model_name: balanced\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      api_key: sk-ant-unused-000000000000\n\
             \x20 - model_name: frontier\n    litellm_params:\n      model: bedrock/global.{OPUS}\n      aws_region_name: us-west-2\n"
        ),
    )
}

fn expected(account: &str) -> Value {
    let mut r = vec![format!("arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}")];
    r.push(format!("arn:aws:bedrock:us-east-1:{account}:inference-profile/us.{SONNET}"));
    for region in ["us-east-1", "us-east-2", "us-west-1", "us-west-2"] {
        r.push(format!("arn:aws:bedrock:{region}::foundation-model/{SONNET}"));
    }
    r.push(format!("arn:aws:bedrock:us-west-2:{account}:inference-profile/global.{OPUS}"));
    r.push(format!("arn:aws:bedrock:us-west-2::foundation-model/{OPUS}"));
    r.push(format!("arn:aws:bedrock:::foundation-model/{OPUS}"));
    json!(r)
}

async fn policy(home: &Home, mock: &MockUpstream, args: &[&str]) -> Output {
    let mut all =
        vec!["policy".to_owned(), "--config".to_owned(), config(home).display().to_string()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let home = home.path().to_owned();
    let url = mock.url();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(all)
            .env_clear()
            .env("HOME", home)
            .env("AWS_ENDPOINT_URL_STS", &url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ACCESS_KEY_ID", "AKIAPOLICY0000000001")
            .env("AWS_SECRET_ACCESS_KEY", "policy-secret")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn iam(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}"))
}

fn assert_iam_shape(doc: &Value) {
    assert_eq!(doc["Version"], "2012-10-17");
    let statement = &doc["Statement"][0];
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(
        statement["Action"],
        json!(["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"])
    );
    assert_eq!(doc["Statement"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_comes_from_sts_and_the_resources_are_exactly_the_configured_models() {
    let home = Home::new();
    let mock = MockUpstream::start().await;
    mock.aws().identity(
        AwsIdentity::new("AKIAPOLICY0000000001", "policy-secret")
            .arn("arn:aws:sts::210987654321:assumed-role/AWSReservedSSO_Bedrock_ab12/dev"),
    );
    let out = policy(&home, &mock, &[]).await;
    let doc = iam(&out);
    assert_iam_shape(&doc);
    assert_eq!(doc["Statement"][0]["Resource"], expected("210987654321"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Account: 210987654321 (sts (arn:aws:sts::210987654321:"), "{stderr}");
    assert!(stderr.contains("as of 2025-11"), "{stderr}");
    assert!(mock.received().iter().all(|r| r.path == "/"), "only STS was called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_account_is_a_placeholder_said_on_stderr_and_account_names_it() {
    let home = Home::new();
    let mock = MockUpstream::start().await;
    // The mock does not know the key: STS refuses, the account stays unknown.
    let out = policy(&home, &mock, &[]).await;
    let doc = iam(&out);
    assert_eq!(doc["Statement"][0]["Resource"], expected("*"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Account: * (placeholder)"), "{stderr}");
    assert!(stderr.contains("pass --account"), "{stderr}");

    let out = policy(&home, &mock, &["--account", "123456789012", "--alias", "balanced"]).await;
    let doc = iam(&out);
    let resources = doc["Statement"][0]["Resource"].as_array().unwrap();
    assert_eq!(resources.len(), 5, "only balanced's Bedrock deployment: {resources:?}");
    assert_eq!(
        resources[0],
        format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{SONNET}")
    );

    let out = policy(&home, &mock, &["--offline", "--json"]).await;
    let v = iam(&out);
    assert_iam_shape(&v["policy"]);
    assert_eq!(v["account_source"], "placeholder");
    assert_eq!(v["deployments"].as_array().unwrap().len(), 3);
    assert_eq!(v["deployments"][2]["alias"], "frontier");
    assert_eq!(v["regions_as_of"], "2025-11");

    let out = policy(&home, &mock, &["--alias", "nope"]).await;
    assert_eq!(out.status.code(), Some(2));
}
