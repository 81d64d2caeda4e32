//! The Bedrock provider's Converse calls: `converse`, `converse-stream` and CountTokens with a
//! `converse` input, over the same authorised POST, timeouts and classification as InvokeModel
//! (`mod.rs`). Only the body (`converse.rs`) and the stream decoding (`converse_stream.rs`)
//! differ.

use std::sync::Arc;

use serde::Deserialize;

use super::converse::{self, Body, Options};
use super::{BedrockProvider, JSON, converse_stream, counting_unavailable};
use crate::canonical::{ChatRequest, ChatResponse};
use crate::classify::{ErrorKind, UpstreamError};
use crate::provider::EventStream;
use crate::provider::http::{Timeout, bounded, transport_error};

/// The Converse endpoints of one deployment.
pub(super) struct Urls {
    send: String,
    stream: String,
}

impl Urls {
    /// For the runtime endpoint `base` and the model's encoded path segment.
    pub fn new(base: &str, path: &str) -> Self {
        Self {
            send: format!("{base}/model/{path}/converse"),
            stream: format!("{base}/model/{path}/converse-stream"),
        }
    }
}

impl BedrockProvider {
    fn converse_body(&self, req: &ChatRequest) -> Result<Body, UpstreamError> {
        if let Some(error) = &self.blocked {
            return Err(error.clone());
        }
        let d = &self.site.deployment;
        converse::build(
            req,
            &Options {
                default_max_tokens: crate::provider::anthropic::body::configured_max_tokens(
                    &d.model_info,
                ),
                drop_params: self.drop_params,
                who: &self.site.who,
            },
        )
    }

    pub(super) async fn converse_send(
        &self,
        urls: &Urls,
        req: &ChatRequest,
    ) -> Result<ChatResponse, UpstreamError> {
        let body = self.converse_body(req)?;
        let bytes = body.bytes()?;
        bounded(&self.site.who, self.timeout, Timeout::Request, async {
            let response = self.call(&urls.send, bytes, JSON).await?;
            let id = converse::message_id(response.headers());
            let answer = response
                .bytes()
                .await
                .map_err(|e| transport_error(&e, &self.site.destination()))?;
            converse::parse(&answer, body.json_mode, id, &self.site.deployment.model)
        })
        .await
    }

    pub(super) async fn converse_stream(
        &self,
        urls: &Urls,
        req: &ChatRequest,
    ) -> Result<EventStream, UpstreamError> {
        let body = self.converse_body(req)?;
        let bytes = body.bytes()?;
        let limit = self.stream_timeout;
        // The commit point: status and first event, both within stream_timeout.
        bounded(&self.site.who, limit, Timeout::FirstEvent, async {
            let response =
                self.call(&urls.stream, bytes, "application/vnd.amazon.eventstream").await?;
            let id = converse::message_id(response.headers());
            converse_stream::open(response, body.json_mode, id, Arc::clone(&self.site), limit).await
        })
        .await
    }

    /// CountTokens with the Converse input; an estimate where counting is not offered.
    pub(super) async fn converse_count_tokens(
        &self,
        req: &ChatRequest,
    ) -> Result<u64, UpstreamError> {
        let body = self.converse_body(req)?;
        let payload = serde_json::to_vec(&converse::count_input(&body.value)).map_err(|e| {
            UpstreamError::new(
                ErrorKind::Internal,
                format!("the count body cannot be encoded: {e}"),
            )
        })?;
        let counted = bounded(&self.site.who, self.timeout, Timeout::Request, async {
            let response = self.call(&self.count_url, payload, JSON).await?;
            let bytes = response
                .bytes()
                .await
                .map_err(|e| transport_error(&e, &self.site.destination()))?;
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Count {
                input_tokens: u64,
            }
            serde_json::from_slice::<Count>(&bytes).map(|c| c.input_tokens).map_err(|e| {
                UpstreamError::new(
                    ErrorKind::UpstreamUnavailable,
                    format!("Bedrock's token count is unreadable: {e}"),
                )
            })
        })
        .await;
        match counted {
            Err(e) if counting_unavailable(&e) => {
                tracing::debug!(who = %self.site.who, error = %e.message, "CountTokens unavailable; estimating");
                Ok(crate::tokens::estimate_request(req))
            }
            other => other,
        }
    }
}
