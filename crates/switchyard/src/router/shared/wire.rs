//! A cooldown as replicas exchange it through Redis (one JSON object, the value of its key
//! and the payload of its PUBLISH), and the fingerprint that says two replicas' deployments
//! are the same one.
//!
//! Only what classifies the failure travels — its class, diagnosis id, HTTP status and the
//! upstream's error code — never the upstream's message or the diagnosis text, which can
//! name accounts, ARNs or a key's prefix. Everything read back is checked, so a stray or
//! newer value in Redis never puts arbitrary text in `/health` or an error.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::classify::{Diagnosis, ErrorKind, UpstreamError};
use crate::config::{CredentialSource, Deployment};

/// The encoding's version; a replica ignores values of another version.
const VERSION: u8 = 1;

/// The wire form of one cooldown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wire {
    pub v: u8,
    /// The deployment's `model_info.id` (or the id derived from its entry).
    pub id: String,
    /// [`fingerprint`] of the deployment: replicas whose entries differ never match.
    pub fp: String,
    /// The deciding process, so it ignores its own announcement.
    pub origin: u64,
    /// The deciding replica, as people read it (host and pid).
    pub by: String,
    /// [`ErrorKind::as_str`] of the failure that cooled it.
    pub class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The upstream's error code (`ThrottlingException`, `authentication_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// How long the cooldown lasts from the moment it was announced. Relative, so replicas'
    /// clocks need not agree; a replica loading the key later uses the key's TTL instead.
    pub ttl_ms: u64,
}

/// A cooldown read back, ready to apply.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub fp: String,
    pub origin: u64,
    pub by: Arc<str>,
    pub reason: UpstreamError,
    pub ttl: Duration,
}

/// The wire form of a cooldown this replica decided.
pub fn encode(
    id: &str,
    fp: &str,
    origin: u64,
    by: &str,
    error: &UpstreamError,
    ttl: Duration,
) -> String {
    let wire = Wire {
        v: VERSION,
        id: id.to_owned(),
        fp: fp.to_owned(),
        origin,
        by: by.to_owned(),
        class: error.kind.as_str().to_owned(),
        diagnosis: error.diagnosis.as_ref().map(|d| d.id.to_owned()),
        status: error.status,
        code: error.provider_code.clone().filter(|c| token(c)),
        ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1),
    };
    serde_json::to_string(&wire).unwrap_or_default()
}

/// Reads a cooldown another replica announced; `Err` says why it is not one.
pub fn decode(bytes: &[u8]) -> Result<Received, String> {
    let wire: Wire = serde_json::from_slice(bytes).map_err(|e| format!("not a cooldown: {e}"))?;
    if wire.v != VERSION {
        return Err(format!("encoding version {} (this replica reads {VERSION})", wire.v));
    }
    if wire.id.is_empty() || wire.ttl_ms == 0 || !token(&wire.fp) || !token(&wire.class) {
        return Err("a cooldown without a deployment, class or duration".to_owned());
    }
    let by: Arc<str> = printable(&wire.by).into();
    let kind = ErrorKind::parse(&wire.class);
    let diagnosis = wire.diagnosis.as_deref().and_then(intern);
    let code = wire.code.filter(|c| token(c));
    let mut reason = UpstreamError::new(
        // A class this version does not know (a newer replica) still cools: the deployment
        // failed there, whatever the class is called.
        kind.unwrap_or(ErrorKind::UpstreamUnavailable),
        cause(&by, &wire.class, diagnosis, wire.status),
    );
    reason.status = wire.status;
    reason.provider_code = code;
    reason.diagnosis = diagnosis.map(|id| {
        Diagnosis::new(
            id,
            format!(
                "Replica {by} cooled this deployment after an attempt failed with {} ({id}); \
                 this replica skips it until the cooldown ends instead of trying it again.",
                wire.class
            ),
            format!(
                "See {id} in the diagnosis list, the log or `/health` of replica {by}, or run \
                 `switchyard doctor`, for the exact fix; the deployment is tried again when \
                 the cooldown ends."
            ),
        )
    });
    Ok(Received {
        id: wire.id,
        fp: wire.fp,
        origin: wire.origin,
        by,
        reason,
        ttl: Duration::from_millis(wire.ttl_ms),
    })
}

/// One line: who cooled the deployment and the failure's class, diagnosis and status.
fn cause(by: &str, class: &str, diagnosis: Option<&str>, status: Option<u16>) -> String {
    let details: Vec<String> = diagnosis
        .map(str::to_owned)
        .into_iter()
        .chain(status.map(|s| format!("HTTP {s}")))
        .collect();
    if details.is_empty() {
        format!("cooled by replica {by}: {class}")
    } else {
        format!("cooled by replica {by}: {class} ({})", details.join(", "))
    }
}

