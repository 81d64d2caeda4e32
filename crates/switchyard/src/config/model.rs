//! The validated, typed configuration the gateway runs on. Produced only by
//! [`super::load`]; nothing here touches files or the environment.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::secret::Secret;

/// A place in a config file, 1-based, for messages a person acts on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Where a variable's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvOrigin {
    /// The gateway's own process environment.
    Process,
    /// An env file, with the line that set it.
    File { path: PathBuf, line: usize },
    /// The config file's own `environment_variables` section, with the line that set it.
    ConfigFile { path: PathBuf, line: usize },
}

impl std::fmt::Display for EnvOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Process => f.write_str("the process environment"),
            Self::File { path, line } => write!(f, "{}:{}", path.display(), line),
            Self::ConfigFile { path, line } => {
                write!(f, "environment_variables in {}:{}", path.display(), line)
            }
        }
    }
}

/// Where a configured string (usually a secret) came from, so diagnostics can say
/// "the key from ANTHROPIC_API_KEY in ~/.env:3" without printing the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// Written literally in the config file.
    Literal(Location),
    /// An `os.environ/VAR` reference in the config file.
    ConfigEnvRef { var: String, origin: EnvOrigin, at: Location },
    /// Read from a variable by convention, not named in the config (e.g. ANTHROPIC_API_KEY).
    Env { var: String, origin: EnvOrigin },
}

impl std::fmt::Display for ValueSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Literal(at) => write!(f, "written in {at}"),
            Self::ConfigEnvRef { var, origin, .. } | Self::Env { var, origin } => {
                write!(f, "{var} from {origin}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedSecret {
    pub value: Secret,
    pub source: ValueSource,
}

/// Which upstream API a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Anthropic,
    Bedrock(BedrockApi),
    /// OpenAI chat completions, including compatible servers.
    OpenAi(OpenAiFlavor),
    /// A provider (or route) Switchyard does not implement yet: the deployment loads,
    /// and requests to it answer with its [`Deployment::unservable`] error.
    Unsupported,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BedrockApi {
    /// `bedrock/`: Invoke for Claude models, Converse for the rest.
    Auto,
    Invoke,
    Converse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenAiFlavor {
    OpenAi,
    Ollama,
    OllamaChat,
    HostedVllm,
}

impl ProviderKind {
    /// The LiteLLM prefix this provider is written with.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::Bedrock(BedrockApi::Auto) => "bedrock",
            Self::Bedrock(BedrockApi::Invoke) => "bedrock/invoke",
            Self::Bedrock(BedrockApi::Converse) => "bedrock/converse",
            Self::OpenAi(OpenAiFlavor::OpenAi) => "openai",
            Self::OpenAi(OpenAiFlavor::Ollama) => "ollama",
            Self::OpenAi(OpenAiFlavor::OllamaChat) => "ollama_chat",
            Self::OpenAi(OpenAiFlavor::HostedVllm) => "hosted_vllm",
            Self::Unsupported => "unsupported",
        }
    }
}

