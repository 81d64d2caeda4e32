//! `--compare replicas`: one, two and three gateway replicas behind nginx (round robin,
//! upstream keepalive on), against one replica without nginx, in the team setup: every
//! replica on the same PostgreSQL database (ledger and virtual keys) and the same Redis key
//! prefix (the key's rpm limit and budget), every request carrying the virtual key.
//!
//! On a machine with few cores more replicas add no throughput (they share the cores with
//! nginx and the load generator); what the table shows is the cost of the extra hop and of
//! N processes on shared state.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use bench::load;
use bench::nginx::{Nginx, Upstream};
use bench::procs::{self, Proc};
use bench::report::Machine;

use crate::compare::{
    Compared, Database, Endpoint, RedisPrefix, Settings, Setup, Variant, failed_requests,
    limits_health, render, rotate, start_all, virtual_key,
};

/// The settings every replica of a team shares: the ledger and the key tables on `db`,
/// rate limits and budgets counted in Redis under `redis`'s prefix.
pub(crate) fn team_settings(db: &Database, redis: &RedisPrefix, redis_url: &str) -> String {
    format!(
        "  database_url: {}\n  redis_key_prefix: \"{}\"\nrouter_settings:\n  redis_url: \"{}\"\n",
        db.url(),
        redis.prefix,
        redis_url
    )
}

pub async fn replicas(s: &Settings<'_>) -> Result<Compared, String> {
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

const NAMES: [&str; 3] = ["replica-1", "replica-2", "replica-3"];

async fn run(
    s: &Settings<'_>,
    machine: &Machine,
    db: &Database,
    redis: &RedisPrefix,
) -> Result<Compared, String> {
    let team = team_settings(db, redis, s.redis_url);
    let setups: Vec<Setup> =
        NAMES.iter().map(|&name| Setup { name, settings: team.clone() }).collect();
    let mock = procs::start_mock(s.bins)?;
    // The first replica creates the tables (keys at start, the ledger's with its first
    // batch) before the others start, so no two create them at once.
    let mut gateways = start_all(s, &mock, &setups[..1]).await?;
    let key = virtual_key(&gateways[0].0).await?;
    accepts(&gateways[0].0, &key).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    gateways.extend(start_all(s, &mock, &setups[1..]).await?);
    // The key reaches the other replicas through the database (their key poller).
    for (gateway, _) in &gateways[1..] {
        accepts(gateway, &key).await?;
    }
    let keepalive = s.concurrency.iter().copied().max().unwrap_or(64).max(16);
    let up = Upstream { keepalive };
    let addrs: Vec<_> = gateways.iter().map(|(g, _)| g.addr).collect();
    let mut fronts = Vec::new();
    for n in 1..=addrs.len() {
        fronts.push(Nginx::start(&s.work.join(format!("nginx-{n}")), &addrs[..n], up)?);
    }
    let pids = |n: usize| gateways[..n].iter().map(|(g, _)| g.pid()).collect::<Vec<_>>();
    let mut endpoints = vec![Endpoint::direct(&gateways[0].0)];
    for (i, front) in fronts.iter().enumerate() {
        endpoints.push(Endpoint {
            addr: front.addr,
            gateways: pids(i + 1),
            front: front.pids.clone(),
            tls: None,
        });
    }
    let names = ["1, direct", "nginx → 1", "nginx → 2", "nginx → 3"];
    let variants: Vec<Variant> = names
        .iter()
        .enumerate()
        .map(|(i, &name)| Variant { name, gateway: i, key: key.clone(), headers: &[] })
        .collect();
    let results = rotate(s, "replicas", &mock, &endpoints, &variants, Some(redis)).await?;

    // Every replica counted in Redis throughout, and served its share.
    let mut failure = failed_requests(&results);
    let mut health = Vec::new();
    for (gateway, dir) in &gateways {
        let limits = limits_health(gateway).await?;
        let log = std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default();
        if limits.get("backend").and_then(Value::as_str) != Some("redis")
            || limits.get("state").and_then(Value::as_str) != Some("ok")
            || log.contains("LIM-03")
        {
            failure.get_or_insert(format!(
                "a replica did not count in Redis throughout (/health limits: {limits}; LIM-03 in \
                 its log: {})",
                log.contains("LIM-03")
            ));
        }
        health.push(limits);
    }
    let counters = redis.keys().await.map(|k| k.len()).unwrap_or(0);
    drop(fronts);
    // A graceful stop flushes each replica's last ledger batch before the rows are counted.
    drop(gateways);
    drop(mock);
    let rows = db.rows().await.ok();

    let title = format!(
        "Replicas behind nginx against one replica without it, in the team setup (PostgreSQL \
         ledger and keys, limits in Redis, a virtual key with an rpm limit and a budget on every \
         request). nginx {}: `worker_processes auto`, round robin, HTTP/1.1 upstream with \
         `keepalive {keepalive}` per worker (upstream keepalive on), `proxy_buffering off`; the \
         gateway CPU column sums every replica behind the front.",
        bench::nginx::version()
    );
    let (mut markdown, json) = render(s, machine, &title, ("replicas", "1, direct"), &results);
    markdown.push_str(&format!(
        "\nLedger rows in the shared database at the end (warm-ups included): {}; Redis counters \
         under `{}`: {counters}, deleted after the run.\n",
        rows.map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
        redis.prefix
    ));
    let json = json!({
        "compare": "replicas",
        "rows": json,
        "nginx_upstream_keepalive": keepalive,
        "ledger_rows": rows,
        "redis_counters": counters,
        "limits": health,
    });
    Ok(Compared { markdown, json, failure })
}

/// Waits (up to 5 s) until `gateway` serves a request with `key`.
async fn accepts(gateway: &Proc, key: &str) -> Result<(), String> {
    let body = Bytes::from_static(
        br#"{"model":"cheap","messages":[{"role":"user","content":"Say: WORKS"}],"max_tokens":10}"#,
    );
    let mut last = String::new();
    for _ in 0..50 {
        let (status, answer) =
            load::call(gateway.addr, Method::POST, "/v1/chat/completions", Some(key), body.clone())
                .await?;
        if status == 200 {
            return Ok(());
        }
        last = format!("{status}: {}", String::from_utf8_lossy(&answer));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "the gateway at {} did not accept the virtual key within 5 s ({last})",
        gateway.addr
    ))
}
