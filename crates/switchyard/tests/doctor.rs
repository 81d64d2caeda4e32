//! `switchyard doctor` against the incident DESIGN.md tells: three Bedrock tiers whose
//! credentials are stale temporary keys exported in an env file (Bedrock answers
//! UnrecognizedClientException, STS InvalidClientTokenId), each with an Anthropic API
//! fallback that works. Doctor must say the credentials were not recognised (STS agrees),
//! where they came from, what to run — and never that a permission is missing. Also: the
//! JSON shape, offline, --alias, --stream, exit codes of the real binary, AWS-05 with its
//! policy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod diag_support;
mod support;

use std::process::Command;

use diag_support::*;
use mock_upstream::{AwsError, AwsIdentity, MockUpstream, Reply};
use serde_json::Value;
use switchyard::diagnose::{DoctorOptions, doctor, render};

async fn incident() -> (Home, MockUpstream, std::path::PathBuf, std::path::PathBuf) {
    let home = Home::new();
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.set_default(Reply::text("WORKS"));
    let env_file = incident_env_file(&home);
    let config = incident_config(&home, &mock.url());
    (home, mock, config, env_file)
}

/// Everything said about one deployment in the human output: its table row and its details.
fn about<'a>(text: &'a str, id: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim_start().starts_with(&format!("{id} ")) || line.trim() == format!("{id}:") {
            inside = true;
            out.push(line);
            continue;
        }
        if inside && line.starts_with("    ") {
            out.push(line);
        } else {
            inside = false;
        }
    }
    out
}

fn assert_no_permission_claim(said: &str) {
    let lower = said.to_ascii_lowercase().replace("not a missing permission", "");
    for claim in ["not authorized", "permission", "accessdenied", "aws-05", "iam policy"] {
        assert!(!lower.contains(claim), "claims `{claim}`:\n{said}");
    }
}

#[tokio::test]
async fn the_incident_is_named_with_its_source_and_fix_and_the_fallback_serves() {
    let (home, mock, config, env_file) = incident().await;
    let env = home.env(&mock);
    let cfg = load(&config, std::slice::from_ref(&env_file), &env);
    let report = doctor::run(&cfg, &env, &DoctorOptions::default()).await;
    let text = render::text(&report);
    println!("{text}");

    assert_eq!(report.exit_code, 0, "every tier is served by its fallback");
    assert_eq!(report.all_served, Some(true));
    let shown = env_file.display().to_string();
    for alias in ["cheap", "balanced", "frontier"] {
        let a = report.aliases.iter().find(|a| a.alias == alias).unwrap();
        assert_eq!(a.served_by.as_deref(), Some(format!("{alias}-claude").as_str()));
        let bedrock = &a.deployments[0];
        let failure = bedrock.failure().unwrap();
        assert_eq!(failure.class, "credentials_invalid");
        assert_eq!(failure.provider_code.as_deref(), Some("UnrecognizedClientException"));
        let diag = failure.diagnosis.as_ref().unwrap();
        assert_eq!(diag.id, "AWS-01");
        assert!(diag.cause.contains("AWS did not recognise the credentials"), "{}", diag.cause);
        assert!(
            diag.cause.contains(&format!("AWS_ACCESS_KEY_ID from {shown}:1")),
            "{}",
            diag.cause
        );
        assert!(bedrock.identity.as_ref().unwrap().unrecognised(), "STS says InvalidClientTokenId");
        assert_eq!(bedrock.credentials.kind, "aws_keys");
        assert!(bedrock.credentials.source.contains("ASIA…"), "{}", bedrock.credentials.source);
        assert!(a.deployments[1].result.ok());

        let said = about(&text, &format!("{alias}-bedrock")).join("\n");
        assert!(said.contains("FAILED credentials_invalid (AWS-01)"), "{said}");
        assert!(said.contains("STS agrees"), "{said}");
        assert!(said.contains("this is not a missing permission"), "{said}");
        assert_no_permission_claim(&said);
        let status =
            text.lines().find(|l| l.trim_start().starts_with(&format!("{alias}: "))).unwrap();
        assert!(status.contains(&format!("served by {alias}-claude (anthropic/")), "{status}");
    }
    // Next steps: once for all three tiers, in order, each a command or a line to write.
    let steps = text.split("Next steps").nth(1).unwrap();
    let at =
        |needle: &str| steps.find(needle).unwrap_or_else(|| panic!("no `{needle}` in\n{steps}"));
    assert!(
        at(&format!("Delete the exported AWS keys from {shown}"))
            < at("aws sso login --profile claude")
    );
    assert!(at("aws sso login --profile claude") < at("aws_profile_name: claude"));
    assert!(at("aws_profile_name: claude") < at("aws sts get-caller-identity --profile claude"));
    assert!(steps.contains("line 1: AWS_ACCESS_KEY_ID"), "{steps}");
    assert!(steps.contains("line 3: AWS_SESSION_TOKEN"), "{steps}");
    assert_eq!(steps.matches("aws sso login").count(), 1, "deduplicated:\n{steps}");
    assert!(steps.contains("cheap-bedrock") && steps.contains("frontier-bedrock"), "{steps}");
    assert_no_permission_claim(steps);
    assert!(!text.contains("staleSecret") && !text.contains(ANTHROPIC_KEY), "a secret leaked");
    assert!(!text.contains(STALE_KEY_ID), "the whole key id leaked");
}

