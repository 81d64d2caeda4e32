//! Builds the ledger row of a chat request from what the handler has — the request, the
//! route that served it and its charge, or the error — and hands it to the ledger. The one
//! place the request path talks to the ledger: attribution (key alias, tags, session, team)
//! is added here.
//!
//! Never waits: `record` queues; a stream's row is recorded by a task that awaits its
//! charge (the ledger is told a row is coming, so a graceful stop waits for it).
//!
//! The request's metrics are recorded here too, from the same facts, with or without a
//! ledger (`observe`).

use std::time::Instant;

use axum::http::HeaderMap;
use chrono::Utc;
use serde_json::{Value, json};

use super::AppState;
use super::auth::presented_key;
use super::errors::request_id;
use crate::attribution::Attribution;
use crate::canonical::{ChatRequest, ChatResponse};
use crate::classify::ApiError;
use crate::cost::{Charge, Charged, StreamFailure};
use crate::keys::Identity;
use crate::keys::record::TeamRecord;
use crate::ledger::{Outcome, Record, Tokens, clean_api_base};
use crate::metrics::{self, InFlight};
use crate::router::{Route, Target};

/// What is known when a request arrives.
pub(super) struct Started {
    record: Record,
    clock: Instant,
    /// The key's team, for the `team_alias` label.
    team: Option<std::sync::Arc<TeamRecord>>,
    /// A virtual key authenticated the request (its hash is a bounded label value).
    identified: bool,
    /// Held while the request is served, when metrics are on (`None`: nothing is recorded).
    in_flight: Option<InFlight>,
}

impl Started {
    pub fn new(
        headers: &HeaderMap,
        call_type: &str,
        chat: &ChatRequest,
        identity: Option<&Identity>,
        metrics: bool,
    ) -> Self {
        let alias = identity.and_then(|i| i.key.key_alias.as_deref());
        // A virtual key's hash is its token, found by hashing the presented key once already.
        let presented = if identity.is_some() { None } else { presented_key(headers) };
        let mut who = Attribution::of(headers, presented, alias, chat);
        if let Some(identity) = identity {
            who.key_hash = Some(identity.key.token.clone());
        }
        // LiteLLM adds the key's own tags (its `metadata.tags`) to the request's.
        if let Some(identity) = identity {
            for tag in identity.key.tags() {
                if !who.tags.contains(&tag) {
                    who.tags.push(tag);
                }
            }
        }
        let record = Record {
            request_id: request_id(headers).unwrap_or_default().to_owned(),
            call_type: call_type.to_owned(),
            start_time: Utc::now(),
            model_group: chat.model.clone(),
            api_key: who.key_hash.unwrap_or_default(),
            key_alias: who.key_alias,
            user: identity.and_then(|i| i.key.user_id.clone()),
            team_id: identity.and_then(|i| i.key.team_id.clone()),
            end_user: who.user,
            tags: who.tags,
            session_id: who.session_id,
            ..Record::default()
        };
        Self {
            record,
            clock: Instant::now(),
            team: identity.and_then(|i| i.team.clone()),
            identified: identity.is_some(),
            in_flight: metrics.then(|| metrics::global().begin()),
        }
    }

    /// The row's `model` is `model` rather than the serving deployment's: a pass-through
    /// call sends the model its body names.
    pub fn with_model(mut self, model: &str) -> Self {
        self.record.model = model.to_owned();
        self
    }

    fn metrics(&self) -> bool {
        self.in_flight.is_some()
    }

    /// A batch item: no headers of its own; its request id is the item's (the same on
    /// every run, so the ledger keeps one row), its key the batch owner's (a hash already),
    /// and the row names the batch and the line's `custom_id`.
    pub fn batch_item(
        request_id: String,
        owner: &str,
        batch_id: &str,
        custom_id: &str,
        chat: &ChatRequest,
        identity: Option<&Identity>,
        metrics: bool,
    ) -> Self {
        let mut started =
            Self::new(&HeaderMap::new(), crate::ledger::CALL_BATCH, chat, identity, metrics);
        started.record.request_id = request_id;
        started.record.api_key = owner.to_owned();
        started.record.metadata.insert("batch_id".into(), Value::from(batch_id));
        started.record.metadata.insert("batch_custom_id".into(), Value::from(custom_id));
        started
    }

    fn finish(mut self) -> Record {
        let elapsed = self.clock.elapsed();
        self.record.duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.record.end_time = self.record.start_time
            + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::zero());
        self.record
    }
}

/// A JSON answer: its charge is known now.
pub(super) fn served(state: &AppState, started: Started, route: &Route, charge: &Charged) {
    if let Some((ledger, record)) = served_row(state, started, route, charge) {
        ledger.record(record);
    }
}

