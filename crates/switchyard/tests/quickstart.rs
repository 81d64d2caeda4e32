//! The README's first command, end to end: spawn the real binary on the quickstart config
//! with port 0, and read answers back with a real HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Gateway {
    child: Child,
    url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn quickstart_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.yaml")
}

/// Starts the binary and waits for its "listening on" line, which carries the real port.
fn spawn_gateway(args: &[&str]) -> Gateway {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env_remove("SWITCHYARD_CONFIG")
        .env_remove("SWITCHYARD_ENV_FILE")
        .env_remove("LITELLM_MASTER_KEY")
        .env_remove("SWITCHYARD_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn switchyard");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next().expect("the gateway printed nothing").unwrap();
    let url = line
        .strip_prefix("Switchyard listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    Gateway { child, url }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

#[tokio::test]
async fn quickstart_answers_works_non_streaming() {
    let config = quickstart_config();
    let gw = spawn_gateway(&["--config", config.to_str().unwrap(), "--port", "0"]);
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("sk-switchyard-quickstart")
        .json(&serde_json::json!({
            "model": "cheap",
            "messages": [{"role": "user", "content": "Say: WORKS"}],
            "max_tokens": 10
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    assert_eq!(resp.headers()["x-litellm-model-group"], "cheap");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "WORKS");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let usage = &body["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn quickstart_streams_sse_chunks_usage_and_done() {
    let config = quickstart_config();
    // `serve` spelled out, as well as the default command in the other test.
    let gw = spawn_gateway(&["serve", "--config", config.to_str().unwrap(), "--port", "0"]);
    let resp = client()
        .post(format!("{}/chat/completions", gw.url))
        .header("x-api-key", "sk-switchyard-quickstart")
        .json(&serde_json::json!({
            "model": "frontier",
            "messages": [{"role": "user", "content": "Say: WORKS"}],
            "stream": true,
            "stream_options": {"include_usage": true}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = resp.text().await.unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.trim_start_matches("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "stream must end with [DONE]: {text}");
    let chunks: Vec<serde_json::Value> =
        events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let content: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, "WORKS");
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"].as_array().unwrap().len(), 0);
    assert!(usage_chunk["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn quickstart_rejects_a_request_without_the_key() {
    let config = quickstart_config();
    let gw = spawn_gateway(&["--config", config.to_str().unwrap(), "--port", "0"]);
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(
            &serde_json::json!({"model": "cheap", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "401");
}

#[test]
fn a_broken_config_exits_64_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, "model_list:\n  - model_name: cheap\n    litellm_params: [unclosed\n")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--config", path.to_str().unwrap(), "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.yaml:"), "stderr: {stderr}");
    assert!(stderr.contains("CFG-03"), "stderr: {stderr}");
}

#[test]
fn config_check_prints_the_resolved_table_and_exits_0() {
    let config = quickstart_config();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["config", "check", "--json", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], true);
    let text = json.to_string();
    assert!(text.contains("cheap") && text.contains("balanced") && text.contains("frontier"));
    assert!(!text.contains("sk-switchyard-quickstart"), "the master key must never be printed");
}

#[test]
fn refuses_a_public_address_without_a_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.yaml");
    std::fs::write(
        &path,
        "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      mock_response: hi\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--config", path.to_str().unwrap(), "--host", "0.0.0.0", "--port", "0"])
        .env_remove("LITELLM_MASTER_KEY")
        .env_remove("SWITCHYARD_MASTER_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("master_key"), "stderr: {stderr}");
    assert!(stderr.contains("--allow-unauthenticated"), "stderr: {stderr}");
}

#[tokio::test]
async fn sigterm_stops_the_gateway_cleanly() {
    let config = quickstart_config();
    let mut gw = spawn_gateway(&["--config", config.to_str().unwrap(), "--port", "0"]);
    // One served request first, so a kept-alive connection exists while it drains.
    let http = client();
    let ready = http.get(format!("{}/health/readiness", gw.url)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let status = Command::new("kill").args(["-TERM", &gw.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(code) = gw.child.try_wait().unwrap() {
            assert_eq!(code.code(), Some(0));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the gateway did not stop within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn json_logs_carry_request_ids_and_never_a_secret() {
    const MASTER: &str = "sk-master-log-test-0123456789abcdef";
    const UPSTREAM: &str = "sk-ant-api03-log-test-secret-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logs.yaml");
    // One deployment answers; the other's upstream refuses connections, so its failure
    // (with the key that would have been sent) goes through the error paths and the log.
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      mock_response: WORKS\n  - model_name: down\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_key: {UPSTREAM}\n      api_base: http://127.0.0.1:1\ngeneral_settings:\n  master_key: {MASTER}\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--config", config.to_str().unwrap(), "--port", "0", "--log-format", "json"])
        .args(["--log-level", "debug"])
        .env_remove("SWITCHYARD_LOG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    let url = line.strip_prefix("Switchyard listening on ").unwrap().to_owned();
    let gw = Gateway { child, url };
    let http = client();
    let ask = |model: &str, key: &str| {
        http.post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(key)
            .header("x-request-id", format!("trace-{model}"))
            .json(&serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    assert_eq!(ask("cheap", MASTER).await.unwrap().status(), 200);
    assert_eq!(ask("cheap", "sk-wrong-presented-key-999").await.unwrap().status(), 401);
    assert!(ask("down", MASTER).await.unwrap().status().is_server_error());
    // Stopped as a supervisor stops it: lines still queued for the log are written first.
    let mut gw = gw;
    let status = Command::new("kill").args(["-TERM", &gw.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(gw.child.wait().unwrap().code(), Some(0));

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["request_id"] == "trace-cheap" && l["status"] == 200),
        "an access line per request, with its id: {text}"
    );
    for secret in [MASTER, UPSTREAM, "sk-wrong-presented-key-999"] {
        assert!(!text.contains(secret), "a secret reached the log: {secret}");
    }
}

#[test]
fn config_check_names_a_bedrock_deployment_without_a_region() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noregion.yaml");
    std::fs::write(
        &path,
        "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0\n      aws_access_key_id: AKIAEXAMPLE000000001\n      aws_secret_access_key: secretsecretsecretsecretsecret00\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["config", "check", "--json", "--config", path.to_str().unwrap()])
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problem = &json["deployment_problems"][0];
    assert_eq!(problem["id"], "AWS-14", "{json}");
    assert_eq!(problem["alias"], "cheap");
    assert!(problem["remedy"].as_str().unwrap().contains("aws_region_name"), "{problem}");
    assert!(!json.to_string().contains("secretsecret"), "never the secret");
}
