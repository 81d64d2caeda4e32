//! What every request handler can reach: the current runtime (config + precompiled
//! router), swapped atomically on reload, and process facts for health endpoints.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;

use super::reload::Reloader;
use crate::config::Config;
use crate::keys::Keys;
use crate::ledger::Ledger;
use crate::limits::Limits;
use crate::router::Router;
use crate::secret::Secret;

/// Everything derived from one config load. Immutable: a reload builds a new one, and
/// in-flight requests finish on the one they started with.
pub struct Runtime {
    pub config: Arc<Config>,
    pub router: Router,
    pub master_key: Option<Secret>,
    pub max_body_bytes: usize,
    /// The response cache (`litellm_settings.cache`), kept across reloads that leave its
    /// settings alone.
    pub cache: Option<Arc<crate::cache::Cache>>,
    /// The span exporter when `otel` is among the callbacks.
    pub tracer: Option<crate::telemetry::Tracer>,
    /// `global_max_parallel_requests`: the slots model requests take (none: no cap).
    pub gate: Option<super::shedding::Gate>,
}

impl Runtime {
    pub fn new(config: Config) -> Self {
        let limits = Limits::for_config(&config);
        Self::with_limits(config, limits)
    }

    /// A runtime admitting requests through `limits` (tests pass an engine on a manual
    /// clock, or one sharing a Redis prefix with another gateway).
    pub fn with_limits(config: Config, limits: Arc<Limits>) -> Self {
        let shared = crate::router::SharedCooldowns::for_config(&config);
        let router = Router::new(&config).with_limits(limits).with_shared_cooldowns(shared);
        let tracer = config.general.otel.as_ref().and_then(crate::telemetry::Tracer::start);
        Self::with_router(config, router, tracer)
    }

    /// The runtime for a reloaded config: deployments whose configuration did not change
    /// keep their live state (cooldowns, latency, usage) from `previous`, and the limits
    /// keep their counters, and cooldowns stay shared on the same connection, unless the
    /// Redis settings changed.
    pub fn reloaded(config: Config, previous: &Runtime) -> Self {
        let limits = if config.general.redis == previous.config.general.redis {
            previous.router.limits().clone()
        } else {
            Limits::for_config(&config)
        };
        let same_cache = config.general.cache == previous.config.general.cache;
        let shared =
            crate::router::SharedCooldowns::reloaded(&config, previous.router.shared_cooldowns());
        let router = Router::reloaded(&config, &previous.router)
            .with_limits(limits)
            .with_shared_cooldowns(shared);
        // The exporter (and its queue) carries over while its settings do not change.
        let tracer = match (&config.general.otel, &previous.tracer) {
            (Some(otel), Some(tracer)) if tracer.is_for(otel) => Some(tracer.clone()),
            (Some(otel), _) => crate::telemetry::Tracer::start(otel),
            (None, _) => None,
        };
        let mut runtime = Self::with_router(config, router, tracer);
        if same_cache {
            runtime.cache.clone_from(&previous.cache);
        }
        runtime.gate = super::shedding::Gate::for_settings(
            &runtime.config.general.shedding,
            previous.gate.as_ref(),
        );
        runtime
    }

    fn with_router(
        config: Config,
        router: Router,
        tracer: Option<crate::telemetry::Tracer>,
    ) -> Self {
        let master_key = config.general.master_key.as_ref().map(|k| k.value.clone());
        let max_body_bytes = config.general.max_request_body_bytes;
        let cache = crate::cache::Cache::for_config(&config);
        let gate = super::shedding::Gate::for_settings(&config.general.shedding, None);
        Self { config: Arc::new(config), router, master_key, max_body_bytes, cache, tracer, gate }
    }
}

pub struct AppState {
    runtime: ArcSwap<Runtime>,
    pub started: Instant,
    /// Set when the gateway was started from a config file it can reload.
    reloader: OnceLock<Arc<Reloader>>,
    /// The last live probe of each deployment, for `/health`.
    pub health: super::health::Probes,
    /// The spend ledger: one for the process, kept across reloads.
    ledger: OnceLock<Ledger>,
    /// Virtual keys, teams, users and end users: one for the process, kept across reloads.
    keys: OnceLock<Keys>,
    /// Stored Responses (`previous_response_id`): one for the process, kept across
    /// reloads, on the Redis the first config names.
    pub responses: crate::response_store::ResponseStore,
    /// Set at the first SIGTERM: readiness answers 503 from then on.
    draining: std::sync::atomic::AtomicBool,
    /// Files and batches: one store for the process, kept across reloads.
    batches: OnceLock<crate::batches::Batches>,
}

impl AppState {
    pub fn new(runtime: Runtime) -> Arc<Self> {
        let responses = crate::response_store::ResponseStore::for_config(&runtime.config);
        Arc::new(Self {
            responses,
            runtime: ArcSwap::from_pointee(runtime),
            started: Instant::now(),
            reloader: OnceLock::new(),
            health: super::health::Probes::default(),
            ledger: OnceLock::new(),
            keys: OnceLock::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
            batches: OnceLock::new(),
        })
    }

    /// The runtime to serve one request with; hold it for the whole request.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    pub fn replace(&self, runtime: Runtime) {
        self.runtime.store(Arc::new(runtime));
    }

    /// The gateway is stopping: load balancers should send no new requests.
    pub fn start_draining(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Attaches the reloader (once; a second one is ignored).
    pub fn set_reloader(&self, reloader: Arc<Reloader>) {
        let _ = self.reloader.set(reloader);
    }

    pub fn reloader(&self) -> Option<&Arc<Reloader>> {
        self.reloader.get()
    }

    /// Attaches the ledger (once; a second one is ignored). Without one, nothing is
    /// recorded.
    pub fn set_ledger(&self, ledger: Ledger) {
        let _ = self.ledger.set(ledger);
    }

    pub fn ledger(&self) -> Option<&Ledger> {
        self.ledger.get()
    }

    /// Attaches the key store (once; a second one is ignored). Without one, only the master
    /// key authenticates and the management routes answer KEY-08.
    pub fn set_keys(&self, keys: Keys) {
        let _ = self.keys.set(keys);
    }

    pub fn keys(&self) -> Option<&Keys> {
        self.keys.get()
    }

    /// Attaches the batch store (once; a second one is ignored). Without one, the files and
    /// batches routes answer BAT-05.
    pub fn set_batches(&self, batches: crate::batches::Batches) {
        let _ = self.batches.set(batches);
    }

    pub fn batches(&self) -> Option<&crate::batches::Batches> {
        self.batches.get()
    }
}
