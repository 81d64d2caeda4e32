//! The spend ledger end to end on real engines: an in-process gateway against the mock
//! Anthropic API records one row per request — JSON, streamed, failed, fallen over; chat
//! completions and messages — in SQLite (the default) and in PostgreSQL (a fresh database
//! per test on the machine's server), in LiteLLM's table and columns; a table LiteLLM
//! created is written into unchanged; 1,000 concurrent requests give exactly 1,000 rows
//! whose spend sums to the returned costs, to the last decimal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod support;

use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt;
use ledger_support::*;
use sqlx::Row as _;
use switchyard::attribution::hash_key;
use switchyard::cost::Decimal;

/// Sends the six requests of the scenario; returns the JSON answers' costs by request id.
async fn scenario(base: &str) -> Vec<(String, String)> {
    let client = reqwest::Client::new();
    let mut costs = Vec::new();
    for (id, path, body, ok) in [
        ("t-json", "/v1/chat/completions", chat("good", false), true),
        ("t-stream", "/v1/chat/completions", chat("good", true), true),
        ("t-msg", "/v1/messages", messages("good", false), true),
        ("t-msg-stream", "/v1/messages", messages("good", true), true),
        ("t-fail", "/v1/chat/completions", chat("bad", false), false),
        ("t-fall", "/v1/chat/completions", chat("flaky", false), true),
    ] {
        let (status, rid, cost, text) = call(&client, base, path, id, body).await;
        assert_eq!(status == 200, ok, "{id}: {status} {text}");
        assert_eq!(rid, id);
        if let Some(cost) = cost {
            costs.push((id.to_owned(), cost));
        }
    }
    costs
}

