//! One batch item, run the way a live request runs: decoded by its surface, the batch
//! owner's key rules and budgets applied (as the key is now: a key blocked or deleted since
//! the batch was created fails its remaining items), routed, and recorded in the ledger
//! with the batch's id, at the deployment's batch price when it has one. The answer or the
//! error is encoded in the batch's surface shapes; nothing is streamed.

use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;

use super::AppState;
use super::chat::apply_key_rules;
use super::ledger_hook::{self, Started};
use crate::batches::model::{Claimed, Finished, ItemState, request_id};
use crate::batches::{BatchRow, Execute, Surface};
use crate::canonical::ChatRequest;
use crate::classify::{ApiError, ErrorKind};
use crate::ledger::Record;
use crate::surface::responses::Echo;
use crate::surface::{anthropic, openai, responses};

/// The server's [`Execute`]: holds the state weakly, so a runner outliving the server
/// fails its items instead of keeping the state alive.
pub struct Items {
    state: Weak<AppState>,
}

impl Items {
    pub fn new(state: &Arc<AppState>) -> Arc<Self> {
        Arc::new(Self { state: Arc::downgrade(state) })
    }
}

impl Execute for Items {
    fn run(&self, batch: Arc<BatchRow>, item: Claimed) -> BoxFuture<'static, Finished> {
        let state = self.state.clone();
        Box::pin(async move {
            match state.upgrade() {
                Some(state) => run(&state, &batch, &item).await,
                None => failure(
                    &batch,
                    &item,
                    &ApiError::new(ErrorKind::Internal, "The gateway is stopping."),
                    None,
                ),
            }
        })
    }

    fn poll_forwarded(&self, id: String) -> BoxFuture<'static, ()> {
        let state = self.state.clone();
        Box::pin(async move {
            if let Some(state) = state.upgrade() {
                super::batch_forward::poll(state, id).await;
            }
        })
    }
}

/// The item's body decoded by its endpoint's surface; a Responses request also brings the
/// settings its Response echoes.
fn decode(batch: &BatchRow, body: &[u8]) -> Result<(ChatRequest, Option<Echo>), ApiError> {
    match batch.endpoint.as_str() {
        "/v1/messages" => anthropic::decode_messages_request(body, &axum::http::HeaderMap::new())
            .map(|chat| (chat, None)),
        "/v1/responses" => {
            let mut decoded = responses::decode_responses_request(body)?;
            if let Some(err) = decoded.refuse_built_in(&decoded.chat.model) {
                return Err(err);
            }
            Ok((std::mem::take(&mut decoded.chat), Some(decoded.echo)))
        }
        _ => openai::decode_chat_request(body).map(|chat| (chat, None)),
    }
}

async fn run(state: &Arc<AppState>, batch: &BatchRow, item: &Claimed) -> Finished {
    let identity = if batch.owner.is_empty() {
        None
    } else {
        match state.keys().map(|k| k.identify_token(&batch.owner, chrono::Utc::now())) {
            Some(Ok(identity)) => Some(identity),
            Some(Err(refusal)) => return failure(batch, item, &refusal.to_error(), None),
            None => {
                let err = ApiError::new(
                    ErrorKind::Unauthorized,
                    "The key that created this batch cannot be checked: the key store is not available.",
                );
                return failure(batch, item, &err, None);
            }
        }
    };
    let (mut chat, echo) = match decode(batch, item.body.as_bytes()) {
        Ok(decoded) => decoded,
        Err(err) => return failure(batch, item, &err, None),
    };
    // One JSON answer per line: a batch has no one to stream to.
    chat.stream = false;
    let mut caller = match apply_key_rules(state, identity.as_ref(), &mut chat) {
        Ok(caller) => caller,
        Err(err) => return failure(batch, item, &err, None),
    };
    std::sync::Arc::make_mut(&mut caller).batch = true;
    let runtime = state.runtime();
    let started = Started::batch_item(
        request_id(&batch.id, item.line),
        &batch.owner,
        &batch.id,
        &item.custom_id,
        &chat,
        identity.as_ref(),
        runtime.config.general.metrics,
    );
    match runtime.router.send_as(&chat, &caller).await {
        Ok(served) => {
            let body = match (&echo, batch.surface) {
                (Some(echo), _) => {
                    let id = responses::new_id();
                    responses::encode_response(&id, responses::unix_now(), echo, &served.value)
                        .to_string()
                }
                (None, Surface::Anthropic) => text(&anthropic::encode_response(&served.value)),
                (None, Surface::OpenAi) => text(&openai::encode_response(&served.value)),
            };
            let cost = served.charge.now().and_then(|c| c.cost);
            let row = ledger_hook::served_row(state, started, &served.route, &served.charge);
            Finished {
                state: ItemState::Succeeded,
                status_code: 200,
                result: body,
                cost,
                ledger: row.and_then(|(_, r)| kept(&r)),
            }
        }
        Err(err) => {
            let row = ledger_hook::failed_row(state, started, &err);
            failure(batch, item, &err, row.and_then(|(_, r)| kept(&r)))
        }
    }
}

/// The row as the item keeps it until the ledger confirmed it.
fn kept(record: &Record) -> Option<String> {
    serde_json::to_string(record).ok()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An errored item: the error body the live route would have answered, and its status.
fn failure(batch: &BatchRow, item: &Claimed, err: &ApiError, ledger: Option<String>) -> Finished {
    let body = match batch.surface {
        Surface::OpenAi => openai::error_body(err),
        Surface::Anthropic => anthropic::error_body(err, Some(&request_id(&batch.id, item.line))),
    };
    Finished {
        state: ItemState::Errored,
        status_code: i64::from(err.kind.http_status().as_u16()),
        result: text(&body),
        cost: None,
        ledger,
    }
}
