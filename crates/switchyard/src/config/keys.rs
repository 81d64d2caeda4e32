//! The one table of LiteLLM config keys Switchyard knows: which it acts on, which it
//! checks but does not enforce yet, and which it ignores with a warning (CFG-06). The
//! README's configuration reference is written from this table; a test keeps it in step
//! with the raw serde structs.

/// Where a key lives in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The top level of the file.
    Top,
    /// One `model_list` entry.
    Entry,
    /// `model_list[].litellm_params`.
    LitellmParams,
    RouterSettings,
    LitellmSettings,
    GeneralSettings,
}

impl Section {
    /// How the section is written in a key path, for messages.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Top => "",
            Self::Entry => "model_list[]",
            Self::LitellmParams => "model_list[].litellm_params",
            Self::RouterSettings => "router_settings",
            Self::LitellmSettings => "litellm_settings",
            Self::GeneralSettings => "general_settings",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Read and acted on.
    Supported,
    /// Read and checked (errors are reported) but has no effect yet; warned about.
    NotEnforced,
    /// A LiteLLM key Switchyard does not implement yet; warned about and ignored.
    Ignored,
}

#[derive(Debug, Clone, Copy)]
pub struct KnownKey {
    pub section: Section,
    pub key: &'static str,
    pub support: Support,
    /// Shown in the warning and the README: what happens instead, or where the key belongs.
    pub note: &'static str,
}

use super::include::Sources;
use super::model::ConfigWarning;
use super::path::KeyPath;
use super::yaml::{Kind, Node};
use crate::cost::{applied_in_model_info, is_price_key};

const fn k(section: Section, key: &'static str, support: Support, note: &'static str) -> KnownKey {
    KnownKey { section, key, support, note }
}

use Section::{Entry, GeneralSettings, LitellmParams, LitellmSettings, RouterSettings, Top};
use Support::{Ignored, NotEnforced, Supported};

const ALIAS_BUDGET_NOTE: &str = "{alias: {budget_limit, time_period}}: requests to the alias \
     are refused at the limit (BUD-01)";
const PROVIDER_BUDGET_NOTE: &str = "{provider: {budget_limit, time_period}}: the provider's \
     deployments are skipped at the limit (BUD-03)";
const PERIOD_NOTE: &str = "30s, 30m, 24h, 7d, 1mo, daily, weekly, monthly (fixed UTC windows)";
const REDIS_NOTE: &str =
    "or REDIS_HOST: budgets, rate limits and deployment cooldowns are shared by replicas";
const CALLBACK_NOTE: &str =
    "logging callbacks are not implemented; use the gateway's logs and /metrics";
const CACHE_NOTE: &str = "not read: turn the response cache on with litellm_settings.cache";
const OTEL_NOTE: &str = "`otel`: OpenTelemetry traces over OTLP/HTTP (OTEL_EXPORTER_OTLP_*); \
     other callbacks are ignored with a warning";
const LEDGER_NOTE: &str = "or DATABASE_URL: the spend ledger (LiteLLM_SpendLogs) and the virtual keys \
     (LiteLLM_VerificationToken, LiteLLM_TeamTable, …) go to PostgreSQL instead of SQLite";
const PARALLEL_NOTE: &str = "requests in flight on this deployment; one at its cap is skipped \
     for another of the group (LIM-02 when all are)";
const PRECALL_NOTE: &str = "deployments are not filtered by context window before a call; \
     context_window_fallbacks handle an overflow";
const ALIAS_NOTE: &str = "name: group, or name: {model: group, hidden: true}";
const TAGS_NOTE: &str = "request tags pick deployments by their tags (README: Routing)";
const COST_NOTE: &str = "USD per token; wins over model_info and the built-in price table";
const PER_SECOND_NOTE: &str = "per-second prices are not applied; price the deployment per \
     token with input_cost_per_token and output_cost_per_token";
