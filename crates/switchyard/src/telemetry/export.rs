//! The background exporter: finished spans are pushed onto a bounded queue (a short lock,
//! never a wake-up), and leave in batches as one OTLP/HTTP protobuf POST each, every
//! `OTEL_BSP_SCHEDULE_DELAY` or as soon as a batch is full. The request path never waits: a
//! full queue drops the span and counts it; a batch the collector refuses or does not take
//! in time is dropped and counted too. Nothing here retries: a slow collector costs spans,
//! never latency.
//!
//! A channel would wake the exporter task for every span (two per request); the queue wakes
//! it once per batch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::otlp::{self, SpanData};
use crate::config::OtelConfig;

/// What the request path and the exporter share.
pub(super) struct Queue {
    spans: Mutex<Vec<SpanData>>,
    /// Answered once everything queued before them was exported (or dropped).
    flushes: Mutex<Vec<oneshot::Sender<()>>>,
    /// A batch is full, a flush is asked for, or the tracer is gone.
    wake: Notify,
    closed: AtomicBool,
    capacity: usize,
    max_batch: usize,
    pub counters: Counters,
}

impl Queue {
    pub fn new(config: &OtelConfig) -> Self {
        Self {
            spans: Mutex::new(Vec::with_capacity(config.max_batch.max(1))),
            flushes: Mutex::new(Vec::new()),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            capacity: config.queue_size.max(1),
            max_batch: config.max_batch.max(1),
            counters: Counters::default(),
        }
    }

    /// Queues a finished span, or drops and counts it when the queue is full.
    pub fn push(&self, span: SpanData) {
        let full = {
            let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
            if spans.len() >= self.capacity {
                drop(spans);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            spans.push(span);
            spans.len() == self.max_batch
        };
        if full {
            self.wake.notify_one();
        }
    }

    /// Asks for everything queued to be exported now; the receiver hears when it was.
    pub fn flush(&self) -> oneshot::Receiver<()> {
        let (done, flushed) = oneshot::channel();
        self.flushes.lock().unwrap_or_else(PoisonError::into_inner).push(done);
        self.wake.notify_one();
        flushed
    }

    /// The tracer is gone: the exporter sends what is queued and ends.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<SpanData> {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *spans, Vec::with_capacity(self.max_batch))
    }
}

/// Counters the exporter and the request path share.
#[derive(Default)]
pub(super) struct Counters {
    pub exported: AtomicU64,
    pub dropped: AtomicU64,
    pub failed_exports: AtomicU64,
}

/// What `/health/readiness` shows under `traces`.
#[derive(Debug, Clone, Serialize)]
pub struct TraceStatus {
    /// Where spans are sent (never the headers: they may hold credentials).
    pub endpoint: String,
    pub exported: u64,
    /// Spans dropped: the queue was full, or the collector failed or was too slow.
    pub dropped: u64,
    pub failed_exports: u64,
}

impl Counters {
    pub fn status(&self, endpoint: &str) -> TraceStatus {
        TraceStatus {
            endpoint: shown(endpoint),
            exported: self.exported.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed_exports: self.failed_exports.load(Ordering::Relaxed),
        }
    }
}

pub(super) async fn run(queue: Arc<Queue>, config: OtelConfig) {
    let client = reqwest::Client::builder()
        .timeout(config.export_timeout)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let headers = headers(&config);
    let counters = &queue.counters;
    let mut reported = 0u64;
    let mut last_report = Instant::now();
    loop {
        // Wait out the delay, unless a batch fills, a flush is asked for or the tracer goes.
        let _ = tokio::time::timeout(config.batch_delay, queue.wake.notified()).await;
        let closed = queue.closed.load(Ordering::Acquire);
        let flushes =
            std::mem::take(&mut *queue.flushes.lock().unwrap_or_else(PoisonError::into_inner));
        let spans = queue.take();
        for batch in spans.chunks(queue.max_batch) {
            export(&client, &config, &headers, batch, counters).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
        // Drops are said in the log at most every 10 s, never per span.
        let dropped = counters.dropped.load(Ordering::Relaxed);
        if dropped > reported && last_report.elapsed() >= Duration::from_secs(10) {
            tracing::warn!(
                dropped = dropped - reported,
                endpoint = %shown(&config.traces_url),
                "trace spans dropped: the collector is slow or failing, or the queue is full"
            );
            reported = dropped;
            last_report = Instant::now();
        }
        if closed {
            return;
        }
    }
}

async fn export(
    client: &reqwest::Client,
    config: &OtelConfig,
    headers: &HeaderMap,
    batch: &[SpanData],
    counters: &Counters,
) {
    let body = otlp::encode(&config.service_name, batch);
    let sent = client.post(&config.traces_url).headers(headers.clone()).body(body).send().await;
    let n = batch.len() as u64;
    match sent {
        Ok(response) if response.status().is_success() => {
            counters.exported.fetch_add(n, Ordering::Relaxed);
        }
        Ok(response) => {
            counters.dropped.fetch_add(n, Ordering::Relaxed);
            counters.failed_exports.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                status = response.status().as_u16(),
                spans = n,
                "the collector refused a batch of spans"
            );
        }
        Err(err) => {
            counters.dropped.fetch_add(n, Ordering::Relaxed);
            counters.failed_exports.fetch_add(1, Ordering::Relaxed);
            // Without the URL: it may carry credentials (`https://user:pass@…`).
            let err = err.without_url();
            tracing::debug!(%err, spans = n, "a batch of spans could not be exported");
        }
    }
}

/// The configured headers (OTEL_EXPORTER_OTLP_HEADERS) and the protobuf content type. A
/// header that cannot be sent is left out, and named (never its value).
fn headers(config: &OtelConfig) -> HeaderMap {
    let mut out = HeaderMap::new();
    out.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
    for (name, value) in &config.headers {
        let parsed =
            (http::HeaderName::try_from(name.as_str()), HeaderValue::from_str(value.expose()));
        match parsed {
            (Ok(name), Ok(mut value)) => {
                value.set_sensitive(true);
                out.insert(name, value);
            }
            _ => {
                tracing::warn!(header = %name, "OTEL_EXPORTER_OTLP_HEADERS: this header cannot be sent; it is left out")
            }
        }
    }
    out
}

/// The endpoint as logs and `/health` show it: without credentials written into the URL.
pub fn shown(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_in_the_endpoint_are_not_shown() {
        assert_eq!(
            super::shown("https://user:secret@collector:4318/v1/traces"),
            "https://collector:4318/v1/traces"
        );
        assert_eq!(
            super::shown("http://collector/v1/traces?a=b@c"),
            "http://collector/v1/traces?a=b@c"
        );
    }
}
