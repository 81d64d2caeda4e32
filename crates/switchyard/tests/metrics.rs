//! `/metrics` end to end: requests through an in-process gateway with virtual keys, then the
//! exposition read back — LiteLLM's metric and label names and the values the requests
//! produced, deployment state and cooldowns, budgets left, the auth switch, and label
//! cardinality staying flat however many end users and tags clients send.
//!
//! The registry is one per process, so each test uses aliases of its own and reads only
//! the series that carry them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod limits_support;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use mock_upstream::{MockUpstream, Reply};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard::keys::{Keys, POLL, Settings as KeySettings};
use switchyard::ledger::{Ledger, Settings as LedgerSettings};
use switchyard::limits::Limits;
use switchyard::server::Handle;

use limits_support::*;

/// One sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Reads the text format: every sample line (comments checked for shape).
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            let mut parts = line.splitn(4, ' ');
            let (_, kind) = (parts.next(), parts.next().unwrap());
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("{line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap();
                let mut labels = BTreeMap::new();
                // Values here never contain `",`: the tests choose them.
                for pair in rest.split("\",") {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                    labels.insert(k.to_owned(), v.trim_end_matches('"').to_owned());
                }
                (name.to_owned(), labels)
            }
        };
        out.push((name, labels, value));
    }
    out
}