fn check(rows: &[Row], costs: &[(String, String)], mock_url: &str, exact_spend: bool) {
    let ids: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids, ["t-fail", "t-fall", "t-json", "t-msg", "t-msg-stream", "t-stream"]);
    let row = |id: &str| rows.iter().find(|r| r.request_id == id).unwrap();
    let cost =
        |id: &str| Decimal::from_str(&costs.iter().find(|(i, _)| i == id).unwrap().1).unwrap();
    let spend = |r: &Row| -> Decimal {
        if exact_spend {
            Decimal::from_str(r.spend.as_deref().unwrap()).unwrap()
        } else {
            Decimal::from_str(r.metadata["spend_decimal"].as_str().unwrap()).unwrap()
        }
    };
    for r in rows {
        assert_eq!(r.api_key, hash_key(MASTER), "{}", r.request_id);
        assert!(r.ordered_times && r.has_first_token || r.status == "failure", "{r:?}");
        assert_eq!(r.total_tokens, r.prompt_tokens + r.completion_tokens, "{r:?}");
        assert_eq!(r.provider, "anthropic", "{r:?}");
        assert_eq!(r.model, "claude-haiku-4-5", "{r:?}");
        assert_eq!(r.api_base, mock_url, "{r:?}");
        assert!(r.duration_ms >= 0);
        assert_eq!(r.metadata["spend_unknown"], false, "{r:?}");
    }
    for id in ["t-json", "t-stream", "t-fall"] {
        assert_eq!(row(id).call_type, "acompletion");
        assert_eq!(row(id).end_user.as_deref(), Some("end-user-7"));
    }
    for id in ["t-msg", "t-msg-stream"] {
        assert_eq!(row(id).call_type, "anthropic_messages");
    }
    for id in ["t-json", "t-msg", "t-fall"] {
        let r = row(id);
        assert_eq!(spend(r), cost(id), "{r:?}");
        assert!(r.prompt_tokens > 0 && r.completion_tokens > 0, "{r:?}");
        assert_eq!(r.status, "success");
    }
    for id in ["t-stream", "t-msg-stream"] {
        let r = row(id);
        assert!(spend(r) > Decimal::ZERO, "a streamed answer is charged at its end: {r:?}");
        assert!(r.prompt_tokens > 0 && r.completion_tokens > 0, "{r:?}");
        assert_eq!(r.status, "success");
        assert_eq!(r.model_id, "good-1");
    }
    let fail = row("t-fail");
    assert_eq!(fail.status, "failure");
    assert_eq!(fail.model_id, "bad-1");
    assert_eq!(fail.model_group, "bad");
    assert_eq!(spend(fail), Decimal::ZERO);
    assert!(!fail.metadata["error_information"]["error_class"].as_str().unwrap().is_empty());
    let fall = row("t-fall");
    assert_eq!(fall.model_id, "flaky-good");
    assert_eq!(fall.model_group, "flaky");
    assert_eq!(fall.metadata["attempts"][0]["model_id"], "flaky-bad", "{fall:?}");
    // No secret anywhere in a row.
    let text = format!("{rows:?}");
    assert!(!text.contains(MASTER) && !text.contains(ANT_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_records_json_streamed_failed_and_fallen_over_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, gw, ledger) = gateway(&settings(dir.path(), None)).await;
    let costs = scenario(&gw.url()).await;
    ledger.flush().await;
    let pool = sqlite_pool(dir.path()).await;
    let six = eventually(Duration::from_secs(10), || async {
        ledger.flush().await;
        sqlite_rows(&pool).await.len() == 6
    })
    .await;
    assert!(six, "{:?}", sqlite_rows(&pool).await);
    check(&sqlite_rows(&pool).await, &costs, &mock.url(), true);
    let status = ledger.status();
    assert_eq!((status.backend, status.state, status.spooled), ("sqlite", "ok", 0));
    // WAL mode: readers never wait for the writer.
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&pool).await.unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_records_the_same_rows_in_litellms_table() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (mock, gw, ledger) = gateway(&settings(dir.path(), Some(&db.url()))).await;
    let costs = scenario(&gw.url()).await;
    let pool = db.pool().await;
    let six = eventually(Duration::from_secs(10), || async {
        ledger.flush().await;
        pg_rows(&pool).await.len() == 6
    })
    .await;
    assert!(six, "{:?}", ledger.status());
    let rows = pg_rows(&pool).await;
    check(&rows, &costs, &mock.url(), false);
    // The float column holds the same cost (to float precision).
    let json = rows.iter().find(|r| r.request_id == "t-json").unwrap();
    let float: f64 = json.spend.as_deref().unwrap().parse().unwrap();
    let exact: f64 = costs[0].1.parse().unwrap();
    assert!((float - exact).abs() < 1e-15, "{float} vs {exact}");
    // The indexes people's queries need.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'LiteLLM_SpendLogs'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for name in [
        "LiteLLM_SpendLogs_startTime_idx",
        "LiteLLM_SpendLogs_api_key_startTime_idx",
        "LiteLLM_SpendLogs_request_tags_idx",
        "LiteLLM_SpendLogs_session_id_idx",
        "LiteLLM_SpendLogs_end_user_idx",
    ] {
        assert!(indexes.iter().any(|i| i == name), "{name} in {indexes:?}");
    }
    assert_eq!(ledger.status().backend, "postgres");
    pool.close().await;
}

