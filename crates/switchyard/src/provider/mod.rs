//! Provider adapters: each translates canonical requests to one upstream API and back.
//!
//! Providers never retry and never fall back: they return a classified
//! [`UpstreamError`] and the router decides. They know nothing about client surfaces.

mod mock;
mod unsupported;

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use futures_util::future::BoxFuture;

use crate::canonical::{ChatRequest, ChatResponse, StreamEvent};
use crate::classify::UpstreamError;
use crate::config::Deployment;

pub use mock::MockProvider;

/// A stream of canonical events. An `Err` item ends the stream: the upstream failed after
/// the response started.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, UpstreamError>> + Send>>;

pub trait Provider: Send + Sync {
    /// One complete answer.
    fn send<'a>(&'a self, req: &'a ChatRequest)
    -> BoxFuture<'a, Result<ChatResponse, UpstreamError>>;

    /// A streamed answer. Resolves only once the upstream accepted the request (its status
    /// and first event are known), so a failure here can still be retried or fall back.
    fn stream<'a>(&'a self, req: &'a ChatRequest)
    -> BoxFuture<'a, Result<EventStream, UpstreamError>>;

    /// Input tokens `req` would use, as the upstream counts them where it can.
    fn count_tokens<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<u64, UpstreamError>>;
}

/// The adapter that serves one deployment.
pub fn for_deployment(deployment: &Arc<Deployment>) -> Arc<dyn Provider> {
    if let Some(text) = &deployment.mock_response {
        return Arc::new(MockProvider::new(text.clone(), deployment.model.clone()));
    }
    Arc::new(unsupported::Unsupported::new(deployment))
}