/// What makes two replicas' deployments the same upstream with the same credentials: a
/// sha256 (first 16 hex digits) over the alias, provider, model, endpoint, region and the
/// identity its credentials come from. A key's value is part of the hash, so two
/// replicas with different keys never share; a 64-bit prefix of a hash over a whole
/// entry gives nothing of the key back.
pub fn fingerprint(d: &Deployment) -> String {
    let aws = &d.aws;
    let secret = |s: &Option<crate::config::SourcedSecret>| {
        s.as_ref().map(|s| s.value.expose().to_owned()).unwrap_or_default()
    };
    let credentials = match &d.credentials {
        CredentialSource::Mock => "mock".to_owned(),
        CredentialSource::ApiKey(_) => format!("key:{}", secret(&d.api_key)),
        CredentialSource::BedrockApiKey(_) => format!("bedrock-key:{}", secret(&d.api_key)),
        CredentialSource::AwsKeys(_) => format!("aws-keys:{}", secret(&aws.access_key_id)),
        CredentialSource::AwsProfile { name, .. } => format!("aws-profile:{name}"),
        CredentialSource::AwsDefaultChain => "aws-chain".to_owned(),
        CredentialSource::NoneNeeded => "none".to_owned(),
        CredentialSource::Missing { .. } => "missing".to_owned(),
    };
    let parts = [
        "switchyard-cooldown-v1",
        d.alias.as_str(),
        d.provider.prefix(),
        d.model.as_str(),
        d.api_base.as_deref().unwrap_or(""),
        d.api_version.as_deref().unwrap_or(""),
        aws.region_name.as_deref().unwrap_or(""),
        aws.role_name.as_deref().unwrap_or(""),
        aws.bedrock_runtime_endpoint.as_deref().unwrap_or(""),
        credentials.as_str(),
    ];
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A short identifier: letters, digits and `_.:-`, at most 64 characters.
fn token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// At most 128 characters, control characters dropped.
fn printable(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).take(128).collect();
    if clean.is_empty() { "unnamed".to_owned() } else { clean }
}

/// Distinct diagnosis ids kept; beyond, ids read back are dropped (ids are a short catalog,
/// so only garbage in Redis reaches the bound).
const MAX_IDS: usize = 256;

