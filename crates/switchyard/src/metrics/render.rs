//! The Prometheus text format (version 0.0.4), written the way `prometheus_client` writes
//! it: counters as `<name>_total`, histogram bounds as Python prints floats (`1.0`), so
//! LiteLLM's dashboards and recording rules match the same series.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::registry::{BUCKETS, Histogram};
use super::{Metrics, RequestCells};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An exposition being written.
#[derive(Default)]
pub struct Text {
    out: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Text {
    pub fn into_string(self) -> String {
        self.out
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines, which name a counter by its
    /// samples (`…_total`), as `prometheus_client` does.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let (kind, suffix) = match kind {
            Kind::Counter => ("counter", "_total"),
            Kind::Gauge => ("gauge", ""),
            Kind::Histogram => ("histogram", ""),
        };
        let help = help.replace('\\', "\\\\");
        let _ = writeln!(self.out, "# HELP {name}{suffix} {help}");
        let _ = writeln!(self.out, "# TYPE {name}{suffix} {kind}");
    }

    /// One sample line. `name` is the sample's full name (`…_total`, `…_bucket`).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_float(&mut self.out, value);
        self.out.push('\n');
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, help: &str, kind: Kind, value: f64) {
        self.family(name, help, kind);
        let sample = if kind == Kind::Counter { format!("{name}_total") } else { name.to_owned() };
        self.sample(&sample, &[], value);
    }
}

fn escape(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Python's float repr for the values Prometheus sees: `1.0`, `0.005`, `+Inf`.
fn push_float(out: &mut String, v: f64) {
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v.fract() == 0.0 && v.abs() < 1e16 {
        let _ = write!(out, "{v:.1}");
    } else {
        let _ = write!(out, "{v}");
    }
}

fn float(v: f64) -> String {
    let mut s = String::new();
    push_float(&mut s, v);
    s
}

// Positions in a request label set (see `Metrics::requests`).
const END_USER: usize = 0;
const KEY: usize = 1;
const ALIAS: usize = 2;
const TEAM: usize = 3;
const TEAM_ALIAS: usize = 4;
const USER: usize = 5;
const REQUESTED: usize = 6;
const MODEL: usize = 7;
const STATUS: usize = 8;
const CLASS: usize = 9;

const REQUEST_NAMES: [&str; 10] = [
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "user",
    "requested_model",
    "model",
    "status_code",
    "exception_class",
];

/// A projection of request label sets onto a family's labels (LiteLLM's order).
struct Projection {
    at: &'static [usize],
    /// Names, when a position is named differently in this family.
    rename: &'static [(usize, &'static str)],
}

impl Projection {
    fn name(&self, i: usize) -> &'static str {
        self.rename.iter().find(|(p, _)| *p == i).map_or(REQUEST_NAMES[i], |(_, n)| n)
    }
}

const TOTAL_REQUESTS: Projection = Projection {
    at: &[END_USER, KEY, ALIAS, REQUESTED, TEAM, TEAM_ALIAS, USER, STATUS],
    rename: &[],
};
const FAILED_REQUESTS: Projection = Projection {
    at: &[END_USER, KEY, ALIAS, REQUESTED, TEAM, TEAM_ALIAS, USER, STATUS, CLASS],
    rename: &[(STATUS, "exception_status")],
};
const SPEND: Projection =
    Projection { at: &[END_USER, KEY, ALIAS, MODEL, TEAM, TEAM_ALIAS, USER], rename: &[] };
const TOKENS: Projection = Projection {
    at: &[END_USER, KEY, ALIAS, MODEL, TEAM, TEAM_ALIAS, USER, REQUESTED],
    rename: &[],
};
const TOTAL_LATENCY: Projection = Projection {
    at: &[END_USER, KEY, ALIAS, REQUESTED, TEAM, TEAM_ALIAS, USER, MODEL],
    rename: &[],
};
const API_LATENCY: Projection = Projection {
    at: &[MODEL, KEY, ALIAS, TEAM, TEAM_ALIAS, REQUESTED, END_USER, USER],
    rename: &[],
};
const BY_MODEL: Projection = Projection { at: &[REQUESTED], rename: &[] };

type Entries = Vec<std::sync::Arc<super::registry::Entry<10, RequestCells>>>;

fn counter(
    text: &mut Text,
    entries: &Entries,
    (name, help): (&str, &str),
    p: &Projection,
    keep: impl Fn(&[Box<str>; 10]) -> bool,
    value: impl Fn(&RequestCells) -> f64,
) {
    text.family(name, help, Kind::Counter);
    let mut sums: BTreeMap<Vec<&str>, f64> = BTreeMap::new();
    for e in entries.iter().filter(|e| keep(&e.labels)) {
        let key: Vec<&str> = p.at.iter().map(|&i| &*e.labels[i]).collect();
        *sums.entry(key).or_default() += value(&e.cells);
    }
    let sample = format!("{name}_total");
    for (values, v) in sums {
        let labels: Vec<(&str, &str)> =
            p.at.iter().zip(values).map(|(&i, v)| (p.name(i), v)).collect();
        text.sample(&sample, &labels, v);
    }
}

