//! Emulates the AWS endpoints the Bedrock provider talks to — Bedrock runtime (`/model/{id}/…`),
//! STS (`POST /`) and the SSO portal (`GET /federation/credentials`) — over one registry of test
//! identities, Bedrock API keys and SSO tokens. It checks what AWS checks and answers with AWS's
//! own statuses, codes, headers and messages; which scripted reply comes next is `lib.rs`'s job.
//!
//! ```no_run
//! # async fn demo() {
//! use mock_upstream::{AwsError, AwsIdentity, MockUpstream};
//! let mock = MockUpstream::start().await;
//! mock.aws()
//!     .identity(AwsIdentity::new("AKIAMOCK000000000001", "mock-secret"))
//!     .bedrock_api_key("ABSKmock-key")
//!     .sso_token("tok-123", "123456789012", "BedrockUsers");
//! mock.push(AwsError::throttling().into());
//! # }
//! ```

pub(crate) mod admin;
mod bedrock;
mod converse;
mod embed;
mod errors;
mod eventstream;
mod sigv4;
mod sso;
mod sts;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::http::request::Parts;
use axum::response::Response;

pub use errors::AwsError;
pub(crate) use errors::status_for;

use crate::{HeaderMap, MockUpstream, Shared, lock};

/// The account of identities that name none.
const ACCOUNT: &str = "123456789012";
/// How long STS and SSO credentials last unless the call or the test says otherwise.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A test AWS identity: what signs requests, and what STS says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsIdentity {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Required in `x-amz-security-token` when set (temporary credentials).
    pub session_token: Option<String>,
    /// What `GetCallerIdentity` reports and AccessDenied messages name.
    pub arn: String,
    pub account: String,
    pub user_id: String,
    /// After this, requests get `ExpiredTokenException` (`ExpiredToken` from STS).
    pub expires_at: Option<SystemTime>,
}

impl AwsIdentity {
    /// Long-term keys of the IAM user `arn:aws:iam::123456789012:user/mock-user`.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        let identity = Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
            arn: String::new(),
            account: String::new(),
            user_id: String::new(),
            expires_at: None,
        };
        identity.arn(format!("arn:aws:iam::{ACCOUNT}:user/mock-user"))
    }

    pub fn session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// Sets the ARN, and from it the account and a user id in AWS's shape (`AIDA…` for users,
    /// `AROA…:SESSION` for assumed roles).
    pub fn arn(mut self, arn: impl Into<String>) -> Self {
        self.arn = arn.into();
        self.account = self.arn.split(':').nth(4).unwrap_or_default().to_owned();
        let resource = self.arn.splitn(6, ':').nth(5).unwrap_or_default();
        self.user_id = match resource.strip_prefix("assumed-role/") {
            Some(rest) => {
                let (role, session) = rest.split_once('/').unwrap_or((rest, ""));
                format!("AROA{}:{session}", tag(role))
            }
            None if resource == "root" => self.account.clone(),
            None => format!("AIDA{}", tag(resource)),
        };
        self
    }

    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = user_id.into();
        self
    }

    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    fn expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// 16 upper-case hex digits from a stable hash (FNV-1a): mock ids that stay the same per name.
fn tag(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016X}")
}

/// Configures the AWS emulation of a running mock; get one with [`MockUpstream::aws`]. Every
/// method returns the handle, so calls chain. [`MockUpstream::reset`] forgets all of it.
#[derive(Clone, Copy, Debug)]
pub struct Aws<'a> {
    state: &'a AwsState,
}

impl MockUpstream {
    /// The AWS emulation (Bedrock runtime, STS, SSO portal) of this mock.
    pub fn aws(&self) -> Aws<'_> {
        Aws { state: &self.shared.aws }
    }
}

