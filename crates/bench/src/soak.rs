//! `--compare soak [--minutes N]`: N minutes (30 by default) of mixed traffic against the
//! release gateway — JSON and streamed answers (cache bypassed), a failing deployment (the
//! mock refuses its key: the injected errors), and one repeated request the response cache
//! answers — all with a virtual key that has an rpm limit and a budget, the ledger on a fresh
//! PostgreSQL database (dropped at the end). Every 10 s it samples the gateway's RSS, its open
//! descriptors, requests/s and the answers by kind; at the end it judges: RSS flat (the
//! median of the last quarter within 10 % of the first quarter's, after the warm-up),
//! descriptors flat, no error but the injected ones, and one ledger row per request answered.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::compare::{Compared, Database, Settings};
use bench::load;
use bench::procs::{self, Proc};
use bench::report::Machine;

const SAMPLE: Duration = Duration::from_secs(10);

/// The traffic's kinds and how many closed-loop clients send each.
const KINDS: &[(&str, usize)] = &[("json", 6), ("stream", 4), ("failing", 2), ("cached", 4)];

/// Answers so far, by "kind: outcome".
type Tally = Arc<Mutex<BTreeMap<String, u64>>>;

struct Sample {
    at: Duration,
    rss_kb: u64,
    fds: usize,
    rps: f64,
    /// Answers in this interval, by "kind: outcome".
    answers: BTreeMap<String, u64>,
}

fn body(kind: &str) -> Bytes {
    let (model, stream, cache) = match kind {
        "stream" => ("cheap", true, json!({"no-cache": true, "no-store": true})),
        "failing" => ("broken", false, json!({"no-cache": true, "no-store": true})),
        "cached" => ("cheap", false, json!({})),
        _ => ("cheap", false, json!({"no-cache": true, "no-store": true})),
    };
    let text = if kind == "cached" { "Say: CACHED" } else { "Say: WORKS" };
    Bytes::from(
        json!({
            "model": model,
            "messages": [{"role": "user", "content": text}],
            "max_tokens": 10,
            "stream": stream,
            "cache": cache,
        })
        .to_string(),
    )
}

/// One client: a kept-alive connection, requests back to back until `stop`.
async fn client(
    addr: SocketAddr,
    key: Arc<str>,
    kind: &'static str,
    stop: Arc<AtomicBool>,
    tally: Tally,
) {
    let body = body(kind);
    let auth =
        HeaderValue::from_str(&format!("Bearer {key}")).unwrap_or(HeaderValue::from_static(""));
    let mut sender = None;
    while !stop.load(Ordering::Relaxed) {
        if sender.is_none() {
            let Ok(tcp) = TcpStream::connect(addr).await else {
                count(&tally, kind, "connect error").await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let _ = tcp.set_nodelay(true);
            match hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tcp)).await {
                Ok((s, conn)) => {
                    tokio::spawn(conn);
                    sender = Some(s);
                }
                Err(_) => {
                    count(&tally, kind, "handshake error").await;
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        if s.ready().await.is_err() {
            sender = None;
            continue;
        }
        let Ok(request) = Request::builder()
            .method(Method::POST)
            .uri("/v1/chat/completions")
            .header(HOST, "127.0.0.1")
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, auth.clone())
            .body(Full::new(body.clone()))
        else {
            return;
        };
        let outcome = match s.send_request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.into_body().collect().await {
                    Ok(_) if status == 200 && kind != "failing" => "ok".to_owned(),
                    Ok(_) if status != 200 && kind == "failing" => "injected".to_owned(),
                    Ok(_) => format!("status {status}"),
                    Err(_) => "body cut".to_owned(),
                }
            }
            Err(_) => {
                sender = None;
                "transport".to_owned()
            }
        };
        count(&tally, kind, &outcome).await;
    }
}

