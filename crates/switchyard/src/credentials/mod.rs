//! AWS credentials per Bedrock deployment, resolved and refreshed by the gateway itself:
//! explicit keys, a named profile (static, SSO session, legacy SSO, credential_process,
//! source_profile + role_arn), an assumed role, a web identity token, or the default chain —
//! behind a cache that refreshes before expiry, one refresh at a time. After `aws sso login`
//! the next request succeeds; nothing needs a restart.
//!
//! A Bedrock API key bypasses all of this: the provider sends it as a bearer token and never
//! builds an [`AwsCredentials`]. Never logs or prints a secret; descriptions carry sources and
//! safe prefixes only.

mod cache;
mod env;
mod profile;
mod sources;

pub use cache::{LoadError, MIN_LEFT, REFRESH_BEFORE};
pub use env::{AwsEnvironment, shown};
pub use profile::{ProfileInfo, Profiles, sso_token_expiry};
pub use sources::{AssumeRole, Base, LOAD_TIMEOUT, Plan, http_client};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::sdk_config::SharedHttpClient;

use crate::classify::{AwsAuth, AwsContext, UndefinedProfile, UpstreamError, bedrock_no_region};
use crate::config::{Config, CredentialSource, Deployment, ProviderKind, ValueSource};
use crate::secret::Secret;

/// The credentials of one deployment: how to get them, and the cache in front.
pub struct AwsCredentials {
    plan: Plan,
    env: Arc<AwsEnvironment>,
    region: String,
    http: SharedHttpClient,
    /// Built on first use (aws-config's loader is async); concurrent first callers share it.
    provider: tokio::sync::OnceCell<SharedCredentialsProvider>,
    cache: cache::Cache,
}

impl AwsCredentials {
    pub fn new(
        deployment: &Deployment,
        env: Arc<AwsEnvironment>,
        region: impl Into<String>,
        http: SharedHttpClient,
    ) -> Self {
        Self {
            plan: plan(deployment),
            env,
            region: region.into(),
            http,
            provider: tokio::sync::OnceCell::new(),
            cache: cache::Cache::default(),
        }
    }

    /// Credentials to sign with now: from memory while fresh, else (re)loaded.
    pub async fn get(&self) -> Result<Credentials, LoadError> {
        self.cache
            .get(|| async {
                let provider = self
                    .provider
                    .get_or_try_init(|| {
                        sources::build(&self.plan, &self.env, &self.region, &self.http)
                    })
                    .await?;
                sources::fetch(provider).await
            })
            .await
    }

    /// What `doctor` shows: the source, and the expiry of the credentials held now.
    pub fn describe(&self, deployment: &Deployment) -> CredentialReport {
        let mut report = describe(deployment, &self.env);
        if let Some(current) = self.cache.current() {
            report.key_prefix = Some(Secret::new(current.access_key_id()).safe_prefix());
            report.expires = current.expiry();
        }
        report
    }
}

/// The plan for a deployment's `aws_*` keys (config has already folded AWS_ACCESS_KEY_ID,
/// AWS_PROFILE and AWS_REGION from the environment and env files into them).
pub fn plan(deployment: &Deployment) -> Plan {
    let aws = &deployment.aws;
    let session = aws.session_name.clone();
    let web_identity = match (&aws.web_identity_token, &aws.role_name) {
        (Some(token), Some(role)) => Some(Base::WebIdentity {
            token: token.value.clone(),
            role: role.clone(),
            session: session.clone().unwrap_or_else(|| "switchyard".to_owned()),
        }),
        _ => None,
    };
    let role = match (&web_identity, &aws.role_name) {
        (None, Some(arn)) => Some(AssumeRole {
            arn: arn.clone(),
            session_name: session,
            external_id: aws.external_id.clone(),
        }),
        _ => None,
    };
    let base = web_identity.unwrap_or_else(|| match (&aws.access_key_id, &aws.secret_access_key) {
        (Some(id), Some(secret)) => Base::Keys {
            id: id.value.clone(),
            secret: secret.value.clone(),
            token: aws.session_token.as_ref().map(|t| t.value.clone()),
        },
        _ => match &aws.profile_name {
            Some(name) => Base::Profile(name.clone()),
            None => Base::DefaultChain,
        },
    });
    Plan { base, role, sts_endpoint: aws.sts_endpoint.clone() }
}

