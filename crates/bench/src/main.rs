//! `cargo run -p bench --release -- [--quick] [--json out.json] [--no-build] [--bin-dir DIR] [--reps N]
//! [--seconds S] [--concurrency 1,16,64,256] [--mode json|stream] [--side floor|gateway]
//! [--compare ledger [--database-url URL] | --compare keys [--redis-url URL] | --compare cache | --compare observability
//! | --compare shedding | --compare listener | --compare replicas | --compare capacity | --compare surfaces
//! | --compare soak [--minutes 30] | --compare relay [--peer-cmd CMD] [--load builtin|oha]]`
//!
//! Builds and starts the release `mock-upstream` and `switchyard` (a `cheap` alias routed to
//! `anthropic/claude-haiku-4-5` at the mock, behind a master key), then drives alternating
//! rounds — straight to the mock with the equivalent Anthropic body (the floor), then through
//! the gateway — at each concurrency, JSON and streaming. Prints a Markdown table, the gateway's
//! RSS and its start-to-ready time with 20 deployments, and issue 8's targets, all judged
//! against the floor of the same run.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line benchmark: the report on stdout, progress on stderr"
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

mod capacity;
mod compare;
mod oha;
mod relay;
mod replicas;
mod soak;
mod surfaces;

use bench::load::{self, Outcome, Round, Target};
use bench::procs::{self, Proc};
use bench::report::{self, Machine, Report, Row, Side};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use oha::Load;

const MASTER_KEY: &str = "sk-bench-master";
const UPSTREAM_KEY: &str = "sk-ant-bench";
const MODEL: &str = "claude-haiku-4-5";
const USAGE: &str = "usage: bench [--quick] [--json PATH] [--no-build] [--bin-dir DIR] [--reps N] [--seconds S] \
                     [--concurrency 1,16,64,256] [--mode json|stream] [--side floor|gateway] \
                     [--compare ledger|keys|cache|observability|shedding|listener|replicas|capacity|surfaces|soak|relay] [--minutes N] [--database-url URL] [--redis-url URL] [--peer-cmd CMD] [--load builtin|oha]";

