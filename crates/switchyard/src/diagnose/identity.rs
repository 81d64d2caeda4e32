//! "Who am I" for a Bedrock deployment: its credentials resolved the way the gateway resolves
//! them, then STS `GetCallerIdentity` (which needs no permission) — the account, the ARN, and
//! for an IAM Identity Center role the permission set. STS is reached through
//! `aws_sts_endpoint`, AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL when set, so tests use the
//! mock.
//!
//! Reports STS's answer as data; it never classifies (the probe through the provider does).
//! Never prints a secret: the key id at most as its safe prefix.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_sts::config::retry::RetryConfig;
use aws_sdk_sts::config::{BehaviorVersion, Region};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;
use serde::Serialize;

use crate::classify::{self, AwsErrorBody};
use crate::config::Deployment;
use crate::credentials::{self, AwsCredentials, AwsEnvironment, CredentialReport};
use crate::secret::Secret;

/// How long one STS call (credential resolution included) may take.
pub const STS_TIMEOUT: Duration = Duration::from_secs(20);

/// What STS said about the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
    /// `AWSReservedSSO_<set>_<hash>` roles: the IAM Identity Center permission set.
    pub permission_set: Option<String>,
}

/// The identity check of one credential source.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IdentityCheck {
    /// STS answered.
    Known(Identity),
    /// STS refused the credentials: its error code (`InvalidClientTokenId`, `ExpiredToken`,
    /// `SignatureDoesNotMatch` …) and message.
    Refused { code: Option<String>, message: String },
    /// The credentials could not be resolved at all (the probe says why).
    Unresolved { detail: String },
    /// STS could not be reached.
    Unreachable { detail: String },
    /// Nothing to ask: a Bedrock API key has no AWS identity to look up.
    NotApplicable { reason: String },
}

impl IdentityCheck {
    /// One line for people.
    pub fn summary(&self) -> String {
        match self {
            Self::Known(id) => {
                let set = id
                    .permission_set
                    .as_ref()
                    .map(|s| format!(", SSO permission set `{s}`"))
                    .unwrap_or_default();
                format!("{} (account {}{set})", id.arn, id.account)
            }
            Self::Refused { code, message } => format!(
                "STS GetCallerIdentity refused these credentials: {}{message}",
                code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default()
            ),
            Self::Unresolved { detail } => format!("credentials not resolved: {detail}"),
            Self::Unreachable { detail } => format!("STS not reachable: {detail}"),
            Self::NotApplicable { reason } => reason.clone(),
        }
    }

    /// STS does not know the key (`InvalidClientTokenId`, or a message that says so): the
    /// same verdict as Bedrock's UnrecognizedClientException.
    pub fn unrecognised(&self) -> bool {
        match self {
            Self::Refused { code, message } => {
                classify::refusal(code.as_deref(), &message.to_ascii_lowercase())
                    == Some(classify::Refusal::Unrecognised)
            }
            _ => false,
        }
    }

    pub fn account(&self) -> Option<&str> {
        match self {
            Self::Known(id) => Some(&id.account),
            _ => None,
        }
    }
}

/// One deployment's credentials as `doctor` shows them, and who they belong to.
#[derive(Debug, Clone)]
pub struct Checked {
    pub report: CredentialReport,
    pub identity: Option<IdentityCheck>,
}

/// Describes the credentials of a Bedrock deployment and, unless `offline`, resolves them
/// and asks STS who they are.
pub async fn check(
    deployment: &Deployment,
    env: &Arc<AwsEnvironment>,
    region: &str,
    offline: bool,
) -> Checked {
    if deployment.api_key.is_some() {
        return Checked {
            report: credentials::describe(deployment, env),
            identity: Some(IdentityCheck::NotApplicable {
                reason: "a Bedrock API key has no AWS identity STS can show".to_owned(),
            }),
        };
    }
    let creds =
        AwsCredentials::new(deployment, Arc::clone(env), region, credentials::http_client());
    if offline {
        return Checked { report: creds.describe(deployment), identity: None };
    }
    let identity = match tokio::time::timeout(STS_TIMEOUT, creds.get()).await {
        Err(_) => IdentityCheck::Unresolved {
            detail: format!("no credentials within {} s", STS_TIMEOUT.as_secs()),
        },
        Ok(Err(e)) => IdentityCheck::Unresolved { detail: e.detail },
        Ok(Ok(c)) => caller_identity(c, region, sts_endpoint(deployment, env)).await,
    };
    Checked { report: creds.describe(deployment), identity: Some(identity) }
}

/// `aws_sts_endpoint`, else AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL (unless
/// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS), as the credentials module uses for STS.
pub fn sts_endpoint(deployment: &Deployment, env: &AwsEnvironment) -> Option<String> {
    let ignore = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    deployment
        .aws
        .sts_endpoint
        .clone()
        .or_else(|| {
            (!ignore)
                .then(|| env.get("AWS_ENDPOINT_URL_STS").or_else(|| env.get("AWS_ENDPOINT_URL")))?
                .map(str::to_owned)
        })
        .map(|u| u.trim().to_owned())
}

