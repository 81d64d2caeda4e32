//! Builds the ledger row of a chat request from what the handler has — the request, the
//! route that served it and its charge, or the error — and hands it to the ledger. The one
//! place the request path talks to the ledger: attribution (key alias, tags, session, team)
//! is added here.
//!
//! Never waits: `record` queues; a stream's row is recorded by a task that awaits its
//! charge (the ledger is told a row is coming, so a graceful stop waits for it).

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
use crate::cost::{Charge, Charged};
use crate::keys::Identity;
use crate::ledger::{Outcome, Record, Tokens, clean_api_base};
use crate::router::{Route, Target};

/// What is known when a request arrives.
pub(super) struct Started {
    record: Record,
    clock: Instant,
}

impl Started {
    pub fn new(
        headers: &HeaderMap,
        call_type: &str,
        chat: &ChatRequest,
        identity: Option<&Identity>,
    ) -> Self {
        let alias = identity.and_then(|i| i.key.key_alias.as_deref());
        let mut who = Attribution::of(headers, presented_key(headers), alias, chat);
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
        Self { record, clock: Instant::now() }
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
    let Some(ledger) = state.ledger() else { return };
    let mut record = started.finish();
    record.first_token_time = Some(record.end_time);
    fill_route(&mut record, route);
    if let Some(charge) = charge.now() {
        fill_charge(&mut record, charge);
    }
    ledger.record(record);
}

/// A streamed answer: the first event is here now, the charge when the stream ends.
pub(super) fn streamed(state: &AppState, started: Started, route: &Route, charge: Charged) {
    let Some(ledger) = state.ledger() else { return };
    let first_token = Utc::now();
    let mut pending = started;
    fill_route(&mut pending.record, route);
    let Charged::AtEnd(charge) = charge else {
        let mut record = pending.finish();
        record.first_token_time = Some(first_token);
        if let Some(charge) = charge.now() {
            fill_charge(&mut record, charge);
        }
        ledger.record(record);
        return;
    };
    let hold = ledger.hold();
    let ledger = ledger.clone();
    tokio::spawn(async move {
        let charge: Option<Charge> = charge.await;
        let mut record = pending.finish();
        record.first_token_time = Some(first_token);
        if let Some(charge) = &charge {
            fill_charge(&mut record, charge);
        }
        ledger.record(record);
        drop(hold);
    });
}

/// An answer from the response cache: no deployment was called, nothing was spent.
pub(super) fn cached(state: &AppState, started: Started, answer: &ChatResponse, key: &str) {
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
    let Some(ledger) = state.ledger() else { return };
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
    ledger.record(record);
}

fn fill_deployment(record: &mut Record, target: &Target) {
    let d = &target.deployment;
    record.model_id = Some(d.id.clone());
    record.provider = Some(d.provider.prefix().to_owned());
    record.model = d.model.clone();
    record.api_base = d.api_base.as_deref().map(clean_api_base);
}

fn fill_route(record: &mut Record, route: &Route) {
    let d = &route.deployment;
    record.model_id = Some(d.id.clone());
    record.provider = Some(d.provider.prefix().to_owned());
    record.model = d.model.clone();
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
}
