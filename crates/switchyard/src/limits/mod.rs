//! The admission engine: before any upstream call, one step checks the rate limits and
//! reserves the request's maximum cost against every budget that applies; after the call the
//! reservation is settled to the actual cost (released on failure, and when the request is
//! dropped). Scopes are generic — global, model alias, provider, deployment, end user, and
//! the key, team and user scopes a key record brings — so a new kind of limit is a new
//! [`Scope`] in a [`Plan`], not new engine code.
//!
//! Counting happens in a [`Backend`]: in this process ([`memory`]) or in Redis ([`redis`],
//! one Lua script per admission and per settlement, shared by every replica). Time comes
//! from a [`Clock`] so tests cross period boundaries without sleeping.

mod backend;
mod caller;
mod check;
mod clock;
mod config;
mod memory;
mod period;
mod redis;
mod refusal;
mod reservation;
mod seed;

pub use crate::config::RedisConfig as RedisSettings;
pub use backend::{Backend, Health, Unavailable};
pub use caller::{Caller, ModelLimit, dec as caller_dec};
pub use check::Nanos;
pub use clock::{Clock, ManualClock, MonotonicClock, SystemClock};
pub use config::{ConfigLimits, DEFAULT_MAX_OUTPUT, max_cost, max_output, provider_name};
pub use period::{Period, Window};
pub use refusal::{RateHeaders, all_skipped, rate_limit_headers};
pub use reservation::Reservation;
pub use seed::seed_from_ledger;

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use backend::{HealthJson, InProcess};
use check::{Check, CheckKind, Verdict};
use memory::Memory;
use reservation::Held;

/// Who or what a limit applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every request through the gateway.
    Global,
    /// A model alias (`model_name`).
    Alias(String),
    /// An upstream provider (`anthropic`, `bedrock`, `openai` …).
    Provider(String),
    /// One deployment (`model_info.id`).
    Deployment(String),
    /// A virtual key, by its hash.
    Key(String),
    /// A virtual key on one model alias.
    KeyModel(String, String),
    Team(String),
    User(String),
    /// The client's own end user (`user`, Anthropic `metadata.user_id`).
    EndUser(String),
}

impl Scope {
    /// The counter name part; escaped so a name with `:` cannot collide with another.
    pub fn key(&self) -> String {
        // Copied only when there is something to escape (ids and key hashes never have).
        fn esc(s: &str) -> std::borrow::Cow<'_, str> {
            if s.contains(['%', ':']) {
                s.replace('%', "%25").replace(':', "%3A").into()
            } else {
                s.into()
            }
        }
        match self {
            Scope::Global => "global".to_owned(),
            Scope::Alias(a) => format!("alias:{}", esc(a)),
            Scope::Provider(p) => format!("provider:{}", esc(p)),
            Scope::Deployment(d) => format!("deployment:{}", esc(d)),
            Scope::Key(k) => format!("key:{}", esc(k)),
            Scope::KeyModel(k, m) => format!("keymodel:{}:{}", esc(k), esc(m)),
            Scope::Team(t) => format!("team:{}", esc(t)),
            Scope::User(u) => format!("user:{}", esc(u)),
            Scope::EndUser(u) => format!("enduser:{}", esc(u)),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("the gateway"),
            Scope::Alias(a) => write!(f, "model `{a}`"),
            Scope::Provider(p) => write!(f, "provider `{p}`"),
            Scope::Deployment(d) => write!(f, "deployment `{d}`"),
            Scope::Key(k) => write!(f, "key `{}…`", k.get(..8).unwrap_or(k)),
            Scope::KeyModel(k, m) => write!(f, "key `{}…` on model `{m}`", k.get(..8).unwrap_or(k)),
            Scope::Team(t) => write!(f, "team `{t}`"),
            Scope::User(u) => write!(f, "user `{u}`"),
            Scope::EndUser(u) => write!(f, "end user `{u}`"),
        }
    }
}

/// What happens when a limit is reached: the request is refused, or (for a provider or a
/// deployment) that deployment is skipped and the router tries the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExceed {
    Refuse,
    Skip,
}

/// A spend limit over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub scope: Scope,
    /// USD.
    pub limit: Decimal,
    pub period: Period,
    /// Crossing it is logged once per period and counted, never refused.
    pub soft: Option<Decimal>,
    /// The setting that defines it, for messages (`litellm_settings.max_budget`).
    pub source: String,
    pub on_exceed: OnExceed,
}

/// Request and token rates per minute, and requests in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub scope: Scope,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_parallel: Option<u64>,
    pub source: String,
    pub on_exceed: OnExceed,
}

