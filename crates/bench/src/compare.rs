//! `--compare ledger|keys|cache|observability|shedding`: one feature on against off, in one run. The same release gateway
//! is started once per config (its own state directory), every variant is a gateway and the
//! key its requests carry, and rounds rotate between the floor and every variant, so a busy
//! machine slows all of them alike. The figure that matters is each variant's throughput
//! against the baseline of the same run ("off", "master").

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use sqlx::Connection as _;

use bench::load::{self, Outcome, Round};
use bench::procs::{self, Proc};
use bench::report::{self, Machine, Side};

/// One way of configuring the gateway: one gateway process each.
pub(crate) struct Setup {
    /// Also its directory's name under the work directory.
    pub name: &'static str,
    /// Appended to the config, whose last section is `general_settings:`.
    pub settings: String,
}

/// One side of a comparison, a row of its table: which gateway (an index into the started
/// ones) and the key its requests carry.
pub(crate) struct Variant {
    pub name: &'static str,
    pub gateway: usize,
    pub key: String,
    /// Sent with each request besides the key.
    pub headers: &'static [(&'static str, &'static str)],
}

/// A fresh PostgreSQL database for the "postgres" variant, dropped at the end.
pub(crate) struct Database {
    admin_url: String,
    pub name: String,
}

impl Database {
    pub async fn create(admin_url: &str) -> Result<Self, String> {
        let name = format!("switchyard_bench_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .map_err(|e| format!("cannot reach PostgreSQL at --database-url: {e}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        Ok(Self { admin_url: admin_url.to_owned(), name })
    }

    /// A connection to the server's admin database (not this one: what it runs is not
    /// counted in this database's statistics).
    pub async fn admin(&self) -> Result<sqlx::PgConnection, String> {
        sqlx::PgConnection::connect(&self.admin_url).await.map_err(|e| e.to_string())
    }

    /// A connection to this database.
    pub async fn connect(&self) -> Result<sqlx::PgConnection, String> {
        sqlx::PgConnection::connect(&self.url()).await.map_err(|e| e.to_string())
    }

    /// The admin URL with this database's name.
    pub fn url(&self) -> String {
        let base = self.admin_url.split('?').next().unwrap_or(&self.admin_url);
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        format!("{server}/{}", self.name)
    }

    pub async fn rows(&self) -> Result<i64, String> {
        let mut conn = sqlx::PgConnection::connect(&self.url()).await.map_err(|e| e.to_string())?;
        sqlx::query_scalar("SELECT count(*) FROM \"LiteLLM_SpendLogs\"")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn drop_it(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .execute(&mut conn)
                .await;
        }
    }
}

async fn sqlite_rows(dir: &Path) -> Result<i64, String> {
    let path = dir.join("ledger.sqlite3");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query_scalar("SELECT count(*) FROM \"LiteLLM_SpendLogs\"")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| e.to_string())
}

pub struct Settings<'a> {
    pub bins: &'a Path,
    pub work: &'a Path,
    pub database_url: &'a str,
    pub redis_url: &'a str,
    pub reps: usize,
    pub seconds: f64,
    pub concurrency: &'a [usize],
    pub modes: &'a [bool],
}

/// A comparison's result: the Markdown report, its JSON, and why the run does not count
/// (a failed request, Redis left mid-run), if it does not.
pub struct Compared {
    pub markdown: String,
    pub json: Value,
    pub failure: Option<String>,
}

/// What one variant measured at one concurrency and mode.
pub(crate) struct Measured {
    pub variant: &'static str,
    pub streaming: bool,
    pub concurrency: usize,
    pub gateway: Side,
    pub floor: Side,
    /// The gateways' CPU per request (every replica's, when there are several).
    pub cpu_us: f64,
    /// The Redis server's CPU per request in this variant's rounds (`INFO cpu`), when the
    /// comparison involves Redis.
    pub redis_cpu_us: Option<f64>,
    /// The front's (nginx's master and workers) CPU per request, when there is one.
    pub front_cpu_us: Option<f64>,
    /// The gateways' peak RSS, summed.
    pub peak_rss: u64,
}

/// Where a variant's requests go and whose CPU and memory they cost: one gateway, or a
/// front (nginx) and the gateways behind it.
pub(crate) struct Endpoint {
    pub addr: SocketAddr,
    pub gateways: Vec<u32>,
    /// The front's processes; empty when the requests go straight to a gateway.
    pub front: Vec<u32>,
    /// The endpoint speaks TLS (`--ssl-certfile`).
    pub tls: Option<Arc<tokio_rustls::TlsConnector>>,
}

