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

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use bench::load::{self, Target};
use bench::procs::{self, Proc};
use bench::report::{self, Machine};

use crate::compare::{
    Compared, Database, Endpoint, Measured, RedisPrefix, Settings, Setup, Variant, failed_requests,
    rotate, start_all, virtual_key,
};
use crate::replicas::team_settings;

mod memory;
mod postgres;
mod redis_ops;

use memory::{memory_per_connection, memory_per_stream, memory_table};
use postgres::{ledger_table, ledger_writer, pg_per_request, pg_table};
use redis_ops::{redis_commands, redis_table};

/// Requests per counted run (Redis commands, PostgreSQL transactions).
pub(super) const COUNTED: u64 = 2_000;
/// Rows the ledger writer is given.
pub(super) const LEDGER_ROWS: u64 = 100_000;
/// Idle connections and in-flight streams held open, in two steps each.
pub(super) const CONNECTIONS: [usize; 2] = [1_000, 5_000];
pub(super) const STREAMS: [usize; 2] = [200, 1_000];

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
pub(super) fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// The OpenAI chat request the benchmark sends, to `addr`, with `bearer`.
pub(super) fn chat_target(
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
pub(super) enum Body {
    Same,
    Unique,
}

impl Body {
    pub(super) fn maker(self, target: &Target) -> Arc<dyn Fn(u64) -> Bytes + Send + Sync> {
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
