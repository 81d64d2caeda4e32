//! The OpenAI-compatible provider's parsers, reachable without a network, for the fuzz
//! targets in `fuzz/` only. Not an API (hidden from the docs); it follows the code.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;

use super::body::{self, Options};
use super::stream::{self, Idle};
use super::{OpenAiProvider, Site, native};
use crate::canonical::{ChatRequest, StreamEvent};
use crate::classify::UpstreamError;
use crate::config::{Deployment, OpenAiFlavor};
use crate::provider::Upstreams;

/// A provider built from `deployment` exactly as the router builds one.
pub struct Fuzz {
    site: Arc<Site>,
}

impl Fuzz {
    pub fn new(deployment: &Arc<Deployment>, upstreams: &Upstreams) -> Self {
        Self { site: Arc::clone(&OpenAiProvider::new(deployment, upstreams).site) }
    }

    /// The chat completions body sent upstream for `req` (OpenAI's own API).
    pub fn body(&self, req: &ChatRequest) -> Result<Vec<u8>, UpstreamError> {
        let opts = Options {
            model: &self.site.deployment.model,
            flavor: OpenAiFlavor::OpenAi,
            stream: req.stream,
            max_tokens_field: "max_completion_tokens",
            drop_params: false,
            who: &self.site.who,
        };
        body::build(req, &opts)
    }

    /// Every item of the answer an upstream streaming `chunks` would give: chat completion
    /// chunks, or with `responses` the Responses API's events.
    pub async fn stream(
        &self,
        chunks: Vec<Bytes>,
        responses: bool,
    ) -> Vec<Result<StreamEvent, UpstreamError>> {
        let body = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
        let response = crate::provider::http::Response::from(reqwest::Response::from(
            http::Response::new(reqwest::Body::wrap_stream(body)),
        ));
        let idle = Idle { after: std::time::Duration::from_secs(3600), setting: "the fuzz target" };
        let site = Arc::clone(&self.site);
        let opened = if responses {
            stream::open_with::<native::NativeDecoder>(response, site, idle).await
        } else {
            stream::open(response, site, idle).await
        };
        match opened {
            Ok(events) => events.collect().await,
            Err(e) => vec![Err(e)],
        }
    }
}