const PROBE_NOTE: &str = "/health reports what traffic showed, without live probes";
const ROUTER_ONLY: &str = "set it under router_settings";

pub const KNOWN_KEYS: &[KnownKey] = &[
    // Top level.
    k(Top, "model_list", Supported, ""),
    k(Top, "router_settings", Supported, ""),
    k(Top, "litellm_settings", Supported, ""),
    k(Top, "general_settings", Supported, ""),
    k(Top, "environment_variables", Supported, ""),
    k(Top, "model_max_budget", Supported, ALIAS_BUDGET_NOTE),
    k(Top, "provider_budget_config", Supported, PROVIDER_BUDGET_NOTE),
    k(
        Top,
        "include",
        Supported,
        "files merged in order, relative to the config: lists extend, other keys replace",
    ),
    k(Top, "credential_list", Ignored, "write credentials on each deployment or use env vars"),
    k(Top, "guardrails", Ignored, "guardrails are not implemented"),
    k(Top, "callback_settings", Ignored, CALLBACK_NOTE),
    k(Top, "mcp_servers", Ignored, "MCP gateway features are not implemented"),
    k(Top, "files_settings", Ignored, "the files API is not implemented"),
    k(Top, "finetune_settings", Ignored, "the fine-tuning API is not implemented"),
    k(Top, "assistant_settings", Ignored, "the assistants API is not implemented"),
    k(Top, "search_tools", Ignored, "search tools are not implemented"),
    // One model_list entry.
    k(Entry, "model_name", Supported, ""),
    k(Entry, "litellm_params", Supported, ""),
    k(
        Entry,
        "model_info",
        Supported,
        "kept whole for /model/info; its per-token prices apply (the four litellm_params \
         keys, `cache_creation_input_token_cost_above_1hr`, `<key>_above_<N>k_tokens` \
         tiers); other LiteLLM prices (per second, per pixel …) are warned about; \
         `mode: embedding` marks an embedding model (its probe embeds, chat is refused)",
    ),
    // litellm_params.
    k(LitellmParams, "model", Supported, ""),
    k(LitellmParams, "api_key", Supported, ""),
    k(LitellmParams, "api_base", Supported, ""),
    k(LitellmParams, "api_version", Supported, ""),
    k(LitellmParams, "custom_llm_provider", Supported, ""),
    k(LitellmParams, "aws_access_key_id", Supported, ""),
    k(LitellmParams, "aws_secret_access_key", Supported, ""),
    k(LitellmParams, "aws_session_token", Supported, ""),
    k(LitellmParams, "aws_region_name", Supported, ""),
    k(LitellmParams, "aws_session_name", Supported, ""),
    k(LitellmParams, "aws_profile_name", Supported, ""),
    k(LitellmParams, "aws_role_name", Supported, ""),
    k(LitellmParams, "aws_web_identity_token", Supported, ""),
    k(LitellmParams, "aws_sts_endpoint", Supported, ""),
    k(LitellmParams, "aws_external_id", Supported, ""),
    k(LitellmParams, "aws_bedrock_runtime_endpoint", Supported, ""),
    k(LitellmParams, "timeout", Supported, "seconds"),
    k(LitellmParams, "stream_timeout", Supported, "seconds"),
    k(LitellmParams, "max_retries", Supported, ""),
    k(LitellmParams, "num_retries", Supported, ""),
    k(LitellmParams, "rpm", Supported, ""),
    k(LitellmParams, "tpm", Supported, ""),
    k(LitellmParams, "weight", Supported, ""),
    k(LitellmParams, "order", Supported, ""),
    k(LitellmParams, "max_parallel_requests", Supported, PARALLEL_NOTE),
    k(LitellmParams, "cooldown_time", Supported, "seconds"),
    k(LitellmParams, "drop_params", Supported, ""),
    k(LitellmParams, "input_cost_per_token", Supported, COST_NOTE),
    k(LitellmParams, "output_cost_per_token", Supported, COST_NOTE),
    k(LitellmParams, "cache_read_input_token_cost", Supported, COST_NOTE),
    k(LitellmParams, "cache_creation_input_token_cost", Supported, COST_NOTE),
    k(LitellmParams, "input_cost_per_second", Ignored, PER_SECOND_NOTE),
    k(LitellmParams, "output_cost_per_second", Ignored, PER_SECOND_NOTE),
    k(LitellmParams, "max_budget", Supported, "USD; a deployment over it is skipped (BUD-03)"),
    k(LitellmParams, "budget_duration", Supported, PERIOD_NOTE),
    k(LitellmParams, "mock_response", Supported, ""),
    k(LitellmParams, "tags", Supported, ""),
    k(
        LitellmParams,
        "ssl_verify",
        Supported,
        "false disables TLS checks (warned); a path names a CA bundle",
    ),
    k(LitellmParams, "itpm", Ignored, "input-token rate limits are not implemented"),
    k(LitellmParams, "otpm", Ignored, "output-token rate limits are not implemented"),
    k(LitellmParams, "extra_headers", Ignored, "extra upstream headers are not implemented"),
    k(LitellmParams, "headers", Ignored, "extra upstream headers are not implemented"),
    k(LitellmParams, "organization", Ignored, "OpenAI organization headers are not implemented"),
    k(LitellmParams, "region_name", Ignored, "use aws_region_name"),
    k(LitellmParams, "vertex_project", Ignored, "Vertex AI is not supported"),
    k(LitellmParams, "vertex_location", Ignored, "Vertex AI is not supported"),
    k(LitellmParams, "vertex_credentials", Ignored, "Vertex AI is not supported"),
    k(LitellmParams, "use_in_pass_through", Ignored, "pass-through endpoints are not implemented"),
    k(
        LitellmParams,
        "temperature",
        Ignored,
        "default request parameters are not applied; send them per request",
    ),
    k(
        LitellmParams,
        "max_tokens",
        Ignored,
        "default request parameters are not applied; send them per request",
    ),
    k(
        LitellmParams,
        "top_p",
        Ignored,
        "default request parameters are not applied; send them per request",
    ),
    k(
        LitellmParams,
        "seed",
        Ignored,
        "default request parameters are not applied; send them per request",
    ),
    // router_settings.
    k(RouterSettings, "routing_strategy", Supported, ""),
    k(RouterSettings, "num_retries", Supported, ""),
    k(RouterSettings, "timeout", Supported, "seconds, whole request"),
    k(RouterSettings, "retry_after", Supported, ""),
    k(RouterSettings, "retry_policy", Supported, ""),
    k(RouterSettings, "allowed_fails", Supported, ""),
    k(RouterSettings, "cooldown_time", Supported, "seconds"),
    k(RouterSettings, "disable_cooldowns", Supported, "also stops sharing cooldowns through Redis"),
    k(RouterSettings, "fallbacks", Supported, ""),
    k(RouterSettings, "context_window_fallbacks", Supported, ""),
    k(RouterSettings, "content_policy_fallbacks", Supported, ""),
    k(RouterSettings, "default_fallbacks", Supported, ""),
    k(RouterSettings, "enable_pre_call_checks", NotEnforced, PRECALL_NOTE),
    k(RouterSettings, "provider_budget_config", Supported, PROVIDER_BUDGET_NOTE),
    k(RouterSettings, "routing_strategy_args", Ignored, "strategy tuning is not implemented"),
    k(RouterSettings, "model_group_retry_policy", Ignored, "use retry_policy"),
    k(RouterSettings, "allowed_fails_policy", Ignored, "use allowed_fails"),
    k(RouterSettings, "model_group_alias", Supported, ALIAS_NOTE),
    k(RouterSettings, "enable_tag_filtering", Supported, TAGS_NOTE),
    k(RouterSettings, "tag_filtering_match_any", Supported, "default true; false: all tags"),
    k(RouterSettings, "max_fallbacks", Ignored, "every configured fallback is tried"),
    k(RouterSettings, "redis_host", Supported, REDIS_NOTE),
    k(RouterSettings, "redis_port", Supported, "or REDIS_PORT; default 6379"),
    k(RouterSettings, "redis_password", Supported, "or REDIS_PASSWORD"),
    k(RouterSettings, "redis_url", Supported, "or REDIS_URL; wins over redis_host"),
    k(RouterSettings, "cache_responses", Ignored, CACHE_NOTE),
    // litellm_settings.
    k(LitellmSettings, "drop_params", Supported, ""),
    k(LitellmSettings, "request_timeout", Supported, "seconds"),
    k(LitellmSettings, "num_retries", Supported, "router_settings.num_retries wins"),
    k(LitellmSettings, "fallbacks", Supported, "router_settings.fallbacks wins"),
    k(LitellmSettings, "context_window_fallbacks", Supported, "router_settings wins"),
    k(LitellmSettings, "content_policy_fallbacks", Supported, "router_settings wins"),
    k(LitellmSettings, "default_fallbacks", Supported, "router_settings wins"),
    k(LitellmSettings, "cache", Supported, "the response cache (README: Response cache)"),
    k(
        LitellmSettings,
        "cache_params",
        Supported,
        "type local or redis, host, port, password, ttl, namespace, mode, supported_call_types",
    ),
    k(LitellmSettings, "callbacks", Supported, OTEL_NOTE),
    k(LitellmSettings, "success_callback", Supported, OTEL_NOTE),
    k(LitellmSettings, "failure_callback", Ignored, CALLBACK_NOTE),
    k(LitellmSettings, "service_callback", Ignored, CALLBACK_NOTE),
    k(LitellmSettings, "langfuse_default_tags", Ignored, CALLBACK_NOTE),
    k(
        LitellmSettings,
        "turn_off_message_logging",
        Ignored,
        "Switchyard never logs message content",
    ),
    k(LitellmSettings, "redact_user_api_key_info", Ignored, "Switchyard never logs keys"),
    k(LitellmSettings, "set_verbose", Ignored, "use --log-format and RUST_LOG"),
    k(LitellmSettings, "json_logs", Ignored, "use --log-format json"),
    k(LitellmSettings, "modify_params", Ignored, "requests are translated without modification"),
    k(LitellmSettings, "max_budget", Supported, "USD for every request together (BUD-01)"),
    k(LitellmSettings, "budget_duration", Supported, PERIOD_NOTE),
    k(
        LitellmSettings,
        "max_end_user_budget",
        Supported,
        "USD per end user (`user`, Anthropic metadata.user_id), never reset (BUD-01)",
    ),
    k(
        LitellmSettings,
        "enable_end_user_cost_tracking_prometheus_only",
        Supported,
        "true: /metrics carries the end_user label (empty otherwise)",
    ),
    k(LitellmSettings, "ssl_verify", Ignored, "set ssl_verify on each deployment's litellm_params"),
    k(LitellmSettings, "telemetry", Ignored, "Switchyard sends no telemetry"),
    k(LitellmSettings, "allowed_fails", Ignored, ROUTER_ONLY),
    k(LitellmSettings, "cooldown_time", Ignored, ROUTER_ONLY),
    k(LitellmSettings, "routing_strategy", Ignored, ROUTER_ONLY),
    // general_settings.
    k(GeneralSettings, "master_key", Supported, "or LITELLM_MASTER_KEY / SWITCHYARD_MASTER_KEY"),
    k(GeneralSettings, "health_check_interval", NotEnforced, PROBE_NOTE),
    k(GeneralSettings, "background_health_checks", NotEnforced, PROBE_NOTE),
    k(GeneralSettings, "max_request_body_size_mb", Supported, "Switchyard key; default 32"),
    k(
        GeneralSettings,
        "max_request_size_mb",
        Supported,
        "LiteLLM's name for max_request_body_size_mb",
    ),
    k(GeneralSettings, "database_url", Supported, LEDGER_NOTE),
    k(
        GeneralSettings,
        "batch_concurrency",
        Supported,
        "Switchyard key: batch items one process runs at once; default 8",
    ),
    k(
        GeneralSettings,
        "upstream_http2",
        Supported,
        "Switchyard key: offer HTTP/2 to https upstreams (ALPN; the upstream picks); default false, HTTP/1.1 only",
    ),
    k(
        GeneralSettings,
        "max_connections",
        Supported,
        "Switchyard key: open client connections; one more gets a fast 503 (GW-14); default 10000",
    ),
    k(
        GeneralSettings,
        "header_read_timeout",
        Supported,
        "Switchyard key: seconds for a request's headers to arrive, counted from their first byte, the connection is closed beyond; default 30",
    ),
    k(
        GeneralSettings,
        "keepalive_timeout",
        Supported,
        "Switchyard key (LiteLLM sets it with `--keepalive_timeout`): seconds a connection may sit idle between requests before it is closed; default 75",
    ),
    k(
        GeneralSettings,
        "max_request_headers",
        Supported,
        "Switchyard key: header lines in one request, 431 beyond; default 100",
    ),
    k(
        GeneralSettings,
        "max_request_header_size_kb",
        Supported,
        "Switchyard key: request line and headers in KiB, 431 beyond; default 64",
    ),
    k(GeneralSettings, "enable_tag_filtering", Supported, TAGS_NOTE),
    k(GeneralSettings, "store_model_in_db", Ignored, "models come from the config file only"),
    k(
        GeneralSettings,
        "disable_spend_logs",
        Supported,
        "true: no spend ledger rows are written (nothing is opened)",
    ),
    k(
        GeneralSettings,
        "store_prompts_in_spend_logs",
        Ignored,
        "prompts and answers are never written to the ledger",
    ),
    k(
        GeneralSettings,
        "fail_closed",
        Supported,
        "Switchyard key: refuse requests while Redis is unreachable (LIM-03) instead of \
         counting in-process",
    ),
    k(GeneralSettings, "redis_key_prefix", Supported, "Switchyard key; default `switchyard:`"),
    k(
        GeneralSettings,
        "require_auth_for_metrics_endpoint",
        Supported,
        "true: /metrics asks for the master key (open by default)",
    ),
    k(
        GeneralSettings,
        "disable_metrics",
        Supported,
        "Switchyard key; true: no request metrics are recorded and /metrics answers 404 \
         (on by default, with or without LiteLLM's `prometheus` callback)",
    ),
    k(
        GeneralSettings,
        "disable_same_dialect_relay",
        Supported,
        "Switchyard key; true: requests whose client and deployment speak the same dialect \
         are translated like any other instead of relayed (for comparisons; off by default)",
    ),
    k(
        GeneralSettings,
        "maximum_spend_logs_retention_period",
        Supported,
        "ledger rows older than this (30d, 12h, 1mo) are deleted",
    ),
    k(
        GeneralSettings,
        "proxy_batch_write_at",
        Ignored,
        "the ledger writes every 200 ms or 500 rows",
    ),
    k(
        GeneralSettings,
        "database_connection_pool_limit",
        Ignored,
        "the ledger uses 2 connections, the key store its own small pool",
    ),
    k(GeneralSettings, "alerting", Ignored, "alerting is not implemented"),
    k(GeneralSettings, "alerting_threshold", Ignored, "alerting is not implemented"),
    k(GeneralSettings, "health_check_details", Ignored, "/health always shows the diagnosis"),
    k(
        GeneralSettings,
        "forward_client_headers_to_llm_api",
        Ignored,
        "client headers are not forwarded",
    ),
    k(
        GeneralSettings,
        "max_parallel_requests",
        Supported,
        "requests in flight per virtual key that sets no max_parallel_requests of its own \
         (LIM-01); 0: none",
    ),
    k(
        GeneralSettings,
        "global_max_parallel_requests",
        Supported,
        "model requests the gateway serves at once (a stream until its last event); beyond \
         it a request waits in a queue, then 429 LIM-04; 0: none",
    ),
    k(
        GeneralSettings,
        "max_queue_wait_seconds",
        Supported,
        "Switchyard key: how long a request beyond global_max_parallel_requests waits for a \
         slot; default 5",
    ),
    k(
        GeneralSettings,
        "max_queued_requests",
        Supported,
        "Switchyard key: requests waiting for a slot at once; more are refused at once \
         (LIM-04); default 100",
    ),
    k(GeneralSettings, "enforce_user_param", Ignored, "not implemented"),
    k(GeneralSettings, "reject_clientside_metadata_tags", Ignored, "not implemented"),
    k(GeneralSettings, "allowed_routes", Ignored, "not implemented"),
    k(GeneralSettings, "public_routes", Ignored, "not implemented"),
    k(GeneralSettings, "custom_auth", Ignored, "only the master key is checked"),
    k(GeneralSettings, "ui_access_mode", Ignored, "there is no admin UI"),
    k(
        GeneralSettings,
        "pass_through_endpoints",
        Ignored,
        "pass-through endpoints are not implemented",
    ),
];

