//! One `model_list` entry → one [`Deployment`]: provider and model id, connection and
//! routing parameters, a stable id, and where its credentials will come from.
//!
//! Credentials named by convention (ANTHROPIC_API_KEY, AWS_PROFILE, ...) are looked up
//! here, through the config's environment, so env files count and providers never read
//! the process environment themselves.

use std::path::Path;

use serde_json::Value;

use super::model::{
    AwsParams, Costs, CredentialSource, Deployment, OpenAiFlavor, ProviderKind, SourcedSecret,
    SslVerify, Unservable, ValueSource,
};
use super::path::KeyPath;
use super::provider::{self, ModelRef};
use super::raw::{RawEntry, RawLitellmParams, SslVerifyRaw, Text, TextList, Whole};
use super::settings::secs;
use super::validate::Ctx;
use crate::secret::Secret;

pub fn build(ctx: &mut Ctx<'_>, value: Value, path: &KeyPath, index: usize) -> Option<Deployment> {
    if !value.is_object() {
        let found = ctx.root.find(path.segs()).map_or("something else", |n| n.type_name());
        ctx.problem(
            "CFG-09",
            path,
            format!("{path} must be a mapping with model_name and litellm_params; found {found}"),
            "write each entry as `- model_name: <alias>` followed by an indented litellm_params:"
                .to_owned(),
        );
        return None;
    }
    let entry: RawEntry = ctx.raw(Some(value), path);
    let alias = match entry.model_name {
        Some(Text(name)) if !name.trim().is_empty() => Some(name),
        _ => {
            if !ctx.failed(&path.key("model_name")) {
                ctx.problem(
                    "CFG-09",
                    path,
                    format!("{path} has no model_name"),
                    "add `model_name: <alias>` — the name clients send as `model`".to_owned(),
                );
            }
            None
        }
    };
    let lp_path = path.key("litellm_params");
    let Some(params_value) = entry.litellm_params.filter(|v| !v.is_null()) else {
        ctx.problem(
            "CFG-09",
            path,
            format!("{path} has no litellm_params"),
            "add litellm_params with at least `model: <provider>/<model-id>`, e.g. model: anthropic/claude-sonnet-4-5".to_owned(),
        );
        return None;
    };
    let p: RawLitellmParams = ctx.raw(Some(params_value), &lp_path);
    let mut unservable = ctx.unservable.get(&index).cloned();
    let model_ref = model_ref(ctx, &p, &lp_path, &mut unservable)?;
    let alias = alias?;
    let mock_response = p.mock_response.clone().map(|t| t.0);
    if mock_response.is_some() {
        // LiteLLM answers a mock_response without calling (or naming) any provider.
        unservable = None;
    }
    let mut cannot = CannotCall { mock: mock_response.is_some(), reason: unservable };
    let mut aws = aws_params(ctx, &p, &lp_path, &mut cannot);

    let api_base = p.api_base.map(|t| t.0);
    if let Some(base) = &api_base {
        // A deployment of a provider Switchyard does not speak sends nothing, so its
        // api_base cannot be wrong yet.
        if model_ref.provider != ProviderKind::Unsupported && !is_http_url(base) {
            cannot.warn(
                ctx,
                "CFG-09",
                &lp_path.key("api_base"),
                format!("api_base `{base}` is not an http(s) URL"),
                format!("write it with its scheme, e.g. http://{}", base.trim_start_matches('/')),
            );
        }
    }
    if model_ref.provider == ProviderKind::OpenAi(OpenAiFlavor::HostedVllm) && api_base.is_none() {
        cannot.warn(
            ctx,
            "CFG-09",
            &lp_path.key("model"),
            format!("the deployment of alias `{alias}` uses hosted_vllm/ but has no api_base"),
            "add api_base: http://<host>:8000/v1 (where the vLLM server listens)".to_owned(),
        );
    }

    let model_info = entry.model_info.map(|m| m.0).unwrap_or_default();
    let id = match model_info.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => derived_id(
            &alias,
            p.model.as_ref().map_or("", |t| t.0.as_str()),
            api_base.as_deref(),
            index,
        ),
    };

    let ssl_verify = ssl_verify(ctx, p.ssl_verify, &lp_path.key("ssl_verify"), &alias, &mut cannot);
    let unservable = cannot.reason;
    let mut api_key = p.api_key.map(|Text(v)| ctx.secret(&lp_path.key("api_key"), v));
    let credentials = if mock_response.is_some() {
        CredentialSource::Mock
    } else if unservable.is_some() {
        // Nothing is sent, so nothing is looked up (and no second warning is given).
        CredentialSource::NoneNeeded
    } else {
        credentials(
            ctx,
            model_ref.provider,
            &mut api_key,
            &mut aws,
            api_base.is_some(),
            &lp_path,
            &alias,
        )
    };

    let d = Deployment {
        id,
        alias,
        provider: model_ref.provider,
        model: model_ref.model,
        model_as_written: p.model.map(|t| t.0).unwrap_or_default(),
        api_key,
        api_base,
        api_version: p.api_version.map(|t| t.0),
        aws,
        timeout: secs(ctx, p.timeout, &lp_path.key("timeout"), true),
        stream_timeout: secs(ctx, p.stream_timeout, &lp_path.key("stream_timeout"), true),
        max_retries: p.max_retries.map(|Whole(n)| n),
        num_retries: p.num_retries.map(|Whole(n)| n),
        rpm: p.rpm.map(|Whole(n)| n),
        tpm: p.tpm.map(|Whole(n)| n),
        weight: p.weight.map(|w| w.0),
        order: p.order.map(|Whole(n)| n),
        max_parallel_requests: p.max_parallel_requests.map(|Whole(n)| n),
        cooldown_time: secs(ctx, p.cooldown_time, &lp_path.key("cooldown_time"), false),
        drop_params: p.drop_params.map(|f| f.0),
        costs: Costs {
            input_cost_per_token: p.input_cost_per_token.map(|c| c.0),
            output_cost_per_token: p.output_cost_per_token.map(|c| c.0),
            cache_read_input_token_cost: p.cache_read_input_token_cost.map(|c| c.0),
            cache_creation_input_token_cost: p.cache_creation_input_token_cost.map(|c| c.0),
        },
        max_budget: p.max_budget.map(|c| c.0),
        budget_duration: p.budget_duration.map(|t| t.0),
        mock_response,
        tags: p.tags.map(|TextList(t)| t).unwrap_or_default(),
        ssl_verify,
        credentials,
        model_info,
        unservable,
        location: ctx.loc(path),
    };
    if let Some(period) = &d.budget_duration
        && !super::settings::valid_period(period)
    {
        ctx.problem(
            "CFG-09",
            &lp_path.key("budget_duration"),
            format!("budget_duration `{period}` is not a period"),
            "write a number and a unit: 30s, 10m, 12h, 1d, 7d, 2w or 1mo".to_owned(),
        );
    }
    Some(d)
}

