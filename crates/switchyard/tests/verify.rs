//! `switchyard verify` against a running in-process gateway: one alias that answers, one
//! whose only deployment has unrecognised AWS credentials — the reply, tokens, latency and
//! serving deployment for the first, the gateway's diagnosis for the second, non-streaming
//! and streaming; GW-04 when nothing listens, GW-01 with a wrong key, GW-02 for an unknown
//! alias; exit codes of the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod diag_support;
mod support;

use std::process::Command;

use diag_support::*;
use mock_upstream::{MockUpstream, Reply};
use switchyard::diagnose::verify::{self, Options};
use switchyard::secret::Secret;

async fn setup() -> (Home, MockUpstream, switchyard::server::Handle) {
    let home = Home::new();
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.set_default(Reply::text("WORKS"));
    let env_file = incident_env_file(&home);
    let yaml = format!(
        "model_list:\n\
         \x20 - model_name: good\n    litellm_params:\n      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0\n      aws_region_name: us-east-1\n      order: 1\n    model_info:\n      id: good-bedrock\n\
         \x20 - model_name: good\n    litellm_params:\n      model: anthropic/claude-3-haiku-20240307\n      api_key: os.environ/ANTHROPIC_API_KEY\n      api_base: {}\n      order: 2\n    model_info:\n      id: good-claude\n\
         \x20 - model_name: broken\n    litellm_params:\n      model: bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0\n      aws_region_name: us-east-1\n    model_info:\n      id: broken-bedrock\n\
         router_settings:\n  num_retries: 0\n  disable_cooldowns: true\ngeneral_settings:\n  master_key: {MASTER}\n",
        mock.url()
    );
    let config = home.write("verify.yaml", &yaml);
    let env = home.env(&mock);
    let gw = gateway(load(&config, &[env_file], &env), &env).await;
    (home, mock, gw)
}

fn opts(url: &str, stream: bool) -> Options {
    Options {
        url: url.to_owned(),
        key: Some(Secret::new(MASTER)),
        models: Vec::new(),
        stream,
        state_dir: Some("/var/state/switchyard".into()),
    }
}

#[tokio::test]
async fn one_alias_passes_and_the_other_fails_with_the_gateways_diagnosis() {
    let (_home, _mock, gw) = setup().await;
    for stream in [false, true] {
        let report = verify::run(&opts(&gw.url(), stream)).await;
        let text = verify::text(&report);
        println!("{text}");
        assert_eq!(report.exit_code, 1, "{text}");
        assert_eq!((report.passed, report.failed), (1, 1));
        let good = &report.results[0];
        assert_eq!(good.alias, "good");
        assert!(good.pass && good.says_works, "{text}");
        assert_eq!(good.reply.as_deref(), Some("WORKS"));
        assert_eq!(good.deployment.as_deref(), Some("good-claude"), "{text}");
        assert_eq!(
            good.attempts.as_deref(),
            Some("good-bedrock=credentials_invalid, good-claude=ok"),
            "{text}"
        );
        assert!(good.completion_tokens.is_some() && good.prompt_tokens.is_some(), "{text}");
        let broken = &report.results[1];
        assert!(!broken.pass);
        assert_eq!(broken.http_status, Some(401));
        let error = broken.error.as_ref().unwrap();
        assert_eq!(error.class.as_deref(), Some("credentials_invalid"));
        assert_eq!(error.diagnosis.as_ref().unwrap()["id"], "AWS-01");
        assert_eq!(error.attempts[0]["deployment"], "broken-bedrock");
        assert!(text.contains("PASS  good: \"WORKS\""), "{text}");
        assert!(text.contains("FAIL  broken (HTTP 401"), "{text}");
        assert!(text.contains("credentials_invalid [AWS-01]: AWS did not recognise"), "{text}");
        assert!(text.contains("fix: Stop exporting keys"), "{text}");
        assert!(text.contains("1 of 2 aliases pass."), "{text}");
    }
    let only = Options { models: vec!["good".into()], ..opts(&gw.url(), false) };
    assert_eq!(verify::run(&only).await.exit_code, 0);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn gateway_errors_are_reported_with_their_diagnosis() {
    let (_home, _mock, gw) = setup().await;
    let wrong = Options { key: Some(Secret::new("sk-wrong")), ..opts(&gw.url(), false) };
    let report = verify::run(&wrong).await;
    assert_eq!(report.exit_code, 1);
    let listing = report.listing_error.as_ref().unwrap();
    assert_eq!(listing.class.as_deref(), Some("unauthorized"));
    assert_eq!(listing.diagnosis.as_ref().unwrap()["id"], "GW-01");
    assert!(!verify::text(&report).contains("sk-wrong"), "the key was echoed");

    let unknown = Options { models: vec!["nope".into()], ..opts(&gw.url(), false) };
    let report = verify::run(&unknown).await;
    let error = report.results[0].error.as_ref().unwrap();
    assert_eq!(error.diagnosis.as_ref().unwrap()["id"], "GW-02");
    assert!(error.message.contains("good, broken"), "{}", error.message);

    // GW-04: nothing listens at the URL any more.
    let url = gw.url();
    gw.shutdown().await.unwrap();
    let report = verify::run(&opts(&url, false)).await;
    assert_eq!(report.exit_code, 3);
    let d = report.unavailable.as_ref().unwrap();
    assert_eq!(d.id, "GW-04");
    assert!(d.cause.contains(&format!("No Switchyard gateway is running at {url}")), "{}", d.cause);
    assert!(d.remedy.contains("switchyard start --config"), "{}", d.remedy);
    assert!(d.remedy.contains("/var/state/switchyard"), "{}", d.remedy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_0_only_when_all_pass_and_3_when_nothing_runs() {
    let (home, _mock, gw) = setup().await;
    let run = |args: Vec<String>| {
        let home = home.path().to_owned();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_switchyard"))
                .args(args)
                .env_clear()
                .env("HOME", home)
                .env("SWITCHYARD_MASTER_KEY", MASTER)
                .output()
                .unwrap()
        })
    };
    let url = gw.url();
    let out = run(vec!["verify".into(), "--url".into(), url.clone()]).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = run(vec!["verify".into(), "--url".into(), url.clone(), "-m".into(), "good".into()])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let out =
        run(vec!["verify".into(), "--json".into(), "--url".into(), url.clone(), "--stream".into()])
            .await
            .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["results"][1]["error"]["diagnosis"]["id"], "AWS-01");
    gw.shutdown().await.unwrap();
    let out = run(vec!["verify".into(), "--url".into(), url.clone()]).await.unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GW-04") && stderr.contains(&url), "{stderr}");
    assert!(stderr.contains(".local/state/switchyard"), "{stderr}");
}
