//! Which deployment a requested name reaches: wildcard `model_name`s (the requested name
//! fills the `*`), `router_settings.model_group_alias`, tag routing — and their precedence
//! (alias, then exact name, then the most specific pattern) — and `/v1/models` in OpenAI's
//! and Anthropic's shapes. The mock upstream records which model id went upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use mock_upstream::{AwsIdentity, MockUpstream};
use serde_json::{Value, json};
use switchyard::config::{self, MapEnv};
use switchyard::keys::{Keys, POLL, Settings as KeySettings};
use switchyard::server::Handle;

const MASTER: &str = "sk-gw-routes-0123456789";
const KEY: &str = "sk-ant-api03-routes-test-key-0000000";
const AWS_KEY: &str = "AKIAMOCKBEDROCK00001";
const AWS_SECRET: &str = "mockBedrockSecretAccessKey00000000000000";

fn load(yaml: &str) -> config::Config {
    support::config(yaml, &support::no_home())
}

async fn gateway(yaml: &str) -> Handle {
    support::start(load(yaml)).await
}

async fn mock() -> MockUpstream {
    let mock = MockUpstream::builder().api_key(KEY).start().await;
    mock.aws().identity(AwsIdentity::new(AWS_KEY, AWS_SECRET));
    mock
}

/// An Anthropic deployment at the mock: `model_name`, `model` and its id.
fn anthropic(mock: &MockUpstream, name: &str, model: &str, id: &str, extra: &str) -> String {
    format!(
        "  - model_name: \"{name}\"\n    litellm_params:\n      model: \"{model}\"\n      \
         api_key: {KEY}\n      api_base: {url}\n{extra}    model_info:\n      id: {id}\n",
        url = mock.url()
    )
}

fn config(deployments: &[String], rest: &str) -> String {
    format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\n{rest}general_settings:\n  master_key: {MASTER}\n",
        deployments.concat()
    )
}

async fn chat(gw: &Handle, key: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn say(model: &str) -> Value {
    json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "Say: WORKS"}]})
}

fn served_by(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-litellm-model-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Sends `model` as the master key; the deployment that served and the model id the mock
/// received last (Anthropic and OpenAI in the body, Bedrock in the path).
async fn route(gw: &Handle, mock: &MockUpstream, model: &str) -> (String, String) {
    let resp = chat(gw, MASTER, say(model)).await;
    let id = served_by(&resp);
    let status = resp.status();
    assert_eq!(status, 200, "{model}: {}", resp.text().await.unwrap());
    let received = mock.received();
    let last = received.last().unwrap_or_else(|| panic!("{model}: nothing went upstream"));
    let upstream = match last.body["model"].as_str() {
        Some(m) => m.to_owned(),
        None => last.path.clone(),
    };
    (id, upstream)
}

#[tokio::test]
async fn a_provider_wildcard_sends_the_requested_model_upstream() {
    let mock = mock().await;
    let gw =
        gateway(&config(&[anthropic(&mock, "anthropic/*", "anthropic/*", "any-claude", "")], ""))
            .await;
    assert_eq!(
        route(&gw, &mock, "anthropic/claude-sonnet-4-6").await,
        ("any-claude".into(), "claude-sonnet-4-6".into())
    );
    // A bare Claude name, as Claude Code sends it, matches with the provider LiteLLM infers.
    assert_eq!(
        route(&gw, &mock, "claude-haiku-4-5-20251001").await,
        ("any-claude".into(), "claude-haiku-4-5-20251001".into())
    );
    // A name of another provider matches nothing.
    let resp = chat(&gw, MASTER, say("openai/gpt-4o")).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("anthropic/*"), "{body}");
}

#[tokio::test]
async fn a_prefix_pattern_fills_the_star_of_its_model_and_a_bare_star_catches_the_rest() {
    let mock = mock().await;
    let openai_any = format!(
        "  - model_name: \"*\"\n    litellm_params:\n      model: openai/*\n      api_key: {KEY}\n      \
         api_base: {}/v1\n    model_info:\n      id: catch-all\n",
        mock.url()
    );
    let gw = gateway(&config(
        &[anthropic(&mock, "sonnet-*", "anthropic/claude-sonnet-*", "sonnets", ""), openai_any],
        "",
    ))
    .await;
    assert_eq!(
        route(&gw, &mock, "sonnet-4-6").await,
        ("sonnets".into(), "claude-sonnet-4-6".into())
    );
    assert_eq!(route(&gw, &mock, "gpt-4o").await, ("catch-all".into(), "gpt-4o".into()));
}