/// Everything one request is admitted against.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub budgets: Vec<Budget>,
    pub rates: Vec<RateLimit>,
    /// The most the request can cost (USD): reserved against every budget. `None` when the
    /// price is unknown: nothing is reserved, and nothing is spent either.
    pub max_cost: Option<Decimal>,
    /// Estimated input tokens plus the most output tokens it may produce: reserved
    /// against `tpm` limits and settled to the actual count.
    pub tokens: u64,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty() && self.rates.is_empty()
    }
}

/// A limit was reached.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub scope: Scope,
    pub source: String,
    pub on_exceed: OnExceed,
    pub what: Reached,
}

#[derive(Debug, Clone)]
pub enum Reached {
    /// A budget: spent (settled) and reserved by requests in flight, USD.
    Budget {
        spent: Decimal,
        reserved: Decimal,
        limit: Decimal,
        period: Period,
        resets_at: Option<DateTime<Utc>>,
    },
    Requests {
        limit: u64,
        reset_in: i64,
    },
    Tokens {
        limit: u64,
        reset_in: i64,
    },
    Parallel {
        limit: u64,
    },
    /// Redis is unreachable and `fail_closed` is set.
    Unavailable(Unavailable),
}

/// The engine: one per process, kept across config reloads.
pub struct Limits {
    backend: Arc<dyn Backend>,
    clock: Arc<dyn Clock>,
    /// Budget windows whose soft limit was crossed (logged once each).
    soft_seen: Mutex<HashSet<String>>,
    soft_crossings: AtomicU64,
}

/// Where a constraint of the plan sits among the checks.
#[derive(Clone, Copy)]
enum Origin {
    Budget(usize),
    Rate(usize),
}

impl Limits {
    /// In-process counters on a monotonic clock (tokio's, so paused-clock tests move it).
    pub fn in_process() -> Arc<Self> {
        Self::with_backend(Arc::new(InProcess(Memory::default())), Arc::new(MonotonicClock::new()))
    }

    pub fn in_process_with_clock(clock: Arc<dyn Clock>) -> Arc<Self> {
        Self::with_backend(Arc::new(InProcess(Memory::default())), clock)
    }

