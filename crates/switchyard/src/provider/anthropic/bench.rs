//! The Anthropic translation steps of the request path, reachable without a network, for
//! `benches/hot_path.rs` only. Not an API (hidden from the docs); it follows the code.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::Eventsource;

use super::body::{self, Options, Purpose, Target};
use super::stream::{self, Idle};
use super::{DEFAULT_API_BASE, Site};
use crate::canonical::ChatRequest;
use crate::classify::UpstreamError;
use crate::config::Deployment;
use crate::provider::EventStream;

/// The Messages body `AnthropicProvider` sends for `req` (streamed when `req.stream`).
pub fn body(req: &ChatRequest, deployment: &Deployment) -> Result<Vec<u8>, UpstreamError> {
    let opts = Options {
        target: Target::Api,
        purpose: if req.stream { Purpose::Stream } else { Purpose::Send },
        model: &deployment.model,
        default_max_tokens: body::DEFAULT_MAX_TOKENS,
        drop_params: false,
        who: "the benchmark's deployment",
    };
    body::build(req, &opts).map(|b| b.bytes)
}

/// The canonical events of an SSE body that already arrived in `chunks`, decoded exactly as
/// a live answer is (SSE framing, event decoding, the idle timer): resolves at the commit
/// point, like `AnthropicProvider::stream`. Needs a tokio runtime with time enabled.
pub async fn stream(
    deployment: Arc<Deployment>,
    chunks: Vec<Bytes>,
) -> Result<EventStream, UpstreamError> {
    let site = Arc::new(Site {
        deployment,
        who: "the benchmark's deployment".to_owned(),
        host_port: "api.anthropic.com:443".to_owned(),
        base: DEFAULT_API_BASE.to_owned(),
        env: Arc::default(),
    });
    let body =
        futures_util::stream::iter(chunks.into_iter().map(Ok::<_, crate::provider::http::Error>));
    let idle = Idle { after: Duration::from_secs(600), setting: "the benchmark" };
    stream::open_sse(Box::pin(body.eventsource()), false, site, idle).await
}