/// `"LiteLLM_SpendLogs"` as LiteLLM's Prisma migration creates it (schema.prisma, model
/// LiteLLM_SpendLogs).
const LITELLM_DDL: &str = r#"
CREATE TABLE "LiteLLM_SpendLogs" (
    "request_id" TEXT NOT NULL,
    "call_type" TEXT NOT NULL,
    "api_key" TEXT NOT NULL DEFAULT '',
    "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    "total_tokens" INTEGER NOT NULL DEFAULT 0,
    "prompt_tokens" INTEGER NOT NULL DEFAULT 0,
    "completion_tokens" INTEGER NOT NULL DEFAULT 0,
    "startTime" TIMESTAMP(3) NOT NULL,
    "endTime" TIMESTAMP(3) NOT NULL,
    "request_duration_ms" INTEGER,
    "completionStartTime" TIMESTAMP(3),
    "model" TEXT NOT NULL DEFAULT '',
    "model_id" TEXT DEFAULT '',
    "model_group" TEXT DEFAULT '',
    "custom_llm_provider" TEXT DEFAULT '',
    "api_base" TEXT DEFAULT '',
    "user" TEXT DEFAULT '',
    "metadata" JSONB DEFAULT '{}',
    "cache_hit" TEXT DEFAULT '',
    "cache_key" TEXT DEFAULT '',
    "request_tags" JSONB DEFAULT '[]',
    "team_id" TEXT,
    "organization_id" TEXT,
    "end_user" TEXT,
    "requester_ip_address" TEXT,
    "messages" JSONB DEFAULT '{}',
    "response" JSONB DEFAULT '{}',
    "session_id" TEXT,
    "status" TEXT,
    "mcp_namespaced_tool_name" TEXT,
    "agent_id" TEXT,
    "proxy_server_request" JSONB DEFAULT '{}',
    CONSTRAINT "LiteLLM_SpendLogs_pkey" PRIMARY KEY ("request_id")
);
CREATE INDEX "LiteLLM_SpendLogs_startTime_idx" ON "LiteLLM_SpendLogs"("startTime");
CREATE INDEX "LiteLLM_SpendLogs_startTime_request_id_idx" ON "LiteLLM_SpendLogs"("startTime", "request_id");
CREATE INDEX "LiteLLM_SpendLogs_end_user_idx" ON "LiteLLM_SpendLogs"("end_user");
CREATE INDEX "LiteLLM_SpendLogs_session_id_idx" ON "LiteLLM_SpendLogs"("session_id");
"#;

