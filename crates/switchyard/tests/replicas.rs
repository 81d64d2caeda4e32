//! A rolling restart of three `switchyard serve` replicas behind nginx, under steady traffic:
//! the replicas share one fresh PostgreSQL database (ledger, keys) and one Redis key prefix
//! (limits); nginx, run by the test from Debian's package, round-robins over them and passes
//! a request refused or reset before any answer to the next replica. Each replica in turn is
//! sent SIGTERM, seen draining (readiness 503 while its port still accepts), waited for and
//! started again on the same port. Then: no client request failed, every answered request
//! has exactly one ledger row, and a key's `max_budget` held across the restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod limits_support;
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mock_upstream::Reply;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use ledger_support::TestDb;
use limits_support::{MASTER, RedisPrefix, deployment, usage};

/// What one test request costs: 7 input and 100 output tokens at $1 per million each, and
/// what it reserves (`max_tokens` 100 at the output price, the input estimated at 7 tokens).
const COST: &str = "0.000107";
/// The budget key's `max_budget`: room for fourteen requests, not fifteen.
const BUDGET: &str = "0.0015";
/// Concurrent clients sending requests with the master key (half JSON, half streams).
const CLIENTS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_behind_nginx_loses_no_request_no_row_and_no_budget() {
    let nginx = nginx_binary();
    let db = TestDb::create().await;
    let prefix = RedisPrefix::new();
    let dir = tempfile::tempdir().unwrap();
    // nginx's workers run as an unprivileged user and must reach their temp paths.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let mock = limits_support::mock().await;
    // In flight long enough that every drain has requests to finish.
    mock.set_default(Reply::text("WORKS").usage(usage(7, 100)).delay(Duration::from_millis(150)));
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, replica_config(&mock, &db, &prefix)).unwrap();

    let mut fleet = Fleet { replicas: Vec::new(), nginx: None };
    for i in 0..3 {
        let port = free_port();
        let replica = Replica::spawn(&config, port, &dir.path().join(format!("replica-{i}")));
        fleet.replicas.push(replica);
    }
    for r in &fleet.replicas {
        r.wait_ready().await;
    }
    let front = free_port();
    let ports: Vec<u16> = fleet.replicas.iter().map(|r| r.port).collect();
    fleet.nginx = Some(start_nginx(&nginx, &dir.path().join("nginx"), front, &ports).await);
    let base = format!("http://127.0.0.1:{front}");

    let budget_key = generate_key(&base).await;
    for r in &fleet.replicas {
        r.wait_key_known(&budget_key).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (stop, served, base) = (stop.clone(), served.clone(), base.clone());
        clients.push(tokio::spawn(async move {
            let stream = c % 2 == 1;
            let mut log = Vec::new();
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let id = format!("roll-{c}-{n}");
                let answer = send(&base, MASTER, &id, stream).await;
                if answer.served() {
                    served.fetch_add(1, Ordering::Relaxed);
                }
                log.push(answer);
            }
            log
        }));
    }
    let budget_client = {
        let (stop, base, key) = (stop.clone(), base.clone(), budget_key.clone());
        tokio::spawn(async move {
            let mut log: Vec<Answer> = Vec::new();
            let refused =
                |log: &[Answer]| log.iter().filter(|a| a.outcome == Outcome::BudgetRefused).count();
            // Until the restarts are over and the exhausted budget was seen refusing.
            for n in 0.. {
                if stop.load(Ordering::Relaxed) && refused(&log) >= 3 {
                    break;
                }
                log.push(send(&base, &key, &format!("budget-{n}"), n % 2 == 1).await);
                // Paced, so the budget runs out in the middle of the restarts.
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            log
        })
    };

    let http = fresh_connections();
    for i in 0..fleet.replicas.len() {
        wait_for_more(&served, 10).await;
        let r = &mut fleet.replicas[i];
        r.terminate();
        r.saw_draining(&http).await;
        r.wait_exit().await;
        r.restart(&config);
        r.wait_ready().await;
    }
    wait_for_more(&served, 10).await;
    stop.store(true, Ordering::Relaxed);

    let mut answers = Vec::new();
    for c in clients {
        answers.extend(c.await.unwrap());
    }
    let budget_answers = budget_client.await.unwrap();

    let failed: Vec<&Answer> =
        answers.iter().chain(&budget_answers).filter(|a| a.outcome == Outcome::Failed).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the restarts, e.g. {:?}\n{}",
        failed.len(),
        answers.len() + budget_answers.len(),
        failed.iter().take(3).map(|a| format!("{}: {}", a.id, a.detail)).collect::<Vec<_>>(),
        fleet.logs(),
    );
    assert!(answers.iter().all(|a| a.outcome == Outcome::Served));

    // The budget: everything it allows is served, nothing more, across replicas and restarts.
    let cost = Decimal::from_str(COST).unwrap();
    let budget = Decimal::from_str(BUDGET).unwrap();
    let allowed = (budget / cost).floor();
    let key_served = budget_answers.iter().filter(|a| a.served()).count();
    assert_eq!(Decimal::from(key_served), allowed, "{budget_answers:?}");
    let first_refusal = budget_answers.iter().position(|a| a.outcome == Outcome::BudgetRefused);
    let first_refusal = first_refusal.expect("the budget ran out while traffic flowed");
    assert!(
        budget_answers[first_refusal..].iter().all(|a| a.outcome == Outcome::BudgetRefused),
        "once exhausted, the key is refused on every replica: {budget_answers:?}"
    );

    // The ledger: one row per answered request, written before or at each replica's exit.
    let pool = db.pool().await;
    let expected: BTreeMap<&str, &Answer> =
        answers.iter().chain(&budget_answers).map(|a| (a.id.as_str(), a)).collect();
    let complete = ledger_support::eventually(Duration::from_secs(20), || async {
        row_count(&pool).await == expected.len()
    })
    .await;
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        r#"SELECT request_id, spend::text, status FROM "LiteLLM_SpendLogs" ORDER BY request_id"#,
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, _, _) in &rows {
        *per_id.entry(id.as_str()).or_default() += 1;
    }
    let missing: Vec<&&str> = expected.keys().filter(|id| !per_id.contains_key(**id)).collect();
    let extra: Vec<&&str> = per_id.keys().filter(|id| !expected.contains_key(**id)).collect();
    let doubled: Vec<&&str> = per_id.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    assert!(
        complete && missing.is_empty() && extra.is_empty() && doubled.is_empty(),
        "{} rows for {} answered requests; missing {missing:?}, unexpected {extra:?}, \
         doubled {doubled:?}\n{}",
        rows.len(),
        expected.len(),
        fleet.logs(),
    );
    let key_spend: Decimal = rows
        .iter()
        .filter(|(id, _, status)| id.starts_with("budget-") && status.as_deref() == Some("success"))
        .map(|(id, spend, _)| {
            let spend = spend.as_deref().unwrap_or_else(|| panic!("{id}: no spend"));
            Decimal::from_str(spend).or_else(|_| Decimal::from_scientific(spend)).unwrap()
        })
        .sum();
    assert!(key_spend <= budget, "the key spent {key_spend} of a {budget} budget");
    assert_eq!(
        key_spend.round_dp(9),
        (cost * allowed).round_dp(9),
        "every served request was billed"
    );

    let passed_on = std::fs::read_to_string(dir.path().join("nginx/error.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("while connecting to upstream") || l.contains("upstream"))
        .count();
    eprintln!(
        "{} requests answered ({} with the budget key, {key_served} served), {} ledger rows, \
         {passed_on} upstream errors nginx passed on to the next replica",
        expected.len(),
        budget_answers.len(),
        rows.len(),
    );
    pool.close().await;
    fleet.stop().await;
    prefix.clean().await;
}

/// `nginx` on PATH or where Debian puts it; a clear failure when it is not installed.
fn nginx_binary() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "nginx is not installed: this test runs replicas behind it. Install it with \
             `sudo apt-get install -y nginx-light` (scripts/test does this)."
        )
    })
}