struct Args {
    quick: bool,
    json: Option<PathBuf>,
    build: bool,
    /// Binaries from here instead of `target/release` (implies no build): for A/B runs.
    bin_dir: Option<PathBuf>,
    reps: usize,
    seconds: f64,
    concurrency: Vec<usize>,
    /// Only these modes (`json`, `stream`) and sides (`floor`, `gateway`): for profiling.
    modes: Vec<bool>,
    sides: Vec<bool>,
    /// `ledger`: the ledger off, on PostgreSQL and on SQLite, side by side. `keys`: the master
    /// key against a virtual key with a budget and an rpm limit, counted in Redis. `cache`: the
    /// response cache off, every request a miss, every request a hit. `replicas`: one, two
    /// and three replicas behind nginx against one without it, in the team setup.
    /// `capacity`: the figures behind docs/capacity.md. `surfaces`: `/anthropic/`,
    /// `/bedrock/` InvokeModel and `/v1/embeddings` against their deployments' baselines.
    compare: Option<String>,
    /// `--compare relay`: another gateway to measure beside Switchyard's, started by `sh -c`
    /// with `{port}` (where it must listen) and `{mock}` (the mock's address) replaced.
    peer_cmd: Option<String>,
    /// `--compare relay`: what drives the rounds (`--load oha`: an oha process per round).
    load: Load,
    /// The PostgreSQL server for `--compare ledger|replicas|capacity` (a fresh database is
    /// created there).
    database_url: String,
    /// The Redis server for `--compare keys|replicas|capacity` (the run's keys get their own
    /// prefix).
    redis_url: String,
    /// How long `--compare soak` runs.
    minutes: f64,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        json: None,
        build: true,
        bin_dir: None,
        reps: 0,
        seconds: 0.0,
        concurrency: vec![1, 16, 64, 256],
        modes: vec![false, true],
        sides: vec![false, true],
        compare: None,
        peer_cmd: None,
        load: Load::Builtin,
        database_url: "postgres://postgres@127.0.0.1:5432/postgres".to_owned(),
        redis_url: "redis://127.0.0.1:6379".to_owned(),
        minutes: 30.0,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--quick" => args.quick = true,
            "--json" => args.json = Some(value()?.into()),
            "--no-build" => args.build = false,
            "--bin-dir" => {
                args.bin_dir = Some(value()?.into());
                args.build = false;
            }
            "--reps" => args.reps = value()?.parse().map_err(|_| "--reps: a number")?,
            "--seconds" => args.seconds = value()?.parse().map_err(|_| "--seconds: a number")?,
            "--concurrency" => {
                args.concurrency = value()?
                    .split(',')
                    .map(|c| c.trim().parse().map_err(|_| format!("--concurrency: {c}?")))
                    .collect::<Result<_, _>>()?;
            }
            "--mode" => {
                args.modes = match value()?.as_str() {
                    "json" => vec![false],
                    "stream" => vec![true],
                    other => return Err(format!("--mode: json or stream, not {other}")),
                }
            }
            "--side" => {
                args.sides = match value()?.as_str() {
                    "floor" => vec![false],
                    "gateway" => vec![true],
                    other => return Err(format!("--side: floor or gateway, not {other}")),
                }
            }
            "--compare" => match value()?.as_str() {
                what @ ("ledger" | "keys" | "cache" | "observability" | "shedding" | "listener"
                | "replicas" | "capacity" | "surfaces" | "soak" | "relay") => {
                    args.compare = Some(what.to_owned());
                }
                other => {
                    return Err(format!(
                        "--compare: ledger, keys, cache, observability, shedding, listener, replicas, \
                         capacity, surfaces, soak or relay, not {other}"
                    ));
                }
            },
            "--minutes" => {
                args.minutes = value()?.parse().map_err(|_| "--minutes: a number")?;
            }
            "--database-url" => args.database_url = value()?,
            "--peer-cmd" => args.peer_cmd = Some(value()?),
            "--load" => args.load = Load::named(&value()?)?,
            "--redis-url" => args.redis_url = value()?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if args.load != Load::Builtin && args.compare.as_deref() != Some("relay") {
        return Err("--load oha: only with --compare relay".to_owned());
    }
    if args.reps == 0 {
        args.reps = if args.quick { 1 } else { 3 };
    }
    if args.seconds <= 0.0 {
        args.seconds = if args.quick { 1.0 } else { 3.0 };
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("bench: {problem}");
            }
            eprintln!("{USAGE}");
            return if problem.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) };
        }
    };
    // Like oha: the load generator may use every core (it shares them with the mock and the
    // gateway, as it would in the peers' measurements).
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("bench: cannot start tokio: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("bench: {problem}");
            ExitCode::FAILURE
        }
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `target/` of the running binary (`target/<profile>/bench`), so CARGO_TARGET_DIR is honoured.
fn target_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| "cannot find the target directory".to_owned())
}

async fn run(args: Args) -> Result<(), String> {
    let machine = Machine::read();
    let target_dir = target_dir()?;
    let bins = if let Some(dir) = &args.bin_dir {
        dir.clone()
    } else if args.build {
        eprintln!("bench: building the release gateway and mock (waits for cargo's lock)");
        let (ws, td) = (workspace(), target_dir.clone());
        tokio::task::spawn_blocking(move || procs::build_release(&ws, &td))
            .await
            .map_err(|e| e.to_string())??
    } else {
        target_dir.join("release")
    };
    let work = std::env::temp_dir().join(format!("switchyard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    if let Some(what) = &args.compare {
        let settings = compare::Settings {
            bins: &bins,
            work: &work,
            database_url: &args.database_url,
            redis_url: &args.redis_url,
            reps: args.reps,
            seconds: args.seconds,
            concurrency: &args.concurrency,
            modes: &args.modes,
        };
        let result = if what == "keys" {
            compare::keys(&settings).await
        } else if what == "cache" {
            compare::cache(&settings).await
        } else if what == "observability" {
            compare::observability(&settings).await
        } else if what == "shedding" {
            compare::shedding(&settings).await
        } else if what == "listener" {
            compare::listener(&settings).await
        } else if what == "replicas" {
            replicas::replicas(&settings).await
        } else if what == "capacity" {
            capacity::capacity(&settings).await
        } else if what == "surfaces" {
            surfaces::surfaces(&settings).await
        } else if what == "soak" {
            soak::soak(&settings, args.minutes).await
        } else if what == "relay" {
            relay::relay(&settings, args.peer_cmd.as_deref(), &args.load).await
        } else {
            compare::ledger(&settings).await
        };
        let _ = std::fs::remove_dir_all(&work);
        let compared = result?;
        println!("{}", compared.markdown);
        if let Some(path) = &args.json {
            let text = serde_json::to_string_pretty(&compared.json).map_err(|e| e.to_string())?;
            std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        }
        // The figures are printed either way; a run with failed requests does not count.
        return compared
            .failure
            .map_or(Ok(()), |why| Err(format!("the run does not count: {why}")));
    }
    let result = measure(&args, machine, &bins, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    let report = result?;
    println!("{}", report.markdown());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.json()).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("bench: JSON written to {}", path.display());
    }
    Ok(())
}

