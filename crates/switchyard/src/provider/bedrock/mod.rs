//! The AWS Bedrock provider (`bedrock/` and `bedrock/invoke/` deployments of Claude models):
//! InvokeModel and InvokeModelWithResponseStream with the native Anthropic Messages body,
//! over the shared pooled client, signed with SigV4 from the deployment's refreshed AWS
//! credentials — or sent with a Bedrock API key as a bearer token, in which case no AWS
//! credential is resolved at all. The Anthropic provider's body builder and parsers do the
//! translation; every failure is classified (AWS-xx).
//!
//! Never retries, never falls back, never logs a key, a signature or a body.

mod converse;
mod converse_call;
mod converse_stream;
mod embed;
#[doc(hidden)]
pub mod fuzz;
mod model_id;
mod sign;
mod stream;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use futures_util::future::BoxFuture;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;

pub use self::model_id::ModelId;
use super::anthropic::body::{self, Body, Options, Purpose, Target};
use super::anthropic::response;
use super::http::{
    Destination, Limit, NetEnv, Timeout, bounded, read_capped, setup_error, transport_error,
};
use super::{EventStream, Forward, Provider, Upstreams};
use crate::canonical::{ChatRequest, ChatResponse, Usage};
use crate::classify::{
    AwsContext, ErrorKind, UpstreamError, UsedKey, bedrock_credentials_error, bedrock_http_error,
    bedrock_no_region, bedrock_unsupported,
};
use crate::config::{BedrockApi, Deployment, ProviderKind};
use crate::credentials::{self, AwsCredentials, AwsEnvironment, Profiles};
use crate::secret::Secret;

/// The per-request timeout when neither the deployment nor `litellm_settings` sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const JSON: &str = "application/json";