/// What [`served`] records (metrics now), the row handed back to the caller instead: a
/// batch item's row is kept with the item until the ledger confirmed it.
pub(super) fn served_row<'a>(
    state: &'a AppState,
    started: Started,
    route: &Route,
    charge: &Charged,
) -> Option<(&'a crate::ledger::Ledger, Record)> {
    let mut outcome = routed(route);
    outcome.total = started.clock.elapsed();
    outcome.llm_api = Some(route.upstream);
    charged(&mut outcome, charge.now());
    observe(state, &started, route, &outcome);
    let ledger = state.ledger()?;
    let mut record = started.finish();
    record.first_token_time = Some(record.end_time);
    record.overhead_ms = Some(millis(outcome.total.saturating_sub(route.upstream)));
    fill_route(&mut record, route);
    if let Some(charge) = charge.now() {
        fill_charge(&mut record, charge);
    }
    Some((ledger, record))
}

/// A streamed answer: the first event is here now, the charge when the stream ends.
pub(super) fn streamed(state: &AppState, started: Started, route: &Route, charge: Charged) {
    let first_token = Utc::now();
    // The stream's first event is here: what came before the serving attempt's start is
    // the gateway's (admission, failed attempts, backoff).
    let mut outcome = routed(route);
    outcome.first_token = Some(route.upstream);
    let before_upstream = started.clock.elapsed().saturating_sub(route.upstream);
    let mut pending = started;
    let Charged::AtEnd(charge) = charge else {
        outcome.total = pending.clock.elapsed();
        outcome.llm_api = Some(outcome.total.saturating_sub(before_upstream));
        charged(&mut outcome, charge.now());
        observe(state, &pending, route, &outcome);
        let Some(ledger) = state.ledger() else { return };
        fill_route(&mut pending.record, route);
        let mut record = pending.finish();
        record.first_token_time = Some(first_token);
        record.overhead_ms = Some(millis(before_upstream));
        if let Some(charge) = charge.now() {
            fill_charge(&mut record, charge);
        }
        ledger.record(record);
        return;
    };
    let ledger = state.ledger().map(|l| (l.clone(), l.hold()));
    if ledger.is_some() {
        fill_route(&mut pending.record, route);
    }
    let runtime = state.runtime();
    let deployment = route.deployment.clone();
    let route = pending.metrics().then(|| route.clone());
    tokio::spawn(async move {
        let charge: Option<Charge> = charge.await;
        outcome.total = pending.clock.elapsed();
        outcome.llm_api = Some(outcome.total.saturating_sub(before_upstream));
        charged(&mut outcome, charge.as_ref());
        if let Some(route) = &route {
            // Counted when the stream has ended: a failure after the first event is the
            // serving deployment's failure too, not a success.
            deployment_calls(&runtime, &pending, route, charge.and_then(|c| c.failure));
            metrics::global().request(&who(&runtime, &pending, deployment.label_model()), &outcome);
        }
        let Some((ledger, hold)) = ledger else { return };
        let mut record = pending.finish();
        record.first_token_time = Some(first_token);
        record.overhead_ms = Some(millis(before_upstream));
        if let Some(charge) = &charge {
            fill_charge(&mut record, charge);
        }
        ledger.record(record);
        drop(hold);
    });
}

/// An answer from the response cache: no deployment was called, nothing was spent.
pub(super) fn cached(state: &AppState, started: Started, answer: &ChatResponse, key: &str) {
    if started.metrics() {
        let outcome = metrics::Outcome {
            status: 200,
            total: started.clock.elapsed(),
            spend_nanos: Some(0),
            ..metrics::Outcome::default()
        };
        // No deployment served it: the `model` label is empty.
        metrics::global().request(&who(&state.runtime(), &started, ""), &outcome);
    }
    let Some(ledger) = state.ledger() else { return };
    let mut record = started.finish();
    record.first_token_time = Some(record.end_time);
    record.cache_hit = true;
    record.model.clone_from(&answer.model);
    let u = &answer.usage;
    record.tokens = Tokens {
        prompt: u.total_input_tokens(),
        completion: u.output_tokens,
        cache_read: u.cache_read_input_tokens,
        cache_write: u.cache_creation_input_tokens,
    };
    record.usage = Some(*u);
    record.spend = Some(crate::cost::Decimal::ZERO);
    record.metadata.insert("cache_key".into(), Value::from(key));
    ledger.record(record);
}

/// No answer: the router's error after every attempt.
pub(super) fn failed(state: &AppState, started: Started, err: &ApiError) {
    if let Some((ledger, record)) = failed_row(state, started, err) {
        ledger.record(record);
    }
}