async fn count(tally: &Tally, kind: &str, outcome: &str) {
    *tally.lock().await.entry(format!("{kind}: {outcome}")).or_default() += 1;
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn config(mock: &Proc, db: &Database) -> String {
    format!(
        "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_base: http://{addr}\n      api_key: {key}\n  - model_name: broken\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_base: http://{addr}\n      api_key: sk-ant-not-the-mocks-key\nrouter_settings:\n  num_retries: 0\n  allowed_fails: 1000000000\nlitellm_settings:\n  cache: true\n  cache_params:\n    type: local\ngeneral_settings:\n  master_key: {master}\n  database_url: {url}\n",
        addr = mock.addr,
        key = crate::UPSTREAM_KEY,
        master = crate::MASTER_KEY,
        url = db.url(),
    )
}

pub async fn soak(s: &Settings<'_>, minutes: f64) -> Result<Compared, String> {
    let machine = Machine::read();
    let db = Database::create(s.database_url).await?;
    let result = run(s, &machine, &db, minutes).await;
    db.drop_it().await;
    result
}

async fn run(
    s: &Settings<'_>,
    machine: &Machine,
    db: &Database,
    minutes: f64,
) -> Result<Compared, String> {
    let mock = procs::start_mock_with(s.bins, &["--api-key", crate::UPSTREAM_KEY])?;
    let dir = s.work.join("soak");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config_path = dir.join("gateway.yaml");
    std::fs::write(&config_path, config(&mock, db)).map_err(|e| e.to_string())?;
    let gateway =
        procs::start_gateway_in(s.bins, &config_path, &dir.join("gateway.log"), Some(&dir))?;
    let key: Arc<str> = soak_key(&gateway).await?.into();

    let stop = Arc::new(AtomicBool::new(false));
    let tally: Tally = Arc::default();
    let mut clients = Vec::new();
    for &(kind, n) in KINDS {
        for _ in 0..n {
            clients.push(tokio::spawn(client(
                gateway.addr,
                key.clone(),
                kind,
                stop.clone(),
                tally.clone(),
            )));
        }
    }
    let started = Instant::now();
    let total = Duration::from_secs_f64(minutes * 60.0);
    let mut samples = Vec::new();
    let mut before = BTreeMap::new();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + SAMPLE, SAMPLE);
    while started.elapsed() < total {
        tick.tick().await;
        let now: BTreeMap<String, u64> = tally.lock().await.clone();
        let answers: BTreeMap<String, u64> = now
            .iter()
            .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect();
        let n: u64 = answers.values().sum();
        let sample = Sample {
            at: started.elapsed(),
            rss_kb: procs::memory(gateway.pid())?.rss / 1024,
            fds: fds(gateway.pid()),
            #[allow(clippy::cast_precision_loss)]
            rps: n as f64 / SAMPLE.as_secs_f64(),
            answers,
        };
        eprintln!(
            "bench: soak {:>5.0} s  RSS {:>7} kB  fds {:>4}  {:>7.0} req/s",
            sample.at.as_secs_f64(),
            sample.rss_kb,
            sample.fds,
            sample.rps
        );
        samples.push(sample);
        before = now;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    let tally = tally.lock().await.clone();
    // Every answered request is a ledger row; the writer flushes every 200 ms.
    let answered: u64 = tally
        .iter()
        .filter(|(k, _)| k.ends_with(": ok") || k.ends_with(": injected") || k.contains("status"))
        .map(|(_, v)| v)
        .sum();
    let mut rows = db.rows().await.unwrap_or(-1);
    for _ in 0..60 {
        if u64::try_from(rows).is_ok_and(|r| r >= answered) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        rows = db.rows().await.unwrap_or(-1);
    }
    drop(gateway);
    drop(mock);
    Ok(judge(machine, minutes, &samples, &tally, answered, rows))
}

/// A virtual key with an rpm limit and a budget nothing in the run reaches.
async fn soak_key(gateway: &Proc) -> Result<String, String> {
    let body = json!({"key_alias": "soak", "max_budget": 1_000_000, "budget_duration": "1d", "rpm_limit": 100_000_000});
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

fn judge(
    machine: &Machine,
    minutes: f64,
    samples: &[Sample],
    tally: &BTreeMap<String, u64>,
    answered: u64,
    rows: i64,
) -> Compared {
    let mut md = format!(
        "Soak: {minutes} min of mixed traffic ({}) with a virtual key (rpm limit, budget), the \
         ledger on PostgreSQL, the response cache on.\n\n{}\n\n",
        KINDS.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", "),
        format_args!(
            "Machine: {} cores ({}), {} RAM; load average {} before, {} after.",
            machine.cores,
            machine.cpu,
            machine.memory,
            machine.load_before,
            bench::report::loadavg()
        ),
    );
    md.push_str(
        "| t (s) | RSS (MB) | fds | req/s | answers in the interval |\n|--:|--:|--:|--:|---|\n",
    );
    for s in samples {
        #[allow(clippy::cast_precision_loss)]
        let rss_mb = s.rss_kb as f64 / 1024.0;
        let answers: Vec<String> = s.answers.iter().map(|(k, v)| format!("{k} {v}")).collect();
        md.push_str(&format!(
            "| {:.0} | {rss_mb:.1} | {} | {:.0} | {} |\n",
            s.at.as_secs_f64(),
            s.fds,
            s.rps,
            answers.join(", ")
        ));
    }
    // The first tenth (at least one sample) is the warm-up: allocator pools and caches fill.
    let warm = (samples.len() / 10).max(1).min(samples.len().saturating_sub(1));
    let after = &samples[warm..];
    let mut failures = Vec::new();
    // Flat: the median of the last quarter within 10 % of the first quarter's. A moment's
    // peak (a ledger batch, the allocator holding freed pages) is not growth; a leak moves
    // the median.
    let quarter = (after.len() / 4).max(1);
    let median = |xs: &[Sample]| {
        let mut v: Vec<u64> = xs.iter().map(|s| s.rss_kb).collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    if after.len() >= 2 {
        let (first, last) = (median(&after[..quarter]), median(&after[after.len() - quarter..]));
        let peak = after.iter().map(|s| s.rss_kb).max().unwrap_or(0);
        #[allow(clippy::cast_precision_loss)]
        let growth = (last as f64 / first.max(1) as f64 - 1.0) * 100.0;
        #[allow(clippy::cast_precision_loss)]
        let mb = |kb: u64| kb as f64 / 1024.0;
        md.push_str(&format!(
            "\nRSS after the warm-up, median of the first and last quarter: {:.1} → {:.1} MB \
             ({growth:+.1} %), peak {:.1} MB.",
            mb(first),
            mb(last),
            mb(peak)
        ));
        if growth > 10.0 {
            failures.push(format!("RSS grew {growth:.1} % after the warm-up"));
        }
    }
    if let (Some(lo), Some(hi)) =
        (after.iter().map(|s| s.fds).min(), after.iter().map(|s| s.fds).max())
    {
        md.push_str(&format!(" Descriptors: {lo}–{hi}."));
        // The clients' connections, the ledger's and key store's pools: a handful may come
        // and go, a leak climbs.
        if hi > lo + 8 {
            failures.push(format!("descriptors went from {lo} to {hi}"));
        }
    }
    let unexpected: Vec<String> = tally
        .iter()
        .filter(|(k, _)| !k.ends_with(": ok") && !k.ends_with(": injected"))
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let total: u64 = tally.values().sum();
    md.push_str(&format!(
        "\nAnswers: {}. Ledger rows: {rows} for {answered} requests answered.\n",
        tally.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    ));
    if !unexpected.is_empty() {
        failures.push(format!("errors besides the injected ones: {}", unexpected.join(", ")));
    }
    if rows != i64::try_from(answered).unwrap_or(-1) {
        failures.push(format!("{rows} ledger rows for {answered} requests answered"));
    }
    md.push_str(&if failures.is_empty() {
        format!(
            "\nVerdict: flat, {total} requests, no unexpected error, every request in the ledger.\n"
        )
    } else {
        format!("\nVerdict: {}.\n", failures.join("; "))
    });
    let json = json!({
        "compare": "soak",
        "minutes": minutes,
        "samples": samples.iter().map(|s| json!({"t": s.at.as_secs_f64(), "rss_kb": s.rss_kb, "fds": s.fds, "rps": s.rps, "answers": s.answers})).collect::<Vec<_>>(),
        "answers": tally,
        "ledger_rows": rows,
        "answered": answered,
    });
    Compared { markdown: md, json, failure: (!failures.is_empty()).then(|| failures.join("; ")) }
}
