//! Budgets and rate limits of virtual keys, teams, users and customers, end to end: keys
//! created through the management API, requests through both surfaces, counting in process
//! or in the machine's real Redis shared by several replicas, keys and ledger in SQLite or
//! in a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod limits_support;
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mock_upstream::{MockUpstream, Reply};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use switchyard::keys::{Keys, POLL, Settings as KeySettings};
use switchyard::ledger::{Ledger, Settings as LedgerSettings};
use switchyard::limits::{Limits, ManualClock, SystemClock};
use switchyard::server::Handle;

use ledger_support::{TestDb, eventually};
use limits_support::*;

/// One request's cost: 7 input and 100 output tokens at $1 per million each.
const ONE: &str = "0.000107";

struct Replica {
    gw: Handle,
    keys: Keys,
    ledger: Ledger,
}

/// A gateway on `limits`, with its keys and ledger in `dir` or in the database `db`.
async fn replica(
    mock: &MockUpstream,
    dir: &Path,
    db: Option<&str>,
    limits: Arc<Limits>,
) -> Replica {
    let deployments = [
        deployment(mock, "cheap", "anthropic/claude-haiku-4-5", &[]),
        deployment(mock, "frontier", "anthropic/claude-opus-4-5", &[]),
    ];
    let gw = start(config(&deployments, ""), limits).await;
    let keys = Keys::open(&KeySettings {
        database_url: db.map(switchyard::secret::Secret::new),
        state_dir: dir.to_owned(),
    })
    .unwrap();
    keys.start(POLL).await;
    gw.state.set_keys(keys.clone());
    let ledger = Ledger::open(&LedgerSettings {
        database_url: db.map(switchyard::secret::Secret::new),
        state_dir: dir.to_owned(),
        retention: None,
    })
    .unwrap();
    gw.state.set_ledger(ledger.clone());
    Replica { gw, keys, ledger }
}

impl Replica {
    async fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        let c = client();
        let url = format!("{}{path}", self.gw.url());
        let req = if method == "GET" { c.get(url) } else { c.post(url).json(&body) };
        let resp = req.bearer_auth(MASTER).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{method} {path}");
        resp.json().await.unwrap()
    }

    async fn key(&self, body: Value) -> String {
        self.admin("POST", "/key/generate", body).await["key"].as_str().unwrap().to_owned()
    }

    /// A chat completion with `key`: (status, headers, body).
    async fn chat(&self, key: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let resp = client()
            .post(format!("{}/v1/chat/completions", self.gw.url()))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        (status, headers, resp.json().await.unwrap_or(Value::Null))
    }

    async fn stop(self) {
        self.ledger.close(Duration::from_secs(5)).await;
        self.gw.shutdown().await.unwrap();
    }
}