#[tokio::test]
async fn a_bedrock_wildcard_calls_the_requested_model_id() {
    let mock = mock().await;
    let bedrock = format!(
        "  - model_name: bedrock/*\n    litellm_params:\n      model: bedrock/*\n      \
         aws_access_key_id: {AWS_KEY}\n      aws_secret_access_key: {AWS_SECRET}\n      \
         aws_region_name: us-east-1\n      aws_bedrock_runtime_endpoint: {}\n    model_info:\n      \
         id: any-bedrock\n",
        mock.url()
    );
    let gw = gateway(&config(&[bedrock], "")).await;
    let id = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
    let (served, path) = route(&gw, &mock, &format!("bedrock/{id}")).await;
    assert_eq!(served, "any-bedrock");
    assert_eq!(path, format!("/model/{}/invoke", id.replace(':', "%3A")));
    // The bare geo-profile id Claude Code sends on Bedrock reaches it too.
    let (_, path) = route(&gw, &mock, id).await;
    assert_eq!(path, format!("/model/{}/invoke", id.replace(':', "%3A")));
}

#[tokio::test]
async fn exact_names_win_over_patterns_and_longer_patterns_over_shorter() {
    let mock = mock().await;
    let gw = gateway(&config(
        &[
            anthropic(&mock, "*", "anthropic/*", "everything", ""),
            anthropic(&mock, "claude-*", "anthropic/claude-*", "claudes", ""),
            anthropic(&mock, "claude-opus-*", "anthropic/claude-opus-4-5", "opus-pinned", ""),
            anthropic(&mock, "claude-sonnet-4-6", "anthropic/claude-opus-4-5", "exact", ""),
        ],
        "",
    ))
    .await;
    assert_eq!(
        route(&gw, &mock, "claude-sonnet-4-6").await,
        ("exact".into(), "claude-opus-4-5".into())
    );
    assert_eq!(
        route(&gw, &mock, "claude-opus-4-1").await,
        ("opus-pinned".into(), "claude-opus-4-5".into()),
        "a model without `*` is used as written"
    );
    assert_eq!(
        route(&gw, &mock, "claude-haiku-4-5").await,
        ("claudes".into(), "claude-haiku-4-5".into())
    );
    assert_eq!(route(&gw, &mock, "my-model").await, ("everything".into(), "my-model".into()));
}

#[tokio::test]
async fn an_alias_reaches_its_group_in_both_forms_and_is_looked_up_first() {
    let mock = mock().await;
    let gw = gateway(&config(
        &[
            anthropic(&mock, "balanced", "anthropic/claude-sonnet-4-5", "balanced-1", ""),
            anthropic(&mock, "claude-*", "anthropic/claude-*", "claudes", ""),
            anthropic(&mock, "old-name", "anthropic/claude-3-7-sonnet-20250219", "old", ""),
        ],
        "  model_group_alias:\n    claude-sonnet-4-6: balanced\n    \
         secret-tier: {\"model\": \"balanced\", \"hidden\": true}\n    old-name: balanced\n",
    ))
    .await;
    // The alias wins over the wildcard that also matches the name…
    assert_eq!(
        route(&gw, &mock, "claude-sonnet-4-6").await,
        ("balanced-1".into(), "claude-sonnet-4-5".into())
    );
    // …the object form routes like the string form…
    assert_eq!(route(&gw, &mock, "secret-tier").await.0, "balanced-1");
    // …and, as in LiteLLM, over a model_name of the same name.
    assert_eq!(route(&gw, &mock, "old-name").await.0, "balanced-1");
    // Names no alias covers still reach the wildcard.
    assert_eq!(route(&gw, &mock, "claude-haiku-4-5").await.0, "claudes");
}