impl Endpoint {
    pub fn direct(gateway: &Proc) -> Self {
        Self { addr: gateway.addr, gateways: vec![gateway.pid()], front: Vec::new(), tls: None }
    }

    fn cpu_seconds(pids: &[u32]) -> Result<f64, String> {
        pids.iter().map(|&pid| procs::cpu_seconds(pid)).sum()
    }
}

/// Every started gateway as an endpoint of its own, in order.
fn direct(gateways: &[(Proc, std::path::PathBuf)]) -> Vec<Endpoint> {
    gateways.iter().map(|(g, _)| Endpoint::direct(g)).collect()
}

/// Runs the ledger comparison.
pub async fn ledger(s: &Settings<'_>) -> Result<Compared, String> {
    let machine = Machine::read();
    let db = Database::create(s.database_url).await?;
    let result = run_ledger(s, &machine, &db).await;
    db.drop_it().await;
    result
}

async fn run_ledger(
    s: &Settings<'_>,
    machine: &Machine,
    db: &Database,
) -> Result<Compared, String> {
    let setups = [
        Setup { name: "off", settings: "  disable_spend_logs: true\n".into() },
        Setup { name: "postgres", settings: format!("  database_url: {}\n", db.url()) },
        Setup { name: "sqlite", settings: String::new() },
    ];
    let mock = procs::start_mock(s.bins)?;
    let gateways = start_all(s, &mock, &setups).await?;
    let variants = master_variants(&setups);
    let results = rotate(s, "ledger", &mock, &direct(&gateways), &variants, None).await?;
    // Let the writers finish their last batches, then stop the gateways (a graceful stop
    // flushes) before counting rows.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let dirs: Vec<_> = gateways
        .into_iter()
        .map(|(g, dir)| {
            drop(g);
            dir
        })
        .collect();
    drop(mock);
    let pg_rows = db.rows().await.ok();
    let sqlite_rows = sqlite_rows(&dirs[2]).await.ok();
    let title = "Ledger on against off.";
    let (mut markdown, json) = render(s, machine, title, ("ledger", "off"), &results);
    let count = |n: Option<i64>| n.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
    markdown.push_str(&format!(
        "\nRows written (warm-ups included): PostgreSQL {}, SQLite {}.\n",
        count(pg_rows),
        count(sqlite_rows)
    ));
    let json = json!({"compare": "ledger", "rows": json, "postgres_rows": pg_rows, "sqlite_rows": sqlite_rows});
    Ok(Compared { markdown, failure: failed_requests(&results), json })
}

/// `--compare cache`: the response cache off; on, with every request a miss (`Cache-Control:
/// no-cache`: the key is computed, the upstream answers, the answer is stored); on, with every
/// request a hit (the same question each time: no upstream call). The ledger is off in all
/// three, so only the cache differs.
pub async fn cache(s: &Settings<'_>) -> Result<Compared, String> {
    let machine = Machine::read();
    let off = "  disable_spend_logs: true\n";
    let on = format!("{off}litellm_settings:\n  cache: true\n  cache_params:\n    type: local\n");
    let setups = [Setup { name: "off", settings: off.into() }, Setup { name: "on", settings: on }];
    let mock = procs::start_mock(s.bins)?;
    let gateways = start_all(s, &mock, &setups).await?;
    let key = || crate::MASTER_KEY.to_owned();
    let variants = [
        Variant { name: "off", gateway: 0, key: key(), headers: &[] },
        Variant { name: "miss", gateway: 1, key: key(), headers: &[("cache-control", "no-cache")] },
        Variant { name: "hit", gateway: 1, key: key(), headers: &[] },
    ];
    let results = rotate(s, "cache", &mock, &direct(&gateways), &variants, None).await?;
    drop(gateways);
    drop(mock);
    let title = "Response cache on against off.";
    let (markdown, json) = render(s, &machine, title, ("cache", "off"), &results);
    let json = json!({"compare": "cache", "rows": json});
    Ok(Compared { markdown, failure: failed_requests(&results), json })
}

