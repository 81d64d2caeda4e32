//! `--compare capacity`: the measured figures behind docs/capacity.md, each printed with how
//! it was measured.
//!
//! - requests a second per core: requests ÷ the gateway's own CPU seconds (`/proc/PID/stat`),
//!   for the gateway alone and in the team setup, JSON and streamed;
//! - memory per idle kept-alive connection and per in-flight stream: RSS deltas;
//! - Redis commands per request, per feature: `INFO commandstats` deltas over an exact number
//!   of requests, less the server's background rate measured just before;
//! - PostgreSQL transactions and rows per request: `pg_stat_database` deltas of the run's own
//!   database, less the background (the key poller) measured just before;
//! - the ledger writer's rows a second: the switchyard library's `Ledger` driven directly
//!   against the same database, with its own batching; the row's size and WAL per row.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use bench::load::{self, Target};
use bench::procs::{self, Proc};
use bench::report::{self, Machine};

use crate::compare::{
    Compared, Database, Endpoint, Measured, RedisPrefix, Settings, Setup, Variant, failed_requests,
    rotate, start_all, virtual_key,
};
use crate::replicas::team_settings;

/// Requests per counted run (Redis commands, PostgreSQL transactions).
const COUNTED: u64 = 2_000;
/// Rows the ledger writer is given.
const LEDGER_ROWS: u64 = 100_000;
/// Idle connections and in-flight streams held open, in two steps each.
const CONNECTIONS: [usize; 2] = [1_000, 5_000];
const STREAMS: [usize; 2] = [200, 1_000];

pub async fn capacity(s: &Settings<'_>) -> Result<Compared, String> {
    let machine = Machine::read();
    let db = Database::create(s.database_url).await?;
    let redis = match RedisPrefix::claim(s.redis_url).await {
        Ok(redis) => redis,
        Err(e) => {
            db.drop_it().await;
            return Err(e);
        }
    };
    let result = run(s, &machine, &db, &redis).await;
    match redis.delete().await {
        Ok(n) => eprintln!("bench: deleted {n} Redis key(s) under {}", redis.prefix),
        Err(e) => eprintln!("bench: could not delete the Redis keys under {}: {e}", redis.prefix),
    }
    db.drop_it().await;
    result
}

