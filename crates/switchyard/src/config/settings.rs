//! `router_settings`, `litellm_settings`, `general_settings` and the budget maps, from
//! their raw form to the runtime settings. LiteLLM accepts the retry and fallback keys in
//! both `router_settings` and `litellm_settings`; here `router_settings` wins when both
//! are written, and a warning says so.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::model::{
    BudgetLimit, Budgets, FallbackMap, GeneralSettings, GroupAlias, OtelConfig, RedisConfig,
    RetryPolicy, RouterSettings, RoutingStrategy, Sampler, SourcedSecret, ValueSource,
};
use super::path::KeyPath;
use super::raw::{
    BUDGET, BudgetMap, RawBudget, RawFallbacks, RawGeneralSettings, RawLitellmSettings,
    RawRetryPolicy, RawRouterSettings, Seconds, Text, Whole, parse_flag,
};
use super::validate::Ctx;
use crate::secret::Secret;

pub struct Parts {
    pub router: RouterSettings,
    pub general: GeneralSettings,
    /// Every fallback list as written, for the alias check (CFG-05).
    pub fallback_sources: Vec<(KeyPath, RawFallbacks)>,
    pub default_fallbacks_source: Option<(KeyPath, Vec<String>)>,
    pub router_budgets: Option<BudgetMap>,
    pub global_budget: Option<BudgetLimit>,
    pub max_end_user_budget: Option<f64>,
}

const STRATEGIES: &str = "simple-shuffle, least-busy, usage-based-routing, usage-based-routing-v2, latency-based-routing, cost-based-routing";

/// A duration in seconds; `positive` rejects 0 where 0 would mean "fail at once".
pub fn secs(
    ctx: &mut Ctx<'_>,
    v: Option<Seconds>,
    path: &KeyPath,
    positive: bool,
) -> Option<Duration> {
    let Seconds(s) = v?;
    if positive && s == 0.0 {
        ctx.problem(
            "CFG-09",
            path,
            format!("{path} is 0 seconds"),
            "write a number of seconds greater than 0, or remove the key for the default"
                .to_owned(),
        );
        return None;
    }
    match Duration::try_from_secs_f64(s) {
        Ok(d) => Some(d),
        Err(_) => {
            ctx.problem(
                "CFG-09",
                path,
                format!("{path} = {s} seconds is out of range"),
                "write a number of seconds, e.g. 600".to_owned(),
            );
            None
        }
    }
}

fn whole<T>(v: Option<Whole<T>>) -> Option<T> {
    v.map(|Whole(n)| n)
}

