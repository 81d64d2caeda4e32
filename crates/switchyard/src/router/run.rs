//! Runs one request: the requested group, then its fallback groups; within a group,
//! deployments in strategy order, failover before retries, backoff that honours
//! `retry-after`, waiting for a cooldown when it ends within the request's budget.
//!
//! Decisions come only from `ErrorKind` (`is_retryable`, `cooling`, `fallback`). Every
//! failed attempt is logged for the response headers and the final error.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::time::Instant;

use super::report::{self, Stop};
use super::strategy;
use super::tags;
use super::{Attempt, Route, Router, Served, Target};
use crate::canonical::{ChatRequest, ChatResponse};
use crate::classify::{ApiError, ErrorKind, Fallback, UpstreamError};
use crate::config::{Deployment, RetryPolicy};
use crate::cost::{self, Charge, Charged, PendingCharge, Price};
use crate::embedding::{EmbeddingRequest, Embeddings};
use crate::fastpath::{Answer, AnswerStream, RawBody};
use crate::limits::{Caller, OnExceed, RateHeaders, Reached, Refusal, Reservation};
use crate::provider::EventStream;

/// One kind of call through the router.
pub(super) trait Call: Sync {
    type Out;
    /// Whether attempts count as traffic (in flight, latency, usage, cooldowns).
    const IS_TRAFFIC: bool;
    fn call<'a>(
        &'a self,
        t: &'a Target,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Self::Out, UpstreamError>>;
    /// What the caller receives once `t` answered, and what the answer cost at `price`
    /// (the deployment's, or its batch price for a batch item).
    fn commit(&self, out: Self::Out, t: &Target, price: Arc<Price>) -> (Self::Out, Charged) {
        let _ = (t, price);
        (out, Charged::None)
    }
}

pub(super) struct SendCall;
pub(super) struct StreamCall;
pub(super) struct CountCall;
/// Embeddings: routed by the request's `routing` view, answered from its inputs.
pub(super) struct EmbedCall<'r>(pub &'r EmbeddingRequest);

impl Call for SendCall {
    type Out = ChatResponse;
    const IS_TRAFFIC: bool = true;
    fn call<'a>(
        &'a self,
        t: &'a Target,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, UpstreamError>> {
        t.provider.send(req)
    }

    /// The cost of the answer, from the usage the provider reported.
    fn commit(&self, out: ChatResponse, _t: &Target, price: Arc<Price>) -> (ChatResponse, Charged) {
        let charge = Charge::new(out.usage, &price, true);
        (out, Charged::Now(charge))
    }
}

impl Call for StreamCall {
    type Out = EventStream;
    const IS_TRAFFIC: bool = true;
    fn call<'a>(
        &'a self,
        t: &'a Target,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<EventStream, UpstreamError>> {
        t.provider.stream(req)
    }

    /// Keeps the deployment counted as busy until the stream ends, records a failure
    /// after the commit point in its state (it can no longer fall back, but `/health` and
    /// cooldowns must know), and meters the usage the stream reports: its charge is known
    /// when it ends.
    fn commit(&self, out: EventStream, t: &Target, price: Arc<Price>) -> (EventStream, Charged) {
        let (metered, pending) = cost::meter(out, price);
        (Box::pin(watched(metered, t)), Charged::AtEnd(pending))
    }
}

impl Call for CountCall {
    type Out = u64;
    const IS_TRAFFIC: bool = false;
    fn call<'a>(
        &'a self,
        t: &'a Target,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<u64, UpstreamError>> {
        t.provider.count_tokens(req)
    }
}

impl Call for EmbedCall<'_> {
    type Out = Embeddings;
    const IS_TRAFFIC: bool = true;
    fn call<'a>(
        &'a self,
        t: &'a Target,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Embeddings, UpstreamError>> {
        t.provider.embed(self.0)
    }

    /// Embeddings bill their input tokens only.
    fn commit(&self, out: Embeddings, _t: &Target, price: Arc<Price>) -> (Embeddings, Charged) {
        let charge = cost::embedding_charge(out.input_tokens, &price);
        (out, Charged::Now(charge))
    }
}

