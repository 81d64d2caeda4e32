//! The harness of the ledger tests: a fresh PostgreSQL database per test on the machine's
//! server (dropped afterwards), a TCP relay in front of it that a test can cut and restore,
//! the mock-backed config, and reading rows back from either store.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mock_upstream::MockUpstream;
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use switchyard::config::MapEnv;
use switchyard::ledger::{Ledger, Settings};
use switchyard::server::Handle;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub const MASTER: &str = "sk-gw-ledger-0123456789";
pub const ANT_KEY: &str = "sk-ant-api03-ledger-test-0000000000";
const WRONG_KEY: &str = "sk-ant-api03-revoked-000000000000000";
pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `good` (one deployment), `bad` (its key is refused), `flaky` (a refused key first, then
/// a good one): JSON, failure and fallover on the mock Anthropic API.
pub fn yaml(mock: &MockUpstream) -> String {
    let url = mock.url();
    let dep = |alias: &str, id: &str, key: &str, order: u32| {
        format!(
            "  - model_name: {alias}\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_key: {key}\n      api_base: {url}\n      order: {order}\n    model_info:\n      id: {id}\n"
        )
    };
    let mut out = "model_list:\n".to_owned();
    out.push_str(&dep("good", "good-1", ANT_KEY, 1));
    out.push_str(&dep("bad", "bad-1", WRONG_KEY, 1));
    out.push_str(&dep("flaky", "flaky-bad", WRONG_KEY, 1));
    out.push_str(&dep("flaky", "flaky-good", ANT_KEY, 2));
    out.push_str(&format!(
        "router_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER}\n"
    ));
    out
}

/// The mock and an in-process gateway recording into `settings`' ledger.
pub async fn gateway(settings: &Settings) -> (MockUpstream, Handle, Ledger) {
    let mock = MockUpstream::builder().api_key(ANT_KEY).record(false).start().await;
    let gw = crate::support::gateway(&yaml(&mock), &MapEnv::default()).await;
    let ledger = Ledger::open(settings).unwrap();
    gw.state.set_ledger(ledger.clone());
    (mock, gw, ledger)
}

pub fn settings(dir: &Path, database_url: Option<&str>) -> Settings {
    Settings {
        database_url: database_url.map(switchyard::secret::Secret::new),
        state_dir: dir.to_owned(),
        retention: None,
    }
}

/// One request; returns (status, x-request-id, x-litellm-response-cost, body).
pub async fn call(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    id: &str,
    body: Value,
) -> (u16, String, Option<String>, String) {
    let resp = client
        .post(format!("{base}{path}"))
        .bearer_auth(MASTER)
        .header("x-request-id", id)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let header = |n: &str| resp.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    let rid = header("x-request-id").unwrap_or_default();
    let cost = header("x-litellm-response-cost");
    let text = resp.text().await.unwrap();
    (status, rid, cost, text)
}

pub fn chat(alias: &str, stream: bool) -> Value {
    json!({"model": alias, "max_tokens": 16, "stream": stream,
           "stream_options": {"include_usage": true}, "user": "end-user-7",
           "messages": [{"role": "user", "content": "Say: WORKS"}]})
}

pub fn messages(alias: &str, stream: bool) -> Value {
    json!({"model": alias, "max_tokens": 16, "stream": stream,
           "messages": [{"role": "user", "content": "Say: WORKS"}]})
}

/// A row as both stores give it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub request_id: String,
    pub call_type: String,
    pub api_key: String,
    /// As text: SQLite's exact decimal (NULL when unknown); PostgreSQL's float.
    pub spend: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub model: String,
    pub model_id: String,
    pub model_group: String,
    pub provider: String,
    pub api_base: String,
    pub end_user: Option<String>,
    pub status: String,
    pub metadata: Value,
    pub ordered_times: bool,
    pub has_first_token: bool,
    pub duration_ms: i64,
}

const PG_SELECT: &str = r#"SELECT request_id, call_type, api_key, spend::text AS spend,
    prompt_tokens::bigint AS p, completion_tokens::bigint AS c, total_tokens::bigint AS t,
    model, model_id, model_group, custom_llm_provider, api_base, end_user, status,
    metadata::text AS metadata, ("startTime" <= "endTime") AS ordered,
    ("completionStartTime" IS NOT NULL) AS first, request_duration_ms::bigint AS d
    FROM "LiteLLM_SpendLogs" ORDER BY request_id"#;