/// What a request and its stream need to name and reach their deployment.
pub(super) struct Site {
    deployment: Arc<Deployment>,
    /// "the deployment of `alias` (bedrock/model, region)".
    who: String,
    host_port: String,
    /// The runtime endpoint, without a trailing slash.
    base: String,
    env: Arc<NetEnv>,
    /// Everything a Bedrock diagnosis names.
    ctx: AwsContext,
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

enum Auth {
    /// A Bedrock API key: `Authorization: Bearer …`, no SigV4, no credential chain.
    Bearer(Result<HeaderValue, UpstreamError>),
    /// SigV4 with the deployment's credentials in `region`.
    SigV4 { credentials: Arc<AwsCredentials>, region: String },
}

pub struct BedrockProvider {
    site: Arc<Site>,
    client: Result<reqwest::Client, UpstreamError>,
    /// Why nothing can be sent (AWS-14, an API not supported yet), decided at load.
    blocked: Option<UpstreamError>,
    /// Why embeddings cannot be sent (no region): InvokeModel is right for them whatever
    /// `blocked` says about chat.
    no_region: Option<UpstreamError>,
    /// Set when the deployment speaks Converse (`bedrock/converse/`, non-Claude models).
    converse: Option<converse_call::Urls>,
    auth: Auth,
    invoke_url: String,
    stream_url: String,
    count_url: String,
    default_max_tokens: u32,
    drop_params: bool,
    timeout: Limit,
    stream_timeout: Limit,
}

impl BedrockProvider {
    pub fn new(deployment: &Arc<Deployment>, upstreams: &Upstreams) -> Self {
        let d = deployment.as_ref();
        let aws_env: &Arc<AwsEnvironment> = &upstreams.aws_env;
        let profiles = Profiles::load(aws_env);
        let model = ModelId::parse(&d.model);
        let region = credentials::region(d, &profiles).map(|(region, _)| region);
        let prefix = match d.provider {
            ProviderKind::Bedrock(BedrockApi::Invoke) => "bedrock/invoke",
            ProviderKind::Bedrock(BedrockApi::Converse) => "bedrock/converse",
            _ => "bedrock",
        };
        let who = format!(
            "the deployment of `{}` ({prefix}/{}, {})",
            d.alias,
            d.model,
            region.as_deref().unwrap_or("no region")
        );
        let base = endpoint(d, aws_env, region.as_deref().unwrap_or("us-east-1"));
        let host_port = reqwest::Url::parse(&base)
            .ok()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
            .unwrap_or_else(|| base.clone());
        let ctx = AwsContext {
            who: who.clone(),
            prefix: prefix.to_owned(),
            model: d.model.clone(),
            foundation: model.foundation().map(str::to_owned),
            region: region.clone(),
            endpoint: base.clone(),
            auth: credentials::auth(d, &profiles),
            role: d.aws.role_name.clone(),
            files: aws_env.profile_files(),
            suggested_profile: profiles.suggestion(),
            profile_model: region.as_deref().and_then(|r| model.profile_for_region(r)),
            policy_template: model.iam_policy(region.as_deref().unwrap_or("*"), Some("{account}")),
            anthropic_model: model.anthropic_equivalent(),
        };
        // Converse when asked for, and for every non-Claude model unless Invoke is asked for.
        let uses_converse = match d.provider {
            ProviderKind::Bedrock(BedrockApi::Converse) => true,
            ProviderKind::Bedrock(BedrockApi::Invoke) => false,
            _ => !model.is_claude(),
        };
        let no_region = region.is_none().then(|| bedrock_no_region(&ctx));
        let blocked = if !uses_converse && !model.is_claude() {
            Some(bedrock_unsupported(
                &ctx,
                &format!(
                    "model `{}` through InvokeModel (bedrock/invoke/), which serves only Claude here; write bedrock/converse/{} to use Converse",
                    d.model, d.model
                ),
            ))
        } else if region.is_none() {
            let error = bedrock_no_region(&ctx);
            tracing::warn!(deployment = %d.id, alias = %d.alias, "{}", error.diagnosis.as_ref().map_or("", |d| d.cause.as_str()));
            Some(error)
        } else {
            None
        };
        let auth = match &d.api_key {
            Some(key) => Auth::Bearer(
                HeaderValue::from_str(&format!("Bearer {}", key.value.expose().trim()))
                    .map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
                    .map_err(|_| {
                        UpstreamError::new(
                            ErrorKind::CredentialsInvalid,
                            format!("the Bedrock API key of {who} contains characters that cannot be sent in a header"),
                        )
                    }),
            ),
            None => {
                let region = region.clone().unwrap_or_default();
                Auth::SigV4 {
                    credentials: Arc::new(AwsCredentials::new(
                        d,
                        Arc::clone(aws_env),
                        region.clone(),
                        upstreams.aws_http.clone(),
                    )),
                    region,
                }
            }
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
        let path = model.path_segment();
        let converse = uses_converse.then(|| converse_call::Urls::new(&base, &path));
        // CountTokens takes a foundation model, not an inference profile.
        let count_id = model.foundation().map(ModelId::parse).unwrap_or_else(|| model.clone());
        let clients = &upstreams.clients;
        Self {
            invoke_url: format!("{base}/model/{path}/invoke"),
            stream_url: format!("{base}/model/{path}/invoke-with-response-stream"),
            count_url: format!("{base}/model/{}/count-tokens", count_id.path_segment()),
            // Signed requests stay on reqwest: SigV4 signs the URL as reqwest sends it.
            client: clients
                .get(&d.ssl_verify)
                .map(|c| c.reqwest().clone())
                .map_err(|problem| setup_error(&who, &problem)),
            site: Arc::new(Site {
                deployment: Arc::clone(deployment),
                who,
                host_port,
                base,
                env: clients.net_env(),
                ctx,
            }),
            blocked,
            no_region,
            converse,
            auth,
            default_max_tokens: body::configured_max_tokens(&d.model_info)
                .unwrap_or(body::DEFAULT_MAX_TOKENS),
            drop_params: d.drop_params.unwrap_or(upstreams.drop_params),
            timeout,
            stream_timeout,
        }
    }

    fn body(&self, req: &ChatRequest, purpose: Purpose) -> Result<Body, UpstreamError> {
        if let Some(error) = &self.blocked {
            return Err(error.clone());
        }
        body::build(
            req,
            &Options {
                target: Target::Bedrock,
                purpose,
                model: &self.site.deployment.model,
                default_max_tokens: self.default_max_tokens,
                drop_params: self.drop_params,
                who: &self.site.who,
            },
        )
    }

    /// The POST of `body` to `url`, authorised; the key it was signed with, for diagnoses.
    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        accept: &'static str,
    ) -> Result<(reqwest::RequestBuilder, Option<UsedKey>), UpstreamError> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let mut request = client
            .post(url)
            .header(CONTENT_TYPE, JSON)
            .header(ACCEPT, HeaderValue::from_static(accept));
        let mut used = None;
        match &self.auth {
            Auth::Bearer(value) => {
                request =
                    request.header(AUTHORIZATION, value.as_ref().map_err(Clone::clone)?.clone());
            }
            Auth::SigV4 { credentials, region } => {
                let creds = credentials
                    .get()
                    .await
                    .map_err(|e| bedrock_credentials_error(&self.site.ctx, e.failure, &e.detail))?;
                let signed = [("content-type", JSON)];
                let headers = sign::sigv4(&creds, region, url, &signed, &body, SystemTime::now())
                    .map_err(|e| {
                    UpstreamError::new(
                        ErrorKind::Internal,
                        format!("the request cannot be signed: {e}"),
                    )
                })?;
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                used = Some(UsedKey {
                    key_prefix: Secret::new(creds.access_key_id()).safe_prefix(),
                    expires_at: creds.expiry(),
                });
            }
        }
        // After signing: traceparent is not among the signed headers.
        Ok((crate::telemetry::propagate(request.body(body)), used))
    }

