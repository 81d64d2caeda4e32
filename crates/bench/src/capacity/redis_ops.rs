//! Redis commands per request: `INFO commandstats` deltas over an exact number of requests,
//! less the server's background rate measured just before.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use bench::load::{self, Target};

use super::{Body, COUNTED};
use crate::compare::RedisPrefix;

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

pub(super) struct Counted {
    requests: u64,
    pub errors: u64,
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
pub(super) async fn redis_commands(
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

pub(super) fn redis_table(
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