/// The `aws_*` keys of one deployment, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsParams {
    pub access_key_id: Option<SourcedSecret>,
    pub secret_access_key: Option<SourcedSecret>,
    pub session_token: Option<SourcedSecret>,
    pub region_name: Option<String>,
    /// Where `region_name` came from: `aws_region_name`, or AWS_REGION / AWS_DEFAULT_REGION
    /// (looked up through the config's environment so env files count).
    pub region_source: Option<ValueSource>,
    pub profile_name: Option<String>,
    pub role_name: Option<String>,
    pub session_name: Option<String>,
    pub external_id: Option<String>,
    pub web_identity_token: Option<SourcedSecret>,
    pub sts_endpoint: Option<String>,
    pub bedrock_runtime_endpoint: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Costs {
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub cache_read_input_token_cost: Option<f64>,
    pub cache_creation_input_token_cost: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SslVerify {
    /// Verify against the system roots (the default).
    System,
    /// Verify against this CA bundle.
    CaBundle(PathBuf),
    /// Do not verify. Warned about at startup.
    Disabled,
}

/// One `model_list` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// `model_info.id`, or a stable id derived from the entry when absent.
    pub id: String,
    /// The alias (`model_name`) this deployment serves.
    pub alias: String,
    pub provider: ProviderKind,
    /// The upstream model id, without the provider prefix.
    pub model: String,
    /// `litellm_params.model` as written.
    pub model_as_written: String,
    pub api_key: Option<SourcedSecret>,
    pub api_base: Option<String>,
    pub api_version: Option<String>,
    pub aws: AwsParams,
    pub timeout: Option<Duration>,
    pub stream_timeout: Option<Duration>,
    pub max_retries: Option<u32>,
    pub num_retries: Option<u32>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub weight: Option<f64>,
    pub order: Option<u32>,
    pub max_parallel_requests: Option<u32>,
    pub cooldown_time: Option<Duration>,
    pub drop_params: Option<bool>,
    pub costs: Costs,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub mock_response: Option<String>,
    pub tags: Vec<String>,
    pub ssl_verify: SslVerify,
    /// Where this deployment's credentials will come from, decided once at load time so
    /// `config check`, `doctor` and error messages tell the same story.
    pub credentials: CredentialSource,
    /// `model_info`, kept whole for `/model/info` and routing hints.
    pub model_info: Map<String, Value>,
    /// Why requests to this deployment cannot be sent, when they cannot (its provider is
    /// not implemented, or a variable it reads is unset). Loading warns about it; every
    /// request to the deployment fails with this configuration error.
    pub unservable: Option<Unservable>,
    /// Where the entry starts in the config file.
    pub location: Location,
}

impl Deployment {
    /// Whether `model_name` is a pattern (`anthropic/*`, `claude-*`, `*`): the deployment
    /// serves every name it matches, with the matched part filling the `*` of its `model`.
    pub fn is_pattern(&self) -> bool {
        self.alias.contains('*')
    }

    /// The model as a metrics label: a pattern deployment's model as written (`claude-*`),
    /// never the name a client filled in, so clients cannot grow the series.
    pub fn label_model(&self) -> &str {
        if self.is_pattern() { &self.model_as_written } else { &self.model }
    }

    /// Whether `model_info.mode` marks an embedding model (LiteLLM's health checks and
    /// Switchyard's routing read it).
    pub fn is_embedding(&self) -> bool {
        self.model_info.get("mode").and_then(Value::as_str) == Some("embedding")
    }
}

/// The configuration error every request to an unservable deployment answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unservable {
    /// Catalog id: `CFG-01` (a variable is unset), `CFG-02` (set but empty), `CFG-04`
    /// (a provider or route not implemented).
    pub id: &'static str,
    pub cause: String,
    pub remedy: String,
}

/// Where a deployment's credentials come from. Conventional variables (ANTHROPIC_API_KEY,
/// OPENAI_API_KEY, AWS_BEARER_TOKEN_BEDROCK, AWS_PROFILE, AWS_ACCESS_KEY_ID) are looked up
/// through the config's environment (process, then env files, then `environment_variables`),
/// and when found they are also copied into [`Deployment::api_key`] / [`Deployment::aws`]
/// so providers never read the process environment themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `mock_response`: no upstream is called.
    Mock,
    /// An API key sent to the provider (`api_key`, ANTHROPIC_API_KEY, OPENAI_API_KEY).
    ApiKey(ValueSource),
    /// A Bedrock API key (bearer token): `api_key` on a Bedrock deployment or
    /// AWS_BEARER_TOKEN_BEDROCK.
    BedrockApiKey(ValueSource),
    /// Static AWS keys: `aws_access_key_id` in the config or AWS_ACCESS_KEY_ID.
    AwsKeys(ValueSource),
    /// A named AWS profile: `aws_profile_name` (source `Literal`) or AWS_PROFILE.
    AwsProfile { name: String, source: ValueSource },
    /// Nothing configured: the standard AWS chain (SSO cache, instance metadata, ...).
    AwsDefaultChain,
    /// The upstream needs no credentials (Ollama, a local server).
    NoneNeeded,
    /// Credentials are needed but none were found; these variables were looked for.
    Missing { looked_for: Vec<&'static str> },
}