/// One complete answer on the same-dialect fast path: relayed by a deployment that speaks
/// the client's dialect, translated by any other (a failover keeps working across dialects).
pub(super) struct RelayCall<'r>(pub &'r RawBody);
/// A streamed answer on the same-dialect fast path, as [`RelayCall`].
pub(super) struct RelayStreamCall<'r>(pub &'r RawBody);

impl Call for RelayCall<'_> {
    type Out = Answer;
    const IS_TRAFFIC: bool = true;
    fn call<'a>(
        &'a self,
        t: &'a Target,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Answer, UpstreamError>> {
        match t.provider.relay(req, self.0) {
            Some(relayed) => Box::pin(async move { relayed.await.map(Answer::Relayed) }),
            None => Box::pin(async move { t.provider.send(req).await.map(Answer::Translated) }),
        }
    }

    fn commit(&self, out: Answer, _t: &Target, price: Arc<Price>) -> (Answer, Charged) {
        let charge = Charge::new(out.usage(), &price, true);
        (out, Charged::Now(charge))
    }
}

impl Call for RelayStreamCall<'_> {
    type Out = AnswerStream;
    const IS_TRAFFIC: bool = true;
    fn call<'a>(
        &'a self,
        t: &'a Target,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<AnswerStream, UpstreamError>> {
        match t.provider.relay_stream(req, self.0) {
            Some(relayed) => Box::pin(async move { relayed.await.map(AnswerStream::Relayed) }),
            None => {
                Box::pin(async move { t.provider.stream(req).await.map(AnswerStream::Translated) })
            }
        }
    }

    /// As [`StreamCall::commit`], for either kind of stream.
    fn commit(&self, out: AnswerStream, t: &Target, price: Arc<Price>) -> (AnswerStream, Charged) {
        match out {
            AnswerStream::Translated(events) => {
                let (events, charged) = StreamCall.commit(events, t, price);
                (AnswerStream::Translated(events), charged)
            }
            AnswerStream::Relayed(chunks) => {
                let (metered, pending) = cost::meter_chunks(chunks, price);
                (AnswerStream::Relayed(Box::pin(watched(metered, t))), Charged::AtEnd(pending))
            }
        }
    }
}

/// `stream` with its deployment counted as busy until it ends, and a failure after the commit
/// point recorded in the deployment's state (it can no longer fall back, but `/health` and
/// cooldowns must know).
fn watched<T>(
    stream: impl futures_util::Stream<Item = Result<T, UpstreamError>> + Send + 'static,
    t: &Target,
) -> impl futures_util::Stream<Item = Result<T, UpstreamError>> + Send + 'static {
    let guard = t.state.begin();
    let state = t.state.clone();
    let policy = t.cooldown;
    stream.map(move |item| {
        let _busy = &guard;
        if let Err(error) = &item {
            state.record_failure(error, Instant::now(), policy);
        }
        item
    })
}

