//! Prometheus metrics in LiteLLM's names and labels, and Switchyard's own.
//!
//! One registry per process ([`global`]): request outcomes are recorded into it once per
//! request (`server/ledger_hook.rs`), everything that is state — deployments, cooldowns,
//! budgets left, the ledger's queue, the stores' health — is read at scrape time from the
//! objects that own it (`server/metrics.rs` renders both with [`render`]).
//!
//! Label values are bounded by construction: models are the config's aliases and
//! deployments (anything else is `other`), keys, teams and users come from the key tables,
//! the end user only when the config asks for it, and every label set beyond
//! [`MAX_SERIES`] folds into one overflow series. Recording a request that was seen before
//! is one hash, one read lock and a few atomic adds: nothing is allocated.

mod registry;
pub mod render;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use registry::{Family, Histogram};

pub use registry::MAX_SERIES;

/// The value of a model label that is not the config's, so clients cannot grow the series.
pub const OTHER: &str = "other";

/// Who made a request and for what: the labels LiteLLM puts on its request metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Who<'a> {
    pub end_user: &'a str,
    pub hashed_api_key: &'a str,
    pub api_key_alias: &'a str,
    pub team: &'a str,
    pub team_alias: &'a str,
    pub user: &'a str,
    pub requested_model: &'a str,
    /// The model that served (`litellm_params.model` without its provider).
    pub model: &'a str,
}

impl Who<'_> {
    fn values(&self) -> [&str; 8] {
        [
            self.end_user,
            self.hashed_api_key,
            self.api_key_alias,
            self.team,
            self.team_alias,
            self.user,
            self.requested_model,
            self.model,
        ]
    }
}

/// A deployment as LiteLLM labels it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deployment<'a> {
    pub litellm_model_name: &'a str,
    pub model_id: &'a str,
    pub api_base: &'a str,
    pub api_provider: &'a str,
}

/// How one request ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    /// The HTTP status the client got.
    pub status: u16,
    /// The error class (`rate_limited` …); empty when served.
    pub class: &'static str,
    /// The diagnosis id (`GW-05` …); empty when none.
    pub diagnosis: &'static str,
    /// USD, in nano-dollars; `None` when unknown (never counted as 0).
    pub spend_nanos: Option<u64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// From arrival to the last byte of the answer.
    pub total: Duration,
    /// The serving attempt, from its start to the end of its answer.
    pub llm_api: Option<Duration>,
    /// The serving attempt, from its start to a stream's first event.
    pub first_token: Option<Duration>,
    /// Attempts made (1 for a first-try success).
    pub attempts: u32,
    pub retries: u32,
    pub fallbacks: u32,
}

/// One label set's request counters (cells share the labels; families project them).
#[derive(Default)]
pub(crate) struct RequestCells {
    requests: AtomicU64,
    spend_nanos: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    fallbacks: AtomicU64,
    total: Histogram,
    llm_api: Histogram,
    first_token: Histogram,
    overhead: Histogram,
}

/// The process's metrics registry.
pub struct Metrics {
    /// Labels: [`Who`], then `status_code`, `exception_class`.
    pub(crate) requests: Family<10, RequestCells>,
    /// Labels: [`Deployment`], `requested_model`, `hashed_api_key`, `api_key_alias`, `team`,
    /// `team_alias`, `exception_status`, `exception_class` (empty: a success).
    pub(crate) deployment_calls: Family<11, AtomicU64>,
    /// Labels: `class`, `diagnosis`.
    pub(crate) errors: Family<2, AtomicU64>,
    pub(crate) in_flight: AtomicI64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) cache_misses: AtomicU64,
    pub(crate) reloads_ok: AtomicU64,
    pub(crate) reloads_rejected: AtomicU64,
    /// Requests waiting for a slot under `global_max_parallel_requests`.
    pub(crate) queued: AtomicI64,
    /// Requests refused by load shedding (LIM-04).
    pub(crate) shed: AtomicU64,
}