fn histogram(
    text: &mut Text,
    entries: &Entries,
    (name, help): (&str, &str),
    p: &Projection,
    which: impl Fn(&RequestCells) -> &Histogram,
) {
    text.family(name, help, Kind::Histogram);
    let mut sums: BTreeMap<Vec<&str>, ([u64; BUCKETS.len() + 1], f64)> = BTreeMap::new();
    for e in entries {
        let (counts, sum) = which(&e.cells).read();
        if counts.iter().all(|c| *c == 0) {
            continue;
        }
        let key: Vec<&str> = p.at.iter().map(|&i| &*e.labels[i]).collect();
        let acc = sums.entry(key).or_insert(([0; BUCKETS.len() + 1], 0.0));
        for (a, c) in acc.0.iter_mut().zip(counts) {
            *a += c;
        }
        acc.1 += sum;
    }
    let (bucket, count, sum_name) =
        (format!("{name}_bucket"), format!("{name}_count"), format!("{name}_sum"));
    let les: Vec<String> =
        BUCKETS.iter().map(|b| float(*b)).chain(std::iter::once("+Inf".to_owned())).collect();
    for (values, (counts, sum)) in sums {
        let mut labels: Vec<(&str, &str)> =
            p.at.iter().zip(values).map(|(&i, v)| (p.name(i), v)).collect();
        let mut cumulative = 0u64;
        for (i, c) in counts.iter().enumerate() {
            cumulative += c;
            labels.push(("le", &les[i]));
            #[allow(clippy::cast_precision_loss)]
            text.sample(&bucket, &labels, cumulative as f64);
            labels.pop();
        }
        #[allow(clippy::cast_precision_loss)]
        text.sample(&count, &labels, cumulative as f64);
        text.sample(&sum_name, &labels, sum);
    }
}

