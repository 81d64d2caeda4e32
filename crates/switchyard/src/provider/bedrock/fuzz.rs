//! The Bedrock provider's event-stream decoding, reachable without a network, for the fuzz
//! targets in `fuzz/` only. Not an API (hidden from the docs); it follows the code.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::stream::Body;
use super::{BedrockProvider, Limit, Site, converse_stream, stream};
use crate::canonical::StreamEvent;
use crate::classify::UpstreamError;
use crate::config::Deployment;
use crate::provider::Upstreams;

/// A provider built from `deployment` exactly as the router builds one.
pub struct Fuzz {
    site: Arc<Site>,
}

impl Fuzz {
    pub fn new(deployment: &Arc<Deployment>, upstreams: &Upstreams) -> Self {
        Self { site: Arc::clone(&BedrockProvider::new(deployment, upstreams).site) }
    }

    /// Every item of the answer an upstream streaming `chunks` (AWS event-stream frames)
    /// would give: InvokeModelWithResponseStream, or with `converse` ConverseStream.
    pub async fn stream(
        &self,
        chunks: Vec<Bytes>,
        converse: bool,
        json_mode: bool,
    ) -> Vec<Result<StreamEvent, UpstreamError>> {
        let body: Body =
            Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok::<_, reqwest::Error>)));
        let idle = Limit { after: Duration::from_secs(3600), setting: "the fuzz target" };
        let site = Arc::clone(&self.site);
        let opened = if converse {
            converse_stream::open_body(body, json_mode, "msg_fuzz".into(), site, idle).await
        } else {
            stream::open_body(body, json_mode, site, idle).await
        };
        match opened {
            Ok(events) => events.collect().await,
            Err(e) => vec![Err(e)],
        }
    }
}
