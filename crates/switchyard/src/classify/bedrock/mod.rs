//! Classifies AWS Bedrock's answers and AWS credential failures: an HTTP error (status, and
//! a code and message read from any AWS wire shape by [`wire`]), an event-stream exception
//! frame, or an aws-config credential error becomes an [`UpstreamError`] with its kind and a
//! diagnosis from the catalog (AWS-01 … AWS-18). The class follows the error code and the
//! message text together, so an answer that says the credentials are unknown is AWS-01
//! whatever status or code came with it.
//!
//! Pure functions over bytes and strings; no I/O. Names credentials by source and safe
//! prefix only (`ASIA…`), never the secret.

use std::time::SystemTime;

use http::HeaderMap;

mod rows;
mod wire;

use self::rows::*;
pub use self::wire::{AwsErrorBody, plain_text, read as read_aws_error, read_sdk_response};
use super::{Diagnosis, ErrorKind, UpstreamError};

/// What a Bedrock diagnosis names, built once per deployment by its provider.
#[derive(Debug, Clone, Default)]
pub struct AwsContext {
    /// "the deployment of `balanced` (bedrock/us.anthropic.claude-…, us-east-1)".
    pub who: String,
    /// How the config writes the prefix: `bedrock` or `bedrock/invoke`.
    pub prefix: String,
    /// The model id after the prefix.
    pub model: String,
    /// The foundation model inside it (`anthropic.claude-…`), when it names one.
    pub foundation: Option<String>,
    pub region: Option<String>,
    /// The Bedrock runtime endpoint requests go to.
    pub endpoint: String,
    pub auth: AwsAuth,
    /// `aws_role_name`, assumed from the base credentials.
    pub role: Option<String>,
    /// The shared config and credentials files aws-config reads.
    pub files: Vec<String>,
    /// A profile to name in remedies when none is in use (AWS_PROFILE, the config file's).
    pub suggested_profile: Option<String>,
    /// The inference profile id for the region (AWS-09).
    pub profile_model: Option<String>,
    /// The minimal IAM policy, with `{account}` where the account id goes (AWS-05).
    pub policy_template: String,
    /// The same model on the Anthropic API, for a fallback deployment.
    pub anthropic_model: Option<String>,
}

/// Where the credentials of a deployment come from, as diagnoses name them.
#[derive(Debug, Clone, Default)]
pub enum AwsAuth {
    /// A Bedrock API key (`api_key` or AWS_BEARER_TOKEN_BEDROCK): safe prefix and source.
    BearerKey { prefix: String, source: String },
    /// Static keys: the key id's safe prefix (`ASIA…`), where it came from, whether a
    /// session token came with it.
    Keys { key_prefix: String, source: String, session_token: bool },
    /// A named profile, with its SSO session (name, start URL) or credential_process;
    /// `undefined` when no file the gateway read defines it.
    Profile {
        name: String,
        source: String,
        sso: Option<(String, String)>,
        process: bool,
        undefined: Option<UndefinedProfile>,
    },
    /// Web identity (`aws_web_identity_token` + `aws_role_name`).
    WebIdentity { source: String },
    #[default]
    DefaultChain,
}

/// Where a profile named in the config was looked for and not found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UndefinedProfile {
    /// Each file read, and what it lacks: "/home/u/.aws/config (no `[profile cc]` section)",
    /// "/home/u/.aws/credentials (does not exist)".
    pub searched: Vec<String>,
    /// The profiles those files do define.
    pub defined: Vec<String>,
    /// Where a `[profile NAME]` section goes.
    pub config_file: String,
    /// Where a `[NAME]` section with keys goes.
    pub credentials_file: String,
}

/// The credentials one attempt was signed with, for diagnoses that name them.
#[derive(Debug, Clone, Default)]
pub struct UsedKey {
    /// The access key id's safe prefix.
    pub key_prefix: String,
    pub expires_at: Option<SystemTime>,
}

