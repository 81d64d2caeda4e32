//! Anthropic Message Batches forwarded to Anthropic's own Batches API (and its batch
//! discount) instead of being run by the gateway.
//!
//! **The rule.** A batch is forwarded when every request names (after the key's model rules)
//! a group whose deployments are all on the Anthropic API (provider `anthropic`, servable,
//! no `mock_response`), all of them — across the whole batch — on one account (the same
//! `api_base` and key), and each group agrees on one upstream model. Anything else (a batch
//! mixing accounts or providers, a request the key may not make, a name nothing serves) is
//! run by the gateway, where each request gets the router, failover and its own error.
//!
//! A forwarded batch is stored like any other (its items keep the client's requests) with the
//! upstream's id (`upstream_id`) and the deployment it went through ([`Forwarding`]).
//! Reads, lists and cancels go to the upstream and refresh the stored status and counts; the
//! batch runner polls open ones in the background. When the upstream says a batch ended, its
//! results are read once and settled into the items ([`settle`]) before the batch is marked
//! ended, so every succeeded request gets its ledger row exactly once, whether or not the
//! client ever reads the results.

mod settle;
mod upstream;

use std::sync::Arc;

use axum::body::Body;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::AppState;
use super::batches_api::{store_failed, unavailable};
use super::chat::apply_key_rules;
use crate::batches::forwarded::{Forwarding, UpstreamBatch};
use crate::batches::model::{BatchRow, NewItem, Status};
use crate::classify::ApiError;
use crate::config::ProviderKind;
use crate::keys::Identity;
use crate::router::Target;
use crate::surface::anthropic;
use upstream::Upstream;

/// A batch that goes to Anthropic: the deployment whose API and key it goes through, and
/// the create request's body with each request's `model` the deployment's.
pub(super) struct Plan {
    upstream: Upstream,
    body: Bytes,
}

/// Whether the batch of `items` is forwarded (see the module's rule), and how.
pub(super) fn plan(
    state: &AppState,
    identity: Option<&Identity>,
    items: &[NewItem],
) -> Option<Plan> {
    let runtime = state.runtime();
    let mut account: Option<Target> = None;
    let mut requests = Vec::with_capacity(items.len());
    for item in items {
        let mut chat =
            anthropic::decode_messages_request(item.body.as_bytes(), &Default::default()).ok()?;
        apply_key_rules(state, identity, &mut chat).ok()?;
        let targets = runtime.router.reaches(&chat.model)?;
        let first = targets.first()?;
        for t in &targets {
            let d = &t.deployment;
            let anthropic = d.provider == ProviderKind::Anthropic
                && d.unservable.is_none()
                && d.mock_response.is_none();
            if !anthropic || d.model != first.deployment.model {
                return None;
            }
            match &account {
                Some(a) if !same_account(a, t) => return None,
                Some(_) => {}
                None => account = Some(t.clone()),
            }
        }
        let mut params: Value = serde_json::from_str(&item.body).ok()?;
        params["model"] = Value::String(first.deployment.model.clone());
        requests.push(json!({"custom_id": item.custom_id, "params": params}));
    }
    let body = Bytes::from(json!({"requests": requests}).to_string());
    Some(Plan { upstream: Upstream { target: account? }, body })
}

/// One account: the same API and the same key (compared here, never shown).
fn same_account(a: &Target, b: &Target) -> bool {
    let (a, b) = (&a.deployment, &b.deployment);
    let key =
        |d: &crate::config::Deployment| d.api_key.as_ref().map(|k| k.value.expose().to_owned());
    let base = |d: &crate::config::Deployment| {
        d.api_base
            .as_deref()
            .unwrap_or(crate::provider::ANTHROPIC_API_BASE)
            .trim_end_matches('/')
            .to_owned()
    };
    base(a) == base(b) && key(a) == key(b)
}

/// Sends the batch to Anthropic, then stores it with its upstream id.
pub(super) async fn create(
    state: &AppState,
    plan: Plan,
    mut b: BatchRow,
    items: &[NewItem],
) -> Result<BatchRow, ApiError> {
    let batches = state.batches().ok_or_else(unavailable)?;
    let up = plan.upstream.create(plan.body).await?;
    b.upstream_id = Some(up.id.clone());
    let forwarding = Forwarding {
        deployment: plan.upstream.target.deployment.id.clone(),
        counts: up.request_counts,
    };
    apply(&mut b, &forwarding, &up);
    if let Err(e) = batches.store.create_batch(&b, items).await {
        // Not kept here: nobody could read or pay for it, so it must not run there either.
        if let Err(err) = plan.upstream.cancel(&up.id).await {
            tracing::warn!(batch = %up.id, %err, "batches: a forwarded batch the store did not take could not be cancelled upstream");
        }
        return Err(store_failed(&e));
    }
    Ok(batches.store.batch(&b.id).await.map_err(|e| store_failed(&e))?.unwrap_or(b))
}