#[tokio::test]
async fn the_json_report_carries_the_same_content() {
    let (home, mock, config, env_file) = incident().await;
    let env = home.env(&mock);
    let cfg = load(&config, &[env_file], &env);
    let report = doctor::run(&cfg, &env, &DoctorOptions::default()).await;
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["config"]["env_files"].as_array().unwrap().len(), 1);
    let vars: Vec<&str> = json["config"]["aws_environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(vars.contains(&"AWS_ACCESS_KEY_ID") && vars.contains(&"AWS_SESSION_TOKEN"), "{vars:?}");
    let cheap = &json["aliases"][0];
    assert_eq!(cheap["alias"], "cheap");
    assert_eq!(cheap["served"], true);
    let bedrock = &cheap["deployments"][0];
    assert_eq!(bedrock["provider"], "bedrock");
    assert_eq!(bedrock["region"], "us-east-1");
    assert_eq!(bedrock["result"]["status"], "failed");
    assert_eq!(bedrock["result"]["class"], "credentials_invalid");
    assert_eq!(bedrock["result"]["diagnosis"]["id"], "AWS-01");
    assert_eq!(bedrock["identity"]["status"], "refused");
    assert_eq!(bedrock["identity"]["code"], "InvalidClientTokenId");
    let claude = &cheap["deployments"][1];
    assert_eq!(claude["result"]["status"], "ok");
    assert_eq!(claude["result"]["reply"], "WORKS");
    let steps = json["next_steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["lines"][0] == "aws sso login --profile claude"));
    assert!(steps.iter().all(|s| s["diagnoses"].as_array().unwrap().iter().all(|d| d != "AWS-05")));
}

#[tokio::test]
async fn once_the_profile_works_sts_names_the_identity_and_the_permission_set() {
    let home = Home::new();
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.set_default(Reply::text("WORKS"));
    let arn = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_ClaudeAccess_0a1b2c3d/dev@example.com";
    mock.aws().identity(AwsIdentity::new("AKIAFRESH00000000001", "fresh-secret").arn(arn));
    let env_file = home.write(
        "fresh-env",
        &format!("AWS_ACCESS_KEY_ID=AKIAFRESH00000000001\nAWS_SECRET_ACCESS_KEY=fresh-secret\nANTHROPIC_API_KEY={ANTHROPIC_KEY}\n"),
    );
    let config = incident_config(&home, &mock.url());
    let env = home.env(&mock);
    let cfg = load(&config, &[env_file], &env);
    let report = doctor::run(&cfg, &env, &DoctorOptions::default()).await;
    let text = render::text(&report);
    assert!(report.next_steps.is_empty(), "{text}");
    let bedrock = &report.aliases[0].deployments[0];
    assert!(bedrock.result.ok(), "{text}");
    assert!(
        text.contains(&format!(
            "identity: {arn} (account 123456789012, SSO permission set `ClaudeAccess`)"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_permission_is_aws05_with_the_policy_for_exactly_these_models() {
    let home = Home::new();
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    let arn = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_ClaudeAccess_0a1b2c3d/dev@example.com";
    mock.aws().identity(AwsIdentity::new("AKIAFRESH00000000001", "fresh-secret").arn(arn));
    mock.set_default(AwsError::not_authorized().into());
    let env_file = home.write(
        "fresh-env",
        &format!("AWS_ACCESS_KEY_ID=AKIAFRESH00000000001\nAWS_SECRET_ACCESS_KEY=fresh-secret\nANTHROPIC_API_KEY={ANTHROPIC_KEY}\n"),
    );
    let config = incident_config(&home, "http://127.0.0.1:1");
    let env = home.env(&mock);
    let cfg = load(&config, &[env_file], &env);
    let opts = DoctorOptions { aliases: vec!["balanced".into()], ..DoctorOptions::default() };
    let report = doctor::run(&cfg, &env, &opts).await;
    let text = render::text(&report);
    assert_eq!(report.aliases.len(), 1, "only the alias asked for");
    assert_eq!(report.exit_code, 1, "balanced has no working deployment:\n{text}");
    let bedrock = &report.aliases[0].deployments[0];
    let diag = bedrock.failure().unwrap().diagnosis.as_ref().unwrap();
    assert_eq!(diag.id, "AWS-05");
    assert!(diag.cause.contains("a permission is missing"), "{}", diag.cause);
    assert!(text.contains("NOT SERVED"), "{text}");
    let grant = report.next_steps.iter().find(|s| s.action == "grant").unwrap();
    assert!(grant.text.contains("permission set `ClaudeAccess`"), "{}", grant.text);
    let policy: Value = serde_json::from_str(&grant.lines.join("\n")).unwrap();
    let resources = policy["Statement"][0]["Resource"].as_array().unwrap();
    assert_eq!(
        resources[0],
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    );
    assert!(resources.contains(&Value::from(
        "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"
    )));
}

#[tokio::test]
async fn offline_makes_no_call_and_stream_probes_the_streaming_permission() {
    let (home, mock, config, env_file) = incident().await;
    let env = home.env(&mock);
    let cfg = load(&config, &[env_file], &env);
    let offline = DoctorOptions { offline: true, ..DoctorOptions::default() };
    let report = doctor::run(&cfg, &env, &offline).await;
    assert_eq!(mock.calls(), 0, "offline called the network");
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.all_served, None);
    assert!(render::text(&report).contains("not probed (--offline)"));
    let bedrock = &report.aliases[0].deployments[0];
    assert!(
        bedrock.credentials.source.contains("AWS_ACCESS_KEY_ID"),
        "{}",
        bedrock.credentials.source
    );

    let stream =
        DoctorOptions { stream: true, aliases: vec!["cheap".into()], ..DoctorOptions::default() };
    let report = doctor::run(&cfg, &env, &stream).await;
    let claude = &report.aliases[0].deployments[1];
    assert!(claude.stream.as_ref().unwrap().ok());
    let bedrock = &report.aliases[0].deployments[0];
    assert_eq!(bedrock.stream.as_ref().unwrap().failure().unwrap().class, "credentials_invalid");
}

/// The real binary, environment and all: exit codes and the output a person reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_the_diagnosis_and_exits_by_what_it_found() {
    let (home, mock, config, env_file) = incident().await;
    let run = |args: Vec<String>| {
        let home = home.path().to_owned();
        let url = mock.url();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_switchyard"))
                .args(args)
                .env_clear()
                .env("HOME", home)
                .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &url)
                .env("AWS_ENDPOINT_URL_STS", &url)
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .output()
                .unwrap()
        })
    };
    let base = vec![
        "doctor".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
        "--env-file".to_owned(),
        env_file.display().to_string(),
    ];
    let out = run(base.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("AWS did not recognise the credentials"), "{stdout}");
    assert!(stdout.contains("STS agrees"), "{stdout}");
    assert!(stdout.contains("aws sso login --profile claude"), "{stdout}");

    let mut json = base.clone();
    json.push("--json".into());
    let out = run(json).await.unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["aliases"][1]["deployments"][0]["result"]["diagnosis"]["id"], "AWS-01");

    // No fallback: the alias is not served, exit 1.
    mock.set_default(Reply::error(401, "authentication_error", "invalid x-api-key"));
    let out = run(base.clone()).await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));

    // A broken config: 64, with file:line and the fix.
    let broken =
        home.write("broken.yaml", "model_list:\n  - model_name: x\n    litellm_params: [\n");
    let out =
        run(vec!["doctor".into(), "--config".into(), broken.display().to_string()]).await.unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("CFG-03") && stdout.contains("broken.yaml:"), "{stdout}");
    let out = run(vec![
        "doctor".into(),
        "--json".into(),
        "--config".into(),
        broken.display().to_string(),
    ])
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["config"]["problems"][0]["id"], "CFG-03");

    // An alias that does not exist is a usage error naming the aliases that do.
    let mut alias = base;
    alias.extend(["--alias".into(), "nope".into()]);
    let out = run(alias).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cheap, balanced, frontier"));
}

