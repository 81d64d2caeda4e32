//! The rest of the diagnosis catalog and `/health`'s probing: GW-05 (every deployment cooling)
//! in the client error and `/health`; CFG-01..06 in `doctor --json` (a config that does not
//! load exits 64 with each problem's place and fix); GW-03 from the binary; live probes
//! cached for `health_check_interval`, `?cached=true` never probing, traffic failures
//! counted, and `background_health_checks`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod diag_support;
mod support;

use std::process::Command;
use std::time::Duration;

use diag_support::*;
use mock_upstream::{MockUpstream, Reply};
use serde_json::{Value, json};

fn ant_key(key: &str) -> String {
    format!("ANTHROPIC_API_KEY={key}\n")
}

fn say(stream: bool) -> Value {
    json!({"model": "tier", "stream": stream, "max_tokens": 10, "messages": [{"role": "user", "content": "Say: WORKS"}]})
}

#[tokio::test]
async fn gw05_every_deployment_cooling_names_each_and_why() {
    let home = Home::new();
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.set_default(Reply::error(401, "authentication_error", "invalid x-api-key"));
    let env_file = home.write("entry.env", &ant_key(ANTHROPIC_KEY));
    let yaml = format!(
        "model_list:\n  - model_name: tier\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      \
         api_key: os.environ/ANTHROPIC_API_KEY\n      api_base: {}\n    model_info:\n      id: tier-0\n\
         router_settings:\n  num_retries: 0\n  cooldown_time: 600\n  timeout: 2\ngeneral_settings:\n  master_key: {MASTER}\n",
        mock.url()
    );
    let config = home.write("gw05.yaml", &yaml);
    let env = home.env(&mock);
    let gw = gateway(load(&config, &[env_file], &env), &env).await;
    let http = reqwest::Client::new();
    let chat = || {
        http.post(format!("{}/v1/chat/completions", gw.url()))
            .bearer_auth(MASTER)
            .json(&say(false))
            .send()
    };
    let first: Value = chat().await.unwrap().json().await.unwrap();
    assert_eq!(first["error"]["diagnosis"]["id"], "ANT-01");
    let resp = chat().await.unwrap();
    assert_eq!(resp.headers()["x-switchyard-error-class"], "upstream_unavailable");
    let second: Value = resp.json().await.unwrap();
    let error = &second["error"];
    assert_eq!(error["code"], "upstream_unavailable", "{second}");
    assert_eq!(error["diagnosis"]["id"], "GW-05", "{second}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("tier-0")
            && message.contains("cooling for")
            && message.contains("credentials_invalid"),
        "{message}"
    );
    assert!(error["diagnosis"]["remedy"].as_str().unwrap().contains("switchyard doctor"));
    // /health from traffic only: cooling, with the reason's diagnosis.
    let health: Value = http
        .get(format!("{}/health?cached=true", gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bad = &health["unhealthy_endpoints"][0];
    assert!(bad["cooldown_remaining_seconds"].as_f64().unwrap() > 500.0, "{health}");
    assert_eq!(bad["diagnosis"]["id"], "ANT-01", "{health}");
    assert_eq!(bad["seen_by"], "traffic");
}

#[tokio::test]
async fn health_probes_are_cached_for_the_interval_and_cached_true_never_probes() {
    let home = Home::new();
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.set_default(Reply::text("WORKS"));
    let env_file = home.write("entry.env", &ant_key(ANTHROPIC_KEY));
    let yaml = format!(
        "model_list:\n  - model_name: tier\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      \
         api_key: os.environ/ANTHROPIC_API_KEY\n      api_base: {}\n    model_info:\n      id: tier-0\n\
         general_settings:\n  master_key: {MASTER}\n  health_check_interval: 300\n",
        mock.url()
    );
    let config = home.write("cache.yaml", &yaml);
    let env = home.env(&mock);
    let gw = gateway(load(&config, &[env_file], &env), &env).await;
    let http = reqwest::Client::new();
    let health = |query: &'static str| {
        let url = format!("{}/health{query}", gw.url());
        let http = http.clone();
        async move {
            http.get(url).bearer_auth(MASTER).send().await.unwrap().json::<Value>().await.unwrap()
        }
    };
    let cached = health("?cached=true").await;
    assert_eq!(mock.calls(), 0, "cached=true probed");
    assert_eq!(cached["healthy_count"], 1);
    assert!(cached["healthy_endpoints"][0].get("last_checked_at").is_none());
    let live = health("").await;
    assert_eq!(mock.calls(), 1);
    assert_eq!(live["healthy_count"], 1);
    assert!(live["healthy_endpoints"][0]["latency_ms"].is_u64(), "{live}");
    // Within the interval: the same result, no new probe; a failure seen by traffic since
    // then makes it unhealthy all the same.
    mock.set_default(Reply::error(529, "overloaded_error", "Overloaded"));
    let again = health("").await;
    assert_eq!(mock.calls(), 1, "probed again within health_check_interval");
    assert_eq!(again["healthy_count"], 1);
    let _ = http
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(MASTER)
        .json(&say(false))
        .send()
        .await
        .unwrap();
    let after = health("?cached=true").await;
    assert_eq!(after["unhealthy_count"], 1, "{after}");
    assert_eq!(after["unhealthy_endpoints"][0]["diagnosis"]["id"], "ANT-07");
    assert_eq!(after["unhealthy_endpoints"][0]["seen_by"], "traffic");
}

#[tokio::test]
async fn background_health_checks_probe_without_a_request() {
    let home = Home::new();
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.set_default(Reply::error(529, "overloaded_error", "Overloaded"));
    let env_file = home.write("entry.env", &ant_key(ANTHROPIC_KEY));
    let yaml = format!(
        "model_list:\n  - model_name: tier\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      \
         api_key: os.environ/ANTHROPIC_API_KEY\n      api_base: {}\n    model_info:\n      id: tier-0\n\
         general_settings:\n  master_key: {MASTER}\n  background_health_checks: true\n  health_check_interval: 1\n",
        mock.url()
    );
    let config = home.write("bg.yaml", &yaml);
    let env = home.env(&mock);
    let gw = gateway(load(&config, &[env_file], &env), &env).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while mock.calls() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(mock.calls() >= 1, "no background probe");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let health: Value = reqwest::Client::new()
        .get(format!("{}/health", gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls = mock.calls();
    assert_eq!(health["unhealthy_endpoints"][0]["diagnosis"]["id"], "ANT-07", "{health}");
    assert_eq!(health["unhealthy_endpoints"][0]["seen_by"], "probe");
    assert!(calls <= 3, "the /health request itself must not probe: {calls}");
}

/// What stops the config from loading — the master key's variable unset (CFG-01) or empty
/// (CFG-02), a YAML error (CFG-03), a deployment with no `model` (CFG-04) — makes doctor exit 64 with
/// each problem's location and fix; what LiteLLM starts with is a warning in the report.
#[test]
fn config_entries_reach_doctor_json_with_their_location() {
    let home = Home::new();
    let cases = [
        (
            "CFG-01",
            "model_list:\n  - model_name: t\n    litellm_params:\n      model: anthropic/x\n      mock_response: hi\ngeneral_settings:\n  master_key: os.environ/DIAG_UNSET_KEY\n",
            "DIAG_UNSET_KEY",
        ),
        (
            "CFG-02",
            "model_list:\n  - model_name: t\n    litellm_params:\n      model: anthropic/x\n      mock_response: hi\ngeneral_settings:\n  master_key: os.environ/DIAG_EMPTY_KEY\n",
            "set but empty",
        ),
        ("CFG-03", "model_list:\n  - model_name: t\n    litellm_params: [\n", "cfg.yaml"),
        (
            "CFG-04",
            "model_list:\n  - model_name: t\n    litellm_params:\n      api_key: k\n",
            "has no model",
        ),
    ];
    for (id, yaml, said) in cases {
        let config = home.write("cfg.yaml", yaml);
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["doctor", "--json", "--config", config.to_str().unwrap()])
            .env_clear()
            .env("HOME", home.path())
            .env("DIAG_EMPTY_KEY", "")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{id}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let problem = v["config"]["problems"].as_array().unwrap().iter().find(|p| p["id"] == id);
        let problem = problem.unwrap_or_else(|| panic!("{id} missing: {v}"));
        assert!(problem.to_string().contains(said), "{id}: {problem}");
        assert!(
            problem["line"].is_u64() && !problem["remedy"].as_str().unwrap().is_empty(),
            "{id}: {problem}"
        );
    }
    let config = home.write(
        "warn.yaml",
        "model_list:\n  - model_name: t\n    litellm_params:\n      model: anthropic/x\n      mock_response: hi\nlitellm_settings:\n  success_callback: [langfuse]\nrouter_settings:\n  fallbacks: [{t: [ghost]}]\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["doctor", "--json", "--config", config.to_str().unwrap()])
        .env_clear()
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["config"]["warnings"][0]["id"], "CFG-06", "{v}");
    assert_eq!(v["config"]["warnings"][0]["key"], "litellm_settings.success_callback");
    assert_eq!(v["config"]["warnings"][1]["id"], "CFG-05", "{v}");
    assert!(v["config"]["warnings"][1]["message"].as_str().unwrap().contains("ghost"), "{v}");
}

/// GW-03: the port is taken; the binary says so with the port and the fix, exit 69.
#[test]
fn gw03_a_port_in_use_is_named_with_its_fix() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let config =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.yaml");
    let home = Home::new();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--config", config.to_str().unwrap(), "--port", &port])
        .env_clear()
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GW-03") && stderr.contains(&port) && stderr.contains("--port"),
        "{stderr}"
    );
}
