//! Classifies AWS Bedrock's answers and AWS credential failures: an HTTP error (status,
//! `x-amzn-ErrorType`, JSON `message`), an event-stream exception frame, or an aws-config
//! credential error becomes an [`UpstreamError`] with its kind and a diagnosis from the
//! catalog (AWS-01 … AWS-18).
//!
//! Pure functions over bytes and strings; no I/O. Names credentials by source and safe
//! prefix only (`ASIA…`), never the secret.

use std::time::SystemTime;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use http::HeaderMap;
use serde::Deserialize;

use super::{Diagnosis, ErrorKind, UpstreamError};

/// Claude ids Bedrock serves, for "did you mean" suggestions (AWS-10).
const KNOWN_MODELS: &[&str] = &[
    "anthropic.claude-opus-4-6-v1",
    "anthropic.claude-opus-4-5-20251101-v1:0",
    "anthropic.claude-haiku-4-5-20251001-v1:0",
    "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "anthropic.claude-opus-4-1-20250805-v1:0",
    "anthropic.claude-opus-4-20250514-v1:0",
    "anthropic.claude-sonnet-4-20250514-v1:0",
    "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
];

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
    /// A named profile, with its SSO session (name, start URL) or credential_process.
    Profile { name: String, source: String, sso: Option<(String, String)>, process: bool },
    /// Web identity (`aws_web_identity_token` + `aws_role_name`).
    WebIdentity { source: String },
    #[default]
    DefaultChain,
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

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(alias = "Message", alias = "errorMessage")]
    message: Option<String>,
    #[serde(rename = "__type")]
    type_: Option<String>,
    code: Option<String>,
}

