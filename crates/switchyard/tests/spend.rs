//! Reading spend back, on SQLite and on the machine's PostgreSQL (a fresh database per
//! test): requests through an in-process gateway against the mock Anthropic API — priced,
//! unpriced, failed, tagged — then the `switchyard spend` binary and LiteLLM's spend routes.
//! Sums equal the returned `x-litellm-response-cost` values to the last digit; unknown spend
//! is said to be unknown, never $0; tags explode; filters, dates and the master key behave
//! as LiteLLM's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod support;

use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use chrono::{Days, Utc};
use ledger_support::*;
use mock_upstream::MockUpstream;
use serde_json::{Value, json};
use switchyard::attribution::hash_key;
use switchyard::config::{self, MapEnv};
use switchyard::cost::Decimal;
use switchyard::ledger::Ledger;
use switchyard::server::Handle;

/// `good` (priced), `unpriced` (a model no table prices), `bad` (a refused key).
fn spend_yaml(mock: &MockUpstream, database_url: Option<&str>) -> String {
    let url = mock.url();
    let dep = |alias: &str, model: &str, key: &str| {
        format!(
            "  - model_name: {alias}\n    litellm_params:\n      model: anthropic/{model}\n      api_key: {key}\n      api_base: {url}\n    model_info:\n      id: {alias}-1\n"
        )
    };
    let mut out = "model_list:\n".to_owned();
    out.push_str(&dep("good", "claude-haiku-4-5", ANT_KEY));
    out.push_str(&dep("unpriced", "claude-mystery-9", ANT_KEY));
    out.push_str(&dep("bad", "claude-haiku-4-5", "sk-ant-api03-revoked-000000000000000"));
    out.push_str(&format!(
        "router_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER}\n"
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
    config: std::path::PathBuf,
    dir: tempfile::TempDir,
}

async fn setup(database_url: Option<&str>) -> Setup {
    let mock = MockUpstream::builder().api_key(ANT_KEY).record(false).start().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = spend_yaml(&mock, database_url);
    let config = dir.path().join("switchyard.yaml");
    std::fs::write(&config, &yaml).unwrap();
    let cfg = config::load_from_str(&yaml, &config, &MapEnv::default()).unwrap();
    let gw = support::start(cfg).await;
    let ledger = Ledger::open(&settings(&dir.path().join("state"), database_url)).unwrap();
    gw.state.set_ledger(ledger.clone());
    Setup { _mock: mock, gw, ledger, config, dir }
}

/// Sends the scenario; returns the sum of the priced answers' `x-litellm-response-cost`.
async fn scenario(s: &Setup) -> Decimal {
    let client = reqwest::Client::new();
    let base = s.gw.url();
    let tagged = |tags: Value| {
        let mut body = chat("good", false);
        body["metadata"] = json!({ "tags": tags });
        body
    };
    let mut sum = Decimal::ZERO;
    for (id, path, body, ok) in [
        ("r-1", "/v1/chat/completions", tagged(json!(["team:a", "job:x"])), true),
        ("r-2", "/v1/chat/completions", tagged(json!(["team:a"])), true),
        ("r-3", "/v1/chat/completions", chat("good", false), true),
        ("r-4", "/v1/messages", messages("good", false), true),
        ("r-5", "/v1/chat/completions", chat("unpriced", false), true),
        ("r-6", "/v1/messages", messages("unpriced", false), true),
        ("r-7", "/v1/chat/completions", chat("bad", false), false),
    ] {
        let (status, _, cost, text) = call(&client, &base, path, id, body).await;
        assert_eq!(status == 200, ok, "{id}: {status} {text}");
        if id.starts_with("r-") && body_alias(id) == "good" {
            sum += Decimal::from_str(&cost.unwrap_or_else(|| panic!("{id} has no cost"))).unwrap();
        } else {
            assert!(cost.is_none(), "{id}: an unpriced or failed answer has no cost header");
        }
    }
    let seven = eventually(Duration::from_secs(10), || async {
        s.ledger.flush().await;
        s.ledger.status().written >= 7
    })
    .await;
    assert!(seven, "{:?}", s.ledger.status());
    sum
}

fn body_alias(id: &str) -> &'static str {
    match id {
        "r-1" | "r-2" | "r-3" | "r-4" => "good",
        "r-5" | "r-6" => "unpriced",
        _ => "bad",
    }
}

/// `switchyard spend` as the built binary, in a clean environment.
fn spend(s: &Setup, args: &[&str]) -> (i32, String, String) {
    let state = s.dir.path().join("state");
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("spend")
        .arg("--config")
        .arg(&s.config)
        .arg("--state-dir")
        .arg(&state)
        .args(args)
        .env("HOME", s.dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHYARD_CONFIG")
        .env_remove("SWITCHYARD_ENV_FILE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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

fn group<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {report:#}"))
}

async fn check_cli(s: &Setup, sum: Decimal) {
    let (code, out, err) = tokio::task::block_in_place(|| spend(s, &["--json"]));
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["by"], "alias");
    let good = group(&report, "good");
    assert_eq!(dec(&good["spend"]), sum, "the sum of the returned costs, exactly");
    assert_eq!((good["requests"].as_u64(), good["unpriced_requests"].as_u64()), (Some(4), Some(0)));
    assert!(
        good["input_tokens"].as_u64().unwrap() > 0 && good["output_tokens"].as_u64().unwrap() > 0
    );
    let unpriced = group(&report, "unpriced");
    assert_eq!(unpriced["unpriced_requests"], 2, "{unpriced}");
    assert_eq!(dec(&unpriced["spend"]), Decimal::ZERO);
    let bad = group(&report, "bad");
    assert_eq!((bad["requests"].as_u64(), bad["failed"].as_u64()), (Some(1), Some(1)));
    assert_eq!(dec(&report["total"]["spend"]), sum);
    assert_eq!(report["total"]["requests"], 7);
    assert_eq!(report["total"]["unpriced_requests"], 2);

    // The table says unknown, never $0.
    let (code, text, err) = tokio::task::block_in_place(|| spend(s, &[]));
    assert_eq!(code, 0, "{text}{err}");
    let dollars = switchyard::ledger::report::dollars(sum);
    assert!(text.contains("Spend by alias"), "{text}");
    assert!(text.contains(&format!("{dollars} + 2 unpriced")), "{text}");
    let unpriced_line = text.lines().find(|l| l.starts_with("unpriced ")).unwrap();
    assert!(unpriced_line.ends_with("2 unpriced") && !unpriced_line.contains('$'), "{text}");
    let good_line = text.lines().find(|l| l.starts_with("good ")).unwrap();
    assert!(good_line.ends_with(&dollars), "{text}");

    // Tags explode; the total counts each request once.
    let (code, out, err) = tokio::task::block_in_place(|| spend(s, &["--by", "tag", "--json"]));
    assert_eq!(code, 0, "{out}{err}");
    let tags: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(group(&tags, "team:a")["requests"], 2);
    assert_eq!(group(&tags, "job:x")["requests"], 1);
    assert_eq!(group(&tags, "(no tag)")["requests"], 5);
    assert_eq!(tags["total"]["requests"], 7);

    // By key: the hash abbreviated, never the key.
    let (code, out, _) = tokio::task::block_in_place(|| spend(s, &["--by", "key", "--json"]));
    assert_eq!(code, 0);
    assert!(!out.contains(MASTER));
    let keys: Value = serde_json::from_str(&out).unwrap();
    let hash = hash_key(MASTER);
    assert_eq!(keys["groups"][0]["group"], format!("{}…", &hash[..12]));
    assert_eq!(keys["groups"][0]["key_hash"], hash);

    // By day: today, UTC.
    let (_, out, _) = tokio::task::block_in_place(|| spend(s, &["--by", "day", "--json"]));
    let days: Value = serde_json::from_str(&out).unwrap();
    let today = Utc::now().date_naive().format("%Y-%m-%d").to_string();
    assert_eq!(dec(&group(&days, &today)["spend"]), sum);

    // CSV: a header, one line per group, spend exact.
    let (code, csv, _) = tokio::task::block_in_place(|| spend(s, &["--csv"]));
    assert_eq!(code, 0);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "alias,requests,failed,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,spend,unpriced_requests"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    let good: Vec<&str> =
        lines.iter().find(|l| l.starts_with("good,")).unwrap().split(',').collect();
    assert_eq!(Decimal::from_str(good[7]).unwrap(), sum);

    // A window with nothing in it is a report, not an error.
    let (code, out, err) =
        tokio::task::block_in_place(|| spend(s, &["--from", "2020-01-01", "--to", "2020-01-31"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("No requests recorded between 2020-01-01 00:00 UTC"), "{out}");
}

async fn get(s: &Setup, path: &str) -> (u16, Value, Option<String>) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", s.gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let truncated =
        resp.headers().get("x-switchyard-truncated").map(|v| v.to_str().unwrap().to_owned());
    (status, resp.json().await.unwrap(), truncated)
}

async fn check_http(s: &Setup, sum: Decimal) {
    // The master key is required.
    for path in ["/spend/logs", "/spend/tags", "/global/spend/report", "/global/spend/logs"] {
        let resp = reqwest::get(format!("{}{path}", s.gw.url())).await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "401", "{path}");
    }

    let (status, rows, truncated) = get(s, "/spend/logs").await;
    assert_eq!((status, truncated), (200, None));
    assert_eq!(rows.as_array().unwrap().len(), 7, "{rows:#}");
    let total: Decimal = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["spend"].is_null())
        .map(|r| dec(&r["spend"]))
        .sum();
    assert_eq!(total, sum);

    let (_, one, _) = get(s, "/spend/logs?request_id=r-1").await;
    let row = &one[0];
    assert_eq!(one.as_array().unwrap().len(), 1);
    for column in [
        "request_id",
        "call_type",
        "api_key",
        "spend",
        "total_tokens",
        "prompt_tokens",
        "completion_tokens",
        "startTime",
        "endTime",
        "completionStartTime",
        "model",
        "model_id",
        "model_group",
        "custom_llm_provider",
        "api_base",
        "user",
        "metadata",
        "cache_hit",
        "cache_key",
        "request_tags",
        "team_id",
        "end_user",
        "session_id",
        "status",
    ] {
        assert!(row.get(column).is_some(), "{column} in {row:#}");
    }
    assert_eq!(row["request_tags"], json!(["team:a", "job:x"]));
    assert_eq!(row["model_group"], "good");
    assert_eq!(row["status"], "success");
    assert_eq!(row["api_key"], hash_key(MASTER));
    assert!(row["startTime"].as_str().unwrap().ends_with('Z'), "{row}");

    // Unknown spend is null, not 0.
    let (_, unpriced, _) = get(s, "/spend/logs?request_id=r-5").await;
    assert_eq!(unpriced[0]["spend"], Value::Null, "{unpriced}");
    assert_eq!(unpriced[0]["metadata"]["spend_unknown"], true);

    // api_key: the raw key or its hash; another key has nothing.
    let (_, raw, _) = get(s, &format!("/spend/logs?api_key={MASTER}")).await;
    let (_, hashed, _) = get(s, &format!("/spend/logs?api_key={}", hash_key(MASTER))).await;
    assert_eq!(raw.as_array().unwrap().len(), 7);
    assert_eq!(raw, hashed);
    let (_, other, _) = get(s, "/spend/logs?api_key=sk-someone-else").await;
    assert_eq!(other, json!([]));

    // Bounded.
    let (_, two, truncated) = get(s, "/spend/logs?limit=2").await;
    assert_eq!((two.as_array().unwrap().len(), truncated.as_deref()), (2, Some("true")));

    // LiteLLM's dates: [start 00:00, end 00:00]; the end day itself is not in.
    let today = Utc::now().date_naive();
    let (yesterday, tomorrow) = (
        today.checked_sub_days(Days::new(1)).unwrap(),
        today.checked_add_days(Days::new(1)).unwrap(),
    );
    let (_, rows, _) =
        get(s, &format!("/spend/logs?start_date={today}&end_date={tomorrow}&summarize=false"))
            .await;
    assert_eq!(rows.as_array().unwrap().len(), 7);
    let (_, none, _) =
        get(s, &format!("/spend/logs?start_date={yesterday}&end_date={today}&summarize=false"))
            .await;
    assert_eq!(none, json!([]));
    let (_, summary, _) =
        get(s, &format!("/spend/logs?start_date={today}&end_date={tomorrow}")).await;
    assert_eq!(summary[0]["startTime"], today.to_string());
    assert_eq!(dec(&summary[0]["spend"]), sum);
    assert_eq!(dec(&summary[0][hash_key(MASTER)]), sum);
    assert_eq!(summary[0]["unpriced_requests"], 2);
    assert_eq!(
        summary[1],
        json!({"startTime": tomorrow.to_string(), "spend": 0, "users": {}, "models": {}})
    );
    let (status, bad, _) = get(s, "/spend/logs?start_date=12/01/2026").await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["param"], "start_date");
    assert!(bad["error"]["message"].as_str().unwrap().contains("YYYY-MM-DD"), "{bad}");

    // Tags.
    let (_, tags, _) = get(s, "/spend/tags").await;
    let team =
        tags.as_array().unwrap().iter().find(|t| t["individual_request_tag"] == "team:a").unwrap();
    assert_eq!(team["log_count"], 2);
    assert_eq!(tags.as_array().unwrap().len(), 2, "untagged requests are not a tag: {tags}");

    // The global report, per team and per key.
    let (status, report, _) =
        get(s, &format!("/global/spend/report?start_date={today}&end_date={tomorrow}")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report[0]["group_by_day"], format!("{today}T00:00:00+00:00"));
    assert_eq!(report[0]["teams"][0]["team_name"], "Unassigned Team");
    assert_eq!(dec(&report[0]["teams"][0]["total_spend"]), sum);
    let (_, by_key, _) = get(
        s,
        &format!("/global/spend/report?start_date={today}&end_date={tomorrow}&api_key={MASTER}"),
    )
    .await;
    assert_eq!(by_key[0]["api_key"], hash_key(MASTER));
    assert_eq!(dec(&by_key[0]["total_cost"]), sum);
    assert!(by_key[0]["model_details"].as_array().unwrap().len() >= 2, "{by_key}");
    let (status, missing, _) = get(s, "/global/spend/report").await;
    assert_eq!(status, 400, "{missing}");
    assert_eq!(missing["error"]["diagnosis"]["id"], "LED-03", "{missing}");

    // Daily spend over 30 days.
    let (_, daily, _) = get(s, "/global/spend/logs").await;
    assert_eq!(daily[0]["date"], today.to_string());
    assert_eq!(dec(&daily[0]["spend"]), sum);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_spend_reads_back_exactly() {
    let s = setup(None).await;
    let sum = scenario(&s).await;
    check_http(&s, sum).await;
    check_cli(&s, sum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_spend_reads_back_exactly() {
    let db = TestDb::create().await;
    let s = setup(Some(&db.url())).await;
    let sum = scenario(&s).await;
    check_http(&s, sum).await;
    check_cli(&s, sum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ledger_yet_is_said_and_nothing_is_created() {
    let mock = MockUpstream::builder().api_key(ANT_KEY).record(false).start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.yaml");
    std::fs::write(&config, spend_yaml(&mock, None)).unwrap();
    let state = dir.path().join("state");
    let run = |config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["spend", "--config"])
            .arg(config)
            .arg("--state-dir")
            .arg(&state)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let out = tokio::task::block_in_place(|| run(&config));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("LED-02") && err.contains("ledger.sqlite3"), "{err}");
    assert!(!state.exists(), "read-only: nothing is created");

    // A PostgreSQL that does not answer: LED-01, without the password.
    let down = dir.path().join("down.yaml");
    std::fs::write(&down, spend_yaml(&mock, Some("postgres://ledger:hunter2@127.0.0.1:1/spend")))
        .unwrap();
    let out = tokio::task::block_in_place(|| run(&down));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("LED-01") && err.contains("127.0.0.1:1/spend"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// A table LiteLLM created and wrote (a float spend, no exact decimal, columns this gateway
/// never writes) reads back too: its rows count at their float's value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_litellm_wrote_read_back_from_its_own_table() {
    let db = TestDb::create().await;
    let pool = db.pool().await;
    sqlx::raw_sql(switchyard::ledger::postgres::CREATE_TABLE).execute(&pool).await.unwrap();
    sqlx::query(
        r#"INSERT INTO "LiteLLM_SpendLogs" (request_id, call_type, api_key, spend, "startTime",
           "endTime", model, model_group, request_tags, prompt_tokens, completion_tokens, status)
           VALUES ('litellm-1', 'acompletion', 'abc', 0.25, now(), now(), 'gpt-4o', 'smart',
                   '["team:old"]', 100, 20, 'success'),
                  ('litellm-2', 'acompletion', 'abc', 3.4e-05, now(), now(), 'gpt-4o', 'smart',
                   '[]', 10, 2, 'success')"#,
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let s = setup(Some(&db.url())).await;
    let (code, out, err) = tokio::task::block_in_place(|| spend(&s, &["--json"]));
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let smart = group(&report, "smart");
    assert_eq!(smart["spend"], "0.250034");
    assert_eq!((smart["requests"].as_u64(), smart["input_tokens"].as_u64()), (Some(2), Some(110)));
    let (_, tags, _) = get(&s, "/spend/tags").await;
    assert_eq!(tags[0]["individual_request_tag"], "team:old");
    assert_eq!(dec(&tags[0]["total_spend"]), Decimal::from_str("0.25").unwrap());
    let (_, rows, _) = get(&s, "/spend/logs?request_id=litellm-1").await;
    assert_eq!(rows[0]["model"], "gpt-4o");
    assert_eq!(rows[0]["messages"], json!({}), "LiteLLM's own columns come back as they are");
}