async fn columns(pool: &sqlx::PgPool) -> Vec<(String, String, Option<String>, String)> {
    sqlx::query(
        "SELECT column_name::text, data_type::text, column_default::text, is_nullable::text \
         FROM information_schema.columns WHERE table_name = 'LiteLLM_SpendLogs' \
         ORDER BY ordinal_position",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

/// One JSON request into a table created beforehand by `ddl`; its columns are unchanged.
async fn write_into_existing(ddl: &str) -> (Vec<Row>, String) {
    let db = TestDb::create().await;
    let pool = db.pool().await;
    sqlx::raw_sql(ddl).execute(&pool).await.unwrap();
    sqlx::query(
        r#"INSERT INTO "LiteLLM_SpendLogs" (request_id, call_type, "startTime", "endTime", spend)
           VALUES ('litellm-old-row', 'acompletion', now(), now(), 0.5)"#,
    )
    .execute(&pool)
    .await
    .unwrap();
    let before = columns(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let (_mock, gw, ledger) = gateway(&settings(dir.path(), Some(&db.url()))).await;
    let client = reqwest::Client::new();
    let (status, _, cost, text) =
        call(&client, &gw.url(), "/v1/chat/completions", "t-new", chat("good", false)).await;
    assert_eq!(status, 200, "{text}");
    ledger.flush().await;
    assert_eq!(columns(&pool).await, before, "the existing table is not altered");
    let rows = pg_rows(&pool).await;
    assert_eq!(ledger.status().state, "ok", "{:?}", ledger.status());
    pool.close().await;
    (rows, cost.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_litellm_created_is_written_into_unchanged() {
    let (rows, cost) = write_into_existing(LITELLM_DDL).await;
    assert_eq!(rows.len(), 2, "LiteLLM's own row stays: {rows:?}");
    let new = rows.iter().find(|r| r.request_id == "t-new").unwrap();
    assert_eq!(new.metadata["spend_decimal"], cost.as_str());
    assert_eq!(new.status, "success");
    assert_eq!(new.model_group, "good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_litellm_table_without_some_columns_still_gets_rows() {
    // Before `status` and `session_id` existed.
    let ddl = LITELLM_DDL
        .replace("    \"session_id\" TEXT,\n", "")
        .replace("    \"status\" TEXT,\n", "")
        .replace(
            "CREATE INDEX \"LiteLLM_SpendLogs_session_id_idx\" ON \"LiteLLM_SpendLogs\"(\"session_id\");",
            "",
        );
    let db = TestDb::create().await;
    let pool = db.pool().await;
    sqlx::raw_sql(&ddl).execute(&pool).await.unwrap();
    let before = columns(&pool).await;
    assert!(!before.iter().any(|c| c.0 == "status"));
    let dir = tempfile::tempdir().unwrap();
    let (_mock, gw, ledger) = gateway(&settings(dir.path(), Some(&db.url()))).await;
    let client = reqwest::Client::new();
    let (status, ..) =
        call(&client, &gw.url(), "/v1/chat/completions", "t-old", chat("good", false)).await;
    assert_eq!(status, 200);
    ledger.flush().await;
    let n: i64 = sqlx::query_scalar(
        r#"SELECT count(*) FROM "LiteLLM_SpendLogs" WHERE request_id = 't-old'"#,
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 1, "{:?}", ledger.status());
    assert_eq!(columns(&pool).await, before, "no column is added");
    pool.close().await;
}

/// 1,000 JSON requests, 64 at a time; returns the sum of their cost headers.
async fn thousand(base: &str) -> Decimal {
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let costs: Vec<Decimal> = futures_util::stream::iter(0..1000)
        .map(|i| {
            let client = client.clone();
            let path = if i % 2 == 0 { "/v1/chat/completions" } else { "/v1/messages" };
            let body = if i % 2 == 0 { chat("good", false) } else { messages("good", false) };
            async move {
                let (status, _, cost, text) =
                    call(&client, base, path, &format!("load-{i:04}"), body).await;
                assert_eq!(status, 200, "{text}");
                Decimal::from_str(&cost.unwrap()).unwrap()
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert_eq!(costs.len(), 1000);
    costs.iter().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_are_a_thousand_rows_that_sum_exactly_postgres() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (_mock, gw, ledger) = gateway(&settings(dir.path(), Some(&db.url()))).await;
    let total = thousand(&gw.url()).await;
    ledger.flush().await;
    let pool = db.pool().await;
    let (n, exact, float): (i64, String, f64) = sqlx::query_as(
        r#"SELECT count(*), sum((metadata->>'spend_decimal')::numeric)::text, sum(spend)
           FROM "LiteLLM_SpendLogs""#,
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 1000);
    assert_eq!(Decimal::from_str(&exact).unwrap(), total);
    let f: f64 = total.to_string().parse().unwrap();
    assert!((float - f).abs() < 1e-9, "{float} vs {total}");
    assert_eq!(ledger.status().written, 1000);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_are_a_thousand_rows_that_sum_exactly_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (_mock, gw, ledger) = gateway(&settings(dir.path(), None)).await;
    let total = thousand(&gw.url()).await;
    ledger.flush().await;
    let pool = sqlite_pool(dir.path()).await;
    let spends: Vec<String> = sqlx::query_scalar(r#"SELECT spend FROM "LiteLLM_SpendLogs""#)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(spends.len(), 1000);
    let sum: Decimal = spends.iter().map(|s| Decimal::from_str(s).unwrap()).sum();
    assert_eq!(sum, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_older_than_the_retention_period_are_deleted() {
    use switchyard::ledger::{Ledger, Record};
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), None);
    s.retention = switchyard::ledger::parse_period("30d");
    let ledger = Ledger::open(&s).unwrap();
    let now = chrono::Utc::now();
    for (id, age_days) in [("old-1", 45), ("old-2", 31), ("recent", 29), ("today", 0)] {
        let start = now - chrono::Duration::days(age_days);
        ledger.record(Record {
            request_id: id.into(),
            call_type: "acompletion".into(),
            start_time: start,
            end_time: start,
            ..Record::default()
        });
    }
    ledger.flush().await;
    let pool = sqlite_pool(dir.path()).await;
    let left = eventually(Duration::from_secs(10), || async {
        let ids: Vec<String> =
            sqlx::query_scalar(r#"SELECT request_id FROM "LiteLLM_SpendLogs" ORDER BY 1"#)
                .fetch_all(&pool)
                .await
                .unwrap();
        ids == ["recent", "today"]
    })
    .await;
    assert!(left);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_url_that_cannot_work_spools_and_says_why_without_the_password() {
    use switchyard::ledger::{Ledger, Record};
    for url in ["postgres://ledger:hunter2@127.0.0.1:notaport/spend", "mysql://x:hunter2@h/db"] {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&settings(dir.path(), Some(url))).unwrap();
        ledger.record(Record { request_id: "r1".into(), ..Record::default() });
        ledger.flush().await;
        let status = ledger.status();
        assert_eq!((status.state, status.spooled), ("degraded", 1), "{status:?}");
        let text = format!("{status:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(status.error.unwrap().contains("database_url"), "{text}");
    }
}

/// Who and why: tags (body and `x-litellm-tags`), the session (LiteLLM's and Claude Code's
/// headers), the end user (OpenAI `user`, Anthropic `metadata.user_id`) reach their columns.
async fn attributed(base: &str) {
    let client = reqwest::Client::new();
    let mut body = chat("good", false);
    body["metadata"] = serde_json::json!({"tags": ["team:core", "job:nightly"]});
    let resp = client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(MASTER)
        .header("x-request-id", "a-chat")
        .header("x-litellm-tags", "job:nightly, env:ci")
        .header("x-litellm-session-id", "sess-42")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = messages("good", false);
    body["metadata"] = serde_json::json!({"user_id": "dev@example.com"});
    let resp = client
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .header("x-request-id", "a-msg")
        .header("x-claude-code-session-id", "cc-session-9")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// request_id, request_tags (JSON text), session_id, end_user.
type Attributed = (String, Option<String>, Option<String>, Option<String>);

fn tags_of(text: Option<String>) -> Vec<String> {
    serde_json::from_str(&text.unwrap_or_else(|| "[]".into())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_reaches_its_columns_in_both_stores() {
    // SQLite.
    let dir = tempfile::tempdir().unwrap();
    let (_mock, gw, ledger) = gateway(&settings(dir.path(), None)).await;
    attributed(&gw.url()).await;
    ledger.flush().await;
    let pool = sqlite_pool(dir.path()).await;
    let query = r#"SELECT request_id, request_tags, session_id, end_user
        FROM "LiteLLM_SpendLogs" ORDER BY request_id"#;
    assert!(
        eventually(Duration::from_secs(10), || async {
            ledger.flush().await;
            sqlite_rows(&pool).await.len() == 2
        })
        .await
    );
    let rows: Vec<Attributed> = sqlx::query_as(query).fetch_all(&pool).await.unwrap();
    // PostgreSQL: the same facts in LiteLLM's JSONB and text columns.
    let db = TestDb::create().await;
    let pdir = tempfile::tempdir().unwrap();
    let (_pmock, pgw, pledger) = gateway(&settings(pdir.path(), Some(&db.url()))).await;
    attributed(&pgw.url()).await;
    let pg = db.pool().await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            pledger.flush().await;
            pg_rows(&pg).await.len() == 2
        })
        .await
    );
    let pg_query = r#"SELECT request_id, request_tags::text, session_id, end_user
        FROM "LiteLLM_SpendLogs" ORDER BY request_id"#;
    let pg_rows: Vec<Attributed> = sqlx::query_as(pg_query).fetch_all(&pg).await.unwrap();
    for rows in [rows, pg_rows] {
        let [chat, msg] = <[_; 2]>::try_from(rows).unwrap();
        assert_eq!(chat.0, "a-chat");
        assert_eq!(tags_of(chat.1), ["team:core", "job:nightly", "env:ci"]);
        assert_eq!(chat.2.as_deref(), Some("sess-42"));
        assert_eq!(chat.3.as_deref(), Some("end-user-7"));
        assert_eq!(msg.0, "a-msg");
        assert!(tags_of(msg.1).is_empty());
        assert_eq!(msg.2.as_deref(), Some("cc-session-9"));
        assert_eq!(msg.3.as_deref(), Some("dev@example.com"));
    }
}
