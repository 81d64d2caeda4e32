//! Phase one: serde structs mirroring the LiteLLM file as written. Every field is
//! optional and every leaf is lenient the way pydantic is (`rpm: "100"` is a number, a
//! number is fine where a string is expected) because `os.environ/VAR` turns any value
//! into a string. Required keys and cross-references are checked in `validate`.
//!
//! The leaf types reject what cannot be meant (negative counts, `timeout: soon`) with a
//! message a person can act on; [`collect`] turns those into one problem per bad key.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::{Map, Value};

use super::path::{KeyPath, Seg};

// ---------------------------------------------------------------------------------------
// Lenient leaves.

/// A string; numbers and booleans are taken as their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of strings; a single string is a list of one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextList(pub Vec<String>);

impl<'de> Deserialize<'de> for TextList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TextList, E> {
                Ok(TextList(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextList, A::Error> {
                let mut out = Vec::new();
                while let Some(Text(s)) = seq.next_element()? {
                    out.push(s);
                }
                Ok(TextList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole number ≥ 0 that fits `T`; `"100"` and `100.0` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole<T>(pub T);

impl<'de, T: TryFrom<u64>> Deserialize<'de> for Whole<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T: TryFrom<u64>> V<T> {
            fn fit<E: de::Error>(v: u64) -> Result<Whole<T>, E> {
                T::try_from(v).map(Whole).map_err(|_| {
                    E::invalid_value(Unexpected::Unsigned(v), &"a smaller whole number")
                })
            }
        }
        impl<T: TryFrom<u64>> Visitor<'_> for V<T> {
            type Value = Whole<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number, 0 or more")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Whole<T>, E> {
                Self::fit(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Whole<T>, E> {
                match u64::try_from(v) {
                    Ok(v) => Self::fit(v),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Whole<T>, E> {
                if v.fract() == 0.0 && v >= 0.0 && v <= u64::MAX as f64 {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Self::fit(v as u64)
                } else {
                    Err(E::invalid_value(Unexpected::Float(v), &self))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Whole<T>, E> {
                match v.trim().parse::<u64>() {
                    Ok(n) => Self::fit(n),
                    Err(_) => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A finite number ≥ 0 (costs, weights, budgets); `"0.000003"` counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonNeg(pub f64);

/// A duration in seconds: a number ≥ 0, whole or fractional.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(pub f64);

fn non_negative<'de, D: Deserializer<'de>>(d: D, what: &'static str) -> Result<f64, D::Error> {
    struct V(&'static str);
    impl V {
        fn check<E: de::Error>(&self, v: f64) -> Result<f64, E> {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), self))
            }
        }
    }
    impl Visitor<'_> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        #[allow(clippy::cast_precision_loss)]
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Err(E::invalid_value(Unexpected::Signed(v), &self))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            self.check(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
                _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
            }
        }
    }
    d.deserialize_any(V(what))
}

impl<'de> Deserialize<'de> for NonNeg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        non_negative(d, "a number, 0 or more").map(NonNeg)
    }
}

const SECONDS: &str = "a number of seconds, 0 or more (e.g. 30 or 2.5)";

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `"30s"`, `"5m"`, `"1h"`, `"500ms"`: a duration with its unit means what it says.
        let v = Value::deserialize(d)?;
        if let Value::String(s) = &v
            && let Some(secs) = with_unit(s)
        {
            return Ok(Seconds(secs));
        }
        non_negative(v, SECONDS).map(Seconds).map_err(|e| de::Error::custom(e.to_string()))
    }
}

/// A number of seconds written with a unit: `ms`, `s`, `m` or `h`.
fn with_unit(s: &str) -> Option<f64> {
    let s = s.trim();
    let (number, scale) = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
        .iter()
        .find_map(|(unit, scale)| s.strip_suffix(unit).map(|n| (n.trim(), *scale)))?;
    let n: f64 = number.parse().ok()?;
    (n.is_finite() && n >= 0.0 && number.starts_with(|c: char| c.is_ascii_digit()))
        .then_some(n * scale)
}

/// true/false; also the strings pydantic and env files use (`"true"`, `"False"`, `"1"`,
/// `"yes"`, `"off"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

pub fn parse_flag(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flag, E> {
                match v {
                    0 => Ok(Flag(false)),
                    1 => Ok(Flag(true)),
                    _ => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                parse_flag(v).map(Flag).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// `ssl_verify`: a boolean, or the path of a CA bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SslVerifyRaw {
    Flag(bool),
    CaBundle(String),
}

impl<'de> Deserialize<'de> for SslVerifyRaw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SslVerifyRaw;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or the path of a CA bundle")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<SslVerifyRaw, E> {
                Ok(SslVerifyRaw::Flag(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SslVerifyRaw, E> {
                // PyYAML reads `no`/`off` as booleans; here they arrive as strings.
                Ok(match parse_flag(v) {
                    Some(b) => SslVerifyRaw::Flag(b),
                    None => SslVerifyRaw::CaBundle(v.to_owned()),
                })
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------
// Structs. Field names are the file's keys; `keys::KNOWN_KEYS` must list each of them.

#[derive(Debug, Default, Deserialize)]
#[serde(
    expecting = "a mapping with model_list, router_settings, litellm_settings and general_settings"
)]
pub struct RawTop {
    pub model_list: Option<Entries>,
    pub router_settings: Option<Value>,
    pub litellm_settings: Option<Value>,
    pub general_settings: Option<Value>,
    /// Read from the YAML tree (it is needed before `os.environ/` is resolved); declared
    /// here so a wrong type is reported like any other.
    #[allow(dead_code)]
    pub environment_variables: Option<EnvVars>,
    pub model_max_budget: Option<BudgetMap>,
    pub provider_budget_config: Option<BudgetMap>,
    /// Merged before anything is read (`include`); declared here for its type check.
    #[allow(dead_code)]
    pub include: Option<TextList>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a model_list entry: a mapping with model_name and litellm_params")]
pub struct RawEntry {
    pub model_name: Option<Text>,
    pub litellm_params: Option<Value>,
    pub model_info: Option<ModelInfo>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    expecting = "a mapping of deployment settings (model: <provider>/<model-id>, api_key: ..., ...)"
)]
pub struct RawLitellmParams {
    pub model: Option<Text>,
    pub api_key: Option<Text>,
    pub api_base: Option<Text>,
    pub api_version: Option<Text>,
    pub custom_llm_provider: Option<Text>,
    pub aws_access_key_id: Option<Text>,
    pub aws_secret_access_key: Option<Text>,
    pub aws_session_token: Option<Text>,
    pub aws_region_name: Option<Text>,
    pub aws_session_name: Option<Text>,
    pub aws_profile_name: Option<Text>,
    pub aws_role_name: Option<Text>,
    pub aws_web_identity_token: Option<Text>,
    pub aws_sts_endpoint: Option<Text>,
    pub aws_external_id: Option<Text>,
    pub aws_bedrock_runtime_endpoint: Option<Text>,
    pub timeout: Option<Seconds>,
    pub stream_timeout: Option<Seconds>,
    pub max_retries: Option<Whole<u32>>,
    pub num_retries: Option<Whole<u32>>,
    pub rpm: Option<Whole<u64>>,
    pub tpm: Option<Whole<u64>>,
    pub weight: Option<NonNeg>,
    pub order: Option<Whole<u32>>,
    pub max_parallel_requests: Option<Whole<u32>>,
    pub cooldown_time: Option<Seconds>,
    pub drop_params: Option<Flag>,
    pub input_cost_per_token: Option<NonNeg>,
    pub output_cost_per_token: Option<NonNeg>,
    pub cache_read_input_token_cost: Option<NonNeg>,
    pub cache_creation_input_token_cost: Option<NonNeg>,
    pub max_budget: Option<NonNeg>,
    pub budget_duration: Option<Text>,
    pub mock_response: Option<Text>,
    pub tags: Option<TextList>,
    pub ssl_verify: Option<SslVerifyRaw>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a mapping of router settings (routing_strategy: ..., num_retries: ..., ...)")]
pub struct RawRouterSettings {
    pub routing_strategy: Option<Text>,
    pub num_retries: Option<Whole<u32>>,
    pub timeout: Option<Seconds>,
    pub retry_after: Option<Seconds>,
    pub retry_policy: Option<RawRetryPolicy>,
    pub allowed_fails: Option<Whole<u32>>,
    pub cooldown_time: Option<Seconds>,
    pub disable_cooldowns: Option<Flag>,
    pub fallbacks: Option<RawFallbacks>,
    pub context_window_fallbacks: Option<RawFallbacks>,
    pub content_policy_fallbacks: Option<RawFallbacks>,
    pub default_fallbacks: Option<TextList>,
    pub enable_pre_call_checks: Option<Flag>,
    pub provider_budget_config: Option<BudgetMap>,
    pub redis_host: Option<Text>,
    pub redis_port: Option<Text>,
    pub redis_password: Option<Text>,
    pub redis_url: Option<Text>,
    /// Read by `config/settings.rs::group_aliases` (a name → a group, or `{model, hidden}`).
    pub model_group_alias: Option<Value>,
    pub enable_tag_filtering: Option<Flag>,
    pub tag_filtering_match_any: Option<Flag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a mapping of error kinds to retry counts, e.g. {RateLimitErrorRetries: 3}")]
pub struct RawRetryPolicy {
    #[serde(rename = "BadRequestErrorRetries")]
    pub bad_request: Option<Whole<u32>>,
    #[serde(rename = "AuthenticationErrorRetries")]
    pub authentication: Option<Whole<u32>>,
    #[serde(rename = "TimeoutErrorRetries")]
    pub timeout: Option<Whole<u32>>,
    #[serde(rename = "RateLimitErrorRetries")]
    pub rate_limit: Option<Whole<u32>>,
    #[serde(rename = "ContentPolicyViolationErrorRetries")]
    pub content_policy: Option<Whole<u32>>,
    #[serde(rename = "InternalServerErrorRetries")]
    pub internal_server: Option<Whole<u32>>,
    #[serde(rename = "ServiceUnavailableErrorRetries")]
    pub service_unavailable: Option<Whole<u32>>,
    #[serde(rename = "NotFoundErrorRetries")]
    pub not_found: Option<Whole<u32>>,
    #[serde(rename = "DefaultRetries")]
    pub default: Option<Whole<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a mapping of litellm settings (drop_params: ..., num_retries: ..., ...)")]
pub struct RawLitellmSettings {
    pub drop_params: Option<Flag>,
    pub request_timeout: Option<Seconds>,
    pub num_retries: Option<Whole<u32>>,
    pub fallbacks: Option<RawFallbacks>,
    pub context_window_fallbacks: Option<RawFallbacks>,
    pub content_policy_fallbacks: Option<RawFallbacks>,
    pub default_fallbacks: Option<TextList>,
    pub max_budget: Option<NonNeg>,
    pub budget_duration: Option<Text>,
    pub max_end_user_budget: Option<NonNeg>,
    pub cache: Option<Flag>,
    /// Read by `config/response_cache.rs` (its own raw struct, so its keys stay there).
    pub cache_params: Option<serde_json::Value>,
    /// Only `otel` is read from these (any shape is accepted: the rest is a warning).
    pub callbacks: Option<Value>,
    pub success_callback: Option<Value>,
    pub enable_end_user_cost_tracking_prometheus_only: Option<Flag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a mapping of general settings (master_key: ..., ...)")]
pub struct RawGeneralSettings {
    pub master_key: Option<Text>,
    pub health_check_interval: Option<Seconds>,
    pub background_health_checks: Option<Flag>,
    pub max_request_body_size_mb: Option<NonNeg>,
    pub max_request_size_mb: Option<NonNeg>,
    pub database_url: Option<Text>,
    pub maximum_spend_logs_retention_period: Option<Text>,
    /// Text, not a flag: a value that is not true or false is a warning (LiteLLM's own
    /// settings reference writes `boolean` there), never a refusal to start.
    pub disable_spend_logs: Option<Text>,
    pub fail_closed: Option<Flag>,
    pub redis_key_prefix: Option<Text>,
    pub require_auth_for_metrics_endpoint: Option<Flag>,
    pub disable_metrics: Option<Flag>,
    pub disable_same_dialect_relay: Option<Flag>,
    pub enable_tag_filtering: Option<Flag>,
    pub batch_concurrency: Option<NonNeg>,
    pub max_connections: Option<NonNeg>,
    pub upstream_http2: Option<Flag>,
    pub header_read_timeout: Option<Seconds>,
    pub keepalive_timeout: Option<Seconds>,
    pub max_request_headers: Option<NonNeg>,
    pub max_request_header_size_kb: Option<NonNeg>,
    pub max_parallel_requests: Option<Whole<u64>>,
    pub global_max_parallel_requests: Option<Whole<u64>>,
    pub max_queue_wait_seconds: Option<Seconds>,
    pub max_queued_requests: Option<Whole<u64>>,
}

/// One fallback rule as written, with where it sits so CFG-05 can point at the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFallback {
    /// Index in the list form (`[{a: [b]}]`); None for the mapping form (`{a: [b]}`).
    pub index: Option<usize>,
    pub from: String,
    pub to: Vec<String>,
}

/// `fallbacks`: LiteLLM's list of one-key mappings, or (leniently) one mapping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawFallbacks(pub Vec<RawFallback>);

impl<'de> Deserialize<'de> for RawFallbacks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFallbacks;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(FALLBACKS)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawFallbacks, A::Error> {
                let mut out = Vec::new();
                let mut index = 0;
                while let Some(FallbackRule(rule)) = seq.next_element()? {
                    for (from, to) in rule {
                        out.push(RawFallback { index: Some(index), from, to });
                    }
                    index += 1;
                }
                Ok(RawFallbacks(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFallbacks, A::Error> {
                let mut out = Vec::new();
                while let Some((from, TextList(to))) = map.next_entry::<String, TextList>()? {
                    out.push(RawFallback { index: None, from, to });
                }
                Ok(RawFallbacks(out))
            }
        }
        d.deserialize_any(V)
    }
}

const FALLBACKS: &str = "a list like [{alias: [fallback-alias, ...]}]";

/// One item of a fallback list: `{alias: [fallback, ...]}` (or `{alias: fallback}`).
struct FallbackRule(Vec<(String, Vec<String>)>);

impl<'de> Deserialize<'de> for FallbackRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FallbackRule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping like {alias: [fallback-alias, ...]}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FallbackRule, A::Error> {
                let mut out = Vec::new();
                while let Some((from, TextList(to))) = map.next_entry::<String, TextList>()? {
                    out.push((from, to));
                }
                Ok(FallbackRule(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping whose values are kept as written, named for what it holds so a wrong type
/// reads as "expected a mapping of NAME: value", never as a Rust type.
macro_rules! mapping {
    ($(#[$doc:meta])* $name:ident, $expecting:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name(pub Map<String, Value>);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        let mut out = Map::new();
                        while let Some((k, v)) = map.next_entry::<String, Value>()? {
                            out.insert(k, v);
                        }
                        Ok($name(out))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

mapping!(
    /// `environment_variables`.
    EnvVars,
    "a mapping of NAME: value"
);
mapping!(
    /// `model_max_budget` and `provider_budget_config`: name → budget.
    BudgetMap,
    "a mapping of name: budget, e.g. {cheap: 300} or {cheap: {budget_limit: 300, time_period: 30d}}"
);
mapping!(
    /// `model_info`, free-form.
    ModelInfo,
    "a mapping (model_info is free-form: id, mode, base_model, ...)"
);

/// `model_list`: the entries as written (each is checked on its own).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entries(pub Vec<Value>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of deployments, each written `- model_name: <alias>`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    out.push(v);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a budget may be written as, for messages.
pub const BUDGET: &str =
    "a number of US dollars, or {budget_limit: USD, time_period: 1d} (also 7d, 30d, 1mo)";

/// One budget: LiteLLM's `BudgetConfig` (`budget_limit` or `max_budget`, `time_period` or
/// `budget_duration`, `tpm_limit`, `rpm_limit`), or a bare number of dollars — the older
/// per-model form, a limit with no reset period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawBudget {
    pub budget_limit: Option<NonNeg>,
    pub time_period: Option<Text>,
}

impl<'de> Deserialize<'de> for RawBudget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl V {
            fn limit<E: de::Error>(v: f64, unexp: Unexpected<'_>) -> Result<RawBudget, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(RawBudget { budget_limit: Some(NonNeg(v)), time_period: None })
                } else {
                    Err(E::invalid_value(unexp, &BUDGET))
                }
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = RawBudget;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(BUDGET)
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawBudget, E> {
                Self::limit(v as f64, Unexpected::Unsigned(v))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawBudget, E> {
                Self::limit(v as f64, Unexpected::Signed(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawBudget, E> {
                Self::limit(v, Unexpected::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawBudget, E> {
                match v.trim().parse::<f64>() {
                    Ok(n) => Self::limit(n, Unexpected::Str(v)),
                    Err(_) => Err(E::invalid_value(Unexpected::Str(v), &BUDGET)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawBudget, A::Error> {
                let mut out = RawBudget::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "budget_limit" | "max_budget" => out.budget_limit = map.next_value()?,
                        "time_period" | "budget_duration" => out.time_period = map.next_value()?,
                        "tpm_limit" | "rpm_limit" => {
                            map.next_value::<Option<Whole<u64>>>()?;
                        }
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------

/// A value that has the wrong type or is out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    pub path: KeyPath,
    pub message: String,
}

/// Deserializes `value` into `T`, collecting one error per bad key instead of stopping at
/// the first: after each error the offending key is dropped and the rest is tried again.
/// Every field of `T` is optional, so dropping a key always gets closer to success.
pub fn collect<T>(mut value: Value, base: &KeyPath, errors: &mut Vec<TypeError>) -> T
where
    T: for<'de> Deserialize<'de> + Default,
{
    // Each round removes one key, so the number of rounds is bounded by the keys present;
    // the cap only guards against a value that can never be fixed by removal.
    for _ in 0..256 {
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(t) => return t,
            Err(err) => {
                let rel = KeyPath::root().join_serde(err.path());
                errors.push(TypeError {
                    path: base_join(base, &rel),
                    message: plain_words(&err.inner().to_string()),
                });
                if !remove(&mut value, rel.segs()) {
                    return T::default();
                }
            }
        }
    }
    T::default()
}

/// serde's words for what it found, in the words of a YAML file: a list where a mapping
/// was expected is "invalid length 1" to serde (a struct can be read from a sequence).
fn plain_words(message: &str) -> String {
    let message = match message.strip_prefix("invalid length ") {
        Some(rest) => match rest.split_once(", expected ") {
            Some((_, expected)) => format!("invalid type: a list, expected {expected}"),
            None => message.to_owned(),
        },
        None => message.to_owned(),
    };
    message
        .replacen("invalid type: sequence,", "invalid type: a list,", 1)
        .replacen("invalid type: map,", "invalid type: a mapping,", 1)
        .replacen("invalid type: unit value,", "invalid type: nothing,", 1)
}

fn base_join(base: &KeyPath, rel: &KeyPath) -> KeyPath {
    let mut out = base.clone();
    for seg in rel.segs() {
        out.push(seg.clone());
    }
    out
}

/// Removes the value at `path`, going up to the nearest mapping key when the path ends
/// inside a list (removing a list item would shift the indices of later errors).
fn remove(value: &mut Value, path: &[Seg]) -> bool {
    let Some(cut) = path.iter().rposition(|s| matches!(s, Seg::Key(_))) else {
        return false;
    };
    let mut node = value;
    for seg in &path[..cut] {
        node = match (seg, node) {
            (Seg::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (Seg::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (&path[cut], node) {
        (Seg::Key(k), Value::Object(m)) => m.remove(k).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> (RawLitellmParams, Vec<TypeError>) {
        let mut errors = Vec::new();
        let base = KeyPath::root().key("model_list").index(0).key("litellm_params");
        let p = collect(v, &base, &mut errors);
        (p, errors)
    }

    #[test]
    fn durations_may_carry_a_unit() {
        let (p, errors) =
            params(json!({"timeout": "30s", "stream_timeout": "2m", "cooldown_time": "500ms"}));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(p.timeout, Some(Seconds(30.0)));
        assert_eq!(p.stream_timeout, Some(Seconds(120.0)));
        assert_eq!(p.cooldown_time, Some(Seconds(0.5)));
        let (_, errors) = params(json!({"timeout": "soon"}));
        assert_eq!(
            errors[0].message,
            "invalid value: string \"soon\", expected a number of seconds, 0 or more (e.g. 30 or 2.5)"
        );
        let (_, errors) = params(json!({"timeout": "-1s"}));
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn numbers_written_as_strings_are_numbers() {
        let (p, errors) =
            params(json!({"rpm": "100", "timeout": "2.5", "weight": 3, "drop_params": "True"}));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(p.rpm, Some(Whole(100)));
        assert_eq!(p.timeout, Some(Seconds(2.5)));
        assert_eq!(p.weight, Some(NonNeg(3.0)));
        assert_eq!(p.drop_params, Some(Flag(true)));
    }

    #[test]
    fn every_bad_key_is_reported_with_its_path_and_the_rest_still_loads() {
        let (p, errors) = params(json!({
            "model": "anthropic/claude-sonnet-4-5",
            "rpm": -5,
            "timeout": "soon",
            "tags": [1, {"x": 1}],
            "tpm": 10
        }));
        let paths: Vec<String> = errors.iter().map(|e| e.path.to_string()).collect();
        assert_eq!(paths.len(), 3, "{errors:?}");
        assert!(paths.contains(&"model_list[0].litellm_params.rpm".to_owned()));
        assert!(paths.contains(&"model_list[0].litellm_params.timeout".to_owned()));
        assert!(paths.contains(&"model_list[0].litellm_params.tags[1]".to_owned()));
        let rpm = errors.iter().find(|e| e.path.to_string().ends_with("rpm")).unwrap();
        assert!(rpm.message.contains("-5") && rpm.message.contains("0 or more"), "{}", rpm.message);
        assert_eq!(p.model, Some(Text("anthropic/claude-sonnet-4-5".into())));
        assert_eq!(p.tpm, Some(Whole(10)));
    }

    #[test]
    fn fallbacks_in_list_and_mapping_form() {
        let mut errors = Vec::new();
        let f: RawRouterSettings = collect(
            json!({"fallbacks": [{"free": ["cheap"]}, {"cheap": "balanced"}],
                   "context_window_fallbacks": {"cheap": ["frontier"]}}),
            &KeyPath::root(),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let fb = f.fallbacks.unwrap().0;
        assert_eq!(
            fb[1],
            RawFallback { index: Some(1), from: "cheap".into(), to: vec!["balanced".into()] }
        );
        let cw = f.context_window_fallbacks.unwrap().0;
        assert_eq!(
            cw[0],
            RawFallback { index: None, from: "cheap".into(), to: vec!["frontier".into()] }
        );
    }

    #[test]
    fn ssl_verify_is_a_flag_or_a_path() {
        let (p, _) = params(json!({"ssl_verify": "false"}));
        assert_eq!(p.ssl_verify, Some(SslVerifyRaw::Flag(false)));
        let (p, _) = params(json!({"ssl_verify": "off"}));
        assert_eq!(p.ssl_verify, Some(SslVerifyRaw::Flag(false)));
        let (p, _) = params(json!({"ssl_verify": "/etc/ca.pem"}));
        assert_eq!(p.ssl_verify, Some(SslVerifyRaw::CaBundle("/etc/ca.pem".into())));
    }
}