async fn run(
    s: &Settings<'_>,
    machine: &Machine,
    db: &Database,
    redis: &RedisPrefix,
) -> Result<Compared, String> {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Capacity figures, {}. Machine: {} cores ({}), {} RAM; load average {} before. The load \
         generator, the mock upstream, the gateways, PostgreSQL and Redis share these cores.\n",
        today(),
        machine.cores,
        machine.cpu,
        machine.memory,
        machine.load_before
    );
    let mut json = serde_json::Map::new();
    let mut failure = None;

    let mock = procs::start_mock(s.bins)?;
    let cache = format!(
        "  disable_spend_logs: true\nlitellm_settings:\n  cache: true\n  cache_params:\n    type: \
         redis\n    url: \"{}\"\n    namespace: \"{}cache\"\n",
        s.redis_url, redis.prefix
    );
    let setups = [
        Setup { name: "alone", settings: "  disable_spend_logs: true\n".into() },
        Setup { name: "team", settings: team_settings(db, redis, s.redis_url) },
        Setup { name: "cache", settings: cache },
    ];
    let mut gateways = start_all(s, &mock, &setups).await?;
    let key = virtual_key(&gateways[1].0).await?;

    // 1. Requests a second per core.
    let endpoints: Vec<Endpoint> = gateways.iter().map(|(g, _)| Endpoint::direct(g)).collect();
    let variants = [
        Variant { name: "alone", gateway: 0, key: crate::MASTER_KEY.to_owned(), headers: &[] },
        Variant { name: "team", gateway: 1, key: key.clone(), headers: &[] },
    ];
    let results = rotate(s, "capacity", &mock, &endpoints, &variants, Some(redis)).await?;
    failure = failure.or_else(|| failed_requests(&results));
    per_core(&mut md, &mut json, s, &results);

    // 2. Redis commands per request.
    let mut redis_rows = Vec::new();
    let gw = |i: usize| gateways[i].0.addr;
    let cases: [(&str, usize, &str, bool, Body); 5] = [
        ("master key, ledger off (control: expect 0)", 0, crate::MASTER_KEY, false, Body::Same),
        ("virtual key: rpm limit + budget (JSON)", 1, &key, false, Body::Same),
        ("virtual key: rpm limit + budget (stream)", 1, &key, true, Body::Same),
        ("response cache in Redis, miss", 2, crate::MASTER_KEY, false, Body::Unique),
        ("response cache in Redis, hit", 2, crate::MASTER_KEY, false, Body::Same),
    ];
    for (name, i, bearer, streaming, body) in cases {
        let target = chat_target(&mock, gw(i), bearer, streaming)?;
        if name.ends_with("hit") {
            // The one miss that stores the answer every counted request then hits.
            let o = load::exactly(Arc::clone(&target), 1, 1, body.maker(&target)).await;
            if o.errors > 0 {
                return Err(format!("priming the cache failed: {:?}", o.first_error));
            }
        }
        eprintln!("bench: capacity Redis commands, {name}");
        let counted = redis_commands(redis, &target, body).await?;
        if counted.errors > 0 {
            failure.get_or_insert(format!("{name}: {} request(s) failed", counted.errors));
        }
        redis_rows.push((name, counted));
    }
    redis_table(&mut md, &mut json, &redis_rows);

    // 3. PostgreSQL transactions per request, then the gateway stops (its last batch
    // flushed) so the writer below has the database alone.
    eprintln!("bench: capacity PostgreSQL transactions per request");
    let (team, _) = gateways.remove(1);
    let target = chat_target(&mock, team.addr, &key, false)?;
    let pg = pg_per_request(db, team, target).await?;
    if pg.errors > 0 {
        failure
            .get_or_insert(format!("{} request(s) failed while counting transactions", pg.errors));
    }
    pg_table(&mut md, &mut json, &pg);

    // 4. The ledger writer's rows a second.
    eprintln!("bench: capacity ledger writer, {LEDGER_ROWS} rows");
    let ledger = ledger_writer(s, db, &key).await?;
    if ledger.spooled > 0 {
        failure.get_or_insert(format!(
            "{} ledger row(s) went to the spool: the writer was not measured alone",
            ledger.spooled
        ));
    }
    ledger_table(&mut md, &mut json, &ledger);

    // 5. Memory per idle connection, on the gateway alone.
    eprintln!("bench: capacity memory per connection");
    let alone = &gateways[0].0;
    let per_conn =
        memory_per_connection(alone, chat_target(&mock, alone.addr, crate::MASTER_KEY, false)?)
            .await?;
    drop(gateways);
    drop(mock);

    // 6. Memory per in-flight stream: a mock that sends one event a second.
    eprintln!("bench: capacity memory per stream");
    let per_stream = memory_per_stream(s).await?;
    memory_table(&mut md, &mut json, &per_conn, &per_stream);

    let _ = writeln!(md, "\nLoad average after: {}.", report::loadavg());
    json.insert("compare".into(), "capacity".into());
    json.insert("date".into(), today().into());
    Ok(Compared { markdown: md, json: Value::Object(json), failure })
}

/// Today's date (UTC), for the report.
fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// The OpenAI chat request the benchmark sends, to `addr`, with `bearer`.
fn chat_target(
    mock: &Proc,
    addr: std::net::SocketAddr,
    bearer: &str,
    streaming: bool,
) -> Result<Arc<Target>, String> {
    let mut target = crate::targets(mock, addr, streaming)?.1;
    target.headers = vec![crate::header("authorization", &format!("Bearer {bearer}"))?];
    Ok(Arc::new(target))
}