/// One warning per key that is ignored, not enforced yet, or unknown (CFG-06), walking
/// the sections the table covers. `model_info` is free-form: only a LiteLLM price there that
/// is not applied (per second, per pixel …) is warned about.
pub fn warnings(root: &Node, sources: &Sources) -> Vec<ConfigWarning> {
    let mut out = Vec::new();
    let walk = |node: &Node, section: Section, base: &KeyPath, out: &mut Vec<ConfigWarning>| {
        for e in node.entries() {
            let path = base.key(e.key.clone());
            let callbacks = section == LitellmSettings && is_callback_list(&e.key);
            let message = match lookup(section, &e.key) {
                _ if callbacks => match unimplemented_callbacks(&e.value) {
                    Some(names) => format!(
                        "ignored: {names}: of the logging callbacks, Switchyard implements \
                         only `otel` (OpenTelemetry traces)"
                    ),
                    None => continue,
                },
                Some(KnownKey { support: Supported, .. }) => continue,
                Some(KnownKey { support: NotEnforced, note, .. }) => {
                    format!("no effect yet: {note}")
                }
                Some(KnownKey { support: Ignored, note, .. }) => {
                    format!("ignored: a LiteLLM setting Switchyard does not implement yet ({note})")
                }
                None if is_price_key(&e.key) => unapplied_price(&e.key),
                None => match suggestion(section, &e.key) {
                    Some(hint) => format!("ignored: unknown key; {hint}"),
                    None => "ignored: not a key Switchyard knows here".to_owned(),
                },
            };
            let location = Some(sources.location(&path, e.key_pos));
            out.push(ConfigWarning { id: "CFG-06", key: path.to_string(), location, message });
        }
    };
    walk(root, Top, &KeyPath::root(), &mut out);
    for (key, section) in [
        ("router_settings", RouterSettings),
        ("litellm_settings", LitellmSettings),
        ("general_settings", GeneralSettings),
    ] {
        if let Some(node) = root.get(key) {
            walk(node, section, &KeyPath::root().key(key), &mut out);
        }
    }
    if let Some(Kind::Seq(items)) = root.get("model_list").map(|n| &n.kind) {
        for (i, item) in items.iter().enumerate() {
            let base = KeyPath::root().key("model_list").index(i);
            walk(item, Entry, &base, &mut out);
            if let Some(params) = item.get("litellm_params") {
                walk(params, LitellmParams, &base.key("litellm_params"), &mut out);
            }
            // model_info is free-form; only a LiteLLM price that is not applied is named.
            for e in item.get("model_info").map(Node::entries).into_iter().flatten() {
                if is_price_key(&e.key) && !applied_in_model_info(&e.key) {
                    let path = base.key("model_info").key(e.key.clone());
                    out.push(ConfigWarning {
                        id: "CFG-06",
                        location: Some(sources.location(&path, e.key_pos)),
                        key: path.to_string(),
                        message: unapplied_price(&e.key),
                    });
                }
            }
        }
    }
    out
}