/// What happened so far, whatever the outcome.
#[derive(Default)]
pub(super) struct Log {
    pub failed: Vec<Attempt>,
    pub retries: u32,
    pub fallbacks: u32,
    /// How long the serving attempt took to answer (a stream: to its first event).
    pub upstream: std::time::Duration,
    /// Deployments skipped for their own limits, with the limit reached.
    pub skipped: Vec<(String, Refusal)>,
    /// A limit refused the request: this is the client's error.
    pub refusal: Option<ApiError>,
    pub rate: RateHeaders,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum FallbackKind {
    General,
    ContextWindow,
    ContentPolicy,
}

pub(super) async fn execute<C: Call>(
    router: &Router,
    call: &C,
    req: &ChatRequest,
    caller: &Caller,
) -> Result<Served<C::Out>, ApiError> {
    if !router.serves(&req.model) {
        let known: Vec<String> =
            router.listed_names().chain(router.patterns()).map(str::to_owned).collect();
        return Err(report::unknown_model(&req.model, &known));
    }
    let deadline = Instant::now() + router.total_timeout;
    let mut log = Log::default();
    let outcome = tokio::select! {
        result = chain(router, call, req, caller, deadline, &mut log) => result,
        () = tokio::time::sleep_until(deadline) => Err(Stop::TotalTimeout(router.total_timeout)),
    };
    match outcome {
        Ok(((value, charge), deployment)) => Ok(Served {
            value,
            route: Route {
                deployment,
                failed: log.failed,
                retries: log.retries,
                fallbacks: log.fallbacks,
                upstream: log.upstream,
                skipped: log.skipped.iter().map(|(id, r)| (id.clone(), reason(r))).collect(),
                rate: log.rate,
            },
            charge,
        }),
        Err(_) if log.refusal.is_some() => Err(log
            .refusal
            .take()
            .unwrap_or_else(|| ApiError::new(ErrorKind::Internal, "a limit refused the request"))),
        Err(stop) => Err(report::failure(&req.model, stop, log)),
    }
}

async fn chain<C: Call>(
    router: &Router,
    call: &C,
    req: &ChatRequest,
    caller: &Caller,
    deadline: Instant,
    log: &mut Log,
) -> Result<((C::Out, Charged), Arc<Deployment>), Stop> {
    let mut group = req.model.clone();
    let mut queue: Option<VecDeque<String>> = None;
    let mut simulated = simulated_failure(req);
    let tags = router.settings.enable_tag_filtering.then(|| crate::attribution::request_tags(req));
    loop {
        let reached = router.reach(&group);
        let failed_with = match (simulated.take(), reached) {
            (Some(error), reached) => {
                if let Some(first) = reached.as_ref().and_then(|r| r.targets.first()) {
                    log.failed.push(Attempt {
                        deployment: first.deployment.clone(),
                        error: error.clone(),
                    });
                }
                error.kind
            }
            (None, Some(reached)) => {
                let eligible = match &tags {
                    Some(tags) if !reached.pinned => tags::pick(
                        reached.group,
                        &reached.targets,
                        tags,
                        router.settings.tag_filtering_match_any,
                    ),
                    _ => Ok(None),
                };
                match eligible {
                    Ok(picked) => {
                        let targets = picked.as_deref().unwrap_or(&reached.targets);
                        let ahead = queue.as_ref().map(VecDeque::len);
                        let group =
                            Group { targets, pinned: reached.pinned, fallbacks_ahead: ahead };
                        match run_group(router, call, req, caller, group, deadline, log).await {
                            Ok(done) => return Ok(done),
                            Err(kind) => kind,
                        }
                    }
                    // The requested group: the client's tags are the problem, say so. A
                    // fallback group whose deployments the tags exclude is skipped.
                    Err(err) if queue.is_none() => {
                        log.refusal = Some(err);
                        return Err(Stop::Final);
                    }
                    Err(_) => ErrorKind::UnknownModel,
                }
            }
            // A fallback naming nothing configured (the config's are validated; a
            // client's may be wrong): skip it.
            (None, None) => ErrorKind::UnknownModel,
        };
        let which = match failed_with.fallback() {
            Fallback::Any => FallbackKind::General,
            Fallback::ContextWindow => FallbackKind::ContextWindow,
            Fallback::ContentPolicy => FallbackKind::ContentPolicy,
            Fallback::None if failed_with == ErrorKind::UnknownModel && queue.is_some() => {
                FallbackKind::General
            }
            Fallback::None => return Err(Stop::Final),
        };
        let queue = queue.get_or_insert_with(|| fallbacks_for(router, req, which));
        match queue.pop_front() {
            Some(next) => {
                log.fallbacks += 1;
                group = next;
            }
            None => return Err(Stop::Exhausted),
        }
    }
}

/// The fallback groups for the requested model, in order: a client's own `fallbacks`
/// first, then the config's for this kind of failure, then `default_fallbacks`.
fn fallbacks_for(router: &Router, req: &ChatRequest, which: FallbackKind) -> VecDeque<String> {
    if which == FallbackKind::General
        && let Some(Value::Array(list)) = req.gateway.get("fallbacks")
    {
        return list
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("model").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
            .filter(|m| *m != req.model)
            .collect();
    }
    // Rules are written for the name requested or, for a `model_group_alias`, its group, or for
    // a name a wildcard matched, the pattern.
    let map = router.fallback_map(which);
    let configured = map
        .get(&req.model)
        .or_else(|| router.alias_target(&req.model).and_then(|group| map.get(group)))
        .or_else(|| router.label_for(&req.model).and_then(|group| map.get(group)));
    match (configured, which) {
        (Some(list), _) => list.iter().cloned().collect(),
        (None, FallbackKind::General) => {
            router.settings.default_fallbacks.iter().filter(|m| **m != req.model).cloned().collect()
        }
        (None, _) => VecDeque::new(),
    }
}

/// LiteLLM's `mock_testing_*` request flags: fail the requested group on purpose so a
/// client can check its fallbacks.
fn simulated_failure(req: &ChatRequest) -> Option<UpstreamError> {
    let flag = |name: &str| req.gateway.get(name).is_some_and(|v| v == &Value::Bool(true));
    let kind = if flag("mock_testing_fallbacks") {
        ErrorKind::UpstreamUnavailable
    } else if flag("mock_testing_context_window_fallbacks") {
        ErrorKind::ContextWindow
    } else if flag("mock_testing_content_policy_fallbacks") {
        ErrorKind::ContentPolicy
    } else {
        return None;
    };
    Some(UpstreamError::new(kind, "a failure simulated by the request's mock_testing flag"))
}

/// Tries the group's deployments; `Err` carries the kind of the failure that ended it.
/// `fallbacks_ahead` is how many fallback groups remain once the chain has started on them
/// (None before the first fallback: then the requested model's general fallbacks count).
async fn run_group<C: Call>(
    router: &Router,
    call: &C,
    req: &ChatRequest,
    caller: &Caller,
    group: Group<'_>,
    deadline: Instant,
    log: &mut Log,
) -> Result<((C::Out, Charged), Arc<Deployment>), ErrorKind> {
    let Group { targets, pinned, fallbacks_ahead } = group;
    let mut rng = fastrand::Rng::with_seed(fastrand::u64(..));
    let order = if pinned {
        vec![0]
    } else {
        strategy::rank(router.settings.routing_strategy, targets, Instant::now(), &mut rng)
    };
    let needs_tokens = C::IS_TRAFFIC && targets.iter().any(|t| t.deployment.tpm.is_some());
    let tokens = if needs_tokens { crate::tokens::estimate_request(req) } else { 0 };
    // The kind each deployment last failed with in this request; None = not tried yet.
    let mut last: Vec<Option<ErrorKind>> = vec![None; targets.len()];
    let mut last_error: Option<(ErrorKind, Option<Duration>)> = None;
    let mut retries = 0u32;
    let mut waited = false;
    loop {
        let now = Instant::now();
        let usable = |i: usize| {
            pinned
                || !C::IS_TRAFFIC
                || (!targets[i].state.is_cooling(now)
                    && !strategy::over_limits(&targets[i], now, tokens))
        };
        let retry_budget = last_error.map_or(0, |(kind, _)| {
            retries_for(&router.settings.retry_policy, router.settings.num_retries, kind)
        });
        let fresh = order.iter().copied().find(|&i| last[i].is_none() && usable(i));
        let may_retry = |i: usize| {
            last[i].is_some_and(ErrorKind::is_retryable)
                && retries < retry_budget.min(deployment_retries(&targets[i].deployment))
        };
        let retry = || order.iter().copied().find(|&i| may_retry(i) && usable(i));
        let Some(i) = fresh.or_else(retry) else {
            // Nothing usable now: wait for the earliest cooldown that could still help, if it
            // ends within the request's budget and there is no fallback to go to instead.
            if last_error.is_none() && !log.skipped.is_empty() {
                // Every deployment left was skipped for its own limits.
                let err = crate::limits::all_skipped(&req.model, &log.skipped);
                let kind = err.kind;
                log.refusal = Some(err);
                return Err(kind);
            }
            let waitable = order.iter().copied().filter(|&i| last[i].is_none() || may_retry(i));
            // Only a cooldown that time heals is worth waiting for: a refused key or a
            // missing permission is still wrong when the cooldown ends.
            let earliest = waitable
                .filter_map(|i| targets[i].state.cooldown(now))
                .filter(|c| c.reason.kind.is_retryable())
                .map(|c| c.until)
                .min();
            let fall_over = || match fallbacks_ahead {
                Some(n) => n > 0,
                None => !fallbacks_for(router, req, FallbackKind::General).is_empty(),
            };
            match earliest {
                Some(until) if until <= deadline && !fall_over() => {
                    tokio::time::sleep_until(until).await;
                    waited = true;
                    continue;
                }
                _ if last_error.is_none() => {
                    log.failed.extend(report::all_cooling(targets, now));
                    return Err(ErrorKind::UpstreamUnavailable);
                }
                _ => return Err(last_error.map_or(ErrorKind::UpstreamUnavailable, |(k, _)| k)),
            }
        };
        if last[i].is_some() {
            retries += 1;
            log.retries += 1;
            if !waited {
                let retry_after = last_error.and_then(|(_, ra)| ra);
                tokio::time::sleep(backoff(
                    retries,
                    retry_after,
                    router.settings.retry_after,
                    &mut rng,
                ))
                .await;
            }
        } else if last_error.is_some() {
            // Failover to another deployment of the group counts as a retry of the group,
            // as LiteLLM reports it.
            log.retries += 1;
        }
        waited = false;

        let target = &targets[i];
        let reservation = if C::IS_TRAFFIC {
            match admit(router, req, caller, target).await {
                Ok(r) => r,
                Err(refusal) if refusal.on_exceed == OnExceed::Skip => {
                    tracing::debug!(deployment = %target.deployment.id, scope = %refusal.scope, "skipped at its limit");
                    last[i] = Some(ErrorKind::BudgetExceeded);
                    log.skipped.push((target.deployment.id.clone(), refusal));
                    continue;
                }
                Err(refusal) => {
                    let err = refusal.to_error();
                    log.refusal = Some(err);
                    // Refused here: no fallback can change a request-wide limit.
                    return Err(ErrorKind::BudgetExceeded);
                }
            }
        } else {
            Reservation::none()
        };
        let busy = C::IS_TRAFFIC.then(|| target.state.begin());
        if C::IS_TRAFFIC {
            target.state.count_request(now, tokens);
        }
        let started = Instant::now();
        let result = crate::telemetry::attempt(&target.deployment, || call.call(target, req)).await;
        drop(busy);
        match result {
            Ok(out) => {
                log.upstream = started.elapsed();
                if C::IS_TRAFFIC {
                    target.state.record_success(log.upstream);
                }
                log.rate = reservation.headers;
                let (out, charged) = call.commit(out, target, caller.price_of(&target.price));
                let charged = settle_when_charged(reservation, charged);
                return Ok(((out, charged), target.deployment.clone()));
            }
            Err(error) => {
                if C::IS_TRAFFIC {
                    target.state.record_failure(&error, Instant::now(), target.cooldown);
                }
                let kind = error.kind;
                last[i] = Some(kind);
                last_error = Some((kind, error.retry_after));
                tracing::debug!(deployment = %target.deployment.id, class = kind.as_str(), "attempt failed");
                log.failed.push(Attempt { deployment: target.deployment.clone(), error });
                if kind.fallback() != Fallback::Any {
                    return Err(kind);
                }
            }
        }
    }
}

/// Admits one attempt at `target` against every limit that applies to it.
pub(super) async fn admit(
    router: &Router,
    req: &ChatRequest,
    caller: &Caller,
    target: &Target,
) -> Result<Reservation, Refusal> {
    let limits = router.config_limits();
    if limits.is_empty() && caller.is_empty() {
        return Ok(Reservation::none());
    }
    let user = crate::attribution::end_user(req);
    let mut plan = limits.plan(user.as_deref(), &target.deployment);
    caller.add_to(&mut plan, &target.deployment.alias);
    if plan.is_empty() {
        return Ok(Reservation::none());
    }
    let input = crate::tokens::estimate_request(req);
    let output = crate::limits::max_output(req, &target.deployment);
    plan.max_cost = crate::limits::max_cost(&caller.price_of(&target.price), input, output);
    plan.tokens = input;
    router.limits().admit(&plan).await
}

/// One model group's deployments as the chain reached them.
struct Group<'a> {
    targets: &'a [Target],
    /// A deployment named by its id: only it is tried.
    pinned: bool,
    /// Fallback groups left once the chain started on them (None before the first).
    fallbacks_ahead: Option<usize>,
}