#[test]
fn an_alias_to_an_unknown_group_is_reported_with_the_groups_and_its_shadowing_is_warned() {
    let cfg = load(&format!(
        "model_list:\n  - model_name: balanced\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      \
         api_key: {KEY}\n  - model_name: cheap\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      \
         api_key: {KEY}\nrouter_settings:\n  model_group_alias:\n    claude-sonnet-4-6: balancd\n    cheap: balanced\n"
    ));
    let w = cfg
        .warnings
        .iter()
        .find(|w| w.key == "router_settings.model_group_alias.claude-sonnet-4-6");
    let w = w.unwrap_or_else(|| panic!("{:?}", cfg.warnings));
    assert_eq!(w.id, "CFG-05");
    assert!(w.message.contains("`balancd`"), "{}", w.message);
    assert!(w.message.contains("balanced, cheap"), "{}", w.message);
    assert!(w.message.contains("did you mean `balanced`"), "{}", w.message);
    let shadow = cfg.warnings.iter().find(|w| w.key == "router_settings.model_group_alias.cheap");
    assert!(shadow.unwrap().message.contains("both a model_name and a model_group_alias"));
}

#[test]
fn a_malformed_alias_stops_the_config_with_what_to_write() {
    let text = format!(
        "model_list:\n  - model_name: balanced\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      \
         api_key: {KEY}\nrouter_settings:\n  model_group_alias:\n    x: {{\"hidden\": true}}\n"
    );
    let err =
        config::load_from_str(&text, Path::new("routes.yaml"), &MapEnv::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("CFG-09") && text.contains("model_group_alias.x"), "{text}");
}

fn tagged(mock: &MockUpstream, group: &str, id: &str, tags: &str) -> String {
    anthropic(mock, group, "anthropic/claude-haiku-4-5", id, &format!("      tags: {tags}\n"))
}