    /// Sends and, for a non-2xx answer, reads and classifies the error.
    async fn call(
        &self,
        url: &str,
        body: Vec<u8>,
        accept: &'static str,
    ) -> Result<reqwest::Response, UpstreamError> {
        let (request, used) = self.post(url, body, accept).await?;
        let response =
            request.send().await.map_err(|e| transport_error(&e, &self.site.destination()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = read_capped(response).await;
        let body = crate::classify::scrub_body(&self.site.deployment, &body);
        Err(bedrock_http_error(&self.site.ctx, used.as_ref(), status.as_u16(), &headers, &body))
    }
}

impl BedrockProvider {
    /// A pass-through request to this deployment's runtime endpoint, authorised as the
    /// deployment's own calls are: its Bedrock API key, or SigV4 over host, x-amz-date, the
    /// session token and content-type with its credentials in its region.
    async fn relay(&self, req: Forward) -> Result<reqwest::Response, UpstreamError> {
        if self.site.ctx.region.is_none() {
            return Err(bedrock_no_region(&self.site.ctx));
        }
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let url = format!("{}/{}", self.site.base, req.path);
        let mut request = client.request(req.method.clone(), &url).headers(req.headers.clone());
        match &self.auth {
            Auth::Bearer(value) => {
                request =
                    request.header(AUTHORIZATION, value.as_ref().map_err(Clone::clone)?.clone());
            }
            Auth::SigV4 { credentials, region } => {
                let creds = credentials
                    .get()
                    .await
                    .map_err(|e| bedrock_credentials_error(&self.site.ctx, e.failure, &e.detail))?;
                let content_type = req.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
                let signed: Vec<(&str, &str)> =
                    content_type.map(|ct| ("content-type", ct)).into_iter().collect();
                let headers = sign::sigv4_method(
                    req.method.as_str(),
                    &creds,
                    region,
                    &url,
                    &signed,
                    &req.body,
                    SystemTime::now(),
                )
                .map_err(|e| {
                    UpstreamError::new(
                        ErrorKind::Internal,
                        format!("the request cannot be signed: {e}"),
                    )
                })?;
                for (name, value) in headers {
                    request = request.header(name, value);
                }
            }
        }
        let request = crate::telemetry::propagate(request.body(req.body));
        bounded(&self.site.who, self.timeout, Timeout::Request, async {
            request.send().await.map_err(|e| transport_error(&e, &self.site.destination()))
        })
        .await
    }
}

impl Provider for BedrockProvider {
    fn forward(&self, req: Forward) -> BoxFuture<'_, Result<reqwest::Response, UpstreamError>> {
        Box::pin(self.relay(req))
    }

    fn send<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, UpstreamError>> {
        Box::pin(async move {
            if let Some(urls) = &self.converse {
                return self.converse_send(urls, req).await;
            }
            let Body { bytes, json_mode } = self.body(req, Purpose::Send)?;
            bounded(&self.site.who, self.timeout, Timeout::Request, async {
                let response = self.call(&self.invoke_url, bytes, JSON).await?;
                let headers = response.headers().clone();
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| transport_error(&e, &self.site.destination()))?;
                let mut answer = response::parse(&bytes, json_mode)?;
                usage_from_headers(&mut answer.usage, &headers);
                Ok(answer)
            })
            .await
        })
    }

