//! Upstream error text without the deployment's own secrets. Some servers and proxies quote
//! the key they were sent in their error message, and that text travels on to the client,
//! the logs, spans, `/health`, the dashboard and the ledger.
//!
//! AWS needs more than the configured values: credentials often come from a profile, SSO or
//! a role the config never names, and a SigV4 refusal can quote the canonical request (the
//! signed headers' values, `x-amz-security-token` among them), the access key id and the
//! signature. [`scrub_aws`] removes those by their shape.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex_lite::Regex;

use crate::config::Deployment;
use crate::secret::Secret;

/// The shortest configured secret cut out verbatim. Placeholders sent to servers that want
/// no key (`ollama`, `none`, `dummy`, `EMPTY`, LiteLLM's `sk-1234`) are all shorter, and
/// cutting them would garble every message that names the server; anything of 8 characters
/// or more may be a real password-style key, and a message missing a word is a small price
/// for one that never shows it.
const SHORTEST_SECRET: usize = 8;

/// The secrets `d` sends upstream.
fn secrets(d: &Deployment) -> impl Iterator<Item = &Secret> {
    [
        d.api_key.as_ref(),
        d.aws.access_key_id.as_ref(),
        d.aws.secret_access_key.as_ref(),
        d.aws.session_token.as_ref(),
        d.aws.web_identity_token.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|s| &s.value)
    .filter(|s| s.expose().len() >= SHORTEST_SECRET)
}

/// `text` with each of `d`'s secrets replaced by its safe prefix (`sk-ant-a…`).
pub(crate) fn scrub_text<'a>(d: &Deployment, text: &'a str) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for secret in secrets(d) {
        if out.contains(secret.expose()) {
            out = Cow::Owned(out.replace(secret.expose(), &secret.safe_prefix()));
        }
    }
    out
}

/// What AWS and proxies in front of it quote that must not travel on: the canonical request
/// and string to sign of a signature mismatch (to the end of the text: they run to it), an
/// access key id (kept to its four-letter kind, as `Secret::safe_prefix` shows it), a
/// signature, a session token.
static AWS_PATTERNS: LazyLock<[(Regex, &'static str); 4]> = LazyLock::new(|| {
    let re = |p: &str| Regex::new(p).unwrap_or_else(|e| unreachable!("{p}: {e}"));
    [
        (
            re(r"(?is)\s*\bthe (?:canonical string|string-to-sign)\b.*$"),
            " (the canonical request AWS quoted is left out: it holds the signed headers)",
        ),
        (re(r"\b((?:AKIA|ASIA|ABIA|ACCA))[A-Z0-9]{12,}\b"), "${1}…"),
        (re(r"(?i)\b((?:x-amz-)?signature\s*[=:]\s*)[0-9a-f]{16,}"), "${1}…"),
        (re(r#"(?i)\b(x-amz-security-token\s*[=:]\s*)[^\s&'",;<]+"#), "${1}…"),
    ]
});

/// `text` without what [`AWS_PATTERNS`] finds; borrowed when there is nothing to cut.
pub(crate) fn scrub_aws(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for (pattern, with) in AWS_PATTERNS.iter() {
        if let Cow::Owned(clean) = pattern.replace_all(&out, *with) {
            out = Cow::Owned(clean);
        }
    }
    out
}

/// An upstream body with `d`'s secrets replaced, as [`scrub_text`]; a body that is not UTF-8
/// is searched as its lossy text.
pub(crate) fn scrub_body<'a>(d: &Deployment, body: &'a [u8]) -> Cow<'a, [u8]> {
    match String::from_utf8_lossy(body) {
        Cow::Borrowed(text) => match scrub_text(d, text) {
            Cow::Borrowed(_) => Cow::Borrowed(body),
            Cow::Owned(clean) => Cow::Owned(clean.into_bytes()),
        },
        Cow::Owned(text) => match scrub_text(d, &text) {
            Cow::Borrowed(_) => Cow::Borrowed(body),
            Cow::Owned(clean) => Cow::Owned(clean.into_bytes()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, MapEnv};

    fn deployment(key: &str) -> std::sync::Arc<Deployment> {
        let yaml = format!(
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_key: {key}\n"
        );
        let cfg = config::load_from_str(&yaml, std::path::Path::new("t.yaml"), &MapEnv::default())
            .unwrap_or_else(|e| panic!("{e}"));
        cfg.deployments().next().cloned().unwrap_or_else(|| panic!("no deployment"))
    }

    #[test]
    fn an_echoed_key_is_cut_to_its_safe_prefix() {
        let d = deployment("sk-ant-api03-echoed-0123456789abcdef");
        let text = "invalid x-api-key: sk-ant-api03-echoed-0123456789abcdef (twice: sk-ant-api03-echoed-0123456789abcdef)";
        assert_eq!(scrub_text(&d, text), "invalid x-api-key: sk-ant-a… (twice: sk-ant-a…)");
        let body = br#"{"error":{"message":"bad key sk-ant-api03-echoed-0123456789abcdef"}}"#;
        let clean = scrub_body(&d, body);
        assert_eq!(String::from_utf8_lossy(&clean), r#"{"error":{"message":"bad key sk-ant-a…"}}"#);
    }

    #[test]
    fn a_configured_secret_of_eight_characters_is_cut_out() {
        let d = deployment("pw-8char");
        assert_eq!(scrub_text(&d, "bad key pw-8char"), "bad key …");
    }

    #[test]
    fn a_signature_mismatch_loses_its_canonical_request_key_id_signature_and_token() {
        let text = "The request signature we calculated does not match the signature you \
            provided. Check your AWS Secret Access Key and signing method.\n\nThe Canonical \
            String for this request should have been\n'POST\n/model/m/invoke\n\nhost:bedrock\n\
            x-amz-security-token:IQoJb3JpZ2luX2VjTOKEN==\n'\n\nThe String-to-Sign should have \
            been\n'AWS4-HMAC-SHA256\n20260101T000000Z'\n";
        let clean = scrub_aws(text);
        assert!(clean.starts_with("The request signature we calculated does not match"));
        assert!(!clean.contains("IQoJ") && !clean.contains("/model/m"), "{clean}");
        assert!(
            clean.ends_with(
                "(the canonical request AWS quoted is left out: it holds the signed headers)"
            ),
            "{clean}"
        );

        let header = "Credential=ASIAXY7Q2X9LMZ0ABCDE/20260101/us-east-1/bedrock/aws4_request, \
            SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \
            X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE%2Ftoken&x=1";
        let clean = scrub_aws(header);
        assert_eq!(
            clean,
            "Credential=ASIA…/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, \
             Signature=… X-Amz-Security-Token=…&x=1"
        );
        let plain = "The security token included in the request is invalid.";
        assert!(matches!(scrub_aws(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn other_text_and_placeholder_keys_are_left_alone() {
        let d = deployment("sk-ant-api03-echoed-0123456789abcdef");
        assert!(matches!(scrub_text(&d, "invalid x-api-key"), Cow::Borrowed(_)));
        let placeholder = deployment("ollama");
        assert_eq!(scrub_text(&placeholder, "ollama is not running"), "ollama is not running");
    }
}