/// A diagnosis id (`AWS-05`, `ANT-06`) as the `'static` string `Diagnosis` holds: each
/// distinct id is leaked once, at most [`MAX_IDS`] of them.
fn intern(id: &str) -> Option<&'static str> {
    let (letters, digits) = id.split_once('-')?;
    let shaped = (2..=5).contains(&letters.len())
        && letters.bytes().all(|b| b.is_ascii_uppercase())
        && (2..=3).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit());
    if !shaped {
        return None;
    }
    static IDS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut ids = IDS.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = ids.get(id) {
        return Some(known);
    }
    if ids.len() >= MAX_IDS {
        return None;
    }
    let leaked: &'static str = Box::leak(id.to_owned().into_boxed_str());
    ids.insert(leaked);
    Some(leaked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MapEnv, load_from_str};

    fn failure() -> UpstreamError {
        let mut e = UpstreamError::new(
            ErrorKind::CredentialsExpired,
            "The security token included in the request is expired (key AKIAEXAMPLE)",
        );
        e.status = Some(403);
        e.provider_code = Some("ExpiredTokenException".to_owned());
        e.diagnosis = Some(Diagnosis::new(
            "AWS-02",
            "The session of profile prod-admin in account 123456789012 expired.",
            "aws sso login --profile prod-admin",
        ));
        e
    }

    #[test]
    fn a_cooldown_reads_back_with_its_class_diagnosis_status_and_duration() {
        let text = encode(
            "bedrock-a",
            "0123abcd",
            7,
            "web-1 (pid 9)",
            &failure(),
            Duration::from_secs(30),
        );
        let r = decode(text.as_bytes()).unwrap();
        assert_eq!((r.id.as_str(), r.fp.as_str(), r.origin), ("bedrock-a", "0123abcd", 7));
        assert_eq!(&*r.by, "web-1 (pid 9)");
        assert_eq!(r.ttl, Duration::from_secs(30));
        assert_eq!(r.reason.kind, ErrorKind::CredentialsExpired);
        assert_eq!(r.reason.status, Some(403));
        assert_eq!(r.reason.provider_code.as_deref(), Some("ExpiredTokenException"));
        assert_eq!(r.reason.diagnosis.as_ref().map(|d| d.id), Some("AWS-02"));
        assert_eq!(
            r.reason.message,
            "cooled by replica web-1 (pid 9): credentials_expired (AWS-02, HTTP 403)"
        );
    }

    #[test]
    fn neither_the_upstream_message_nor_the_diagnosis_text_travels() {
        let text = encode("d", "0123abcd", 1, "a", &failure(), Duration::from_secs(1));
        for private in ["AKIAEXAMPLE", "security token", "123456789012", "prod-admin"] {
            assert!(!text.contains(private), "{private} in {text}");
        }
        let wire: Wire = serde_json::from_str(&text).unwrap();
        assert_eq!(wire.class, "credentials_expired");
        assert_eq!(wire.diagnosis.as_deref(), Some("AWS-02"));
    }

    #[test]
    fn values_that_are_not_cooldowns_of_this_version_are_refused() {
        let good = encode("d", "0123abcd", 1, "a", &failure(), Duration::from_secs(1));
        assert!(decode(b"not json").is_err());
        assert!(decode(good.replace("\"v\":1", "\"v\":2").as_bytes()).is_err());
        assert!(decode(good.replace("\"ttl_ms\":1000", "\"ttl_ms\":0").as_bytes()).is_err());
        assert!(decode(good.replace("credentials_expired", "has space").as_bytes()).is_err());
    }

    #[test]
    fn odd_fields_are_dropped_and_an_unknown_class_still_cools() {
        let mut wire: Wire = serde_json::from_str(&encode(
            "d",
            "0123abcd",
            1,
            "a\u{1b}[31mb",
            &failure(),
            Duration::from_secs(1),
        ))
        .unwrap();
        wire.class = "a_class_from_a_newer_replica".to_owned();
        wire.diagnosis = Some("<script>".to_owned());
        wire.code = Some("x".repeat(65));
        let r = decode(serde_json::to_string(&wire).unwrap().as_bytes()).unwrap();
        assert_eq!(r.reason.kind, ErrorKind::UpstreamUnavailable);
        assert!(r.reason.diagnosis.is_none());
        assert!(r.reason.provider_code.is_none());
        assert_eq!(&*r.by, "a[31mb");
        assert!(r.reason.message.contains("a_class_from_a_newer_replica"));
    }

    fn deployments(entries: &str) -> Vec<Deployment> {
        let text = format!("model_list:\n{entries}");
        let env = MapEnv::new([("HOME", "/nonexistent")]);
        let config = load_from_str(&text, std::path::Path::new("c.yaml"), &env)
            .unwrap_or_else(|e| panic!("{e:?}"));
        config.groups.iter().flat_map(|g| g.deployments.iter().map(|d| (**d).clone())).collect()
    }

    fn entry(model: &str, extra: &str) -> String {
        format!(
            "  - model_name: cheap\n    litellm_params:\n      model: {model}\n{extra}    model_info:\n      id: shared-id\n"
        )
    }

    #[test]
    fn the_fingerprint_tells_apart_what_calls_a_different_upstream_or_account() {
        let key = |k: &str| format!("      api_key: {k}\n");
        let base = fingerprint(&deployments(&entry("anthropic/claude-x", &key("sk-ant-one")))[0]);
        let same = fingerprint(&deployments(&entry("anthropic/claude-x", &key("sk-ant-one")))[0]);
        assert_eq!(base, same, "the same entry on two replicas");
        assert_eq!(base.len(), 16);
        assert!(!base.contains("sk-ant"));
        for other in [
            entry("anthropic/claude-y", &key("sk-ant-one")),
            entry("anthropic/claude-x", &key("sk-ant-two")),
            entry(
                "anthropic/claude-x",
                &format!("{}      api_base: http://127.0.0.1:9\n", key("sk-ant-one")),
            ),
            entry("bedrock/anthropic.claude-x", "      aws_region_name: us-east-1\n"),
        ] {
            assert_ne!(base, fingerprint(&deployments(&other)[0]), "{other}");
        }
        let east = fingerprint(
            &deployments(&entry(
                "bedrock/anthropic.claude-x",
                "      aws_region_name: us-east-1\n",
            ))[0],
        );
        let west = fingerprint(
            &deployments(&entry(
                "bedrock/anthropic.claude-x",
                "      aws_region_name: us-west-2\n",
            ))[0],
        );
        assert_ne!(east, west, "the same model in another region is another deployment");
    }
}
