//! A deployment that only embeds (`model_info.mode: embedding`, a Bedrock embedding model):
//! chat, streams and token counts are refused with EMB-02 before anything is sent, instead
//! of an upstream error that would not say why; embeddings go to the provider underneath.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{EventStream, Provider};
use crate::canonical::{ChatRequest, ChatResponse};
use crate::classify::UpstreamError;
use crate::config::Deployment;
use crate::embedding::{self, EmbeddingRequest, Embeddings};

pub struct EmbeddingOnly {
    inner: Arc<dyn Provider>,
    refusal: UpstreamError,
}

impl EmbeddingOnly {
    pub fn new(deployment: &Deployment, inner: Arc<dyn Provider>) -> Self {
        Self { inner, refusal: embedding::only_embeddings(deployment) }
    }
}

impl Provider for EmbeddingOnly {
    fn send<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, UpstreamError>> {
        Box::pin(async move { Err(self.refusal.clone()) })
    }

    fn stream<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<EventStream, UpstreamError>> {
        Box::pin(async move { Err(self.refusal.clone()) })
    }

    fn count_tokens<'a>(&'a self, _: &'a ChatRequest) -> BoxFuture<'a, Result<u64, UpstreamError>> {
        Box::pin(async move { Err(self.refusal.clone()) })
    }

    fn embed<'a>(
        &'a self,
        req: &'a EmbeddingRequest,
    ) -> BoxFuture<'a, Result<Embeddings, UpstreamError>> {
        self.inner.embed(req)
    }
}