/// `callbacks` and `success_callback`: their `otel` is applied (traces), the rest ignored.
fn is_callback_list(key: &str) -> bool {
    key == "callbacks" || key == "success_callback"
}

/// The callbacks of a list other than `otel`, named; `None` when there are none.
fn unimplemented_callbacks(value: &Node) -> Option<String> {
    let items = match &value.kind {
        Kind::Seq(items) => items.as_slice(),
        Kind::Null => &[],
        _ => std::slice::from_ref(value),
    };
    let others: Vec<String> = items
        .iter()
        .filter(|n| n.as_str().map(str::trim) != Some("otel"))
        .map(|n| {
            n.as_str().map_or_else(|| "a value that is not a name".to_owned(), |s| format!("`{s}`"))
        })
        .collect();
    (!others.is_empty()).then(|| others.join(", "))
}

/// The warning for a LiteLLM price key that is not applied where it is written.
fn unapplied_price(key: &str) -> String {
    if applied_in_model_info(key) {
        format!("ignored here: `{key}` applies under model_info; move it there")
    } else {
        "ignored: a LiteLLM price Switchyard does not apply; answers are priced per token \
         (input_cost_per_token, output_cost_per_token, cache_read_input_token_cost, \
         cache_creation_input_token_cost)"
            .to_owned()
    }
}

