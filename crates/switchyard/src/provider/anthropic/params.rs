//! What becomes of the request fields the canonical request does not model (`extra`) on the
//! way to Anthropic: forwarded, mapped, ignored, or refused.
//!
//! For the Anthropic dialect everything is forwarded untouched. For the OpenAI dialect each
//! OpenAI parameter is decided here, in one table, with LiteLLM's `drop_params` semantics;
//! this never guesses at a parameter it does not know: those are refused (or dropped).

use serde_json::{Value, json};

use crate::canonical::{ChatRequest, Dialect};
use crate::classify::{ErrorKind, UpstreamError};

/// Fields the body builder writes itself: an extra field with one of these names is never
/// forwarded (it would duplicate a JSON key).
pub(super) const OWN_FIELDS: &[&str] = &[
    "model",
    "max_tokens",
    "messages",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "tools",
    "tool_choice",
    "stream",
    "anthropic_version",
    "anthropic_beta",
];

/// Anthropic Messages fields an OpenAI-dialect request may carry (e.g. the OpenAI SDK's
/// `extra_body`); forwarded untouched, as LiteLLM passes provider-specific parameters on.
const ANTHROPIC_FIELDS: &[&str] = &[
    "thinking",
    "metadata",
    "container",
    "mcp_servers",
    "context_management",
    "inference_geo",
    "output_config",
    "cache_control",
];

/// The thinking budgets LiteLLM gives OpenAI's `reasoning_effort` levels.
const EFFORT_BUDGETS: &[(&str, u32)] =
    &[("minimal", 1024), ("low", 1024), ("medium", 2048), ("high", 4096)];

/// The request's extra fields, decided.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Extras<'a> {
    /// Forwarded as top-level body fields, in request order.
    pub forward: Vec<(&'a str, &'a Value)>,
    /// `thinking` derived from `reasoning_effort` (an explicit `thinking` is in `forward`).
    pub thinking: Option<Value>,
    /// `metadata.user_id` to send, when no `metadata` is forwarded.
    pub user_id: Option<&'a str>,
}

impl Extras<'_> {
    /// The `thinking` the body will carry, derived or forwarded.
    pub fn thinking(&self) -> Option<&Value> {
        self.thinking.as_ref().or_else(|| self.field("thinking"))
    }

    pub fn field(&self, name: &str) -> Option<&Value> {
        self.forward.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

/// Decides every extra field of `req`. `drop_params` drops what Anthropic cannot honour
/// instead of refusing the request.
pub(super) fn decide<'a>(
    req: &'a ChatRequest,
    drop_params: bool,
    who: &str,
) -> Result<Extras<'a>, UpstreamError> {
    let mut out = Extras::default();
    match req.dialect {
        Dialect::Anthropic => {
            out.forward = req
                .extra
                .iter()
                .filter(|(k, _)| !OWN_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), v))
                .collect();
            out.user_id = req.user.as_deref().filter(|_| out.field("metadata").is_none());
            return Ok(out);
        }
        Dialect::OpenAi => {}
    }
    let mut refused = Vec::new();
    let mut safety_identifier = None;
    for (key, value) in &req.extra {
        let key = key.as_str();
        match openai_param(key, value) {
            Fate::Forward => out.forward.push((key, value)),
            Fate::Ignore => {}
            Fate::SafetyIdentifier => safety_identifier = value.as_str(),
            Fate::Thinking(budget) => {
                out.thinking = Some(json!({"type": "enabled", "budget_tokens": budget}));
            }
            Fate::Refuse(why) if drop_params => {
                tracing::debug!(param = key, why, "dropped a parameter Anthropic cannot honour");
            }
            Fate::Refuse(why) => refused.push(format!("`{key}` ({why})")),
        }
    }
    if !refused.is_empty() {
        return Err(refuse(&refused, who));
    }
    if out.field("thinking").is_some() {
        out.thinking = None;
    }
    if out.field("metadata").is_none() {
        out.user_id = req.user.as_deref().or(safety_identifier).filter(|u| opaque_id(u));
    }
    Ok(out)
}

