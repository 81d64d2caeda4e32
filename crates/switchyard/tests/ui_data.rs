//! The dashboard's data API (`/ui/api/overview`, `/spend`, `/requests`) on SQLite and on the
//! machine's PostgreSQL (a fresh database per test): tagged requests through an in-process
//! gateway against the mock Anthropic API — served, failed, answered from the cache, made with
//! a virtual key — then each endpoint's numbers, filters and pages; spend equal to what
//! `switchyard spend` prints for the same grouping and range (CSV too); a virtual key sees its
//! own rows only; no key, hash of one or upstream key in any answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use ledger_support::*;
use mock_upstream::MockUpstream;
use serde_json::{Value, json};
use switchyard::attribution::hash_key;
use switchyard::config::{self, MapEnv};
use switchyard::cost::Decimal;
use switchyard::keys::{Keys, POLL, Settings as KeySettings};
use switchyard::ledger::Ledger;
use switchyard::server::{self, Handle, Runtime};

fn yaml(mock: &MockUpstream, database_url: Option<&str>) -> String {
    let url = mock.url();
    let dep = |alias: &str, key: &str| {
        format!(
            "  - model_name: {alias}\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_key: {key}\n      api_base: {url}\n    model_info:\n      id: {alias}-1\n"
        )
    };
    let mut out = "model_list:\n".to_owned();
    out.push_str(&dep("good", ANT_KEY));
    out.push_str(&dep("bad", "sk-ant-api03-revoked-000000000000000"));
    out.push_str(&format!(
        "router_settings:\n  num_retries: 0\nlitellm_settings:\n  max_budget: 100\n  budget_duration: 30d\n  cache: true\n  cache_params:\n    type: local\ngeneral_settings:\n  master_key: {MASTER}\n"
    ));
    if let Some(db) = database_url {
        out.push_str(&format!("  database_url: {db}\n"));
    }
    out
}

struct Setup {
    _mock: MockUpstream,
    gw: Handle,
    ledger: Ledger,
    _keys: Keys,
    config: PathBuf,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

async fn setup(database_url: Option<&str>) -> Setup {
    let mock = MockUpstream::builder().api_key(ANT_KEY).record(false).start().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = yaml(&mock, database_url);
    let config = dir.path().join("switchyard.yaml");
    std::fs::write(&config, &yaml).unwrap();
    let cfg = config::load_from_str(&yaml, &config, &MapEnv::new([("HOME", "/nonexistent")]))
        .unwrap_or_else(|e| panic!("{e}"));
    let gw = server::start("127.0.0.1:0".parse().unwrap(), Runtime::new(cfg)).await.unwrap();
    let state = dir.path().join("state");
    let ledger = Ledger::open(&settings(&state, database_url)).unwrap();
    gw.state.set_ledger(ledger.clone());
    let keys = Keys::open(&KeySettings {
        database_url: database_url.map(switchyard::secret::Secret::new),
        state_dir: state,
    })
    .unwrap();
    keys.start(POLL).await;
    gw.state.set_keys(keys.clone());
    Setup { _mock: mock, gw, ledger, _keys: keys, config, dir, client: reqwest::Client::new() }
}

/// What the scenario made: the virtual key, and the costs the gateway returned.
struct Made {
    vkey: String,
    /// Every priced answer's `x-litellm-response-cost`.
    sum: Decimal,
    /// The virtual key's part of it.
    vsum: Decimal,
}

fn body(alias: &str, say: &str, tags: &[&str]) -> Value {
    let mut b = chat(alias, false);
    b["messages"] = json!([{"role": "user", "content": format!("Say: {say}")}]);
    if !tags.is_empty() {
        b["metadata"] = json!({ "tags": tags });
    }
    b
}

async fn send(s: &Setup, key: &str, id: &str, body: Value) -> (u16, Decimal, String) {
    let resp = s
        .client
        .post(format!("{}/v1/chat/completions", s.gw.url()))
        .bearer_auth(key)
        .header("x-request-id", id)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let cost = resp
        .headers()
        .get("x-litellm-response-cost")
        .map_or(Decimal::ZERO, |v| Decimal::from_str(v.to_str().unwrap()).unwrap());
    let cache = resp.headers().get("x-switchyard-cache").map(|v| v.to_str().unwrap().to_owned());
    let _ = resp.text().await;
    (status, cost, cache.unwrap_or_default())
}

async fn scenario(s: &Setup) -> Made {
    let (status, generated) = admin(
        s,
        "/key/generate",
        json!({"key_alias": "ci-bot",
        "max_budget": 5, "budget_duration": "1d"}),
    )
    .await;
    assert_eq!(status, 200, "{generated}");
    let vkey = generated["key"].as_str().unwrap().to_owned();
    let mut sum = Decimal::ZERO;
    let mut vsum = Decimal::ZERO;
    for (id, key, b, ok, cached) in [
        ("m-1", MASTER, body("good", "one", &["team:a", "job:x"]), true, false),
        ("m-2", MASTER, body("good", "two", &["team:a"]), true, false),
        ("m-3", MASTER, body("good", "three", &[]), true, false),
        ("m-4", MASTER, body("good", "one", &["team:b"]), true, true),
        ("m-5", MASTER, body("bad", "six", &["team:a"]), false, false),
        ("k-1", vkey.as_str(), body("good", "four", &["team:c"]), true, false),
        ("k-2", vkey.as_str(), body("good", "five", &[]), true, false),
    ] {
        let (status, cost, cache) = send(s, key, id, b).await;
        // The ledger's times are to the millisecond and "newest first" is checked below: a
        // fast refusal and the next request can share one, and ties go by request id.
        tokio::time::sleep(Duration::from_millis(3)).await;
        assert_eq!(status == 200, ok, "{id}: {status}");
        assert_eq!(cache == "hit", cached, "{id}: cache {cache}");
        sum += cost;
        if id.starts_with("k-") {
            vsum += cost;
        }
    }
    assert!(vsum > Decimal::ZERO && sum > vsum);
    let all = eventually(Duration::from_secs(10), || async {
        s.ledger.flush().await;
        s.ledger.status().written >= 7
    })
    .await;
    assert!(all, "{:?}", s.ledger.status());
    Made { vkey, sum, vsum }
}

async fn admin(s: &Setup, path: &str, body: Value) -> (u16, Value) {
    let resp = s
        .client
        .post(format!("{}{path}", s.gw.url()))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Every answer read, to look for secrets in at the end.
#[derive(Default)]
struct Seen(std::sync::Mutex<String>);

impl Seen {
    async fn get_raw(
        &self,
        s: &Setup,
        key: &str,
        path: &str,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let resp = s
            .client
            .get(format!("{}/ui/api{path}", s.gw.url()))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        self.0.lock().unwrap().push_str(&text);
        (status, headers, text)
    }

    async fn get(&self, s: &Setup, key: &str, path: &str) -> (u16, Value) {
        let (status, _, text) = self.get_raw(s, key, path).await;
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}")))
    }
}

fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => Decimal::from_str(s).unwrap(),
        Value::Number(n) => {
            let t = n.to_string();
            Decimal::from_str(&t).or_else(|_| Decimal::from_scientific(&t)).unwrap()
        }
        other => panic!("not a spend: {other}"),
    }
}