/// How aws-config failed to produce credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialFailure {
    /// No source had any (the chain's `CredentialsNotLoaded`).
    NotLoaded,
    TimedOut,
    InvalidConfiguration,
    /// A source was configured but failed (SSO, STS, credential_process, a file).
    Provider,
}

impl AwsContext {
    fn creds(&self) -> String {
        let mut text = match &self.auth {
            AwsAuth::BearerKey { prefix, source } => {
                format!("the Bedrock API key {prefix} ({source})")
            }
            AwsAuth::Keys { key_prefix, source, session_token } => format!(
                "the access key {key_prefix} ({source}){}",
                if *session_token { " with a session token" } else { "" }
            ),
            AwsAuth::Profile { name, source, sso, .. } => match sso {
                Some((session, url)) => {
                    format!("profile `{name}` ({source}), SSO session `{session}` ({url})")
                }
                None => format!("profile `{name}` ({source})"),
            },
            AwsAuth::WebIdentity { source } => format!("a web identity token ({source})"),
            AwsAuth::DefaultChain => "the default AWS credential chain".to_owned(),
        };
        if let Some(role) = &self.role {
            text.push_str(&format!(", assuming role {role}"));
        }
        text
    }

    fn profile(&self) -> String {
        match &self.auth {
            AwsAuth::Profile { name, .. } => name.clone(),
            _ => self.suggested_profile.clone().unwrap_or_else(|| "<profile>".to_owned()),
        }
    }

    fn region(&self) -> &str {
        self.region.as_deref().unwrap_or("its region")
    }

    fn login(&self) -> String {
        let p = self.profile();
        match &self.auth {
            AwsAuth::Profile { sso: Some((session, _)), .. } => {
                format!(
                    "`aws sso login --profile {p}` (or `aws sso login --sso-session {session}`)"
                )
            }
            _ => format!("`aws sso login --profile {p}`"),
        }
    }

    /// The remedy for credentials that cannot refresh themselves: name a profile instead.
    fn use_a_profile(&self) -> String {
        let p = self.profile();
        format!(
            "stop exporting keys (remove AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and \
             AWS_SESSION_TOKEN from the environment and env files) and set `aws_profile_name: \
             {p}` on the deployment (or AWS_PROFILE={p}) so the gateway refreshes them itself; \
             run `aws sso login --profile {p}`; check with `aws sts get-caller-identity \
             --profile {p}`."
        )
    }

    fn fallback_hint(&self) -> String {
        let model = self.anthropic_model.as_deref().unwrap_or("claude-sonnet-4-5");
        format!(
            " Meanwhile, list a deployment of the same alias on the Anthropic API after this \
             one (`model: anthropic/{model}`, `api_key: os.environ/ANTHROPIC_API_KEY`) so \
             requests fall back to it."
        )
    }
}