/// The configuration reference as a Markdown table, one row per key, for the README.
pub fn reference_markdown() -> String {
    let mut out = String::from("| key | status | note |\n|---|---|---|\n");
    for k in KNOWN_KEYS {
        let status = match k.support {
            Supported => "supported",
            NotEnforced => "planned: checked, no effect yet (warning)",
            Ignored => "ignored (warning)",
        };
        let key = match k.section {
            Top => k.key.to_owned(),
            other => format!("{}.{}", other.prefix(), k.key),
        };
        out.push_str(&format!("| `{key}` | {status} | {} |\n", k.note));
    }
    out
}

/// The key that governs the value at `path` (the first key under a section), when that
/// key is not applied: planned, ignored, or unknown. Problems found under such a key
/// cannot change what the gateway does, so they are warnings. None for keys that are
/// applied and for the structure itself (`model_list[2]`, `router_settings`).
pub fn not_applied(path: &KeyPath) -> Option<String> {
    use super::path::Seg::{Index, Key};
    let (section, key, shown) = match path.segs() {
        [Key(l), Index(i), Key(p), Key(k), ..] if l == "model_list" && p == "litellm_params" => {
            (LitellmParams, k, format!("model_list[{i}].litellm_params.{k}"))
        }
        [Key(l), Index(i), Key(k), ..] if l == "model_list" => {
            (Entry, k, format!("model_list[{i}].{k}"))
        }
        [Key(s), Key(k), ..] if SECTIONS.iter().any(|(name, _)| name == s) => {
            let section = SECTIONS.iter().find(|(name, _)| name == s).map(|(_, sec)| *sec)?;
            (section, k, format!("{s}.{k}"))
        }
        [Key(k), ..] if !SECTIONS.iter().any(|(name, _)| name == k) && k != "model_list" => {
            (Top, k, k.clone())
        }
        _ => return None,
    };
    match lookup(section, key) {
        Some(KnownKey { support: Supported, .. }) => None,
        _ => Some(shown),
    }
}