impl Aws<'_> {
    /// Accepts SigV4 signatures of this identity (replacing one with the same key id).
    pub fn identity(&self, identity: AwsIdentity) -> &Self {
        self.state.registry().identities.insert(identity.access_key_id.clone(), identity);
        self
    }

    /// Accepts `Authorization: Bearer <key>` on Bedrock, as the IAM user
    /// `arn:aws:iam::123456789012:user/BedrockAPIKey-mock`.
    pub fn bedrock_api_key(&self, key: impl Into<String>) -> &Self {
        self.bedrock_api_key_for(key, format!("arn:aws:iam::{ACCOUNT}:user/BedrockAPIKey-mock"))
    }

    /// Accepts this Bedrock API key as the principal `arn` (named in AccessDenied messages).
    pub fn bedrock_api_key_for(&self, key: impl Into<String>, arn: impl Into<String>) -> &Self {
        self.state.registry().api_keys.insert(key.into(), arn.into());
        self
    }

    /// Rejects the key from now on, as AWS does an expired or deleted one.
    pub fn revoke_bedrock_api_key(&self, key: &str) -> &Self {
        self.state.registry().api_keys.remove(key);
        self
    }

    /// An SSO access token (as in `~/.aws/sso/cache/*.json`) that may get credentials for the
    /// role in the account; call again to grant more. The credentials belong to
    /// `arn:aws:sts::ACCOUNT:assumed-role/AWSReservedSSO_ROLE_<hex>/dev@example.com`.
    pub fn sso_token(&self, token: impl Into<String>, account_id: &str, role_name: &str) -> &Self {
        let mut registry = self.state.registry();
        let entry = registry.sso_tokens.entry(token.into()).or_default();
        entry.expired = false;
        entry.grants.push((account_id.to_owned(), role_name.to_owned()));
        drop(registry);
        self
    }

    /// The token is now expired: the portal answers 401 `UnauthorizedException`.
    pub fn expire_sso_token(&self, token: &str) -> &Self {
        if let Some(entry) = self.state.registry().sso_tokens.get_mut(token) {
            entry.expired = true;
        }
        self
    }

    /// A web identity token (the contents of `AWS_WEB_IDENTITY_TOKEN_FILE`) that
    /// `AssumeRoleWithWebIdentity` accepts.
    pub fn web_identity_token(&self, token: impl Into<String>) -> &Self {
        self.state.registry().web_identity_tokens.insert(token.into());
        self
    }

    /// Restricts `AssumeRole` to registered roles (any role until one is registered); with an
    /// external id, the call must send the same `ExternalId`.
    pub fn role(&self, role_arn: impl Into<String>, external_id: Option<&str>) -> &Self {
        self.state.registry().roles.insert(role_arn.into(), external_id.map(str::to_owned));
        self
    }

    /// How long STS and SSO credentials last from now on, whatever the call asks (default:
    /// `DurationSeconds` for STS, else one hour).
    pub fn temporary_lifetime(&self, lifetime: Duration) -> &Self {
        self.state.registry().lifetime = Some(lifetime);
        self
    }

    /// The identity's credentials are expired from now on.
    pub fn expire(&self, access_key_id: &str) -> &Self {
        let past = SystemTime::now() - Duration::from_secs(1);
        if let Some(identity) = self.state.registry().identities.get_mut(access_key_id) {
            identity.expires_at = Some(past);
        }
        self
    }

    /// The key id is unknown from now on (`UnrecognizedClientException`).
    pub fn forget(&self, access_key_id: &str) -> &Self {
        self.state.registry().identities.remove(access_key_id);
        self
    }

    /// Every identity the mock accepts, issued ones included.
    pub fn identities(&self) -> Vec<AwsIdentity> {
        self.state.registry().identities.values().cloned().collect()
    }

    /// The temporary credentials STS and the SSO portal handed out, in order.
    pub fn issued(&self) -> Vec<AwsIdentity> {
        let registry = self.state.registry();
        let issued = registry.issued.iter().filter_map(|key| registry.identities.get(key));
        issued.cloned().collect()
    }
}

/// The AWS registry, shared by the handle and the server task.
#[derive(Debug, Default)]
pub(crate) struct AwsState(Mutex<Registry>);

impl AwsState {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.0)
    }

    pub(crate) fn reset(&self) {
        *self.registry() = Registry::default();
    }
}