async fn tag_route(gw: &Handle, body: Value, header: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(MASTER)
        .json(&body);
    if let Some(h) = header {
        req = req.header("x-litellm-tags", h);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn tags_choose_deployments_and_untagged_requests_go_to_default() {
    let mock = mock().await;
    let gw = gateway(&config(
        &[
            tagged(&mock, "tiered", "t-free", "[free]"),
            tagged(&mock, "tiered", "t-paid", "[paid, teamA]"),
            tagged(&mock, "tiered", "t-default", "[default]"),
            tagged(&mock, "plain", "p-a", "[a]"),
            tagged(&mock, "plain", "p-b", "[b]"),
        ],
        "  enable_tag_filtering: true\n",
    ))
    .await;
    let mut paid = say("tiered");
    paid["metadata"] = json!({"tags": ["paid"]});
    assert_eq!(served_by(&tag_route(&gw, paid, None).await), "t-paid");
    let mut top = say("tiered");
    top["tags"] = json!(["teamA"]);
    assert_eq!(served_by(&tag_route(&gw, top, None).await), "t-paid");
    assert_eq!(served_by(&tag_route(&gw, say("tiered"), Some("nope, free")).await), "t-free");
    // Untagged: the `default` deployment, every time.
    for _ in 0..4 {
        assert_eq!(served_by(&tag_route(&gw, say("tiered"), None).await), "t-default");
    }
    // Tags nothing carries: `default` too, as LiteLLM does.
    assert_eq!(served_by(&tag_route(&gw, say("tiered"), Some("gold")).await), "t-default");
    // Without a `default` deployment, untagged requests may use any deployment…
    let resp = tag_route(&gw, say("plain"), None).await;
    assert_eq!(resp.status(), 200);
    // …and tags nothing carries are an error naming both sides.
    let resp = tag_route(&gw, say("plain"), Some("gold,silver")).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    let text = body.to_string();
    assert!(text.contains("GW-07"), "{text}");
    assert!(text.contains("[gold, silver]"), "{text}");
    assert!(text.contains("p-a (tags: a)") && text.contains("p-b (tags: b)"), "{text}");
}

#[tokio::test]
async fn tag_filtering_is_off_unless_asked_and_general_settings_can_ask() {
    let mock = mock().await;
    let deployments = [tagged(&mock, "plain", "p-a", "[a]"), tagged(&mock, "plain", "p-b", "[b]")];
    let off = gateway(&config(&deployments, "")).await;
    assert_eq!(tag_route(&off, say("plain"), Some("gold")).await.status(), 200);
    let on = gateway(
        &config(&deployments, "")
            .replace("general_settings:\n", "general_settings:\n  enable_tag_filtering: true\n"),
    )
    .await;
    for _ in 0..4 {
        assert_eq!(served_by(&tag_route(&on, say("plain"), Some("b")).await), "p-b");
    }
    assert_eq!(tag_route(&on, say("plain"), Some("gold")).await.status(), 400);
}

fn listing_config(mock: &MockUpstream) -> String {
    config(
        &[
            anthropic(mock, "balanced", "anthropic/claude-sonnet-4-5", "balanced-1", ""),
            anthropic(mock, "cheap", "anthropic/claude-haiku-4-5", "cheap-1", ""),
            anthropic(mock, "anthropic/*", "anthropic/*", "any-claude", ""),
        ],
        "  model_group_alias:\n    claude-sonnet-4-6: balanced\n    \
         hidden-tier: {\"model\": \"cheap\", \"hidden\": true}\n",
    )
}

async fn get(gw: &Handle, path: &str, key: &str, anthropic: bool) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", gw.url())).bearer_auth(key);
    if anthropic {
        req = req.header("anthropic-version", "2023-06-01");
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn ids(list: &Value) -> Vec<String> {
    list["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_model_list_names_groups_visible_aliases_and_wildcard_models_in_both_shapes() {
    let mock = mock().await;
    let gw = gateway(&listing_config(&mock)).await;
    let (status, list) = get(&gw, "/v1/models", MASTER, false).await;
    assert_eq!(status, 200);
    assert_eq!(list["object"], "list");
    let names = ids(&list);
    assert_eq!(names[..3], ["balanced", "cheap", "claude-sonnet-4-6"], "{names:?}");
    assert!(!names.iter().any(|n| n == "hidden-tier" || n.contains('*')), "{names:?}");
    // The wildcard lists the models of the built-in price table it matches.
    assert!(names.iter().any(|n| n == "anthropic/claude-sonnet-4-6"), "{names:?}");
    assert_eq!(list["data"][0]["object"], "model");

    let (status, list) = get(&gw, "/v1/models", MASTER, true).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&list), names);
    assert_eq!(list["has_more"], false);
    assert_eq!(list["first_id"], "balanced");
    assert_eq!(list["last_id"], names.last().unwrap().as_str());
    let first = &list["data"][0];
    assert_eq!(first["type"], "model");
    assert_eq!(first["display_name"], "balanced");
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));

    // One model, in either shape: a listed name, a hidden alias, a name a wildcard matches.
    let (status, one) = get(&gw, "/v1/models/hidden-tier", MASTER, false).await;
    assert_eq!((status, one["id"].as_str()), (200, Some("hidden-tier")));
    let (status, one) = get(&gw, "/v1/models/anthropic/claude-opus-4-5", MASTER, true).await;
    assert_eq!(
        (status, &one["type"], &one["id"]),
        (200, &json!("model"), &json!("anthropic/claude-opus-4-5"))
    );
    let (status, err) = get(&gw, "/v1/models/no-such-model", MASTER, true).await;
    assert_eq!(status, 400);
    assert_eq!(err["type"], "error");
    assert!(err.to_string().contains("GW-02"), "{err}");
    let (status, err) = get(&gw, "/v1/models/no-such-model", MASTER, false).await;
    assert_eq!(status, 400);
    assert!(err["error"]["message"].as_str().unwrap().contains("no-such-model"), "{err}");
}