/// `switchyard spend` as the built binary, in a clean environment.
fn cli(s: &Setup, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("spend")
        .arg("--config")
        .arg(&s.config)
        .arg("--state-dir")
        .arg(s.dir.path().join("state"))
        .args(args)
        .env("HOME", s.dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHYARD_CONFIG")
        .env_remove("SWITCHYARD_ENV_FILE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["request_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn check_overview(s: &Setup, seen: &Seen, m: &Made) {
    let (status, o) = seen.get(s, MASTER, "/overview").await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["requests"], 7, "{o:#}");
    let errors = o["errors"].as_object().unwrap();
    assert_eq!(errors.values().map(|v| v.as_u64().unwrap()).sum::<u64>(), 1, "{o:#}");
    assert!(!errors.contains_key("unknown"), "the class is recorded: {o:#}");
    assert_eq!((o["cache"]["hits"].as_u64(), o["cache"]["misses"].as_u64()), (Some(1), Some(6)));
    assert!((o["cache"]["hit_rate"].as_f64().unwrap() - 1.0 / 7.0).abs() < 1e-9);
    assert!(o["latency_ms"]["p50"].as_u64().is_some() && o["latency_ms"]["p99"].as_u64().is_some());
    let overhead = o["overhead_ms"]["p50"].as_f64().unwrap();
    assert!(overhead >= 0.0 && overhead <= o["latency_ms"]["p99"].as_f64().unwrap() + 1.0, "{o:#}");
    assert_eq!(dec(&o["spend"]["range"]), m.sum);
    assert_eq!(dec(&o["spend"]["today"]), m.sum);
    assert_eq!(dec(&o["spend"]["month"]), m.sum);
    // The last 24 hours by the hour: every hour is a point, the requests in them.
    assert_eq!(o["bucket"], "hour");
    let series = o["series"].as_array().unwrap();
    assert!(series.len() >= 24, "{}", series.len());
    assert_eq!(series.iter().map(|p| p["requests"].as_u64().unwrap()).sum::<u64>(), 7);
    assert_eq!(series.iter().map(|p| p["errors"].as_u64().unwrap()).sum::<u64>(), 1);
    let budgets = o["budgets"].as_array().unwrap();
    let global = budgets.iter().find(|b| b["scope"] == "global").expect("the global budget");
    assert_eq!(
        (global["max_budget"].as_f64(), &global["budget_duration"]),
        (Some(100.0), &json!("30d"))
    );
    assert_eq!(dec(&global["spend"]), m.sum);
    assert!(global["resets_at"].as_str().unwrap().ends_with("-01T00:00:00Z"), "{global}");
    let key = budgets.iter().find(|b| b["scope"] == "key").expect("the key's budget");
    assert_eq!((key["name"].as_str(), key["max_budget"].as_f64()), (Some("ci-bot"), Some(5.0)));
    assert_eq!(dec(&key["spend"]), m.vsum);

    // A narrow range by the minute.
    let now = Utc::now();
    let from = (now - chrono::Duration::minutes(30)).format("%Y-%m-%dT%H:%M:%SZ");
    let (_, narrow) = seen.get(s, MASTER, &format!("/overview?from={from}")).await;
    assert_eq!((narrow["bucket"].as_str(), narrow["requests"].as_u64()), (Some("minute"), Some(7)));

    // The virtual key: its own requests, spend and budget only.
    let (status, mine) = seen.get(s, &m.vkey, "/overview").await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["requests"], 2);
    assert_eq!(dec(&mine["spend"]["today"]), m.vsum);
    let budgets = mine["budgets"].as_array().unwrap();
    assert_eq!(budgets.len(), 1, "{mine:#}");
    assert_eq!(budgets[0]["scope"], "key");

    // A range that ends before it starts names the parameter.
    let (status, bad) = seen.get(s, MASTER, "/overview?from=2026-12-02&to=2026-12-01").await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["param"], "from");
    let (status, bad) = seen.get(s, MASTER, "/overview?to=yesterday").await;
    assert_eq!((status, bad["error"]["diagnosis"]["id"].as_str()), (400, Some("LED-03")));
}