/// An HTTP error answer of Bedrock Runtime (any non-2xx status), in any of the shapes AWS,
/// its emulators and proxies use (see [`wire`]). `used` is the key the request was signed
/// with (SigV4 only).
pub fn bedrock_http_error(
    ctx: &AwsContext,
    used: Option<&UsedKey>,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> UpstreamError {
    let read = wire::read(headers, body);
    let message = read.message.unwrap_or_else(|| match body.iter().all(u8::is_ascii_whitespace) {
        true => format!("HTTP {status} with an empty body"),
        false => format!("HTTP {status} without a message"),
    });
    let message = super::scrub::scrub_aws(&message).into_owned();
    let mut error = classify(ctx, used, Some(status), read.code.as_deref(), &message, headers);
    let id = request_id(headers).map(str::to_owned).or(read.request_id);
    if let (Some(diag), Some(id)) = (&mut error.diagnosis, id) {
        diag.cause.push_str(&format!(" (AWS request id {id})"));
    }
    error.status = Some(status);
    error
}

/// An exception frame inside an InvokeModelWithResponseStream body (AWS-18):
/// `:exception-type` (`throttlingException` …) and its JSON payload.
pub fn bedrock_stream_exception(
    ctx: &AwsContext,
    exception: &str,
    payload: &[u8],
) -> UpstreamError {
    let message = wire::read(&HeaderMap::new(), payload)
        .message
        .unwrap_or_else(|| "an exception frame with an empty payload".to_owned());
    let message = super::scrub::scrub_aws(&message).into_owned();
    let mut code = exception.to_owned();
    if let Some(first) = code.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    let mut error = classify(ctx, None, None, Some(&code), &message, &HeaderMap::new());
    let remedy = error.diagnosis.as_ref().map(|d| format!("{} ", d.remedy)).unwrap_or_default();
    error.diagnosis = Some(Diagnosis::new(
        "AWS-18",
        format!(
            "Bedrock reported {code} (\"{message}\") in the middle of the stream of {}.",
            ctx.who
        ),
        format!(
            "{remedy}Before anything reached the client the gateway retries or falls back by \
             itself; after that the stream ends with this error."
        ),
    ));
    error
}

/// aws-config could not produce credentials. `detail` is the error with its sources.
pub fn bedrock_credentials_error(
    ctx: &AwsContext,
    failure: CredentialFailure,
    detail: &str,
) -> UpstreamError {
    // STS and the SSO portal refuse as Bedrock does, quoting what Bedrock would.
    let detail = &*super::scrub::scrub_aws(detail);
    let lower = detail.to_ascii_lowercase();
    let sso_expired = lower.contains("sso token has expired")
        || (lower.contains("failed to read") && lower.contains("sso/cache"))
        || lower.contains("session token not found or invalid")
        || lower.contains("token has expired and refresh failed")
        // aws-config's sso-session token provider when the cache file is missing.
        || lower.contains("failed to load the cached sso token");
    let undefined = match &ctx.auth {
        // aws-config says "not properly configured … was not defined", or "not enabled".
        AwsAuth::Profile { name, source, undefined: Some(u), .. }
            if matches!(
                failure,
                CredentialFailure::NotLoaded | CredentialFailure::InvalidConfiguration
            ) =>
        {
            Some((name, source, u))
        }
        _ => None,
    };
    let (kind, diagnosis) = if let Some((name, source, u)) = undefined {
        (ErrorKind::CredentialsMissing, undefined_profile(ctx, name, source, u))
    } else if sso_expired {
        let session = match &ctx.auth {
            AwsAuth::Profile { sso: Some((s, url)), .. } => format!("SSO session `{s}` ({url})"),
            _ => "SSO session".to_owned(),
        };
        (
            ErrorKind::CredentialsExpired,
            Diagnosis::new(
                "AWS-03",
                format!(
                    "The {session} of profile `{}` used by {} needs a login: {detail}.",
                    ctx.profile(),
                    ctx.who
                ),
                format!("Run {}; the next request then works without a restart.", ctx.login()),
            ),
        )
    } else if let Some(refused) = refusal(named_code(detail), &lower) {
        // STS (assume-role, web identity) refused the base credentials.
        match refused {
            Refusal::Unrecognised => (ErrorKind::CredentialsInvalid, unrecognised(ctx, detail)),
            Refusal::Expired => (ErrorKind::CredentialsExpired, expired(ctx, None, detail)),
            Refusal::ClockSkew => {
                (ErrorKind::ClockSkew, clock_skew(ctx, detail, &HeaderMap::new()))
            }
            Refusal::BadSignature => (ErrorKind::CredentialsInvalid, bad_secret(ctx, None)),
        }
    } else if lower.contains("accessdenied") || DENIED_TEXT.iter().any(|t| lower.contains(t)) {
        (ErrorKind::PermissionDenied, permission(ctx, detail))
    } else if lower.contains("external process")
        || lower.contains("credential_process")
        || lower.contains("credentialprocess")
    {
        (
            ErrorKind::CredentialsMissing,
            Diagnosis::new(
                "AWS-04",
                format!(
                    "The credential_process of profile `{}` failed for {}: {detail}.",
                    ctx.profile(),
                    ctx.who
                ),
                "Run the profile's credential_process command yourself to see why it fails \
                 (often a login it needs first), fix it, then retry: the gateway calls it again.",
            ),
        )
    } else if failure == CredentialFailure::TimedOut {
        (
            ErrorKind::Timeout,
            Diagnosis::new(
                "NET-03",
                format!("Loading the AWS credentials of {} timed out: {detail}.", ctx.who),
                "Check the network path to STS / the SSO portal / the metadata service; the \
                 gateway falls back to the alias's next deployment meanwhile.",
            ),
        )
    } else if lower.contains("dispatch failure")
        || lower.contains("error trying to connect")
        || lower.contains("connection refused")
        || lower.contains("dns error")
    {
        (
            ErrorKind::UpstreamUnavailable,
            Diagnosis::new(
                "NET-01",
                format!(
                    "Loading the AWS credentials of {} could not reach AWS: {detail}.",
                    ctx.who
                ),
                "Check that STS and the SSO portal are reachable (proxy variables, firewall, \
                 AWS_ENDPOINT_URL_* overrides).",
            ),
        )
    } else {
        let kind = match failure {
            CredentialFailure::InvalidConfiguration => ErrorKind::Configuration,
            _ => ErrorKind::CredentialsMissing,
        };
        (kind, missing(ctx, failure, detail))
    };
    let mut error =
        UpstreamError::new(kind, format!("AWS credentials could not be loaded: {detail}"));
    error.diagnosis = Some(diagnosis);
    error
}

/// AWS-14: no region anywhere. Nothing is sent.
pub fn bedrock_no_region(ctx: &AwsContext) -> UpstreamError {
    let mut error =
        UpstreamError::new(ErrorKind::Configuration, format!("{} has no AWS region", ctx.who));
    let profile = match &ctx.auth {
        AwsAuth::Profile { name, .. } => format!("the `region` of profile `{name}`"),
        _ => "the `region` of the default profile".to_owned(),
    };
    let files =
        if ctx.files.is_empty() { "~/.aws/config".to_owned() } else { ctx.files.join(", ") };
    error.diagnosis = Some(Diagnosis::new(
        "AWS-14",
        format!(
            "Neither `aws_region_name`, AWS_REGION, AWS_DEFAULT_REGION nor {profile} (in \
             {files}) gives {} a region.",
            ctx.who
        ),
        "Set `aws_region_name: us-east-1` (the region where the model is enabled) on the \
         deployment, or export AWS_REGION, then reload.",
    ));
    error
}

/// The deployment names something this version does not call (Converse, a non-Claude id).
pub fn bedrock_unsupported(ctx: &AwsContext, what: &str) -> UpstreamError {
    let mut error = UpstreamError::new(
        ErrorKind::Configuration,
        format!("{what} is not supported yet by this version of Switchyard"),
    );
    let foundation = ctx.foundation.as_deref().unwrap_or(&ctx.model);
    error.diagnosis = Some(Diagnosis::new(
        "CFG-04",
        format!("{} uses {what}, which this version does not call yet.", ctx.who),
        format!(
            "Use a Claude model through InvokeModel (`model: bedrock/{}`), or add \
             `mock_response: ...` to answer without an upstream.",
            if foundation.contains("anthropic.claude") {
                ctx.model.clone()
            } else {
                "us.anthropic.claude-sonnet-4-5-20250929-v1:0".to_owned()
            }
        ),
    ));
    error
}

/// How AWS refused the credentials themselves (before any permission was looked at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The access key (or its session token) is unknown to AWS: AWS-01.
    Unrecognised,
    /// Temporary credentials past their expiry: AWS-02.
    Expired,
    /// The signing time is too far from AWS's clock: AWS-12.
    ClockSkew,
    /// The key is known but the signature is not its secret's: AWS-11.
    BadSignature,
}

