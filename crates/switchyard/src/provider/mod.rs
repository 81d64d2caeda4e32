//! Provider adapters: each translates canonical requests to one upstream API and back.
//!
//! Providers never retry and never fall back: they return a classified
//! [`UpstreamError`] and the router decides. They know nothing about client surfaces.

mod anthropic;
mod bedrock;
mod client;
mod embedding_only;
mod http;
mod mock;
mod openai;
mod unservable;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_types::sdk_config::SharedHttpClient;
use futures_util::Stream;
use futures_util::future::BoxFuture;

use crate::canonical::{ChatRequest, ChatResponse, StreamEvent};
use crate::classify::UpstreamError;
use crate::config::{Config, Deployment, Env, ProcessEnv, ProviderKind};
use crate::credentials::{self, AwsEnvironment};
use crate::embedding::{EmbeddingRequest, Embeddings};
use crate::fastpath::{ChunkStream, RawAnswer, RawBody};

pub use anthropic::AnthropicProvider;
pub use anthropic::DEFAULT_API_BASE as ANTHROPIC_API_BASE;
/// The Anthropic translation steps without a network, for the microbenchmarks only.
#[doc(hidden)]
pub use anthropic::bench as anthropic_bench;
pub use anthropic::response::usage_of as anthropic_usage;
pub use bedrock::BedrockProvider;
/// What a Bedrock model id names (bare id, geo profile, ARN), for pricing and diagnoses.
pub use bedrock::ModelId as BedrockModelId;
pub use mock::MockProvider;
pub use openai::{OpenAiProvider, serves_responses};
/// The providers' parsers without a network, for the fuzz targets only.
#[doc(hidden)]
pub use {
    anthropic::fuzz as anthropic_fuzz, bedrock::fuzz as bedrock_fuzz, openai::fuzz as openai_fuzz,
};

/// A stream of canonical events. An `Err` item ends the stream: the upstream failed after
/// the response started.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, UpstreamError>> + Send>>;

pub trait Provider: Send + Sync {
    /// One complete answer.
    fn send<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, UpstreamError>>;

    /// A streamed answer. Resolves only once the upstream accepted the request (its status
    /// and first event are known), so a failure here can still be retried or fall back.
    fn stream<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<EventStream, UpstreamError>>;

    /// Input tokens `req` would use, as the upstream counts them where it can.
    fn count_tokens<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<u64, UpstreamError>>;

    /// Vectors for every input, in input order. Providers without an embeddings API keep
    /// this default, a classified EMB-01 like any other failed attempt, so the router treats
    /// it as it treats every failure.
    fn embed<'a>(
        &'a self,
        req: &'a EmbeddingRequest,
    ) -> BoxFuture<'a, Result<Embeddings, UpstreamError>> {
        let _ = req;
        Box::pin(async { Err(crate::embedding::no_embeddings_api()) })
    }

    /// One complete answer relayed as the upstream's bytes, for a client that speaks this
    /// deployment's own dialect (`fastpath`): `raw` is the client's body, `req` its canonical
    /// decoding. `None` when this deployment needs the canonical path for it (another
    /// dialect, or a body it would change beyond the model and its own edits).
    fn relay<'a>(
        &'a self,
        req: &'a ChatRequest,
        raw: &'a RawBody,
    ) -> Option<BoxFuture<'a, Result<RawAnswer, UpstreamError>>> {
        let _ = (req, raw);
        None
    }

    /// A streamed answer relayed as the upstream's events, as [`Provider::relay`]; resolves
    /// at the same commit point as [`Provider::stream`].
    fn relay_stream<'a>(
        &'a self,
        req: &'a ChatRequest,
        raw: &'a RawBody,
    ) -> Option<BoxFuture<'a, Result<ChunkStream, UpstreamError>>> {
        let _ = (req, raw);
        None
    }

    /// `req` relayed as bytes to this deployment's API root with the deployment's own
    /// credentials (the pass-through routes). Resolves with the upstream's answer whatever its
    /// status — a pass-through client reads the upstream's own errors — once its headers
    /// arrived; only a request that could not be sent or answered is an error.
    fn forward(&self, req: Forward) -> BoxFuture<'_, Result<reqwest::Response, UpstreamError>> {
        let _ = req;
        Box::pin(async {
            Err(UpstreamError::new(
                crate::classify::ErrorKind::InvalidRequest,
                "this deployment's provider takes no pass-through requests (only Anthropic and \
                 Bedrock deployments do)",
            ))
        })
    }
}