pub fn build(
    ctx: &mut Ctx<'_>,
    router: Option<Value>,
    litellm: Option<Value>,
    general: Option<Value>,
) -> Parts {
    let rp = KeyPath::root().key("router_settings");
    let lp = KeyPath::root().key("litellm_settings");
    let gp = KeyPath::root().key("general_settings");
    let r: RawRouterSettings = ctx.raw(router, &rp);
    let l: RawLitellmSettings = ctx.raw(litellm, &lp);
    let g: RawGeneralSettings = ctx.raw(general, &gp);
    let redis = redis_settings(ctx, &r, &g);
    let fail_closed = g.fail_closed.as_ref().is_some_and(|f| f.0);
    // LiteLLM reads it from either section; on in either is on.
    let enable_tag_filtering = [&r.enable_tag_filtering, &g.enable_tag_filtering]
        .into_iter()
        .any(|f| f.as_ref().is_some_and(|f| f.0));
    let mut general = general_settings(ctx, g, &l, &gp, &lp);
    general.redis = redis;
    general.fail_closed = fail_closed;
    general.cache = super::response_cache::build(ctx, &l);
    general.otel = otel_settings(ctx, &l, &lp);
    let global_budget = l.max_budget.map(|limit| {
        let time_period = l.budget_duration.as_ref().map(|Text(t)| t.clone());
        check_period(ctx, time_period.as_deref(), &lp.key("budget_duration"));
        BudgetLimit { budget_limit: limit.0, time_period, location: ctx.loc(&lp.key("max_budget")) }
    });
    let max_end_user_budget = l.max_end_user_budget.map(|b| b.0);

    let mut out = RouterSettings::default();
    if let Some(Text(s)) = &r.routing_strategy {
        match s.trim() {
            "simple-shuffle" => out.routing_strategy = RoutingStrategy::SimpleShuffle,
            "least-busy" => out.routing_strategy = RoutingStrategy::LeastBusy,
            "usage-based-routing" | "usage-based-routing-v2" => {
                out.routing_strategy = RoutingStrategy::UsageBased
            }
            "latency-based-routing" => out.routing_strategy = RoutingStrategy::LatencyBased,
            "cost-based-routing" => out.routing_strategy = RoutingStrategy::CostBased,
            "provider-budget-routing" => ctx.warn(
                "CFG-06",
                &rp.key("routing_strategy"),
                "provider-budget-routing is not implemented yet; simple-shuffle is used".to_owned(),
            ),
            other => ctx.problem(
                "CFG-09",
                &rp.key("routing_strategy"),
                format!("unknown routing_strategy `{other}`"),
                format!("use one of: {STRATEGIES}"),
            ),
        }
    }
    let both = |ctx: &mut Ctx<'_>, key: &str, in_router: bool, in_litellm: bool| {
        if in_router && in_litellm {
            ctx.warn(
                "CFG-06",
                &lp.key(key),
                format!("ignored: router_settings.{key} is also set and wins"),
            );
        }
    };
    both(ctx, "num_retries", r.num_retries.is_some(), l.num_retries.is_some());
    both(ctx, "fallbacks", r.fallbacks.is_some(), l.fallbacks.is_some());
    both(
        ctx,
        "context_window_fallbacks",
        r.context_window_fallbacks.is_some(),
        l.context_window_fallbacks.is_some(),
    );
    both(
        ctx,
        "content_policy_fallbacks",
        r.content_policy_fallbacks.is_some(),
        l.content_policy_fallbacks.is_some(),
    );
    both(ctx, "default_fallbacks", r.default_fallbacks.is_some(), l.default_fallbacks.is_some());

    if let Some(n) = whole(r.num_retries).or(whole(l.num_retries)) {
        out.num_retries = n;
    }
    out.timeout = secs(ctx, r.timeout, &rp.key("timeout"), true);
    if let Some(d) = secs(ctx, r.retry_after, &rp.key("retry_after"), false) {
        out.retry_after = d;
    }
    out.retry_policy = retry_policy(r.retry_policy.unwrap_or_default());
    if let Some(n) = whole(r.allowed_fails) {
        out.allowed_fails = n;
    }
    if let Some(d) = secs(ctx, r.cooldown_time, &rp.key("cooldown_time"), false) {
        out.cooldown_time = d;
    }
    out.disable_cooldowns = r.disable_cooldowns.is_some_and(|f| f.0);
    out.enable_pre_call_checks = r.enable_pre_call_checks.is_some_and(|f| f.0);
    out.enable_tag_filtering = enable_tag_filtering;
    out.tag_filtering_match_any = r.tag_filtering_match_any.is_none_or(|f| f.0);
    out.model_group_alias =
        group_aliases(ctx, r.model_group_alias.as_ref(), &rp.key("model_group_alias"));

    let mut fallback_sources = Vec::new();
    let pairs = [
        ("fallbacks", r.fallbacks, l.fallbacks),
        ("context_window_fallbacks", r.context_window_fallbacks, l.context_window_fallbacks),
        ("content_policy_fallbacks", r.content_policy_fallbacks, l.content_policy_fallbacks),
    ];
    for (key, from_router, from_litellm) in pairs {
        let chosen = match (&from_router, &from_litellm) {
            (Some(f), _) | (None, Some(f)) => fallback_map(f),
            (None, None) => FallbackMap::new(),
        };
        match key {
            "fallbacks" => out.fallbacks = chosen,
            "context_window_fallbacks" => out.context_window_fallbacks = chosen,
            _ => out.content_policy_fallbacks = chosen,
        }
        // Both are checked: a misspelt alias is worth reporting even where it is overridden.
        if let Some(f) = from_router {
            fallback_sources.push((rp.key(key), f));
        }
        if let Some(f) = from_litellm {
            fallback_sources.push((lp.key(key), f));
        }
    }
    let default_fallbacks_source = match (r.default_fallbacks, l.default_fallbacks) {
        (Some(f), _) => Some((rp.key("default_fallbacks"), f.0)),
        (None, Some(f)) => Some((lp.key("default_fallbacks"), f.0)),
        (None, None) => None,
    };
    out.default_fallbacks =
        default_fallbacks_source.as_ref().map(|(_, f)| f.clone()).unwrap_or_default();

    Parts {
        router: out,
        general,
        fallback_sources,
        default_fallbacks_source,
        router_budgets: r.provider_budget_config,
        global_budget,
        max_end_user_budget,
    }
}

