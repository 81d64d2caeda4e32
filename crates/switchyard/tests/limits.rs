//! Budgets and rate limits end to end: in-process gateways (port 0) against the mock
//! upstream, counting in process or in the machine's real Redis (a fresh key prefix per
//! test, deleted afterwards), on a manual clock where a test crosses a boundary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod limits_support;
mod support;

use std::sync::Arc;
use std::time::Duration;

use mock_upstream::Reply;
use serde_json::{Value, json};
use switchyard::limits::{Limits, ManualClock, SystemClock};
use switchyard::secret::Secret;
use switchyard::server::Handle;

use ledger_support::{Relay, eventually};
use limits_support::*;

const TEN_REQUESTS: &str = "litellm_settings:\n  max_budget: 0.001075\n  budget_duration: 1d\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_requests_against_a_budget_for_ten_serve_ten() {
    let mock = mock().await;
    mock.set_default(Reply::text("WORKS").usage(usage(7, 100)).delay(Duration::from_millis(400)));
    let cfg =
        config(&[deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &[])], TEN_REQUESTS);
    let gw = start(cfg, Limits::in_process()).await;
    let served = burst(&[&gw], 100).await;
    assert_eq!(served, 10, "the budget holds ten reservations, not a hundred");
    assert_eq!(mock.calls(), 10, "refused requests never reach the upstream");
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_sharing_redis_enforce_one_budget_not_two() {
    let prefix = RedisPrefix::new();
    let mock = mock().await;
    mock.set_default(Reply::text("WORKS").usage(usage(7, 100)).delay(Duration::from_millis(400)));
    let d = deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &[]);
    let a = start(
        config(std::slice::from_ref(&d), TEN_REQUESTS),
        prefix.engine(REDIS, Arc::new(SystemClock), false),
    )
    .await;
    let b =
        start(config(&[d], TEN_REQUESTS), prefix.engine(REDIS, Arc::new(SystemClock), false)).await;
    let served = burst(&[&a, &b], 100).await;
    assert_eq!(served, 10, "two replicas serve the one budget once, not twice");
    assert_eq!(mock.calls(), 10);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    prefix.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_rpm_over_two_replicas_serves_exactly_that_many_a_minute() {
    let prefix = RedisPrefix::new();
    let mock = mock().await;
    let d = deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &["rpm: 5"]);
    let clock = Arc::new(ManualClock::new(at("2026-12-03T20:15:10Z")));
    let a = start(config(std::slice::from_ref(&d), ""), prefix.engine(REDIS, clock.clone(), false))
        .await;
    let b = start(config(&[d], ""), prefix.engine(REDIS, clock.clone(), false)).await;
    let c = client();
    let mut served = 0;
    let mut refused = None;
    for i in 0..12 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let resp = post_chat(&c, &gw.url(), &chat("cheap", None)).await;
        if resp.status() == 200 {
            served += 1;
            assert_eq!(resp.headers()["x-ratelimit-limit-requests"], "5");
            assert_eq!(
                resp.headers()["x-ratelimit-remaining-requests"].to_str().unwrap(),
                (5 - served).to_string()
            );
        } else {
            assert_eq!(resp.status(), 429);
            assert_eq!(resp.headers()["retry-after"], "50", "the next fixed minute starts in 50 s");
            assert_eq!(resp.headers()["x-ratelimit-limit-requests"], "5");
            assert_eq!(resp.headers()["x-ratelimit-remaining-requests"], "0");
            assert_eq!(resp.headers()["x-ratelimit-reset-requests"], "50");
            refused = Some(resp.json::<Value>().await.unwrap());
        }
    }
    assert_eq!(served, 5);
    assert_eq!(mock.calls(), 5);
    let refused = refused.unwrap();
    assert_eq!(refused["error"]["diagnosis"]["id"], "LIM-02", "{refused}");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    prefix.clean().await;
}