/// A spend limit over a period (`1d`, `30d`, `1mo`, `12h`, `30m`, `60s`).
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetLimit {
    pub budget_limit: f64,
    pub time_period: Option<String>,
    pub location: Location,
}

/// The config-level budgets, enforced by `limits`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Budgets {
    /// `litellm_settings.max_budget` + `budget_duration`: every request.
    pub global: Option<BudgetLimit>,
    /// `litellm_settings.max_end_user_budget`: each end user, for ever.
    pub max_end_user_budget: Option<f64>,
    /// `model_max_budget`: alias → limit.
    pub model_max_budget: BTreeMap<String, BudgetLimit>,
    /// `provider_budget_config` (top level or under `router_settings`): provider → limit.
    pub provider_budget_config: BTreeMap<String, BudgetLimit>,
}

/// Deployments sharing one `model_name`, in config order.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelGroup {
    pub name: String,
    pub deployments: Vec<Arc<Deployment>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoutingStrategy {
    #[default]
    SimpleShuffle,
    LeastBusy,
    LatencyBased,
    UsageBased,
    CostBased,
}

impl RoutingStrategy {
    /// The LiteLLM name of the strategy.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SimpleShuffle => "simple-shuffle",
            Self::LeastBusy => "least-busy",
            Self::LatencyBased => "latency-based-routing",
            Self::UsageBased => "usage-based-routing",
            Self::CostBased => "cost-based-routing",
        }
    }
}

/// A fallback rule: when `from` fails, try `to` in order.
pub type FallbackMap = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RetryPolicy {
    pub bad_request: Option<u32>,
    pub authentication: Option<u32>,
    pub timeout: Option<u32>,
    pub rate_limit: Option<u32>,
    pub content_policy: Option<u32>,
    pub internal_server: Option<u32>,
    pub service_unavailable: Option<u32>,
    pub not_found: Option<u32>,
    pub default: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouterSettings {
    pub routing_strategy: RoutingStrategy,
    pub num_retries: u32,
    /// Whole-request timeout.
    pub timeout: Option<Duration>,
    pub retry_after: Duration,
    pub retry_policy: RetryPolicy,
    pub allowed_fails: u32,
    pub cooldown_time: Duration,
    pub disable_cooldowns: bool,
    pub fallbacks: FallbackMap,
    pub context_window_fallbacks: FallbackMap,
    pub content_policy_fallbacks: FallbackMap,
    pub default_fallbacks: Vec<String>,
    pub enable_pre_call_checks: bool,
    /// `model_group_alias`: a name clients send → the model group that serves it.
    pub model_group_alias: BTreeMap<String, GroupAlias>,
    /// `enable_tag_filtering` (in `router_settings` or `general_settings`): a request's tags
    /// choose among a group's deployments by their `tags`.
    pub enable_tag_filtering: bool,
    /// `tag_filtering_match_any` (default true): a deployment matches when it has any of the
    /// request's tags; false: only when it has all of them.
    pub tag_filtering_match_any: bool,
}

/// One `model_group_alias` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAlias {
    /// The group (a `model_name`, or a name a wildcard `model_name` matches) it routes to.
    pub model: String,
    /// `hidden: true`: callable, but not listed by `/v1/models`.
    pub hidden: bool,
}

impl Default for RouterSettings {
    fn default() -> Self {
        Self {
            routing_strategy: RoutingStrategy::SimpleShuffle,
            num_retries: 2,
            timeout: None,
            retry_after: Duration::ZERO,
            retry_policy: RetryPolicy::default(),
            allowed_fails: 3,
            cooldown_time: Duration::from_secs(5),
            disable_cooldowns: false,
            fallbacks: FallbackMap::new(),
            context_window_fallbacks: FallbackMap::new(),
            content_policy_fallbacks: FallbackMap::new(),
            default_fallbacks: Vec::new(),
            enable_pre_call_checks: false,
            model_group_alias: BTreeMap::new(),
            enable_tag_filtering: false,
            tag_filtering_match_any: true,
        }
    }
}