#[tokio::test]
async fn a_virtual_key_sees_and_calls_only_what_it_may() {
    let mock = mock().await;
    let gw = gateway(&listing_config(&mock)).await;
    let dir = tempfile::tempdir().unwrap();
    let keys =
        Keys::open(&KeySettings { database_url: None, state_dir: dir.path().to_owned() }).unwrap();
    keys.start(POLL).await;
    gw.state.set_keys(keys.clone());
    let generate = |models: Value| {
        let url = format!("{}/key/generate", gw.url());
        async move {
            let resp = reqwest::Client::new()
                .post(url)
                .bearer_auth(MASTER)
                .json(&json!({"models": models}))
                .send()
                .await
                .unwrap();
            let body: Value = resp.json().await.unwrap();
            body["key"].as_str().unwrap().to_owned()
        }
    };
    let wild = generate(json!(["anthropic/*"])).await;
    let tier = generate(json!(["balanced"])).await;

    let (_, list) = get(&gw, "/v1/models", &wild, false).await;
    let names = ids(&list);
    assert!(!names.is_empty() && names.iter().all(|n| n.starts_with("anthropic/")), "{names:?}");
    assert_eq!(chat(&gw, &wild, say("anthropic/claude-haiku-4-5")).await.status(), 200);
    assert_eq!(chat(&gw, &wild, say("balanced")).await.status(), 403);

    // A key allowed a group sees and calls its alias too, not the other groups.
    let (_, list) = get(&gw, "/v1/models", &tier, true).await;
    assert_eq!(ids(&list), ["balanced", "claude-sonnet-4-6"]);
    assert_eq!(chat(&gw, &tier, say("claude-sonnet-4-6")).await.status(), 200);
    assert_eq!(chat(&gw, &tier, say("cheap")).await.status(), 403);
    let (status, _) = get(&gw, "/v1/models/cheap", &tier, false).await;
    assert_eq!(status, 400, "a name the key may not call is unknown to it");
}