fn config(mock: &Proc, deployments: usize) -> String {
    let mut yaml = String::from("model_list:\n");
    for i in 0..deployments {
        let alias = if deployments == 1 {
            "cheap".to_owned()
        } else {
            ["cheap", "balanced", "frontier", "fast"][i % 4].to_owned()
        };
        yaml.push_str(&format!(
            "  - model_name: {alias}\n    litellm_params:\n      model: anthropic/{MODEL}\n      \
             api_base: http://{}\n      api_key: {UPSTREAM_KEY}\n    model_info:\n      id: \
             deployment-{i}\n",
            mock.addr
        ));
    }
    yaml.push_str(&format!("general_settings:\n  master_key: {MASTER_KEY}\n"));
    yaml
}

fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
    Ok((HeaderName::from_static(name), value))
}

/// The floor and the gateway request for one mode: the same question, in the Anthropic body
/// the gateway itself sends upstream, and in OpenAI's shape to the gateway.
fn targets(mock: &Proc, gateway: SocketAddr, streaming: bool) -> Result<(Target, Target), String> {
    let stream = if streaming { r#","stream":true"# } else { "" };
    let floor = Target {
        addr: mock.addr,
        path: "/v1/messages".into(),
        headers: vec![
            header("x-api-key", UPSTREAM_KEY)?,
            header("anthropic-version", "2023-06-01")?,
        ],
        body: Bytes::from(format!(
            r#"{{"model":"{MODEL}","max_tokens":10,"messages":[{{"role":"user","content":[{{"type":"text","text":"Say: WORKS"}}]}}]{stream}}}"#
        )),
        streaming,
        expect_tail: if streaming { br#""message_stop"}"# } else { b"}}" },
        tls: None,
    };
    let through = Target {
        addr: gateway,
        path: "/v1/chat/completions".into(),
        headers: vec![header("authorization", &format!("Bearer {MASTER_KEY}"))?],
        body: Bytes::from(format!(
            r#"{{"model":"cheap","messages":[{{"role":"user","content":"Say: WORKS"}}],"max_tokens":10{stream}}}"#
        )),
        streaming,
        expect_tail: if streaming { b"data: [DONE]" } else { b"}}" },
        tls: None,
    };
    Ok((floor, through))
}

async fn measure(
    args: &Args,
    machine: Machine,
    bins: &Path,
    work: &Path,
) -> Result<Report, String> {
    let mock = procs::start_mock(bins)?;
    let config_path = work.join("gateway.yaml");
    std::fs::write(&config_path, config(&mock, 1)).map_err(|e| e.to_string())?;
    let gateway =
        procs::start_gateway_in(bins, &config_path, &work.join("gateway.log"), Some(work))?;
    eprintln!("bench: mock at {}, gateway at {} (pid {})", mock.addr, gateway.addr, gateway.pid());
    // Settle, then the idle figure: ready, no request served yet.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle_rss = gateway.memory()?.rss;

    let round = Round {
        concurrency: 0,
        warmup: Duration::from_secs_f64((args.seconds / 5.0).clamp(0.2, 1.0)),
        duration: Duration::from_secs_f64(args.seconds),
    };
    let mut rows = Vec::new();
    let mut flip = false;
    for &streaming in &args.modes {
        let (floor, through) = targets(&mock, gateway.addr, streaming)?;
        let (floor, through) = (Arc::new(floor), Arc::new(through));
        for &concurrency in &args.concurrency {
            let round = Round { concurrency, ..round };
            let (mut f, mut g) = (Option::<Outcome>::None, Option::<Outcome>::None);
            let mut peak = 0u64;
            // CPU seconds used by the mock during floor rounds, by the gateway during its own.
            let (mut floor_cpu, mut gateway_cpu) = (0.0, 0.0);
            for rep in 0..args.reps {
                flip = !flip;
                let order = if flip { [false, true] } else { [true, false] };
                for via_gateway in order.into_iter().filter(|s| args.sides.contains(s)) {
                    let mode = if streaming { "stream" } else { "json" };
                    let who = if via_gateway { "gateway" } else { "floor" };
                    eprintln!("bench: {mode} {concurrency} clients, {who}, round {}", rep + 1);
                    let cpu = (gateway.cpu_seconds()?, mock.cpu_seconds()?);
                    // The CPU clock also runs through the warm-up; requests count after it.
                    let measured = round.duration.as_secs_f64()
                        / (round.duration + round.warmup).as_secs_f64();
                    if via_gateway {
                        gateway.reset_peak()?;
                        let o = load::run(Arc::clone(&through), round).await;
                        peak = peak.max(gateway.memory()?.peak);
                        gateway_cpu += (gateway.cpu_seconds()? - cpu.0) * measured;
                        merge(&mut g, o);
                    } else {
                        let o = load::run(Arc::clone(&floor), round).await;
                        floor_cpu += (mock.cpu_seconds()? - cpu.1) * measured;
                        merge(&mut f, o);
                    }
                }
            }
            let (f, g) = (f.unwrap_or_else(Outcome::empty), g.unwrap_or_else(Outcome::empty));
            rows.push(Row {
                streaming,
                concurrency,
                floor: Side::new(&f, streaming),
                gateway: Side::new(&g, streaming),
                gateway_peak_rss: peak,
                floor_cpu,
                gateway_cpu,
            });
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_after = gateway.memory()?.rss;
    drop(gateway);

    let trials = if args.quick { 3 } else { 7 };
    let many = work.join("twenty.yaml");
    std::fs::write(&many, config(&mock, 20)).map_err(|e| e.to_string())?;
    let mut ready_ms = Vec::new();
    for _ in 0..trials {
        ready_ms.push(time_to_ready(bins, &many).await?);
    }
    drop(mock);

    let command = {
        let rest: Vec<String> = std::env::args().skip(1).collect();
        let rest = if rest.is_empty() { String::new() } else { format!(" -- {}", rest.join(" ")) };
        format!("cargo run -p bench --release{rest}")
    };
    Ok(Report {
        command,
        machine,
        load_after: report::loadavg(),
        settings: format!(
            "{} round(s) of {:.1} s (after {:.1} s warm-up) per side and row, floor and gateway \
             alternating; load generator, mock and gateway share the cores.",
            args.reps,
            round.duration.as_secs_f64(),
            round.warmup.as_secs_f64()
        ),
        rows,
        idle_rss,
        idle_rss_after,
        ready_ms,
    })
}

fn merge(into: &mut Option<Outcome>, o: Outcome) {
    match into {
        None => *into = Some(o),
        Some(total) => total.merge(&o),
    }
}

/// Spawn → first 200 from `/health/readiness`, polled every 0.5 ms, in ms.
async fn time_to_ready(bins: &Path, config: &Path) -> Result<f64, String> {
    let port = procs::free_port()?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let started = tokio::time::Instant::now();
    let mut child = procs::spawn_gateway_at(bins, config, port)?;
    let result = loop {
        if let Ok(200) = load::get_status(addr, "/health/readiness").await {
            break Ok(started.elapsed().as_secs_f64() * 1e3);
        }
        if started.elapsed() > Duration::from_secs(10) {
            break Err("the 20-deployment gateway was not ready within 10 s".to_owned());
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("the 20-deployment gateway exited: {status}"));
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    };
    procs::stop(&mut child);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn compare_surfaces_narrows_like_the_other_comparisons() {
        let a = args(&["--compare", "surfaces", "--concurrency", "1, 64", "--mode", "json"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.compare.as_deref(), Some("surfaces"));
        assert_eq!(a.concurrency, [1, 64]);
        assert_eq!(a.modes, [false]);
        assert_eq!((a.reps, a.seconds), (3, 3.0));
        let quick = args(&["--quick", "--compare", "surfaces"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((quick.reps, quick.seconds), (1, 1.0));
    }

    #[test]
    fn the_load_generator_is_builtin_unless_asked() {
        let a = args(&["--compare", "relay"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.load, Load::Builtin);
        let a =
            args(&["--compare", "relay", "--load", "builtin"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.load, Load::Builtin);
        let Err(problem) = args(&["--compare", "relay", "--load", "hey"]) else {
            panic!("accepted")
        };
        assert_eq!(problem, "--load: builtin or oha, not hey");
    }

    #[test]
    fn an_unknown_comparison_names_the_known_ones() {
        let Err(problem) = args(&["--compare", "surface"]) else { panic!("accepted") };
        assert!(problem.contains("surfaces") && problem.contains("not surface"), "{problem}");
        let Err(problem) = args(&["--compare"]) else { panic!("accepted") };
        assert_eq!(problem, "--compare needs a value");
    }
}
