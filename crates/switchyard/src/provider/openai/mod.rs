//! OpenAI chat completions upstreams (`openai/`, `ollama/`, `ollama_chat/`, `hosted_vllm/`,
//! `custom_llm_provider: openai` with an `api_base`): one request per call to
//! `{api_base}/chat/completions` over the shared pooled client, the body built once from the
//! canonical request (re-encoded for the OpenAI dialect, translated for the Anthropic one),
//! the answer (JSON or SSE chunks) translated back, every failure classified.
//!
//! Never retries, never falls back, never logs a key or a body; the key leaves this module
//! only in the `Authorization` header, marked sensitive.

mod body;
mod embed;
#[doc(hidden)]
pub mod fuzz;
mod native;
mod relay;
mod relay_stream;
mod response;
mod stream;

pub use native::serves_responses;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request};

use super::client::Endpoint;
use super::http::{
    Client, Clients, Destination, Error, Limit, NetEnv, Response, Timeout, bounded, read_capped,
    setup_error, transport_error,
};
use super::{EventStream, Provider, Upstreams};
use serde_json::{Map, Value};

use crate::canonical::{ChatRequest, ChatResponse, RESPONSES_BODY};
use crate::classify::{
    UpstreamError, openai_connect_error, openai_http_error, openai_missing_key,
    openai_unsendable_key,
};
use crate::config::{Deployment, OpenAiFlavor, ProviderKind};
use crate::fastpath::{ChunkStream, RawAnswer, RawBody};

/// OpenAI's API, when an `openai/` deployment names no `api_base`.
pub const DEFAULT_API_BASE: &str = "https://api.openai.com/v1";
/// Ollama's OpenAI-compatible endpoint on its default port.
pub const OLLAMA_API_BASE: &str = "http://localhost:11434/v1";
/// The per-request timeout when neither the deployment nor `litellm_settings` sets one: the
/// OpenAI SDKs' 10 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// What a request and its stream need to name and reach their deployment.
pub(super) struct Site {
    deployment: Arc<Deployment>,
    /// "the deployment of `alias` (ollama/model)".
    who: String,
    host_port: String,
    /// The API root URL (ending in `/v1` for the usual servers).
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

    /// A transport failure, with "is Ollama running?" for a refused local server.
    fn transport(&self, e: &Error) -> UpstreamError {
        openai_connect_error(&self.deployment, &self.base, transport_error(e, &self.destination()))
    }
}

pub struct OpenAiProvider {
    site: Arc<Site>,
    client: Result<Client, UpstreamError>,
    /// `None`: the server takes no key (a local server); `Some(Err)`: a key is needed but
    /// missing or unsendable.
    key: Option<Result<HeaderValue, UpstreamError>>,
    url: Endpoint,
    embeddings_url: Endpoint,
    flavor: OpenAiFlavor,
    max_tokens_field: &'static str,
    drop_params: bool,
    timeout: Limit,
    stream_timeout: Limit,
    /// `{api_base}/responses` when the deployment serves the Responses API itself.
    responses_url: Option<Endpoint>,
}