/// Every replica's config: the mock upstream, priced; the shared database and Redis prefix.
fn replica_config(mock: &mock_upstream::MockUpstream, db: &TestDb, prefix: &RedisPrefix) -> String {
    let mut text = "model_list:\n".to_owned();
    text.push_str(&deployment(mock, "cheap", "anthropic/claude-haiku-4-5", &[]));
    let _ = write!(
        text,
        "router_settings:\n  num_retries: 0\n  redis_host: 127.0.0.1\n  redis_port: 6379\n\
         general_settings:\n  master_key: {MASTER}\n  database_url: {}\n  redis_key_prefix: \"{}\"\n",
        db.url(),
        prefix.0,
    );
    text
}

/// A port nobody listens on now (the replicas and nginx bind it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One `switchyard serve` child on a fixed port, restartable on the same port.
struct Replica {
    port: u16,
    state_dir: PathBuf,
    child: Child,
    /// Each run's log (stdout and stderr), kept for a failure's message.
    logs: Vec<PathBuf>,
}

impl Replica {
    fn spawn(config: &Path, port: u16, state_dir: &Path) -> Self {
        std::fs::create_dir_all(state_dir).unwrap();
        let log = state_dir.join("run-0.log");
        let child = serve(config, port, state_dir, &log);
        Self { port, state_dir: state_dir.to_owned(), child, logs: vec![log] }
    }

