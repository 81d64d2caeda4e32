//! The harness of the batch tests: an in-process gateway with a ledger, keys and batches on
//! one store, calls as the SDKs send them, polling a batch to its end, and the ledger rows a
//! batch wrote, from either store.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use switchyard::batches::{Batches, Settings as BatchSettings};
use switchyard::config::MapEnv;
use switchyard::keys::{Keys, POLL, Settings as KeySettings};
use switchyard::ledger::{Ledger, Settings as LedgerSettings};
use switchyard::server::{self, Handle};

use crate::ledger_support::{self, ANT_KEY, MASTER, TestDb, pg_rows, sqlite_pool, sqlite_rows};

/// The key the mock refuses (the `bad` alias's).
pub const REFUSED_KEY: &str = "sk-ant-api03-refused-0000000000";

/// The end of both batch configs: `bad` (a key the mock Anthropic API refuses) and `local`
/// (its OpenAI-compatible API, no prices), no retries, the master key; `general_settings`
/// open for more.
pub fn shared_entries(mock_url: &str) -> String {
    format!(
        "  - model_name: bad
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: {REFUSED_KEY}
      api_base: {mock_url}
  - model_name: local
    litellm_params:
      model: openai/qwen3
      api_key: {ANT_KEY}
      api_base: {mock_url}/v1
router_settings:
  num_retries: 0
general_settings:
  master_key: {MASTER}
"
    )
}

/// A message batch's body: one `Say DONE` request per alias, `req-<i>` each.
pub fn message_batch(aliases: &[&str]) -> Value {
    let requests: Vec<Value> = aliases
        .iter()
        .enumerate()
        .map(|(i, alias)| {
            serde_json::json!({"custom_id": format!("req-{i}"),
                   "params": {"model": alias, "max_tokens": 16,
                              "messages": [{"role": "user", "content": "Say DONE"}]}})
        })
        .collect();
    serde_json::json!({ "requests": requests })
}

/// How long a batch may take to finish in these tests (a loaded two-core machine).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// An in-process gateway on the config `yaml` with a ledger, keys and batches in `dir`
/// (SQLite) or `database_url` (several may share one store).
pub async fn gateway(
    yaml: &str,
    dir: &Path,
    database_url: Option<&str>,
) -> (Handle, switchyard::batches::Handle, Ledger) {
    let gw = crate::support::gateway(yaml, &MapEnv::default()).await;
    let url = database_url.map(switchyard::secret::Secret::new);
    let ledger = Ledger::open(&LedgerSettings {
        database_url: url.clone(),
        state_dir: dir.to_owned(),
        retention: None,
    })
    .unwrap();
    gw.state.set_ledger(ledger.clone());
    let keys =
        Keys::open(&KeySettings { database_url: url.clone(), state_dir: dir.to_owned() }).unwrap();
    keys.start(POLL).await;
    gw.state.set_keys(keys);
    let batches =
        Batches::open(&BatchSettings { database_url: url, state_dir: dir.to_owned() }).unwrap();
    let runner = server::run_batches(&gw.state, batches);
    (gw, runner, ledger)
}

/// One call with `key`, as both SDKs send it; (status, body).
pub async fn send(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let url = format!("{base}{path}");
    let req = match method {
        "GET" => client.get(url),
        "DELETE" => client.delete(url),
        _ => client.post(url),
    };
    let req = match body {
        Some(body) => req.json(&body),
        None => req,
    };
    let resp = req.bearer_auth(key).header("anthropic-version", "2023-06-01").send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Polls the batch until its status is one of `done`.
pub async fn wait_for(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    path: &str,
    field: &str,
    done: &[&str],
) -> Value {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let (status, text) = send(client, base, key, "GET", path, None).await;
        let last = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status == 200 && done.iter().any(|d| last[field] == *d) {
            return last;
        }
        assert!(std::time::Instant::now() < deadline, "{path} never reached {done:?}: {last:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the batch's ledger rows until there are `n`.
pub async fn rows_until(
    dir: &Path,
    db: Option<&TestDb>,
    batch: &str,
    n: usize,
) -> Vec<ledger_support::Row> {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let rows = batch_rows(dir, db, batch).await;
        if rows.len() >= n {
            return rows;
        }
        assert!(std::time::Instant::now() < deadline, "{n} ledger rows never arrived: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The ledger rows the batch wrote, from either store.
pub async fn batch_rows(dir: &Path, db: Option<&TestDb>, batch: &str) -> Vec<ledger_support::Row> {
    // The ledger creates its table with its first write.
    let rows = match db {
        Some(db) => {
            let pool = db.pool().await;
            let sql = r#"SELECT to_regclass('"LiteLLM_SpendLogs"') IS NOT NULL"#;
            let exists: bool = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            if !exists {
                return Vec::new();
            }
            pg_rows(&pool).await
        }
        None if !dir.join("ledger.sqlite3").exists() => return Vec::new(),
        None => {
            let pool = sqlite_pool(dir).await;
            let sql = "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'LiteLLM_SpendLogs'";
            if !sqlx::query_scalar::<_, bool>(sql).fetch_one(&pool).await.unwrap() {
                return Vec::new();
            }
            sqlite_rows(&pool).await
        }
    };
    rows.into_iter().filter(|r| r.metadata["batch_id"] == batch).collect()
}