#[tokio::test]
async fn a_daily_budget_resets_at_utc_midnight() {
    let mock = mock().await;
    let clock = Arc::new(ManualClock::new(at("2026-12-03T23:59:00Z")));
    // Room for one request a day.
    let cfg = config(
        &[deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &[])],
        "litellm_settings:\n  max_budget: 0.00015\n  budget_duration: daily\n",
    );
    let gw = start(cfg, Limits::in_process_with_clock(clock.clone())).await;
    let c = client();
    assert_eq!(post_chat(&c, &gw.url(), &chat("cheap", None)).await.status(), 200);
    let refused = post_chat(&c, &gw.url(), &chat("cheap", None)).await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    let cause = body["error"]["diagnosis"]["cause"].as_str().unwrap();
    assert!(cause.contains("2026-12-04 00:00:00 UTC"), "{cause}");
    clock.set(at("2026-12-04T00:00:00Z"));
    assert_eq!(post_chat(&c, &gw.url(), &chat("cheap", None)).await.status(), 200, "a new day");
    assert_eq!(mock.calls(), 2);
    gw.shutdown().await.unwrap();
}

/// Asserts LiteLLM's budget error on both surfaces, with our diagnosis, and no upstream
/// call.
async fn refused_on_both_surfaces(sections: &str, user: Option<&str>, scope: &str) {
    let mock = mock().await;
    let cfg = config(&[deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &[])], sections);
    let gw = start(cfg, Limits::in_process()).await;
    let c = client();

    let resp = post_chat(&c, &gw.url(), &chat("cheap", user)).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["type"], "budget_exceeded", "{body}");
    assert_eq!(error["code"], "400");
    assert_eq!(error["param"], Value::Null);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("Budget has been exceeded! Current cost: 0.0, Max budget: 0.0"),
        "{message}"
    );
    assert_eq!(error["diagnosis"]["id"], "BUD-01");
    assert!(error["diagnosis"]["cause"].as_str().unwrap().contains(scope), "{body}");

    let mut anthropic = chat("cheap", None);
    if let Some(u) = user {
        anthropic["metadata"] = json!({"user_id": u});
    }
    let resp = post_messages(&c, &gw.url(), &anthropic).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Budget has been exceeded!"), "{message}");
    assert!(message.contains(scope), "{message}");

    assert_eq!(mock.calls(), 0, "no upstream call was made");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_global_budget_refuses_before_any_upstream_call() {
    refused_on_both_surfaces(
        "litellm_settings:\n  max_budget: 0\n",
        None,
        "litellm_settings.max_budget",
    )
    .await;
}

#[tokio::test]
async fn an_alias_budget_refuses_before_any_upstream_call() {
    refused_on_both_surfaces(
        "model_max_budget:\n  cheap:\n    budget_limit: 0\n    time_period: 1d\n",
        None,
        "model `cheap`",
    )
    .await;
}

#[tokio::test]
async fn an_end_user_budget_refuses_that_user_only() {
    refused_on_both_surfaces(
        "litellm_settings:\n  max_end_user_budget: 0\n",
        Some("alice"),
        "end user `alice`",
    )
    .await;
    let mock = mock().await;
    let cfg = config(
        &[deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &[])],
        "litellm_settings:\n  max_end_user_budget: 0\n",
    );
    let gw = start(cfg, Limits::in_process()).await;
    let resp = post_chat(&client(), &gw.url(), &chat("cheap", None)).await;
    assert_eq!(resp.status(), 200, "a request without an end user is not limited by it");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_provider_over_its_budget_is_skipped_and_the_next_serves() {
    let mock = mock().await;
    let deployments = [
        deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &["order: 1"]),
        deployment(&mock, "cheap", "openai/gpt-4o-mini", &["order: 2"]),
    ];
    let cfg = config(
        &deployments,
        "provider_budget_config:\n  anthropic:\n    budget_limit: 0\n    time_period: 1d\n",
    );
    let gw = start(cfg, Limits::in_process()).await;
    let c = client();
    let resp = post_chat(&c, &gw.url(), &chat("cheap", None)).await;
    assert_eq!(resp.status(), 200);
    let skipped = resp.headers()["x-switchyard-skipped"].to_str().unwrap().to_owned();
    assert!(skipped.ends_with("=budget"), "{skipped}");
    let served = resp.headers()["x-switchyard-deployment"].to_str().unwrap().to_owned();
    assert!(!skipped.starts_with(&served), "{skipped} vs {served}");
    assert_eq!(mock.calls(), 1);
    assert!(mock.received()[0].path.contains("chat/completions"), "the OpenAI deployment served");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_deployment_over_its_budget_is_a_budget_error_naming_them() {
    let mock = mock().await;
    let deployments = [
        deployment(
            &mock,
            "cheap",
            "anthropic/claude-haiku-4-5",
            &["max_budget: 0", "budget_duration: 1d"],
        ),
        deployment(&mock, "cheap", "openai/gpt-4o-mini", &[]),
    ];
    let cfg = config(
        &deployments,
        "provider_budget_config:\n  openai:\n    budget_limit: 0\n    time_period: 1d\n",
    );
    let gw = start(cfg, Limits::in_process()).await;
    let resp = post_chat(&client(), &gw.url(), &chat("cheap", None)).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "budget_exceeded");
    assert_eq!(body["error"]["diagnosis"]["id"], "BUD-03");
    let cause = body["error"]["diagnosis"]["cause"].as_str().unwrap();
    assert!(cause.contains("provider `openai`") && cause.contains("deployment `"), "{cause}");
    assert_eq!(mock.calls(), 0);
    gw.shutdown().await.unwrap();
}