    /// Counters in Redis at `url`, under `prefix`, connecting on first use.
    pub fn redis(settings: &RedisSettings, clock: Arc<dyn Clock>) -> Result<Arc<Self>, String> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("Redis needs the async runtime, which is not running yet".to_owned());
        }
        let backend = redis::RedisBackend::new(
            settings.url.expose(),
            settings.place.clone(),
            settings.prefix.clone(),
            settings.fail_closed,
        )?;
        Ok(Self::with_backend(Arc::new(backend), clock))
    }

    /// The engine a config asks for: Redis when it names one, else in process.
    pub fn for_config(config: &crate::config::Config) -> Arc<Self> {
        match &config.general.redis {
            Some(settings) => match Self::redis(settings, Arc::new(SystemClock)) {
                Ok(limits) => limits,
                Err(error) => {
                    tracing::warn!(redis = %settings.place, %error, "LIM-03: Redis cannot be used; budgets and rate limits are counted in this process");
                    Self::in_process()
                }
            },
            None => Self::in_process(),
        }
    }

    fn with_backend(backend: Arc<dyn Backend>, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            backend,
            clock,
            soft_seen: Mutex::new(HashSet::new()),
            soft_crossings: AtomicU64::new(0),
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// How many times a soft budget was crossed (once per budget and period).
    pub fn soft_budget_crossings(&self) -> u64 {
        self.soft_crossings.load(Ordering::Relaxed)
    }

    pub fn health(&self) -> Health {
        self.backend.health()
    }

    /// `/health`'s `limits` object.
    pub fn health_json(&self) -> serde_json::Value {
        let h = self.health();
        let json = HealthJson {
            backend: h.backend,
            state: if h.degraded.is_some() { "degraded" } else { "ok" },
            redis: h.place.as_deref(),
            since: h.degraded.as_ref().map(|(s, _)| s.to_rfc3339()),
            error: h.degraded.as_ref().map(|(_, e)| e.as_str()),
            fail_closed: h.fail_closed,
            soft_budget_crossings: self.soft_budget_crossings(),
        };
        serde_json::to_value(json).unwrap_or(serde_json::Value::Null)
    }

    fn checks(&self, plan: &Plan, now: DateTime<Utc>) -> (Vec<Check>, Vec<Origin>) {
        let reserve = plan.max_cost.map_or(0, to_nanos);
        let minute = now.timestamp().div_euclid(60) * 60;
        let tokens = i64::try_from(plan.tokens).unwrap_or(i64::MAX);
        let mut checks = Vec::new();
        let mut origins = Vec::new();
        // Refusing constraints first: the first that fails is the one reported, and a
        // refused request must say so even when a deployment is also at its limit.
        for pass in [OnExceed::Refuse, OnExceed::Skip] {
            for (i, b) in plan.budgets.iter().enumerate().filter(|(_, b)| b.on_exceed == pass) {
                let w = b.period.window(now);
                checks.push(Check {
                    kind: CheckKind::Budget,
                    key: format!("b:{}:{}:{}", b.scope.key(), b.period.tag(), w.start.timestamp()),
                    limit: to_nanos(b.limit),
                    amount: reserve,
                    ttl: budget_ttl(&w, now),
                });
                origins.push(Origin::Budget(i));
            }
            for (i, r) in plan.rates.iter().enumerate().filter(|(_, r)| r.on_exceed == pass) {
                let scope = r.scope.key();
                let mut push = |kind, key: String, limit: u64, amount: i64, ttl: i64| {
                    checks.push(Check {
                        kind,
                        key,
                        limit: i64::try_from(limit).unwrap_or(i64::MAX),
                        amount,
                        ttl,
                    });
                    origins.push(Origin::Rate(i));
                };
                if let Some(rpm) = r.rpm {
                    push(CheckKind::Requests, format!("q:{scope}:{minute}"), rpm, 1, 120);
                }
                if let Some(tpm) = r.tpm {
                    push(CheckKind::Tokens, format!("t:{scope}:{minute}"), tpm, tokens, 120);
                }
                if let Some(n) = r.max_parallel {
                    push(CheckKind::Parallel, format!("p:{scope}"), n, 1, 3600);
                }
            }
        }
        (checks, origins)
    }

    /// Checks every rate limit and reserves the plan's maximum cost against every budget,
    /// atomically: admitted against all, or refused with the first limit reached.
    pub async fn admit(self: &Arc<Self>, plan: &Plan) -> Result<Reservation, Refusal> {
        if plan.is_empty() {
            return Ok(Reservation::none());
        }
        let now = self.clock.now();
        let (checks, origins) = self.checks(plan, now);
        let verdict = self.backend.admit(&checks, now.timestamp()).await;
        let (verdict, local) = match verdict {
            Ok(v) => v,
            Err(unavailable) => {
                let first = &plan.budgets.first().map(|b| (b.scope.clone(), b.source.clone()));
                let (scope, source) = first.clone().unwrap_or((Scope::Global, String::new()));
                return Err(Refusal {
                    scope,
                    source,
                    on_exceed: OnExceed::Refuse,
                    what: Reached::Unavailable(unavailable),
                });
            }
        };
        match verdict {
            Verdict::Refused { index, used, reserved } => {
                Err(self.refusal(plan, &checks[index], origins[index], used, reserved, now))
            }
            Verdict::Admitted { used } => {
                self.note_soft(plan, &checks, &origins, &used);
                let headers = RateHeaders::from_checks(&checks, &used, now);
                Ok(Reservation {
                    held: Some(Held {
                        engine: self.clone(),
                        checks,
                        local,
                        reserved: plan.max_cost.map_or(0, to_nanos),
                        tokens: i64::try_from(plan.tokens).unwrap_or(i64::MAX),
                    }),
                    headers,
                })
            }
        }
    }

    fn refusal(
        &self,
        plan: &Plan,
        check: &Check,
        origin: Origin,
        used: i64,
        reserved: i64,
        now: DateTime<Utc>,
    ) -> Refusal {
        let reset_in = 60 - now.timestamp().rem_euclid(60);
        match origin {
            Origin::Budget(i) => {
                let b = &plan.budgets[i];
                Refusal {
                    scope: b.scope.clone(),
                    source: b.source.clone(),
                    on_exceed: b.on_exceed,
                    what: Reached::Budget {
                        spent: from_nanos(used),
                        reserved: from_nanos(reserved),
                        limit: b.limit,
                        period: b.period,
                        resets_at: b.period.window(now).end,
                    },
                }
            }
            Origin::Rate(i) => {
                let r = &plan.rates[i];
                let limit = u64::try_from(check.limit).unwrap_or(0);
                let what = match check.kind {
                    CheckKind::Requests => Reached::Requests { limit, reset_in },
                    CheckKind::Tokens => Reached::Tokens { limit, reset_in },
                    CheckKind::Parallel | CheckKind::Budget => Reached::Parallel { limit },
                };
                Refusal {
                    scope: r.scope.clone(),
                    source: r.source.clone(),
                    on_exceed: r.on_exceed,
                    what,
                }
            }
        }
    }

    fn note_soft(&self, plan: &Plan, checks: &[Check], origins: &[Origin], used: &[(i64, i64)]) {
        for ((check, origin), (spent, _)) in checks.iter().zip(origins).zip(used) {
            let Origin::Budget(i) = origin else { continue };
            let b = &plan.budgets[*i];
            let Some(soft) = b.soft else { continue };
            if from_nanos(*spent) < soft {
                continue;
            }
            let mut seen = self.soft_seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.insert(check.key.clone()) {
                self.soft_crossings.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    scope = %b.scope,
                    spent = %from_nanos(*spent),
                    soft_budget = %soft,
                    max_budget = %b.limit,
                    "BUD-02: soft budget crossed for this period"
                );
            }
        }
    }

    /// What a budget's current period has spent (settled) and what requests in flight
    /// reserve, USD — for key and team info, metrics and `/health`.
    pub async fn spent(&self, budget: &Budget) -> (Decimal, Decimal) {
        let now = self.clock.now();
        let w = budget.period.window(now);
        let key =
            format!("b:{}:{}:{}", budget.scope.key(), budget.period.tag(), w.start.timestamp());
        let (spent, reserved) = self.backend.read(&key, now.timestamp()).await;
        (from_nanos(spent), from_nanos(reserved))
    }

    /// Sets a budget's current-period spend (from the ledger at start) unless the counter
    /// already has one (another replica seeded it, or Redis kept it).
    pub async fn seed(&self, budget: &Budget, spent: Decimal) {
        let now = self.clock.now();
        let w = budget.period.window(now);
        let key =
            format!("b:{}:{}:{}", budget.scope.key(), budget.period.tag(), w.start.timestamp());
        self.backend.seed(&key, to_nanos(spent), budget_ttl(&w, now), now.timestamp()).await;
    }
}