/// `--compare shedding`: no cap on requests in flight, against a
/// `global_max_parallel_requests` above every row's clients, so every request takes and
/// frees a slot and none waits: the cost of the gate itself. The ledger is off in both.
pub async fn shedding(s: &Settings<'_>) -> Result<Compared, String> {
    let machine = Machine::read();
    let mock = procs::start_mock(s.bins)?;
    let base = "  disable_spend_logs: true\n";
    let setups = [
        Setup { name: "off", settings: base.into() },
        Setup { name: "on", settings: format!("{base}  global_max_parallel_requests: 100000\n") },
    ];
    let gateways = start_all(s, &mock, &setups).await?;
    let variants = master_variants(&setups);
    let results = rotate(s, "shedding", &mock, &direct(&gateways), &variants, None).await?;
    drop(gateways);
    drop(mock);
    let title = "The global cap on requests in flight on (never reached) against off.";
    let (markdown, json) = render(s, &machine, title, ("shedding", "off"), &results);
    let json = json!({"compare": "shedding", "rows": json});
    Ok(Compared { markdown, failure: failed_requests(&results), json })
}

/// `--compare listener`: TLS on the listener (`--ssl-certfile`/`--ssl-keyfile`, a self-signed
/// certificate for `localhost`) against plain HTTP. Each client keeps its connection, so this
/// is the cost of encrypting requests and answers, not of handshakes. The keep-alive watchdog
/// (`keepalive_timeout`) has no off switch: it is on in both.
pub async fn listener(s: &Settings<'_>) -> Result<Compared, String> {
    let machine = Machine::read();
    let mock = procs::start_mock(s.bins)?;
    let base = "  disable_spend_logs: true\n";
    let dir = s.work.join("tls");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .map_err(|e| format!("a certificate: {e}"))?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = Arc::new(tokio_rustls::TlsConnector::from(Arc::new(client)));

    let plain = start(s, &mock, &Setup { name: "plain", settings: base.into() })?;
    let config = dir.join("gateway.yaml");
    std::fs::write(&config, crate::config(&mock, 1) + base).map_err(|e| e.to_string())?;
    let tls = procs::start_gateway_tls(
        s.bins,
        &config,
        &dir.join("gateway.log"),
        &dir,
        (&cert_path, &key_path),
    )?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut endpoints = vec![Endpoint::direct(&plain.0), Endpoint::direct(&tls)];
    endpoints[1].tls = Some(connector);
    let variants: Vec<Variant> = ["plain", "tls"]
        .iter()
        .enumerate()
        .map(|(i, &name)| Variant {
            name,
            gateway: i,
            key: crate::MASTER_KEY.to_owned(),
            headers: &[],
        })
        .collect();
    let results = rotate(s, "listener", &mock, &endpoints, &variants, None).await?;
    drop(tls);
    drop(plain);
    drop(mock);
    let title = "TLS on the listener against plain HTTP (kept-alive connections).";
    let (markdown, json) = render(s, &machine, title, ("listener", "plain"), &results);
    let json = json!({"compare": "listener", "rows": json});
    Ok(Compared { markdown, failure: failed_requests(&results), json })
}

/// `--compare observability`: metrics off (`disable_metrics`); metrics on (the default);
/// metrics and OpenTelemetry traces on, every request sampled and exported over OTLP/HTTP to
/// a collector that keeps nothing (the mock's `/v1/traces`). The ledger is off in all three.
pub async fn observability(s: &Settings<'_>) -> Result<Compared, String> {
    let machine = Machine::read();
    let mock = procs::start_mock(s.bins)?;
    let base = "  disable_spend_logs: true\n";
    let traced = format!(
        "{base}litellm_settings:\n  callbacks: [\"otel\"]\nenvironment_variables:\n  \
         OTEL_EXPORTER_OTLP_ENDPOINT: http://{}\n",
        mock.addr
    );
    let setups = [
        Setup { name: "off", settings: format!("{base}  disable_metrics: true\n") },
        Setup { name: "metrics", settings: base.into() },
        Setup { name: "metrics + traces", settings: traced },
    ];
    let gateways = start_all(s, &mock, &setups).await?;
    let variants = master_variants(&setups);
    let results = rotate(s, "observability", &mock, &direct(&gateways), &variants, None).await?;
    // What the exporter did, from the traced gateway's readiness.
    let traces = traces_status(&gateways[2].0).await;
    drop(gateways);
    drop(mock);
    let title = "Metrics and traces on against off.";
    let (mut markdown, json) = render(s, &machine, title, ("observability", "off"), &results);
    markdown.push_str(&format!(
        "\nThe traced gateway's exporter at the end (`/health/readiness` `traces`): {}.\n",
        traces.as_ref().map_or_else(|e| format!("unknown ({e})"), Value::to_string)
    ));
    let json = json!({"compare": "observability", "rows": json, "traces": traces.ok()});
    Ok(Compared { markdown, failure: failed_requests(&results), json })
}