#[derive(Debug, Default)]
struct Registry {
    identities: BTreeMap<String, AwsIdentity>,
    /// Key ids of temporary credentials handed out, in order.
    issued: Vec<String>,
    /// Bedrock API key → the principal's ARN.
    api_keys: BTreeMap<String, String>,
    sso_tokens: BTreeMap<String, SsoToken>,
    web_identity_tokens: BTreeSet<String>,
    /// Role ARN → the external id it requires.
    roles: BTreeMap<String, Option<String>>,
    lifetime: Option<Duration>,
}

#[derive(Debug, Default)]
struct SsoToken {
    /// `(account id, role name)` pairs.
    grants: Vec<(String, String)>,
    expired: bool,
}

impl Registry {
    /// Registers fresh temporary credentials for `arn` and returns them. Keys are numbered per
    /// mock (`ASIAMOCK000000000001`, …), so tests can predict them.
    fn issue(&mut self, arn: String, asked: Option<Duration>) -> AwsIdentity {
        let n = self.issued.len() + 1;
        let lifetime = self.lifetime.or(asked).unwrap_or(DEFAULT_LIFETIME);
        let identity = AwsIdentity::new(
            format!("ASIAMOCK{n:012}"),
            format!("mockTemporarySecretAccessKey{n:012}"),
        )
        .session_token(format!(
            "IQoJb3JpZ2luX2VjEMockSessionToken{n:06}//////////wEaCXVzLWVhc3QtMQ=="
        ))
        .arn(arn)
        .expires_at(SystemTime::now() + lifetime);
        self.identities.insert(identity.access_key_id.clone(), identity.clone());
        self.issued.push(identity.access_key_id.clone());
        identity
    }
}

/// One AWS call as received (already recorded by `lib.rs`).
pub(crate) struct AwsCall<'a> {
    pub seq: u64,
    pub method: &'a str,
    /// The path exactly as sent (still percent-encoded).
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl AwsCall<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `x-amzn-RequestId`: UUID-shaped, numbered by arrival.
    fn request_id(&self) -> String {
        format!("00000000-0000-4000-8000-{:012}", self.seq)
    }
}

/// Whether a request belongs to the AWS emulation rather than the Anthropic one.
pub(crate) fn owns(method: &str, path: &str) -> bool {
    path.starts_with("/model/")
        || path == "/federation/credentials"
        || (method == "POST" && path == "/")
}

/// Answers one recorded AWS call.
pub(crate) async fn route(shared: &Shared, seq: u64, parts: &Parts, body: &[u8]) -> Response {
    let call = AwsCall {
        seq,
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body,
    };
    if call.path.starts_with("/model/") {
        bedrock::route(shared, &call).await
    } else if call.path == "/federation/credentials" {
        sso::route(&shared.aws, &call)
    } else {
        sts::route(&shared.aws, &call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_derive_account_and_user_id_from_the_arn() {
        let sso = AwsIdentity::new("ASIA1", "s").arn(
            "arn:aws:sts::210987654321:assumed-role/AWSReservedSSO_Bedrock_abc/dev@example.com",
        );
        assert_eq!(sso.account, "210987654321");
        assert!(sso.user_id.starts_with("AROA") && sso.user_id.ends_with(":dev@example.com"));
        let user = AwsIdentity::new("AKIA1", "s");
        assert_eq!(user.account, ACCOUNT);
        assert!(user.user_id.starts_with("AIDA"));
        assert_eq!(tag("x"), tag("x"));
    }

    #[test]
    fn issued_credentials_are_numbered_and_registered() {
        let mut registry = Registry::default();
        let first = registry.issue("arn:aws:sts::1:assumed-role/R/s".into(), None);
        let second = registry.issue("arn:aws:sts::1:assumed-role/R/s".into(), None);
        assert_eq!(first.access_key_id, "ASIAMOCK000000000001");
        assert_eq!(second.access_key_id, "ASIAMOCK000000000002");
        assert_eq!(first.secret_access_key.len(), 40);
        assert!(registry.identities.contains_key(&second.access_key_id));
    }
}
