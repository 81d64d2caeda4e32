//! The background task that runs batch items: it claims queued items (at most
//! `batch_concurrency` at once), runs each through an [`Execute`] (the server's request
//! path), stores each result as it completes, ends batches whose items have all finished,
//! and keeps the store honest across restarts.
//!
//! Restart safety. A claim carries this runner's id and a lease the runner renews every
//! [`HEARTBEAT`]; an item whose lease ran out ([`LEASE`], or at once on SQLite, where this
//! process is the only runner) belonged to a runner that died: it is queued again if it
//! ran once, and errored (BAT-02) if it ran twice, so no item runs more than twice. A result
//! is stored only while its runner still holds the claim. Each finished item keeps its
//! ledger row until the ledger confirmed it (queued rows flushed to the database or the
//! spool): rows a dead process left unconfirmed are recorded again, and the ledger ignores
//! a row whose request id it has (one id per item, the same on every run).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::model::{self, BatchRow, Claimed, Finished, ItemState, Surface};
use super::store::Orphan;
use super::{Batches, finalize_if_done};
use crate::classify::{ApiError, Diagnosis, ErrorKind};
use crate::ledger::{Ledger, Record};

/// How often a runner renews its claims and does its housekeeping.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// A claim not renewed for this long belongs to a runner that is gone.
pub const LEASE: Duration = Duration::from_secs(20);

/// Runs an item may have: the first, and one more after its runner died.
pub const MAX_RUNS: i64 = 2;

/// Longest wait between two polls of a forwarded batch.
pub const POLL_MAX: Duration = Duration::from_secs(60);

/// Runs one item the way a live request runs.
pub trait Execute: Send + Sync + 'static {
    /// Runs `item` of `batch` and says how it ended, in the batch's surface shapes.
    fn run(&self, batch: Arc<BatchRow>, item: Claimed) -> BoxFuture<'static, Finished>;

    /// Brings the forwarded batch `id` up to date with its upstream, settling its results
    /// once it has ended. Nothing to do where nothing is forwarded.
    fn poll_forwarded(&self, id: String) -> BoxFuture<'static, ()> {
        let _ = id;
        Box::pin(async {})
    }
}

/// How long to wait between polls of a forwarded batch seen `age` ago: often at first
/// (short batches end soon), then a tenth of its age, at most [`POLL_MAX`].
fn poll_interval(age: Duration) -> Duration {
    (age / 10).clamp(HEARTBEAT, POLL_MAX)
}

pub struct Runner {
    batches: Batches,
    exec: Arc<dyn Execute>,
    ledger: Option<Ledger>,
    concurrency: usize,
    id: String,
}

/// A running runner; [`Handle::stop`] ends it.
pub struct Handle {
    stop: Option<oneshot::Sender<Duration>>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stops claiming, waits up to `wait` for the items in flight, gives the rest back to
    /// the store (another runner, or the next start, takes them without waiting for the
    /// lease) and confirms the ledger rows written so far.
    pub async fn stop(mut self, wait: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(wait);
        }
        let _ = self.task.await;
    }
}

impl Runner {
    pub fn new(
        batches: Batches,
        exec: Arc<dyn Execute>,
        ledger: Option<Ledger>,
        concurrency: usize,
    ) -> Self {
        Self {
            batches,
            exec,
            ledger,
            concurrency: concurrency.max(1),
            id: model::new_id("runner_"),
        }
    }

    /// Starts the runner on the current tokio runtime.
    pub fn spawn(self) -> Handle {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(self.run(stopped));
        Handle { stop: Some(stop), task }
    }

    async fn run(self, mut stopped: oneshot::Receiver<Duration>) {
        let mut state = Loop::default();
        self.housekeeping(&mut state, true).await;
        let bell = self.batches.bell();
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let wait = loop {
            self.claim(&mut state).await;
            tokio::select! {
                wait = &mut stopped => break wait.unwrap_or(Duration::ZERO),
                Some(done) = state.tasks.join_next(), if !state.tasks.is_empty() => {
                    if let Ok((item, finished)) = done {
                        self.finished(&mut state, item, finished).await;
                    }
                }
                () = bell.notified() => {}
                _ = tick.tick() => self.housekeeping(&mut state, false).await,
            }
        };
        let deadline = tokio::time::Instant::now() + wait;
        while !state.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, state.tasks.join_next()).await {
                Ok(Some(Ok((item, finished)))) => self.finished(&mut state, item, finished).await,
                Ok(Some(Err(_))) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let left = state.tasks.len();
        state.tasks.abort_all();
        state.polls.abort_all();
        let store = &self.batches.store;
        if left > 0 {
            tracing::warn!(
                items = left,
                "batches: stopping with items still running; they run again on the next start"
            );
        }
        if let Err(err) = store.release(&self.id).await {
            tracing::warn!(%err, "batches: could not give back the running items; they run again once their lease ends");
        }
        self.confirm_ledger().await;
    }