fn budget_ttl(w: &Window, now: DateTime<Utc>) -> i64 {
    // An hour past the window's end: a request admitted just before the end still settles
    // into the window it started in.
    w.seconds_left(now).map_or(10 * 365 * 86_400, |s| s + 3600)
}

/// USD → nano-dollars, rounded up (a reservation never falls short).
pub fn to_nanos(usd: Decimal) -> Nanos {
    (usd * Decimal::from(1_000_000_000)).ceil().to_i64().unwrap_or(i64::MAX)
}

pub fn from_nanos(n: Nanos) -> Decimal {
    (Decimal::from(n) / Decimal::from(1_000_000_000)).normalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: &str, soft: Option<&str>) -> Budget {
        Budget {
            scope: Scope::Team("t1".into()),
            limit: limit.parse().unwrap(),
            period: Period::Day,
            soft: soft.map(|s| s.parse().unwrap()),
            source: "team t1 max_budget".into(),
            on_exceed: OnExceed::Refuse,
        }
    }

    fn plan(b: Budget, cost: &str) -> Plan {
        Plan { budgets: vec![b], rates: vec![], max_cost: Some(cost.parse().unwrap()), tokens: 10 }
    }

    #[tokio::test]
    async fn a_soft_budget_is_noted_once_per_period_and_never_refuses() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let limits = Limits::in_process_with_clock(clock.clone());
        let p = plan(budget("1", Some("0.25")), "0.1");
        for _ in 0..5 {
            let r = limits.admit(&p).await.unwrap();
            r.settle(None);
            tokio::task::yield_now().await;
        }
        assert_eq!(limits.soft_budget_crossings(), 1, "crossed once, noted once");
        let spent = limits.spent(&p.budgets[0]).await;
        assert_eq!(spent, ("0.5".parse().unwrap(), Decimal::ZERO), "five settled at $0.1");
        clock.advance(chrono::Duration::days(1));
        for _ in 0..4 {
            limits.admit(&p).await.unwrap().settle(None);
            tokio::task::yield_now().await;
        }
        assert_eq!(limits.soft_budget_crossings(), 2, "a new period notes it again");
    }

    #[tokio::test]
    async fn a_refusal_names_spent_reserved_and_the_reset() {
        let clock = Arc::new(ManualClock::new("2026-12-03T20:00:00Z".parse().unwrap()));
        let limits = Limits::in_process_with_clock(clock);
        let p = plan(budget("0.3", None), "0.1");
        let held: Vec<_> = vec![limits.admit(&p).await.unwrap(), limits.admit(&p).await.unwrap()];
        limits.admit(&p).await.unwrap().settle(None);
        tokio::task::yield_now().await;
        let refusal = limits.admit(&p).await.err().unwrap();
        let Reached::Budget { spent, reserved, resets_at, .. } = &refusal.what else { panic!() };
        assert_eq!((spent.to_string(), reserved.to_string()), ("0.1".into(), "0.2".into()));
        assert_eq!(resets_at.unwrap().to_rfc3339(), "2026-12-04T00:00:00+00:00");
        let err = refusal.to_error();
        assert_eq!(err.kind, crate::classify::ErrorKind::BudgetExceeded);
        assert!(
            err.message.starts_with("Budget has been exceeded! Current cost: 0.1, Max budget: 0.3")
        );
        assert_eq!(err.diagnosis.as_ref().unwrap().id, "BUD-01");
        drop(held);
        tokio::task::yield_now().await;
        assert!(limits.admit(&p).await.is_ok(), "dropped reservations are released");
    }
}
