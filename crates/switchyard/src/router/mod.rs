//! Turns the model name a client asked for into deployments to try and runs them:
//! strategy order within a group, failover to the group's other deployments, retries with
//! backoff, cooldowns, then fallback groups — recording every attempt.
//!
//! Precompiled from the config once per load (`Router::new`); per-deployment live state
//! survives nothing but the router itself. Nothing here parses config or wire formats, and
//! only the kind of an error (see `classify::kind`) decides what happens next.

mod report;
mod resolve;
mod run;
pub mod shared;
mod state;
mod strategy;
mod tags;
mod wildcard;

pub use report::unknown_model;
pub use shared::SharedCooldowns;
pub use state::{Cooldown, CooldownPolicy, DeploymentState, Failure};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::canonical::{ChatRequest, ChatResponse};
use crate::classify::{ApiError, UpstreamError};
use crate::config::{
    Config, CredentialSource, Deployment, EnvOrigin, FallbackMap, Location, RouterSettings,
    ValueSource,
};
use crate::cost::{self, Charged, Price};
use crate::embedding::{EmbeddingRequest, Embeddings};
use crate::fastpath::{Answer, AnswerStream, RawBody};
use crate::limits::{Caller, ConfigLimits, Limits, RateHeaders};
use crate::provider::{self, EventStream, Provider};

/// The whole-request budget when no `router_settings.timeout` or
/// `litellm_settings.request_timeout` is configured; it also bounds waiting for a cooldown.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(600);

/// One deployment ready to call.
#[derive(Clone)]
pub struct Target {
    pub deployment: Arc<Deployment>,
    pub provider: Arc<dyn Provider>,
    pub state: Arc<DeploymentState>,
    pub cooldown: CooldownPolicy,
    /// The deployment's effective price, resolved once per config load.
    pub price: Arc<Price>,
}

/// A failed attempt, as reported to the client in headers and error bodies.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub deployment: Arc<Deployment>,
    pub error: UpstreamError,
}

/// A successful answer and how it was obtained.
pub struct Served<T> {
    pub value: T,
    pub route: Route,
    /// What the answer cost: known now for a JSON answer, when the stream ends for a
    /// streamed one (the ledger awaits it), none for a token count.
    pub charge: Charged,
}

/// How an answer was obtained: for response headers and logs.
#[derive(Debug, Clone)]
pub struct Route {
    /// The deployment that served.
    pub deployment: Arc<Deployment>,
    /// The failures before it, in order.
    pub failed: Vec<Attempt>,
    /// Attempts beyond the first within a group (failovers included, as LiteLLM counts).
    pub retries: u32,
    /// Fallback groups tried after the requested one.
    pub fallbacks: u32,
    /// How long the serving attempt took to answer (a stream: to its first event).
    pub upstream: Duration,
    /// Deployments skipped for their own limits (`budget`, `rpm`, `tpm`, `parallel`).
    pub skipped: Vec<(String, &'static str)>,
    /// The tightest rate limits that applied, for `x-ratelimit-*`.
    pub rate: RateHeaders,
}

/// Builds the provider of a deployment a wildcard group made concrete for one name.
pub(crate) type ProviderFactory = Arc<dyn Fn(&Arc<Deployment>) -> Arc<dyn Provider> + Send + Sync>;

pub struct Router {
    groups: HashMap<String, Vec<Target>>,
    by_id: HashMap<String, Target>,
    aliases: Vec<String>,
    /// `model_group_alias`: name → group.
    group_aliases: HashMap<String, String>,
    /// Wildcard groups, most specific first (their targets are also in `groups`).
    patterns: Vec<wildcard::Pattern>,
    /// Providers for wildcard-made deployments; `None` in routers built with scripted
    /// providers, where the pattern deployment's own provider serves every name.
    factory: Option<ProviderFactory>,
    settings: RouterSettings,
    total_timeout: Duration,
    limits: Arc<Limits>,
    config_limits: Arc<ConfigLimits>,
    /// Cooldowns shared with other replicas through Redis, when they are.
    shared: Option<Arc<SharedCooldowns>>,
}

/// Whether a reloaded deployment is the same as before. Where it is written does not count:
/// a line added above an entry moves it without changing what it calls.
pub fn unchanged(old: &Deployment, new: &Deployment) -> bool {
    old == new || positionless(old) == positionless(new)
}

fn positionless(d: &Deployment) -> Deployment {
    fn source(s: &mut ValueSource) {
        match s {
            ValueSource::Literal(at) => *at = Location::default(),
            ValueSource::ConfigEnvRef { origin, at, .. } => {
                *at = Location::default();
                origin_line(origin);
            }
            ValueSource::Env { origin, .. } => origin_line(origin),
        }
    }
    fn origin_line(o: &mut EnvOrigin) {
        match o {
            EnvOrigin::File { line, .. } | EnvOrigin::ConfigFile { line, .. } => *line = 0,
            EnvOrigin::Process => {}
        }
    }
    let mut d = d.clone();
    d.location = Location::default();
    let aws = &mut d.aws;
    for secret in [
        &mut d.api_key,
        &mut aws.access_key_id,
        &mut aws.secret_access_key,
        &mut aws.session_token,
        &mut aws.web_identity_token,
    ]
    .into_iter()
    .flatten()
    {
        source(&mut secret.source);
    }
    if let Some(s) = &mut aws.region_source {
        source(s);
    }
    match &mut d.credentials {
        CredentialSource::ApiKey(s)
        | CredentialSource::BedrockApiKey(s)
        | CredentialSource::AwsKeys(s)
        | CredentialSource::AwsProfile { source: s, .. } => source(s),
        CredentialSource::Mock
        | CredentialSource::AwsDefaultChain
        | CredentialSource::NoneNeeded
        | CredentialSource::Missing { .. } => {}
    }
    d
}

impl Router {
    pub fn new(config: &Config) -> Self {
        let upstreams = Arc::new(provider::Upstreams::new(config));
        let mut router = Self::with_providers(config, |d| provider::for_deployment(d, &upstreams));
        router.factory = Some(Arc::new(move |d| provider::for_deployment(d, &upstreams)));
        router
    }