/// Codes and phrases that say the credentials are not recognised, in every service's
/// spelling: Bedrock's and Lambda's UnrecognizedClientException, STS's and IAM's
/// InvalidClientTokenId, S3's InvalidAccessKeyId and InvalidToken, EC2's AuthFailure.
const UNRECOGNISED_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "InvalidToken",
    "AuthFailure",
];
const UNRECOGNISED_TEXT: &[&str] = &[
    "security token included in the request is invalid",
    "access key id you provided does not exist in our records",
    "provided token is malformed or otherwise invalid",
    "not able to validate the provided access credentials",
];
const EXPIRED_CODES: &[&str] = &["ExpiredToken", "ExpiredTokenException"];
const EXPIRED_TEXT: &[&str] =
    &["security token included in the request is expired", "provided token has expired"];
const SKEW_CODES: &[&str] = &["RequestExpired", "RequestTimeTooSkewed"];
const SKEW_TEXT: &[&str] = &[
    "signature expired",
    "signature not yet current",
    "request has expired",
    "difference between the request time and the current time is too large",
];
const SIGNATURE_CODES: &[&str] =
    &["InvalidSignatureException", "SignatureDoesNotMatch", "IncompleteSignature"];
const SIGNATURE_TEXT: &[&str] = &["signature we calculated does not match"];
/// Phrases of a missing permission (IAM's, and this gateway's own wording when relayed).
const DENIED_TEXT: &[&str] =
    &["is not authorized to perform", "may not call", "with an explicit deny"];