const SECTIONS: [(&str, Section); 3] = [
    ("router_settings", RouterSettings),
    ("litellm_settings", LitellmSettings),
    ("general_settings", GeneralSettings),
];

pub fn lookup(section: Section, key: &str) -> Option<&'static KnownKey> {
    KNOWN_KEYS.iter().find(|k| k.section == section && k.key == key)
}

/// Whether a value under this key is read at all (so `os.environ/` in it is resolved).
pub fn is_read(section: Section, key: &str) -> bool {
    lookup(section, key).is_some_and(|k| k.support != Ignored)
}

/// For an unknown key: a close spelling in the same section, or the section where the
/// key would be read.
pub fn suggestion(section: Section, key: &str) -> Option<String> {
    let close = KNOWN_KEYS
        .iter()
        .filter(|k| k.section == section && k.support != Ignored)
        .map(|k| (edit_distance(k.key, key), k.key))
        // Longer names tolerate more slips (`num_retry` for `num_retries`).
        .filter(|(d, name)| *d <= 2.max(name.len() / 3))
        .min_by_key(|(d, _)| *d);
    if let Some((_, name)) = close {
        return Some(format!("did you mean `{name}`?"));
    }
    KNOWN_KEYS
        .iter()
        .find(|k| k.key == key && k.section != section && k.support != Ignored)
        .map(|k| format!("`{key}` is read under {}", k.section.prefix()))
}