/// The sum of `name`'s samples whose labels include every pair of `want`.
fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, labels, _)| {
            n == name && want.iter().all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

fn count(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> usize {
    samples
        .iter()
        .filter(|(n, labels, _)| {
            n == name && want.iter().all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .count()
}

async fn scrape(gw: &Handle) -> Vec<Sample> {
    let resp = client().get(format!("{}/metrics", gw.url())).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    parse(&resp.text().await.unwrap())
}

fn sha256(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

async fn gateway(mock: &MockUpstream, deployments: &[String], sections: &str) -> Handle {
    let _ = mock;
    start(config(deployments, sections), Limits::in_process()).await
}

async fn with_keys(gw: &Handle, dir: &std::path::Path) -> Keys {
    let keys = Keys::open(&KeySettings { database_url: None, state_dir: dir.to_owned() }).unwrap();
    keys.start(POLL).await;
    gw.state.set_keys(keys.clone());
    keys
}

async fn admin(gw: &Handle, path: &str, body: Value) -> Value {
    let resp = client()
        .post(format!("{}{path}", gw.url()))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

async fn chat_with(gw: &Handle, key: &str, body: &Value) -> u16 {
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    // Read to the end: a stream is finished (and charged) only then.
    let _ = resp.bytes().await.unwrap();
    status
}

#[tokio::test]
async fn requests_spend_tokens_and_latency_carry_litellms_names_and_labels() {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw =
        gateway(&mock, &[deployment(&mock, "m-labels", "anthropic/claude-haiku-4-5", &[])], "")
            .await;
    let _keys = with_keys(&gw, dir.path()).await;
    let ledger = Ledger::open(&LedgerSettings {
        database_url: None,
        state_dir: dir.path().to_owned(),
        retention: None,
    })
    .unwrap();
    gw.state.set_ledger(ledger.clone());
    admin(
        &gw,
        "/team/new",
        json!({"team_id": "t-metrics", "team_alias": "blue", "max_budget": 2.0}),
    )
    .await;
    admin(
        &gw,
        "/user/new",
        json!({"user_id": "u-metrics", "max_budget": 3.0, "auto_create_key": false}),
    )
    .await;
    let key = admin(
        &gw,
        "/key/generate",
        json!({"key_alias": "ci", "team_id": "t-metrics", "user_id": "u-metrics", "max_budget": 0.5}),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(chat_with(&gw, &key, &chat("m-labels", Some("alice"))).await, 200);
    assert_eq!(chat_with(&gw, &key, &chat("m-labels", None)).await, 200);
    let mut streamed = chat("m-labels", None);
    streamed["stream"] = json!(true);
    assert_eq!(chat_with(&gw, &key, &streamed).await, 200);
    // A model the gateway does not serve: a failed request, its name folded.
    assert_eq!(chat_with(&gw, &key, &chat("no-such-model-xyz", None)).await, 400);

    let hash = sha256(&key);
    let who = [
        ("hashed_api_key", hash.as_str()),
        ("api_key_alias", "ci"),
        ("team", "t-metrics"),
        ("team_alias", "blue"),
        ("user", "u-metrics"),
        // End users are not labels unless the config asks for them.
        ("end_user", ""),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        who.iter().copied().chain(extra.iter().copied()).collect()
    };
    // The stream is recorded when it ends, just after the client read its last byte.
    let mut s = scrape(&gw).await;
    for _ in 0..100 {
        let latency = [("requested_model", "m-labels")];
        if value(&s, "litellm_request_total_latency_metric_count", &latency) == 3.0
            && value(&s, "switchyard_ledger_written_rows_total", &[]) == 4.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        s = scrape(&gw).await;
    }

    let ok = with(&[("requested_model", "m-labels"), ("status_code", "200")]);
    assert_eq!(value(&s, "litellm_proxy_total_requests_metric_total", &ok), 3.0);
    assert_eq!(count(&s, "litellm_proxy_total_requests_metric_total", &ok), 1);
    let failed = with(&[
        ("requested_model", "other"),
        ("exception_status", "400"),
        ("exception_class", "unknown_model"),
    ]);
    assert_eq!(value(&s, "litellm_proxy_failed_requests_metric_total", &failed), 1.0);
    assert_eq!(
        count(
            &s,
            "litellm_proxy_total_requests_metric_total",
            &[("requested_model", "no-such-model-xyz")]
        ),
        0,
        "a client's model name never becomes a label value"
    );

    // 7 input and 100 output tokens each, at $1 per million tokens either way.
    let model = with(&[("model", "claude-haiku-4-5")]);
    let spend = value(&s, "litellm_spend_metric_total", &model);
    assert!((spend - 3.0 * 0.000_107).abs() < 1e-12, "{spend}");
    let tokens = with(&[("model", "claude-haiku-4-5"), ("requested_model", "m-labels")]);
    assert_eq!(value(&s, "litellm_input_tokens_metric_total", &tokens), 21.0);
    assert_eq!(value(&s, "litellm_output_tokens_metric_total", &tokens), 300.0);
    assert_eq!(value(&s, "litellm_total_tokens_metric_total", &tokens), 321.0);

    let latency = with(&[("requested_model", "m-labels"), ("model", "claude-haiku-4-5")]);
    assert_eq!(value(&s, "litellm_llm_api_latency_metric_count", &latency), 3.0);
    assert_eq!(value(&s, "litellm_overhead_latency_metric_count", &latency), 3.0);
    // Time to first token is a stream's.
    assert_eq!(value(&s, "litellm_llm_api_time_to_first_token_metric_count", &latency), 1.0);
    let inf = with(&[("requested_model", "m-labels"), ("le", "+Inf")]);
    assert_eq!(value(&s, "litellm_request_total_latency_metric_bucket", &inf), 3.0);
    assert_eq!(
        count(
            &s,
            "litellm_request_total_latency_metric_bucket",
            &with(&[("requested_model", "m-labels")])
        ),
        36,
        "LiteLLM's 35 bounds and +Inf"
    );
    assert_eq!(
        count(
            &s,
            "litellm_request_total_latency_metric_bucket",
            &with(&[("requested_model", "m-labels"), ("le", "1.0")])
        ),
        1,
        "bounds are written as prometheus_client writes them"
    );

    let deployment =
        [("litellm_model_name", "anthropic/claude-haiku-4-5"), ("requested_model", "m-labels")];
    assert_eq!(value(&s, "litellm_deployment_success_responses_total", &deployment), 3.0);
    assert_eq!(value(&s, "litellm_deployment_total_requests_total", &deployment), 3.0);
    assert_eq!(
        value(
            &s,
            "litellm_deployment_state",
            &[("litellm_model_name", "anthropic/claude-haiku-4-5"), ("api_provider", "anthropic")]
        ),
        0.0
    );
    assert_eq!(value(&s, "switchyard_attempts_total", &[("requested_model", "m-labels")]), 3.0);
    assert!(value(&s, "switchyard_errors_total", &[("class", "unknown_model")]) >= 1.0);

    // Budgets left, from the admission engine's counters.
    let left = value(
        &s,
        "litellm_remaining_api_key_budget_metric",
        &[("hashed_api_key", &hash), ("api_key_alias", "ci")],
    );
    assert!((left - (0.5 - 3.0 * 0.000_107)).abs() < 1e-9, "{left}");
    assert_eq!(value(&s, "litellm_api_key_max_budget_metric", &[("api_key_alias", "ci")]), 0.5);
    let team_left = value(
        &s,
        "litellm_remaining_team_budget_metric",
        &[("team", "t-metrics"), ("team_alias", "blue")],
    );
    assert!((team_left - (2.0 - 3.0 * 0.000_107)).abs() < 1e-9, "{team_left}");
    let user_left = value(&s, "litellm_remaining_user_budget_metric", &[("user", "u-metrics")]);
    assert!((user_left - (3.0 - 3.0 * 0.000_107)).abs() < 1e-9, "{user_left}");
    assert_eq!(value(&s, "litellm_user_max_budget_metric", &[("user", "u-metrics")]), 3.0);

    assert_eq!(
        value(&s, "switchyard_state_store_up", &[("store", "keys"), ("backend", "sqlite")]),
        1.0
    );
    assert_eq!(value(&s, "switchyard_state_store_up", &[("store", "limits")]), 1.0);
    assert_eq!(
        value(&s, "switchyard_state_store_up", &[("store", "ledger"), ("backend", "sqlite")]),
        1.0
    );
    // Every request's row, the failed one too, is written: nothing queued or spooled.
    assert_eq!(value(&s, "switchyard_ledger_written_rows_total", &[]), 4.0);
    assert_eq!(value(&s, "switchyard_ledger_queued_rows", &[]), 0.0);
    assert_eq!(value(&s, "switchyard_ledger_spooled_rows", &[]), 0.0);
    assert_eq!(count(&s, "switchyard_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1);
    ledger.close(Duration::from_secs(5)).await;
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failover_counts_the_failed_call_and_the_cooldown() {
    let mock = mock().await;
    let first = deployment(&mock, "m-failover", "anthropic/claude-sonnet-4-5", &["order: 1"]);
    let second = deployment(&mock, "m-failover", "anthropic/claude-haiku-4-5", &["order: 2"]);
    let gw = gateway(&mock, &[first, second], "").await;
    mock.push(Reply::error(429, "rate_limit_error", "slow down").retry_after(600));

    assert_eq!(chat_with(&gw, MASTER, &chat("m-failover", None)).await, 200);

    let s = scrape(&gw).await;
    let sonnet = [("litellm_model_name", "anthropic/claude-sonnet-4-5")];
    let failure = [
        ("litellm_model_name", "anthropic/claude-sonnet-4-5"),
        ("requested_model", "m-failover"),
        ("exception_status", "429"),
        ("exception_class", "rate_limited"),
        ("hashed_api_key", &sha256(MASTER)),
    ];
    let failure: Vec<(&str, &str)> = failure.iter().map(|(k, v)| (*k, &**v)).collect();
    assert_eq!(value(&s, "litellm_deployment_failure_responses_total", &failure), 1.0);
    assert_eq!(
        value(
            &s,
            "litellm_deployment_success_responses_total",
            &[
                ("litellm_model_name", "anthropic/claude-haiku-4-5"),
                ("requested_model", "m-failover")
            ]
        ),
        1.0
    );
    let cooled =
        [("litellm_model_name", "anthropic/claude-sonnet-4-5"), ("exception_status", "429")];
    assert_eq!(value(&s, "litellm_deployment_cooled_down_total", &cooled), 1.0);
    assert_eq!(value(&s, "litellm_deployment_state", &sonnet), 2.0, "cooling: complete outage");
    assert_eq!(value(&s, "switchyard_attempts_total", &[("requested_model", "m-failover")]), 2.0);
    assert_eq!(value(&s, "switchyard_retries_total", &[("requested_model", "m-failover")]), 1.0);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_are_open_unless_the_config_asks_for_the_master_key() {
    let mock = mock().await;
    let d = [deployment(&mock, "m-auth", "anthropic/claude-haiku-4-5", &[])];
    let open = gateway(&mock, &d, "").await;
    let resp = client().get(format!("{}/metrics", open.url())).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    open.shutdown().await.unwrap();

    let closed = gateway(&mock, &d, "  require_auth_for_metrics_endpoint: true\n").await;
    let url = format!("{}/metrics", closed.url());
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client().get(&url).bearer_auth("sk-not-the-master").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client().get(&url).bearer_auth(MASTER).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("litellm_proxy_total_requests_metric"));
    closed.shutdown().await.unwrap();
}

#[tokio::test]
async fn series_stay_flat_over_ten_thousand_end_users_and_tags() {
    let mock = mock().await;
    let gw = gateway(
        &mock,
        &[deployment(&mock, "m-cardinality", "anthropic/claude-haiku-4-5", &[])],
        "",
    )
    .await;
    let c = client();
    let url = format!("{}/v1/chat/completions", gw.url());
    let send = |from: usize, to: usize| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for lane in 0..16 {
                let (c, url) = (c.clone(), url.clone());
                tasks.spawn(async move {
                    for i in (from + lane..to).step_by(16) {
                        let mut body = chat("m-cardinality", Some(&format!("user-{i}")));
                        body["metadata"] = json!({"tags": [format!("tag-{i}")]});
                        let resp =
                            c.post(&url).bearer_auth(MASTER).json(&body).send().await.unwrap();
                        assert_eq!(resp.status(), 200);
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        }
    };
    let ours = |s: &[Sample]| -> usize {
        s.iter()
            .filter(|(_, labels, _)| {
                labels.get("requested_model").is_some_and(|m| m == "m-cardinality")
            })
            .count()
    };

    send(0, 100).await;
    let before = scrape(&gw).await;
    send(100, 10_000).await;
    let after = scrape(&gw).await;

    assert!(ours(&before) > 0);
    assert_eq!(ours(&after), ours(&before), "series grew with end users and tags");
    assert_eq!(
        value(
            &after,
            "litellm_proxy_total_requests_metric_total",
            &[("requested_model", "m-cardinality")]
        ),
        10_000.0
    );
    for (_, labels, _) in &after {
        assert!(labels.values().all(|v| !v.starts_with("user-") && !v.starts_with("tag-")));
    }
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_response_cache_shows_its_size_and_its_store_in_the_scrape() {
    let mock = mock().await;
    let d = [deployment(&mock, "m-cache", "anthropic/claude-haiku-4-5", &[])];
    let sections = "litellm_settings:\n  cache: true\n  cache_params:\n    type: local\n    \
                    max_size_bytes: 1000000\n";
    let gw = gateway(&mock, &d, sections).await;
    let before = scrape(&gw).await;
    assert_eq!(value(&before, "switchyard_cache_entries", &[]), 0.0);
    assert_eq!(value(&before, "switchyard_cache_bytes", &[]), 0.0);
    assert_eq!(value(&before, "switchyard_cache_max_bytes", &[]), 1_000_000.0);
    assert_eq!(
        value(&before, "switchyard_state_store_up", &[("store", "cache"), ("backend", "memory")]),
        1.0
    );

    let body = chat("m-cache", None);
    assert_eq!(chat_with(&gw, MASTER, &body).await, 200);
    assert_eq!(chat_with(&gw, MASTER, &body).await, 200);
    assert_eq!(mock.received().len(), 1, "the second request is a hit");
    let after = scrape(&gw).await;
    assert_eq!(value(&after, "switchyard_cache_entries", &[]), 1.0);
    let bytes = value(&after, "switchyard_cache_bytes", &[]);
    assert!(bytes > 100.0 && bytes < 1_000_000.0, "{bytes}");
    assert_eq!(value(&after, "switchyard_cache_stores_total", &[]), 1.0);
    // A hit is a request served: counted, with its latency, and no spend.
    let this = [("requested_model", "m-cache")];
    assert_eq!(value(&after, "litellm_proxy_total_requests_metric_total", &this), 2.0);
    assert_eq!(value(&after, "litellm_request_total_latency_metric_count", &this), 2.0);
    // The hit and miss counters are the process's (other tests' gateways share them).
    assert!(value(&after, "switchyard_cache_hits_total", &[]) >= 1.0);

    // Emptied: the gauges follow at the next scrape.
    let resp =
        client().post(format!("{}/cache/flushall", gw.url())).bearer_auth(MASTER).send().await;
    assert_eq!(resp.unwrap().status(), 200);
    let emptied = scrape(&gw).await;
    assert_eq!(value(&emptied, "switchyard_cache_entries", &[]), 0.0);
    assert_eq!(value(&emptied, "switchyard_cache_bytes", &[]), 0.0);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn disable_metrics_records_nothing_and_says_so_at_the_endpoint() {
    let mock = mock().await;
    let d = [deployment(&mock, "m-off", "anthropic/claude-haiku-4-5", &[])];
    let off = gateway(&mock, &d, "  disable_metrics: true\n").await;
    assert_eq!(chat_with(&off, MASTER, &chat("m-off", None)).await, 200);
    let resp = client().get(format!("{}/metrics", off.url())).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("general_settings.disable_metrics"), "{message}");
    off.shutdown().await.unwrap();

    // The registry is the process's: a gateway with metrics on serving the same alias shows
    // that the request above left no series.
    let on = gateway(&mock, &d, "").await;
    let samples = scrape(&on).await;
    let want = [("requested_model", "m-off")];
    assert_eq!(count(&samples, "litellm_proxy_total_requests_metric_total", &want), 0);
    assert_eq!(chat_with(&on, MASTER, &chat("m-off", None)).await, 200);
    let samples = scrape(&on).await;
    assert_eq!(value(&samples, "litellm_proxy_total_requests_metric_total", &want), 1.0);
    on.shutdown().await.unwrap();
}

/// A stream the client got a 200 head for, then an error event (the upstream's own, or the
/// gateway's after the upstream cut the connection): the request is a failure in the request
/// metrics and the serving deployment's call a failed one, as the ledger records it —
/// translated (`/v1/chat/completions` to Anthropic) and relayed (`/v1/messages`) alike.
#[tokio::test]
async fn a_stream_that_fails_after_its_head_counts_as_a_failure() {
    let mock = mock().await;
    let dep = deployment(&mock, "m-midstream", "anthropic/claude-haiku-4-5", &[]);
    let gw = gateway(&mock, &[dep], "").await;
    let c = client();
    let mut body = chat("m-midstream", None);
    body["stream"] = json!(true);
    let mut ends = Vec::new();
    for relayed in [false, true] {
        for cut in [false, true] {
            let reply = if cut {
                Reply::text("one two three four").stream_drop_after(3)
            } else {
                Reply::stream_error_after(3, "overloaded_error", "busy upstream")
            };
            mock.push(reply);
            let resp = if relayed {
                post_messages(&c, &gw.url(), &body).await
            } else {
                post_chat(&c, &gw.url(), &body).await
            };
            assert_eq!(resp.status(), 200, "relayed={relayed} cut={cut}: the head was sent");
            let text = resp.text().await.unwrap();
            assert!(text.contains("error"), "relayed={relayed} cut={cut}: {text}");
            ends.push(text);
        }
    }
    // The charge (and the metrics) come when the stream's task ends.
    let mut s = scrape(&gw).await;
    for _ in 0..100 {
        if value(
            &s,
            "litellm_proxy_failed_requests_metric_total",
            &[("requested_model", "m-midstream")],
        ) >= 4.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        s = scrape(&gw).await;
    }
    let model = [("requested_model", "m-midstream")];
    assert_eq!(value(&s, "litellm_proxy_failed_requests_metric_total", &model), 4.0, "{ends:#?}");
    let overloaded = [
        ("requested_model", "m-midstream"),
        ("exception_class", "overloaded"),
        ("exception_status", "529"),
    ];
    assert_eq!(value(&s, "litellm_proxy_failed_requests_metric_total", &overloaded), 2.0);
    assert_eq!(
        value(
            &s,
            "litellm_proxy_total_requests_metric_total",
            &[("requested_model", "m-midstream"), ("status_code", "200")]
        ),
        0.0,
        "a failed stream is not a 200 in the metrics"
    );
    assert_eq!(value(&s, "litellm_proxy_total_requests_metric_total", &model), 4.0);
    assert_eq!(value(&s, "litellm_deployment_failure_responses_total", &model), 4.0);
    assert_eq!(value(&s, "litellm_deployment_success_responses_total", &model), 0.0);
    assert!(
        value(&s, "switchyard_errors_total", &[("class", "overloaded")]) >= 2.0,
        "the error counter names the class"
    );

    // A stream that completes is still a success.
    mock.push(Reply::text("WORKS"));
    let resp = post_chat(&c, &gw.url(), &body).await;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await.unwrap();
    let ok = [("requested_model", "m-midstream"), ("status_code", "200")];
    let mut s = scrape(&gw).await;
    for _ in 0..100 {
        if value(&s, "litellm_proxy_total_requests_metric_total", &ok) >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        s = scrape(&gw).await;
    }
    assert_eq!(value(&s, "litellm_proxy_total_requests_metric_total", &ok), 1.0);
    assert_eq!(value(&s, "litellm_deployment_success_responses_total", &model), 1.0);
    gw.shutdown().await.unwrap();
}