/// Whether every counted request asks the same question (a cache hit after the first) or
/// each its own (every one a cache miss).
#[derive(Clone, Copy)]
enum Body {
    Same,
    Unique,
}

impl Body {
    fn maker(self, target: &Target) -> Arc<dyn Fn(u64) -> Bytes + Send + Sync> {
        let same = target.body.clone();
        let streaming = target.streaming;
        let run = std::process::id();
        match self {
            Body::Same => Arc::new(move |_| same.clone()),
            Body::Unique => Arc::new(move |i| {
                let stream = if streaming { r#","stream":true"# } else { "" };
                Bytes::from(format!(
                    r#"{{"model":"cheap","messages":[{{"role":"user","content":"Say: WORKS {run}-{i}"}}],"max_tokens":10{stream}}}"#
                ))
            }),
        }
    }
}

fn per_core(
    md: &mut String,
    json: &mut serde_json::Map<String, Value>,
    s: &Settings<'_>,
    results: &[Measured],
) {
    let _ = writeln!(
        md,
        "## Requests a second per core\n\nMethod: closed-loop rounds ({} of {:.1} s per side, \
         rotating with the floor), each gateway's CPU seconds (utime + stime from \
         `/proc/PID/stat`) over its rounds; per core = requests ÷ CPU seconds = 10⁶ ÷ CPU \
         µs per request. \"alone\": master key, ledger off, nothing shared. \"team\": a virtual \
         key with an rpm limit and a budget counted in Redis, the ledger and keys on \
         PostgreSQL. Redis per core likewise from the server's `INFO cpu` (every client's \
         work: an upper bound).\n\n\
         | mode | clients | setup | req/s (wall) | gateway CPU µs/req | req/s per gateway core | \
         Redis CPU µs/req | req/s per Redis core | p50 / p99 ms |\n|---|--:|---|--:|--:|--:|--:|--:|--:|",
        s.reps, s.seconds
    );
    let mut rows = Vec::new();
    for r in results {
        let per = |us: f64| if us > 0.0 { 1e6 / us } else { 0.0 };
        let redis_us = r.redis_cpu_us.unwrap_or(0.0);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {:.1} | {:.0} | {:.1} | {} | {:.2} / {:.2} |",
            if r.streaming { "stream" } else { "json" },
            r.concurrency,
            r.variant,
            r.gateway.rps,
            r.cpu_us,
            per(r.cpu_us),
            redis_us,
            // Under a µs is other clients' work: this setup sends Redis nothing.
            if redis_us < 1.0 { "—".to_owned() } else { format!("{:.0}", per(redis_us)) },
            r.gateway.p50,
            r.gateway.p99
        );
        rows.push(json!({
            "mode": if r.streaming { "stream" } else { "json" },
            "concurrency": r.concurrency,
            "setup": r.variant,
            "rps": r.gateway.rps,
            "gateway_cpu_us_per_request": r.cpu_us,
            "rps_per_gateway_core": per(r.cpu_us),
            "redis_cpu_us_per_request": redis_us,
            "errors": r.gateway.errors,
        }));
    }
    json.insert("per_core".into(), Value::Array(rows));
}