/// Levenshtein distance; the key names are short, so the quadratic table is fine.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_listed_twice_in_a_section() {
        for (i, a) in KNOWN_KEYS.iter().enumerate() {
            for b in &KNOWN_KEYS[i + 1..] {
                assert!(!(a.section == b.section && a.key == b.key), "{} listed twice", a.key);
            }
        }
    }

    /// The field names serde reads for `T`, captured from `deserialize_struct`.
    fn fields_of<T: for<'de> serde::Deserialize<'de>>() -> Vec<&'static str> {
        use serde::de::{self, Visitor};
        struct Capture<'a>(&'a mut Vec<&'static str>);
        impl<'de> de::Deserializer<'de> for Capture<'_> {
            type Error = de::value::Error;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(de::Error::custom("not a struct"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0.extend_from_slice(fields);
                Err(de::Error::custom("captured"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let mut fields = Vec::new();
        let _ = T::deserialize(Capture(&mut fields));
        fields.sort_unstable();
        fields
    }

    fn read_keys(section: Section) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = KNOWN_KEYS
            .iter()
            .filter(|k| k.section == section && k.support != Ignored)
            .map(|k| k.key)
            .collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn the_table_lists_exactly_the_keys_the_raw_structs_read() {
        use crate::config::raw::*;
        assert_eq!(read_keys(Top), fields_of::<RawTop>());
        assert_eq!(read_keys(Entry), fields_of::<RawEntry>());
        assert_eq!(read_keys(LitellmParams), fields_of::<RawLitellmParams>());
        assert_eq!(read_keys(RouterSettings), fields_of::<RawRouterSettings>());
        assert_eq!(read_keys(LitellmSettings), fields_of::<RawLitellmSettings>());
        assert_eq!(read_keys(GeneralSettings), fields_of::<RawGeneralSettings>());
    }

    #[test]
    fn the_reference_has_a_row_per_key() {
        let md = reference_markdown();
        assert_eq!(md.lines().count(), KNOWN_KEYS.len() + 2);
        assert!(md.contains("| `model_list[].litellm_params.mock_response` | supported |"));
        assert!(md.contains("| `model_list[].litellm_params.aws_profile_name` | supported |"));
        assert!(md.contains("| `litellm_settings.cache` | supported |"));
    }

    #[test]
    fn suggestions_for_typos_and_misplaced_keys() {
        assert_eq!(
            suggestion(RouterSettings, "num_retry").as_deref(),
            Some("did you mean `num_retries`?")
        );
        assert_eq!(
            suggestion(GeneralSettings, "routing_strategy").as_deref(),
            Some("`routing_strategy` is read under router_settings")
        );
        assert_eq!(suggestion(RouterSettings, "something_else"), None);
    }
}