impl OpenAiProvider {
    pub fn new(deployment: &Arc<Deployment>, upstreams: &Upstreams) -> Self {
        let d = deployment.as_ref();
        let flavor = match d.provider {
            ProviderKind::OpenAi(flavor) => flavor,
            _ => OpenAiFlavor::OpenAi,
        };
        let who = format!("the deployment of `{}` ({}/{})", d.alias, d.provider.prefix(), d.model);
        let base = api_base(d.api_base.as_deref(), flavor);
        let host_port = reqwest::Url::parse(&base)
            .ok()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
            .unwrap_or_else(|| base.clone());
        let clients: &Clients = &upstreams.clients;
        let client = clients.get(&d.ssl_verify).map_err(|problem| setup_error(&who, &problem));
        let key = match (&d.api_key, flavor, &d.api_base) {
            (Some(k), _, _) => Some(
                HeaderValue::from_str(&format!("Bearer {}", k.value.expose()))
                    .map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
                    .map_err(|_| openai_unsendable_key(d)),
            ),
            (None, OpenAiFlavor::OpenAi, None) => Some(Err(openai_missing_key(d))),
            (None, _, _) => None,
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
        let official = flavor == OpenAiFlavor::OpenAi && d.api_base.is_none();
        Self {
            url: Endpoint::new(format!("{base}/chat/completions")),
            embeddings_url: Endpoint::new(format!("{base}/embeddings")),
            responses_url: serves_responses(d).then(|| Endpoint::new(format!("{base}/responses"))),
            site: Arc::new(Site {
                deployment: Arc::clone(deployment),
                who,
                host_port,
                base,
                env: clients.net_env(),
            }),
            client,
            key,
            flavor,
            max_tokens_field: if official { "max_completion_tokens" } else { "max_tokens" },
            drop_params: d.drop_params.unwrap_or(upstreams.drop_params),
            timeout,
            stream_timeout,
        }
    }

    /// The Responses request to forward as is, when this deployment takes it natively.
    fn native<'r>(&self, req: &'r ChatRequest) -> Option<(&Endpoint, &'r Map<String, Value>)> {
        let url = self.responses_url.as_ref()?;
        match req.gateway.get(RESPONSES_BODY) {
            Some(Value::Object(raw)) => Some((url, raw)),
            _ => None,
        }
    }

    fn request(&self, req: &ChatRequest, stream: bool) -> Result<Request<Bytes>, UpstreamError> {
        if let Some((url, raw)) = self.native(req) {
            let bytes = native::body(raw, &self.site.deployment.model, stream);
            return self.post(url, bytes);
        }
        let bytes = body::build(
            req,
            &body::Options {
                model: &self.site.deployment.model,
                flavor: self.flavor,
                stream,
                max_tokens_field: self.max_tokens_field,
                drop_params: self.drop_params,
                who: &self.site.who,
            },
        )?;
        self.post(&self.url, bytes::Bytes::from(bytes))
    }

    fn post(&self, url: &Endpoint, bytes: Bytes) -> Result<Request<Bytes>, UpstreamError> {
        // Room for the user agent, `accept` and a traceparent without growing.
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match &self.key {
            None => {}
            Some(Ok(key)) => {
                headers.insert(AUTHORIZATION, key.clone());
            }
            Some(Err(e)) => return Err(e.clone()),
        }
        crate::telemetry::propagate_into(&mut headers);
        url.post(headers, bytes, &self.site.who)
    }

    /// Sends and, for a non-2xx answer, reads and classifies the error.
    async fn call(&self, request: Request<Bytes>) -> Result<Response, UpstreamError> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let response = client.send(request).await.map_err(|e| self.site.transport(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = read_capped(response).await;
        Err(openai_http_error(&self.site.deployment, status.as_u16(), &headers, &body))
    }
}

impl Provider for OpenAiProvider {
    fn send<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, UpstreamError>> {
        Box::pin(async move {
            let request = self.request(req, false)?;
            bounded(&self.site.who, self.timeout, Timeout::Request, async {
                let response = self.call(request).await?;
                let bytes = response.bytes().await.map_err(|e| self.site.transport(&e))?;
                if self.native(req).is_some() {
                    return native::parse(&bytes);
                }
                response::parse(&bytes)
            })
            .await
        })
    }

    fn stream<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<EventStream, UpstreamError>> {
        Box::pin(async move {
            let request = self.request(req, true)?;
            let limit = self.stream_timeout;
            let idle = stream::Idle { after: limit.after, setting: limit.setting };
            // The commit point: status and first chunk, both within stream_timeout.
            bounded(&self.site.who, limit, Timeout::FirstEvent, async {
                let response = self.call(request).await?;
                let site = Arc::clone(&self.site);
                if self.native(req).is_some() {
                    return stream::open_with::<native::NativeDecoder>(response, site, idle).await;
                }
                stream::open(response, site, idle).await
            })
            .await
        })
    }