/// Settles the reservation with the answer's charge: now for a JSON answer, when a
/// stream's charge resolves for a streamed one (the stream's own charge is passed on).
fn settle_when_charged(reservation: Reservation, charged: Charged) -> Charged {
    match charged {
        Charged::Now(charge) => {
            reservation.settle(Some(&charge));
            Charged::Now(charge)
        }
        Charged::AtEnd(pending) => {
            let (tx, rx) = PendingCharge::channel();
            tokio::spawn(async move {
                let charge = pending.await;
                reservation.settle(charge.as_ref());
                if let Some(charge) = charge {
                    let _ = tx.send(charge);
                }
            });
            Charged::AtEnd(rx)
        }
        Charged::None => Charged::None,
    }
}

/// A skipped deployment's reason, for `x-switchyard-skipped`.
fn reason(r: &Refusal) -> &'static str {
    match r.what {
        Reached::Budget { .. } => "budget",
        Reached::Requests { .. } => "rpm",
        Reached::Tokens { .. } => "tpm",
        Reached::Parallel { .. } => "parallel",
        Reached::Unavailable(_) => "limits_unavailable",
    }
}

/// How many retries a failure of this kind allows in one group (LiteLLM's
/// `retry_policy`, else `num_retries`). Non-retryable kinds are never retried on the same
/// deployment whatever the policy says; the count then only bounds nothing.
fn retries_for(policy: &RetryPolicy, num_retries: u32, kind: ErrorKind) -> u32 {
    let specific = match kind {
        ErrorKind::RateLimited => policy.rate_limit,
        ErrorKind::Timeout => policy.timeout,
        ErrorKind::Overloaded | ErrorKind::UpstreamUnavailable => {
            policy.service_unavailable.or(policy.internal_server)
        }
        ErrorKind::Internal => policy.internal_server,
        ErrorKind::CredentialsInvalid
        | ErrorKind::CredentialsExpired
        | ErrorKind::CredentialsMissing => policy.authentication,
        ErrorKind::InvalidRequest => policy.bad_request,
        ErrorKind::ContentPolicy => policy.content_policy,
        ErrorKind::ModelNotFound => policy.not_found,
        _ => None,
    };
    specific.or(policy.default).unwrap_or(num_retries)
}

