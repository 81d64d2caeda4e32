//! Virtual keys, teams, users and end users: LiteLLM's team layer, in memory.
//!
//! The whole set is loaded at start into an immutable [`Snapshot`] (hash maps keyed by the key's
//! sha256 hex, the team id, the user id) behind an `ArcSwap`: a request's lookup is one atomic
//! load and one hash lookup, never a database query. A background poller reads a cheap
//! fingerprint of the tables every [`POLL`] and reloads the set when it changed, so a key
//! created, changed, blocked or deleted on another replica is seen here within a second. Writes
//! through this replica ([`admin`]) go to the store and then reload at once.
//!
//! When the store cannot be read, the last snapshot keeps serving and [`Keys::status`] says
//! since when and why (`/health`, `switchyard status`).
//!
//! **Invariant:** nothing on the request path waits on a database; a key is never stored or
//! logged in plaintext (its sha256 hex is the token, `key_name` shows `sk-...` and 4 chars).

pub mod access;
pub mod admin;
pub mod duration;
pub mod limits;
pub mod postgres;
pub mod record;
pub mod sqlite;
pub mod store;
pub mod table;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde::Serialize;
use serde_json::Value;

pub use access::{Identity, Refusal};
pub use limits::caller_limits;
pub use record::{BudgetRecord, EndUserRecord, KeyRecord, TeamRecord, UserRecord};
pub use store::{Change, Store, StoreError};
use table::Table;

use crate::secret::Secret;

/// How often the store's fingerprint is read.
pub const POLL: Duration = Duration::from_millis(250);

/// How long the start waits for the first load.
const START_WAIT: Duration = Duration::from_secs(5);

/// Where the keys live.
#[derive(Debug, Clone)]
pub struct Settings {
    /// PostgreSQL when set (`general_settings.database_url` or `DATABASE_URL`), as the ledger.
    pub database_url: Option<Secret>,
    /// The state directory: `keys.sqlite3` without a database URL.
    pub state_dir: PathBuf,
}

/// Every key, team, user, end user and budget, as loaded at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub keys: HashMap<String, Arc<KeyRecord>>,
    pub teams: HashMap<String, Arc<TeamRecord>>,
    pub users: HashMap<String, Arc<UserRecord>>,
    pub end_users: HashMap<String, Arc<EndUserRecord>>,
    pub budgets: HashMap<String, Arc<BudgetRecord>>,
    /// Each key's own limits (its, its team's and user's, its budget row's), built once per
    /// load: a request takes them as they are instead of rebuilding them from the records.
    pub limits: HashMap<String, Arc<crate::limits::Caller>>,
}

impl Snapshot {
    fn from_rows(mut rows: store::Rows) -> Self {
        fn map<T: serde::de::DeserializeOwned>(
            rows: Vec<Value>,
            id: impl Fn(&T) -> String,
            table: Table,
        ) -> HashMap<String, Arc<T>> {
            rows.into_iter()
                .filter_map(|row| match serde_json::from_value::<T>(row) {
                    Ok(r) => Some((id(&r), Arc::new(r))),
                    Err(err) => {
                        tracing::warn!(table = table.name(), %err, "keys: a row that cannot be read was skipped");
                        None
                    }
                })
                .collect()
        }
        let mut take = |t: Table| rows.remove(&t).unwrap_or_default();
        let mut snapshot = Self {
            keys: map(take(Table::Keys), |k: &KeyRecord| k.token.clone(), Table::Keys),
            teams: map(take(Table::Teams), |t: &TeamRecord| t.team_id.clone(), Table::Teams),
            users: map(take(Table::Users), |u: &UserRecord| u.user_id.clone(), Table::Users),
            end_users: map(
                take(Table::EndUsers),
                |u: &EndUserRecord| u.user_id.clone(),
                Table::EndUsers,
            ),
            budgets: map(
                take(Table::Budgets),
                |b: &BudgetRecord| b.budget_id.clone(),
                Table::Budgets,
            ),
            limits: HashMap::new(),
        };
        snapshot.limits = snapshot
            .keys
            .values()
            .map(|key| {
                let identity = access::records(&snapshot, key);
                (key.token.clone(), Arc::new(limits::own_limits(&identity)))
            })
            .collect();
        snapshot
    }
}

/// The key layer's health, for `/health` and `status`. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    pub location: String,
    /// `ok`, `loading` (not read yet) or `degraded` (serving the last snapshot).
    pub state: &'static str,
    /// Unix seconds of the last change of state.
    pub since: u64,
    pub error: Option<String>,
    pub keys: usize,
    pub teams: usize,
    pub users: usize,
    pub end_users: usize,
    /// Unix seconds of the last successful load.
    pub loaded_at: Option<u64>,
}

struct State {
    state: &'static str,
    since: SystemTime,
    error: Option<String>,
    loaded_at: Option<SystemTime>,
}

/// The process's key layer. Cheap to clone.
#[derive(Clone)]
pub struct Keys {
    inner: Arc<Inner>,
}

struct Inner {
    store: Box<dyn Store>,
    snapshot: ArcSwap<Snapshot>,
    state: Mutex<State>,
    /// Serialises load-and-swap, so an older load never replaces a newer one; holds the
    /// fingerprint the current snapshot was loaded at.
    reload: tokio::sync::Mutex<Option<String>>,
    /// The store cannot be read (what `state` says, readable without its lock on the
    /// request path).
    stale: std::sync::atomic::AtomicBool,
    /// Presented keys already hashed, by the key as presented: a known key is hashed once,
    /// not on every request (sha256 was a fortieth of a request's instructions). Only keys
    /// the snapshot knows enter it, so it holds at most the keys there are (and those
    /// deleted since, until it is emptied at [`TOKENS`]); it lives in memory only, as the
    /// request's own headers do, and is never shown.
    tokens: std::sync::RwLock<HashMap<Box<str>, Token, foldhash::fast::RandomState>>,
}