#[tokio::test]
async fn a_profile_no_file_defines_is_named_with_the_files_read_and_how_to_create_it() {
    let home = Home::new();
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    let config = home.write(
        "undefined.yaml",
        "model_list:\n  - model_name: balanced\n    litellm_params:\n      \
         model: bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0\n      \
         aws_region_name: us-east-1\n      aws_profile_name: claude-prod\n    \
         model_info:\n      id: balanced-bedrock\n",
    );
    let env = home.env(&mock);
    let cfg = load(&config, &[], &env);
    let report = doctor::run(&cfg, &env, &DoctorOptions::default()).await;
    let text = render::text(&report);
    println!("{text}");
    assert_eq!(report.exit_code, 1, "{text}");
    let failure = report.aliases[0].deployments[0].failure().unwrap();
    assert_eq!(failure.class, "credentials_missing");
    let diag = failure.diagnosis.as_ref().unwrap();
    assert_eq!(diag.id, "AWS-04");
    let aws = home.path().join(".aws");
    for needle in [
        format!("Profile `claude-prod` (aws_profile_name in {}:", config.display()),
        "is not defined in any file the gateway read".to_owned(),
        format!("{} (no `[profile claude-prod]` section)", aws.join("config").display()),
        format!("{} (does not exist)", aws.join("credentials").display()),
        "They define: claude, nocreds.".to_owned(),
    ] {
        assert!(diag.cause.contains(&needle), "missing {needle:?} in {}", diag.cause);
    }
    assert!(diag.remedy.contains("`aws configure sso --profile claude-prod`"), "{}", diag.remedy);
    assert!(
        diag.remedy.contains(&format!(
            "a `[profile claude-prod]` section to {}",
            aws.join("config").display()
        )),
        "{}",
        diag.remedy
    );
    // Not the old advice to set the key that is already set.
    assert!(!diag.remedy.contains("aws_profile_name: claude-prod"), "{}", diag.remedy);
    assert!(!text.contains("was not enabled"), "{text}");
    let step = report.next_steps.iter().find(|s| s.diagnoses.contains(&"AWS-04")).unwrap();
    assert!(step.text.contains("aws configure sso --profile claude-prod"), "{}", step.text);
}