#[tokio::test]
async fn wildcard_requests_are_priced_per_model_and_counted_under_the_pattern() {
    let mock = mock().await;
    let gw =
        gateway(&config(&[anthropic(&mock, "anthropic/*", "anthropic/*", "any-claude", "")], ""))
            .await;
    let resp = chat(&gw, MASTER, say("anthropic/claude-sonnet-4-6")).await;
    assert_eq!(resp.status(), 200);
    let cost =
        resp.headers().get("x-litellm-response-cost").map(|v| v.to_str().unwrap().to_owned());
    let cost: f64 =
        cost.expect("a wildcard model the price table knows is priced").parse().unwrap();
    assert!(cost > 0.0);
    // A name the price table does not know is served, with its spend unknown (never $0).
    let resp = chat(&gw, MASTER, say("anthropic/claude-label-probe-7f3a")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-litellm-response-cost").is_none());

    let scrape = reqwest::Client::new()
        .get(format!("{}/metrics", gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!scrape.contains("claude-label-probe-7f3a"), "a client's name became a label");
    assert!(scrape.contains("requested_model=\"anthropic/*\""), "{scrape}");
}

#[tokio::test]
async fn health_probes_a_wildcard_only_through_its_health_check_model() {
    let mock = mock().await;
    let gw = gateway(&config(
        &[
            anthropic(&mock, "anthropic/*", "anthropic/*", "unprobed", ""),
            format!(
                "{}      health_check_model: claude-haiku-4-5\n",
                anthropic(&mock, "claude-*", "anthropic/claude-*", "probed", "")
            ),
        ],
        "",
    ))
    .await;
    let (status, health) = get(&gw, "/health", MASTER, false).await;
    assert_eq!(status, 200);
    let all: Vec<&Value> = ["healthy_endpoints", "unhealthy_endpoints"]
        .iter()
        .flat_map(|k| health[k].as_array().unwrap())
        .collect();
    let by = |id: &str| *all.iter().find(|e| e["model_id"] == id).unwrap();
    assert!(by("unprobed")["health_check"].as_str().unwrap().contains("health_check_model"));
    assert_eq!(by("probed")["health_check_model"], "claude-haiku-4-5");
    assert_eq!(health["healthy_count"], 2, "{health}");
    let models: Vec<String> = mock
        .received()
        .iter()
        .filter_map(|r| r.body["model"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(models, ["claude-haiku-4-5"], "only the health_check_model was asked");
}

#[tokio::test]
async fn the_ledger_records_the_requested_name_and_the_model_that_served() {
    use switchyard::ledger::{Ledger, Settings as LedgerSettings};
    let mock = mock().await;
    let gw = gateway(&config(
        &[
            anthropic(&mock, "anthropic/*", "anthropic/*", "any-claude", ""),
            anthropic(&mock, "balanced", "anthropic/claude-sonnet-4-5", "balanced-1", ""),
        ],
        "  model_group_alias:\n    claude-sonnet-4-6: balanced\n",
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&LedgerSettings {
        database_url: None,
        state_dir: dir.path().to_owned(),
        retention: None,
    })
    .unwrap();
    gw.state.set_ledger(ledger.clone());
    assert_eq!(chat(&gw, MASTER, say("anthropic/claude-haiku-4-5")).await.status(), 200);
    assert_eq!(chat(&gw, MASTER, say("claude-sonnet-4-6")).await.status(), 200);
    ledger.close(std::time::Duration::from_secs(5)).await;

    let (status, rows) = get(&gw, "/spend/logs", MASTER, false).await;
    assert_eq!(status, 200, "{rows}");
    let mut seen: Vec<(String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["model_group"].as_str().unwrap().to_owned(), r["model"].as_str().unwrap().to_owned())
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("anthropic/claude-haiku-4-5".to_owned(), "claude-haiku-4-5".to_owned()),
            ("claude-sonnet-4-6".to_owned(), "claude-sonnet-4-5".to_owned()),
        ]
    );
}

#[tokio::test]
async fn fallbacks_apply_to_a_wildcard_by_its_pattern_and_may_name_what_it_matches() {
    let mock = mock().await;
    let broken = anthropic(&mock, "anthropic/*", "anthropic/*", "any-claude", "")
        .replace(&format!("api_key: {KEY}"), "api_key: sk-ant-api03-rejected-key-000000000");
    let text = config(
        &[broken, anthropic(&mock, "openai/*", "anthropic/claude-haiku-4-5", "stand-in", "")],
        "  fallbacks: [{\"anthropic/*\": [\"openai/gpt-4o\"]}]\n",
    );
    let cfg = load(&text);
    assert!(!cfg.warnings.iter().any(|w| w.id == "CFG-05"), "{:?}", cfg.warnings);
    let gw = gateway(&text).await;
    let resp = chat(&gw, MASTER, say("anthropic/claude-sonnet-4-6")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(served_by(&resp), "stand-in");
    assert_eq!(resp.headers()["x-litellm-attempted-fallbacks"], "1");
}

#[tokio::test]
async fn doctor_probes_a_wildcard_only_through_its_health_check_model() {
    use switchyard::diagnose::doctor::{self, Outcome};
    let mock = mock().await;
    let cfg = load(&config(
        &[
            anthropic(&mock, "anthropic/*", "anthropic/*", "unprobed", ""),
            format!(
                "{}      health_check_model: claude-haiku-4-5\n",
                anthropic(&mock, "claude-*", "anthropic/claude-*", "probed", "")
            ),
        ],
        "",
    ));
    let dir = tempfile::tempdir().unwrap();
    let opts = doctor::Options {
        aliases: Vec::new(),
        offline: false,
        stream: false,
        state_dir: Some(dir.path().to_owned()),
    };
    let report = doctor::run(&cfg, &support::no_home(), &opts).await;
    let by = |id: &str| {
        report.aliases.iter().flat_map(|a| &a.deployments).find(|d| d.id == id).unwrap().clone()
    };
    let unprobed = by("unprobed");
    assert!(
        matches!(&unprobed.result, Outcome::NotChecked { reason } if reason.contains("health_check_model")),
        "{:?}",
        unprobed.result
    );
    assert_eq!(by("probed").works(), Some(true));
    let models: Vec<String> = mock
        .received()
        .iter()
        .filter_map(|r| r.body["model"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(models, ["claude-haiku-4-5"]);
}

#[tokio::test]
async fn with_match_any_off_a_deployment_must_carry_every_tag() {
    let mock = mock().await;
    let gw = gateway(&config(
        &[tagged(&mock, "g", "only-a", "[a]"), tagged(&mock, "g", "a-and-b", "[a, b]")],
        "  enable_tag_filtering: true\n  tag_filtering_match_any: false\n",
    ))
    .await;
    for _ in 0..4 {
        assert_eq!(served_by(&tag_route(&gw, say("g"), Some("a,b")).await), "a-and-b");
    }
    let resp = tag_route(&gw, say("g"), Some("a,c")).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("has all of them"));
}