fn check_period(ctx: &mut Ctx<'_>, t: Option<&str>, path: &KeyPath) {
    if let Some(t) = t
        && !valid_period(t)
    {
        ctx.problem(
            "CFG-09",
            path,
            format!("budget_duration `{t}` is not a period"),
            "write a number and a unit (30s, 30m, 24h, 7d, 1mo) or daily, weekly, monthly"
                .to_owned(),
        );
    }
}

/// Redis as LiteLLM finds it: `router_settings.redis_url`, else `redis_host`/`redis_port`/
/// `redis_password`, else REDIS_URL, else REDIS_HOST/REDIS_PORT/REDIS_PASSWORD.
fn redis_settings(
    ctx: &mut Ctx<'_>,
    r: &RawRouterSettings,
    g: &RawGeneralSettings,
) -> Option<RedisConfig> {
    let env = |ctx: &mut Ctx<'_>, var: &str| {
        ctx.env.get(var).map(|v| v.value.trim().to_owned()).filter(|v| !v.is_empty())
    };
    let text =
        |t: &Option<Text>| t.as_ref().map(|Text(s)| s.trim().to_owned()).filter(|s| !s.is_empty());
    let url = match text(&r.redis_url) {
        Some(url) => Some(url),
        None if text(&r.redis_host).is_some() => None,
        None => env(ctx, "REDIS_URL"),
    };
    let url = match url {
        Some(url) => url,
        None => {
            let host = text(&r.redis_host).or_else(|| env(ctx, "REDIS_HOST"))?;
            let port = text(&r.redis_port)
                .or_else(|| env(ctx, "REDIS_PORT"))
                .unwrap_or_else(|| "6379".to_owned());
            if port.parse::<u16>().is_err() {
                ctx.warn(
                    "CFG-06",
                    &KeyPath::root().key("router_settings").key("redis_port"),
                    format!(
                        "redis_port `{port}` is not a port number; Redis is not used and budgets \
                         and rate limits are counted in this process"
                    ),
                );
                return None;
            }
            let password = text(&r.redis_password).or_else(|| env(ctx, "REDIS_PASSWORD"));
            match password {
                Some(pw) => {
                    let pw = percent_encoding::utf8_percent_encode(
                        &pw,
                        percent_encoding::NON_ALPHANUMERIC,
                    );
                    format!("redis://:{pw}@{host}:{port}")
                }
                None => format!("redis://{host}:{port}"),
            }
        }
    };
    let place = place_of(&url);
    let prefix = text(&g.redis_key_prefix).unwrap_or_else(|| "switchyard:".to_owned());
    Some(RedisConfig {
        url: Secret::new(url),
        place,
        prefix,
        fail_closed: g.fail_closed.as_ref().is_some_and(|f| f.0),
    })
}

/// The callback names of `callbacks` / `success_callback`: one string or a list of them.
pub fn callback_names(value: &Value) -> impl Iterator<Item = &str> {
    let list: &[Value] = match value {
        Value::Array(items) => items,
        one => std::slice::from_ref(one),
    };
    list.iter().filter_map(Value::as_str).map(str::trim)
}