/// Batch items one gateway process runs at once unless `batch_concurrency` says otherwise:
/// enough to finish an overnight batch, few enough to leave live traffic its share.
pub const DEFAULT_BATCH_CONCURRENCY: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub struct GeneralSettings {
    pub master_key: Option<SourcedSecret>,
    pub max_request_body_bytes: usize,
    pub health_check_interval: Duration,
    pub background_health_checks: bool,
    pub drop_params: bool,
    pub request_timeout: Option<Duration>,
    /// `database_url` or DATABASE_URL: the ledger goes to PostgreSQL.
    pub database_url: Option<SourcedSecret>,
    /// `maximum_spend_logs_retention_period`.
    pub spend_logs_retention: Option<Duration>,
    /// `disable_spend_logs: true`: no ledger rows are written.
    pub disable_spend_logs: bool,
    /// `upstream_http2: true`: HTTP/2 is offered (ALPN) to https upstreams; HTTP/1.1 otherwise.
    pub upstream_http2: bool,
    /// `batch_concurrency`: batch items this process runs at once.
    pub batch_concurrency: usize,
    /// What one client may hold of the listener; read when the gateway starts.
    pub listener: ListenerLimits,
    /// Redis for counters shared by replicas (`router_settings.redis_*` or REDIS_*).
    pub redis: Option<RedisConfig>,
    /// `general_settings.fail_closed`: refuse rather than serve on what one replica knows
    /// while a shared store is away (Redis counters, the key database).
    pub fail_closed: bool,
    /// `litellm_settings.cache`: the response cache, when on.
    pub cache: Option<super::response_cache::CacheConfig>,
    /// OpenTelemetry traces (`litellm_settings.callbacks: ["otel"]`).
    pub otel: Option<OtelConfig>,
    /// `require_auth_for_metrics_endpoint: true`: `/metrics` asks for the master key.
    pub metrics_auth: bool,
    /// Request metrics are recorded (`disable_metrics: true` turns them and `/metrics` off).
    pub metrics: bool,
    /// A client that speaks its deployment's dialect has its body and answer relayed rather
    /// than translated (`fastpath`); `disable_same_dialect_relay: true` translates every
    /// request, to compare the two.
    pub same_dialect_relay: bool,
    /// `litellm_settings.enable_end_user_cost_tracking_prometheus_only: true`: metrics carry
    /// the end user; otherwise that label is empty, so end users cannot grow the series.
    pub metrics_end_user: bool,
    /// `max_parallel_requests`: the requests in flight a virtual key without its own
    /// `max_parallel_requests` may have (LiteLLM's default for keys).
    pub key_max_parallel: Option<u64>,
    /// `global_max_parallel_requests` and its wait queue: model requests the whole gateway
    /// serves at once.
    pub shedding: Shedding,
}

/// How many model requests the gateway serves at once, and how long one beyond that waits
/// for a slot before it is refused (LIM-04).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shedding {
    /// `global_max_parallel_requests`; `None` (or 0): no cap.
    pub max_parallel: Option<usize>,
    /// `max_queue_wait_seconds`: how long a request beyond the cap waits.
    pub max_wait: Duration,
    /// `max_queued_requests`: requests waiting at once; more are refused at once.
    pub max_queued: usize,
}

impl Default for Shedding {
    fn default() -> Self {
        Self { max_parallel: None, max_wait: Duration::from_secs(5), max_queued: 100 }
    }
}

/// Bounds on what clients may hold of the listener, so a slow or hostile client cannot
/// exhaust the gateway's sockets or memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// `max_connections`: open client connections; one more is answered 503 (GW-14).
    pub max_connections: usize,
    /// `header_read_timeout`: a request's headers must arrive within this, counted from
    /// their first byte.
    pub header_read_timeout: Duration,
    /// `keepalive_timeout`: how long a connection may sit idle (no request in flight, no
    /// byte of the next one) before the gateway closes it.
    pub keepalive_timeout: Duration,
    /// `max_request_headers`: header lines in one request (431 beyond).
    pub max_headers: usize,
    /// `max_request_header_size_kb`: the request line and headers together (431 beyond).
    pub max_header_bytes: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(30),
            // Longer than the idle timeout of the load balancers put in front (AWS ALB: 60 s),
            // so one never reuses a connection the gateway has just closed; nginx's default.
            keepalive_timeout: Duration::from_secs(75),
            max_headers: 100,
            max_header_bytes: 64 * 1024,
        }
    }
}