/// A key's sha256 hex.
type Token = [u8; 64];

/// Entries the presented-key cache holds at most before it is emptied.
const TOKENS: usize = 100_000;

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Keys {
    /// The store named by `settings` (nothing is contacted here).
    pub fn open(settings: &Settings) -> Result<Self, String> {
        let store: Box<dyn Store> = match &settings.database_url {
            Some(url) => Box::new(
                postgres::Postgres::new(url.expose())
                    .map_err(|e| format!("database_url is not a usable PostgreSQL URL: {e}"))?,
            ),
            None => {
                std::fs::create_dir_all(&settings.state_dir).map_err(|e| {
                    format!(
                        "cannot create the state directory {}: {e}",
                        settings.state_dir.display()
                    )
                })?;
                Box::new(
                    sqlite::Sqlite::new(&settings.state_dir.join("keys.sqlite3"))
                        .map_err(|e| format!("keys.sqlite3: {e}"))?,
                )
            }
        };
        Ok(Self::with_store(store))
    }

    pub fn with_store(store: Box<dyn Store>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                snapshot: ArcSwap::from_pointee(Snapshot::default()),
                state: Mutex::new(State {
                    state: "loading",
                    since: SystemTime::now(),
                    error: None,
                    loaded_at: None,
                }),
                reload: tokio::sync::Mutex::new(None),
                stale: std::sync::atomic::AtomicBool::new(false),
                tokens: std::sync::RwLock::default(),
            }),
        }
    }

    /// Loads the set once (an unreachable store leaves it empty and degraded) and starts the
    /// poller on the current tokio runtime; it stops when the last clone is dropped.
    pub async fn start(&self, every: Duration) {
        // Bounded: an unreachable database must not hold the gateway's start for long.
        match tokio::time::timeout(START_WAIT, self.reload()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(%err, "keys: the key store cannot be read; retrying in the background");
            }
            Err(_) => {
                self.degraded(&StoreError(format!(
                    "the key store did not answer within {} s",
                    START_WAIT.as_secs()
                )));
            }
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let keys = Keys { inner };
                if let Err(err) = keys.refresh().await {
                    tracing::debug!(%err, "keys: poll failed");
                }
            }
        });
    }

    /// The current snapshot: one atomic load, no lock, no allocation.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.inner.snapshot.load()
    }

    /// Reloads when the store's fingerprint changed since the last load.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let version = match self.inner.store.version().await {
            Ok(v) => v,
            Err(e) => {
                self.degraded(&e);
                return Err(e);
            }
        };
        let mut last = self.inner.reload.lock().await;
        if last.as_deref() == Some(version.as_str()) {
            self.ok();
            return Ok(());
        }
        self.load_locked(&mut last).await
    }

    /// Loads the whole set now and swaps it in.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let mut last = self.inner.reload.lock().await;
        self.load_locked(&mut last).await
    }

    async fn load_locked(&self, last: &mut Option<String>) -> Result<(), StoreError> {
        // The fingerprint first: a write between the two reads is then seen again next poll.
        let loaded = async {
            let version = self.inner.store.version().await?;
            let rows = self.inner.store.load().await?;
            Ok::<_, StoreError>((version, rows))
        }
        .await;
        match loaded {
            Ok((version, rows)) => {
                self.inner.snapshot.store(Arc::new(Snapshot::from_rows(rows)));
                *last = Some(version);
                let mut s = self.lock_state();
                s.loaded_at = Some(SystemTime::now());
                drop(s);
                self.ok();
                Ok(())
            }
            Err(e) => {
                self.degraded(&e);
                Err(e)
            }
        }
    }

    /// Writes `changes` in one transaction, then reloads so this replica sees them at once.
    pub async fn write(&self, changes: &[Change]) -> Result<(), StoreError> {
        if let Err(e) = self.inner.store.write(changes).await {
            self.degraded(&e);
            return Err(e);
        }
        self.reload().await
    }

    pub fn status(&self) -> Status {
        let s = self.lock_state();
        let snap = self.snapshot();
        Status {
            backend: self.inner.store.backend(),
            location: self.inner.store.location(),
            state: s.state,
            since: unix(s.since),
            error: s.error.clone(),
            keys: snap.keys.len(),
            teams: snap.teams.len(),
            users: snap.users.len(),
            end_users: snap.end_users.len(),
            loaded_at: s.loaded_at.map(unix),
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ok(&self) {
        let mut s = self.lock_state();
        if s.state != "ok" {
            if s.state == "degraded" {
                tracing::info!("keys: the key store answers again");
            }
            s.state = "ok";
            s.since = SystemTime::now();
            s.error = None;
        }
        self.inner.stale.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the keys served are the last snapshot of a store that no longer answers.
    pub fn is_stale(&self) -> bool {
        self.inner.stale.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn degraded(&self, e: &StoreError) {
        let mut s = self.lock_state();
        if s.state != "degraded" {
            tracing::warn!(error = %e, "keys: the key store cannot be read; serving the last snapshot");
            s.state = "degraded";
            s.since = SystemTime::now();
        }
        s.error = Some(e.to_string());
        self.inner.stale.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