pub async fn pg_rows(pool: &PgPool) -> Vec<Row> {
    let rows = sqlx::query(PG_SELECT).fetch_all(pool).await.unwrap();
    rows.iter()
        .map(|r| Row {
            request_id: r.get("request_id"),
            call_type: r.get("call_type"),
            api_key: r.get("api_key"),
            spend: r.get("spend"),
            prompt_tokens: r.get("p"),
            completion_tokens: r.get("c"),
            total_tokens: r.get("t"),
            model: r.get("model"),
            model_id: r.get::<Option<String>, _>("model_id").unwrap_or_default(),
            model_group: r.get::<Option<String>, _>("model_group").unwrap_or_default(),
            provider: r.get::<Option<String>, _>("custom_llm_provider").unwrap_or_default(),
            api_base: r.get::<Option<String>, _>("api_base").unwrap_or_default(),
            end_user: r.get("end_user"),
            status: r.get::<Option<String>, _>("status").unwrap_or_default(),
            metadata: serde_json::from_str(r.get::<&str, _>("metadata")).unwrap(),
            ordered_times: r.get("ordered"),
            has_first_token: r.get("first"),
            duration_ms: r.get::<Option<i64>, _>("d").unwrap_or_default(),
        })
        .collect()
}

pub async fn sqlite_pool(dir: &Path) -> SqlitePool {
    let url = format!("sqlite://{}", dir.join("ledger.sqlite3").display());
    SqlitePool::connect(&url).await.unwrap()
}

pub async fn sqlite_rows(pool: &SqlitePool) -> Vec<Row> {
    let rows = sqlx::query(
        r#"SELECT request_id, call_type, api_key, spend, prompt_tokens AS p,
        completion_tokens AS c, total_tokens AS t, model, model_id, model_group,
        custom_llm_provider, api_base, end_user, status, metadata,
        ("startTime" <= "endTime") AS ordered, ("completionStartTime" IS NOT NULL) AS first,
        request_duration_ms AS d FROM "LiteLLM_SpendLogs" ORDER BY request_id"#,
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.iter()
        .map(|r| Row {
            request_id: r.get("request_id"),
            call_type: r.get("call_type"),
            api_key: r.get("api_key"),
            spend: r.get("spend"),
            prompt_tokens: r.get("p"),
            completion_tokens: r.get("c"),
            total_tokens: r.get("t"),
            model: r.get("model"),
            model_id: r.get::<Option<String>, _>("model_id").unwrap_or_default(),
            model_group: r.get::<Option<String>, _>("model_group").unwrap_or_default(),
            provider: r.get::<Option<String>, _>("custom_llm_provider").unwrap_or_default(),
            api_base: r.get::<Option<String>, _>("api_base").unwrap_or_default(),
            end_user: r.get("end_user"),
            status: r.get::<Option<String>, _>("status").unwrap_or_default(),
            metadata: serde_json::from_str(r.get::<&str, _>("metadata")).unwrap(),
            ordered_times: r.get::<bool, _>("ordered"),
            has_first_token: r.get::<bool, _>("first"),
            duration_ms: r.get::<Option<i64>, _>("d").unwrap_or_default(),
        })
        .collect()
}

/// A database of its own on the machine's PostgreSQL, dropped when this is dropped.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("sy_ledger_{:016x}", fastrand::u64(..));
        let admin = PgPool::connect(ADMIN_URL).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&admin).await.unwrap();
        admin.close().await;
        Self { name }
    }

    pub fn url(&self) -> String {
        self.url_at("127.0.0.1:5432".parse().unwrap())
    }

    pub fn url_at(&self, addr: SocketAddr) -> String {
        format!("postgres://postgres@{addr}/{}", self.name)
    }

    pub async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url()).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(admin) = PgPool::connect(ADMIN_URL).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&admin)
                            .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A TCP relay to `target` the test controls: `cut` closes every relayed connection and
/// refuses new ones (accepted, then closed at once) until `restore`.
pub struct Relay {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, rx) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if !*rx.borrow() {
                    drop(client);
                    continue;
                }
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up }
    }

    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

/// Polls `check` every 50 ms until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub type Shared<T> = Arc<std::sync::Mutex<T>>;