/// Whether `code` or the (lower-cased) `lower` message says the credentials themselves were
/// refused, and how. "Not recognised" wins whenever anything says so: telling a user to grant
/// a permission to credentials AWS does not know is the mistake this avoids.
pub fn refusal(code: Option<&str>, lower: &str) -> Option<Refusal> {
    let code = code.unwrap_or_default();
    let says = |codes: &[&str], texts: &[&str]| {
        codes.iter().any(|c| c.eq_ignore_ascii_case(code))
            || texts.iter().any(|t| lower.contains(t))
    };
    if says(UNRECOGNISED_CODES, UNRECOGNISED_TEXT) {
        Some(Refusal::Unrecognised)
    } else if says(EXPIRED_CODES, EXPIRED_TEXT) {
        Some(Refusal::Expired)
    } else if says(SKEW_CODES, SKEW_TEXT) {
        Some(Refusal::ClockSkew)
    } else if says(SIGNATURE_CODES, SIGNATURE_TEXT) {
        Some(Refusal::BadSignature)
    } else {
        None
    }
}

/// The kind and diagnosis for an AWS error code (without its namespace) and message.
fn classify(
    ctx: &AwsContext,
    used: Option<&UsedKey>,
    status: Option<u16>,
    code: Option<&str>,
    message: &str,
    headers: &HeaderMap,
) -> UpstreamError {
    let lower = message.to_ascii_lowercase();
    let bearer = matches!(ctx.auth, AwsAuth::BearerKey { .. });
    let denied = matches!(code, Some("AccessDeniedException" | "AccessDenied"))
        || DENIED_TEXT.iter().any(|t| lower.contains(t));
    let (kind, diagnosis) = match (refusal(code, &lower), code.unwrap_or_default()) {
        // A Bedrock API key signs nothing and has no AWS credentials behind it: whatever AWS
        // says about "the security token", it is the key that was refused.
        (Some(Refusal::Unrecognised | Refusal::Expired | Refusal::BadSignature), _) if bearer => {
            (ErrorKind::CredentialsInvalid, Some(bad_api_key(ctx)))
        }
        (Some(Refusal::Unrecognised), _) => {
            (ErrorKind::CredentialsInvalid, Some(unrecognised(ctx, message)))
        }
        (Some(Refusal::Expired), _) => {
            (ErrorKind::CredentialsExpired, Some(expired(ctx, used, message)))
        }
        (Some(Refusal::ClockSkew), _) => {
            (ErrorKind::ClockSkew, Some(clock_skew(ctx, message, headers)))
        }
        (Some(Refusal::BadSignature), _) => {
            (ErrorKind::CredentialsInvalid, Some(bad_secret(ctx, used)))
        }
        _ if bearer
            && (lower.contains("api key") || lower.contains("bearer") || status == Some(401)) =>
        {
            (ErrorKind::CredentialsInvalid, Some(bad_api_key(ctx)))
        }
        _ if denied => access_denied(ctx, &lower, message),
        (_, "ValidationException") if lower.contains("on-demand throughput") => {
            (ErrorKind::ModelNeedsProfile, Some(needs_profile(ctx)))
        }
        (_, "ValidationException") if lower.contains("model identifier is invalid") => {
            (ErrorKind::ModelNotFound, Some(model_not_found(ctx)))
        }
        _ if lower.contains("prompt is too long")
            || lower.contains("input is too long")
            || lower.contains("exceed context limit") =>
        {
            (ErrorKind::ContextWindow, Some(context_window(ctx, message)))
        }
        (_, "ResourceNotFoundException") if lower.contains("use case") => {
            (ErrorKind::ModelAccess, Some(no_model_access(ctx)))
        }
        (_, "ResourceNotFoundException") => (ErrorKind::ModelNotFound, Some(model_not_found(ctx))),
        (
            _,
            "ThrottlingException" | "ServiceQuotaExceededException" | "TooManyRequestsException",
        ) => (ErrorKind::RateLimited, Some(throttled(ctx, message))),
        (_, code @ ("ModelTimeoutException" | "RequestTimeout")) => {
            (ErrorKind::Timeout, Some(transient(ctx, code, status, message)))
        }
        (
            _,
            code @ ("InternalServerException"
            | "ServiceUnavailableException"
            | "ModelNotReadyException"
            | "ModelErrorException"
            | "ModelStreamErrorException"
            | "InternalFailure"
            | "ServiceUnavailable"),
        ) => (ErrorKind::UpstreamUnavailable, Some(transient(ctx, code, status, message))),
        (_, "UnknownOperationException") => (ErrorKind::Configuration, Some(wrong_endpoint(ctx))),
        _ => match status {
            Some(401 | 403) => access_denied(ctx, &lower, message),
            Some(404) => (ErrorKind::Configuration, Some(wrong_endpoint(ctx))),
            Some(408 | 504) => {
                (ErrorKind::Timeout, Some(transient(ctx, "a timeout", status, message)))
            }
            Some(413) => (ErrorKind::PayloadTooLarge, None),
            Some(429) => (ErrorKind::RateLimited, Some(throttled(ctx, message))),
            Some(500..=599) | None => (
                ErrorKind::UpstreamUnavailable,
                Some(transient(ctx, "a server error", status, message)),
            ),
            Some(_) => (ErrorKind::InvalidRequest, None),
        },
    };
    UpstreamError {
        kind,
        status,
        provider_code: code.map(str::to_owned),
        message: message.to_owned(),
        retry_after: None,
        diagnosis,
    }
}

/// The AWS error code an SDK error line names ("service error: InvalidClientTokenId: …").
fn named_code(detail: &str) -> Option<&str> {
    detail.split(|c: char| !c.is_ascii_alphanumeric()).find(|word| {
        [UNRECOGNISED_CODES, EXPIRED_CODES, SKEW_CODES, SIGNATURE_CODES]
            .iter()
            .any(|codes| codes.contains(word))
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn request_id(headers: &HeaderMap) -> Option<&str> {
    header(headers, "x-amzn-requestid").or_else(|| header(headers, "x-amz-request-id"))
}

#[cfg(test)]
mod tests;