#[tokio::test]
async fn a_working_deployment_without_a_price_is_a_finding_with_the_keys_to_write() {
    let home = Home::new();
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.set_default(Reply::text("WORKS"));
    let config = home.write(
        "config.yaml",
        &format!(
            "model_list:
  - model_name: cheap
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: {ANTHROPIC_KEY}
      api_base: {url}
  - model_name: tuned
    litellm_params:
      model: openai/my-finetune
      api_key: {ANTHROPIC_KEY}
      api_base: {url}/v1
    model_info:
      id: tuned-1
",
            url = mock.url()
        ),
    );
    let env = home.env(&mock);
    let cfg = load(&config, &[], &env);
    let report = doctor::run(&cfg, &env, &DoctorOptions::default()).await;
    let text = render::text(&report);
    println!("{text}");

    // It answers: served, exit 0, and still its spend would be unknown.
    assert_eq!(report.exit_code, 0);
    let tuned = &report.aliases.iter().find(|a| a.alias == "tuned").unwrap().deployments[0];
    assert_eq!(tuned.works(), Some(true));
    let finding = tuned.price.unpriced.as_ref().expect("a price finding");
    assert_eq!(finding.id, "CFG-10");
    assert_eq!(finding.missing, ["input_cost_per_token", "output_cost_per_token"]);
    let said = about(&text, "tuned-1").join("\n");
    assert!(said.contains("spend will be recorded as unknown, not as $0 (CFG-10)"), "{said}");
    assert!(said.contains("fix:   add input_cost_per_token and output_cost_per_token"), "{said}");
    let step = report.next_steps.iter().find(|s| s.diagnoses == ["CFG-10"]).expect("a step");
    assert_eq!(step.deployments.len(), 1);
    assert!(step.deployments[0].starts_with("tuned-1 ("), "{step:?}");
    // Said once per deployment, not again among the config's warnings.
    assert!(report.config.warnings.iter().all(|w| w.id != "CFG-10"));

    // The table prices Haiku: no finding, and its price is shown.
    let cheap = &report.aliases.iter().find(|a| a.alias == "cheap").unwrap().deployments[0];
    assert!(cheap.price.known && cheap.price.unpriced.is_none());
    assert_eq!(cheap.price.input_per_million.as_deref(), Some("1"));
    assert_eq!(cheap.price.output_per_million.as_deref(), Some("5"));

    let json = serde_json::to_value(&report).unwrap();
    let tuned = &json["aliases"][1]["deployments"][0]["price"];
    assert_eq!(tuned["known"], false);
    assert_eq!(tuned["unpriced"]["id"], "CFG-10");
}

