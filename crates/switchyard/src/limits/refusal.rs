//! What a client sees of the limits: LiteLLM's budget error (HTTP 400, type
//! `budget_exceeded`), a 429 with `retry-after` at a rate limit, and the
//! `x-ratelimit-*` headers on answers where a rate limit applies.

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use rust_decimal::Decimal;

use super::check::{Check, CheckKind};
use super::{Period, Reached, Refusal, Scope};
use crate::classify::{ApiError, Diagnosis, ErrorKind, RateLimitState};

/// The tightest request and token limits of an admitted request: (limit, remaining, seconds
/// until the window resets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub requests: Option<(i64, i64, i64)>,
    pub tokens: Option<(i64, i64, i64)>,
}

impl RateHeaders {
    pub(super) fn from_checks(checks: &[Check], used: &[(i64, i64)], now: DateTime<Utc>) -> Self {
        let reset = 60 - now.timestamp().rem_euclid(60);
        let mut out = Self::default();
        for (check, (u, _)) in checks.iter().zip(used) {
            let slot = match check.kind {
                CheckKind::Requests => &mut out.requests,
                CheckKind::Tokens => &mut out.tokens,
                CheckKind::Budget | CheckKind::Parallel => continue,
            };
            let remaining = (check.limit - u).max(0);
            if slot.is_none_or(|(_, r, _)| remaining < r) {
                *slot = Some((check.limit, remaining, reset));
            }
        }
        out
    }
}

const LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
const REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
const LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
const REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
const RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");

/// LiteLLM's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (reset in whole
/// seconds), for the tightest limit of each kind that applied.
pub fn rate_limit_headers(headers: &mut HeaderMap, rate: &RateHeaders) {
    let pairs = [
        (rate.requests, [LIMIT_REQUESTS, REMAINING_REQUESTS, RESET_REQUESTS]),
        (rate.tokens, [LIMIT_TOKENS, REMAINING_TOKENS, RESET_TOKENS]),
    ];
    for (values, [limit, remaining, reset]) in pairs {
        if let Some((l, r, s)) = values {
            headers.insert(limit, HeaderValue::from(l));
            headers.insert(remaining, HeaderValue::from(r));
            headers.insert(reset, HeaderValue::from(s));
        }
    }
}

fn per(period: Period) -> String {
    match period {
        Period::Forever => "in total (no budget_duration: it never resets)".to_owned(),
        Period::Day => "per day (UTC)".to_owned(),
        Period::Week => "per week (Monday to Monday, UTC)".to_owned(),
        Period::Months(1) => "per calendar month (UTC)".to_owned(),
        Period::Months(n) => format!("per {n} calendar months (UTC)"),
        Period::Seconds(s) => format!("per {s} seconds"),
    }
}

fn usd(d: Decimal) -> String {
    let d = d.round_dp(6).normalize();
    if d.scale() == 0 { format!("{d}.0") } else { d.to_string() }
}

impl Refusal {
    /// The limit's setting and where it is changed: the config, or the management route of
    /// the key, team, user or customer that carries it.
    fn setting(&self) -> String {
        let route = match &self.scope {
            Scope::Key(_) | Scope::KeyModel(..) => "/key/update",
            Scope::Team(_) => "/team/update",
            Scope::User(_) => "/user/update",
            Scope::EndUser(_) if self.source.contains("of customer") => "/customer/update",
            _ => return format!("{} in the config", self.source),
        };
        format!("{} (an administrator: `POST {route}`)", self.source)
    }

    /// The refused minute as `x-ratelimit-*` headers show it (nothing remaining).
    pub fn rate_limit_state(&self) -> Option<RateLimitState> {
        match self.what {
            Reached::Requests { limit, reset_in } | Reached::Tokens { limit, reset_in } => {
                Some(RateLimitState {
                    requests: matches!(self.what, Reached::Requests { .. }),
                    limit,
                    remaining: 0,
                    reset: u64::try_from(reset_in).unwrap_or(1),
                })
            }
            _ => None,
        }
    }