/// The profile whose `region` and files count for a deployment: `aws_profile_name`
/// (or AWS_PROFILE, folded in by config), else `default`.
pub fn profile_name(deployment: &Deployment) -> &str {
    deployment.aws.profile_name.as_deref().unwrap_or("default")
}

/// The region and where it came from: `aws_region_name` (or AWS_REGION /
/// AWS_DEFAULT_REGION, folded in by config), else the region in an ARN model id, else the
/// profile's `region`. `None` is AWS-14.
pub fn region(deployment: &Deployment, profiles: &Profiles) -> Option<(String, String)> {
    if let Some(region) = deployment.aws.region_name.as_deref().filter(|r| !r.trim().is_empty()) {
        let from = match &deployment.aws.region_source {
            Some(ValueSource::Literal(at)) => format!("aws_region_name in {at}"),
            Some(other) => other.to_string(),
            None => "aws_region_name".to_owned(),
        };
        return Some((region.trim().to_owned(), from));
    }
    if deployment.model.starts_with("arn:")
        && let Some(region) = deployment.model.split(':').nth(3).filter(|r| !r.is_empty())
    {
        return Some((region.to_owned(), "the model ARN".to_owned()));
    }
    let name = profile_name(deployment);
    let profile = profiles.profile(name)?;
    let region = profile.region()?.to_owned();
    let file = profile.file.as_deref().map(shown).unwrap_or_default();
    Some((region, format!("the region of profile `{name}` in {file}")))
}

/// AWS-14 for every Bedrock deployment that has no region anywhere — for `config check` and
/// the startup log. `env` is the config's environment ([`AwsEnvironment::snapshot`]).
pub fn region_problems(
    config: &Config,
    env: &AwsEnvironment,
) -> Vec<(Arc<Deployment>, UpstreamError)> {
    let profiles = Profiles::load(env);
    config
        .deployments()
        .filter(|d| matches!(d.provider, ProviderKind::Bedrock(_)) && d.mock_response.is_none())
        .filter(|d| region(d, &profiles).is_none())
        .map(|d| {
            let ctx = AwsContext {
                who: format!(
                    "the deployment of `{}` ({}/{}, no region)",
                    d.alias,
                    d.provider.prefix(),
                    d.model
                ),
                model: d.model.clone(),
                auth: auth(d, &profiles),
                files: env.profile_files(),
                ..AwsContext::default()
            };
            (Arc::clone(d), bedrock_no_region(&ctx))
        })
        .collect()
}

/// How diagnoses name the credentials of a SigV4 or bearer deployment.
pub fn auth(deployment: &Deployment, profiles: &Profiles) -> AwsAuth {
    let aws = &deployment.aws;
    if let Some(key) = &deployment.api_key {
        return AwsAuth::BearerKey {
            prefix: key.value.safe_prefix(),
            source: key.source.to_string(),
        };
    }
    if let (Some(token), Some(_)) = (&aws.web_identity_token, &aws.role_name) {
        return AwsAuth::WebIdentity { source: token.source.to_string() };
    }
    if let (Some(id), Some(_)) = (&aws.access_key_id, &aws.secret_access_key) {
        return AwsAuth::Keys {
            key_prefix: id.value.safe_prefix(),
            source: id.source.to_string(),
            session_token: aws.session_token.is_some(),
        };
    }
    match &aws.profile_name {
        Some(name) => {
            let info = profiles.profile(name);
            let source = match &deployment.credentials {
                CredentialSource::AwsProfile { source: ValueSource::Literal(at), .. } => {
                    format!("aws_profile_name in {at}")
                }
                CredentialSource::AwsProfile { source, .. } => source.to_string(),
                _ => "aws_profile_name".to_owned(),
            };
            let source = match info.as_ref().and_then(|i| i.file.as_deref()) {
                Some(file) => format!("{source}, defined in {}", shown(file)),
                None => format!("{source}; no file defines it"),
            };
            let undefined = info.is_none().then(|| UndefinedProfile {
                searched: profiles.searched(name),
                defined: profiles.names(),
                config_file: shown(profiles.config_file()),
                credentials_file: shown(profiles.credentials_file()),
            });
            AwsAuth::Profile {
                name: name.clone(),
                source,
                sso: info.as_ref().and_then(ProfileInfo::sso),
                process: info.is_some_and(|i| i.get("credential_process").is_some()),
                undefined,
            }
        }
        None => AwsAuth::DefaultChain,
    }
}

