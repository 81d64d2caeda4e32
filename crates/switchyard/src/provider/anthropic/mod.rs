//! The Anthropic Messages API provider (`anthropic/<model>` deployments): one request per
//! call over the shared pooled client, the body built once from the canonical request, the
//! answer (JSON or SSE) translated back, every failure classified.
//!
//! Never retries, never falls back, never logs a key or a body; the key leaves this module
//! only in the `x-api-key` header, marked sensitive.

// `body`, `response` and `stream` are shared with Bedrock InvokeModel, which speaks the
// same Messages body and events.
#[doc(hidden)]
pub mod bench;
pub(super) mod body;
#[doc(hidden)]
pub mod fuzz;
mod params;
mod relay;
pub(super) mod response;
pub(super) mod stream;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use serde::Deserialize;

use self::body::{Body, Options, Purpose, Target};
use super::client::Endpoint;
use super::http::{
    Client, Clients, Destination, Limit, NetEnv, Response, Timeout, bounded, read_capped,
    setup_error, transport_error,
};
use super::{EventStream, Forward, Provider, Upstreams};
use crate::canonical::{ChatRequest, ChatResponse};
use crate::classify::{
    ErrorKind, UpstreamError, anthropic_http_error, anthropic_missing_key, anthropic_unsendable_key,
};
use crate::config::Deployment;
use crate::fastpath::{ChunkStream, RawAnswer, RawBody};
use crate::surface::anthropic::{API_KEY_HEADER, BETA_HEADER};

/// The Anthropic API, when a deployment names no `api_base`.
pub const DEFAULT_API_BASE: &str = "https://api.anthropic.com";
/// The API version this provider speaks.
pub const API_VERSION: &str = "2023-06-01";
/// The per-request timeout when neither the deployment (`timeout`) nor
/// `litellm_settings.request_timeout` sets one: the Anthropic SDKs' 10 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// What a request and its stream need to name and reach their deployment.
pub(super) struct Site {
    deployment: Arc<Deployment>,
    /// "the deployment of `alias` (anthropic/model)".
    who: String,
    /// `host:port` of the API base.
    host_port: String,
    /// The API root URL.
    base: String,
    env: Arc<NetEnv>,
}

impl Site {
    fn destination(&self) -> Destination<'_> {
        Destination {
            who: &self.who,
            host_port: &self.host_port,
            base: &self.base,
            ssl: &self.deployment.ssl_verify,
            env: &self.env,
        }
    }
}

pub struct AnthropicProvider {
    site: Arc<Site>,
    client: Result<Client, UpstreamError>,
    key: Result<HeaderValue, UpstreamError>,
    messages_url: Endpoint,
    count_url: Endpoint,
    default_max_tokens: u32,
    drop_params: bool,
    timeout: Limit,
    stream_timeout: Limit,
}