/// What the upstream says of the batch, in the row.
fn apply(b: &mut BatchRow, forwarding: &Forwarding, up: &UpstreamBatch) {
    let mut forwarding = forwarding.clone();
    forwarding.counts = up.request_counts;
    b.metadata = Some(forwarding.to_json());
    b.status = up.status();
    b.cancelling_at = b.cancelling_at.or(up.cancel_initiated_at());
    b.expires_at = up.expires_at().unwrap_or(b.expires_at);
    let ended = up.ended_at();
    match b.status {
        Status::Completed => b.completed_at = ended,
        Status::Cancelled => b.cancelled_at = ended,
        Status::Expired => b.expired_at = ended,
        _ => {}
    }
}

/// Reads the batch from the upstream and records what changed; when it has ended, its
/// results are settled first. An ended batch is as the store has it.
pub(super) async fn refresh(state: &AppState, b: BatchRow) -> Result<BatchRow, ApiError> {
    let (Some(forwarding), Some(id)) = (Forwarding::of(&b), b.upstream_id.clone()) else {
        return Ok(b);
    };
    if !b.status.is_open() {
        return Ok(b);
    }
    let upstream = Upstream::of(state, &forwarding)?;
    let up = upstream.get(&id).await?;
    record(state, &upstream, b, &forwarding, &up).await
}

async fn record(
    state: &AppState,
    upstream: &Upstream,
    mut b: BatchRow,
    forwarding: &Forwarding,
    up: &UpstreamBatch,
) -> Result<BatchRow, ApiError> {
    let batches = state.batches().ok_or_else(unavailable)?;
    if up.ended() {
        settle::settle(state, upstream, &b).await?;
    }
    apply(&mut b, forwarding, up);
    batches.store.update_forwarded(&b).await.map_err(|e| store_failed(&e))?;
    Ok(batches.store.batch(&b.id).await.map_err(|e| store_failed(&e))?.unwrap_or(b))
}

/// Cancels the batch upstream (an open one; the caller checked).
pub(super) async fn cancel(state: &AppState, b: BatchRow) -> Result<BatchRow, ApiError> {
    let (Some(forwarding), Some(id)) = (Forwarding::of(&b), b.upstream_id.clone()) else {
        return Ok(b);
    };
    let upstream = Upstream::of(state, &forwarding)?;
    let up = upstream.cancel(&id).await?;
    record(state, &upstream, b, &forwarding, &up).await
}

/// Deletes the batch upstream too (an ended one; the caller checked). One the upstream no
/// longer has is deleted here all the same.
pub(super) async fn delete(state: &AppState, b: &BatchRow) -> Result<(), ApiError> {
    let (Some(forwarding), Some(id)) = (Forwarding::of(b), b.upstream_id.as_deref()) else {
        return Ok(());
    };
    match Upstream::of(state, &forwarding)?.delete(id).await {
        Err(err) if err.diagnosis.as_ref().is_none_or(|d| d.id != "BAT-08") => Err(err),
        _ => Ok(()),
    }
}

/// The results of an ended batch, streamed from the upstream as they come: the lines are
/// Anthropic's, as a live request's answer is (its `model` the upstream's).
pub(super) async fn results(state: &AppState, b: &BatchRow) -> Result<Response, ApiError> {
    let (Some(forwarding), Some(id)) = (Forwarding::of(b), b.upstream_id.as_deref()) else {
        return Err(unavailable());
    };
    let upstream = Upstream::of(state, &forwarding)?;
    let answer = upstream.results(id).await?;
    let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/x-jsonl"));
    Ok(response)
}

/// Brings the open forwarded batch `id` up to date (the runner's background poll).
pub(super) async fn poll(state: Arc<AppState>, id: String) {
    let Some(batches) = state.batches() else { return };
    let b = match batches.store.batch(&id).await {
        Ok(Some(b)) => b,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(%err, batch = %id, "batches: cannot read a forwarded batch to poll it");
            return;
        }
    };
    if let Err(err) = refresh(&state, b).await {
        let diagnosis = err.diagnosis.as_ref().map_or("", |d| d.id);
        tracing::warn!(batch = %id, diagnosis, message = %err.message, "batches: polling a forwarded batch failed; retrying later");
    }
}