async fn limits_state(c: &reqwest::Client, gw: &Handle) -> Value {
    let health: Value = c
        .get(format!("{}/health?cached=true", gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    health["limits"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cut_keeps_serving_on_local_counters_reports_degraded_and_recovers() {
    let prefix = RedisPrefix::new();
    let relay = Relay::start(REDIS.parse().unwrap()).await;
    let mock = mock().await;
    let cfg = config(
        &[deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &[])],
        "litellm_settings:\n  max_budget: 100\n",
    );
    let gw = start(cfg, prefix.engine(&relay.addr.to_string(), Arc::new(SystemClock), false)).await;
    let c = client();
    assert_eq!(post_chat(&c, &gw.url(), &chat("cheap", None)).await.status(), 200);
    let state = limits_state(&c, &gw).await;
    assert_eq!(
        (state["backend"].as_str(), state["state"].as_str()),
        (Some("redis"), Some("ok")),
        "{state}"
    );

    relay.cut();
    assert_eq!(
        post_chat(&c, &gw.url(), &chat("cheap", None)).await.status(),
        200,
        "served on local counters while Redis is away"
    );
    let state = limits_state(&c, &gw).await;
    assert_eq!(state["state"], "degraded", "{state}");
    assert!(state["since"].is_string() && state["error"].is_string(), "{state}");

    relay.restore();
    let recovered = eventually(Duration::from_secs(10), || {
        let c = c.clone();
        let url = gw.url();
        async move {
            let _ = post_chat(&c, &url, &chat("cheap", None)).await;
            let health: Value = c
                .get(format!("{url}/health?cached=true"))
                .bearer_auth(MASTER)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            health["limits"]["state"] == "ok"
        }
    })
    .await;
    assert!(recovered, "back to Redis once it answers");
    gw.shutdown().await.unwrap();
    prefix.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_with_a_clear_error_while_redis_is_away() {
    let prefix = RedisPrefix::new();
    let relay = Relay::start(REDIS.parse().unwrap()).await;
    relay.cut();
    let mock = mock().await;
    let cfg = config(
        &[deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &[])],
        "litellm_settings:\n  max_budget: 100\n",
    );
    let gw = start(cfg, prefix.engine(&relay.addr.to_string(), Arc::new(SystemClock), true)).await;
    let c = client();
    let resp = post_chat(&c, &gw.url(), &chat("cheap", None)).await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["diagnosis"]["id"], "LIM-03", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Redis") && message.contains("fail_closed"), "{message}");
    assert!(!message.contains("redis://"), "no URL (and so no password) in the error");
    assert_eq!(mock.calls(), 0);
    let resp = post_messages(&c, &gw.url(), &chat("cheap", None)).await;
    assert_eq!(resp.status(), 503);
    gw.shutdown().await.unwrap();
    prefix.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_settles_to_its_cost_when_it_ends_and_a_failure_releases_its_reservation() {
    let mock = mock().await;
    // Room for one reservation ($0.000107) at a time; an answer costs $0.000002.
    mock.set_default(Reply::text("WORKS").usage(usage(1, 1)));
    let cfg = config(
        &[deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &[])],
        "litellm_settings:\n  max_budget: 0.00015\n",
    );
    let gw = start(cfg, Limits::in_process()).await;
    let c = client();
    for round in 0..3 {
        let mut body = chat("cheap", None);
        body["stream"] = json!(true);
        let resp = post_chat(&c, &gw.url(), &body).await;
        assert_eq!(resp.status(), 200, "round {round}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("[DONE]"), "{text}");
        // Settled in the background once the stream's charge is known.
        let settled = eventually(Duration::from_secs(5), || {
            let c = c.clone();
            let url = gw.url();
            async move {
                let resp = post_chat(&c, &url, &chat("cheap", None)).await;
                resp.status() == 200
            }
        })
        .await;
        assert!(settled, "round {round}: the stream's reservation was settled to its cost");
    }
    // A failed attempt releases its reservation too.
    mock.push(Reply::error(400, "invalid_request_error", "bad request"));
    let failed = post_chat(&c, &gw.url(), &chat("cheap", None)).await;
    assert_eq!(failed.status(), 400);
    let released = eventually(Duration::from_secs(5), || {
        let c = c.clone();
        let url = gw.url();
        async move { post_chat(&c, &url, &chat("cheap", None)).await.status() == 200 }
    })
    .await;
    assert!(released);
    gw.shutdown().await.unwrap();
}

/// Serves one request with a ledger, then starts a new engine seeded from that ledger: the
/// day's spend is remembered.
async fn a_restart_remembers_this_periods_spend(database_url: Option<String>) {
    use switchyard::ledger::{Ledger, Settings};
    use switchyard::limits::{ConfigLimits, seed_from_ledger};

    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        database_url: database_url.map(Secret::new),
        state_dir: dir.path().to_owned(),
        retention: None,
    };
    let mock = mock().await;
    let sections = "litellm_settings:\n  max_budget: 0.00015\n  budget_duration: daily\n";
    let d = deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &[]);

    let ledger = Ledger::open(&settings).unwrap();
    let first = start(config(std::slice::from_ref(&d), sections), Limits::in_process()).await;
    first.state.set_ledger(ledger.clone());
    assert_eq!(post_chat(&client(), &first.url(), &chat("cheap", None)).await.status(), 200);
    first.shutdown().await.unwrap();
    ledger.close(Duration::from_secs(5)).await;

    // A new process: its counters start empty, then the ledger's rows of today are summed.
    let cfg = config(&[d], sections);
    let limits = Limits::in_process();
    let seeded =
        seed_from_ledger(&limits, ConfigLimits::new(&cfg).budgets(), &settings).await.unwrap();
    assert_eq!(seeded, 1);
    let second = start(cfg, limits).await;
    let resp = post_chat(&client(), &second.url(), &chat("cheap", None)).await;
    assert_eq!(resp.status(), 400, "today's $0.000107 is remembered: another does not fit");
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Current cost: 0.000107"), "{message}");
    assert_eq!(mock.calls(), 1);
    second.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_remembers_this_periods_spend_from_the_sqlite_ledger() {
    a_restart_remembers_this_periods_spend(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_remembers_this_periods_spend_from_litellm_spendlogs_in_postgres() {
    let db = ledger_support::TestDb::create().await;
    a_restart_remembers_this_periods_spend(Some(db.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_tpm_counts_the_tokens_answers_used() {
    let prefix = RedisPrefix::new();
    let mock = mock().await;
    // The request is estimated at 7 tokens (reserved); its answer reports 107.
    let d = deployment(&mock, "cheap", "anthropic/claude-haiku-4-5", &["tpm: 50"]);
    let clock = Arc::new(ManualClock::new(at("2026-12-03T20:15:00Z")));
    let gw = start(config(&[d], ""), prefix.engine(REDIS, clock.clone(), false)).await;
    let c = client();
    let first = post_chat(&c, &gw.url(), &chat("cheap", None)).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-ratelimit-limit-tokens"], "50");
    assert_eq!(first.headers()["x-ratelimit-remaining-tokens"], "43", "7 reserved of 50");
    let settled = eventually(Duration::from_secs(5), || {
        let c = c.clone();
        let url = gw.url();
        async move { post_chat(&c, &url, &chat("cheap", None)).await.status() == 429 }
    })
    .await;
    assert!(settled, "once settled to the 107 tokens used, the minute's 50 are gone");
    clock.advance(chrono::Duration::seconds(60));
    assert_eq!(post_chat(&c, &gw.url(), &chat("cheap", None)).await.status(), 200, "a new minute");
    gw.shutdown().await.unwrap();
    prefix.clean().await;
}