    fn stream<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<EventStream, UpstreamError>> {
        Box::pin(async move {
            if let Some(urls) = &self.converse {
                return self.converse_stream(urls, req).await;
            }
            let Body { bytes, json_mode } = self.body(req, Purpose::Stream)?;
            let limit = self.stream_timeout;
            // The commit point: status and first event, both within stream_timeout.
            bounded(&self.site.who, limit, Timeout::FirstEvent, async {
                let response = self
                    .call(&self.stream_url, bytes, "application/vnd.amazon.eventstream")
                    .await?;
                stream::open(response, json_mode, Arc::clone(&self.site), limit).await
            })
            .await
        })
    }

    fn count_tokens<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<u64, UpstreamError>> {
        Box::pin(async move {
            if self.converse.is_some() {
                return self.converse_count_tokens(req).await;
            }
            // CountTokens takes the body InvokeModel would get.
            let Body { bytes, .. } = self.body(req, Purpose::Send)?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let payload = serde_json::json!({"input": {"invokeModel": {"body": encoded}}});
            let payload = serde_json::to_vec(&payload).map_err(|e| {
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
                // Not offered for this model, region or identity: estimate instead.
                Err(e) if counting_unavailable(&e) => {
                    tracing::debug!(who = %self.site.who, error = %e.message, "CountTokens unavailable; estimating");
                    Ok(crate::tokens::estimate_request(req))
                }
                other => other,
            }
        })
    }

    fn embed<'a>(
        &'a self,
        req: &'a crate::embedding::EmbeddingRequest,
    ) -> BoxFuture<'a, Result<crate::embedding::Embeddings, UpstreamError>> {
        Box::pin(self.embed_call(req))
    }
}

/// CountTokens failed in a way that says it is not available here, not that the
/// deployment is broken.
fn counting_unavailable(e: &UpstreamError) -> bool {
    match e.kind {
        ErrorKind::InvalidRequest | ErrorKind::ModelNotFound | ErrorKind::Configuration => true,
        ErrorKind::PermissionDenied => e.message.contains("CountTokens"),
        _ => false,
    }
}

/// The runtime endpoint: `aws_bedrock_runtime_endpoint`, AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
/// AWS_ENDPOINT_URL, else `https://bedrock-runtime.{region}.amazonaws.com`.
fn endpoint(d: &Deployment, env: &AwsEnvironment, region: &str) -> String {
    let ignore_env = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let configured = d.aws.bedrock_runtime_endpoint.clone().or_else(|| {
        (!ignore_env)
            .then(|| {
                env.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME").or_else(|| env.get("AWS_ENDPOINT_URL"))
            })?
            .map(str::to_owned)
    });
    match configured {
        Some(url) => url.trim().trim_end_matches('/').to_owned(),
        None => format!("https://bedrock-runtime.{region}.amazonaws.com"),
    }
}

/// InvokeModel's token-count headers fill what the body's usage left at zero.
fn usage_from_headers(usage: &mut Usage, headers: &HeaderMap) {
    let count = |name: &str| -> u64 {
        headers.get(name).and_then(|v| v.to_str().ok()?.trim().parse().ok()).unwrap_or(0)
    };
    for (to, name) in [
        (&mut usage.input_tokens, "x-amzn-bedrock-input-token-count"),
        (&mut usage.output_tokens, "x-amzn-bedrock-output-token-count"),
        (&mut usage.cache_read_input_tokens, "x-amzn-bedrock-cache-read-input-token-count"),
        (&mut usage.cache_creation_input_tokens, "x-amzn-bedrock-cache-write-input-token-count"),
    ] {
        if *to == 0 {
            *to = count(name);
        }
    }
}

#[cfg(test)]
mod tests;