/// What [`failed`] records, handed back (see [`served_row`]).
pub(super) fn failed_row<'a>(
    state: &'a AppState,
    started: Started,
    err: &ApiError,
) -> Option<(&'a crate::ledger::Ledger, Record)> {
    observe_failure(state, &started, err);
    let ledger = state.ledger()?;
    let mut record = started.finish();
    record.status = Outcome::Failure;
    record.error_class = Some(err.kind.as_str().to_owned());
    // Nothing was served: nothing was charged.
    record.spend = Some(crate::cost::Decimal::ZERO);
    if let Some(last) = err.attempts.last() {
        record.model_id = Some(last.deployment.clone());
        if let Some(target) =
            state.runtime().router.targets().find(|t| t.deployment.id == last.deployment)
        {
            fill_deployment(&mut record, target);
        }
    }
    record.metadata.insert(
        "error_information".into(),
        json!({
            "error_class": err.kind.as_str(),
            "error_code": err.kind.http_status().as_u16().to_string(),
            "error_message": err.message,
            "llm_provider": record.provider,
        }),
    );
    if !err.attempts.is_empty() {
        let attempts: Vec<Value> = err
            .attempts
            .iter()
            .map(|a| json!({"model_id": a.deployment, "model": a.model, "error_class": a.class}))
            .collect();
        record.metadata.insert("attempts".into(), Value::Array(attempts));
    }
    Some((ledger, record))
}

fn fill_deployment(record: &mut Record, target: &Target) {
    let d = &target.deployment;
    record.model_id = Some(d.id.clone());
    record.provider = Some(d.provider.prefix().to_owned());
    if record.model.is_empty() {
        record.model = d.model.clone();
    }
    record.api_base = d.api_base.as_deref().map(clean_api_base);
}

fn fill_route(record: &mut Record, route: &Route) {
    let d = &route.deployment;
    record.model_id = Some(d.id.clone());
    record.provider = Some(d.provider.prefix().to_owned());
    if record.model.is_empty() {
        record.model = d.model.clone();
    }
    record.api_base = d.api_base.as_deref().map(clean_api_base);
    if !route.failed.is_empty() || route.retries > 0 || route.fallbacks > 0 {
        let failed: Vec<Value> = route
            .failed
            .iter()
            .map(|a| json!({"model_id": a.deployment.id, "error_class": a.error.kind.as_str()}))
            .collect();
        record.metadata.insert("attempts".into(), Value::Array(failed));
        record.metadata.insert("attempted_retries".into(), Value::from(route.retries));
        record.metadata.insert("attempted_fallbacks".into(), Value::from(route.fallbacks));
    }
}

fn fill_charge(record: &mut Record, charge: &Charge) {
    let u = &charge.usage;
    record.tokens = Tokens {
        prompt: u.total_input_tokens(),
        completion: u.output_tokens,
        cache_read: u.cache_read_input_tokens,
        cache_write: u.cache_creation_input_tokens,
    };
    record.spend = charge.cost;
    record.usage = Some(*u);
    record.stream_incomplete = !charge.complete;
    // The client's stream ended with an error event: the request failed, whatever was
    // already sent (and charged).
    if let Some(failure) = charge.failure {
        record.status = Outcome::Failure;
        record.error_class = Some(failure.kind.as_str().to_owned());
        record.metadata.insert(
            "error_information".into(),
            json!({
                "error_class": failure.kind.as_str(),
                "error_code": failure.kind.http_status().as_u16().to_string(),
                "error_message": failure.diagnosis.map_or_else(
                    || "the stream failed after its first event".to_owned(),
                    |id| format!("the stream failed after its first event ({id})"),
                ),
                "llm_provider": record.provider,
            }),
        );
    }
}

/// The request's labels, bounded: models the config does not serve are `other`, the key's
/// hash only when it is one the gateway knows (a virtual key, or the master key when one is
/// set), the end user only when `enable_end_user_cost_tracking_prometheus_only` is on.
fn who<'a>(runtime: &'a super::Runtime, started: &'a Started, model: &'a str) -> metrics::Who<'a> {
    let r = &started.record;
    let requested = r.model_group.as_str();
    let known_key = started.identified || runtime.master_key.is_some();
    metrics::Who {
        end_user: if runtime.config.general.metrics_end_user {
            r.end_user.as_deref().unwrap_or_default()
        } else {
            ""
        },
        hashed_api_key: if known_key { &r.api_key } else { "" },
        api_key_alias: r.key_alias.as_deref().unwrap_or_default(),
        team: r.team_id.as_deref().unwrap_or_default(),
        team_alias: started.team.as_ref().and_then(|t| t.team_alias.as_deref()).unwrap_or_default(),
        user: r.user.as_deref().unwrap_or_default(),
        requested_model: runtime.router.label_for(requested).unwrap_or(metrics::OTHER),
        model,
    }
}