async fn check_spend(s: &Setup, seen: &Seen, m: &Made) {
    let now = Utc::now();
    let from = (now - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M").to_string();
    let to = (now + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M").to_string();
    for by in ["alias", "model", "provider", "tag", "user", "key", "team", "session", "day"] {
        let (status, ui) =
            seen.get(s, MASTER, &format!("/spend?group_by={by}&from={from}&to={to}")).await;
        assert_eq!(status, 200, "{ui}");
        let out = tokio::task::block_in_place(|| {
            cli(s, &["--by", by, "--from", &from, "--to", &to, "--json"])
        });
        let cli: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(ui["group_by"], by);
        assert_eq!(
            ui["rows"].as_array().unwrap().len(),
            cli["groups"].as_array().unwrap().len(),
            "{by}"
        );
        for (row, group) in
            ui["rows"].as_array().unwrap().iter().zip(cli["groups"].as_array().unwrap())
        {
            assert_eq!(row["group"], group["group"], "{by}");
            assert_eq!(dec(&row["spend"]), dec(&group["spend"]), "{by} {}", row["group"]);
            for n in ["requests", "input_tokens", "output_tokens", "failed", "unpriced_requests"] {
                assert_eq!(row[n], group[n], "{by} {} {n}", row["group"]);
            }
        }
        assert_eq!(dec(&ui["total"]["spend"]), dec(&cli["total"]["spend"]));
        assert_eq!(dec(&ui["total"]["spend"]), m.sum, "{by}");
        assert_eq!(ui["total"]["requests"], 7);
    }
    let (_, tags) = seen.get(s, MASTER, "/spend?group_by=tag").await;
    let team_a = tags["rows"].as_array().unwrap().iter().find(|r| r["group"] == "team:a").unwrap();
    assert_eq!(team_a["requests"], 3);

    // CSV: what `switchyard spend --csv` prints, as a download.
    let (status, headers, csv) = seen
        .get_raw(s, MASTER, &format!("/spend?group_by=tag&from={from}&to={to}&format=csv"))
        .await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(headers["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    let printed = tokio::task::block_in_place(|| {
        cli(s, &["--by", "tag", "--from", &from, "--to", &to, "--csv"])
    });
    assert_eq!(csv.trim_end(), printed.trim_end());

    // The virtual key: its own spend, even grouped by key; another key's is refused.
    let (_, mine) = seen.get(s, &m.vkey, "/spend?group_by=key").await;
    assert_eq!(mine["rows"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["rows"][0]["key_alias"], "ci-bot");
    assert_eq!(dec(&mine["total"]["spend"]), m.vsum);
    let (status, refused) = seen.get(s, &m.vkey, &format!("/spend?key={MASTER}")).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["diagnosis"]["id"], "UI-07");
    let (status, bad) = seen.get(s, MASTER, "/spend?group_by=colour").await;
    assert_eq!((status, bad["error"]["param"].as_str()), (400, Some("group_by")));
}

async fn check_requests(s: &Setup, seen: &Seen, m: &Made) {
    let (status, all) = seen.get(s, MASTER, "/requests").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), ["k-2", "k-1", "m-5", "m-4", "m-3", "m-2", "m-1"], "newest first");
    assert_eq!(all["next"], Value::Null);
    let row = |id: &str| {
        all["rows"].as_array().unwrap().iter().find(|r| r["request_id"] == id).unwrap().clone()
    };
    let m1 = row("m-1");
    assert_eq!((m1["status"].as_str(), m1["status_code"].as_u64()), (Some("ok"), Some(200)));
    assert_eq!((m1["alias"].as_str(), m1["deployment"].as_str()), (Some("good"), Some("good-1")));
    assert_eq!((m1["provider"].as_str(), m1["attempts"].as_u64()), (Some("anthropic"), Some(1)));
    assert_eq!(m1["tags"], json!(["team:a", "job:x"]));
    assert_eq!(m1["user"], "end-user-7");
    assert!(m1["input_tokens"].as_u64().unwrap() > 0 && m1["output_tokens"].as_u64().unwrap() > 0);
    assert!(m1["latency_ms"].as_u64().is_some() && m1["overhead_ms"].as_f64().is_some(), "{m1}");
    assert!(dec(&m1["cost"]) > Decimal::ZERO);
    assert_eq!(m1["key"], format!("{}…", &hash_key(MASTER)[..12]));
    let m4 = row("m-4");
    assert_eq!((m4["cache_hit"].as_bool(), m4["attempts"].as_u64()), (Some(true), Some(0)));
    let m5 = row("m-5");
    assert_eq!(
        (m5["status"].as_str(), m5["status_code"].as_u64()),
        (Some("error"), Some(401)),
        "{m5}"
    );
    assert!(m5["error_class"].as_str().is_some_and(|c| !c.is_empty()), "{m5}");
    assert_eq!(row("k-1")["key_alias"], "ci-bot");

    for (query, expect) in [
        ("tag=team:a", vec!["m-5", "m-2", "m-1"]),
        ("alias=bad", vec!["m-5"]),
        ("status=error", vec!["m-5"]),
        ("status=ok&tag=team:a", vec!["m-2", "m-1"]),
        ("key=ci-bot", vec!["k-2", "k-1"]),
        (&format!("key={}", m.vkey), vec!["k-2", "k-1"]),
    ] {
        let (status, page) = seen.get(s, MASTER, &format!("/requests?{query}")).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(ids(&page), expect, "{query}");
    }

    // Pages of three, each continuing where the last ended, until `next` is null.
    let mut got = Vec::new();
    let mut path = "/requests?limit=3".to_owned();
    loop {
        let (_, page) = seen.get(s, MASTER, &path).await;
        got.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => path = format!("/requests?limit=3&before={next}"),
            None => break,
        }
    }
    assert_eq!(got, ids(&all));
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 7);
    let (status, bad) = seen.get(s, MASTER, "/requests?before=not-a-cursor").await;
    assert_eq!((status, bad["error"]["param"].as_str()), (400, Some("before")));

    // A request in full: its row and what else the ledger holds, never a body.
    let (status, one) = seen.get(s, MASTER, "/requests/m-5").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["request_id"], "m-5");
    assert_eq!(one["error"]["error_class"], m5["error_class"]);
    assert_eq!(one["call_type"], "acompletion");
    assert_eq!(one["bodies_stored"], false);
    assert!(one.get("messages").is_none() && one.get("response").is_none());
    let (_, one) = seen.get(s, MASTER, "/requests/m-1").await;
    assert!(one["usage"]["prompt_tokens"].as_u64().is_some(), "{one}");

    // The virtual key sees its own requests, not the others'.
    let (_, mine) = seen.get(s, &m.vkey, "/requests").await;
    assert_eq!(ids(&mine), ["k-2", "k-1"]);
    let (status, mine) = seen.get(s, &m.vkey, "/requests/k-1").await;
    assert_eq!((status, mine["request_id"].as_str()), (200, Some("k-1")));
    let (status, other) = seen.get(s, &m.vkey, "/requests/m-1").await;
    assert_eq!((status, other["error"]["diagnosis"]["id"].as_str()), (404, Some("UI-08")));
    let (status, other) =
        seen.get(s, &m.vkey, &format!("/requests?key={}", hash_key(MASTER))).await;
    assert_eq!((status, other["error"]["diagnosis"]["id"].as_str()), (403, Some("UI-07")));

    // No key at all: 401.
    let resp = reqwest::get(format!("{}/ui/api/requests", s.gw.url())).await.unwrap();
    assert_eq!(resp.status(), 401);
}

