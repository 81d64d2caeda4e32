//! The one writer: takes rows from the bounded queue, writes them in batches (woken when
//! [`BATCH`] rows wait, else every [`TICK`]; a batch is whatever waits by then), and when the store fails spools the batch to disk,
//! backs off, and replays the spool once the store answers again. Retention runs here too,
//! between batches.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::record::Record;
use super::spool::Spool;
use super::store::{Store, StoreError};
use super::{Rows, Shared};

pub const BATCH: usize = 500;
pub const TICK: Duration = Duration::from_millis(200);
/// One statement may take this long before the store counts as unreachable.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
const RETENTION_BATCH: u32 = 1000;
/// The first cleanup, soon after start (then every [`RETENTION_EVERY`]).
const RETENTION_FIRST: Duration = Duration::from_secs(2);

pub enum Msg {
    /// Write everything queued so far (to the store, else the spool), then answer.
    Flush(oneshot::Sender<()>),
}

pub struct Writer {
    pub store: Box<dyn Store>,
    pub spool: Arc<Spool>,
    pub shared: Arc<Shared>,
    pub retention: Option<Duration>,
    prepared: bool,
    /// While degraded: no store attempt before this instant.
    retry_at: Option<Instant>,
    backoff: Duration,
    next_retention: Instant,
}

impl Writer {
    pub fn new(
        store: Box<dyn Store>,
        spool: Arc<Spool>,
        shared: Arc<Shared>,
        retention: Option<Duration>,
    ) -> Self {
        Self {
            store,
            spool,
            shared,
            retention,
            prepared: false,
            retry_at: None,
            backoff: BACKOFF_MIN,
            next_retention: Instant::now() + RETENTION_FIRST,
        }
    }

    pub async fn run(mut self, rows: Arc<Rows>, mut rx: mpsc::Receiver<Msg>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A spool left by an earlier run is replayed as soon as the store answers.
        self.flush(&mut Vec::new(), false).await;
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Flush(done)) => {
                        // Rows recorded before the flush request are in the queue now.
                        self.flush(&mut rows.take(), true).await;
                        let _ = done.send(());
                    }
                    None => {
                        self.flush(&mut rows.take(), true).await;
                        return;
                    }
                },
                () = rows.full.notified() => self.flush(&mut rows.take(), false).await,
                _ = tick.tick() => {
                    self.flush(&mut rows.take(), false).await;
                    self.retain().await;
                }
            }
        }
    }

    /// Writes `batch` (and the spool first, if it holds rows) to the store; on failure the
    /// batch goes to the spool. `no_wait`: someone waits for this flush (a stop, a test), so
    /// a degraded store is not tried again before its backoff ends: the rows are spooled.
    async fn flush(&mut self, batch: &mut Vec<Record>, no_wait: bool) {
        if batch.is_empty() && self.spool.rows() == 0 {
            return;
        }
        let waiting = self.retry_at.is_some_and(|at| Instant::now() < at);
        if waiting || (no_wait && self.retry_at.is_some()) {
            self.spool(batch).await;
            return;
        }
        match self.write(batch).await {
            Ok(()) => {
                batch.clear();
                if self.retry_at.take().is_some() {
                    tracing::info!(
                        backend = self.store.backend(),
                        "ledger: the database is back; spooled rows replayed"
                    );
                }
                self.backoff = BACKOFF_MIN;
                self.shared.set_ok();
            }
            Err(err) => {
                if self.retry_at.is_none() {
                    tracing::warn!(backend = self.store.backend(), error = %err, spool = %self.spool.path().display(), "ledger: cannot write to the database; rows go to the spool until it is back");
                }
                self.shared.set_degraded(err.0);
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                self.spool(batch).await;
            }
        }
    }

    async fn write(&mut self, batch: &[Record]) -> Result<(), StoreError> {
        if !self.prepared {
            timed(self.store.prepare()).await?;
            self.prepared = true;
        }
        if self.spool.rows() > 0 {
            self.replay().await?;
        }
        if !batch.is_empty() {
            timed(self.store.insert(batch)).await?;
            self.shared.written(batch.len());
        }
        Ok(())
    }

    async fn replay(&mut self) -> Result<(), StoreError> {
        let spool = self.spool.clone();
        let Some(mut replay) = blocking(move || spool.take()).await? else { return Ok(()) };
        let mut replayed = 0usize;
        loop {
            let (back, rows) = blocking(move || {
                let rows = replay.next_batch(BATCH);
                rows.map(|rows| (replay, rows))
            })
            .await?;
            replay = back;
            if rows.is_empty() {
                break;
            }
            timed(self.store.insert(&rows)).await?;
            replayed += rows.len();
        }
        let spool = self.spool.clone();
        blocking(move || spool.done(replay)).await?;
        if replayed > 0 {
            tracing::info!(rows = replayed, "ledger: spool replayed");
        }
        Ok(())
    }

    async fn spool(&mut self, batch: &mut Vec<Record>) {
        if batch.is_empty() {
            return;
        }
        let rows = std::mem::take(batch);
        let spool = self.spool.clone();
        let result = tokio::task::spawn_blocking(move || spool.append(&rows, true)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::error!(%err, spool = %self.spool.path().display(), "ledger: cannot write the spool; rows lost")
            }
            Err(err) => tracing::error!(%err, "ledger: the spool write did not finish"),
        }
    }

    /// Deletes rows older than the retention period, a batch at a time, when it is due.
    async fn retain(&mut self) {
        let Some(keep) = self.retention else { return };
        if Instant::now() < self.next_retention || self.retry_at.is_some() || !self.prepared {
            return;
        }
        self.next_retention = Instant::now() + RETENTION_EVERY;
        let Ok(keep) = chrono::Duration::from_std(keep) else { return };
        let before = chrono::Utc::now() - keep;
        let mut deleted = 0u64;
        loop {
            match timed(self.store.delete_before(before, RETENTION_BATCH)).await {
                Ok(n) => {
                    deleted += n;
                    if n < u64::from(RETENTION_BATCH) {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "ledger: retention cleanup failed; retrying later");
                    break;
                }
            }
            tokio::task::yield_now().await;
        }
        if deleted > 0 {
            tracing::info!(rows = deleted, "ledger: removed rows older than the retention period");
        }
    }
}

async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, f).await {
        Ok(result) => result,
        Err(_) => Err(StoreError(format!(
            "the database did not answer within {} s",
            STATEMENT_TIMEOUT.as_secs()
        ))),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(err)) => Err(StoreError(format!("spool: {err}"))),
        Err(err) => Err(StoreError(format!("spool: {err}"))),
    }
}