fn usd(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// A budget for one request: $0.00015 holds one of $0.000107, not two.
const ONE_REQUEST: f64 = 0.00015;

/// Asserts the second request is refused with LiteLLM's budget error naming `names`, and
/// that it never reached the upstream.
async fn second_is_refused(r: &Replica, mock: &MockUpstream, key: &str, body: &Value, names: &str) {
    let (status, _, first) = r.chat(key, body).await;
    assert_eq!(status, 200, "{first}");
    let calls = mock.calls();
    let (status, _, refused) = r.chat(key, body).await;
    assert_eq!(status, 400, "{refused}");
    let error = &refused["error"];
    assert_eq!(error["type"], "budget_exceeded", "{refused}");
    assert_eq!(error["code"], "400", "{refused}");
    assert!(error["param"].is_null(), "{refused}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Budget has been exceeded! Current cost: {ONE}, Max budget: 0.00015"
        )),
        "{message}"
    );
    assert_eq!(error["diagnosis"]["id"], "BUD-01", "{refused}");
    let cause = error["diagnosis"]["cause"].as_str().unwrap();
    assert!(cause.contains(names), "{cause} should name {names}");
    assert_eq!(mock.calls(), calls, "a refused request never reaches the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_level_budget_refuses_before_any_upstream_call() {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let r = replica(&mock, dir.path(), None, Limits::in_process()).await;
    let body = chat("cheap", None);

    let key = r.key(json!({"key_alias": "k-budget", "max_budget": ONE_REQUEST})).await;
    second_is_refused(&r, &mock, &key, &body, "max_budget of the key (k-budget)").await;

    r.admin("POST", "/team/new", json!({"team_id": "t-budget", "max_budget": ONE_REQUEST})).await;
    let key = r.key(json!({"team_id": "t-budget"})).await;
    second_is_refused(&r, &mock, &key, &body, "team `t-budget`").await;

    r.admin("POST", "/user/new", json!({"user_id": "u-budget", "max_budget": ONE_REQUEST})).await;
    let key = r.key(json!({"user_id": "u-budget"})).await;
    second_is_refused(&r, &mock, &key, &body, "user `u-budget`").await;

    let model_budget = json!({"cheap": {"budget_limit": ONE_REQUEST, "time_period": "1d"}});
    let key = r.key(json!({"model_max_budget": model_budget})).await;
    second_is_refused(&r, &mock, &key, &body, "on model `cheap`").await;
    let (status, _, _) = r.chat(&key, &chat("frontier", None)).await;
    assert_eq!(status, 200, "the key's budget on `cheap` leaves `frontier` alone");

    // A customer's budget, whichever key (or the master key) sends the request.
    r.admin("POST", "/customer/new", json!({"user_id": "cust-1", "max_budget": ONE_REQUEST})).await;
    let key = r.key(json!({})).await;
    second_is_refused(&r, &mock, &key, &chat("cheap", Some("cust-1")), "customer cust-1").await;
    let (status, _, _) = r.chat(MASTER, &chat("cheap", Some("cust-1"))).await;
    assert_eq!(status, 400, "the master key does not lift a customer's budget");
    let (status, _, _) = r.chat(&key, &chat("cheap", Some("cust-2"))).await;
    assert_eq!(status, 200, "another customer is not limited");
    r.admin("POST", "/customer/new", json!({"user_id": "cust-blocked", "blocked": true})).await;
    let calls = mock.calls();
    let (status, _, refused) = r.chat(&key, &chat("cheap", Some("cust-blocked"))).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["diagnosis"]["id"], "KEY-09", "{refused}");
    assert_eq!(mock.calls(), calls);

    // The Anthropic surface: the same refusal in Anthropic's error shape.
    let key = r.key(json!({"max_budget": ONE_REQUEST})).await;
    let messages = |key: &str| {
        client()
            .post(format!("{}/v1/messages", r.gw.url()))
            .header("x-api-key", key.to_owned())
            .header("anthropic-version", "2023-06-01")
            .json(&chat("cheap", None))
            .send()
    };
    assert_eq!(messages(&key).await.unwrap().status(), 200);
    let refused = messages(&key).await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("Budget has been exceeded!"));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_level_rate_limit_is_a_429_with_retry_after_and_ratelimit_headers() {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-12-03T20:15:10Z")));
    let r = replica(&mock, dir.path(), None, Limits::in_process_with_clock(clock.clone())).await;
    let body = chat("cheap", None);

    // Two requests a minute: the third is refused until the next minute.
    let cases: Vec<(&str, Value, Value)> = vec![
        ("key", json!({"rpm_limit": 2}), body.clone()),
        ("team", json!({"team_id": "t-rpm"}), body.clone()),
        ("model", json!({"model_rpm_limit": {"cheap": 2}}), body.clone()),
        ("customer", json!({}), chat("cheap", Some("cust-rpm"))),
        // 107 tokens a request (7 in, 100 out): once two used 214 of 200 a minute, the
        // minute is full.
        ("tokens", json!({"tpm_limit": 200}), body.clone()),
    ];
    r.admin("POST", "/team/new", json!({"team_id": "t-rpm", "rpm_limit": 2})).await;
    r.admin("POST", "/customer/new", json!({"user_id": "cust-rpm", "rpm_limit": 2})).await;
    for (what, spec, body) in cases {
        let key = r.key(spec).await;
        for n in 0..2 {
            let (status, headers, answer) = r.chat(&key, &body).await;
            assert_eq!(status, 200, "{what} #{n}: {answer}");
            if what != "tokens" {
                assert_eq!(headers["x-ratelimit-limit-requests"], "2", "{what}");
                assert_eq!(
                    headers["x-ratelimit-remaining-requests"].to_str().unwrap(),
                    (1 - n).to_string()
                );
            }
        }
        // Settled token counts arrive in the background.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let calls = mock.calls();
        let (status, headers, refused) = r.chat(&key, &body).await;
        assert_eq!(status, 429, "{what}: {refused}");
        assert_eq!(headers["retry-after"], "50", "{what}: the next fixed minute starts in 50 s");
        assert_eq!(refused["error"]["type"], "rate_limit_error", "{what}: {refused}");
        let remedy = refused["error"]["diagnosis"]["remedy"].as_str().unwrap();
        assert!(remedy.contains("/update"), "{what}: {remedy}");
        assert_eq!(refused["error"]["diagnosis"]["id"], "LIM-01", "{what}: {refused}");
        assert_eq!(mock.calls(), calls, "{what}: refused before the upstream");
    }

    // The next minute serves again.
    clock.advance(chrono::Duration::seconds(60));
    let key = r.key(json!({"rpm_limit": 1})).await;
    assert_eq!(r.chat(&key, &body).await.0, 200);
    assert_eq!(r.chat(&key, &body).await.0, 429);
    clock.advance(chrono::Duration::seconds(60));
    assert_eq!(r.chat(&key, &body).await.0, 200, "a new minute");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_parallel_requests_refuses_the_request_beyond_it_and_frees_the_slot_after() {
    let mock = mock().await;
    mock.set_default(Reply::text("WORKS").usage(usage(7, 100)).delay(Duration::from_millis(500)));
    let dir = tempfile::tempdir().unwrap();
    let r = Arc::new(replica(&mock, dir.path(), None, Limits::in_process()).await);
    let key = r.key(json!({"max_parallel_requests": 1})).await;
    let first = {
        let (r, key) = (r.clone(), key.clone());
        tokio::spawn(async move { r.chat(&key, &chat("cheap", None)).await.0 })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, headers, refused) = r.chat(&key, &chat("cheap", None)).await;
    assert_eq!(status, 429, "{refused}");
    assert!(headers.contains_key("retry-after"));
    assert!(refused["error"]["message"].as_str().unwrap().contains("in flight"), "{refused}");
    assert_eq!(first.await.unwrap(), 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(r.chat(&key, &chat("cheap", None)).await.0, 200, "the slot was freed");
    Arc::into_inner(r).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_budget_resets_when_its_period_ends_and_a_soft_budget_is_noted_once() {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-12-03T23:59:00Z")));
    let r = replica(&mock, dir.path(), None, Limits::in_process_with_clock(clock.clone())).await;
    // Two requests a day; the soft budget is crossed by the first one's spend, and noted by
    // the next request admitted.
    let key =
        r.key(json!({"max_budget": 0.00025, "budget_duration": "1d", "soft_budget": 0.0001})).await;
    let body = chat("cheap", None);
    assert_eq!(r.chat(&key, &body).await.0, 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(r.chat(&key, &body).await.0, 200);
    let (status, _, refused) = r.chat(&key, &body).await;
    assert_eq!(status, 400);
    let cause = refused["error"]["diagnosis"]["cause"].as_str().unwrap();
    assert!(cause.contains("It resets at 2026-12-04 00:00:00 UTC"), "{cause}");
    let remedy = refused["error"]["diagnosis"]["remedy"].as_str().unwrap();
    assert!(remedy.contains("POST /key/update"), "{remedy}");
    let health = r.admin("GET", "/health", Value::Null).await;
    assert_eq!(health["limits"]["soft_budget_crossings"], 1, "{}", health["limits"]);
    clock.set(at("2026-12-04T00:00:00Z"));
    assert_eq!(r.chat(&key, &body).await.0, 200, "a new day, a new budget");
    r.stop().await;
}

/// `n` requests at once with `key`, spread over `replicas`; how many were served (every
/// refusal must be LiteLLM's budget error).
async fn spread(replicas: &[Arc<Replica>], key: &str, n: usize) -> usize {
    let mut tasks = Vec::new();
    for i in 0..n {
        let (r, key) = (replicas[i % replicas.len()].clone(), key.to_owned());
        tasks.push(tokio::spawn(async move { r.chat(&key, &chat("cheap", None)).await }));
    }
    let mut served = 0;
    for t in tasks {
        let (status, _, body) = t.await.unwrap();
        match status {
            200 => served += 1,
            400 => assert_eq!(body["error"]["type"], "budget_exceeded", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_on_redis_and_postgres_hold_one_key_budget_and_agree_on_its_spend() {
    let db = TestDb::create().await;
    let prefix = RedisPrefix::new();
    let mock = mock().await;
    mock.set_default(Reply::text("WORKS").usage(usage(7, 100)).delay(Duration::from_millis(300)));
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut replicas = Vec::new();
    for dir in &dirs {
        let limits = prefix.engine(REDIS, Arc::new(SystemClock), false);
        replicas.push(Arc::new(replica(&mock, dir.path(), Some(&db.url()), limits).await));
    }
    // Five requests' worth: $0.000535 of $0.0006.
    let key = replicas[0].key(json!({"max_budget": 0.0006, "key_alias": "shared"})).await;
    let seen = eventually(Duration::from_secs(1), || async {
        replicas.iter().all(|r| r.keys.status().keys == 1)
    })
    .await;
    assert!(seen, "every replica sees the new key within a second");
    let served = spread(&replicas, &key, 16).await;
    assert!((4..=6).contains(&served), "served {served} of a budget for 5 over 3 replicas");
    assert_eq!(mock.calls(), served);

    for r in &replicas {
        r.ledger.flush().await;
    }
    let pool = db.pool().await;
    let ledger_sum: String = sqlx::query_scalar(
        r#"SELECT COALESCE(SUM(spend::numeric), 0)::text FROM "LiteLLM_SpendLogs" WHERE api_key = $1"#,
    )
    .bind(switchyard::attribution::hash_key(&key))
    .fetch_one(&pool)
    .await
    .unwrap();
    let expected = usd(ONE) * Decimal::from(served);
    assert_eq!(usd(&ledger_sum), expected, "the ledger holds every served request");
    // LiteLLM's running total in the key's row, which its dashboards read, agrees.
    let column: f64 =
        sqlx::query_scalar(r#"SELECT spend FROM "LiteLLM_VerificationToken" WHERE token = $1"#)
            .bind(switchyard::attribution::hash_key(&key))
            .fetch_one(&pool)
            .await
            .unwrap();
    let expected_f64: f64 = expected.to_string().parse().unwrap();
    assert!((column - expected_f64).abs() < 1e-12, "spend column {column}, ledger {expected}");
    // An admin change made from a replica's snapshot leaves the total alone.
    replicas[1].admin("POST", "/key/update", json!({"key": key, "key_alias": "renamed"})).await;
    let after: f64 =
        sqlx::query_scalar(r#"SELECT spend FROM "LiteLLM_VerificationToken" WHERE token = $1"#)
            .bind(switchyard::attribution::hash_key(&key))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(after, column, "a key update must not overwrite the running spend");
    for (i, r) in replicas.iter().enumerate() {
        let info = r.admin("GET", &format!("/key/info?key={key}"), Value::Null).await;
        let spend = usd(&info["info"]["spend"].to_string());
        assert_eq!(spend, expected, "replica {i}: /key/info spend is the ledger's sum: {info}");
        assert_eq!(info["info"]["spend_source"], "ledger");
    }
    pool.close().await;
    for r in replicas {
        Arc::into_inner(r).unwrap().stop().await;
    }
    prefix.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rpm_limit_over_two_replicas_serves_exactly_that_many_a_minute() {
    let db = TestDb::create().await;
    let prefix = RedisPrefix::new();
    let mock = mock().await;
    let clock = Arc::new(ManualClock::new(at("2026-12-03T20:15:10Z")));
    let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica(&mock, da.path(), Some(&db.url()), prefix.engine(REDIS, clock.clone(), false))
        .await;
    let b =
        replica(&mock, db_dir.path(), Some(&db.url()), prefix.engine(REDIS, clock.clone(), false))
            .await;
    let key = a.key(json!({"rpm_limit": 5})).await;
    assert!(eventually(Duration::from_secs(1), || async { b.keys.status().keys == 1 }).await);
    let count = |served: &mut usize, status: u16| {
        if status == 200 {
            *served += 1;
        } else {
            assert_eq!(status, 429);
        }
    };
    let mut served = 0;
    for i in 0..12 {
        let r = if i % 2 == 0 { &a } else { &b };
        count(&mut served, r.chat(&key, &chat("cheap", None)).await.0);
    }
    assert_eq!(served, 5, "five a minute over two replicas, not ten");
    clock.advance(chrono::Duration::seconds(60));
    let mut next = 0;
    for i in 0..8 {
        let r = if i % 2 == 0 { &a } else { &b };
        count(&mut next, r.chat(&key, &chat("cheap", None)).await.0);
    }
    assert_eq!(next, 5, "the next minute serves five more");
    assert_eq!(mock.calls(), 10);
    a.stop().await;
    b.stop().await;
    prefix.clean().await;
}
