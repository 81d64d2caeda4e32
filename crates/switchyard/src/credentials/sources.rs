//! Builds the aws-config credentials provider a deployment's plan calls for: static keys, a
//! named profile (static, SSO session, legacy SSO, credential_process, source_profile +
//! role_arn), the default chain, a web identity token, and a role assumed on top of any of
//! them.
//!
//! A named profile is read by aws-config's profile provider alone, from the files the
//! gateway's [`AwsEnvironment`] names (AWS_CONFIG_FILE from an env file counts), so keys
//! exported into the environment can never shadow it. aws-config 1.8 offers no public way
//! to hand it a whole environment; what it still reads from the process is listed in
//! ARCHITECTURE.md. Building makes no network call; credentials are fetched when the cache
//! asks.

use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider as Tls, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder as HttpBuilder, Connector};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_types::SdkConfig;
use aws_types::region::Region;
use aws_types::sdk_config::SharedHttpClient;

use super::cache::LoadError;
use super::env::AwsEnvironment;
use crate::classify::CredentialFailure;
use crate::secret::Secret;

/// How long one credential fetch (an SSO or STS call, a credential_process) may take.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the base credentials come from.
#[derive(Debug, Clone)]
pub enum Base {
    Keys {
        id: Secret,
        secret: Secret,
        token: Option<Secret>,
    },
    Profile(String),
    DefaultChain,
    /// LiteLLM's `aws_web_identity_token` (the token itself) with `aws_role_name`.
    WebIdentity {
        token: Secret,
        role: String,
        session: String,
    },
}

/// `aws_role_name` (+ `aws_session_name`, `aws_external_id`), assumed from the base.
#[derive(Debug, Clone)]
pub struct AssumeRole {
    pub arn: String,
    pub session_name: Option<String>,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub base: Base,
    pub role: Option<AssumeRole>,
    /// `aws_sts_endpoint`.
    pub sts_endpoint: Option<String>,
}

/// The HTTPS client aws-config uses for STS, SSO and SSO-OIDC: rustls on ring (no aws-lc),
/// with HTTPS_PROXY / NO_PROXY honoured like the upstream client.
pub fn http_client() -> SharedHttpClient {
    HttpBuilder::new().build_with_connector_fn(|settings, components| {
        let mut builder = Connector::builder();
        if let Some(settings) = settings {
            builder = builder.connector_settings(settings.clone());
        }
        if let Some(sleep) = components.and_then(|c| c.sleep_impl()) {
            builder = builder.sleep_impl(sleep);
        }
        builder
            .proxy_config(ProxyConfig::from_env())
            .tls_provider(Tls::Rustls(CryptoMode::Ring))
            .build()
    })
}

/// The SDK config STS calls (assume-role, web identity) are made with: `region`, the
/// gateway's HTTP client, and the STS endpoint from `aws_sts_endpoint`, else
/// AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL (an env file's count) unless
/// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS.
async fn sts_config(
    plan: &Plan,
    env: &AwsEnvironment,
    region: &str,
    http: &SharedHttpClient,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http.clone())
        .region(Region::new(region.to_owned()))
        .no_credentials();
    let ignore_env = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let from_env = || env.get("AWS_ENDPOINT_URL_STS").or_else(|| env.get("AWS_ENDPOINT_URL"));
    let endpoint =
        plan.sts_endpoint.as_deref().or_else(|| if ignore_env { None } else { from_env() });
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url.trim());
    }
    loader.load().await
}

/// The provider for `plan`, uncached (the cache sits in front of it).
pub async fn build(
    plan: &Plan,
    env: &AwsEnvironment,
    region: &str,
    http: &SharedHttpClient,
) -> Result<SharedCredentialsProvider, LoadError> {
    let conf = ProviderConfig::without_region()
        .with_region(Some(Region::new(region.to_owned())))
        .with_http_client(http.clone());
    let base = match &plan.base {
        Base::Keys { id, secret, token } => SharedCredentialsProvider::new(Credentials::new(
            id.expose(),
            secret.expose(),
            token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "switchyard-config",
        )),
        Base::Profile(name) => {
            // Named files must exist (aws-config fails on a missing one, where it skips a
            // missing default); with neither, the defaults say "profile not found".
            let mut files = EnvConfigFiles::builder();
            let mut any = false;
            for (kind, path) in [
                (EnvConfigFileKind::Config, env.config_file()),
                (EnvConfigFileKind::Credentials, env.credentials_file()),
            ] {
                if path.is_file() {
                    files = files.with_file(kind, path);
                    any = true;
                }
            }
            if !any {
                files =
                    files.include_default_config_file(true).include_default_credentials_file(true);
            }
            let files = files.build();
            SharedCredentialsProvider::new(
                ProfileFileCredentialsProvider::builder()
                    .configure(&conf)
                    .profile_name(name)
                    .profile_files(files)
                    .build(),
            )
        }
        Base::DefaultChain => SharedCredentialsProvider::new(
            DefaultCredentialsChain::builder().configure(conf).build().await,
        ),
        Base::WebIdentity { token, role, session } => {
            let sts = sts_config(plan, env, region, http).await;
            return Ok(SharedCredentialsProvider::new(WebIdentity {
                client: aws_sdk_sts::Client::new(&sts),
                token: token.clone(),
                role: role.clone(),
                session: session.clone(),
            }));
        }
    };
    let Some(role) = &plan.role else { return Ok(base) };
    let sts = sts_config(plan, env, region, http).await;
    let mut builder = AssumeRoleProvider::builder(role.arn.clone())
        .session_name(role.session_name.clone().unwrap_or_else(|| "switchyard".to_owned()))
        .configure(&sts);
    if let Some(id) = &role.external_id {
        builder = builder.external_id(id.clone());
    }
    // The whole base credentials sign the AssumeRole call, session token included
    // (LiteLLM dropped it: litellm#13918).
    Ok(SharedCredentialsProvider::new(builder.build_from_provider(base).await))
}