/// A deployment's own cap on retries (`litellm_params.num_retries` / `max_retries`).
fn deployment_retries(d: &Deployment) -> u32 {
    d.num_retries.or(d.max_retries).unwrap_or(u32::MAX)
}

/// Exponential backoff with jitter (0.5 s, 1 s, 2 s … up to 8 s, each between half and
/// all of that), or exactly the upstream's `retry-after`; never less than the configured
/// `router_settings.retry_after`.
fn backoff(
    retry: u32,
    retry_after: Option<Duration>,
    floor: Duration,
    rng: &mut fastrand::Rng,
) -> Duration {
    let delay = match retry_after {
        Some(ra) => ra,
        None => {
            let base =
                Duration::from_millis(500).saturating_mul(1 << retry.saturating_sub(1).min(4));
            let base = base.min(Duration::from_secs(8));
            base / 2 + base.mul_f64(rng.f64() / 2.0)
        }
    };
    delay.max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let mut rng = fastrand::Rng::with_seed(7);
        let first = backoff(1, None, Duration::ZERO, &mut rng);
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
        let third = backoff(3, None, Duration::ZERO, &mut rng);
        assert!(third >= Duration::from_secs(1) && third <= Duration::from_secs(2));
        let late = backoff(20, None, Duration::ZERO, &mut rng);
        assert!(late <= Duration::from_secs(8));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(3)), Duration::ZERO, &mut rng),
            Duration::from_secs(3)
        );
        assert_eq!(backoff(1, None, Duration::from_secs(2), &mut rng), Duration::from_secs(2));
    }

    #[test]
    fn retry_policy_overrides_num_retries_per_class() {
        let policy =
            RetryPolicy { rate_limit: Some(5), default: Some(1), ..RetryPolicy::default() };
        assert_eq!(retries_for(&policy, 2, ErrorKind::RateLimited), 5);
        assert_eq!(retries_for(&policy, 2, ErrorKind::Timeout), 1);
        assert_eq!(retries_for(&RetryPolicy::default(), 2, ErrorKind::Timeout), 2);
    }
}