    async fn claim(&self, state: &mut Loop) {
        let free = self.concurrency.saturating_sub(state.tasks.len());
        if free == 0 || state.store_down {
            return;
        }
        let store = &self.batches.store;
        let claimed_at = model::now_millis();
        let claimed = match store.claim(&self.id, claimed_at, free as i64).await {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::warn!(%err, "batches: cannot claim items; retrying");
                state.store_down = true;
                return;
            }
        };
        for item in claimed {
            let batch = match state.batches.get(&item.batch_id) {
                Some(b) => b.clone(),
                None => match store.batch(&item.batch_id).await {
                    Ok(Some(b)) => {
                        let b = Arc::new(b);
                        state.batches.insert(b.id.clone(), b.clone());
                        b
                    }
                    // Unreadable just now: give the item back rather than hold it idle.
                    _ => {
                        let orphan = Orphan { item, claimed_at };
                        if let Err(err) = store.reclaim(&orphan, None, model::now()).await {
                            tracing::warn!(%err, "batches: could not give back an item; its lease will");
                        }
                        continue;
                    }
                },
            };
            let run = self.exec.run(batch, item.clone());
            state.tasks.spawn(async move { (item, run.await) });
        }
    }

    async fn finished(&self, state: &mut Loop, item: Claimed, done: Finished) {
        let store = &self.batches.store;
        match store.finish(&item, &self.id, &done, model::now()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(batch = %item.batch_id, line = item.line, "batches: an item's claim was taken over; its result is left to the other run");
                return;
            }
            Err(err) => {
                tracing::warn!(%err, batch = %item.batch_id, line = item.line, "batches: a result could not be stored; retrying");
                state.unsaved.push((item, done));
                return;
            }
        }
        if let Err(err) = finalize_if_done(store, &item.batch_id).await {
            tracing::warn!(%err, batch = %item.batch_id, "batches: could not end the batch; retrying");
        }
    }

    /// Renews claims, retries results not stored yet, expires batches past their window,
    /// takes back orphans, ends batches with nothing left, and confirms ledger rows.
    async fn housekeeping(&self, state: &mut Loop, starting: bool) {
        let store = &self.batches.store;
        let now_ms = model::now_millis();
        if let Err(err) = store.heartbeat(&self.id, now_ms).await {
            tracing::warn!(%err, "batches: the store cannot be reached");
            state.store_down = true;
            return;
        }
        state.store_down = false;
        for (item, done) in std::mem::take(&mut state.unsaved) {
            self.finished(state, item, done).await;
        }
        let mut touched = store.expire(model::now()).await.unwrap_or_default();
        // On SQLite this process is the only runner: at start, every running item is a
        // dead process's.
        let stale = if starting && store.single_replica() {
            i64::MAX
        } else {
            now_ms - i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX)
        };
        match store.orphans(stale).await {
            Ok(orphans) => {
                for orphan in orphans {
                    let gave_up = if orphan.item.attempts >= MAX_RUNS {
                        let surface = match state.batches.get(&orphan.item.batch_id) {
                            Some(b) => b.surface,
                            None => store
                                .batch(&orphan.item.batch_id)
                                .await
                                .ok()
                                .flatten()
                                .map_or(Surface::OpenAi, |b| b.surface),
                        };
                        Some(interrupted(surface, &orphan.item))
                    } else {
                        None
                    };
                    match store.reclaim(&orphan, gave_up.as_ref(), model::now()).await {
                        Ok(true) => {
                            tracing::info!(batch = %orphan.item.batch_id, line = orphan.item.line, runs = orphan.item.attempts, again = gave_up.is_none(), "batches: took back an item whose runner stopped");
                            touched.push(orphan.item.batch_id.clone());
                        }
                        Ok(false) => {}
                        Err(err) => tracing::warn!(%err, "batches: could not take back an item"),
                    }
                }
            }
            Err(err) => tracing::warn!(%err, "batches: could not look for interrupted items"),
        }
        if starting {
            touched.extend(store.open_batches().await.unwrap_or_default());
        }
        touched.sort();
        touched.dedup();
        for id in touched {
            if let Err(err) = finalize_if_done(store, &id).await {
                tracing::warn!(%err, batch = %id, "batches: could not end the batch");
            }
        }
        self.poll_forwarded(state).await;
        self.confirm_ledger().await;
        if !state.batches.is_empty() && state.tasks.is_empty() {
            state.batches.clear();
        }
    }

    /// Starts a poll of each open forwarded batch that is due and not being polled; the
    /// polls run beside the loop, so a slow upstream never holds up claims or heartbeats.
    async fn poll_forwarded(&self, state: &mut Loop) {
        while state.polls.try_join_next().is_some() {}
        let open = match self.batches.store.forwarded_open().await {
            Ok(open) => open,
            Err(err) => {
                tracing::warn!(%err, "batches: cannot list the forwarded batches to poll");
                return;
            }
        };
        let now = tokio::time::Instant::now();
        state.polled.retain(|id, _| open.contains(id));
        for id in open {
            let (seen, last) = *state.polled.entry(id.clone()).or_insert((now, None));
            let due = last.is_none_or(|last| now >= last + poll_interval(now - seen));
            if !due || !polling(&state.polling).insert(id.clone()) {
                continue;
            }
            state.polled.insert(id.clone(), (seen, Some(now)));
            let poll = self.exec.poll_forwarded(id.clone());
            let set = state.polling.clone();
            state.polls.spawn(async move {
                poll.await;
                polling(&set).remove(&id);
            });
        }
    }

    /// Hands every finished item's unconfirmed row to the ledger, waits until the ledger
    /// has written (or spooled) it, then forgets the copies.
    async fn confirm_ledger(&self) {
        let Some(ledger) = &self.ledger else { return };
        let store = &self.batches.store;
        loop {
            let rows = match store.unrecorded(500).await {
                Ok(rows) if !rows.is_empty() => rows,
                Ok(_) => return,
                Err(err) => {
                    tracing::warn!(%err, "batches: cannot read the ledger rows to confirm");
                    return;
                }
            };
            let mut done = Vec::with_capacity(rows.len());
            for (batch, line, row) in rows {
                match serde_json::from_str::<Record>(&row) {
                    Ok(record) => ledger.record(record),
                    Err(err) => {
                        tracing::warn!(%err, %batch, line, "batches: an item's ledger row cannot be read; skipped")
                    }
                }
                done.push((batch, line));
            }
            ledger.flush().await;
            let full = done.len() == 500;
            if let Err(err) = store.recorded(&done).await {
                tracing::warn!(%err, "batches: could not mark ledger rows as written; they are sent again (and ignored)");
                return;
            }
            if !full {
                return;
            }
        }
    }
}