async fn run(database_url: Option<&str>) {
    let s = setup(database_url).await;
    let made = scenario(&s).await;
    let seen = Seen::default();
    check_overview(&s, &seen, &made).await;
    check_spend(&s, &seen, &made).await;
    check_requests(&s, &seen, &made).await;
    let everything = seen.0.lock().unwrap().clone();
    for secret in [MASTER, made.vkey.as_str(), ANT_KEY, &hash_key(MASTER), &hash_key(&made.vkey)] {
        assert!(!everything.contains(secret), "a secret or a full key hash in an answer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_dashboard_data() {
    run(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dashboard_data() {
    let db = TestDb::create().await;
    run(Some(&db.url())).await;
}

/// `n` ledger rows over the last 7 days: three aliases, 50 keys, 20 tags, end users and
/// sessions, 5% failures, 10% cache hits; durations and overheads spread like real traffic.
fn seed_rows(n: usize) -> Vec<switchyard::ledger::Record> {
    use switchyard::ledger::{Outcome, Record, Tokens};
    let now = Utc::now();
    let mut rng = fastrand::Rng::with_seed(19);
    (0..n)
        .map(|i| {
            let start = now - chrono::Duration::milliseconds(rng.i64(0..7 * 86_400_000));
            let duration = rng.u64(50..4_000);
            let failed = rng.u8(0..100) < 5;
            let cached = !failed && rng.u8(0..100) < 10;
            let alias = ["cheap", "balanced", "frontier"][i % 3];
            let key = format!("seed-key-{}", i % 50);
            Record {
                request_id: format!("seed-{i:07}"),
                call_type: "acompletion".to_owned(),
                start_time: start,
                end_time: start + chrono::Duration::milliseconds(duration as i64),
                first_token_time: Some(start),
                duration_ms: duration,
                model_group: alias.to_owned(),
                model_id: Some(format!("{alias}-{}", i % 2)),
                provider: Some(if i % 2 == 0 { "anthropic" } else { "bedrock" }.to_owned()),
                model: "claude-haiku-4-5".to_owned(),
                api_key: hash_key(&key),
                key_alias: Some(format!("team-{}", i % 50)),
                end_user: Some(format!("user-{}", i % 200)),
                team_id: Some(format!("t-{}", i % 5)),
                tags: vec![format!("ticket:{}", i % 20), "env:prod".to_owned()],
                session_id: Some(format!("s-{}", i % 1000)),
                tokens: Tokens { prompt: 1_200, completion: 300, cache_read: 0, cache_write: 0 },
                spend: Some(if failed || cached { Decimal::ZERO } else { Decimal::new(27, 4) }),
                status: if failed { Outcome::Failure } else { Outcome::Success },
                error_class: failed.then(|| "rate_limited".to_owned()),
                cache_hit: cached,
                overhead_ms: (!failed && !cached).then(|| rng.f64() * 2.0),
                ..Record::default()
            }
        })
        .collect()
}

/// Inserts `rows` through the store the ledger writes with, in the writer's batch size.
async fn seed(store: &dyn switchyard::ledger::Store, rows: &[switchyard::ledger::Record]) {
    store.prepare().await.unwrap();
    for batch in rows.chunks(switchyard::ledger::BATCH) {
        store.insert(batch).await.unwrap();
    }
}

/// Seeds `rows` into a fresh PostgreSQL database with a store that keeps no rollup; returns
/// how long the inserts took. (SQLite's writer keeps its rollup itself.)
async fn seed_without_rollup(rows: &[switchyard::ledger::Record]) -> std::time::Duration {
    use switchyard::ledger::Store as _;
    let db = TestDb::create().await;
    let store = switchyard::ledger::postgres::Postgres::new(&db.url()).unwrap().without_rollup();
    store.prepare().await.unwrap();
    let began = std::time::Instant::now();
    for batch in rows.chunks(switchyard::ledger::BATCH) {
        store.insert(batch).await.unwrap();
    }
    began.elapsed()
}

/// How long each dashboard data route takes over 100,000 ledger rows (the median of five,
/// after one to warm the pool), on both stores. Run by hand, release build:
/// `cargo test --release --workspace --test ui_data -- --ignored --nocapture`.
/// Prints the figures the README's Performance section gives; asserts only the counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: seeds 100k rows"]
#[allow(clippy::print_stderr)]
async fn dashboard_data_over_100k_rows() {
    const ROWS: usize = 100_000;
    let rows = seed_rows(ROWS);
    let db = TestDb::create().await;
    // `UI_DATA_STORE=sqlite|postgres` measures one store only.
    let only = std::env::var("UI_DATA_STORE").unwrap_or_default();
    for database_url in [None, Some(db.url())] {
        if !only.is_empty() && (only == "postgres") != database_url.is_some() {
            continue;
        }
        let s = setup(database_url.as_deref()).await;
        let began = std::time::Instant::now();
        match &database_url {
            None => {
                let path = s.dir.path().join("state").join("ledger.sqlite3");
                seed(&switchyard::ledger::sqlite::Sqlite::new(&path).unwrap(), &rows).await;
            }
            Some(url) => {
                seed(&switchyard::ledger::postgres::Postgres::new(url).unwrap(), &rows).await
            }
        }
        let backend = if database_url.is_some() { "postgres" } else { "sqlite" };
        let with_rollup = began.elapsed();
        eprintln!("{backend}: seeded {ROWS} rows in {with_rollup:?}");
        if database_url.is_some() {
            // The same rows through a store that keeps no rollup: what keeping it costs
            // the writer.
            let without = seed_without_rollup(&rows).await;
            eprintln!(
                "{backend}: {without:?} without the rollup (with it: {:.2}x that time)",
                with_rollup.as_secs_f64() / without.as_secs_f64()
            );
        }
        let seen = Seen::default();
        let week = (Utc::now() - chrono::Duration::days(8)).format("%Y-%m-%d").to_string();
        for path in [
            "/overview".to_owned(),
            format!("/overview?from={week}"),
            "/spend?group_by=alias".to_owned(),
            "/spend?group_by=model".to_owned(),
            "/spend?group_by=provider".to_owned(),
            "/spend?group_by=tag".to_owned(),
            "/spend?group_by=user".to_owned(),
            "/spend?group_by=key".to_owned(),
            "/spend?group_by=session".to_owned(),
            "/spend?group_by=day&format=csv".to_owned(),
            "/requests".to_owned(),
            "/requests?tag=ticket:7".to_owned(),
            "/requests?status=error&alias=cheap".to_owned(),
            "/requests/seed-0050000".to_owned(),
        ] {
            let mut times = Vec::new();
            for _ in 0..6 {
                let t = std::time::Instant::now();
                let (status, _, text) = seen.get_raw(&s, MASTER, &path).await;
                times.push(t.elapsed());
                assert_eq!(status, 200, "{path}: {text}");
            }
            times.remove(0);
            times.sort();
            eprintln!("{backend}: GET /ui/api{path}: median {:?}, max {:?}", times[2], times[4]);
        }
        let (_, spend) = seen.get(&s, MASTER, &format!("/spend?from={week}")).await;
        assert_eq!(spend["total"]["requests"], ROWS);
        seen.0.lock().unwrap().clear();
    }
}

/// A table an older LiteLLM created, without `session_id` and `status`, still reads: the
/// report falls back to the query that reads any table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_litellm_table_without_some_columns_still_reads() {
    let db = TestDb::create().await;
    let pool = db.pool().await;
    sqlx::raw_sql(
        r#"CREATE TABLE "LiteLLM_SpendLogs" (request_id TEXT PRIMARY KEY, call_type TEXT NOT NULL,
           api_key TEXT NOT NULL DEFAULT '', spend DOUBLE PRECISION NOT NULL DEFAULT 0.0,
           "startTime" TIMESTAMP(3) NOT NULL, "endTime" TIMESTAMP(3) NOT NULL,
           model TEXT NOT NULL DEFAULT '', model_group TEXT DEFAULT '', metadata JSONB DEFAULT '{}',
           request_tags JSONB DEFAULT '[]', prompt_tokens INTEGER NOT NULL DEFAULT 0,
           completion_tokens INTEGER NOT NULL DEFAULT 0);
           INSERT INTO "LiteLLM_SpendLogs" (request_id, call_type, spend, "startTime", "endTime",
           model, model_group, request_tags) VALUES ('old-1', 'acompletion', 0.5, now(), now(),
           'gpt-4o', 'smart', '["team:old"]')"#,
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let reader = switchyard::ledger::read::Reader::new(&settings(
        Path::new("/nonexistent"),
        Some(&db.url()),
    ));
    let mut seen = Vec::new();
    reader.scan(&switchyard::ledger::read::Filter::default(), &mut |e| seen.push(e)).await.unwrap();
    reader.close().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].alias.as_str(), seen[0].tags.clone()),
        ("smart", vec!["team:old".to_owned()])
    );
    assert_eq!(seen[0].spend, Some(Decimal::from_str("0.5").unwrap()));
}