static GLOBAL: OnceLock<Metrics> = OnceLock::new();

/// The process's one registry.
pub fn global() -> &'static Metrics {
    GLOBAL.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Self {
        Self {
            requests: Family::new(),
            deployment_calls: Family::new(),
            errors: Family::new(),
            in_flight: AtomicI64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            reloads_ok: AtomicU64::new(0),
            reloads_rejected: AtomicU64::new(0),
            queued: AtomicI64::new(0),
            shed: AtomicU64::new(0),
        }
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn begin(&'static self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// A request starts or stops waiting for a slot (`delta` is 1 or -1).
    pub fn queued(&self, delta: i64) {
        self.queued.fetch_add(delta, Ordering::Relaxed);
    }

    /// A request was refused by load shedding.
    pub fn shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one request's outcome (once per request, when its answer is complete).
    pub fn request(&self, who: &Who<'_>, outcome: &Outcome) {
        let v = who.values();
        let status = status_str(outcome.status);
        let labels = [v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], status, outcome.class];
        self.requests.with(&labels, |c| {
            c.requests.fetch_add(1, Ordering::Relaxed);
            if let Some(n) = outcome.spend_nanos {
                c.spend_nanos.fetch_add(n, Ordering::Relaxed);
            }
            c.input_tokens.fetch_add(outcome.input_tokens, Ordering::Relaxed);
            c.output_tokens.fetch_add(outcome.output_tokens, Ordering::Relaxed);
            c.attempts.fetch_add(u64::from(outcome.attempts), Ordering::Relaxed);
            c.retries.fetch_add(u64::from(outcome.retries), Ordering::Relaxed);
            c.fallbacks.fetch_add(u64::from(outcome.fallbacks), Ordering::Relaxed);
            c.total.observe(outcome.total);
            if let Some(api) = outcome.llm_api {
                c.llm_api.observe(api);
                c.overhead.observe(outcome.total.saturating_sub(api));
            }
            if let Some(first) = outcome.first_token {
                c.first_token.observe(first);
            }
        });
        if !outcome.class.is_empty() {
            self.errors.with(&[outcome.class, outcome.diagnosis], |c| {
                c.fetch_add(1, Ordering::Relaxed);
            });
        }
    }

    /// Records one call to a deployment: a success (`class` empty) or a failure with the
    /// upstream's status and the error class.
    pub fn deployment_call(
        &self,
        d: &Deployment<'_>,
        who: &Who<'_>,
        status: u16,
        class: &'static str,
    ) {
        let status = if class.is_empty() { "" } else { status_str(status) };
        let labels = [
            d.litellm_model_name,
            d.model_id,
            d.api_base,
            d.api_provider,
            who.requested_model,
            who.hashed_api_key,
            who.api_key_alias,
            who.team,
            who.team_alias,
            status,
            class,
        ];
        self.deployment_calls.with(&labels, |c| {
            c.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// A response cache lookup answered from the cache.
    pub fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// A response cache lookup that went upstream.
    pub fn cache_miss(&self) {
        self.cache_misses.fetch_add(1, Ordering::Relaxed);
    }

    /// A config reload was applied (`true`) or refused.
    pub fn reload(&self, ok: bool) {
        let counter = if ok { &self.reloads_ok } else { &self.reloads_rejected };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Label sets held, over every request family (what the cardinality bound caps).
    pub fn series(&self) -> usize {
        self.requests.len() + self.deployment_calls.len() + self.errors.len()
    }
}

/// See [`Metrics::begin`].
pub struct InFlight(&'static Metrics);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A status code as a label, without allocating: 100–599 are printed once per process,
/// anything else is `other`.
fn status_str(status: u16) -> &'static str {
    static CODES: OnceLock<Vec<String>> = OnceLock::new();
    let codes = CODES.get_or_init(|| (100..600).map(|c: u16| c.to_string()).collect());
    match status {
        100..=599 => &codes[usize::from(status - 100)],
        _ => OTHER,
    }
}