/// The provider and model id. A model Switchyard cannot serve (a provider or route not
/// implemented, a name whose provider cannot be inferred, even `azure/` with no id — a
/// config in LiteLLM's own tests has one) still loads, as in LiteLLM: a CFG-04 warning
/// now, and the same error as the answer to every request it gets.
fn model_ref(
    ctx: &mut Ctx<'_>,
    p: &RawLitellmParams,
    lp_path: &KeyPath,
    unservable: &mut Option<Unservable>,
) -> Option<ModelRef> {
    let model_path = lp_path.key("model");
    let Some(Text(model)) = &p.model else {
        if ctx.failed(&model_path) {
            // `model: os.environ/VAR` with VAR unset: already warned, and `unservable`.
            return Some(ModelRef { provider: ProviderKind::Unsupported, model: String::new() });
        }
        if ctx.type_error_at(&model_path) || ctx.type_error_at_exactly(lp_path) {
            return None; // reported as a type error, with what to write instead
        }
        let accepted = provider::ACCEPTED_PREFIXES.join(", ");
        ctx.problem(
            "CFG-04",
            lp_path,
            format!("{lp_path} has no model"),
            format!("add `model: <provider>/<model-id>`; accepted prefixes: {accepted}"),
        );
        return None;
    };
    let custom = p.custom_llm_provider.as_ref().map(|t| t.0.as_str());
    match provider::parse_model(model, custom) {
        Ok(r) => Some(r),
        Err(e) => {
            let (message, remedy) = e.explain(model);
            let at = if matches!(e, provider::ModelError::UnknownCustomProvider(_)) {
                lp_path.key("custom_llm_provider")
            } else {
                model_path
            };
            ctx.warn_value(
                "CFG-04",
                &at,
                format!(
                    "{message}: the deployment loads, and every request to it fails with this \
                     error. Fix: {remedy}"
                ),
            );
            // Before any unset variable: setting it would not make the deployment work.
            *unservable = Some(Unservable { id: "CFG-04", cause: message, remedy });
            Some(ModelRef { provider: ProviderKind::Unsupported, model: model.clone() })
        }
    }
}

