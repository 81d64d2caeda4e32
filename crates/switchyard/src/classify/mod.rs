//! The one error taxonomy. Every failure a client, `/health` or `doctor` can see is an
//! [`ErrorKind`] with a [`Diagnosis`]; the router decides retry, fallback and cooldown from
//! the kind alone, and surfaces render it in their client's shape.
//!
//! Only this module turns upstream payloads into kinds; nothing else inspects provider
//! error strings.

mod anthropic;
mod bedrock;
mod kind;
mod openai;
mod scrub;
mod transport;

pub use anthropic::{
    anthropic_http_error, anthropic_missing_key, anthropic_stream_error, anthropic_unsendable_key,
};
pub use bedrock::{
    AwsAuth, AwsContext, AwsErrorBody, CredentialFailure, Refusal, UndefinedProfile, UsedKey,
    bedrock_credentials_error, bedrock_http_error, bedrock_no_region, bedrock_stream_exception,
    bedrock_unsupported, plain_text, read_aws_error, read_sdk_response, refusal,
};
pub use kind::{Cooling, ErrorKind, Fallback};
pub use openai::{
    openai_connect_error, openai_http_error, openai_missing_key, openai_stream_error,
    openai_unsendable_key,
};
pub(crate) use scrub::scrub_body;
pub use transport::{
    Destination, NetEnv, Timeout, Transport, TransportFailure, broken, timeout_error,
    transport_error,
};

use std::time::Duration;

/// The cause in one sentence and the remedy as something to run or change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnosis {
    /// Catalog id (`CFG-01`, `AWS-05`, `GW-02` …); stable, for docs and tests.
    pub id: &'static str,
    pub cause: String,
    pub remedy: String,
}

impl Diagnosis {
    pub fn new(id: &'static str, cause: impl Into<String>, remedy: impl Into<String>) -> Self {
        Self { id, cause: cause.into(), remedy: remedy.into() }
    }
}

/// An error as the client will receive it. Surfaces render it in their own wire shape.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// The client-facing message: what happened. When a diagnosis exists it carries the
    /// detail, and the rendered message joins both.
    pub message: String,
    /// The request field at fault, for invalid requests (OpenAI's `param`).
    pub param: Option<String>,
    pub diagnosis: Option<Diagnosis>,
    pub retry_after: Option<Duration>,
    /// Every failed attempt behind this error, in order (empty for gateway errors).
    pub attempts: Vec<AttemptReport>,
    /// The gateway's own rate limit that refused the request, for LiteLLM's
    /// `x-ratelimit-*` headers.
    pub rate_limit: Option<RateLimitState>,
}

/// A rate limit as LiteLLM's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`
/// headers carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitState {
    /// `true`: requests per minute; `false`: tokens per minute.
    pub requests: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the window resets.
    pub reset: u64,
}

impl RateLimitState {
    /// The three headers' names and values.
    pub fn headers(&self) -> [(http::HeaderName, http::HeaderValue); 3] {
        use http::{HeaderName, HeaderValue};
        let names: [&'static str; 3] = if self.requests {
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ]
        } else {
            ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"]
        };
        [
            (HeaderName::from_static(names[0]), HeaderValue::from(self.limit)),
            (HeaderName::from_static(names[1]), HeaderValue::from(self.remaining)),
            (HeaderName::from_static(names[2]), HeaderValue::from(self.reset)),
        ]
    }
}

/// One failed attempt as a client sees it in an error body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttemptReport {
    /// The deployment id (`model_info.id`).
    pub deployment: String,
    /// `provider/model`, e.g. `bedrock/us.anthropic.claude-…`.
    pub model: String,
    pub class: &'static str,
    /// The upstream's HTTP status, or the class's own when it did not answer.
    pub status: u16,
    pub message: String,
    pub diagnosis: Option<Diagnosis>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            param: None,
            diagnosis: None,
            retry_after: None,
            attempts: Vec::new(),
            rate_limit: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>, param: Option<&str>) -> Self {
        Self { param: param.map(str::to_owned), ..Self::new(ErrorKind::InvalidRequest, message) }
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    pub fn with_diagnosis(mut self, diagnosis: Diagnosis) -> Self {
        self.diagnosis = Some(diagnosis);
        self
    }

    /// The full human-readable text: message, then cause and fix when diagnosed.
    pub fn full_message(&self) -> String {
        match &self.diagnosis {
            None => self.message.clone(),
            Some(d) if d.cause.is_empty() => format!("{} Fix: {}", self.message, d.remedy),
            Some(d) => format!("{} {} Fix: {}", self.message, d.cause, d.remedy),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full_message())
    }
}

impl std::error::Error for ApiError {}

/// A failed attempt at one upstream, classified. Providers return it; the router decides
/// what to do from `kind`, and names the deployment when it becomes an [`ApiError`].
#[derive(Debug, Clone)]
pub struct UpstreamError {
    pub kind: ErrorKind,
    /// The upstream's HTTP status, when it answered.
    pub status: Option<u16>,
    /// The upstream's own error code (`ThrottlingException`, `overloaded_error` …).
    pub provider_code: Option<String>,
    /// The upstream's message, verbatim (it never contains our secrets).
    pub message: String,
    pub retry_after: Option<Duration>,
    pub diagnosis: Option<Diagnosis>,
}

impl UpstreamError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            provider_code: None,
            message: message.into(),
            retry_after: None,
            diagnosis: None,
        }
    }
}
