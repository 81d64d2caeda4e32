//! `--load oha`: a round driven by an `oha` subprocess (the Rust HTTP load generator many
//! users measure with) instead of `bench::load`, so a figure can be checked against what
//! they would see. oha reads no answer: the lanes are verified once before any round.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use bench::load::Target;
use bench::report::Side;

/// Which load generator drives the rounds.
#[derive(Clone, Debug, PartialEq)]
pub enum Load {
    /// `bench::load`: hyper, one kept-alive connection per client.
    Builtin,
    /// The `oha` binary found on PATH.
    Oha(PathBuf),
}

impl Load {
    /// `builtin` or `oha` (looked up on PATH now, so a missing oha fails before any setup).
    pub fn named(name: &str) -> Result<Load, String> {
        match name {
            "builtin" => Ok(Load::Builtin),
            "oha" => {
                find_on_path("oha", std::env::var_os("PATH")).map(Load::Oha).ok_or_else(|| {
                    "--load oha: no `oha` on PATH. Install it with `cargo install --locked oha` \
                 (oha 1.x; the binary lands in ~/.cargo/bin), or leave out --load to use the \
                 built-in load generator."
                        .to_owned()
                })
            }
            other => Err(format!("--load: builtin or oha, not {other}")),
        }
    }
}

fn find_on_path(name: &str, path: Option<std::ffi::OsString>) -> Option<PathBuf> {
    switchyard::cli::find_on_path(name, &path?)
}

/// What one oha run measured, in the units of the built-in generator's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct OhaRun {
    /// Answers with a 2xx status.
    pub ok: u64,
    /// Other statuses and requests that got no answer.
    pub errors: u64,
    pub first_error: Option<String>,
    /// The run's wall time.
    pub elapsed: Duration,
    /// Latency percentiles of every answered request, milliseconds.
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    /// Time to the answer's first byte, p50 and p99, milliseconds (oha 1.16 and later).
    pub first_byte: Option<(f64, f64)>,
}

/// oha's command line for one round of `seconds` at `concurrency` clients: JSON on stdout,
/// no TUI, requests still in flight at the deadline waited for (not counted as errors).
pub fn args(target: &Target, concurrency: usize, duration: Duration) -> Vec<String> {
    let mut args: Vec<String> =
        ["--no-tui", "--output-format", "json", "--wait-ongoing-requests-after-deadline"]
            .map(str::to_owned)
            .into();
    args.extend(["-z".to_owned(), format!("{}ms", duration.as_millis().max(1))]);
    args.extend(["-c".to_owned(), concurrency.to_string()]);
    args.extend(["-m", "POST", "-T", "application/json"].map(str::to_owned));
    for (name, value) in &target.headers {
        args.push("-H".to_owned());
        args.push(format!("{name}: {}", value.to_str().unwrap_or_default()));
    }
    args.push("-d".to_owned());
    args.push(String::from_utf8_lossy(&target.body).into_owned());
    args.push(format!("http://{}{}", target.addr, target.path));
    args
}

/// Reads oha's `--output-format json` report.
pub fn parse(text: &str) -> Result<OhaRun, String> {
    let report: Value = serde_json::from_str(text).map_err(|e| format!("oha's JSON: {e}"))?;
    let summary = &report["summary"];
    let seconds = summary["total"].as_f64().ok_or("oha's JSON has no summary.total (seconds)")?;
    let statuses = report["statusCodeDistribution"]
        .as_object()
        .ok_or("oha's JSON has no statusCodeDistribution")?;
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut first_error = None;
    for (status, count) in statuses {
        let count = count.as_u64().unwrap_or(0);
        if status.starts_with('2') {
            ok += count;
        } else {
            errors += count;
            first_error.get_or_insert_with(|| format!("status {status} ({count} answers)"));
        }
    }
    if let Some(failures) = report["errorDistribution"].as_object() {
        for (why, count) in failures {
            let count = count.as_u64().unwrap_or(0);
            errors += count;
            first_error.get_or_insert_with(|| format!("{why} ({count} requests)"));
        }
    }
    // Seconds in oha's report; null when nothing was answered.
    let ms = |table: &str, name: &str| report[table][name].as_f64().map(|s| s * 1e3);
    let percentile = |name: &str| ms("latencyPercentiles", name).unwrap_or(0.0);
    let first_byte = ms("firstBytePercentiles", "p50").zip(ms("firstBytePercentiles", "p99"));
    Ok(OhaRun {
        ok,
        errors,
        first_error,
        elapsed: Duration::try_from_secs_f64(seconds).map_err(|e| format!("summary.total: {e}"))?,
        p50: percentile("p50"),
        p90: percentile("p90"),
        p99: percentile("p99"),
        first_byte,
    })
}