#[tokio::test]
async fn the_spend_ledger_is_reported_degraded_with_the_rows_waiting_for_it() {
    let home = Home::new();
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.set_default(Reply::text("WORKS"));
    // A port nothing listens on: the database is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = home.write(
        "config.yaml",
        &format!(
            "model_list:
  - model_name: cheap
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: {ANTHROPIC_KEY}
      api_base: {url}
general_settings:
  database_url: postgres://ledger:s3cret-pw@{closed}/spend
",
            url = mock.url()
        ),
    );
    let state = home.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("ledger-spool.jsonl"), "{}\n{}\n{}\n").unwrap();
    let env = home.env(&mock);
    let cfg = load(&config, &[], &env);
    let opts = DoctorOptions { state_dir: Some(state.clone()), ..DoctorOptions::default() };
    let report = doctor::run(&cfg, &env, &opts).await;
    let text = render::text(&report);
    println!("{text}");

    // Serving is not affected: exit 0; the ledger is degraded, with what waits and the fix.
    assert_eq!(report.exit_code, 0);
    let ledger = report.ledger.as_ref().unwrap();
    assert_eq!((ledger.backend, ledger.state, ledger.spooled), ("postgres", "unreachable", 3));
    assert_eq!(ledger.location, format!("{}:{}/spend", closed.ip(), closed.port()));
    assert!(text.contains("Spend ledger: postgres") && text.contains("DEGRADED"), "{text}");
    assert!(text.contains("3 row(s) waiting in the spool"), "{text}");
    let step = report.next_steps.iter().find(|s| s.diagnoses == ["LED-01"]).expect("a step");
    assert!(step.text.contains("3 row(s) wait in the spool"), "{step:?}");
    assert!(!text.contains("s3cret-pw"), "{text}");
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("s3cret-pw"), "{json}");

    // Offline: PostgreSQL is not contacted, and said so.
    let offline = DoctorOptions { offline: true, ..opts.clone() };
    let report = doctor::run(&cfg, &env, &offline).await;
    assert_eq!(report.ledger.unwrap().state, "not_checked");

    // The default SQLite ledger in a fresh state directory: nothing recorded yet, nothing
    // created by asking.
    let plain = home.write(
        "plain.yaml",
        &format!(
            "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: \
             anthropic/claude-haiku-4-5\n      api_key: {ANTHROPIC_KEY}\n      api_base: {}\n",
            mock.url()
        ),
    );
    let fresh = home.path().join("fresh");
    let cfg = load(&plain, &[], &env);
    let opts = DoctorOptions { state_dir: Some(fresh.clone()), ..DoctorOptions::default() };
    let report = doctor::run(&cfg, &env, &opts).await;
    let ledger = report.ledger.unwrap();
    assert_eq!((ledger.backend, ledger.state, ledger.spooled), ("sqlite", "not_created", 0));
    assert!(!fresh.join("ledger.sqlite3").exists());
}

#[tokio::test]
async fn the_redis_budgets_share_is_checked_and_named_when_it_does_not_answer() {
    let home = Home::new();
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.set_default(Reply::text("WORKS"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config_for = |port: u16| {
        format!(
            "model_list:
  - model_name: cheap
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: {ANTHROPIC_KEY}
      api_base: {url}
router_settings:
  redis_host: 127.0.0.1
  redis_port: {port}
  redis_password: r3dis-pw
",
            url = mock.url()
        )
    };
    let env = home.env(&mock);
    let down = load(&home.write("down.yaml", &config_for(closed.port())), &[], &env);
    let report = doctor::run(&down, &env, &DoctorOptions::default()).await;
    let text = render::text(&report);
    assert_eq!(report.exit_code, 0, "serving does not depend on Redis");
    let redis = report.redis.as_ref().expect("a Redis report");
    assert_eq!(redis.state, "unreachable");
    assert!(text.contains(&format!("Redis 127.0.0.1:{}: DEGRADED", closed.port())), "{text}");
    let step = report.next_steps.iter().find(|s| s.diagnoses == ["LIM-03"]).expect("a step");
    assert!(step.text.contains("counted per replica"), "{step:?}");
    let json = serde_json::to_string(&report).unwrap();
    assert!(!text.contains("r3dis-pw") && !json.contains("r3dis-pw"), "{text}");

    // The machine's Redis (it has no password) answers.
    let up_yaml = config_for(6379).replace("  redis_password: r3dis-pw\n", "");
    let up = load(&home.write("up.yaml", &up_yaml), &[], &env);
    let report = doctor::run(&up, &env, &DoctorOptions::default()).await;
    assert_eq!(report.redis.as_ref().unwrap().state, "ok");
    assert!(render::text(&report).contains("Redis 127.0.0.1:6379: ok"));
    assert!(report.next_steps.iter().all(|s| s.diagnoses != ["LIM-03"]));
}