/// OpenTelemetry traces when `otel` is among the callbacks, configured by the standard
/// OTEL_* variables.
fn otel_settings(ctx: &mut Ctx<'_>, l: &RawLitellmSettings, lp: &KeyPath) -> Option<OtelConfig> {
    let on = [&l.callbacks, &l.success_callback]
        .into_iter()
        .flatten()
        .any(|v| callback_names(v).any(|n| n == "otel"));
    let env = |ctx: &mut Ctx<'_>, var: &str| {
        ctx.env.get(var).map(|v| v.value.trim().to_owned()).filter(|v| !v.is_empty())
    };
    // The specification's switch for every signal.
    let disabled = env(ctx, "OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !on || disabled {
        return None;
    }
    let traces_url = match env(ctx, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        Some(url) => url,
        None => {
            let base = env(ctx, "OTEL_EXPORTER_OTLP_ENDPOINT")
                .unwrap_or_else(|| "http://localhost:4318".to_owned());
            let base = base.trim_end_matches('/');
            // LiteLLM passes this variable to its exporter as written, so its users often
            // write the whole traces URL here: it is kept, not doubled.
            if base.ends_with("/v1/traces") { base.to_owned() } else { format!("{base}/v1/traces") }
        }
    };
    let headers = env(ctx, "OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        .or_else(|| env(ctx, "OTEL_EXPORTER_OTLP_HEADERS"))
        .map(|text| otel_headers(&text))
        .unwrap_or_default();
    let service_name = env(ctx, "OTEL_SERVICE_NAME").unwrap_or_else(|| "switchyard".to_owned());
    let path = lp.key(if l.callbacks.is_some() { "callbacks" } else { "success_callback" });
    let number = |ctx: &mut Ctx<'_>, vars: &[&str], default: u64| {
        for var in vars {
            if let Some(text) = env(ctx, var) {
                match text.parse::<u64>() {
                    Ok(n) if n > 0 => return n,
                    _ => ctx.warn(
                        "CFG-06",
                        &path,
                        format!(
                            "{var} = `{text}` is not a positive whole number; {default} is used"
                        ),
                    ),
                }
            }
        }
        default
    };
    let queue_size = number(ctx, &["OTEL_BSP_MAX_QUEUE_SIZE"], 2048);
    let max_batch = number(ctx, &["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"], 512);
    let delay = number(ctx, &["OTEL_BSP_SCHEDULE_DELAY"], 1000);
    let timeout =
        number(ctx, &["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"], 10_000);
    let (name, arg) = (env(ctx, "OTEL_TRACES_SAMPLER"), env(ctx, "OTEL_TRACES_SAMPLER_ARG"));
    let sampler = sampler(ctx, &path, name, arg);
    Some(OtelConfig {
        traces_url,
        headers,
        service_name,
        queue_size: usize::try_from(queue_size).unwrap_or(usize::MAX),
        max_batch: usize::try_from(max_batch).unwrap_or(usize::MAX),
        batch_delay: Duration::from_millis(delay),
        export_timeout: Duration::from_millis(timeout),
        sampler,
    })
}