/// STS `GetCallerIdentity` signed with `creds`.
pub async fn caller_identity(
    creds: Credentials,
    region: &str,
    endpoint: Option<String>,
) -> IdentityCheck {
    let key = Secret::new(creds.access_key_id()).safe_prefix();
    let mut conf = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(creds)
        .http_client(credentials::http_client())
        .retry_config(RetryConfig::disabled());
    if let Some(url) = endpoint {
        conf = conf.endpoint_url(url);
    }
    let client = aws_sdk_sts::Client::from_conf(conf.build());
    let sent = tokio::time::timeout(STS_TIMEOUT, client.get_caller_identity().send()).await;
    let answer = match sent {
        Err(_) => {
            return IdentityCheck::Unreachable {
                detail: format!("no answer within {} s", STS_TIMEOUT.as_secs()),
            };
        }
        Ok(answer) => answer,
    };
    match answer {
        Ok(out) => {
            let arn = out.arn.unwrap_or_default();
            IdentityCheck::Known(Identity {
                account: out.account.unwrap_or_default(),
                permission_set: permission_set(&arn),
                arn,
                user_id: out.user_id.unwrap_or_default(),
            })
        }
        Err(SdkError::ServiceError(e)) => {
            let read = classify::read_sdk_response(e.raw());
            refused(e.raw().status().as_u16(), read, e.err().code(), e.err().message())
        }
        Err(other) => {
            let detail = DisplayErrorContext(&other).to_string();
            tracing::debug!(key = %key, %detail, "STS GetCallerIdentity failed");
            IdentityCheck::Unreachable { detail }
        }
    }
}

/// STS's refusal as data, without markup: the SDK's code and message when it could read
/// the awsQuery XML, else what the body says in whichever shape an emulator or proxy used.
pub fn refused(
    status: u16,
    read: AwsErrorBody,
    code: Option<&str>,
    message: Option<&str>,
) -> IdentityCheck {
    let message = message
        .map(classify::plain_text)
        .filter(|m| !m.is_empty())
        .or(read.message)
        .unwrap_or_else(|| format!("HTTP {status} without a message"));
    IdentityCheck::Refused { code: code.map(str::to_owned).or(read.code), message }
}

/// `arn:aws:sts::ACCOUNT:assumed-role/AWSReservedSSO_<set>_<hash>/user` → `<set>`.
pub fn permission_set(arn: &str) -> Option<String> {
    let role = arn.split("assumed-role/").nth(1)?.split('/').next()?;
    let rest = role.strip_prefix("AWSReservedSSO_")?;
    let (set, _hash) = rest.rsplit_once('_')?;
    (!set.is_empty()).then(|| set.to_owned())
}

/// When the held credentials expire, as RFC 3339, for reports.
pub fn rfc3339(at: SystemTime) -> String {
    aws_smithy_types::DateTime::from(at)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_refusals_are_data_without_markup_in_any_shape() {
        let none = http::HeaderMap::new();
        // The SDK read STS's XML: its code and message are kept.
        let r = refused(
            403,
            AwsErrorBody::default(),
            Some("InvalidClientTokenId"),
            Some("The security token included in the request is invalid."),
        );
        assert!(r.unrecognised());
        assert_eq!(
            r.summary(),
            "STS GetCallerIdentity refused these credentials: InvalidClientTokenId: The security token included in the request is invalid."
        );
        // A proxy or emulator answered JSON, or HTML, which the SDK could not read.
        let r = refused(
            403,
            classify::read_aws_error(&none, br#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"The security token included in the request is invalid."}"#),
            None,
            None,
        );
        assert!(r.unrecognised(), "{r:?}");
        assert!(!r.summary().contains('{'), "{}", r.summary());
        let r = refused(
            403,
            classify::read_aws_error(&none, b"<html><body><h1>403 Forbidden</h1><p>The AWS Access Key Id you provided does not exist in our records.</p></body></html>"),
            None,
            None,
        );
        assert!(r.unrecognised(), "by its text: {r:?}");
        assert_eq!(
            r.summary(),
            "STS GetCallerIdentity refused these credentials: 403 Forbidden The AWS Access Key Id you provided does not exist in our records."
        );
        let r = refused(403, AwsErrorBody::default(), Some("SignatureDoesNotMatch"), None);
        assert!(!r.unrecognised());
        assert!(
            r.summary().ends_with("SignatureDoesNotMatch: HTTP 403 without a message"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn the_permission_set_is_read_from_an_sso_role_arn() {
        assert_eq!(
            permission_set(
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_ClaudeAccess_0123abcd/dev@x.com"
            )
            .as_deref(),
            Some("ClaudeAccess")
        );
        assert_eq!(
            permission_set("arn:aws:sts::1:assumed-role/AWSReservedSSO_Bedrock_Users_9f/u")
                .as_deref(),
            Some("Bedrock_Users")
        );
        assert_eq!(permission_set("arn:aws:sts::1:assumed-role/Admin/u"), None);
        assert_eq!(permission_set("arn:aws:iam::1:user/me"), None);
    }
}