/// `INFO commandstats` as command → (calls, µs).
async fn commandstats(redis: &RedisPrefix) -> Result<BTreeMap<String, (f64, f64)>, String> {
    let info = redis.info("commandstats").await?;
    let mut out = BTreeMap::new();
    for line in info.lines() {
        let Some((name, rest)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let field = |f: &str| {
            rest.split(',')
                .find_map(|kv| kv.strip_prefix(f)?.strip_prefix('=')?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        out.insert(name.to_owned(), (field("calls"), field("usec")));
    }
    Ok(out)
}

struct Counted {
    requests: u64,
    errors: u64,
    /// Commands the gateway sent per request: the scripts' calls when it ran scripts (the
    /// commands a script runs are counted by Redis too), else every command.
    sent: f64,
    /// Command → (calls, server µs) per request, the background removed.
    per_request: BTreeMap<String, (f64, f64)>,
    /// Every command per request, and how much of it was background.
    total: f64,
    background: f64,
}

/// Counts the Redis commands `COUNTED` requests cause: the background rate of the server
/// over one idle second just before, times the run's length, is subtracted.
async fn redis_commands(
    redis: &RedisPrefix,
    target: &Arc<Target>,
    body: Body,
) -> Result<Counted, String> {
    let idle = Duration::from_secs(1);
    let a = commandstats(redis).await?;
    tokio::time::sleep(idle).await;
    let b = commandstats(redis).await?;
    let started = Instant::now();
    let o = load::exactly(Arc::clone(target), COUNTED, 16, body.maker(target)).await;
    // Settlements and releases run in the background after the answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = commandstats(redis).await?;
    let window = started.elapsed().as_secs_f64() / idle.as_secs_f64();
    let n = COUNTED as f64;
    let mut per_request = BTreeMap::new();
    let (mut total, mut background) = (0.0, 0.0);
    for (name, &(calls, usec)) in &c {
        let before = b.get(name).copied().unwrap_or_default();
        let idle_before = a.get(name).copied().unwrap_or_default();
        let bg_calls = (before.0 - idle_before.0) * window;
        let bg_usec = (before.1 - idle_before.1) * window;
        let calls_run = calls - before.0 - bg_calls;
        let usec_run = usec - before.1 - bg_usec;
        background += bg_calls / n;
        // `info` itself and anything under one call per hundred requests is noise.
        if name == "info" || calls_run / n < 0.01 {
            continue;
        }
        total += calls_run / n;
        per_request.insert(name.clone(), (calls_run / n, usec_run.max(0.0) / n));
    }
    let scripts: f64 = ["evalsha", "eval", "evalsha_ro", "eval_ro"]
        .iter()
        .filter_map(|c| per_request.get(*c).map(|(calls, _)| calls))
        .sum();
    let sent = if scripts > 0.0 { scripts } else { total };
    Ok(Counted { requests: o.requests, errors: o.errors, sent, per_request, total, background })
}

fn redis_table(
    md: &mut String,
    json: &mut serde_json::Map<String, Value>,
    rows: &[(&str, Counted)],
) {
    let _ = writeln!(
        md,
        "\n## Redis commands per request\n\nMethod: exactly {COUNTED} requests (16 kept-alive \
         connections) per case; `INFO commandstats` before and 0.3 s after (settlements run after \
         the answer), less the server's own rate over one idle second just before (other clients \
         of the same Redis) scaled to the run's length. Server µs is commandstats' `usec`: \
         execution time, without parsing and network I/O. Redis counts the commands a Lua script \
         runs as well as the script's own `EVALSHA` (whose µs include theirs): \"sent\" is what \
         the gateway sent, one round trip each.\n\n\
         | case | requests | sent per request | commands per request (scripts' included) | by \
         command (calls; server µs per request) | background subtracted |\n|---|--:|--:|--:|---|--:|"
    );
    let mut out = Vec::new();
    for (name, c) in rows {
        let by: Vec<String> = c
            .per_request
            .iter()
            .map(|(cmd, (calls, us))| format!("{cmd} {calls:.2}; {us:.1} µs"))
            .collect();
        let _ = writeln!(
            md,
            "| {name} | {} | {:.2} | {:.2} | {} | {:.2} |",
            c.requests,
            c.sent,
            c.total,
            if by.is_empty() { "—".to_owned() } else { by.join(", ") },
            c.background
        );
        out.push(json!({
            "case": name,
            "requests": c.requests,
            "errors": c.errors,
            "sent_per_request": c.sent,
            "commands_per_request": c.total,
            "by_command": c.per_request.iter().map(|(k, (calls, us))| (k.clone(), json!({"calls": calls, "usec": us}))).collect::<serde_json::Map<_, _>>(),
            "background_per_request": c.background,
        }));
    }
    json.insert("redis_per_request".into(), Value::Array(out));
}

/// This database's counters in `pg_stat_database`, read from the admin database.
#[derive(Clone, Copy, Default)]
struct PgStat {
    commits: f64,
    inserted: f64,
    updated: f64,
}

impl PgStat {
    async fn read(db: &Database) -> Result<Self, String> {
        let mut conn = db.admin().await?;
        let (commits, inserted, updated): (i64, i64, i64) = sqlx::query_as(
            "SELECT xact_commit, tup_inserted, tup_updated FROM pg_stat_database WHERE datname = $1",
        )
        .bind(&db.name)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("pg_stat_database: {e}"))?;
        Ok(Self { commits: commits as f64, inserted: inserted as f64, updated: updated as f64 })
    }

    fn minus(self, o: Self) -> Self {
        Self {
            commits: self.commits - o.commits,
            inserted: self.inserted - o.inserted,
            updated: self.updated - o.updated,
        }
    }

    fn scaled(self, k: f64) -> Self {
        Self { commits: self.commits * k, inserted: self.inserted * k, updated: self.updated * k }
    }
}

struct PgCounted {
    requests: u64,
    errors: u64,
    per_request: PgStat,
    /// With no traffic, per second (the key poller, chiefly).
    idle_per_second: PgStat,
}

/// Transactions and rows per request in the team gateway's database: the idle rate over five
/// seconds first, then `COUNTED` requests, then a graceful stop (its last ledger batch
/// written, its connections closed, so every backend has reported its statistics).
async fn pg_per_request(
    db: &Database,
    gateway: Proc,
    target: Arc<Target>,
) -> Result<PgCounted, String> {
    let idle = Duration::from_secs(5);
    // A backend that goes idle reports its statistics up to 10 s later (PostgreSQL 15's
    // idle interval): let the previous runs' land before the idle window.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let a = PgStat::read(db).await?;
    tokio::time::sleep(idle).await;
    let b = PgStat::read(db).await?;
    let started = Instant::now();
    let same = Body::Same.maker(&target);
    let o = load::exactly(Arc::clone(&target), COUNTED, 16, same).await;
    drop(gateway);
    let busy = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let c = PgStat::read(db).await?;
    let idle_rate = b.minus(a).scaled(1.0 / idle.as_secs_f64());
    let run = c.minus(b).minus(idle_rate.scaled(busy.as_secs_f64()));
    Ok(PgCounted {
        requests: o.requests,
        errors: o.errors,
        per_request: run.scaled(1.0 / COUNTED as f64),
        idle_per_second: idle_rate,
    })
}

fn pg_table(md: &mut String, json: &mut serde_json::Map<String, Value>, pg: &PgCounted) {
    let p = pg.per_request;
    let i = pg.idle_per_second;
    let _ = writeln!(
        md,
        "\n## PostgreSQL per request (team setup)\n\nMethod: `pg_stat_database` of the run's own \
         database (read from the admin database, so the reads are not counted), over five idle \
         seconds, then over exactly {COUNTED} requests with the virtual key (16 connections) and \
         the gateway's graceful stop (its last batch written); the idle rate times the run's \
         length is subtracted.\n\n\
         | per request | transactions | rows inserted | rows updated |\n|---|--:|--:|--:|\n\
         | {} requests | {:.4} | {:.3} | {:.3} |\n\
         | idle, per second | {:.1} | {:.1} | {:.1} |",
        pg.requests, p.commits, p.inserted, p.updated, i.commits, i.inserted, i.updated
    );
    json.insert(
        "postgres_per_request".into(),
        json!({
            "requests": pg.requests,
            "errors": pg.errors,
            "transactions": p.commits,
            "rows_inserted": p.inserted,
            "rows_updated": p.updated,
            "idle_transactions_per_second": i.commits,
        }),
    );
}

struct LedgerRun {
    rows: u64,
    seconds: f64,
    spooled: u64,
    stat: PgStat,
    /// CPU seconds of the database backends serving the writer, and of this process.
    backend_cpu: f64,
    client_cpu: f64,
    wal_bytes: f64,
    avg_row: f64,
    heap_per_row: f64,
    total_per_row: f64,
}

/// One ledger row as the gateway writes it for a priced chat request with a virtual key.
fn ledger_row(i: u64, key_hash: &str) -> switchyard::ledger::Record {
    use switchyard::ledger::{CALL_CHAT, Record, Tokens};
    let now = chrono::Utc::now();
    Record {
        request_id: format!("chatcmpl-capacity-{}-{i:08}", std::process::id()),
        call_type: CALL_CHAT.into(),
        start_time: now - chrono::Duration::milliseconds(850),
        end_time: now,
        first_token_time: Some(now - chrono::Duration::milliseconds(600)),
        duration_ms: 850,
        model_group: "cheap".into(),
        model_id: Some("deployment-0".into()),
        provider: Some("anthropic".into()),
        model: crate::MODEL.into(),
        api_base: Some("https://api.anthropic.com/v1/messages".into()),
        api_key: key_hash.into(),
        key_alias: Some("bench".into()),
        end_user: Some(format!("customer-{}", i % 100)),
        tags: vec!["capacity".into()],
        session_id: Some(format!("session-{}", i / 20)),
        tokens: Tokens { prompt: 1_200, completion: 350, cache_read: 0, cache_write: 0 },
        spend: Some(rust_decimal::Decimal::new(2_950, 6)),
        usage: Some(switchyard::canonical::Usage {
            input_tokens: 1_200,
            output_tokens: 350,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Drives the library's `Ledger` (its queue, batching and PostgreSQL store) with
/// `LEDGER_ROWS` rows as fast as it takes them, against the team database (LiteLLM's key
/// tables there, so each batch also adds to the key's running `spend`, as in production).
/// The queue is kept under half full, so no row is spooled and only the writer is measured.
async fn ledger_writer(s: &Settings<'_>, db: &Database, key: &str) -> Result<LedgerRun, String> {
    use switchyard::ledger::{Ledger, QUEUE, Settings as LedgerSettings};
    let state_dir = s.work.join("ledger-writer");
    let settings = LedgerSettings {
        database_url: Some(switchyard::secret::Secret::new(db.url())),
        state_dir,
        retention: None,
    };
    let ledger = Ledger::open(&settings)?;
    let key_hash = switchyard::attribution::hash_key(key);
    // The first batch learns the table's columns; not counted.
    ledger.record(ledger_row(u64::MAX, &key_hash));
    ledger.flush().await;
    let backends: Vec<u32> = {
        let mut conn = db.admin().await?;
        let pids: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = $1")
                .bind(&db.name)
                .fetch_all(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
        pids.into_iter().filter_map(|p| u32::try_from(p).ok()).collect()
    };
    let cpu = |pids: &[u32]| pids.iter().filter_map(|&p| procs::cpu_seconds(p).ok()).sum::<f64>();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = PgStat::read(db).await?;
    let wal_before = wal_lsn(db).await?;
    let (backend_before, client_before) = (cpu(&backends), procs::cpu_seconds(std::process::id())?);
    let started = Instant::now();
    for i in 0..LEDGER_ROWS {
        if i % 256 == 0 {
            while ledger.status().queued > QUEUE / 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        ledger.record(ledger_row(i, &key_hash));
    }
    ledger.flush().await;
    let seconds = started.elapsed().as_secs_f64();
    let backend_cpu = cpu(&backends) - backend_before;
    let client_cpu = procs::cpu_seconds(std::process::id())? - client_before;
    let wal_bytes = wal_lsn(db).await? - wal_before;
    let spooled = ledger.status().spooled;
    ledger.close(Duration::from_secs(5)).await;
    drop(ledger);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stat = PgStat::read(db).await?.minus(before);
    let mut conn = db.connect().await?;
    let (avg_row, rows, heap, total): (f64, i64, i64, i64) = sqlx::query_as(
        "SELECT avg(pg_column_size(t.*))::float8, count(*), \
         pg_relation_size('\"LiteLLM_SpendLogs\"'), pg_total_relation_size('\"LiteLLM_SpendLogs\"') \
         FROM \"LiteLLM_SpendLogs\" t",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(|e| format!("row size: {e}"))?;
    let per = |bytes: i64| if rows > 0 { bytes as f64 / rows as f64 } else { 0.0 };
    Ok(LedgerRun {
        rows: LEDGER_ROWS,
        seconds,
        spooled,
        stat,
        backend_cpu,
        client_cpu,
        wal_bytes,
        avg_row,
        heap_per_row: per(heap),
        total_per_row: per(total),
    })
}

/// The server's WAL position in bytes (the whole server's: other databases' writes count).
async fn wal_lsn(db: &Database) -> Result<f64, String> {
    let mut conn = db.admin().await?;
    let bytes: f64 =
        sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| format!("pg_current_wal_lsn: {e}"))?;
    Ok(bytes)
}

fn ledger_table(md: &mut String, json: &mut serde_json::Map<String, Value>, l: &LedgerRun) {
    let rows = l.rows as f64;
    let rps = rows / l.seconds;
    let per_txn = if l.stat.commits > 0.0 { l.stat.inserted / l.stat.commits } else { 0.0 };
    let _ = writeln!(
        md,
        "\n## The ledger writer\n\nMethod: the switchyard library's `Ledger` (bounded queue, one \
         writer, batches of up to {} rows or every {} ms, one `INSERT … SELECT FROM UNNEST` per \
         batch plus the key's running spend in the same statement) opened in the benchmark's \
         process on the team database, given {} rows as fast as it takes them (the queue kept \
         under half full, so none is spooled), until `flush` returns. Transactions and rows from \
         `pg_stat_database`; the database's CPU from its backends' `/proc/PID/stat`; WAL from \
         `pg_current_wal_lsn()` (the whole server's: other databases' writes count too, so an \
         upper bound); row size `avg(pg_column_size(row))` and the table's size (with and \
         without its indexes) per row.\n\n\
         | figure | value |\n|---|--:|\n\
         | rows a second | {rps:.0} |\n\
         | transactions (batches) | {:.0} ({per_txn:.0} rows each) |\n\
         | rows updated (running totals) | {:.0} |\n\
         | PostgreSQL backend CPU per row | {:.1} µs |\n\
         | writer's process CPU per row (building rows included) | {:.1} µs |\n\
         | WAL per row | {:.0} bytes |\n\
         | row, `pg_column_size` | {:.0} bytes |\n\
         | table per row: heap / with indexes | {:.0} / {:.0} bytes |\n\
         | rows spooled | {} |",
        switchyard::ledger::BATCH,
        switchyard::ledger::TICK.as_millis(),
        l.rows,
        l.stat.commits,
        l.stat.updated,
        l.backend_cpu * 1e6 / rows,
        l.client_cpu * 1e6 / rows,
        l.wal_bytes / rows,
        l.avg_row,
        l.heap_per_row,
        l.total_per_row,
        l.spooled
    );
    json.insert(
        "ledger_writer".into(),
        json!({
            "rows": l.rows,
            "seconds": l.seconds,
            "rows_per_second": rps,
            "batch_rows": switchyard::ledger::BATCH,
            "batch_tick_ms": switchyard::ledger::TICK.as_millis() as u64,
            "transactions": l.stat.commits,
            "rows_updated": l.stat.updated,
            "backend_cpu_us_per_row": l.backend_cpu * 1e6 / rows,
            "client_cpu_us_per_row": l.client_cpu * 1e6 / rows,
            "wal_bytes_per_row": l.wal_bytes / rows,
            "avg_row_bytes": l.avg_row,
            "heap_bytes_per_row": l.heap_per_row,
            "total_bytes_per_row": l.total_per_row,
            "spooled": l.spooled,
        }),
    );
}

/// RSS after `n` more of something, against a base: (count, bytes, bytes each).
type Steps = Vec<(usize, f64, f64)>;

async fn settled_rss(pid: u32) -> Result<f64, String> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(procs::memory(pid)?.rss as f64)
}

/// Idle kept-alive connections, each after one JSON request: the gateway's RSS before and
/// with `CONNECTIONS` of them open.
async fn memory_per_connection(gateway: &Proc, target: Arc<Target>) -> Result<Steps, String> {
    // Warm: the allocator's first arenas and the upstream pool are not a connection's.
    drop(load::idle_connections(Arc::clone(&target), 100, 50).await?);
    let base = settled_rss(gateway.pid()).await?;
    let mut open = Vec::new();
    let mut steps = Vec::new();
    for n in CONNECTIONS {
        open.extend(load::idle_connections(Arc::clone(&target), n - open.len(), 100).await?);
        let rss = settled_rss(gateway.pid()).await?;
        steps.push((n, rss - base, (rss - base) / n as f64));
    }
    drop(open);
    Ok(steps)
}

/// In-flight streams: a mock that sends one event a second (a stream lasts about a minute),
/// a gateway in front of it, and `STREAMS` requests left open after their first event.
async fn memory_per_stream(s: &Settings<'_>) -> Result<Steps, String> {
    let slow = procs::start_mock_with(s.bins, &["--admin"])?;
    let words = vec!["word"; 60].join(" ");
    let spec = json!({ "text": words, "event_gap_ms": 1000 });
    let (status, answer) =
        load::call(slow.addr, Method::POST, "/_mock/default", None, Bytes::from(spec.to_string()))
            .await?;
    if status != 200 {
        return Err(format!(
            "the mock refused the slow reply: {status} {}",
            String::from_utf8_lossy(&answer)
        ));
    }
    let setup = [Setup { name: "streams", settings: "  disable_spend_logs: true\n".into() }];
    let gateways = start_all(s, &slow, &setup).await?;
    let gateway = &gateways[0].0;
    let target = chat_target(&slow, gateway.addr, crate::MASTER_KEY, true)?;
    let warm = load::open_streams(Arc::clone(&target), 20).await?;
    let base = settled_rss(gateway.pid()).await?;
    let mut open = Vec::new();
    let mut steps = Vec::new();
    for n in STREAMS {
        open.extend(load::open_streams(Arc::clone(&target), n - open.len()).await?);
        let rss = settled_rss(gateway.pid()).await?;
        steps.push((n, rss - base, (rss - base) / n as f64));
    }
    drop(open);
    drop(warm);
    Ok(steps)
}

fn memory_table(
    md: &mut String,
    json: &mut serde_json::Map<String, Value>,
    conns: &Steps,
    streams: &Steps,
) {
    let _ = writeln!(
        md,
        "\n## Memory\n\nMethod: the gateway's RSS (`VmRSS`) 0.5 s after opening each step, against \
         its RSS after a warm-up (100 connections, or 20 streams, opened first). A connection: \
         one JSON request, then kept alive and idle (ledger off, master key). A stream: a \
         streamed request left open after its first event, the upstream (mock-upstream \
         `event_gap_ms: 1000`, 60 words) sending one event a second: it includes the client's \
         connection and the gateway's upstream connection.\n\n\
         | held open | count | RSS delta | per one |\n|---|--:|--:|--:|"
    );
    let mut out = Vec::new();
    for (what, steps) in [("idle kept-alive connections", conns), ("in-flight streams", streams)] {
        for &(n, delta, each) in steps {
            let _ = writeln!(
                md,
                "| {what} | {n} | {:.1} MB | {:.1} KB |",
                delta / 1_048_576.0,
                each / 1024.0
            );
            out.push(
                json!({"what": what, "count": n, "rss_delta_bytes": delta, "bytes_each": each}),
            );
        }
    }
    json.insert("memory".into(), Value::Array(out));
}