/// OTEL_TRACES_SAMPLER as the specification names them; anything else (a sampler from a
/// vendor's SDK) traces every request, with a warning.
fn sampler(
    ctx: &mut Ctx<'_>,
    path: &KeyPath,
    name: Option<String>,
    arg: Option<String>,
) -> Sampler {
    let Some(name) = name else { return Sampler::default() };
    let mut ratio = || match arg.as_deref().map(str::parse::<f64>) {
        None => 1.0,
        Some(Ok(r)) if (0.0..=1.0).contains(&r) => r,
        Some(_) => {
            ctx.warn(
                "CFG-06",
                path,
                format!(
                    "OTEL_TRACES_SAMPLER_ARG = `{}` is not a ratio between 0 and 1; 1 is used",
                    arg.as_deref().unwrap_or_default()
                ),
            );
            1.0
        }
    };
    match name.as_str() {
        "always_on" => Sampler { ratio: 1.0, parent_based: false },
        "always_off" => Sampler { ratio: 0.0, parent_based: false },
        "traceidratio" => Sampler { ratio: ratio(), parent_based: false },
        "parentbased_always_on" => Sampler { ratio: 1.0, parent_based: true },
        "parentbased_always_off" => Sampler { ratio: 0.0, parent_based: true },
        "parentbased_traceidratio" => Sampler { ratio: ratio(), parent_based: true },
        other => {
            ctx.warn(
                "CFG-06",
                path,
                format!(
                    "OTEL_TRACES_SAMPLER = `{other}` is not implemented; every request is traced"
                ),
            );
            Sampler::default()
        }
    }
}

/// `k=v,k2=v2` with percent-encoded values, as the OTLP exporter specification writes them.
fn otel_headers(text: &str) -> Vec<(String, Secret)> {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            if k.is_empty() {
                return None;
            }
            let v = percent_encoding::percent_decode_str(v.trim()).decode_utf8_lossy();
            Some((k.to_ascii_lowercase(), Secret::new(v.into_owned())))
        })
        .collect()
}

/// `host:port` of a Redis URL, without scheme, credentials or database.
pub fn place_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// `model_group_alias`, in LiteLLM's two forms: `{name: group}` and
/// `{name: {model: group, hidden: true}}`. Whether each group exists is checked with the
/// model list (`validate.rs`).
fn group_aliases(
    ctx: &mut Ctx<'_>,
    value: Option<&Value>,
    path: &KeyPath,
) -> BTreeMap<String, GroupAlias> {
    let mut out = BTreeMap::new();
    let Some(value) = value.filter(|v| !v.is_null()) else { return out };
    let Some(map) = value.as_object() else {
        ctx.problem(
            "CFG-09",
            path,
            format!("{path} is not a mapping"),
            "write a mapping of names to model groups, e.g. {\"claude-sonnet-4-6\": \"balanced\"}"
                .to_owned(),
        );
        return out;
    };
    for (name, entry) in map {
        let at = path.key(name.clone());
        let alias = match entry {
            Value::String(model) if !model.trim().is_empty() => {
                GroupAlias { model: model.trim().to_owned(), hidden: false }
            }
            Value::Object(o) => {
                let model = o.get("model").and_then(Value::as_str).map(str::trim);
                let hidden = match o.get("hidden") {
                    None | Some(Value::Null) => Some(false),
                    Some(Value::Bool(b)) => Some(*b),
                    Some(Value::String(s)) => parse_flag(s),
                    Some(_) => None,
                };
                match (model.filter(|m| !m.is_empty()), hidden) {
                    (Some(model), Some(hidden)) => GroupAlias { model: model.to_owned(), hidden },
                    (None, _) => {
                        ctx.problem(
                            "CFG-09",
                            &at,
                            format!("{at} names no `model`"),
                            format!("write {{model: <model group>, hidden: true}} under `{name}`"),
                        );
                        continue;
                    }
                    (Some(_), None) => {
                        ctx.problem(
                            "CFG-09",
                            &at.key("hidden"),
                            format!("{at}.hidden is not true or false"),
                            "write hidden: true or hidden: false".to_owned(),
                        );
                        continue;
                    }
                }
            }
            _ => {
                ctx.problem(
                    "CFG-09",
                    &at,
                    format!("{at} is neither a model group name nor {{model, hidden}}"),
                    format!(
                        "write `{name}: <model group>`, or {{model: <model group>, hidden: true}}"
                    ),
                );
                continue;
            }
        };
        out.insert(name.clone(), alias);
    }
    out
}

fn fallback_map(f: &RawFallbacks) -> FallbackMap {
    let mut map = FallbackMap::new();
    for rule in &f.0 {
        let targets: &mut Vec<String> = map.entry(rule.from.clone()).or_default();
        for t in &rule.to {
            if !targets.contains(t) {
                targets.push(t.clone());
            }
        }
    }
    map
}