/// Rows that make summing hard: unpriced, zero and tiny decimals, a decimal beyond a double's
/// digits, duplicate and missing tags, failures with and without a class, cache hits, rows
/// without an overhead, keys with and without an alias, over three days.
fn awkward_rows() -> Vec<switchyard::ledger::Record> {
    use switchyard::ledger::{Outcome, Record, Tokens};
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z").unwrap().to_utc();
    let spends = [
        None,
        Some("0"),
        Some("0.000000000001"),
        Some("0.1"),
        Some("0.2"),
        Some("12.3456789012345678"),
        Some("0.0027"),
    ];
    let tags: [&[&str]; 5] = [&[], &["a"], &["a", "a", "b"], &["b", "c", "d", "e", "f"], &["c"]];
    (0..300usize)
        .map(|i| {
            let start = base + chrono::Duration::minutes((i * 977 % (3 * 1440)) as i64);
            let failed = i % 11 == 0;
            let key = i % 4;
            Record {
                request_id: format!("awk-{i:04}"),
                call_type: "acompletion".to_owned(),
                start_time: start,
                end_time: start,
                duration_ms: (i * 37 % 500) as u64,
                model_group: ["cheap", "balanced", ""][i % 3].to_owned(),
                model_id: (i % 5 != 0).then(|| format!("dep-{}", i % 2)),
                provider: Some(["anthropic", "bedrock/converse"][i % 2].to_owned()),
                model: "m".to_owned(),
                api_key: if key == 3 { String::new() } else { hash_key(&format!("awk-key-{key}")) },
                key_alias: (key == 1).then(|| "awk-alias".to_owned()),
                end_user: (i % 6 != 0).then(|| format!("u{}", i % 3)),
                user: (i % 5 == 1).then(|| "owner".to_owned()),
                team_id: (i % 7 != 0).then(|| "team".to_owned()),
                tags: tags[i % 5].iter().map(|t| (*t).to_owned()).collect(),
                session_id: (i % 2 == 0).then(|| format!("s{}", i % 4)),
                tokens: Tokens {
                    prompt: (i * 13) as u64,
                    completion: (i % 9) as u64,
                    cache_read: (i % 4) as u64,
                    cache_write: (i % 3) as u64,
                },
                spend: spends[i % spends.len()].map(|s| Decimal::from_str(s).unwrap()),
                status: if failed { Outcome::Failure } else { Outcome::Success },
                error_class: (failed && i % 2 == 0).then(|| "rate_limited".to_owned()),
                cache_hit: !failed && i % 10 == 3,
                overhead_ms: (i % 3 != 0).then(|| (i as f64) / 7.0),
                ..Record::default()
            }
        })
        .collect()
}