/// An HTTP error answer of Bedrock Runtime (any non-2xx status). `used` is the key the
/// request was signed with (SigV4 only).
pub fn bedrock_http_error(
    ctx: &AwsContext,
    used: Option<&UsedKey>,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> UpstreamError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    // As the AWS SDKs: the header first, then `code`, then `__type`; strip `:…` and `…#`.
    let code = header(headers, "x-amzn-errortype")
        .map(str::to_owned)
        .or(parsed.code)
        .or(parsed.type_)
        .map(|c| {
            let c = c.split(':').next().unwrap_or_default();
            c.rsplit('#').next().unwrap_or_default().to_owned()
        })
        .filter(|c| !c.is_empty());
    let message = parsed.message.unwrap_or_else(|| body_excerpt(body, status));
    let mut error = classify(ctx, used, Some(status), code.as_deref(), &message, headers);
    if let (Some(diag), Some(id)) = (&mut error.diagnosis, request_id(headers)) {
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
    let parsed: ErrorBody = serde_json::from_slice(payload).unwrap_or_default();
    let message = parsed.message.unwrap_or_else(|| body_excerpt(payload, 200));
    let mut code = exception.to_owned();
    if let Some(first) = code.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    let mut error = classify(ctx, None, None, Some(&code), &message, &HeaderMap::new());
    let kind_note = match &error.diagnosis {
        Some(d) => format!(" {} {}", d.cause, d.remedy),
        None => String::new(),
    };
    error.diagnosis = Some(Diagnosis::new(
        "AWS-18",
        format!(
            "Bedrock reported {code} (\"{message}\") in the middle of the stream of {}.{kind_note}",
            ctx.who
        ),
        "Before anything reached the client the gateway retries or falls back by itself; \
         after that the stream ends with this error. Retry the request.",
    ));
    error
}

/// aws-config could not produce credentials. `detail` is the error with its sources.
pub fn bedrock_credentials_error(
    ctx: &AwsContext,
    failure: CredentialFailure,
    detail: &str,
) -> UpstreamError {
    let lower = detail.to_ascii_lowercase();
    let sso_expired = lower.contains("sso token has expired")
        || (lower.contains("failed to read") && lower.contains("sso/cache"))
        || lower.contains("session token not found or invalid")
        || lower.contains("token has expired and refresh failed");
    let (kind, diagnosis) = if sso_expired {
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
    } else if lower.contains("invalidclienttokenid") || lower.contains("unrecognizedclient") {
        (ErrorKind::CredentialsInvalid, unrecognised(ctx, detail))
    } else if lower.contains("expiredtoken") {
        (ErrorKind::CredentialsExpired, expired(ctx, None, detail))
    } else if lower.contains("accessdenied") || lower.contains("not authorized to perform") {
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
    let (kind, diagnosis) = match code.unwrap_or_default() {
        "UnrecognizedClientException" | "InvalidClientTokenId" => {
            (ErrorKind::CredentialsInvalid, Some(unrecognised(ctx, message)))
        }
        "ExpiredTokenException" | "ExpiredToken" => {
            (ErrorKind::CredentialsExpired, Some(expired(ctx, used, message)))
        }
        "InvalidSignatureException" | "SignatureDoesNotMatch" | "RequestExpired"
            if lower.contains("signature expired")
                || lower.contains("not yet current")
                || lower.contains("request has expired") =>
        {
            (ErrorKind::ClockSkew, Some(clock_skew(ctx, message, headers)))
        }
        "InvalidSignatureException" | "SignatureDoesNotMatch" | "IncompleteSignature" => {
            (ErrorKind::CredentialsInvalid, Some(bad_secret(ctx, used)))
        }
        _ if bearer
            && (lower.contains("api key") || lower.contains("bearer") || status == Some(401)) =>
        {
            (ErrorKind::CredentialsInvalid, Some(bad_api_key(ctx)))
        }
        "AccessDeniedException" | "AccessDenied" => access_denied(ctx, &lower, message),
        "ValidationException" if lower.contains("on-demand throughput") => {
            (ErrorKind::ModelNeedsProfile, Some(needs_profile(ctx)))
        }
        "ValidationException" if lower.contains("model identifier is invalid") => {
            (ErrorKind::ModelNotFound, Some(model_not_found(ctx)))
        }
        _ if lower.contains("prompt is too long")
            || lower.contains("input is too long")
            || lower.contains("exceed context limit") =>
        {
            (ErrorKind::ContextWindow, Some(context_window(ctx, message)))
        }
        "ResourceNotFoundException" if lower.contains("use case") => {
            (ErrorKind::ModelAccess, Some(no_model_access(ctx)))
        }
        "ResourceNotFoundException" => (ErrorKind::ModelNotFound, Some(model_not_found(ctx))),
        "ThrottlingException" | "ServiceQuotaExceededException" | "TooManyRequestsException" => {
            (ErrorKind::RateLimited, Some(throttled(ctx, message)))
        }
        code @ ("ModelTimeoutException" | "RequestTimeout") => {
            (ErrorKind::Timeout, Some(transient(ctx, code, status, message)))
        }
        code @ ("InternalServerException"
        | "ServiceUnavailableException"
        | "ModelNotReadyException"
        | "ModelErrorException"
        | "ModelStreamErrorException"
        | "InternalFailure"
        | "ServiceUnavailable") => {
            (ErrorKind::UpstreamUnavailable, Some(transient(ctx, code, status, message)))
        }
        "UnknownOperationException" => (ErrorKind::Configuration, Some(wrong_endpoint(ctx))),
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

/// AWS-01.
fn unrecognised(ctx: &AwsContext, message: &str) -> Diagnosis {
    let mut cause = format!(
        "AWS did not recognise the credentials of {} — this is not a missing permission \
         (\"{message}\"). They came from {}.",
        ctx.who,
        ctx.creds()
    );
    let remedy = match &ctx.auth {
        AwsAuth::Keys { key_prefix, session_token, .. } => {
            if key_prefix.starts_with("ASIA") && !session_token {
                cause.push_str(
                    " The key starts with ASIA (temporary credentials) but no session token \
                     (AWS_SESSION_TOKEN / aws_session_token) came with it.",
                );
            }
            cause.push_str(
                " Keys exported into the environment or an env file are usually stale \
                 temporary credentials from an earlier session.",
            );
            format!("{}", capitalise(&ctx.use_a_profile()))
        }
        _ => {
            let p = ctx.profile();
            cause.push_str(
                " The profile may resolve to other keys than you think, or they were revoked.",
            );
            format!(
                "Check which identity it resolves to with `aws sts get-caller-identity --profile \
                 {p}`; for SSO run {}; the next request then works without a restart.",
                ctx.login()
            )
        }
    };
    Diagnosis::new("AWS-01", cause, remedy)
}

/// AWS-02.
fn expired(ctx: &AwsContext, used: Option<&UsedKey>, message: &str) -> Diagnosis {
    let at = used
        .and_then(|u| u.expires_at)
        .and_then(|t| DateTime::from(t).fmt(Format::DateTime).ok())
        .map(|t| format!(" at {t}"))
        .unwrap_or_default();
    let cause = format!(
        "The temporary credentials of {} ({}) expired{at} (\"{message}\").",
        ctx.who,
        ctx.creds()
    );
    let remedy = match &ctx.auth {
        AwsAuth::Keys { .. } => format!(
            "Keys from environment variables or an env file cannot refresh: {}",
            ctx.use_a_profile()
        ),
        _ => format!("Run {}; the next request then works without a restart.", ctx.login()),
    };
    Diagnosis::new("AWS-02", cause, remedy)
}

/// AWS-11: the key id exists but the secret is not its own.
fn bad_secret(ctx: &AwsContext, used: Option<&UsedKey>) -> Diagnosis {
    let key = used.map(|u| u.key_prefix.clone()).or_else(|| match &ctx.auth {
        AwsAuth::Keys { key_prefix, .. } => Some(key_prefix.clone()),
        _ => None,
    });
    let key = key.unwrap_or_else(|| "in use".to_owned());
    Diagnosis::new(
        "AWS-11",
        format!(
            "The secret access key does not belong to the access key {key} of {} ({}): AWS \
             calculated a different signature.",
            ctx.who,
            ctx.creds()
        ),
        format!(
            "Re-issue the key pair (or copy both halves again from the same source), or name \
             the profile instead (`aws_profile_name: {}`) so the gateway resolves matching \
             keys itself.",
            ctx.profile()
        ),
    )
}

/// AWS-12: the request's signing time and AWS's clock differ by more than 5 minutes.
fn clock_skew(ctx: &AwsContext, message: &str, headers: &HeaderMap) -> Diagnosis {
    // "Signature expired: OURS is now earlier than … (THEIRS - 5 min.)" and
    // "Signature not yet current: OURS is still later than … (THEIRS + 5 min.)".
    let stamps: Vec<i64> =
        message.split(|c: char| !c.is_ascii_alphanumeric()).filter_map(compact_time).collect();
    let skew = match (stamps.first(), stamps.last()) {
        (Some(ours), Some(theirs)) if stamps.len() >= 2 => Some(ours - theirs),
        _ => header(headers, "date")
            .and_then(|d| DateTime::from_str(d, Format::HttpDate).ok())
            .map(|theirs| DateTime::from(SystemTime::now()).secs() - theirs.secs()),
    };
    let off = match skew {
        Some(s) => format!(
            "The local clock is {} by about {} minutes",
            if s < 0 { "behind" } else { "ahead" },
            (s.unsigned_abs() + 30) / 60
        ),
        None => "The local clock is off".to_owned(),
    };
    Diagnosis::new(
        "AWS-12",
        format!(
            "{off}: AWS refused the signature of {} because SigV4 allows 5 minutes (\"{message}\").",
            ctx.who
        ),
        "Fix the system clock: enable NTP (`sudo timedatectl set-ntp true`, or `sudo chronyc \
         makestep`), then retry.",
    )
}

/// AWS-13.
fn bad_api_key(ctx: &AwsContext) -> Diagnosis {
    Diagnosis::new(
        "AWS-13",
        format!(
            "Bedrock rejected {} of {}: it is not a valid Bedrock API key (expired, made for \
             another region than {}, or not a Bedrock key at all).",
            ctx.creds(),
            ctx.who,
            ctx.region()
        ),
        format!(
            "Generate a new API key in the Bedrock console for {} (short-term keys last at \
             most 12 hours and work only in their region) and set it in \
             AWS_BEARER_TOKEN_BEDROCK or `api_key`; or remove both to sign with AWS \
             credentials (`aws_profile_name: {}`).",
            ctx.region(),
            ctx.profile()
        ),
    )
}

/// AccessDeniedException: model access (AWS-07), Marketplace (AWS-08), an explicit deny
/// (AWS-06), a missing permission (AWS-05) or a rejected API key (AWS-13).
fn access_denied(ctx: &AwsContext, lower: &str, message: &str) -> (ErrorKind, Option<Diagnosis>) {
    if lower.contains("api key") {
        (ErrorKind::CredentialsInvalid, Some(bad_api_key(ctx)))
    } else if lower.contains("marketplace") {
        let model = ctx.foundation.as_deref().unwrap_or(&ctx.model);
        (
            ErrorKind::ModelAccess,
            Some(Diagnosis::new(
                "AWS-08",
                format!(
                    "Bedrock subscribes the account to `{model}` on AWS Marketplace on first use, \
                     but the identity of {} may not (\"{message}\").",
                    ctx.who
                ),
                "Grant aws-marketplace:ViewSubscriptions and aws-marketplace:Subscribe to the \
                 identity once (or have an administrator enable the model for the account), \
                 then retry after a few minutes.",
            )),
        )
    } else if lower.contains("don't have access to the model")
        || lower.contains("account is not authorized")
    {
        (ErrorKind::ModelAccess, Some(no_model_access(ctx)))
    } else {
        (ErrorKind::PermissionDenied, Some(permission(ctx, message)))
    }
}

/// AWS-05 / AWS-06 from "User: ARN is not authorized to perform: ACTION on resource: R …".
fn permission(ctx: &AwsContext, message: &str) -> Diagnosis {
    let between = |from: &str, to: &str| {
        let rest = &message[message.find(from)? + from.len()..];
        let end = rest.find(to).unwrap_or(rest.len());
        Some(rest[..end].trim().trim_end_matches('.').to_owned())
    };
    let identity =
        between("User: ", " is not authorized").unwrap_or_else(|| "the identity".to_owned());
    let action =
        between("perform: ", " on resource").unwrap_or_else(|| "bedrock:InvokeModel".to_owned());
    let resource = between("on resource: ", " because")
        .or_else(|| between("on resource: ", " with an explicit"))
        .unwrap_or_else(|| ctx.model.clone());
    // arn:aws:sts::ACCOUNT:assumed-role/AWSReservedSSO_<set>_<hash>/user
    let account = identity
        .split(':')
        .nth(4)
        .filter(|a| a.chars().all(|c| c.is_ascii_digit()) && !a.is_empty());
    let permission_set = identity
        .split("AWSReservedSSO_")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|role| role.rsplit_once('_').map(|(set, _)| set.to_owned()));
    let who_can = match &permission_set {
        Some(set) => format!(
            "the administrator of IAM Identity Center must add it to the permission set \
             `{set}` (Permission sets → {set} → inline policy)"
        ),
        None => format!("an AWS administrator must attach it to {identity}"),
    };
    let explicit = message
        .find("with an explicit deny")
        .map(|i| message[i..].trim_end_matches('.').to_owned());
    if let Some(deny) = explicit {
        let global = if ctx.model.starts_with("global.") {
            let geo = ctx
                .profile_model
                .clone()
                .unwrap_or_else(|| ctx.model.replacen("global.", "us.", 1));
            format!(
                " Global profiles route to any region and region conditions often block them: \
                 try the geo profile `model: {}/{geo}`.",
                ctx.prefix
            )
        } else {
            String::new()
        };
        return Diagnosis::new(
            "AWS-06",
            format!(
                "{identity} may not call {action} on {resource} ({}), {deny}. The credentials are \
                 fine ({}).",
                ctx.who,
                ctx.creds()
            ),
            format!(
                "An explicit deny wins over any allow, so adding a policy will not help: the \
                 organisation's administrator must change that deny (the service control policy \
                 or the identity's policy).{global}{}",
                ctx.fallback_hint()
            ),
        );
    }
    let set =
        permission_set.map(|s| format!(" It is the SSO permission set `{s}`.")).unwrap_or_default();
    let policy = ctx.policy_template.replace("{account}", account.unwrap_or("*"));
    Diagnosis::new(
        "AWS-05",
        format!(
            "{identity} may not call {action} on {resource} ({}); the credentials are fine ({}), \
             a permission is missing.{set}",
            ctx.who,
            ctx.creds()
        ),
        format!("Grant this minimal policy — {who_can}: {policy}.{}", ctx.fallback_hint()),
    )
}

/// AWS-07.
fn no_model_access(ctx: &AwsContext) -> Diagnosis {
    let model = ctx.foundation.as_deref().unwrap_or(&ctx.model);
    Diagnosis::new(
        "AWS-07",
        format!(
            "The AWS account behind {} has not been given access to model `{model}` in {}.",
            ctx.who,
            ctx.region()
        ),
        format!(
            "Enable it in the Bedrock console in {} (Model access → {model} → request access; \
             Anthropic models ask for the use-case form once), then retry.",
            ctx.region()
        ),
    )
}

/// AWS-09.
fn needs_profile(ctx: &AwsContext) -> Diagnosis {
    let profile = ctx.profile_model.clone().unwrap_or_else(|| format!("us.{}", ctx.model));
    let global = ctx
        .foundation
        .as_deref()
        .map(|f| format!(" (or `model: {}/global.{f}` to route to any region)", ctx.prefix))
        .unwrap_or_default();
    Diagnosis::new(
        "AWS-09",
        format!(
            "Model `{}` cannot be invoked on demand in {} ({}): this model is served only \
             through an inference profile.",
            ctx.model,
            ctx.region(),
            ctx.who
        ),
        format!(
            "Write the inference profile for {} in the deployment: `model: {}/{profile}`{global}, \
             then reload.",
            ctx.region(),
            ctx.prefix
        ),
    )
}

/// AWS-10.
fn model_not_found(ctx: &AwsContext) -> Diagnosis {
    let foundation = ctx.foundation.as_deref().unwrap_or(&ctx.model);
    let geo = ctx.model.strip_suffix(foundation).unwrap_or_default();
    let matches: Vec<String> =
        close_matches(foundation).into_iter().map(|m| format!("{geo}{m}")).collect();
    let mut cause = format!(
        "Bedrock in {} does not know the model id `{}` ({}).",
        ctx.region(),
        ctx.model,
        ctx.who
    );
    if !matches.is_empty() {
        cause.push_str(&format!(" Close matches: {}.", matches.join(", ")));
    }
    let example = matches.first().cloned().unwrap_or_else(|| {
        ctx.profile_model
            .clone()
            .unwrap_or_else(|| "us.anthropic.claude-sonnet-4-5-20250929-v1:0".to_owned())
    });
    Diagnosis::new(
        "AWS-10",
        cause,
        format!(
            "Write an id Bedrock serves in {region}, e.g. `model: {}/{example}` (`aws bedrock \
             list-inference-profiles --region {region}` lists them); a geo prefix must match the \
             region (us. for us-*, eu. for eu-*, apac. for ap-*).",
            ctx.prefix,
            region = ctx.region()
        ),
    )
}

fn wrong_endpoint(ctx: &AwsContext) -> Diagnosis {
    Diagnosis::new(
        "AWS-10",
        format!("{} does not serve the Bedrock runtime API used by {}.", ctx.endpoint, ctx.who),
        "Remove `aws_bedrock_runtime_endpoint` (and AWS_ENDPOINT_URL_BEDROCK_RUNTIME) to use \
         https://bedrock-runtime.<region>.amazonaws.com, or point it at a Bedrock runtime \
         endpoint.",
    )
}

/// AWS-15.
fn throttled(ctx: &AwsContext, message: &str) -> Diagnosis {
    let profile = match &ctx.profile_model {
        Some(p) if !ctx.model.contains('.') || p != &ctx.model => {
            format!(" (`model: {}/{p}`)", ctx.prefix)
        }
        _ => String::new(),
    };
    Diagnosis::new(
        "AWS-15",
        format!("Bedrock throttled {} in {} (\"{message}\").", ctx.who, ctx.region()),
        format!(
            "The gateway retries with backoff, then falls back to the alias's next deployment. \
             For more headroom request a quota increase (Service Quotas → Amazon Bedrock) or \
             use a cross-region inference profile{profile} that spreads load over regions."
        ),
    )
}

/// AWS-16.
fn transient(ctx: &AwsContext, code: &str, status: Option<u16>, message: &str) -> Diagnosis {
    let status = status.map(|s| format!(", HTTP {s}")).unwrap_or_default();
    Diagnosis::new(
        "AWS-16",
        format!("Bedrock failed with a transient {code}{status} for {} (\"{message}\").", ctx.who),
        "Transient: the gateway retries, then falls back to the alias's next deployment. If it \
         persists, add a deployment in another region or on the Anthropic API.",
    )
}

/// AWS-17.
fn context_window(ctx: &AwsContext, message: &str) -> Diagnosis {
    let numbers: Vec<u64> =
        message.split(|c: char| !c.is_ascii_digit()).filter_map(|s| s.parse().ok()).collect();
    let detail = match numbers.as_slice() {
        [.., n, m] if message.contains("prompt is too long") => {
            format!(" The prompt has {n} tokens; the model allows {m}.")
        }
        _ => String::new(),
    };
    Diagnosis::new(
        "AWS-17",
        format!("The request does not fit the context window of {}.{detail}", ctx.who),
        "Shorten the conversation or lower max_tokens, or configure `context_window_fallbacks` \
         for the alias to a model with a larger window.",
    )
}

/// AWS-04: nothing loaded, or a source that is configured wrongly.
fn missing(ctx: &AwsContext, failure: CredentialFailure, detail: &str) -> Diagnosis {
    let files = if ctx.files.is_empty() {
        "~/.aws/config, ~/.aws/credentials".to_owned()
    } else {
        ctx.files.join(", ")
    };
    let p = ctx.profile();
    let cause = match failure {
        CredentialFailure::NotLoaded => format!(
            "No AWS credentials were found for {}. Tried: environment variables \
             (AWS_ACCESS_KEY_ID), profile `{p}` in {files}, SSO, web identity \
             (AWS_WEB_IDENTITY_TOKEN_FILE), the container endpoint and instance metadata ({detail}).",
            ctx.who
        ),
        _ => format!(
            "The AWS credentials of {} ({}) cannot be loaded: {detail}.",
            ctx.who,
            ctx.creds()
        ),
    };
    Diagnosis::new(
        "AWS-04",
        cause,
        format!(
            "Provide credentials one of three ways: name a profile (`aws_profile_name: {p}` or \
             AWS_PROFILE) and run `aws sso login --profile {p}`; set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary keys); or set a Bedrock \
             API key in AWS_BEARER_TOKEN_BEDROCK (or `api_key` on the deployment)."
        ),
    )
}

/// `20180920T174101Z` → seconds since the epoch.
fn compact_time(word: &str) -> Option<i64> {
    let b = word.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| word.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn request_id(headers: &HeaderMap) -> Option<&str> {
    header(headers, "x-amzn-requestid").or_else(|| header(headers, "x-amz-request-id"))
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

fn body_excerpt(body: &[u8], status: u16) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("HTTP {status} with an empty body");
    }
    text.chars().take(300).collect()
}

/// Up to three known ids closest to `model` by edit distance.
fn close_matches(model: &str) -> Vec<&'static str> {
    let limit = (model.len() / 4).max(3);
    let mut scored: Vec<(usize, &'static str)> = KNOWN_MODELS
        .iter()
        .filter(|known| **known != model)
        .map(|known| (edit_distance(model, known), *known))
        .filter(|(distance, _)| *distance <= limit)
        .collect();
    scored.sort_by_key(|(distance, _)| *distance);
    scored.into_iter().take(3).map(|(_, m)| m).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
#[path = "bedrock_tests.rs"]
mod tests;
