//! `--compare ledger` and `--compare cache`: one feature on against off, in one run. The same release gateway is
//! started once per variant (its own config and state directory), and rounds rotate between
//! the floor and every variant, so a busy machine slows all of them alike. The figure that
//! matters is each variant's throughput against "off" of the same run.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Connection as _;

use bench::load::{self, Outcome, Round};
use bench::procs::{self, Proc};
use bench::report::{self, Machine, Side};

/// One way of running the gateway.
struct Variant {
    name: &'static str,
    /// Appended under `general_settings:` (a line at column 0 starts a new section).
    settings: String,
    /// Sent with each of its requests.
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// A fresh PostgreSQL database for the "postgres" variant, dropped at the end.
struct Database {
    admin_url: String,
    name: String,
}

impl Database {
    async fn create(admin_url: &str) -> Result<Self, String> {
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

    /// The admin URL with this database's name.
    fn url(&self) -> String {
        let base = self.admin_url.split('?').next().unwrap_or(&self.admin_url);
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        format!("{server}/{}", self.name)
    }

    async fn rows(&self) -> Result<i64, String> {
        let mut conn = sqlx::PgConnection::connect(&self.url()).await.map_err(|e| e.to_string())?;
        sqlx::query_scalar("SELECT count(*) FROM \"LiteLLM_SpendLogs\"")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    async fn drop_it(self) {
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
    pub reps: usize,
    pub seconds: f64,
    pub concurrency: &'a [usize],
    pub modes: &'a [bool],
}

/// What one variant measured at one concurrency and mode.
struct Measured {
    variant: &'static str,
    streaming: bool,
    concurrency: usize,
    gateway: Side,
    floor: Side,
    cpu_us: f64,
    peak_rss: u64,
}

/// Runs the ledger comparison and returns the Markdown report and its JSON.
pub async fn ledger(s: &Settings<'_>) -> Result<(String, Value), String> {
    let machine = Machine::read();
    let db = Database::create(s.database_url).await?;
    let result = run(s, &machine, &db).await;
    db.drop_it().await;
    result
}

async fn run(
    s: &Settings<'_>,
    machine: &Machine,
    db: &Database,
) -> Result<(String, Value), String> {
    let variant = |name, settings: String| Variant { name, settings, headers: Vec::new() };
    let variants = [
        variant("off", "  disable_spend_logs: true\n".into()),
        variant("postgres", format!("  database_url: {}\n", db.url())),
        variant("sqlite", String::new()),
    ];
    let (results, dirs) = measure(s, &variants).await?;
    let pg_rows = db.rows().await.ok();
    let sqlite_rows = sqlite_rows(&dirs[2]).await.ok();
    Ok(render(s, machine, &results, "ledger", pg_rows, sqlite_rows))
}

/// `--compare cache`: the response cache off; on, with every request a miss (`Cache-Control:
/// no-cache`: the key is computed, the upstream answers, the answer is stored); on, with every
/// request a hit (the same question each time: no upstream call). The ledger is off in all
/// three, so only the cache differs.
pub async fn cache(s: &Settings<'_>) -> Result<(String, Value), String> {
    let machine = Machine::read();
    let off = "  disable_spend_logs: true\n";
    let on = format!("{off}litellm_settings:\n  cache: true\n  cache_params:\n    type: local\n");
    let no_cache = (http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache"));
    let variants = [
        Variant { name: "off", settings: off.into(), headers: Vec::new() },
        Variant { name: "miss", settings: on.clone(), headers: vec![no_cache] },
        Variant { name: "hit", settings: on, headers: Vec::new() },
    ];
    let (results, _) = measure(s, &variants).await?;
    Ok(render(s, &machine, &results, "cache", None, None))
}

/// Every variant's gateway measured against the floor; returns the rows and each variant's
/// directory (its gateways stopped).
async fn measure(
    s: &Settings<'_>,
    variants: &[Variant],
) -> Result<(Vec<Measured>, Vec<std::path::PathBuf>), String> {
    let mock = procs::start_mock(s.bins)?;
    let mut gateways: Vec<(Proc, std::path::PathBuf)> = Vec::new();
    for v in variants {
        let dir = s.work.join(v.name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let config = dir.join("gateway.yaml");
        let yaml = crate::config(&mock, 1) + &v.settings;
        std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
        let gateway =
            procs::start_gateway_in(s.bins, &config, &dir.join("gateway.log"), Some(&dir))?;
        gateways.push((gateway, dir));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let round = Round {
        concurrency: 0,
        warmup: Duration::from_secs_f64((s.seconds / 5.0).clamp(0.2, 1.0)),
        duration: Duration::from_secs_f64(s.seconds),
    };
    let measured_share =
        round.duration.as_secs_f64() / (round.duration + round.warmup).as_secs_f64();
    let mut results = Vec::new();
    for &streaming in s.modes {
        for &concurrency in s.concurrency {
            let round = Round { concurrency, ..round };
            // Side 0 is the floor, side i + 1 the i-th variant.
            let sides = variants.len() + 1;
            let mut outcomes: Vec<Option<Outcome>> = (0..sides).map(|_| None).collect();
            let mut cpu = vec![0.0; sides];
            let mut peak = vec![0u64; sides];
            for rep in 0..s.reps {
                for k in 0..sides {
                    let side = (k + rep) % sides;
                    let target = if side == 0 {
                        crate::targets(&mock, &gateways[0].0, streaming)?.0
                    } else {
                        let mut t = crate::targets(&mock, &gateways[side - 1].0, streaming)?.1;
                        t.headers.extend(variants[side - 1].headers.iter().cloned());
                        t
                    };
                    let proc = if side == 0 { &mock } else { &gateways[side - 1].0 };
                    let name = if side == 0 { "floor" } else { variants[side - 1].name };
                    eprintln!("bench: {name}, {concurrency} clients, round {}", rep + 1);
                    proc.reset_peak().ok();
                    let before = proc.cpu_seconds()?;
                    let o = load::run(Arc::new(target), round).await;
                    cpu[side] += (proc.cpu_seconds()? - before) * measured_share;
                    peak[side] = peak[side].max(proc.memory()?.peak);
                    match &mut outcomes[side] {
                        None => outcomes[side] = Some(o),
                        Some(total) => total.merge(&o),
                    }
                }
            }
            let outcomes: Vec<Outcome> =
                outcomes.into_iter().map(|o| o.unwrap_or_else(Outcome::empty)).collect();
            let floor = Side::new(&outcomes[0], streaming);
            for (i, v) in variants.iter().enumerate() {
                let o = &outcomes[i + 1];
                results.push(Measured {
                    variant: v.name,
                    streaming,
                    concurrency,
                    gateway: Side::new(o, streaming),
                    floor: floor.clone(),
                    cpu_us: if o.requests == 0 {
                        0.0
                    } else {
                        cpu[i + 1] * 1e6 / o.requests as f64
                    },
                    peak_rss: peak[i + 1],
                });
            }
        }
    }
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
    Ok((results, dirs))
}

fn render(
    s: &Settings<'_>,
    machine: &Machine,
    results: &[Measured],
    feature: &str,
    pg_rows: Option<i64>,
    sqlite_rows: Option<i64>,
) -> (String, Value) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} on against off. Machine: {} cores ({}), {} RAM; load average {} before, {} after. \
         {} round(s) of {:.1} s per side, floor and variants rotating.\n",
        if feature == "cache" { "Response cache" } else { "Ledger" },
        machine.cores,
        machine.cpu,
        machine.memory,
        machine.load_before,
        report::loadavg(),
        s.reps,
        s.seconds
    );
    let _ = write!(
        out,
        "| mode | clients | {feature} | gateway req/s | vs off | gateway / floor | p50 / p99 ms \
         | gateway CPU µs/req | errors | peak RSS |\n|---|--:|---|--:|--:|--:|--:|--:|--:|--:|\n"
    );
    let mut json_rows = Vec::new();
    for r in results {
        let off = results
            .iter()
            .find(|o| {
                o.variant == "off" && o.streaming == r.streaming && o.concurrency == r.concurrency
            })
            .map_or(0.0, |o| o.gateway.rps);
        let vs_off = if off > 0.0 { r.gateway.rps / off } else { 0.0 };
        let to_floor = if r.floor.rps > 0.0 { r.gateway.rps / r.floor.rps } else { 0.0 };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.3} | {:.3} | {:.3} / {:.3} | {:.1} | {} | {:.1} MB |",
            if r.streaming { "stream" } else { "json" },
            r.concurrency,
            r.variant,
            r.gateway.rps,
            vs_off,
            to_floor,
            r.gateway.p50,
            r.gateway.p99,
            r.cpu_us,
            r.gateway.errors,
            r.peak_rss as f64 / 1_048_576.0
        );
        json_rows.push(json!({
            "mode": if r.streaming { "stream" } else { "json" },
            "concurrency": r.concurrency,
            feature: r.variant,
            "gateway_rps": r.gateway.rps,
            "floor_rps": r.floor.rps,
            "vs_off": vs_off,
            "gateway_to_floor": to_floor,
            "cpu_us_per_request": r.cpu_us,
            "errors": r.gateway.errors,
            "peak_rss_bytes": r.peak_rss,
        }));
    }
    if feature == "cache" {
        return (out, json!({"compare": "cache", "rows": json_rows}));
    }
    let count = |n: Option<i64>| n.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
    let _ = writeln!(
        out,
        "\nRows written (warm-ups included): PostgreSQL {}, SQLite {}.",
        count(pg_rows),
        count(sqlite_rows)
    );
    let json = json!({"compare": "ledger", "rows": json_rows, "postgres_rows": pg_rows, "sqlite_rows": sqlite_rows});
    (out, json)
}