fn retry_policy(p: RawRetryPolicy) -> RetryPolicy {
    RetryPolicy {
        bad_request: whole(p.bad_request),
        authentication: whole(p.authentication),
        timeout: whole(p.timeout),
        rate_limit: whole(p.rate_limit),
        content_policy: whole(p.content_policy),
        internal_server: whole(p.internal_server),
        service_unavailable: whole(p.service_unavailable),
        not_found: whole(p.not_found),
        default: whole(p.default),
    }
}

fn general_settings(
    ctx: &mut Ctx<'_>,
    g: RawGeneralSettings,
    l: &RawLitellmSettings,
    gp: &KeyPath,
    lp: &KeyPath,
) -> GeneralSettings {
    let mut listener = super::model::ListenerLimits::default();
    listener_limits(ctx, &g, gp, &mut listener);
    let mut out = GeneralSettings {
        master_key: master_key(ctx, g.master_key, &gp.key("master_key")),
        database_url: database_url(ctx, g.database_url, &gp.key("database_url")),
        ..GeneralSettings::default()
    };
    if let Some(Text(t)) = g.maximum_spend_logs_retention_period {
        let path = gp.key("maximum_spend_logs_retention_period");
        match crate::ledger::parse_period(&t) {
            Some(d) => out.spend_logs_retention = Some(d),
            None => ctx.problem(
                "CFG-09",
                &path,
                format!("maximum_spend_logs_retention_period `{t}` is not a period"),
                "write a number and a unit: 12h, 30d, 2w or 1mo".to_owned(),
            ),
        }
    }

    let size_key = if g.max_request_body_size_mb.is_some() {
        "max_request_body_size_mb"
    } else {
        "max_request_size_mb"
    };
    if let Some(mb) = g.max_request_body_size_mb.or(g.max_request_size_mb) {
        let bytes = mb.0 * 1024.0 * 1024.0;
        if mb.0 < 1.0 / 1024.0 || bytes >= 1e15 {
            ctx.problem(
                "CFG-09",
                &gp.key(size_key),
                format!("{size_key} = {} is not a usable request size limit", mb.0),
                "write a size in MiB such as 32 (the default)".to_owned(),
            );
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let bytes = bytes.round() as usize;
            out.max_request_body_bytes = bytes;
        }
    }
    if let Some(n) = g.batch_concurrency {
        if n.0 >= 1.0 && n.0 <= 1024.0 && n.0.fract() == 0.0 {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = n.0 as usize;
            out.batch_concurrency = n;
        } else {
            ctx.problem(
                "CFG-09",
                &gp.key("batch_concurrency"),
                format!(
                    "batch_concurrency = {} is not a usable number of batch items at once",
                    n.0
                ),
                "write a whole number from 1 to 1024, such as 8 (the default)".to_owned(),
            );
        }
    }
    out.listener = listener;
    if let Some(d) = secs(ctx, g.health_check_interval, &gp.key("health_check_interval"), true) {
        out.health_check_interval = d;
    }
    out.background_health_checks = g.background_health_checks.is_some_and(|f| f.0);
    // 0 is no cap: LiteLLM configs in the wild write 0 for "unset", and a gateway that
    // refuses every request would be a worse reading of it.
    out.key_max_parallel = g.max_parallel_requests.map(|Whole(n)| n).filter(|n| *n > 0);
    out.shedding.max_parallel = g
        .global_max_parallel_requests
        .and_then(|Whole(n)| usize::try_from(n).ok())
        .filter(|n| *n > 0);
    if let Some(d) = secs(ctx, g.max_queue_wait_seconds, &gp.key("max_queue_wait_seconds"), false) {
        out.shedding.max_wait = d;
    }
    if let Some(Whole(n)) = g.max_queued_requests {
        out.shedding.max_queued = usize::try_from(n).unwrap_or(usize::MAX);
    }
    out.metrics_auth = g.require_auth_for_metrics_endpoint.is_some_and(|f| f.0);
    out.upstream_http2 = g.upstream_http2.is_some_and(|f| f.0);
    out.metrics = !g.disable_metrics.is_some_and(|f| f.0);
    out.same_dialect_relay = !g.disable_same_dialect_relay.is_some_and(|f| f.0);
    out.metrics_end_user = l.enable_end_user_cost_tracking_prometheus_only.is_some_and(|f| f.0);
    if let Some(Text(t)) = &g.disable_spend_logs {
        match parse_flag(t) {
            Some(off) => out.disable_spend_logs = off,
            None => ctx.warn_value(
                "CFG-06",
                &gp.key("disable_spend_logs"),
                format!("disable_spend_logs `{t}` is not true or false; the spend ledger stays on"),
            ),
        }
    }
    out.request_timeout = secs(ctx, l.request_timeout, &lp.key("request_timeout"), true);

    out.drop_params = match l.drop_params {
        Some(f) => f.0,
        None => match ctx.env.get("LITELLM_DROP_PARAMS") {
            Some(v) => match parse_flag(&v.value) {
                Some(b) => b,
                None => {
                    ctx.warn(
                        "CFG-06",
                        &lp.key("drop_params"),
                        format!("LITELLM_DROP_PARAMS={:?} (from {}) is not true or false; drop_params stays false", v.value, v.origin),
                    );
                    false
                }
            },
            None => false,
        },
    };
    out
}