/// A client's request for a deployment's API as the pass-through routes relay it.
#[derive(Debug)]
pub struct Forward {
    pub method: ::http::Method,
    /// Path and query below the API root, without the leading `/`, as the client sent them.
    pub path: String,
    /// The client's headers to pass on: hop-by-hop headers, `host`, `content-length` and the
    /// gateway's own credentials are already removed.
    pub headers: ::http::HeaderMap,
    pub body: bytes::Bytes,
}

/// What every provider built from one config shares: the pooled upstream HTTP clients (one
/// per TLS setting) and gateway-wide settings. Built once per config load, so a reload picks
/// up a changed CA bundle; in-flight requests finish on the clients they started with.
pub struct Upstreams {
    clients: http::Clients,
    /// `litellm_settings.drop_params`: a deployment's own `drop_params` wins.
    drop_params: bool,
    /// `litellm_settings.request_timeout`: a deployment's own `timeout` wins.
    request_timeout: Option<Duration>,
    /// The AWS variables of this config load (process, then env files), as aws-config sees
    /// them for every Bedrock deployment.
    aws_env: Arc<AwsEnvironment>,
    /// The HTTPS client aws-config uses for STS and SSO calls (rustls on ring).
    aws_http: SharedHttpClient,
}

impl Upstreams {
    /// For `config`, with proxy and CA variables named from the process environment — the
    /// one the HTTP client itself honours — and the AWS variables from it and the config's
    /// env files.
    pub fn new(config: &Config) -> Self {
        Self::with_env(config, &ProcessEnv)
    }

    pub fn with_env(config: &Config, env: &dyn Env) -> Self {
        Self {
            clients: http::Clients::new(http::NetEnv::from_env(env))
                .with_http2(config.general.upstream_http2),
            drop_params: config.general.drop_params,
            request_timeout: config.general.request_timeout,
            aws_env: Arc::new(AwsEnvironment::snapshot(env, &config.env_files)),
            aws_http: credentials::http_client(),
        }
    }
}

/// The adapter that serves one deployment.
pub fn for_deployment(deployment: &Arc<Deployment>, upstreams: &Upstreams) -> Arc<dyn Provider> {
    let provider = adapter(deployment, upstreams);
    if deployment.unservable.is_none() && crate::embedding::only_embeds(deployment) {
        return Arc::new(embedding_only::EmbeddingOnly::new(deployment, provider));
    }
    provider
}

fn adapter(deployment: &Arc<Deployment>, upstreams: &Upstreams) -> Arc<dyn Provider> {
    if let Some(text) = &deployment.mock_response {
        return Arc::new(MockProvider::new(text.clone(), deployment.model.clone()));
    }
    if deployment.unservable.is_some() {
        return Arc::new(unservable::UnservableProvider::new(deployment));
    }
    match deployment.provider {
        ProviderKind::Anthropic => Arc::new(AnthropicProvider::new(deployment, upstreams)),
        ProviderKind::Bedrock(_) => Arc::new(BedrockProvider::new(deployment, upstreams)),
        ProviderKind::OpenAi(_) => Arc::new(OpenAiProvider::new(deployment, upstreams)),
        ProviderKind::Unsupported => Arc::new(unservable::UnservableProvider::new(deployment)),
    }
}