async fn traces_status(gateway: &Proc) -> Result<Value, String> {
    let (status, body) =
        load::call(gateway.addr, Method::GET, "/health/readiness", None, Bytes::new()).await?;
    if status != 200 {
        return Err(format!("/health/readiness answered {status}"));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    Ok(v["traces"].clone())
}

/// One gateway per setup, in order, given a moment to settle.
pub(crate) async fn start_all(
    s: &Settings<'_>,
    mock: &Proc,
    setups: &[Setup],
) -> Result<Vec<(Proc, std::path::PathBuf)>, String> {
    let mut gateways = Vec::new();
    for v in setups {
        gateways.push(start(s, mock, v)?);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(gateways)
}

/// A variant per setup, each on its own gateway with the master key.
fn master_variants(setups: &[Setup]) -> Vec<Variant> {
    setups
        .iter()
        .enumerate()
        .map(|(i, v)| Variant {
            name: v.name,
            gateway: i,
            key: crate::MASTER_KEY.to_owned(),
            headers: &[],
        })
        .collect()
}

/// Starts the gateway of `v` in its own directory under the work directory.
fn start(s: &Settings<'_>, mock: &Proc, v: &Setup) -> Result<(Proc, std::path::PathBuf), String> {
    let dir = s.work.join(v.name);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = dir.join("gateway.yaml");
    let yaml = crate::config(mock, 1) + &v.settings;
    std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
    let gateway = procs::start_gateway_in(s.bins, &config, &dir.join("gateway.log"), Some(&dir))?;
    Ok((gateway, dir))
}

/// This run's counters in the shared Redis: a key prefix no other run uses, deleted at the
/// end (only its own keys: never a flush).
pub(crate) struct RedisPrefix {
    client: redis::Client,
    pub prefix: String,
}

impl RedisPrefix {
    pub async fn claim(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("--redis-url: {e}"))?;
        let this = Self { client, prefix: format!("switchyard-bench-{}:", std::process::id()) };
        let left =
            this.keys().await.map_err(|e| format!("cannot reach Redis at --redis-url: {e}"))?;
        if !left.is_empty() {
            return Err(format!(
                "Redis already holds {} key(s) under {}; delete them first",
                left.len(),
                this.prefix
            ));
        }
        Ok(this)
    }

    pub async fn keys(&self) -> Result<Vec<String>, String> {
        let mut conn =
            self.client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        let pattern = format!("{}*", self.prefix);
        let mut cursor = 0u64;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// CPU seconds (user + system) the Redis server has used: every client's work, this
    /// run's among them.
    pub async fn cpu_seconds(&self) -> Result<f64, String> {
        let info = self.info("cpu").await?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Ok(field("used_cpu_user") + field("used_cpu_sys"))
    }

    /// One section of the server's `INFO`.
    pub async fn info(&self, section: &str) -> Result<String, String> {
        let mut conn =
            self.client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        redis::cmd("INFO").arg(section).query_async(&mut conn).await.map_err(|e| e.to_string())
    }

    /// Deletes this run's keys; how many there were.
    pub async fn delete(&self) -> Result<usize, String> {
        let keys = self.keys().await?;
        let mut conn =
            self.client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        for chunk in keys.chunks(500) {
            let _: i64 = redis::cmd("DEL")
                .arg(chunk)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(keys.len())
    }
}

/// Runs the virtual-key comparison: one gateway with Redis configured, called with the master
/// key and with a virtual key that has a budget and an rpm limit (each admission and each
/// settlement then one Redis script); and, to tell the key's own cost from Redis's, both on a
/// gateway that counts in process.
pub async fn keys(s: &Settings<'_>) -> Result<Compared, String> {
    let machine = Machine::read();
    let redis = RedisPrefix::claim(s.redis_url).await?;
    let result = run_keys(s, &machine, &redis).await;
    match redis.delete().await {
        Ok(n) => eprintln!("bench: deleted {n} Redis key(s) under {}", redis.prefix),
        Err(e) => eprintln!("bench: could not delete the Redis keys under {}: {e}", redis.prefix),
    }
    result
}

async fn run_keys(
    s: &Settings<'_>,
    machine: &Machine,
    redis: &RedisPrefix,
) -> Result<Compared, String> {
    let setups = [
        Setup {
            name: "redis",
            settings: format!(
                "  redis_key_prefix: \"{}\"\nrouter_settings:\n  redis_url: \"{}\"\n",
                redis.prefix, s.redis_url
            ),
        },
        Setup { name: "memory", settings: String::new() },
    ];
    let mock = procs::start_mock(s.bins)?;
    let gateways = start_all(s, &mock, &setups).await?;
    let mut keys = Vec::new();
    for (gateway, _) in &gateways {
        keys.push(virtual_key(gateway).await?);
    }
    let variants = [
        Variant { name: "master", gateway: 0, key: crate::MASTER_KEY.to_owned(), headers: &[] },
        Variant { name: "key", gateway: 0, key: keys[0].clone(), headers: &[] },
        Variant {
            name: "master, no Redis",
            gateway: 1,
            key: crate::MASTER_KEY.to_owned(),
            headers: &[],
        },
        Variant { name: "key, no Redis", gateway: 1, key: keys[1].clone(), headers: &[] },
    ];
    let results = rotate(s, "keys", &mock, &direct(&gateways), &variants, Some(redis)).await?;
    // The counters went to Redis, and Redis answered throughout: the gateway falls back to
    // counting in process (and logs LIM-03) when it does not.
    let limits = limits_health(&gateways[0].0).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let counters = redis.keys().await.map(|k| k.len()).unwrap_or(0);
    drop(gateways);
    drop(mock);
    let log = std::fs::read_to_string(s.work.join("redis").join("gateway.log")).unwrap_or_default();
    let mut failure = failed_requests(&results);
    if limits.get("backend").and_then(Value::as_str) != Some("redis")
        || limits.get("state").and_then(Value::as_str) != Some("ok")
        || log.contains("LIM-03")
    {
        failure.get_or_insert(format!(
            "the gateway did not count in Redis throughout (its /health limits: {limits}; LIM-03 in \
             its log: {})",
            log.contains("LIM-03")
        ));
    }
    if counters == 0 {
        failure.get_or_insert(format!("no counter was written under {} in Redis", redis.prefix));
    }
    let title = "A virtual key with a budget (1,000,000 USD a day) and an rpm limit \
                 (100,000,000) against the master key, on one gateway with Redis; \"no Redis\": \
                 the same on a gateway that counts in process.";
    let (mut markdown, json) = render(s, machine, title, ("caller", "master"), &results);
    // Where Redis is, without the URL's credentials.
    let place = s.redis_url.split_once("://").map_or(s.redis_url, |(_, rest)| rest);
    let place = place.rsplit_once('@').map_or(place, |(_, host)| host);
    markdown.push_str(&format!(
        "\nRedis at {place}, key prefix `{}`: {counters} counter(s) at the end, deleted after the \
         run; the Redis CPU column is the server's own (`INFO cpu`), every client's. /health \
         limits: {limits}.\n",
        redis.prefix
    ));
    let json =
        json!({"compare": "keys", "rows": json, "redis_counters": counters, "limits": limits});
    Ok(Compared { markdown, json, failure })
}

/// `POST /key/generate` with a budget and an rpm limit nothing in the run reaches: the key.
pub(crate) async fn virtual_key(gateway: &Proc) -> Result<String, String> {
    let body = json!({
        "key_alias": "bench",
        "max_budget": 1_000_000,
        "budget_duration": "1d",
        "rpm_limit": 100_000_000,
    });
    let (status, answer) = load::call(
        gateway.addr,
        Method::POST,
        "/key/generate",
        Some(crate::MASTER_KEY),
        Bytes::from(body.to_string()),
    )
    .await?;
    let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    match answer.get("key").and_then(Value::as_str) {
        Some(key) if status == 200 => Ok(key.to_owned()),
        _ => Err(format!("POST /key/generate answered {status}: {answer}")),
    }
}

/// `/health`'s `limits` object.
pub(crate) async fn limits_health(gateway: &Proc) -> Result<Value, String> {
    let (status, body) =
        load::call(gateway.addr, Method::GET, "/health", Some(crate::MASTER_KEY), Bytes::new())
            .await?;
    let health: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match health.get("limits") {
        Some(limits) if status == 200 => Ok(limits.clone()),
        _ => Err(format!("GET /health answered {status} without `limits`: {health}")),
    }
}

/// Why the run does not count, when a request failed.
pub(crate) fn failed_requests(results: &[Measured]) -> Option<String> {
    results.iter().find(|r| r.gateway.errors > 0 || r.floor.errors > 0).map(|r| {
        let side = if r.gateway.errors > 0 { &r.gateway } else { &r.floor };
        format!(
            "{} request(s) failed ({}, {} clients, {}): {}",
            side.errors,
            r.variant,
            r.concurrency,
            if r.streaming { "stream" } else { "json" },
            side.first_error.as_deref().unwrap_or("no detail")
        )
    })
}

/// Rounds rotating between the floor and every contender, at each mode and concurrency.
pub(crate) async fn rotate(
    s: &Settings<'_>,
    label: &str,
    mock: &Proc,
    endpoints: &[Endpoint],
    variants: &[Variant],
    redis: Option<&RedisPrefix>,
) -> Result<Vec<Measured>, String> {
    let round = Round {
        concurrency: 0,
        warmup: Duration::from_secs_f64((s.seconds / 5.0).clamp(0.2, 1.0)),
        duration: Duration::from_secs_f64(s.seconds),
    };
    let measured_share =
        round.duration.as_secs_f64() / (round.duration + round.warmup).as_secs_f64();
    let floor_endpoint = Endpoint::direct(mock);
    let mut results = Vec::new();
    for &streaming in s.modes {
        for &concurrency in s.concurrency {
            let round = Round { concurrency, ..round };
            // Side 0 is the floor, side i + 1 the i-th contender.
            let sides = variants.len() + 1;
            let mut outcomes: Vec<Option<Outcome>> = (0..sides).map(|_| None).collect();
            let mut cpu = vec![0.0; sides];
            let mut front_cpu = vec![0.0; sides];
            let mut redis_cpu = vec![0.0; sides];
            let mut peak = vec![0u64; sides];
            for rep in 0..s.reps {
                for k in 0..sides {
                    let side = (k + rep) % sides;
                    let (target, endpoint, name) = if side == 0 {
                        let floor = crate::targets(mock, endpoints[0].addr, streaming)?.0;
                        (floor, &floor_endpoint, "floor")
                    } else {
                        let c = &variants[side - 1];
                        let endpoint = &endpoints[c.gateway];
                        let mut target = crate::targets(mock, endpoint.addr, streaming)?.1;
                        target.tls.clone_from(&endpoint.tls);
                        target.headers =
                            vec![crate::header("authorization", &format!("Bearer {}", c.key))?];
                        for (name, value) in c.headers {
                            target.headers.push(crate::header(name, value)?);
                        }
                        (target, endpoint, c.name)
                    };
                    eprintln!("bench: {label} {name}, {concurrency} clients, round {}", rep + 1);
                    for &pid in &endpoint.gateways {
                        procs::reset_peak(pid).ok();
                    }
                    let before = Endpoint::cpu_seconds(&endpoint.gateways)?;
                    let front_before = Endpoint::cpu_seconds(&endpoint.front)?;
                    let redis_before = match redis {
                        Some(r) => r.cpu_seconds().await?,
                        None => 0.0,
                    };
                    let o = load::run(Arc::new(target), round).await;
                    cpu[side] +=
                        (Endpoint::cpu_seconds(&endpoint.gateways)? - before) * measured_share;
                    front_cpu[side] +=
                        (Endpoint::cpu_seconds(&endpoint.front)? - front_before) * measured_share;
                    if let Some(r) = redis {
                        redis_cpu[side] += (r.cpu_seconds().await? - redis_before) * measured_share;
                    }
                    let mut peaks = 0;
                    for &pid in &endpoint.gateways {
                        peaks += procs::memory(pid)?.peak;
                    }
                    peak[side] = peak[side].max(peaks);
                    match &mut outcomes[side] {
                        None => outcomes[side] = Some(o),
                        Some(total) => total.merge(&o),
                    }
                }
            }
            let outcomes: Vec<Outcome> =
                outcomes.into_iter().map(|o| o.unwrap_or_else(Outcome::empty)).collect();
            let floor = Side::new(&outcomes[0], streaming);
            for (i, c) in variants.iter().enumerate() {
                let o = &outcomes[i + 1];
                let fronted = !endpoints[c.gateway].front.is_empty();
                results.push(Measured {
                    variant: c.name,
                    streaming,
                    concurrency,
                    gateway: Side::new(o, streaming),
                    floor: floor.clone(),
                    cpu_us: per_request_us(cpu[i + 1], o.requests),
                    redis_cpu_us: redis.map(|_| per_request_us(redis_cpu[i + 1], o.requests)),
                    front_cpu_us: fronted.then(|| per_request_us(front_cpu[i + 1], o.requests)),
                    peak_rss: peak[i + 1],
                });
            }
        }
    }
    Ok(results)
}

pub(crate) fn per_request_us(seconds: f64, requests: u64) -> f64 {
    if requests == 0 { 0.0 } else { seconds * 1e6 / requests as f64 }
}

/// The table and its JSON rows; `(column, baseline)` names the variant column and the
/// variant every other is divided by.
pub(crate) fn render(
    s: &Settings<'_>,
    machine: &Machine,
    title: &str,
    (column, baseline): (&str, &str),
    results: &[Measured],
) -> (String, Vec<Value>) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{title} Machine: {} cores ({}), {} RAM; load average {} before, {} after. \
         {} round(s) of {:.1} s per side, floor and variants rotating.\n",
        machine.cores,
        machine.cpu,
        machine.memory,
        machine.load_before,
        report::loadavg(),
        s.reps,
        s.seconds
    );
    let redis = results.iter().any(|r| r.redis_cpu_us.is_some());
    let front = results.iter().any(|r| r.front_cpu_us.is_some());
    let _ = writeln!(
        out,
        "| mode | clients | {column} | gateway req/s | vs {baseline} | gateway / floor | p50 / p99 ms \
         | gateway CPU µs/req |{}{} errors | peak RSS |\n|---|--:|---|--:|--:|--:|--:|--:|{}{}--:|--:|",
        if front { " nginx CPU µs/req |" } else { "" },
        if redis { " Redis CPU µs/req |" } else { "" },
        if front { "--:|" } else { "" },
        if redis { "--:|" } else { "" },
    );
    let mut json_rows = Vec::new();
    for r in results {
        let base = results
            .iter()
            .find(|o| {
                o.variant == baseline
                    && o.streaming == r.streaming
                    && o.concurrency == r.concurrency
            })
            .map_or(0.0, |o| o.gateway.rps);
        let vs_base = if base > 0.0 { r.gateway.rps / base } else { 0.0 };
        let to_floor = if r.floor.rps > 0.0 { r.gateway.rps / r.floor.rps } else { 0.0 };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.3} | {:.3} | {:.3} / {:.3} | {:.1} |{}{} {} | {:.1} MB |",
            if r.streaming { "stream" } else { "json" },
            r.concurrency,
            r.variant,
            r.gateway.rps,
            vs_base,
            to_floor,
            r.gateway.p50,
            r.gateway.p99,
            r.cpu_us,
            if front {
                r.front_cpu_us.map_or_else(|| " — |".to_owned(), |us| format!(" {us:.1} |"))
            } else {
                String::new()
            },
            r.redis_cpu_us.map_or_else(String::new, |us| format!(" {us:.1} |")),
            r.gateway.errors,
            r.peak_rss as f64 / 1_048_576.0
        );
        json_rows.push(json!({
            "mode": if r.streaming { "stream" } else { "json" },
            "concurrency": r.concurrency,
            column: r.variant,
            "gateway_rps": r.gateway.rps,
            "floor_rps": r.floor.rps,
            format!("vs_{baseline}"): vs_base,
            "gateway_to_floor": to_floor,
            "cpu_us_per_request": r.cpu_us,
            "redis_cpu_us_per_request": r.redis_cpu_us,
            "nginx_cpu_us_per_request": r.front_cpu_us,
            "p50_ms": r.gateway.p50,
            "p99_ms": r.gateway.p99,
            "errors": r.gateway.errors,
            "peak_rss_bytes": r.peak_rss,
        }));
    }
    (out, json_rows)
}