/// Which kind of source `doctor` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    BedrockApiKey,
    StaticKeys,
    Profile,
    SsoSession,
    LegacySso,
    CredentialProcess,
    RoleProfile,
    WebIdentity,
    DefaultChain,
}

/// The credential source a deployment will use, for `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialReport {
    pub kind: SourceKind,
    /// One line: "profile `cc` (aws_profile_name in c.yaml:7:7), defined in
    /// /home/u/.aws/config, SSO session `corp` (https://corp.awsapps.com/start)".
    pub source: String,
    /// `aws_role_name`, assumed on top.
    pub assumed_role: Option<String>,
    /// The SSO token cache file and when its token expires.
    pub sso_cache_file: Option<PathBuf>,
    pub sso_token_expires: Option<SystemTime>,
    /// The access key id's safe prefix (`ASIA…`), when known.
    pub key_prefix: Option<String>,
    /// When the credentials held now expire.
    pub expires: Option<SystemTime>,
}

/// Describes the source without fetching anything (reads the config files and SSO cache).
pub fn describe(deployment: &Deployment, env: &AwsEnvironment) -> CredentialReport {
    let profiles = Profiles::load(env);
    let auth = auth(deployment, &profiles);
    let mut report = CredentialReport {
        kind: SourceKind::DefaultChain,
        source: String::new(),
        assumed_role: deployment.aws.role_name.clone(),
        sso_cache_file: None,
        sso_token_expires: None,
        key_prefix: None,
        expires: None,
    };
    report.source = match auth {
        AwsAuth::BearerKey { prefix, source } => {
            report.kind = SourceKind::BedrockApiKey;
            report.assumed_role = None;
            format!("Bedrock API key {prefix} ({source})")
        }
        AwsAuth::Keys { key_prefix, source, session_token } => {
            report.kind = SourceKind::StaticKeys;
            report.key_prefix = Some(key_prefix.clone());
            let token = if session_token { ", with a session token" } else { "" };
            format!("access key {key_prefix} ({source}{token})")
        }
        AwsAuth::WebIdentity { source } => {
            report.kind = SourceKind::WebIdentity;
            format!("web identity token ({source})")
        }
        AwsAuth::Profile { name, source, sso, process, .. } => {
            let info = profiles.profile(&name);
            let mut text = format!("profile `{name}` ({source})");
            report.kind = SourceKind::Profile;
            if let Some(info) = &info {
                if let Some((session, url)) = sso {
                    report.kind = if info.sso_session.is_some() {
                        text.push_str(&format!(", SSO session `{session}` ({url})"));
                        SourceKind::SsoSession
                    } else {
                        text.push_str(&format!(", legacy SSO ({url})"));
                        SourceKind::LegacySso
                    };
                    report.sso_cache_file = info.sso_cache_file(env);
                    report.sso_token_expires =
                        report.sso_cache_file.as_deref().and_then(sso_token_expiry);
                } else if process {
                    report.kind = SourceKind::CredentialProcess;
                    text.push_str(", credential_process");
                } else if let Some(role) = info.get("role_arn") {
                    report.kind = SourceKind::RoleProfile;
                    text.push_str(&format!(", role {role}"));
                }
            }
            text
        }
        AwsAuth::DefaultChain => "the default AWS credential chain (environment, the default \
                                  profile, SSO, web identity, container, instance metadata)"
            .to_owned(),
    };
    report
}

#[cfg(test)]
mod tests;