impl AnthropicProvider {
    pub fn new(deployment: &Arc<Deployment>, upstreams: &Upstreams) -> Self {
        let d = deployment.as_ref();
        let who = format!("the deployment of `{}` (anthropic/{})", d.alias, d.model);
        let base = api_base(d.api_base.as_deref());
        let host_port = reqwest::Url::parse(&base)
            .ok()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
            .unwrap_or_else(|| base.clone());
        let clients: &Clients = &upstreams.clients;
        let client = clients.get(&d.ssl_verify).map_err(|problem| setup_error(&who, &problem));
        let key = match &d.api_key {
            None => Err(anthropic_missing_key(d)),
            Some(k) => HeaderValue::from_str(k.value.expose())
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| anthropic_unsendable_key(d)),
        };
        let timeout = match (d.timeout, upstreams.request_timeout) {
            (Some(after), _) => Limit { after, setting: "the deployment's timeout" },
            (None, Some(after)) => Limit { after, setting: "litellm_settings.request_timeout" },
            (None, None) => Limit { after: DEFAULT_TIMEOUT, setting: "the default timeout" },
        };
        let stream_timeout = match d.stream_timeout {
            Some(after) => Limit { after, setting: "the deployment's stream_timeout" },
            None => timeout,
        };
        Self {
            messages_url: Endpoint::new(format!("{base}/v1/messages")),
            count_url: Endpoint::new(format!("{base}/v1/messages/count_tokens")),
            site: Arc::new(Site {
                deployment: Arc::clone(deployment),
                who,
                host_port,
                base,
                env: clients.net_env(),
            }),
            client,
            key,
            default_max_tokens: body::configured_max_tokens(&d.model_info)
                .unwrap_or(body::DEFAULT_MAX_TOKENS),
            drop_params: d.drop_params.unwrap_or(upstreams.drop_params),
            timeout,
            stream_timeout,
        }
    }

    fn body(&self, req: &ChatRequest, purpose: Purpose) -> Result<Body, UpstreamError> {
        body::build(
            req,
            &Options {
                target: Target::Api,
                purpose,
                model: &self.site.deployment.model,
                default_max_tokens: self.default_max_tokens,
                drop_params: self.drop_params,
                who: &self.site.who,
            },
        )
    }

    /// The POST of `body` to `url` with the API's headers.
    fn post(
        &self,
        url: &Endpoint,
        body: Vec<u8>,
        betas: &[String],
    ) -> Result<Request<Bytes>, UpstreamError> {
        let key = self.key.as_ref().map_err(Clone::clone)?;
        // Room for the user agent, `accept` and a traceparent without growing.
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(API_KEY_HEADER, key.clone());
        headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static(API_VERSION));
        headers.insert(CONTENT_TYPE, APPLICATION_JSON);
        if !betas.is_empty() {
            let joined = betas.join(",");
            let value = HeaderValue::from_str(&joined).map_err(|_| {
                UpstreamError::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "the beta flags `{joined}` cannot be sent in the anthropic-beta header"
                    ),
                )
            })?;
            headers.insert(BETA_HEADER, value);
        }
        crate::telemetry::propagate_into(&mut headers);
        url.post(headers, Bytes::from(body), &self.site.who)
    }

    /// Sends and, for a non-2xx answer, reads and classifies the error.
    async fn call(
        &self,
        request: Request<Bytes>,
        request_bytes: usize,
    ) -> Result<Response, UpstreamError> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let response = client
            .send(request)
            .await
            .map_err(|e| transport_error(&e, &self.site.destination()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = read_capped(response).await;
        Err(anthropic_http_error(
            &self.site.deployment,
            status.as_u16(),
            &headers,
            &body,
            request_bytes,
        ))
    }
}

