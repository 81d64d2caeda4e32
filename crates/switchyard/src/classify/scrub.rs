//! Upstream error text without the deployment's own secrets. Some servers and proxies quote
//! the key they were sent in their error message, and that text travels on to the client,
//! the logs, spans, `/health`, the dashboard and the ledger.

use std::borrow::Cow;

use crate::config::Deployment;
use crate::secret::Secret;

/// Shorter values are placeholders (`ollama`, `none`, `dummy`) rather than keys; cutting them
/// out would garble every message that names the server.
const SHORTEST_SECRET: usize = 12;

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
    fn other_text_and_placeholder_keys_are_left_alone() {
        let d = deployment("sk-ant-api03-echoed-0123456789abcdef");
        assert!(matches!(scrub_text(&d, "invalid x-api-key"), Cow::Borrowed(_)));
        let placeholder = deployment("ollama");
        assert_eq!(scrub_text(&placeholder, "ollama is not running"), "ollama is not running");
    }
}