fn polling(set: &std::sync::Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    set.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
struct Loop {
    tasks: JoinSet<(Claimed, Finished)>,
    /// The batches of the items in flight (what an item needs of its batch never changes).
    batches: HashMap<String, Arc<BatchRow>>,
    /// Results the store did not take; retried at the next housekeeping.
    unsaved: Vec<(Claimed, Finished)>,
    store_down: bool,
    /// Polls of forwarded batches in flight.
    polls: JoinSet<()>,
    /// The forwarded batches being polled now.
    polling: Arc<std::sync::Mutex<HashSet<String>>>,
    /// Each open forwarded batch: when this runner first saw it, when it last polled it.
    polled: HashMap<String, (tokio::time::Instant, Option<tokio::time::Instant>)>,
}

/// BAT-02: the item was running both times a gateway stopped without finishing it.
pub fn interrupted(surface: Surface, item: &Claimed) -> Finished {
    let err = ApiError::new(
        ErrorKind::Internal,
        format!(
            "The request `{}` was interrupted {} times (the gateway running it stopped), so it is not run again.",
            item.custom_id, item.attempts
        ),
    )
    .with_diagnosis(Diagnosis::new(
        "BAT-02",
        "The gateway process running this request stopped before it finished, twice (a crash, a kill, or a stop that could not wait).",
        "Look at the gateway's log around the batch's run for why it stopped, then send this \
         request again (in a new batch or as a live request).",
    ));
    let request_id = model::request_id(&item.batch_id, item.line);
    let body = match surface {
        Surface::OpenAi => crate::surface::openai::error_body(&err),
        Surface::Anthropic => crate::surface::anthropic::error_body(&err, Some(&request_id)),
    };
    Finished {
        state: ItemState::Errored,
        status_code: i64::from(err.kind.http_status().as_u16()),
        result: String::from_utf8_lossy(&body).into_owned(),
        cost: None,
        ledger: None,
    }
}
