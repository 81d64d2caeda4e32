//! The errors the router itself produces: an unknown model (GW-02), every deployment
//! cooling (GW-05), the whole-request timeout (NET-03), and the final error after every
//! attempt failed — which leads with the last failure and lists each attempt.

use std::time::Duration;

use tokio::time::Instant;

use super::run::Log;
use super::{Attempt, Target};
use crate::classify::{ApiError, AttemptReport, Diagnosis, ErrorKind, UpstreamError};
use crate::config::Deployment;

/// Why a request stopped without an answer.
pub(super) enum Stop {
    /// The last failure cannot succeed anywhere else (e.g. an invalid request).
    Final,
    /// Every deployment and fallback was tried.
    Exhausted,
    /// The whole-request budget ran out.
    TotalTimeout(Duration),
}

/// GW-02: the client named something the gateway does not serve.
pub fn unknown_model(model: &str, aliases: &[String]) -> ApiError {
    let known =
        if aliases.is_empty() { "none are configured".to_owned() } else { aliases.join(", ") };
    ApiError::new(ErrorKind::UnknownModel, format!("Unknown model `{model}`."))
        .with_diagnosis(Diagnosis::new(
            "GW-02",
            format!("No alias or deployment id `{model}` is configured; the aliases are: {known}."),
            format!(
                "Use one of those names as `model`, or add a `model_list` entry with \
                 `model_name: {model}` to the config."
            ),
        ))
        .with_param("model")
}

/// GW-05, as an attempt: every deployment of a group is cooling and none comes back within
/// the request's budget.
pub(super) fn all_cooling(targets: &[Target], now: Instant) -> Option<Attempt> {
    let mut lines = Vec::new();
    for t in targets {
        match t.state.cooldown(now) {
            Some(c) => {
                let left = c.until.saturating_duration_since(now).as_secs_f64().ceil() as u64;
                lines.push(format!(
                    "{} ({}) cooling for {left}s more after {}: {}",
                    t.deployment.id,
                    describe(&t.deployment),
                    c.reason.kind.as_str(),
                    c.reason.message
                ));
            }
            None => lines.push(format!(
                "{} ({}) at its rpm/tpm limit for this minute",
                t.deployment.id,
                describe(&t.deployment)
            )),
        }
    }
    let alias = targets.first().map(|t| t.deployment.alias.as_str()).unwrap_or_default();
    let mut error = UpstreamError::new(
        ErrorKind::UpstreamUnavailable,
        format!("No deployment of `{alias}` can take the request now: {}.", lines.join("; ")),
    );
    error.diagnosis = Some(Diagnosis::new(
        "GW-05",
        "Each deployment failed recently and is rested before it is tried again.",
        "Fix the cause named for each deployment (see `switchyard doctor`), add another \
         deployment or a `fallbacks` entry for this alias, or wait for the cooldown to end.",
    ));
    targets.first().map(|t| Attempt { deployment: t.deployment.clone(), error })
}

/// The error a client receives when no attempt succeeded.
pub(super) fn failure(model: &str, stop: Stop, log: Log) -> ApiError {
    let attempts: Vec<AttemptReport> = log
        .failed
        .iter()
        .map(|a| AttemptReport {
            deployment: a.deployment.id.clone(),
            model: describe(&a.deployment),
            class: a.error.kind.as_str(),
            status: a.error.status.unwrap_or_else(|| a.error.kind.http_status().as_u16()),
            message: a.error.message.clone(),
            diagnosis: a.error.diagnosis.clone(),
        })
        .collect();
    let mut err = match (stop, log.failed.last()) {
        (Stop::TotalTimeout(budget), _) => timeout(model, budget, log.failed.len()),
        (_, None) => {
            ApiError::new(ErrorKind::Internal, format!("No deployment was tried for `{model}`."))
        }
        (_, Some(last)) => {
            // A diagnosis that quotes the upstream's words already carries them: saying
            // them twice makes the message harder to read.
            let upstream = match &last.error.diagnosis {
                Some(d) if d.cause.contains(last.error.message.trim_end_matches('.')) => "",
                _ => last.error.message.as_str(),
            };
            let mut message = if log.failed.len() == 1 {
                format!("{model} → {}: {upstream}", describe(&last.deployment))
            } else {
                let tried: Vec<String> = log
                    .failed
                    .iter()
                    .map(|a| format!("{} ({})", describe(&a.deployment), a.error.kind.as_str()))
                    .collect();
                format!(
                    "Every attempt for `{model}` failed: {}. Last: {}: {upstream}",
                    tried.join("; "),
                    describe(&last.deployment),
                )
            };
            let message_end = message.trim_end();
            message.truncate(message_end.len());
            if !message.ends_with('.') && !message.ends_with(':') {
                message.push('.');
            }
            let mut err = ApiError::new(last.error.kind, message);
            err.diagnosis = last.error.diagnosis.clone();
            err.retry_after = last.error.retry_after;
            err
        }
    };
    err.attempts = attempts;
    err
}

/// NET-03 for the whole request.
fn timeout(model: &str, budget: Duration, attempts: usize) -> ApiError {
    ApiError::new(
        ErrorKind::Timeout,
        format!(
            "The request for `{model}` took longer than its whole-request timeout of {}s \
             ({attempts} failed attempt(s) before it fired).",
            budget.as_secs_f64()
        ),
    )
    .with_diagnosis(Diagnosis::new(
        "NET-03",
        "The total timeout (router_settings.timeout, else litellm_settings.request_timeout, \
         else 600 s) bounds every attempt, retry and wait of one request.",
        "Raise router_settings.timeout, lower per-deployment `timeout`s so failover happens \
         sooner, or add a faster fallback.",
    ))
}

pub(super) fn describe(d: &Deployment) -> String {
    format!("{}/{}", d.provider.prefix(), d.model)
}