/// The reports the store sums (`Reader::report`, `Reader::overview`) equal the row-by-row
/// sums over the same rows, for every grouping and bucket width: from the hourly rollup for
/// ranges holding whole hours (a range's partial hours from the rows), from the rows
/// otherwise. The rollup counts rows that were there before it was created (backfill), rows
/// another writer inserts, no replayed row twice, and follows deleted rows.
async fn sql_sums_equal_row_sums(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let rows = awkward_rows();
    let store: Box<dyn switchyard::ledger::Store> = match database_url {
        None => {
            let path = dir.path().join("ledger.sqlite3");
            // A row written before the rollup existed: the backfill sums it.
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                .await
                .unwrap();
            for statement in switchyard::ledger::sqlite::MIGRATIONS {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            sqlx::raw_sql(
                r#"INSERT INTO "LiteLLM_SpendLogs" (request_id, call_type, spend, "startTime",
                   "endTime", model, model_group, request_tags, status, request_duration_ms,
                   metadata) VALUES ('early-1', 'acompletion', '0.125', '2026-11-21T05:10:00.000Z',
                   '2026-11-21T05:10:01.000Z', 'gpt-4o', 'cheap', '["a"]', 'success', 1234,
                   '{"litellm_overhead_time_ms": 0.25}')"#,
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
            let store = switchyard::ledger::sqlite::Sqlite::new(&path).unwrap();
            seed(&store, &rows).await;
            Box::new(store)
        }
        Some(url) => {
            // A row LiteLLM wrote before the rollup existed (backfilled) and one after (the
            // trigger): a float spend without the exact decimal, JSON null class.
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::raw_sql(switchyard::ledger::postgres::CREATE_TABLE).execute(&pool).await.unwrap();
            sqlx::raw_sql(
                r#"INSERT INTO "LiteLLM_SpendLogs" (request_id, call_type, spend, "startTime",
                   "endTime", model, model_group, request_tags, status, request_duration_ms,
                   metadata) VALUES ('early-1', 'acompletion', 0.125, '2026-11-21T05:10:00',
                   '2026-11-21T05:10:01', 'gpt-4o', 'cheap', '["a"]', 'success', 1234,
                   '{"litellm_overhead_time_ms": 0.25}')"#,
            )
            .execute(&pool)
            .await
            .unwrap();
            let store = switchyard::ledger::postgres::Postgres::new(url).unwrap();
            seed(&store, &rows).await;
            sqlx::raw_sql(
                r#"INSERT INTO "LiteLLM_SpendLogs" (request_id, call_type, spend, "startTime",
                   "endTime", model, model_group, request_tags, status, metadata)
                   VALUES ('litellm-1', 'acompletion', 0.30000000000000004,
                   '2026-11-21T05:00:00', '2026-11-21T05:00:01', 'gpt-4o', 'cheap',
                   '["a", 7]', 'failure', '{"error_class": null}')"#,
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
            Box::new(store)
        }
    };
    check_sums(dir.path(), database_url).await;
    // The spool replaying rows already written, then retention deleting the oldest rows.
    store.insert(&rows[..120]).await.unwrap();
    let cutoff = chrono::DateTime::parse_from_rfc3339("2026-11-20T17:30:00Z").unwrap().to_utc();
    assert!(store.delete_before(cutoff, 100_000).await.unwrap() > 0);
    check_sums(dir.path(), database_url).await;
}