impl Provider for AnthropicProvider {
    fn send<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, UpstreamError>> {
        Box::pin(async move {
            let Body { bytes, json_mode } = self.body(req, Purpose::Send)?;
            let size = bytes.len();
            let request = self.post(&self.messages_url, bytes, &req.betas)?;
            bounded(&self.site.who, self.timeout, Timeout::Request, async {
                let response = self.call(request, size).await?;
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| transport_error(&e, &self.site.destination()))?;
                response::parse(&bytes, json_mode)
            })
            .await
        })
    }

    fn stream<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<EventStream, UpstreamError>> {
        Box::pin(async move {
            let Body { bytes, json_mode } = self.body(req, Purpose::Stream)?;
            let size = bytes.len();
            let request = self.post(&self.messages_url, bytes, &req.betas)?;
            let limit = self.stream_timeout;
            let idle = stream::Idle { after: limit.after, setting: limit.setting };
            // The commit point: status and first event, both within stream_timeout.
            bounded(&self.site.who, limit, Timeout::FirstEvent, async {
                let response = self.call(request, size).await?;
                stream::open(response, json_mode, Arc::clone(&self.site), idle).await
            })
            .await
        })
    }

    fn relay<'a>(
        &'a self,
        req: &'a ChatRequest,
        raw: &'a RawBody,
    ) -> Option<BoxFuture<'a, Result<RawAnswer, UpstreamError>>> {
        let bytes = relay::body(req, raw, &self.site.deployment.model)?;
        Some(Box::pin(async move {
            let size = bytes.len();
            let request = self.post(&self.messages_url, bytes, &req.betas)?;
            bounded(&self.site.who, self.timeout, Timeout::Request, async {
                let response = self.call(request, size).await?;
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| transport_error(&e, &self.site.destination()))?;
                relay::answer(bytes)
            })
            .await
        }))
    }

    fn relay_stream<'a>(
        &'a self,
        req: &'a ChatRequest,
        raw: &'a RawBody,
    ) -> Option<BoxFuture<'a, Result<ChunkStream, UpstreamError>>> {
        let bytes = relay::body(req, raw, &self.site.deployment.model)?;
        Some(Box::pin(async move {
            let size = bytes.len();
            let request = self.post(&self.messages_url, bytes, &req.betas)?;
            let limit = self.stream_timeout;
            let idle = stream::Idle { after: limit.after, setting: limit.setting };
            bounded(&self.site.who, limit, Timeout::FirstEvent, async {
                let response = self.call(request, size).await?;
                relay::open(response, Arc::clone(&self.site), idle).await
            })
            .await
        }))
    }

    fn forward(&self, req: Forward) -> BoxFuture<'_, Result<reqwest::Response, UpstreamError>> {
        Box::pin(async move {
            let client = self.client.as_ref().map_err(Clone::clone)?;
            let key = self.key.as_ref().map_err(Clone::clone)?;
            let url = format!("{}/{}", self.site.base, req.path);
            let mut headers = req.headers;
            // The deployment's key replaces whatever credential the client might have sent.
            headers.insert(API_KEY_HEADER, key.clone());
            if !headers.contains_key(ANTHROPIC_VERSION) {
                headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static(API_VERSION));
            }
            let request = client.reqwest().request(req.method, url).headers(headers).body(req.body);
            let request = crate::telemetry::propagate(request);
            // Until the answer's headers: a streamed body then flows for as long as it lasts.
            bounded(&self.site.who, self.timeout, Timeout::Request, async {
                request.send().await.map_err(|e| transport_error(&e, &self.site.destination()))
            })
            .await
        })
    }

    fn count_tokens<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<u64, UpstreamError>> {
        Box::pin(async move {
            let Body { bytes, .. } = self.body(req, Purpose::CountTokens)?;
            let size = bytes.len();
            let request = self.post(&self.count_url, bytes, &req.betas)?;
            bounded(&self.site.who, self.timeout, Timeout::Request, async {
                let response = self.call(request, size).await?;
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| transport_error(&e, &self.site.destination()))?;
                #[derive(Deserialize)]
                struct Count {
                    input_tokens: u64,
                }
                serde_json::from_slice::<Count>(&bytes).map(|c| c.input_tokens).map_err(|e| {
                    UpstreamError::new(
                        ErrorKind::UpstreamUnavailable,
                        format!("the upstream's token count is unreadable: {e}"),
                    )
                })
            })
            .await
        })
    }
}

/// The API root: `api_base` (with or without a trailing `/v1`) or the Anthropic API.
fn api_base(configured: Option<&str>) -> String {
    let base = configured.unwrap_or(DEFAULT_API_BASE).trim().trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base).to_owned()
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{self, MapEnv};

    pub(in crate::provider) fn site() -> Site {
        let yaml = "model_list:\n  - model_name: balanced\n    litellm_params:\n      model: anthropic/claude-sonnet-4-6\n      api_key: sk-ant-api03-abcdefghijklmnopqrstuvwxyz\n";
        let cfg = config::load_from_str(yaml, Path::new("c.yaml"), &MapEnv::default()).unwrap();
        Site {
            deployment: cfg.groups[0].deployments[0].clone(),
            who: "the deployment of `balanced` (anthropic/claude-sonnet-4-6)".into(),
            host_port: "api.anthropic.com:443".into(),
            base: "https://api.anthropic.com".into(),
            env: Arc::default(),
        }
    }

    #[test]
    fn api_base_is_accepted_with_or_without_v1() {
        assert_eq!(api_base(None), "https://api.anthropic.com");
        assert_eq!(api_base(Some("http://127.0.0.1:9/v1/")), "http://127.0.0.1:9");
        assert_eq!(api_base(Some("https://proxy.corp/anthropic/")), "https://proxy.corp/anthropic");
    }
}
