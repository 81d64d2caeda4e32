//! The Anthropic provider's parsers, reachable without a network, for the fuzz targets in
//! `fuzz/` only. Not an API (hidden from the docs); it follows the code.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;

use super::body::{self, Options, Purpose, Target};
use super::stream::{self, Idle};
use super::{AnthropicProvider, Site};
use crate::canonical::{ChatRequest, StreamEvent};
use crate::classify::UpstreamError;
use crate::config::Deployment;
use crate::provider::Upstreams;

/// A provider built from `deployment` exactly as the router builds one.
pub struct Fuzz {
    site: Arc<Site>,
}

impl Fuzz {
    pub fn new(deployment: &Arc<Deployment>, upstreams: &Upstreams) -> Self {
        Self { site: Arc::clone(&AnthropicProvider::new(deployment, upstreams).site) }
    }

    /// The Messages body sent upstream for `req`.
    pub fn body(&self, req: &ChatRequest) -> Result<Vec<u8>, UpstreamError> {
        let opts = Options {
            target: Target::Api,
            purpose: if req.stream { Purpose::Stream } else { Purpose::Send },
            model: &self.site.deployment.model,
            default_max_tokens: body::DEFAULT_MAX_TOKENS,
            drop_params: false,
            who: &self.site.who,
        };
        body::build(req, &opts).map(|b| b.bytes)
    }

    /// Every item of the answer an upstream streaming `chunks` (an SSE body) would give:
    /// SSE framing, event decoding, the end-of-stream checks.
    pub async fn stream(
        &self,
        chunks: Vec<Bytes>,
        json_mode: bool,
    ) -> Vec<Result<StreamEvent, UpstreamError>> {
        let body = futures_util::stream::iter(
            chunks.into_iter().map(Ok::<_, crate::provider::http::Error>),
        );
        let idle = Idle { after: Duration::from_secs(3600), setting: "the fuzz target" };
        match stream::open_sse(
            Box::pin(body.eventsource()),
            json_mode,
            Arc::clone(&self.site),
            idle,
        )
        .await
        {
            Ok(events) => events.collect().await,
            Err(e) => vec![Err(e)],
        }
    }
}