/// One fetch from `provider`, bounded by [`LOAD_TIMEOUT`].
pub async fn fetch(provider: &SharedCredentialsProvider) -> Result<Credentials, LoadError> {
    match tokio::time::timeout(LOAD_TIMEOUT, provider.provide_credentials()).await {
        Ok(Ok(credentials)) => Ok(credentials),
        Ok(Err(error)) => Err(load_error(&error)),
        Err(_) => Err(LoadError {
            failure: CredentialFailure::TimedOut,
            detail: format!("no credentials within {} s", LOAD_TIMEOUT.as_secs()),
        }),
    }
}

pub fn load_error(error: &CredentialsError) -> LoadError {
    let failure = match error {
        CredentialsError::CredentialsNotLoaded(_) => CredentialFailure::NotLoaded,
        CredentialsError::ProviderTimedOut(_) => CredentialFailure::TimedOut,
        CredentialsError::InvalidConfiguration(_) => CredentialFailure::InvalidConfiguration,
        _ => CredentialFailure::Provider,
    };
    LoadError { failure, detail: chain(error) }
}

/// An error and its sources as one line, each distinct message once. An STS refusal the
/// SDK could not read (an emulator's or proxy's shape) is read from its raw answer instead.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refusal) = unread_sts_refusal(e) {
            parts.push(refusal);
            break;
        }
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// "service error: Code: message" for an STS AssumeRole / AssumeRoleWithWebIdentity refusal
/// whose code the SDK could not read (it reads only STS's own XML shape), from the answer.
fn unread_sts_refusal(error: &(dyn StdError + 'static)) -> Option<String> {
    fn read<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Option<String> {
        let SdkError::ServiceError(context) = e else { return None };
        if context.err().code().is_some() {
            return None;
        }
        let status = context.raw().status().as_u16();
        let read = crate::classify::read_sdk_response(context.raw());
        let code = read.code.map(|c| format!("{c}: ")).unwrap_or_default();
        let message = read.message.unwrap_or_else(|| "no message".to_owned());
        Some(format!("service error: STS answered HTTP {status}: {code}{message}"))
    }
    error.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>().and_then(read).or_else(|| {
        error
            .downcast_ref::<SdkError<AssumeRoleWithWebIdentityError, HttpResponse>>()
            .and_then(read)
    })
}

/// STS AssumeRoleWithWebIdentity with a token given in the config (LiteLLM's
/// `aws_web_identity_token`); aws-config's own provider only reads token files.
#[derive(Debug)]
struct WebIdentity {
    client: aws_sdk_sts::Client,
    token: Secret,
    role: String,
    session: String,
}

impl ProvideCredentials for WebIdentity {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let out = self
                .client
                .assume_role_with_web_identity()
                .role_arn(&self.role)
                .role_session_name(&self.session)
                .web_identity_token(self.token.expose())
                .send()
                .await
                .map_err(|e| CredentialsError::provider_error(chain(&e)))?;
            let c = out.credentials.ok_or_else(|| {
                CredentialsError::unhandled(
                    "STS answered AssumeRoleWithWebIdentity without credentials",
                )
            })?;
            let expiry = SystemTime::try_from(c.expiration).ok();
            Ok(Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                Some(c.session_token),
                expiry,
                "WebIdentityToken",
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_sources_in_one_line() {
        let e =
            CredentialsError::provider_error("the SSO token has expired and cannot be refreshed");
        let l = load_error(&e);
        assert_eq!(l.failure, CredentialFailure::Provider);
        assert_eq!(
            l.detail,
            "an error occurred while loading credentials: the SSO token has expired and cannot be refreshed"
        );
        let l =
            load_error(&CredentialsError::not_loaded("no providers in chain provided credentials"));
        assert_eq!(l.failure, CredentialFailure::NotLoaded);
    }
}