#[allow(clippy::cast_precision_loss)]
fn load(a: &std::sync::atomic::AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

/// Writes every family recorded from request outcomes.
pub fn requests(m: &Metrics, text: &mut Text) {
    let entries = m.requests.entries();
    let all = |_: &[Box<str>; 10]| true;
    counter(
        text,
        &entries,
        (
            "litellm_proxy_total_requests_metric",
            "Requests made to the gateway, by the status the client got",
        ),
        &TOTAL_REQUESTS,
        all,
        |c| load(&c.requests),
    );
    counter(
        text,
        &entries,
        (
            "litellm_proxy_failed_requests_metric",
            "Requests the gateway did not answer with a success",
        ),
        &FAILED_REQUESTS,
        |l| !l[CLASS].is_empty(),
        |c| load(&c.requests),
    );
    counter(
        text,
        &entries,
        ("litellm_spend_metric", "Total spend on LLM requests"),
        &SPEND,
        all,
        |c| load(&c.spend_nanos) / 1e9,
    );
    counter(
        text,
        &entries,
        ("litellm_total_tokens_metric", "Total number of input + output tokens from LLM requests"),
        &TOKENS,
        all,
        |c| load(&c.input_tokens) + load(&c.output_tokens),
    );
    counter(
        text,
        &entries,
        ("litellm_input_tokens_metric", "Total number of input tokens from LLM requests"),
        &TOKENS,
        all,
        |c| load(&c.input_tokens),
    );
    counter(
        text,
        &entries,
        ("litellm_output_tokens_metric", "Total number of output tokens from LLM requests"),
        &TOKENS,
        all,
        |c| load(&c.output_tokens),
    );
    histogram(
        text,
        &entries,
        (
            "litellm_request_total_latency_metric",
            "Latency (seconds) of a request through the gateway, to its last byte",
        ),
        &TOTAL_LATENCY,
        |c| &c.total,
    );
    histogram(
        text,
        &entries,
        (
            "litellm_llm_api_latency_metric",
            "Latency (seconds) of the upstream call that served the request",
        ),
        &API_LATENCY,
        |c| &c.llm_api,
    );
    histogram(
        text,
        &entries,
        (
            "litellm_llm_api_time_to_first_token_metric",
            "Time (seconds) from the serving upstream call's start to a stream's first event",
        ),
        &API_LATENCY,
        |c| &c.first_token,
    );
    histogram(
        text,
        &entries,
        (
            "litellm_overhead_latency_metric",
            "Latency overhead (seconds) added by the gateway: everything but the serving upstream call",
        ),
        &API_LATENCY,
        |c| &c.overhead,
    );
    counter(
        text,
        &entries,
        ("switchyard_attempts", "Upstream attempts made for requests, by requested model"),
        &BY_MODEL,
        all,
        |c| load(&c.attempts),
    );
    counter(
        text,
        &entries,
        (
            "switchyard_retries",
            "Attempts beyond the first within a model group, by requested model",
        ),
        &BY_MODEL,
        all,
        |c| load(&c.retries),
    );
    counter(
        text,
        &entries,
        ("switchyard_fallbacks", "Fallback groups tried, by requested model"),
        &BY_MODEL,
        all,
        |c| load(&c.fallbacks),
    );

    text.family(
        "switchyard_errors",
        "Requests that ended in an error, by error class and diagnosis id",
        Kind::Counter,
    );
    let mut errors: Vec<_> = m.errors.entries();
    errors.sort_by(|a, b| a.labels.cmp(&b.labels));
    for e in errors {
        text.sample(
            "switchyard_errors_total",
            &[("class", &e.labels[0]), ("diagnosis", &e.labels[1])],
            load(&e.cells),
        );
    }

    const DEPLOYMENT_NAMES: [&str; 11] = [
        "litellm_model_name",
        "model_id",
        "api_base",
        "api_provider",
        "requested_model",
        "hashed_api_key",
        "api_key_alias",
        "team",
        "team_alias",
        "exception_status",
        "exception_class",
    ];
    let calls = m.deployment_calls.entries();
    for (name, help, failures, width) in [
        (
            "litellm_deployment_success_responses",
            "Successful upstream calls, by deployment",
            Some(false),
            9,
        ),
        (
            "litellm_deployment_failure_responses",
            "Failed upstream calls, by deployment; exception_status is the upstream's status",
            Some(true),
            11,
        ),
        (
            "litellm_deployment_total_requests",
            "Upstream calls, by deployment, success and failure",
            None,
            9,
        ),
    ] {
        text.family(name, help, Kind::Counter);
        let mut sums: BTreeMap<&[Box<str>], f64> = BTreeMap::new();
        for e in &calls {
            let failed = !e.labels[10].is_empty();
            if failures.is_some_and(|f| f != failed) {
                continue;
            }
            *sums.entry(&e.labels[..width]).or_default() += load(&e.cells);
        }
        let sample = format!("{name}_total");
        for (values, v) in sums {
            let labels: Vec<(&str, &str)> =
                DEPLOYMENT_NAMES.iter().zip(values).map(|(n, v)| (*n, &**v)).collect();
            text.sample(&sample, &labels, v);
        }
    }

    text.single(
        "switchyard_in_flight_requests",
        "Chat requests being served now (a stream until its last event)",
        Kind::Gauge,
        m.in_flight.load(Ordering::Relaxed) as f64,
    );
    text.single(
        "switchyard_queued_requests",
        "Model requests waiting for a slot under general_settings.global_max_parallel_requests",
        Kind::Gauge,
        m.queued.load(Ordering::Relaxed) as f64,
    );
    text.single(
        "switchyard_shed_requests",
        "Model requests refused because the gateway was at global_max_parallel_requests and \
         the wait queue was full or the wait ran out (LIM-04)",
        Kind::Counter,
        load(&m.shed),
    );
    text.single(
        "switchyard_cache_hits",
        "Response cache lookups answered from the cache",
        Kind::Counter,
        load(&m.cache_hits),
    );
    text.single(
        "switchyard_cache_misses",
        "Response cache lookups that went upstream",
        Kind::Counter,
        load(&m.cache_misses),
    );
    text.family("switchyard_config_reloads", "Config reloads, by result (ok: applied; rejected: the config was invalid and nothing changed)", Kind::Counter);
    text.sample("switchyard_config_reloads_total", &[("result", "ok")], load(&m.reloads_ok));
    text.sample(
        "switchyard_config_reloads_total",
        &[("result", "rejected")],
        load(&m.reloads_rejected),
    );
    text.single(
        "switchyard_metric_series",
        "Label sets held by the request metrics (bounded)",
        Kind::Gauge,
        m.series() as f64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_prometheus_client_writes_them() {
        assert_eq!(float(1.0), "1.0");
        assert_eq!(float(0.005), "0.005");
        assert_eq!(float(0.00625), "0.00625");
        assert_eq!(float(120.0), "120.0");
        assert_eq!(float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut t = Text::default();
        t.sample("m", &[("a", "x\"y\\z\nw")], 2.0);
        assert_eq!(t.into_string(), "m{a=\"x\\\"y\\\\z\\nw\"} 2.0\n");
    }
}