    fn relay<'a>(
        &'a self,
        req: &'a ChatRequest,
        raw: &'a RawBody,
    ) -> Option<BoxFuture<'a, Result<RawAnswer, UpstreamError>>> {
        let model = &self.site.deployment.model;
        let bytes = relay::body(req, raw, model, self.max_tokens_field)?;
        Some(Box::pin(async move {
            let request = self.post(&self.url, bytes::Bytes::from(bytes))?;
            bounded(&self.site.who, self.timeout, Timeout::Request, async {
                let response = self.call(request).await?;
                let bytes = response.bytes().await.map_err(|e| self.site.transport(&e))?;
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
        let model = &self.site.deployment.model;
        let bytes = relay::body(req, raw, model, self.max_tokens_field)?;
        Some(Box::pin(async move {
            let request = self.post(&self.url, bytes::Bytes::from(bytes))?;
            let limit = self.stream_timeout;
            let idle = stream::Idle { after: limit.after, setting: limit.setting };
            // The commit point: status and first chunk, both within stream_timeout.
            bounded(&self.site.who, limit, Timeout::FirstEvent, async {
                let response = self.call(request).await?;
                let site = Arc::clone(&self.site);
                relay_stream::open(response, site, idle, req.stream_usage).await
            })
            .await
        }))
    }

    /// Chat completions servers have no token-counting endpoint: the gateway's estimate.
    fn count_tokens<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<u64, UpstreamError>> {
        Box::pin(async move { Ok(crate::tokens::estimate_request(req)) })
    }

    fn embed<'a>(
        &'a self,
        req: &'a crate::embedding::EmbeddingRequest,
    ) -> BoxFuture<'a, Result<crate::embedding::Embeddings, UpstreamError>> {
        Box::pin(self.embed_call(req))
    }
}

/// The API root: `api_base` as configured when it has a path (`…/v1`, `…/openai/v1`), with
/// `/v1` added to a bare host (`http://localhost:11434` → `…/v1`), a trailing
/// `/chat/completions` removed; else the flavor's default.
fn api_base(configured: Option<&str>, flavor: OpenAiFlavor) -> String {
    let default = match flavor {
        OpenAiFlavor::Ollama | OpenAiFlavor::OllamaChat => OLLAMA_API_BASE,
        _ => DEFAULT_API_BASE,
    };
    let base = configured.unwrap_or(default).trim().trim_end_matches('/');
    let base = base.strip_suffix("/chat/completions").unwrap_or(base).trim_end_matches('/');
    let bare = reqwest::Url::parse(base).is_ok_and(|u| u.path() == "/" || u.path().is_empty());
    if bare { format!("{base}/v1") } else { base.to_owned() }
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{self, MapEnv};

    pub(super) fn site() -> Site {
        let yaml = "model_list:\n  - model_name: free\n    litellm_params:\n      model: ollama/llama3.1\n";
        let cfg = config::load_from_str(yaml, Path::new("c.yaml"), &MapEnv::default()).unwrap();
        Site {
            deployment: cfg.groups[0].deployments[0].clone(),
            who: "the deployment of `free` (ollama/llama3.1)".into(),
            host_port: "localhost:11434".into(),
            base: OLLAMA_API_BASE.into(),
            env: Arc::default(),
        }
    }

    #[test]
    fn api_base_defaults_and_v1_handling() {
        assert_eq!(api_base(None, OpenAiFlavor::OpenAi), "https://api.openai.com/v1");
        assert_eq!(api_base(None, OpenAiFlavor::Ollama), "http://localhost:11434/v1");
        assert_eq!(
            api_base(Some("http://localhost:11434"), OpenAiFlavor::Ollama),
            "http://localhost:11434/v1"
        );
        assert_eq!(
            api_base(Some("http://gpu:8000/v1/"), OpenAiFlavor::HostedVllm),
            "http://gpu:8000/v1"
        );
        assert_eq!(
            api_base(Some("https://proxy.corp/openai/v1/chat/completions"), OpenAiFlavor::OpenAi),
            "https://proxy.corp/openai/v1"
        );
        assert_eq!(
            api_base(Some("https://proxy.corp/openai"), OpenAiFlavor::OpenAi),
            "https://proxy.corp/openai"
        );
    }
}