    /// The client's error for this refusal, when it stops the request (BUD-01, LIM-01,
    /// LIM-03).
    pub fn to_error(&self) -> ApiError {
        match &self.what {
            Reached::Budget { spent, reserved, limit, period, resets_at } => {
                let resets = resets_at.map_or_else(
                    || "It does not reset.".to_owned(),
                    |at| format!("It resets at {} UTC.", at.format("%Y-%m-%d %H:%M:%S")),
                );
                let scope = match &self.scope {
                    Scope::Global => "The gateway's budget".to_owned(),
                    other => format!("The budget of {other}"),
                };
                ApiError::new(
                    ErrorKind::BudgetExceeded,
                    format!(
                        "Budget has been exceeded! Current cost: {}, Max budget: {}.",
                        usd(*spent),
                        usd(*limit)
                    ),
                )
                .with_diagnosis(Diagnosis::new(
                    "BUD-01",
                    format!(
                        "{scope} ({}) is ${} {}; ${} is spent and ${} is reserved by requests in flight, \
                         so this request, which may cost up to its max_tokens, does not fit. {resets}",
                        self.source,
                        usd(*limit),
                        per(*period),
                        usd(*spent),
                        usd(*reserved),
                    ),
                    if resets_at.is_some() {
                        format!(
                            "Wait for the reset, raise {}, or send a smaller max_tokens.",
                            self.setting()
                        )
                    } else {
                        format!(
                            "Raise {} (or give it a budget_duration so it resets), or send a \
                             smaller max_tokens.",
                            self.setting()
                        )
                    },
                ))
            }
            Reached::Requests { limit, reset_in } | Reached::Tokens { limit, reset_in } => {
                let unit = if matches!(self.what, Reached::Requests { .. }) {
                    "requests"
                } else {
                    "tokens"
                };
                let mut err = ApiError::new(
                    ErrorKind::RateLimited,
                    format!("Rate limit reached for {}: {limit} {unit} per minute.", self.scope),
                )
                .with_diagnosis(Diagnosis::new(
                    "LIM-01",
                    format!(
                        "{} allows {limit} {unit} per minute ({}); this minute's are used. Minutes \
                         are fixed UTC minutes; the next starts in {reset_in}s.",
                        self.scope, self.source
                    ),
                    format!("Retry after {reset_in}s, or raise {}.", self.setting()),
                ));
                err.retry_after = Some(Duration::from_secs(u64::try_from(*reset_in).unwrap_or(1)));
                err.rate_limit = self.rate_limit_state();
                err
            }
            Reached::Parallel { limit } => {
                let mut err = ApiError::new(
                    ErrorKind::RateLimited,
                    format!("Too many requests in flight for {}: at most {limit}.", self.scope),
                )
                .with_diagnosis(Diagnosis::new(
                    "LIM-01",
                    format!("{} allows {limit} requests at once ({}).", self.scope, self.source),
                    format!("Retry when a request finishes, or raise {}.", self.setting()),
                ));
                err.retry_after = Some(Duration::from_secs(1));
                err
            }
            Reached::Unavailable(u) => ApiError::new(
                ErrorKind::LimitsUnavailable,
                "Budgets and rate limits cannot be checked: Redis is unreachable.",
            )
            .with_diagnosis(Diagnosis::new(
                "LIM-03",
                format!(
                    "Redis at {} does not answer ({}), and general_settings.fail_closed is true, \
                     so requests are refused rather than counted in one replica only.",
                    u.place, u.error
                ),
                "Bring Redis back (the gateway reconnects by itself within a second), or set \
                 general_settings.fail_closed: false to serve on in-process counters meanwhile.",
            )),
        }
    }
}

/// BUD-03 / LIM-02: every deployment the request could use was skipped for its limits.
pub fn all_skipped(alias: &str, refusals: &[(String, Refusal)]) -> ApiError {
    let list: Vec<String> = refusals
        .iter()
        .map(|(id, r)| match &r.what {
            Reached::Budget { spent, limit, .. } => {
                format!(
                    "{id}: {} over its budget ({}: ${} of ${})",
                    r.scope,
                    r.source,
                    usd(*spent),
                    usd(*limit)
                )
            }
            Reached::Requests { limit, .. } => {
                format!("{id}: {} at {limit} requests per minute", r.scope)
            }
            Reached::Tokens { limit, .. } => {
                format!("{id}: {} at {limit} tokens per minute", r.scope)
            }
            Reached::Parallel { limit } => {
                format!("{id}: {} at {limit} requests in flight", r.scope)
            }
            Reached::Unavailable(_) => format!("{id}: limits unavailable"),
        })
        .collect();
    let budget = refusals.iter().find_map(|(_, r)| match r.what {
        Reached::Budget { spent, limit, .. } => Some((spent, limit)),
        _ => None,
    });
    let all_budget = refusals.iter().all(|(_, r)| matches!(r.what, Reached::Budget { .. }));
    if all_budget && let Some((spent, limit)) = budget {
        return ApiError::new(
            ErrorKind::BudgetExceeded,
            format!(
                "Budget has been exceeded! Current cost: {}, Max budget: {}.",
                usd(spent),
                usd(limit)
            ),
        )
        .with_diagnosis(Diagnosis::new(
            "BUD-03",
            format!(
                "Every deployment of `{alias}` is over its provider or deployment budget: {}.",
                list.join("; ")
            ),
            "Wait for the budgets to reset, raise them in the config, or add a deployment \
             with budget left to the model group or its fallbacks.",
        ));
    }
    let reset_in = refusals
        .iter()
        .filter_map(|(_, r)| match r.what {
            Reached::Requests { reset_in, .. } | Reached::Tokens { reset_in, .. } => Some(reset_in),
            _ => None,
        })
        .min()
        .unwrap_or(1);
    let mut err = ApiError::new(
        ErrorKind::RateLimited,
        format!("Rate limit reached for every deployment of `{alias}`."),
    )
    .with_diagnosis(Diagnosis::new(
        "LIM-02",
        format!("No deployment of `{alias}` has room this minute: {}.", list.join("; ")),
        format!(
            "Retry after {reset_in}s, raise the deployments' rpm/tpm, or add a deployment or a \
             fallback."
        ),
    ));
    err.retry_after = Some(Duration::from_secs(u64::try_from(reset_in).unwrap_or(1)));
    // The tightest refused limit: the one that resets first.
    err.rate_limit =
        refusals.iter().filter_map(|(_, r)| r.rate_limit_state()).min_by_key(|s| s.reset);
    err
}