/// `general_settings.master_key`, else LITELLM_MASTER_KEY, else SWITCHYARD_MASTER_KEY.
fn master_key(ctx: &mut Ctx<'_>, written: Option<Text>, path: &KeyPath) -> Option<SourcedSecret> {
    if let Some(Text(v)) = written {
        if v.trim().is_empty() {
            ctx.problem(
                "CFG-09",
                path,
                "general_settings.master_key is empty".to_owned(),
                "set a key (e.g. sk-... from `openssl rand -hex 24`) or remove the line to run without one".to_owned(),
            );
            return None;
        }
        return Some(ctx.secret(path, v));
    }
    for var in ["LITELLM_MASTER_KEY", "SWITCHYARD_MASTER_KEY"] {
        if let Some(v) = ctx.env.get(var) {
            if v.value.trim().is_empty() {
                ctx.warn(
                    "CFG-02",
                    path,
                    format!("{var} is set but empty (set in {}); it is ignored", v.origin),
                );
                continue;
            }
            return Some(SourcedSecret {
                value: Secret::new(v.value),
                source: ValueSource::Env { var: var.to_owned(), origin: v.origin },
            });
        }
    }
    None
}

/// `general_settings.database_url`, else DATABASE_URL; empty means none.
fn database_url(ctx: &mut Ctx<'_>, written: Option<Text>, path: &KeyPath) -> Option<SourcedSecret> {
    if let Some(Text(v)) = written {
        return (!v.trim().is_empty()).then(|| ctx.secret(path, v.trim().to_owned()));
    }
    let v = ctx.env.get("DATABASE_URL")?;
    (!v.value.trim().is_empty()).then(|| SourcedSecret {
        value: Secret::new(v.value.trim()),
        source: ValueSource::Env { var: "DATABASE_URL".to_owned(), origin: v.origin },
    })
}

/// `model_max_budget` and `provider_budget_config` (top level, or under router_settings as
/// LiteLLM documents it; the top level wins per provider).
pub fn budgets(
    ctx: &mut Ctx<'_>,
    model_max_budget: Option<BudgetMap>,
    provider_top: Option<BudgetMap>,
    provider_router: Option<BudgetMap>,
) -> Budgets {
    let mut out = Budgets {
        global: None,
        max_end_user_budget: None,
        model_max_budget: budget_map(
            ctx,
            model_max_budget,
            &KeyPath::root().key("model_max_budget"),
        ),
        provider_budget_config: budget_map(
            ctx,
            provider_router,
            &KeyPath::root().key("router_settings").key("provider_budget_config"),
        ),
    };
    let top = budget_map(ctx, provider_top, &KeyPath::root().key("provider_budget_config"));
    out.provider_budget_config.extend(top);
    out
}