/// A summary as the rollup gives it: durations and overheads at its resolution.
fn at_rollup_resolution(
    s: switchyard::ledger::overview::Summary,
) -> switchyard::ledger::overview::Summary {
    use switchyard::ledger::rollup::{bucket, overhead_bucket};
    let ms = |v: Option<u64>| v.map(|v| bucket(v as i64) as u64);
    switchyard::ledger::overview::Summary {
        latency_p50_ms: ms(s.latency_p50_ms),
        latency_p99_ms: ms(s.latency_p99_ms),
        overhead_p50_ms: s.overhead_p50_ms.map(overhead_bucket),
        overhead_p99_ms: s.overhead_p99_ms.map(overhead_bucket),
        series: s
            .series
            .into_iter()
            .map(|p| switchyard::ledger::overview::Point { p50_ms: ms(p.p50_ms), ..p })
            .collect(),
        ..s
    }
}

async fn check_sums(dir: &Path, database_url: Option<&str>) {
    use switchyard::ledger::overview::{self, Bucket};
    use switchyard::ledger::read::{Filter, Reader};
    use switchyard::ledger::report::{self, By};
    let reader = Reader::new(&settings(dir, database_url));
    let at = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap();
    let ranges = [
        (at("2026-11-19T00:00"), at("2026-12-30T00:00")),
        (at("2026-11-20T12:00"), at("2026-11-22T12:00")),
        // Partial hours at both ends: they are read from the rows.
        (at("2026-11-20T10:17"), at("2026-11-22T03:41")),
        (at("2026-11-21T01:00"), at("2026-11-21T05:30")),
    ];
    let all = Filter::default();
    for filter in ranges
        .iter()
        .map(|(from, to)| Filter { start: Some(*from), end: Some(*to), ..Filter::default() })
        .chain([all])
    {
        for by in [
            By::Alias,
            By::Model,
            By::Deployment,
            By::Provider,
            By::Tag,
            By::User,
            By::Key,
            By::Session,
            By::Team,
            By::Day,
        ] {
            let mut builder = report::Builder::new(by);
            reader.scan(&filter, &mut |e| builder.add(&e)).await.unwrap();
            let by_rows = builder.finish();
            assert!(by_rows.total.requests > 0);
            assert!(filter.start != Some(ranges[0].0) || by_rows.total.unpriced > 0);
            assert_eq!(reader.report(&filter, by).await.unwrap(), by_rows, "{by:?} {filter:?}");
        }
    }
    for (from, to) in ranges {
        let filter = Filter { start: Some(from), end: Some(to), ..Filter::default() };
        let mut builder = overview::Builder::new(from, to);
        reader.scan(&filter, &mut |e| builder.add(&e)).await.unwrap();
        let mut by_rows = builder.finish();
        assert!(by_rows.requests > 0 && by_rows.overhead_p99_ms.is_some());
        // Ranges charted by the hour or the day read the rollup, which keeps durations and
        // overheads at two significant digits; a chart by the minute reads the rows.
        if Bucket::for_range(from, to) != Bucket::Minute {
            by_rows = at_rollup_resolution(by_rows);
        }
        // SQLite's row-by-row read prints a row's overhead with 15 significant digits; the
        // store's sum reads the recorded double: equal to well under a microsecond.
        let near = |s: overview::Summary| overview::Summary {
            overhead_p50_ms: s.overhead_p50_ms.map(|o| (o * 1e6).round()),
            overhead_p99_ms: s.overhead_p99_ms.map(|o| (o * 1e6).round()),
            ..s
        };
        assert!(from != ranges[0].0 || by_rows.errors.len() == 2, "{:?}", by_rows.errors);
        assert_eq!(
            near(reader.overview(&filter, from, to).await.unwrap()),
            near(by_rows),
            "{from}"
        );
        let key = Filter { api_key: Some(hash_key("awk-key-1")), ..filter };
        let mut builder = overview::Builder::new(from, to);
        reader.scan(&key, &mut |e| builder.add(&e)).await.unwrap();
        assert_eq!(near(reader.overview(&key, from, to).await.unwrap()), near(builder.finish()));
    }
    check_spent_since(&reader).await;
    reader.close().await;
}