/// Where and how spans are exported, from the standard OTEL_* variables.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelConfig {
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as written, else OTEL_EXPORTER_OTLP_ENDPOINT with
    /// `/v1/traces`, else `http://localhost:4318/v1/traces`.
    pub traces_url: String,
    /// OTEL_EXPORTER_OTLP_HEADERS (`k=v,k2=v2`, values percent-decoded): often credentials.
    pub headers: Vec<(String, Secret)>,
    /// OTEL_SERVICE_NAME, default `switchyard`.
    pub service_name: String,
    /// OTEL_BSP_MAX_QUEUE_SIZE (2048): spans waiting for export; more are dropped.
    pub queue_size: usize,
    /// OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512).
    pub max_batch: usize,
    /// OTEL_BSP_SCHEDULE_DELAY in ms (1000): how long a batch waits to fill.
    pub batch_delay: Duration,
    /// OTEL_EXPORTER_OTLP_TRACES_TIMEOUT / OTEL_EXPORTER_OTLP_TIMEOUT in ms (10000).
    pub export_timeout: Duration,
    /// OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (`parentbased_always_on`).
    pub sampler: Sampler,
}

/// Which requests are traced: a share of the new traces (by trace id, as `traceidratio`
/// decides it), and, when `parent_based`, a client's trace as the client sampled it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampler {
    pub ratio: f64,
    pub parent_based: bool,
}

impl Default for Sampler {
    fn default() -> Self {
        Self { ratio: 1.0, parent_based: true }
    }
}

/// Where budgets and rate limits are counted when replicas share them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`.
    pub url: Secret,
    /// `host:port`, for messages and `/health` (never the password).
    pub place: String,
    /// Prefix of every key (`general_settings.redis_key_prefix`, default `switchyard:`).
    pub prefix: String,
    /// `general_settings.fail_closed`: refuse requests while Redis is unreachable.
    pub fail_closed: bool,
}

impl Default for GeneralSettings {
    fn default() -> Self {
        Self {
            master_key: None,
            max_request_body_bytes: 32 * 1024 * 1024,
            health_check_interval: Duration::from_secs(60),
            background_health_checks: false,
            drop_params: false,
            request_timeout: None,
            database_url: None,
            spend_logs_retention: None,
            disable_spend_logs: false,
            upstream_http2: false,
            batch_concurrency: DEFAULT_BATCH_CONCURRENCY,
            listener: ListenerLimits::default(),
            redis: None,
            fail_closed: false,
            cache: None,
            otel: None,
            metrics_auth: false,
            metrics: true,
            same_dialect_relay: true,
            metrics_end_user: false,
            key_max_parallel: None,
            shedding: Shedding::default(),
        }
    }
}

/// A config problem that does not stop the gateway (CFG-06 and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Catalog id: `CFG-06` for ignored keys, `NET-02` for `ssl_verify: false`, ...
    pub id: &'static str,
    /// Dotted key path, e.g. `litellm_settings.success_callback`.
    pub key: String,
    pub location: Option<Location>,
    pub message: String,
}

/// How the config file was chosen, for "using config X (from $SWITCHYARD_CONFIG)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    Flag,
    EnvVar(&'static str),
    SearchPath,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    pub origin: ConfigOrigin,
    pub env_files: Vec<PathBuf>,
    /// The files `include` merged in, in order.
    pub included: Vec<PathBuf>,
    /// Groups in config order; aliases are unique.
    pub groups: Vec<ModelGroup>,
    pub router: RouterSettings,
    pub general: GeneralSettings,
    pub budgets: Budgets,
    pub warnings: Vec<ConfigWarning>,
}

impl Config {
    pub fn group(&self, alias: &str) -> Option<&ModelGroup> {
        self.groups.iter().find(|g| g.name == alias)
    }

    pub fn deployments(&self) -> impl Iterator<Item = &Arc<Deployment>> {
        self.groups.iter().flat_map(|g| g.deployments.iter())
    }

    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.name.as_str())
    }
}