fn budget_map(
    ctx: &mut Ctx<'_>,
    map: Option<BudgetMap>,
    base: &KeyPath,
) -> BTreeMap<String, BudgetLimit> {
    let mut out = BTreeMap::new();
    for (name, value) in map.unwrap_or_default().0 {
        let path = base.key(name.clone());
        let raw: RawBudget = ctx.raw(Some(value), &path);
        let Some(limit) = raw.budget_limit else {
            if !ctx.failed(&path.key("budget_limit"))
                && !ctx.failed(&path)
                && !ctx.type_error_at(&path)
            {
                ctx.problem(
                    "CFG-09",
                    &path,
                    format!("the budget for `{name}` has no budget_limit"),
                    format!("write {BUDGET}"),
                );
            }
            continue;
        };
        let time_period = raw.time_period.map(|Text(t)| t);
        if let Some(t) = &time_period
            && !valid_period(t)
        {
            ctx.problem(
                    "CFG-09",
                    &path.key("time_period"),
                    format!("time_period `{t}` is not a period"),
                    "write a number and a unit (30s, 10m, 12h, 1d, 7d, 2w, 1mo) or daily, weekly, monthly".to_owned(),
                );
        }
        out.insert(
            name,
            BudgetLimit { budget_limit: limit.0, time_period, location: ctx.loc(&path) },
        );
    }
    out
}

/// LiteLLM's period syntax: digits and one of s, m, h, d, w, mo; or daily, weekly, monthly.
pub fn valid_period(t: &str) -> bool {
    crate::limits::Period::parse(t).is_some()
}

/// `max_connections`, `header_read_timeout`, `keepalive_timeout`, `max_request_headers`,
/// `max_request_header_size_kb`: whole numbers within what the listener can honour.
fn listener_limits(
    ctx: &mut Ctx<'_>,
    g: &RawGeneralSettings,
    gp: &KeyPath,
    out: &mut super::model::ListenerLimits,
) {
    let whole =
        |ctx: &mut Ctx<'_>, v: Option<super::raw::NonNeg>, key: &str, min: f64, max: f64| {
            let n = v?.0;
            if n >= min && n <= max && n.fract() == 0.0 {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                return Some(n as usize);
            }
            ctx.problem(
                "CFG-09",
                &gp.key(key),
                format!("{key} = {n} is out of range"),
                format!(
                    "write a whole number from {min} to {max}, or remove the key for the default"
                ),
            );
            None
        };
    if let Some(n) = whole(ctx, g.max_connections, "max_connections", 1.0, 1_000_000.0) {
        out.max_connections = n;
    }
    if let Some(n) = whole(ctx, g.max_request_headers, "max_request_headers", 8.0, 1000.0) {
        out.max_headers = n;
    }
    // hyper's read buffer starts at 8 KiB; the header limit must not be below it.
    if let Some(kb) =
        whole(ctx, g.max_request_header_size_kb, "max_request_header_size_kb", 8.0, 16_384.0)
    {
        out.max_header_bytes = kb * 1024;
    }
    if let Some(d) = secs(ctx, g.header_read_timeout, &gp.key("header_read_timeout"), true) {
        out.header_read_timeout = d;
    }
    if let Some(d) = secs(ctx, g.keepalive_timeout, &gp.key("keepalive_timeout"), true) {
        out.keepalive_timeout = d;
    }
}

#[cfg(test)]
mod tests {
    use super::valid_period;

    #[test]
    fn periods_follow_litellm() {
        for ok in ["30s", "10m", "12h", "1d", "30d", "2w", "1mo"] {
            assert!(valid_period(ok), "{ok}");
        }
        for bad in ["d", "1", "1 day", "1y", "-1d", "", "0d"] {
            assert!(!valid_period(bad), "{bad}");
        }
    }
}