    /// A router for a reloaded config that keeps the live state (cooldowns, latency,
    /// usage, last failure) of every deployment whose configuration did not change.
    pub fn reloaded(config: &Config, previous: &Router) -> Self {
        let mut next = Self::new(config);
        next.keep_state_from(previous);
        next
    }

    fn keep_state_from(&mut self, previous: &Router) {
        for targets in self.groups.values_mut() {
            for t in targets.iter_mut() {
                if let Some(old) = previous.by_id.get(&t.deployment.id)
                    && unchanged(&old.deployment, &t.deployment)
                {
                    t.state = old.state.clone();
                }
            }
        }
        for t in self.by_id.values_mut() {
            if let Some(old) = previous.by_id.get(&t.deployment.id)
                && unchanged(&old.deployment, &t.deployment)
            {
                t.state = old.state.clone();
            }
        }
        for p in &mut self.patterns {
            if let Some(targets) = self.groups.get(&p.name) {
                *p = wildcard::Pattern::new(p.name.clone(), targets.clone());
            }
        }
    }

    /// A router whose deployments are served by `make` — for tests that script failures
    /// without any network.
    pub fn with_providers(
        config: &Config,
        mut make: impl FnMut(&Arc<Deployment>) -> Arc<dyn Provider>,
    ) -> Self {
        let settings = config.router.clone();
        let mut groups = HashMap::new();
        let mut by_id = HashMap::new();
        for group in &config.groups {
            let targets: Vec<Target> = group
                .deployments
                .iter()
                .map(|d| Target {
                    deployment: d.clone(),
                    provider: make(d),
                    state: Arc::new(DeploymentState::new()),
                    cooldown: CooldownPolicy {
                        allowed_fails: settings.allowed_fails,
                        cooldown_time: d.cooldown_time.unwrap_or(settings.cooldown_time),
                        disabled: settings.disable_cooldowns,
                    },
                    price: Arc::new(cost::resolve(d)),
                })
                .collect();
            for t in &targets {
                by_id.insert(t.deployment.id.clone(), t.clone());
            }
            groups.insert(group.name.clone(), targets);
        }
        let total_timeout =
            settings.timeout.or(config.general.request_timeout).unwrap_or(DEFAULT_TOTAL_TIMEOUT);
        let mut patterns: Vec<wildcard::Pattern> = config
            .aliases()
            .filter(|name| name.contains('*'))
            .filter_map(|name| {
                let targets: &Vec<Target> = groups.get(name)?;
                Some(wildcard::Pattern::new(name.to_owned(), targets.clone()))
            })
            .collect();
        wildcard::sort(&mut patterns);
        let group_aliases =
            settings.model_group_alias.iter().map(|(k, v)| (k.clone(), v.model.clone())).collect();
        Self {
            groups,
            by_id,
            group_aliases,
            patterns,
            factory: None,
            aliases: config.aliases().map(str::to_owned).collect(),
            settings,
            total_timeout,
            limits: Limits::in_process(),
            config_limits: Arc::new(ConfigLimits::new(config)),
            shared: None,
        }
    }