fn deployment_labels<'a>(
    d: &'a crate::config::Deployment,
    api_base: &'a str,
) -> metrics::Deployment<'a> {
    metrics::Deployment {
        litellm_model_name: &d.model_as_written,
        model_id: &d.id,
        api_base,
        api_provider: d.provider.prefix(),
    }
}

/// `api_base` as the ledger shows it, without user info or query string; borrowed when it
/// has neither (the usual case), so a request allocates nothing for it.
fn api_base_label(base: Option<&str>) -> std::borrow::Cow<'_, str> {
    match base {
        None => "".into(),
        Some(b) if !b.contains(['@', '?', '#']) => b.into(),
        Some(b) => clean_api_base(b).into(),
    }
}

/// Counts, per deployment, the calls behind a served request: the failures, then the one
/// that served — a failure too when its stream failed after the first event.
fn deployment_calls(
    runtime: &super::Runtime,
    started: &Started,
    route: &Route,
    failure: Option<StreamFailure>,
) {
    if !started.metrics() {
        return;
    }
    let m = metrics::global();
    for a in &route.failed {
        let base = api_base_label(a.deployment.api_base.as_deref());
        let status = a.error.status.unwrap_or_else(|| a.error.kind.http_status().as_u16());
        let who = who(runtime, started, a.deployment.label_model());
        m.deployment_call(
            &deployment_labels(&a.deployment, &base),
            &who,
            status,
            a.error.kind.as_str(),
        );
    }
    let d = &route.deployment;
    let base = api_base_label(d.api_base.as_deref());
    let (status, class) =
        failure.map_or((200, ""), |f| (f.kind.http_status().as_u16(), f.kind.as_str()));
    m.deployment_call(
        &deployment_labels(d, &base),
        &who(runtime, started, d.label_model()),
        status,
        class,
    );
}

/// Records a served request: its deployment calls, then the request.
fn observe(state: &AppState, started: &Started, route: &Route, outcome: &metrics::Outcome) {
    if !started.metrics() {
        return;
    }
    let runtime = state.runtime();
    deployment_calls(&runtime, started, route, None);
    metrics::global().request(&who(&runtime, started, route.deployment.label_model()), outcome);
}

fn observe_failure(state: &AppState, started: &Started, err: &ApiError) {
    if !started.metrics() {
        return;
    }
    let runtime = state.runtime();
    let m = metrics::global();
    let mut model = "";
    for a in &err.attempts {
        let Some(t) = runtime.router.targets().find(|t| t.deployment.id == a.deployment) else {
            continue;
        };
        let d = &t.deployment;
        let base = api_base_label(d.api_base.as_deref());
        m.deployment_call(
            &deployment_labels(d, &base),
            &who(&runtime, started, d.label_model()),
            a.status,
            a.class,
        );
        model = t.deployment.label_model();
    }
    let outcome = metrics::Outcome {
        status: err.kind.http_status().as_u16(),
        class: err.kind.as_str(),
        diagnosis: err.diagnosis.as_ref().map_or("", |d| d.id),
        total: started.clock.elapsed(),
        attempts: u32::try_from(err.attempts.len()).unwrap_or(u32::MAX),
        ..metrics::Outcome::default()
    };
    m.request(&who(&runtime, started, model), &outcome);
}

/// A duration in milliseconds, to the microsecond (LiteLLM writes a float).
fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1_000.0
}

/// The counts a served route carries.
fn routed(route: &Route) -> metrics::Outcome {
    metrics::Outcome {
        status: 200,
        attempts: u32::try_from(route.failed.len() + 1).unwrap_or(u32::MAX),
        retries: route.retries,
        fallbacks: route.fallbacks,
        ..metrics::Outcome::default()
    }
}

fn charged(outcome: &mut metrics::Outcome, charge: Option<&Charge>) {
    let Some(charge) = charge else { return };
    // The client had a 200 head, then an error event: the request failed, as its ledger row
    // says, under the status the error event carries.
    if let Some(failure) = charge.failure {
        outcome.status = failure.kind.http_status().as_u16();
        outcome.class = failure.kind.as_str();
        outcome.diagnosis = failure.diagnosis.unwrap_or_default();
    }
    outcome.input_tokens = charge.usage.total_input_tokens();
    outcome.output_tokens = charge.usage.output_tokens;
    outcome.spend_nanos =
        charge.cost.map(|c| u64::try_from(crate::limits::to_nanos(c)).unwrap_or_default());
}