enum Fate {
    Forward,
    /// Harmless: Anthropic's behaviour already matches what the value asks for.
    Ignore,
    SafetyIdentifier,
    Thinking(u32),
    /// Cannot be honoured; the reason, for the error.
    Refuse(&'static str),
}

/// The decision table for one OpenAI parameter.
fn openai_param(key: &str, value: &Value) -> Fate {
    let is = |default: &[Value]| value.is_null() || default.contains(value);
    let harmless_default =
        |default: &[Value], why| if is(default) { Fate::Ignore } else { Fate::Refuse(why) };
    match key {
        _ if ANTHROPIC_FIELDS.contains(&key) => Fate::Forward,
        "n" => harmless_default(&[json!(1)], "Anthropic returns one choice"),
        "logprobs" => harmless_default(&[json!(false)], "Anthropic returns no log probabilities"),
        "top_logprobs" => harmless_default(&[json!(0)], "Anthropic returns no log probabilities"),
        "frequency_penalty" | "presence_penalty" => {
            harmless_default(&[json!(0), json!(0.0)], "Anthropic has no penalties")
        }
        "logit_bias" => harmless_default(&[json!({})], "Anthropic has no logit bias"),
        "modalities" => harmless_default(&[json!(["text"])], "Anthropic answers in text only"),
        "service_tier" => harmless_default(
            &[json!("auto"), json!("default")],
            "OpenAI's tiers do not exist there",
        ),
        // OpenAI-side storage and cache routing: nothing for Anthropic to do.
        "store" | "prompt_cache_key" | "stream_options" | "parallel_tool_calls" => Fate::Ignore,
        "safety_identifier" => Fate::SafetyIdentifier,
        "reasoning_effort" => match value.as_str() {
            None | Some("none") => Fate::Ignore,
            Some(level) => match EFFORT_BUDGETS.iter().find(|(l, _)| *l == level) {
                Some((_, budget)) => Fate::Thinking(*budget),
                None => Fate::Refuse("not one of minimal, low, medium, high"),
            },
        },
        "seed" => Fate::Refuse("Anthropic has no seeded sampling"),
        "functions" | "function_call" => Fate::Refuse("use `tools` and `tool_choice`"),
        "audio" => Fate::Refuse("Anthropic answers in text only"),
        "prediction" => Fate::Refuse("Anthropic has no predicted outputs"),
        "web_search_options" => Fate::Refuse("not mapped to Anthropic's web search tool"),
        "verbosity" => Fate::Refuse("Anthropic has no verbosity setting"),
        _ => Fate::Refuse("not an OpenAI parameter Switchyard maps to Anthropic"),
    }
}

fn refuse(refused: &[String], who: &str) -> UpstreamError {
    let plural = if refused.len() == 1 { "parameter" } else { "parameters" };
    let mut error = UpstreamError::new(
        ErrorKind::InvalidRequest,
        format!(
            "{who} cannot honour the {plural} {}. Remove them from the request, or set \
             `drop_params: true` (in litellm_settings, or in this deployment's litellm_params) \
             to drop such parameters",
            refused.join(", ")
        ),
    );
    error.status = Some(400);
    error
}

/// Anthropic rejects `metadata.user_id` values that look like an email or a phone number;
/// those are not forwarded (LiteLLM does the same).
fn opaque_id(user: &str) -> bool {
    let phone = user.starts_with('+') && user[1..].chars().all(|c| c.is_ascii_digit() || c == ' ');
    !user.is_empty() && !user.contains('@') && !phone
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(dialect: Dialect, extra: Value, user: Option<&str>) -> ChatRequest {
        let Value::Object(extra) = extra else { panic!("extra must be an object") };
        ChatRequest { dialect, extra, user: user.map(str::to_owned), ..ChatRequest::default() }
    }

    #[test]
    fn anthropic_dialect_forwards_everything_but_our_own_fields() {
        let req = request(
            Dialect::Anthropic,
            json!({"thinking": {"type": "enabled", "budget_tokens": 2000}, "service_tier": "auto",
                   "metadata": {"user_id": "u1"}, "model": "shadow", "future_field": [1]}),
            None,
        );
        let extras = decide(&req, false, "d").unwrap();
        let keys: Vec<&str> = extras.forward.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["future_field", "metadata", "service_tier", "thinking"]);
        assert_eq!(extras.user_id, None);
    }

    #[test]
    fn openai_harmless_defaults_are_ignored_and_user_becomes_metadata() {
        let req = request(
            Dialect::OpenAi,
            json!({"n": 1, "store": false, "logprobs": false, "presence_penalty": 0,
                   "service_tier": "auto", "modalities": ["text"], "prompt_cache_key": "k"}),
            Some("user-42"),
        );
        let extras = decide(&req, false, "d").unwrap();
        assert_eq!(extras, Extras { user_id: Some("user-42"), ..Extras::default() });
    }

    #[test]
    fn emails_are_not_sent_as_user_ids() {
        let req = request(Dialect::OpenAi, json!({}), Some("alice@example.com"));
        assert_eq!(decide(&req, false, "d").unwrap().user_id, None);
        let req = request(Dialect::OpenAi, json!({"safety_identifier": "hash-1"}), None);
        assert_eq!(decide(&req, false, "d").unwrap().user_id, Some("hash-1"));
    }

    #[test]
    fn unsupported_openai_params_are_refused_by_name_unless_dropped() {
        let req = request(
            Dialect::OpenAi,
            json!({"seed": 7, "n": 2, "logit_bias": {"50256": -100}, "frobnicate": true}),
            None,
        );
        let err = decide(&req, false, "the deployment of `balanced`").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
        for name in ["`seed`", "`n`", "`logit_bias`", "`frobnicate`", "drop_params: true"] {
            assert!(err.message.contains(name), "{name} missing: {}", err.message);
        }
        assert!(err.message.starts_with("the deployment of `balanced` cannot honour"));
        let dropped = decide(&req, true, "d").unwrap();
        assert_eq!(dropped, Extras::default());
    }

    #[test]
    fn reasoning_effort_becomes_a_thinking_budget_unless_thinking_is_explicit() {
        let req = request(Dialect::OpenAi, json!({"reasoning_effort": "medium"}), None);
        let extras = decide(&req, false, "d").unwrap();
        assert_eq!(extras.thinking(), Some(&json!({"type": "enabled", "budget_tokens": 2048})));
        let req = request(
            Dialect::OpenAi,
            json!({"reasoning_effort": "high", "thinking": {"type": "enabled", "budget_tokens": 5000}}),
            None,
        );
        let extras = decide(&req, false, "d").unwrap();
        assert_eq!(extras.thinking, None);
        assert_eq!(extras.thinking(), Some(&json!({"type": "enabled", "budget_tokens": 5000})));
        let req = request(Dialect::OpenAi, json!({"reasoning_effort": "extreme"}), None);
        assert!(decide(&req, false, "d").unwrap_err().message.contains("`reasoning_effort`"));
    }
}