/// Runs oha once against `target` for `duration` (a round's warm-up or its measured part:
/// the built-in generator's rounds have both).
pub async fn run(
    oha: &Path,
    target: &Target,
    concurrency: usize,
    duration: Duration,
) -> Result<OhaRun, String> {
    let mut command = std::process::Command::new(oha);
    command.args(args(target, concurrency, duration)).stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot run {}: {e}", oha.display()))?;
    if !out.status.success() {
        return Err(format!(
            "oha exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// Several rounds of one lane: counts and time add; each percentile is the mean of the
/// rounds', weighted by their answers (oha reports percentiles, not the latencies).
#[derive(Clone, Debug, Default)]
pub struct OhaTotal {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// p50, p90, p99, first byte p50 and p99, each times the round's answers.
    weighted: [f64; 5],
    /// Answers of the rounds that reported a first byte.
    first_byte_weight: f64,
}

impl OhaTotal {
    pub fn add(&mut self, run: &OhaRun) {
        self.ok += run.ok;
        self.errors += run.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&run.first_error);
        }
        self.elapsed += run.elapsed;
        let w = run.ok as f64;
        let (fb50, fb99) = run.first_byte.unwrap_or_default();
        for (sum, p) in self.weighted.iter_mut().zip([run.p50, run.p90, run.p99, fb50, fb99]) {
            *sum += p * w;
        }
        if run.first_byte.is_some() {
            self.first_byte_weight += w;
        }
    }

    pub fn requests(&self) -> u64 {
        self.ok
    }

    /// The table's side; a stream's time to first byte when oha reported it.
    pub fn side(&self, streaming: bool) -> Side {
        let mean = |sum: f64| if self.ok == 0 { 0.0 } else { sum / self.ok as f64 };
        let first_byte = |sum: f64| {
            (streaming && self.first_byte_weight > 0.0).then(|| sum / self.first_byte_weight)
        };
        Side {
            requests: self.ok,
            errors: self.errors,
            first_error: self.first_error.clone(),
            rps: if self.elapsed.is_zero() {
                0.0
            } else {
                self.ok as f64 / self.elapsed.as_secs_f64()
            },
            p50: mean(self.weighted[0]),
            p90: mean(self.weighted[1]),
            p99: mean(self.weighted[2]),
            ttfb_p50: first_byte(self.weighted[3]),
            ttfb_p99: first_byte(self.weighted[4]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// oha 1.16.0's report of 1 s at 4 clients on the mock's `/v1/messages`.
    const ANSWERED: &str = include_str!("../fixtures/oha-1.16-mock-1s.json");
    /// 200 ms on a route the mock does not have: every answer a 404.
    const NOT_FOUND: &str = include_str!("../fixtures/oha-1.16-mock-404.json");
    /// 300 ms at a port nobody listens on: no answer, null percentiles.
    const REFUSED: &str = include_str!("../fixtures/oha-1.16-refused.json");

    fn parsed(text: &str) -> OhaRun {
        parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_real_report_gives_the_rate_percentiles_and_statuses() {
        let run = parsed(ANSWERED);
        assert_eq!((run.ok, run.errors, run.first_error.as_deref()), (18_634, 0, None));
        assert_eq!(run.elapsed, Duration::from_nanos(1_006_197_449));
        assert!((run.p50 - 0.151_516).abs() < 1e-9, "{run:?}");
        assert!((run.p90 - 0.258_435).abs() < 1e-9, "{run:?}");
        assert!((run.p99 - 2.682_208).abs() < 1e-9, "{run:?}");
        let (fb50, fb99) = run.first_byte.unwrap_or_else(|| panic!("no first byte: {run:?}"));
        assert!((fb50 - 0.151_446).abs() < 1e-9 && (fb99 - 2.682_138).abs() < 1e-9);

        let mut total = OhaTotal::default();
        total.add(&run);
        let side = total.side(false);
        // Answers over the run's wall time, as the built-in generator counts them.
        assert!((side.rps - 18_634.0 / 1.006_197_449).abs() < 1e-6, "{side:?}");
        assert_eq!((side.requests, side.errors), (18_634, 0));
        assert_eq!((side.ttfb_p50, side.ttfb_p99), (None, None), "not a stream");
        assert!(total.side(true).ttfb_p50.is_some());
    }

    #[test]
    fn other_statuses_and_unanswered_requests_are_errors() {
        let run = parsed(NOT_FOUND);
        assert_eq!((run.ok, run.errors), (0, 4_450));
        assert_eq!(run.first_error.as_deref(), Some("status 404 (4450 answers)"));

        let run = parsed(REFUSED);
        assert_eq!((run.ok, run.errors), (0, 5_630));
        assert!(run.first_error.as_deref().is_some_and(|e| e.contains("Connection refused")));
        assert_eq!((run.p50, run.p99, run.first_byte), (0.0, 0.0, None));
        let mut total = OhaTotal::default();
        total.add(&run);
        assert_eq!(total.side(true).rps, 0.0);
    }

    #[test]
    fn rounds_add_and_percentiles_are_weighted_by_answers() {
        let round = |ok, p50| OhaRun {
            ok,
            errors: 1,
            first_error: Some(format!("e{ok}")),
            elapsed: Duration::from_secs(1),
            p50,
            p90: p50,
            p99: p50,
            first_byte: None,
        };
        let mut total = OhaTotal::default();
        total.add(&round(300, 1.0));
        total.add(&round(100, 5.0));
        let side = total.side(true);
        assert_eq!((side.requests, side.errors), (400, 2));
        assert_eq!(side.first_error.as_deref(), Some("e300"));
        assert!((side.rps - 200.0).abs() < 1e-9);
        assert!((side.p50 - 2.0).abs() < 1e-9, "{side:?}");
        assert_eq!(side.ttfb_p50, None, "no round reported a first byte");
    }

    #[test]
    fn the_command_line_posts_the_lanes_request_for_the_round() {
        let target = Target {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 4010)),
            path: "/v1/messages".to_owned(),
            headers: vec![(
                http::HeaderName::from_static("x-api-key"),
                http::HeaderValue::from_static("sk-bench"),
            )],
            body: bytes::Bytes::from_static(br#"{"model":"cheap"}"#),
            streaming: false,
            expect_tail: b"}",
            tls: None,
        };
        let args = args(&target, 16, Duration::from_millis(2_500));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(
            args,
            [
                "--no-tui",
                "--output-format",
                "json",
                "--wait-ongoing-requests-after-deadline",
                "-z",
                "2500ms",
                "-c",
                "16",
                "-m",
                "POST",
                "-T",
                "application/json",
                "-H",
                "x-api-key: sk-bench",
                "-d",
                r#"{"model":"cheap"}"#,
                "http://127.0.0.1:4010/v1/messages",
            ]
        );
    }

    #[test]
    fn oha_is_looked_up_on_the_path_given() {
        let dir = std::env::temp_dir().join(format!("bench-oha-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(find_on_path("oha", Some(dir.clone().into_os_string())), None);
        assert_eq!(find_on_path("oha", None), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