    fn restart(&mut self, config: &Path) {
        let log = self.state_dir.join(format!("run-{}.log", self.logs.len()));
        self.child = serve(config, self.port, &self.state_dir, &log);
        self.logs.push(log);
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_ready(&self) {
        let http = fresh_connections();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = http.get(self.url("/health/readiness")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("replica on port {} never became ready\n{}", self.port, self.log());
    }

    /// Keys are loaded from the shared database; a replica knows a new one within a poll.
    async fn wait_key_known(&self, key: &str) {
        let http = fresh_connections();
        let known = ledger_support::eventually(Duration::from_secs(5), || async {
            let r = http.get(self.url("/v1/models")).bearer_auth(key).send().await;
            r.is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(known, "replica on port {} never saw the new key", self.port);
    }

    fn terminate(&self) {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Readiness answers 503 `draining` — which also shows the port still accepts.
    async fn saw_draining(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = String::new();
        while Instant::now() < deadline {
            match http.get(self.url("/health/readiness")).send().await {
                Ok(r) if r.status() == 503 => {
                    let body: Value = r.json().await.unwrap();
                    assert_eq!(body["status"], "draining", "{body}");
                    return;
                }
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => panic!(
                    "replica on port {} refused connections before readiness said it drains \
                     (last: {last}): {e}",
                    self.port
                ),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("replica on port {} never answered readiness 503 ({last})", self.port);
    }

    async fn wait_exit(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "replica exited with {status}\n{}", self.log());
                return;
            }
            assert!(Instant::now() < deadline, "replica did not exit\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        let mut out = String::new();
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            let _ = writeln!(out, "--- {}", log.display());
            for line in tail.into_iter().rev() {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }
}

fn serve(config: &Path, port: u16, state_dir: &Path, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("serve")
        .args(["--config", config.to_str().unwrap(), "--port", &port.to_string()])
        .args(["--state-dir", state_dir.to_str().unwrap(), "--drain-grace", "1", "--no-watch"])
        .env("HOME", "/nonexistent")
        .env_remove("SWITCHYARD_MASTER_KEY")
        .env_remove("REDIS_URL")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

/// The replicas and nginx; whatever is still running when the test ends is killed.
struct Fleet {
    replicas: Vec<Replica>,
    nginx: Option<Child>,
}

impl Fleet {
    fn logs(&self) -> String {
        self.replicas.iter().map(Replica::log).collect()
    }

    async fn stop(&mut self) {
        for r in &self.replicas {
            r.terminate();
        }
        for r in &mut self.replicas {
            r.wait_exit().await;
        }
        if let Some(mut nginx) = self.nginx.take() {
            let _ = Command::new("kill").args(["-QUIT", &nginx.id().to_string()]).status();
            let _ = tokio::task::spawn_blocking(move || nginx.wait()).await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for r in &mut self.replicas {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
        if let Some(nginx) = &mut self.nginx {
            let _ = nginx.kill();
            let _ = nginx.wait();
        }
    }
}

/// nginx in front of the replicas, as the README's "Running several replicas" advises.
fn nginx_conf(dir: &Path, listen: u16, replicas: &[u16]) -> String {
    let dir = dir.display();
    let servers: String = replicas
        .iter()
        // max_fails=0: a refused connection sends this request on, without marking the
        // replica down for everyone (all three could be marked during one rolling restart).
        .map(|port| format!("        server 127.0.0.1:{port} max_fails=0;\n"))
        .collect();
    format!(
        r#"daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    upstream switchyard {{
{servers}    }}

    server {{
        listen 127.0.0.1:{listen};
        location / {{
            proxy_pass http://switchyard;
            # One upstream connection per request: nothing idle for a draining replica to close.
            proxy_http_version 1.1;
            proxy_set_header Connection close;
            # Refused or reset before any answer: the replica never read the request.
            proxy_next_upstream error non_idempotent;
            proxy_connect_timeout 2s;
            # Streams go out as they come; long answers are not cut.
            proxy_buffering off;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
        }}
    }}
}}
"#
    )
}

async fn start_nginx(nginx: &Path, dir: &Path, listen: u16, replicas: &[u16]) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx_conf(dir, listen, replicas)).unwrap();
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let up = ledger_support::eventually(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", listen)).await.is_ok()
    })
    .await;
    let errors = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    assert!(up, "nginx did not start: {errors}");
    child
}

/// A client that opens a new connection for every request.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn generate_key(base: &str) -> String {
    let resp = fresh_connections()
        .post(format!("{base}/key/generate"))
        .bearer_auth(MASTER)
        .json(&json!({"key_alias": "rolling", "max_budget": BUDGET.parse::<f64>().unwrap()}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

async fn wait_for_more(served: &AtomicUsize, more: usize) {
    let target = served.load(Ordering::Relaxed) + more;
    let deadline = Instant::now() + Duration::from_secs(20);
    while served.load(Ordering::Relaxed) < target {
        assert!(Instant::now() < deadline, "traffic stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn row_count(pool: &sqlx::PgPool) -> usize {
    let n: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "LiteLLM_SpendLogs""#)
        .fetch_one(pool)
        .await
        .unwrap_or(0);
    usize::try_from(n).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 200 with the whole answer (a stream: every chunk and `[DONE]`, no error event).
    Served,
    /// LiteLLM's budget error for the key.
    BudgetRefused,
    Failed,
}

#[derive(Debug)]
struct Answer {
    id: String,
    outcome: Outcome,
    /// For a failure: what the client saw.
    detail: String,
}

impl Answer {
    fn served(&self) -> bool {
        self.outcome == Outcome::Served
    }
}

/// One chat completion through nginx on a fresh connection, with our own request id.
async fn send(base: &str, key: &str, id: &str, stream: bool) -> Answer {
    let body = json!({"model": "cheap", "max_tokens": 100, "stream": stream,
                      "messages": [{"role": "user", "content": "Say: WORKS"}]});
    let sent = fresh_connections()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .header("x-request-id", id)
        .json(&body)
        .send()
        .await;
    let failed = |detail: String| Answer { id: id.to_owned(), outcome: Outcome::Failed, detail };
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return failed(format!("{e}")),
    };
    let status = resp.status().as_u16();
    let echoed = resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    if echoed != id {
        return failed(format!("status {status}, x-request-id {echoed:?}"));
    }
    let text = match resp.text().await {
        Ok(t) => t,
        Err(e) => return failed(format!("status {status}, body cut: {e}")),
    };
    let outcome = match status {
        200 if stream && answered_stream(&text) => Outcome::Served,
        200 if !stream && answered_json(&text) => Outcome::Served,
        400 if serde_json::from_str::<Value>(&text)
            .is_ok_and(|v| v["error"]["type"] == "budget_exceeded") =>
        {
            Outcome::BudgetRefused
        }
        _ => return failed(format!("status {status}: {text}")),
    };
    Answer { id: id.to_owned(), outcome, detail: String::new() }
}

fn answered_json(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .is_ok_and(|v| v["choices"][0]["message"]["content"] == "WORKS")
}

fn answered_stream(text: &str) -> bool {
    let mut content = String::new();
    let mut done = false;
    for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else { return false };
        if !chunk["error"].is_null() {
            return false;
        }
        if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
            content.push_str(piece);
        }
    }
    done && content == "WORKS"
}

/// Replicas started together on a fresh database each create LiteLLM's tables: none of them
/// may fail for racing the others (PostgreSQL's `IF NOT EXISTS` alone does not prevent it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_on_a_fresh_database_all_load_their_keys() {
    use switchyard::keys::{Keys, Settings};
    for _ in 0..3 {
        let db = TestDb::create().await;
        let dir = tempfile::tempdir().unwrap();
        let starts = (0..8).map(|_| {
            let keys = Keys::open(&Settings {
                database_url: Some(switchyard::secret::Secret::new(db.url())),
                state_dir: dir.path().to_owned(),
            })
            .unwrap();
            async move {
                keys.start(switchyard::keys::POLL).await;
                keys.status()
            }
        });
        for status in futures_util::future::join_all(starts).await {
            assert_eq!(status.state, "ok", "{status:?}");
        }
    }
}
