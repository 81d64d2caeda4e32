//! The benchmark's results: a Markdown table for people (and the README), JSON for comparing
//! commits, and issue 8's targets checked against the same run's floor.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::load::Outcome;

/// One side of a row (the floor or the gateway), in milliseconds.
#[derive(Clone, Debug, Default)]
pub struct Side {
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub rps: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub ttfb_p50: Option<f64>,
    pub ttfb_p99: Option<f64>,
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

impl Side {
    pub fn new(o: &Outcome, streaming: bool) -> Self {
        let ttfb =
            |q: f64| (streaming && !o.ttfb.is_empty()).then(|| ms(o.ttfb.value_at_quantile(q)));
        Self {
            requests: o.requests,
            errors: o.errors,
            first_error: o.first_error.clone(),
            rps: o.rps(),
            p50: ms(o.latency.value_at_quantile(0.50)),
            p90: ms(o.latency.value_at_quantile(0.90)),
            p99: ms(o.latency.value_at_quantile(0.99)),
            ttfb_p50: ttfb(0.50),
            ttfb_p99: ttfb(0.99),
        }
    }

    fn json(&self) -> Value {
        json!({
            "requests": self.requests, "errors": self.errors, "first_error": self.first_error,
            "rps": round(self.rps, 1), "p50_ms": round(self.p50, 4), "p90_ms": round(self.p90, 4),
            "p99_ms": round(self.p99, 4),
            "ttfb_p50_ms": self.ttfb_p50.map(|v| round(v, 4)),
            "ttfb_p99_ms": self.ttfb_p99.map(|v| round(v, 4)),
        })
    }
}

#[derive(Clone, Debug)]
pub struct Row {
    pub streaming: bool,
    pub concurrency: usize,
    pub floor: Side,
    pub gateway: Side,
    /// The gateway's peak RSS during its rounds of this row, bytes.
    pub gateway_peak_rss: u64,
    /// CPU seconds (user + system) the mock used in the floor rounds of this row, and the
    /// gateway in its rounds. Per request, they are steadier than req/s on a busy machine.
    pub floor_cpu: f64,
    pub gateway_cpu: f64,
}

impl Row {
    pub fn mode(&self) -> &'static str {
        if self.streaming { "stream" } else { "json" }
    }

    pub fn ratio(&self) -> f64 {
        if self.floor.rps > 0.0 { self.gateway.rps / self.floor.rps } else { 0.0 }
    }

    pub fn overhead_p50(&self) -> f64 {
        self.gateway.p50 - self.floor.p50
    }

    pub fn overhead_p99(&self) -> f64 {
        self.gateway.p99 - self.floor.p99
    }

    /// Microseconds of mock CPU per floor request (all the floor's server-side work).
    pub fn floor_cpu_us(&self) -> f64 {
        per_request_us(self.floor_cpu, self.floor.requests)
    }

    /// Microseconds of gateway CPU per request (its own work only: the mock's is apart).
    pub fn gateway_cpu_us(&self) -> f64 {
        per_request_us(self.gateway_cpu, self.gateway.requests)
    }

    pub fn ttfb_overhead_p50(&self) -> Option<f64> {
        Some(self.gateway.ttfb_p50? - self.floor.ttfb_p50?)
    }
}

/// CPU seconds over requests, in µs (the CPU of the warm-up is prorated out by the caller).
fn per_request_us(seconds: f64, requests: u64) -> f64 {
    if requests == 0 { 0.0 } else { seconds * 1e6 / requests as f64 }
}

#[derive(Clone, Debug, Default)]
pub struct Machine {
    pub cores: usize,
    pub memory: String,
    pub cpu: String,
    pub load_before: String,
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim()))
            .unwrap_or("unknown")
            .to_owned();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or_else(|| "unknown".to_owned(), |kb| format!("{:.1} GiB", kb as f64 / 1048576.0));
        Self {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory,
            cpu,
            load_before: loadavg(),
        }
    }
}

/// The 1, 5 and 15 minute load averages: how busy the machine was (other builds).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub struct Report {
    pub command: String,
    pub machine: Machine,
    pub load_after: String,
    pub settings: String,
    pub rows: Vec<Row>,
    /// The gateway's RSS once ready, before any request.
    pub idle_rss: u64,
    /// Its RSS a second after the last round.
    pub idle_rss_after: u64,
    /// Process start → first 200 from /health/readiness, 20 deployments, ms per trial.
    pub ready_ms: Vec<f64>,
}

pub struct Target {
    pub name: &'static str,
    pub value: Option<f64>,
    pub limit: f64,
    /// `true`: the value must be at least the limit; `false`: at most.
    pub at_least: bool,
    pub unit: &'static str,
}

