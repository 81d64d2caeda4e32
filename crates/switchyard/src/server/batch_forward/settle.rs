//! Settles an ended forwarded batch: reads its results from the upstream once, line by line,
//! and stores each line's outcome in its item — a succeeded one with its cost at the batch
//! price (the deployment's batch rates, else Anthropic's half price) and its ledger row (the owner's key, team and user; request id `<batch>-<line>`;
//! call type as for the batches the gateway runs). An item is settled only while it is
//! queued, so reading the results again, another replica, or a restart after a partial
//! settle never charge a request twice; the rows are handed to the ledger by the batch runner
//! as for any item (kept until the ledger confirmed them).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::Upstream;
use crate::batches::model::{self, BatchRow, Claimed, Finished, ItemState};
use crate::canonical::ChatRequest;
use crate::classify::ApiError;
use crate::config::ProviderKind;
use crate::cost::{Charge, Charged};
use crate::keys::Identity;
use crate::router::{Route, Target};
use crate::server::AppState;
use crate::server::batches_api::{store_failed, unavailable};
use crate::server::chat::apply_key_rules;
use crate::server::ledger_hook::{self, Started};
use crate::surface::anthropic;

#[derive(Deserialize)]
struct Line {
    custom_id: String,
    result: Value,
}

pub(super) async fn settle(
    state: &AppState,
    upstream: &Upstream,
    b: &BatchRow,
) -> Result<(), ApiError> {
    let store = &state.batches().ok_or_else(unavailable)?.store;
    let pending = store.unsettled(&b.id).await.map_err(|e| store_failed(&e))?;
    if pending.is_empty() {
        return Ok(());
    }
    let mut by_custom_id: HashMap<String, Claimed> =
        pending.into_iter().map(|c| (c.custom_id.clone(), c)).collect();
    let id = b.upstream_id.as_deref().unwrap_or_default();
    let answer = upstream.results(id).await?;
    let owner = owner_identity(state, b);
    let mut stream = answer.bytes_stream();
    let mut buffer = Vec::new();
    let mut ended = false;
    while !ended {
        match stream.next().await {
            Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
            Some(Err(e)) => return Err(read_failed(&e.to_string())),
            None => ended = true,
        }
        // Whole lines only; the rest waits for the next chunk (or is the last line).
        let cut = if ended {
            buffer.len()
        } else {
            buffer.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1)
        };
        let lines: Vec<u8> = buffer.drain(..cut).collect();
        for text in lines.split(|&c| c == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        {
            let Ok(line) = serde_json::from_slice::<Line>(text) else {
                tracing::warn!(batch = %b.id, "batches: a result line of a forwarded batch is not JSON; skipped");
                continue;
            };
            let Some(item) = by_custom_id.remove(&line.custom_id) else { continue };
            let done = finished(state, b, &item, owner.as_ref(), &line.result, upstream);
            store
                .settle(&b.id, item.line, &done, model::now())
                .await
                .map_err(|e| store_failed(&e))?;
        }
    }
    Ok(())
}

/// The batch owner as the key store has it now; `None` for the master key or a key gone
/// since (the row still names the owner's key hash).
fn owner_identity(state: &AppState, b: &BatchRow) -> Option<Identity> {
    if b.owner.is_empty() {
        return None;
    }
    state.keys()?.identify_token(&b.owner, chrono::Utc::now()).ok()
}

/// One result line as the item's final state.
fn finished(
    state: &AppState,
    b: &BatchRow,
    item: &Claimed,
    identity: Option<&Identity>,
    result: &Value,
    upstream: &Upstream,
) -> Finished {
    let kind = result["type"].as_str().unwrap_or_default();
    let (state_of, status) = match kind {
        "succeeded" => (ItemState::Succeeded, 200),
        // The upstream's error body is kept; its status is not part of a result line.
        "errored" => (ItemState::Errored, 0),
        "expired" => (ItemState::Expired, 0),
        _ => (ItemState::Canceled, 0),
    };
    let mut done = Finished {
        state: state_of,
        status_code: status,
        result: String::new(),
        cost: None,
        ledger: None,
    };
    if state_of == ItemState::Errored {
        done.result = result["error"].to_string();
    }
    if state_of != ItemState::Succeeded {
        return done;
    }
    let mut chat = anthropic::decode_messages_request(item.body.as_bytes(), &Default::default())
        .unwrap_or_else(|_| ChatRequest::default());
    // The model rules as at creation; a key blocked since does not undo what was served.
    let _ = apply_key_rules(state, identity, &mut chat);
    let target = serving(state, &chat.model).unwrap_or_else(|| upstream.target.clone());
    let usage = crate::provider::anthropic_usage(&result["message"]["usage"]);
    let charge = Charge::new(usage, &target.price.for_anthropic_batch(), true);
    let runtime = state.runtime();
    let started = Started::batch_item(
        model::request_id(&b.id, item.line),
        &b.owner,
        &b.id,
        &item.custom_id,
        &chat,
        identity,
        runtime.config.general.metrics,
    );
    let route = Route {
        deployment: target.deployment.clone(),
        failed: Vec::new(),
        retries: 0,
        fallbacks: 0,
        upstream: Duration::ZERO,
        skipped: Vec::new(),
        rate: Default::default(),
    };
    done.cost = charge.cost;
    let row = ledger_hook::served_row(state, started, &route, &Charged::Now(charge));
    done.ledger = row.and_then(|(_, r)| serde_json::to_string(&r).ok());
    done
}

/// The Anthropic deployment that served `name`'s requests (the first of its group).
fn serving(state: &AppState, name: &str) -> Option<Target> {
    let targets = state.runtime().router.reaches(name)?;
    targets.into_iter().find(|t| t.deployment.provider == ProviderKind::Anthropic)
}

fn read_failed(message: &str) -> ApiError {
    let mut err = ApiError::new(
        crate::classify::ErrorKind::UpstreamUnavailable,
        format!("The results of a forwarded message batch could not be read to the end: {message}"),
    );
    err.diagnosis = Some(crate::classify::Diagnosis::new(
        "BAT-09",
        "The Anthropic Batches API stopped sending the results part-way. What was read is recorded; nothing is recorded twice.",
        "Retry in a moment; the gateway also reads them again on its next poll.",
    ));
    err
}