fn is_http_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

/// A short id that stays the same across restarts for the same file: FNV-1a over what
/// identifies the entry (the index keeps two identical entries apart).
pub fn derived_id(alias: &str, model: &str, api_base: Option<&str>, index: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let index = index.to_string();
    for part in [alias, model, api_base.unwrap_or(""), index.as_str()] {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn ssl_verify(
    ctx: &mut Ctx<'_>,
    v: Option<SslVerifyRaw>,
    path: &KeyPath,
    alias: &str,
    cannot: &mut CannotCall,
) -> SslVerify {
    match v {
        None | Some(SslVerifyRaw::Flag(true)) => SslVerify::System,
        Some(SslVerifyRaw::Flag(false)) => {
            ctx.warn(
                "NET-02",
                path,
                format!("TLS certificate verification is disabled for a deployment of alias `{alias}`: traffic to it can be intercepted; prefer ssl_verify: /path/to/ca.pem"),
            );
            SslVerify::Disabled
        }
        Some(SslVerifyRaw::CaBundle(p)) => {
            if !Path::new(&p).is_file() {
                cannot.warn(
                    ctx,
                    "CFG-08",
                    path,
                    format!("ssl_verify names the CA bundle `{p}`, which does not exist"),
                    "give the path of a PEM file with the CA certificates, or true for the system roots".to_owned(),
                );
            }
            SslVerify::CaBundle(p.into())
        }
    }
}

fn aws_params(
    ctx: &mut Ctx<'_>,
    p: &RawLitellmParams,
    lp: &KeyPath,
    cannot: &mut CannotCall,
) -> AwsParams {
    let secret = |ctx: &Ctx<'_>, key: &str, v: &Option<Text>| {
        v.as_ref().map(|Text(s)| ctx.secret(&lp.key(key), s.clone()))
    };
    let text = |v: &Option<Text>| v.as_ref().map(|t| t.0.clone());
    let aws = AwsParams {
        access_key_id: secret(ctx, "aws_access_key_id", &p.aws_access_key_id),
        secret_access_key: secret(ctx, "aws_secret_access_key", &p.aws_secret_access_key),
        session_token: secret(ctx, "aws_session_token", &p.aws_session_token),
        region_name: text(&p.aws_region_name),
        region_source: p.aws_region_name.as_ref().map(|_| ctx.source(&lp.key("aws_region_name"))),
        profile_name: text(&p.aws_profile_name),
        role_name: text(&p.aws_role_name),
        session_name: text(&p.aws_session_name),
        external_id: text(&p.aws_external_id),
        web_identity_token: secret(ctx, "aws_web_identity_token", &p.aws_web_identity_token),
        sts_endpoint: text(&p.aws_sts_endpoint),
        bedrock_runtime_endpoint: text(&p.aws_bedrock_runtime_endpoint),
    };
    // A half read from an unset variable is already reported as that.
    let unset = |k: &str| ctx.failed(&lp.key(k));
    let halves = (
        aws.access_key_id.is_some() || unset("aws_access_key_id"),
        aws.secret_access_key.is_some() || unset("aws_secret_access_key"),
    );
    match halves {
        (true, false) => cannot.warn(
            ctx,
            "CFG-09",
            &lp.key("aws_access_key_id"),
            "aws_access_key_id is set but aws_secret_access_key is not".to_owned(),
            "add aws_secret_access_key (e.g. os.environ/AWS_SECRET_ACCESS_KEY), or better, remove both and name a profile with aws_profile_name".to_owned(),
        ),
        (false, true) => cannot.warn(
            ctx,
            "CFG-09",
            &lp.key("aws_secret_access_key"),
            "aws_secret_access_key is set but aws_access_key_id is not".to_owned(),
            "add aws_access_key_id, or remove both and name a profile with aws_profile_name".to_owned(),
        ),
        _ => {}
    }
    aws
}

/// What stops requests to one deployment from being sent. LiteLLM starts with such a
/// deployment and fails its requests, so it loads here too: each reason is a warning at
/// its place, and the first is the configuration error every request to it answers with.
struct CannotCall {
    /// A `mock_response` deployment calls nothing, so nothing can stop it.
    mock: bool,
    reason: Option<Unservable>,
}

impl CannotCall {
    fn warn(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: &'static str,
        path: &KeyPath,
        message: String,
        remedy: String,
    ) {
        if self.mock {
            return;
        }
        ctx.warn_value(
            id,
            path,
            format!(
                "{message}: the deployment loads, and every request to it fails with this \
                 error. Fix: {remedy}"
            ),
        );
        self.reason.get_or_insert(Unservable { id, cause: message, remedy });
    }
}

/// A conventional variable from the config's environment, if set to something.
fn conventional(
    ctx: &mut Ctx<'_>,
    var: &'static str,
    path: &KeyPath,
    alias: &str,
) -> Option<(String, ValueSource)> {
    let v = ctx.env.get(var)?;
    if v.value.trim().is_empty() {
        ctx.warn("CFG-02", path, format!("{var} is set but empty (set in {}), so the deployment of alias `{alias}` cannot use it", v.origin));
        return None;
    }
    Some((v.value, ValueSource::Env { var: var.to_owned(), origin: v.origin }))
}

fn missing(
    ctx: &mut Ctx<'_>,
    path: &KeyPath,
    alias: &str,
    looked_for: Vec<&'static str>,
) -> CredentialSource {
    ctx.warn(
        "CFG-01",
        path,
        format!(
            "the deployment of alias `{alias}` has no credentials: none of {} is set; requests to it will fail",
            looked_for.join(", ")
        ),
    );
    CredentialSource::Missing { looked_for }
}

fn credentials(
    ctx: &mut Ctx<'_>,
    provider: ProviderKind,
    api_key: &mut Option<SourcedSecret>,
    aws: &mut AwsParams,
    has_api_base: bool,
    lp: &KeyPath,
    alias: &str,
) -> CredentialSource {
    let key_path = lp.key("api_key");
    let conventional_key =
        |ctx: &mut Ctx<'_>, api_key: &mut Option<SourcedSecret>, var: &'static str| {
            let (value, source) = conventional(ctx, var, &key_path, alias)?;
            *api_key = Some(SourcedSecret { value: Secret::new(value), source: source.clone() });
            Some(CredentialSource::ApiKey(source))
        };
    match provider {
        _ if api_key.is_some() && !matches!(provider, ProviderKind::Bedrock(_)) => {
            CredentialSource::ApiKey(
                api_key
                    .as_ref()
                    .map_or(ValueSource::Literal(ctx.loc(&key_path)), |k| k.source.clone()),
            )
        }
        ProviderKind::Anthropic => conventional_key(ctx, api_key, "ANTHROPIC_API_KEY")
            .unwrap_or_else(|| {
                missing(ctx, &key_path, alias, vec!["api_key", "ANTHROPIC_API_KEY"])
            }),
        ProviderKind::OpenAi(OpenAiFlavor::OpenAi) => {
            match conventional_key(ctx, api_key, "OPENAI_API_KEY") {
                Some(c) => c,
                // A compatible server at its own api_base often needs no key at all.
                None if has_api_base => CredentialSource::NoneNeeded,
                None => missing(ctx, &key_path, alias, vec!["api_key", "OPENAI_API_KEY"]),
            }
        }
        ProviderKind::OpenAi(_) | ProviderKind::Unsupported => CredentialSource::NoneNeeded,
        ProviderKind::Bedrock(_) => bedrock_credentials(ctx, api_key, aws, lp, alias),
    }
}

/// Explicit config first (api_key as a Bedrock API key, static keys, a profile), then the
/// environment in the order the AWS SDK consults it: a Bedrock API key, static keys,
/// AWS_PROFILE; else the default chain.
fn bedrock_credentials(
    ctx: &mut Ctx<'_>,
    api_key: &mut Option<SourcedSecret>,
    aws: &mut AwsParams,
    lp: &KeyPath,
    alias: &str,
) -> CredentialSource {
    if aws.region_name.is_none() {
        for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            if let Some((region, source)) =
                conventional(ctx, var, &lp.key("aws_region_name"), alias)
            {
                aws.region_name = Some(region);
                aws.region_source = Some(source);
                break;
            }
        }
    }
    if let Some(k) = api_key {
        return CredentialSource::BedrockApiKey(k.source.clone());
    }
    if let Some(k) = &aws.access_key_id {
        return CredentialSource::AwsKeys(k.source.clone());
    }
    if let Some(name) = &aws.profile_name {
        return CredentialSource::AwsProfile {
            name: name.clone(),
            source: ctx.source(&lp.key("aws_profile_name")),
        };
    }
    let key_path = lp.key("api_key");
    if let Some((value, source)) = conventional(ctx, "AWS_BEARER_TOKEN_BEDROCK", &key_path, alias) {
        *api_key = Some(SourcedSecret { value: Secret::new(value), source: source.clone() });
        return CredentialSource::BedrockApiKey(source);
    }
    let keys_path = lp.key("aws_access_key_id");
    if let Some((id, source)) = conventional(ctx, "AWS_ACCESS_KEY_ID", &keys_path, alias) {
        aws.access_key_id = Some(SourcedSecret { value: Secret::new(id), source: source.clone() });
        match conventional(ctx, "AWS_SECRET_ACCESS_KEY", &keys_path, alias) {
            Some((s, src)) => aws.secret_access_key = Some(SourcedSecret { value: Secret::new(s), source: src }),
            None => ctx.warn(
                "CFG-01",
                &keys_path,
                format!("AWS_ACCESS_KEY_ID is set ({}) but AWS_SECRET_ACCESS_KEY is not; the deployment of alias `{alias}` cannot sign requests", source_origin(&source)),
            ),
        }
        if let Some((t, src)) = conventional(ctx, "AWS_SESSION_TOKEN", &keys_path, alias) {
            aws.session_token = Some(SourcedSecret { value: Secret::new(t), source: src });
        }
        return CredentialSource::AwsKeys(source);
    }
    if let Some((name, source)) =
        conventional(ctx, "AWS_PROFILE", &lp.key("aws_profile_name"), alias)
    {
        aws.profile_name = Some(name.clone());
        return CredentialSource::AwsProfile { name, source };
    }
    CredentialSource::AwsDefaultChain
}

fn source_origin(source: &ValueSource) -> String {
    match source {
        ValueSource::Env { origin, .. } | ValueSource::ConfigEnvRef { origin, .. } => {
            format!("in {origin}")
        }
        ValueSource::Literal(at) => format!("in {at}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derived_id("cheap", "anthropic/claude-x", None, 0);
        assert_eq!(a, derived_id("cheap", "anthropic/claude-x", None, 0));
        assert_eq!(a.len(), 16);
        assert_ne!(a, derived_id("cheap", "anthropic/claude-x", None, 1));
        assert_ne!(a, derived_id("cheap", "anthropic/claude-x", Some("http://x"), 0));
        // Pinned: changing the derivation changes every derived id users may have recorded
        // (in `/model/info`, dashboards, fallback targets).
        assert_eq!(derived_id("cheap", "anthropic/claude-x", None, 0), "39ce7ba093be9176");
    }

    #[test]
    fn api_base_must_be_an_http_url() {
        assert!(is_http_url("http://localhost:11434"));
        assert!(is_http_url("https://api.example.com/v1"));
        assert!(!is_http_url("localhost:11434"));
        assert!(!is_http_url("http://"));
        assert!(!is_http_url("ftp://x"));
    }
}