impl Target {
    pub fn met(&self) -> bool {
        self.value.is_some_and(|v| if self.at_least { v >= self.limit } else { v <= self.limit })
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

impl Report {
    fn row(&self, streaming: bool, concurrency: usize) -> Option<&Row> {
        self.rows.iter().find(|r| r.streaming == streaming && r.concurrency == concurrency)
    }

    pub fn targets(&self) -> Vec<Target> {
        let errors: u64 = self.rows.iter().map(|r| r.floor.errors + r.gateway.errors).sum();
        let peak_256 =
            self.rows.iter().filter(|r| r.concurrency == 256).map(|r| r.gateway_peak_rss).max();
        vec![
            Target {
                name: "throughput at 64 clients (json), share of the floor",
                value: self.row(false, 64).map(Row::ratio),
                limit: 0.35,
                at_least: true,
                unit: "×",
            },
            Target {
                name: "overhead p50 at 1 client (json)",
                value: self.row(false, 1).map(Row::overhead_p50),
                limit: 0.1,
                at_least: false,
                unit: "ms",
            },
            Target {
                name: "overhead p99 at 64 clients (json)",
                value: self.row(false, 64).map(Row::overhead_p99),
                limit: 1.0,
                at_least: false,
                unit: "ms",
            },
            Target {
                name: "stream TTFB p50 over the floor's at 16 clients",
                value: self.row(true, 16).and_then(Row::ttfb_overhead_p50),
                limit: 1.0,
                at_least: false,
                unit: "ms",
            },
            Target {
                name: "peak RSS at 256 clients",
                value: peak_256.map(mb),
                limit: 40.0,
                at_least: false,
                unit: "MB",
            },
            Target {
                name: "RSS idle",
                value: Some(mb(self.idle_rss)),
                limit: 15.0,
                at_least: false,
                unit: "MB",
            },
            Target {
                name: "start → ready, 20 deployments (median)",
                value: median(&self.ready_ms),
                limit: 50.0,
                at_least: false,
                unit: "ms",
            },
            Target {
                name: "errors, every round",
                value: Some(errors as f64),
                limit: 0.0,
                at_least: false,
                unit: "",
            },
        ]
    }

    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(out, "`{}`", self.command);
        let _ = writeln!(
            out,
            "\nMachine: {} cores ({}), {} RAM; load average {} before, {} after. {}\n",
            m.cores, m.cpu, m.memory, m.load_before, self.load_after, self.settings
        );
        out.push_str(
            "| mode | clients | floor req/s | gateway req/s | ratio | floor p50 / p90 / p99 ms \
             | gateway p50 / p90 / p99 ms | overhead p50 / p99 ms | TTFB p50 floor / gateway ms \
             | CPU µs/req mock / gateway | errors | gateway peak RSS |\n",
        );
        out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for r in &self.rows {
            let ttfb = match (r.floor.ttfb_p50, r.gateway.ttfb_p50) {
                (Some(f), Some(g)) => format!("{f:.3} / {g:.3}"),
                _ => "—".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.2} | {:.3} / {:.3} / {:.3} | {:.3} / {:.3} / {:.3} \
                 | {:+.3} / {:+.3} | {} | {:.1} / {:.1} | {} | {:.1} MB |",
                r.mode(),
                r.concurrency,
                r.floor.rps,
                r.gateway.rps,
                r.ratio(),
                r.floor.p50,
                r.floor.p90,
                r.floor.p99,
                r.gateway.p50,
                r.gateway.p90,
                r.gateway.p99,
                r.overhead_p50(),
                r.overhead_p99(),
                ttfb,
                r.floor_cpu_us(),
                r.gateway_cpu_us(),
                r.floor.errors + r.gateway.errors,
                mb(r.gateway_peak_rss),
            );
        }
        let ready = self.ready_ms.iter().map(|v| format!("{v:.1}")).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            out,
            "\nGateway RSS idle {:.1} MB (after the load: {:.1} MB). Start → ready with 20 \
             deployments: {ready} ms.\n",
            mb(self.idle_rss),
            mb(self.idle_rss_after)
        );
        out.push_str("| target (issue 8) | measured | limit | met |\n|---|--:|--:|---|\n");
        for t in self.targets() {
            let value = t.value.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"));
            let limit = format!("{} {}{}", if t.at_least { "≥" } else { "≤" }, t.limit, t.unit);
            let _ = writeln!(
                out,
                "| {} | {value}{} | {limit} | {} |",
                t.name,
                t.unit,
                if t.met() { "yes" } else { "**no**" }
            );
        }
        for r in &self.rows {
            for (side, s) in [("floor", &r.floor), ("gateway", &r.gateway)] {
                if let Some(e) = &s.first_error {
                    let _ = writeln!(
                        out,
                        "\nfirst error, {} {} clients, {side}: {e}",
                        r.mode(),
                        r.concurrency
                    );
                }
            }
        }
        out
    }

    pub fn json(&self) -> Value {
        let m = &self.machine;
        json!({
            "command": self.command,
            "machine": {"cores": m.cores, "cpu": m.cpu, "memory": m.memory,
                        "load_before": m.load_before, "load_after": self.load_after},
            "settings": self.settings,
            "rows": self.rows.iter().map(|r| json!({
                "mode": r.mode(),
                "concurrency": r.concurrency,
                "floor": r.floor.json(),
                "gateway": r.gateway.json(),
                "ratio": round(r.ratio(), 4),
                "overhead_p50_ms": round(r.overhead_p50(), 4),
                "overhead_p99_ms": round(r.overhead_p99(), 4),
                "ttfb_overhead_p50_ms": r.ttfb_overhead_p50().map(|v| round(v, 4)),
                "gateway_peak_rss_mb": round(mb(r.gateway_peak_rss), 2),
                "floor_mock_cpu_us_per_request": round(r.floor_cpu_us(), 2),
                "gateway_cpu_us_per_request": round(r.gateway_cpu_us(), 2),
            })).collect::<Vec<_>>(),
            "gateway_idle_rss_mb": round(mb(self.idle_rss), 2),
            "gateway_idle_rss_after_mb": round(mb(self.idle_rss_after), 2),
            "ready_ms": {"trials": self.ready_ms, "median": median(&self.ready_ms)},
            "targets": self.targets().iter().map(|t| json!({
                "name": t.name, "value": t.value.map(|v| round(v, 4)), "limit": t.limit,
                "at_least": t.at_least, "unit": t.unit, "met": t.met(),
            })).collect::<Vec<_>>(),
        })
    }
}
