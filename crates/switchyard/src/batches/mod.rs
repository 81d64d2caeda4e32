//! Batches the gateway runs itself: OpenAI's Files and Batches APIs and Anthropic's Message
//! Batches, for any alias whatever provider serves it.
//!
//! A batch is stored with one item per request ([`store`]: PostgreSQL with `database_url`,
//! else `<state dir>/batches.sqlite3`); the [`runner`] claims queued items at a bounded
//! concurrency and runs each through the same path as a live request (the owner key's rules
//! and budgets, the router, a ledger row), writing each result as it completes. When no item
//! is left, the batch is finalized: OpenAI output and error files are written, Anthropic
//! results are rendered from the items ([`wire`]).
//!
//! **Invariant:** everything a batch is lives in the store, so a restart (or another
//! replica on the same PostgreSQL) carries on where the last process stopped: an item that
//! was running when its runner died is run again at most once, and its ledger row is written
//! once (its request id is the same on every run, and the row is kept with the item until
//! the ledger confirmed it).

pub mod forwarded;
pub mod input;
pub mod model;
pub mod runner;
pub mod store;
pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;

pub use model::{BatchRow, FileRow, Status, Surface};
pub use runner::{Execute, Handle, Runner};
pub use store::{Page, Store};
use tokio::sync::Notify;

use crate::ledger::StoreError;
use crate::secret::Secret;

/// Where batches live: the ledger's database when there is one.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: Option<Secret>,
    pub state_dir: PathBuf,
}

/// The process's batch store and the bell that wakes its runner. Cheap to clone.
#[derive(Clone)]
pub struct Batches {
    pub store: Arc<Store>,
    wake: Arc<Notify>,
}

impl Batches {
    /// Opens the store named by `settings` (nothing is contacted here).
    pub fn open(settings: &Settings) -> Result<Self, String> {
        let store = match &settings.database_url {
            Some(url) => Store::postgres(url.expose())
                .map_err(|e| format!("database_url is not a usable PostgreSQL URL: {e}"))?,
            None => {
                std::fs::create_dir_all(&settings.state_dir).map_err(|e| {
                    format!(
                        "cannot create the state directory {}: {e}",
                        settings.state_dir.display()
                    )
                })?;
                Store::sqlite(&settings.state_dir.join("batches.sqlite3"))
                    .map_err(|e| format!("batches.sqlite3: {e}"))?
            }
        };
        Ok(Self { store: Arc::new(store), wake: Arc::new(Notify::new()) })
    }

    /// Tells the runner there may be work (a batch was created).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn bell(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Cancels a batch (see [`Store::cancel`]) and ends it at once when nothing of it is
    /// running. Returns the batch as it is now.
    pub async fn cancel(&self, id: &str) -> Result<Option<BatchRow>, StoreError> {
        self.store.cancel(id, model::now()).await?;
        finalize_if_done(&self.store, id).await?;
        self.store.batch(id).await
    }
}

/// Ends the batch `id` when none of its items is queued or running: writes its output
/// files (OpenAI) and its final status in one transaction. Safe to call from anywhere,
/// any number of times: only the first call that finds it done changes anything.
pub async fn finalize_if_done(store: &Store, id: &str) -> Result<bool, StoreError> {
    let Some(b) = store.batch(id).await? else { return Ok(false) };
    // A forwarded batch ends when its upstream says so (`server/batch_forward`).
    if b.is_forwarded() {
        return Ok(false);
    }
    if !matches!(b.status, Status::InProgress | Status::Cancelling) || b.counts.processing() > 0 {
        return Ok(false);
    }
    let items = store.items(id).await?;
    let to = wire::final_status(b.status, &items);
    let now = model::now();
    let mut files = Vec::new();
    if b.surface == Surface::OpenAi {
        let (output, errors) = wire::openai_files(&b, &items);
        for (content, name) in [(output, "output"), (errors, "errors")] {
            let Some(content) = content else { continue };
            let file = FileRow {
                id: model::new_id("file-"),
                owner: b.owner.clone(),
                filename: format!("{}_{name}.jsonl", b.id),
                purpose: "batch_output".to_owned(),
                bytes: i64::try_from(content.len()).unwrap_or(i64::MAX),
                created_at: now,
            };
            files.push((file, content));
        }
    }
    store.finalize(id, b.status, to, &files, now).await
}