/// What budgets read (`Reader::spent_since_each`, `spent_since`): for every scope, since a
/// moment on an hour (the rollup's hours alone) or within one (plus that hour's rows), the
/// sum of the rows' spend.
async fn check_spent_since(reader: &switchyard::ledger::read::Reader) {
    use switchyard::ledger::SpendFilter;
    let at = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap();
    use switchyard::ledger::read::{Entry, Filter};
    // The last moment is 5 rows into its hour: they come from the rows, the rest from the
    // rollup's hours.
    let moments = ["2026-11-19T00:00:00Z", "2026-11-20T12:00:00Z", "2026-11-21T08:05:31.250Z"]
        .map(|m| chrono::DateTime::parse_from_rfc3339(m).unwrap().to_utc());
    let partial = Filter {
        start: Some(moments[2].naive_utc()),
        end: Some(at("2026-11-21T09:00")),
        ..Filter::default()
    };
    let mut in_partial = Decimal::ZERO;
    reader.scan(&partial, &mut |e| in_partial += e.spend.unwrap_or_default()).await.unwrap();
    assert!(in_partial > Decimal::ZERO);
    let filters = [
        SpendFilter::All,
        SpendFilter::ModelGroup("cheap".to_owned()),
        SpendFilter::ModelId("dep-1".to_owned()),
        SpendFilter::Provider("bedrock".to_owned()),
        SpendFilter::Provider("anthropic".to_owned()),
        SpendFilter::EndUser("u1".to_owned()),
        SpendFilter::ApiKey(hash_key("awk-key-1")),
        SpendFilter::ApiKey(String::new()),
        SpendFilter::Team("team".to_owned()),
        SpendFilter::User("owner".to_owned()),
    ];
    let holds = |f: &SpendFilter, e: &Entry| match f {
        SpendFilter::All => true,
        SpendFilter::ModelGroup(v) => e.alias == *v,
        SpendFilter::ModelId(v) => e.deployment == *v,
        SpendFilter::Provider(p) => e.provider == *p || e.provider.starts_with(&format!("{p}/")),
        SpendFilter::EndUser(v) => e.end_user == *v,
        SpendFilter::ApiKey(v) => e.api_key == *v,
        SpendFilter::Team(v) => e.team_id == *v,
        SpendFilter::User(v) => e.user == *v,
    };
    let wanted: Vec<_> =
        moments.iter().flat_map(|since| filters.iter().map(|f| (f.clone(), *since))).collect();
    let spent = reader.spent_since_each(&wanted).await.unwrap();
    for ((filter, since), spent) in wanted.iter().zip(&spent) {
        let mut by_rows = Decimal::ZERO;
        let mut rows = 0;
        let since_rows = Filter { start: Some(since.naive_utc()), ..Filter::default() };
        reader
            .scan(&since_rows, &mut |e| {
                if holds(filter, &e) {
                    by_rows += e.spend.unwrap_or_default();
                    rows += 1;
                }
            })
            .await
            .unwrap();
        assert!(rows > 0 || *filter == SpendFilter::ApiKey(String::new()), "{filter:?}");
        assert_eq!(*spent, by_rows.normalize(), "{filter:?} since {since}");
        assert_eq!(reader.spent_since(filter, *since).await.unwrap(), *spent);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sums_in_sql_equal_row_sums() {
    sql_sums_equal_row_sums(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sums_in_sql_equal_row_sums() {
    let db = TestDb::create().await;
    sql_sums_equal_row_sums(Some(&db.url())).await;
}

/// The rollup failing never fails the ledger's insert: with its table gone (an operator
/// dropped it, or anything else made the trigger's statement fail) rows are still written,
/// and the next start rebuilds it from every row, equal to the rows again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_rollup_never_loses_a_ledger_row_and_is_rebuilt_at_the_next_start() {
    use switchyard::ledger::Store as _;
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let rows = awkward_rows();
    let store = switchyard::ledger::postgres::Postgres::new(&db.url()).unwrap();
    seed(&store, &rows[..150]).await;
    let pool = db.pool().await;
    sqlx::query(r#"DROP TABLE "switchyard_rollup""#).execute(&pool).await.unwrap();
    store.insert(&rows[150..]).await.unwrap();
    let count: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "LiteLLM_SpendLogs""#)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, rows.len() as i64);
    pool.close().await;
    let restarted = switchyard::ledger::postgres::Postgres::new(&db.url()).unwrap();
    restarted.prepare().await.unwrap();
    check_sums(dir.path(), Some(&db.url())).await;
}

/// The dashboard's report routes while PostgreSQL cannot be reached (a relay the test cuts):
/// each answers at once with the ledger's error (what, why, what to do, `LED-01`) instead of
/// hanging, and answers again once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_routes_answer_a_clear_error_while_the_database_is_cut_and_recover() {
    let db = TestDb::create().await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = db.url_at(relay.addr);
    let s = setup(Some(&url)).await;
    seed(&switchyard::ledger::postgres::Postgres::new(&db.url()).unwrap(), &seed_rows(200)).await;
    let seen = Seen::default();
    let week = (Utc::now() - chrono::Duration::days(8)).format("%Y-%m-%d").to_string();
    let routes = [
        "/overview".to_owned(),
        format!("/overview?from={week}"),
        "/spend?group_by=alias".to_owned(),
        "/spend?group_by=tag".to_owned(),
        "/spend?group_by=day&format=csv".to_owned(),
        "/requests".to_owned(),
    ];
    for path in &routes {
        let (status, _, text) = seen.get_raw(&s, MASTER, path).await;
        assert_eq!(status, 200, "{path}: {text}");
    }
    relay.cut();
    // A hung route would fail here rather than stall the run.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    for path in &routes {
        let resp = client
            .get(format!("{}/ui/api{path}", s.gw.url()))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: no answer while the database is cut: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(status >= 500, "{path}: {status} {text}");
        assert!(text.contains("LED-01"), "{path}: {text}");
        assert!(text.contains("cannot be read"), "{path}: {text}");
        assert!(text.contains("database_url"), "{path}: what to do: {text}");
    }
    relay.restore();
    for path in &routes {
        let back = eventually(Duration::from_secs(20), || async {
            seen.get_raw(&s, MASTER, path).await.0 == 200
        })
        .await;
        assert!(back, "{path} answers again once the database is back");
    }
    let (_, spend) = seen.get(&s, MASTER, &format!("/spend?from={week}")).await;
    assert_eq!(spend["total"]["requests"], 200);
}