    /// The same router sharing its cooldowns through `shared` (one per process, kept across
    /// reloads), or keeping them to itself with `None`. Deployment state outlives a router
    /// on reload, so this always says which way the state announces.
    #[must_use]
    pub fn with_shared_cooldowns(mut self, shared: Option<Arc<SharedCooldowns>>) -> Self {
        match &shared {
            Some(s) => s.attach(self.groups.values().flatten()),
            None => {
                for t in self.groups.values().flatten() {
                    t.state.share_through(None);
                }
            }
        }
        self.shared = shared;
        self
    }

    /// The sharing of cooldowns with other replicas, when on.
    pub fn shared_cooldowns(&self) -> Option<&Arc<SharedCooldowns>> {
        self.shared.as_ref()
    }

    /// The same router admitting requests through `limits` (one engine per process, kept
    /// across reloads; in process by default).
    #[must_use]
    pub fn with_limits(mut self, limits: Arc<Limits>) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    pub fn config_limits(&self) -> &ConfigLimits {
        &self.config_limits
    }

    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }

    /// Every deployment in config order with its live state.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.aliases.iter().filter_map(|a| self.groups.get(a)).flatten()
    }

    pub fn settings(&self) -> &RouterSettings {
        &self.settings
    }

    pub async fn send(&self, req: &ChatRequest) -> Result<Served<ChatResponse>, ApiError> {
        self.send_as(req, &Caller::default()).await
    }

    /// [`Router::send`] admitted against the caller's limits too (a virtual key's, a
    /// customer's).
    pub async fn send_as(
        &self,
        req: &ChatRequest,
        caller: &Caller,
    ) -> Result<Served<ChatResponse>, ApiError> {
        run::execute(self, &run::SendCall, req, caller).await
    }

    /// A streamed answer, committed to one deployment once its first event arrived. The
    /// stream keeps that deployment's in-flight count and records a failure after the
    /// commit point in its state.
    pub async fn stream(&self, req: &ChatRequest) -> Result<Served<EventStream>, ApiError> {
        self.stream_as(req, &Caller::default()).await
    }

    pub async fn stream_as(
        &self,
        req: &ChatRequest,
        caller: &Caller,
    ) -> Result<Served<EventStream>, ApiError> {
        run::execute(self, &run::StreamCall, req, caller).await
    }

    /// One complete answer on the same-dialect fast path (`fastpath`): `raw` is the body
    /// `req` was decoded from, relayed by a deployment that speaks its dialect.
    pub async fn relay_as(
        &self,
        req: &ChatRequest,
        raw: &RawBody,
        caller: &Caller,
    ) -> Result<Served<Answer>, ApiError> {
        run::execute(self, &run::RelayCall(raw), req, caller).await
    }

    /// A streamed answer on the same-dialect fast path, as [`Router::stream_as`].
    pub async fn relay_stream_as(
        &self,
        req: &ChatRequest,
        raw: &RawBody,
        caller: &Caller,
    ) -> Result<Served<AnswerStream>, ApiError> {
        run::execute(self, &run::RelayStreamCall(raw), req, caller).await
    }

    /// Input tokens `req` would use, counted by the first deployment of its plan that can
    /// count them. Counting serves nothing, so deployment state is left alone.
    pub async fn count_tokens(&self, req: &ChatRequest) -> Result<Served<u64>, ApiError> {
        run::execute(self, &run::CountCall, req, &Caller::default()).await
    }

    /// Embeddings for `req`, routed like a chat request by its `routing` view (failover,
    /// retries, cooldowns, fallbacks, the caller's limits) and charged for its input tokens.
    pub async fn embed_as(
        &self,
        req: &EmbeddingRequest,
        caller: &Caller,
    ) -> Result<Served<Embeddings>, ApiError> {
        run::execute(self, &run::EmbedCall(req), &req.routing, caller).await
    }

    /// Admits one request the router does not run (a pass-through call) at `target`, against
    /// the config's and the caller's limits, as an attempt there would be: the same rate
    /// limits counted, the same budgets checked with `req`'s maximum cost reserved.
    pub async fn admit_at(
        &self,
        req: &ChatRequest,
        caller: &Caller,
        target: &Target,
    ) -> Result<crate::limits::Reservation, ApiError> {
        run::admit(self, req, caller, target).await.map_err(|refusal| refusal.to_error())
    }

    fn fallback_map(&self, which: run::FallbackKind) -> &FallbackMap {
        match which {
            run::FallbackKind::General => &self.settings.fallbacks,
            run::FallbackKind::ContextWindow => &self.settings.context_window_fallbacks,
            run::FallbackKind::ContentPolicy => &self.settings.content_policy_fallbacks,
        }
    }
}
