//! The background exporter: spans arrive on a bounded queue, leave in batches as one OTLP/HTTP
//! protobuf POST each. The request path only ever `try_send`s: a full queue drops the span
//! and counts it; a batch the collector refuses or does not take in time is dropped and
//! counted too. Nothing here retries: a slow collector costs spans, never latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::otlp::{self, SpanData};
use crate::config::OtelConfig;

pub(super) enum Command {
    Span(SpanData),
    /// Answered once everything queued before it was exported (or dropped).
    Flush(oneshot::Sender<()>),
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

pub(super) async fn run(
    mut rx: mpsc::Receiver<Command>,
    config: OtelConfig,
    counters: Arc<Counters>,
) {
    let client = reqwest::Client::builder()
        .timeout(config.export_timeout)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let headers = headers(&config);
    let mut batch: Vec<SpanData> = Vec::with_capacity(config.max_batch);
    let mut flushed: Vec<oneshot::Sender<()>> = Vec::new();
    let mut reported = 0u64;
    let mut last_report = Instant::now();
    loop {
        let mut closed = false;
        match rx.recv().await {
            Some(Command::Span(span)) => batch.push(span),
            Some(Command::Flush(done)) => flushed.push(done),
            None => closed = true,
        }
        // Gather a batch: up to `max_batch` spans, or what arrived within the delay.
        let deadline = Instant::now() + config.batch_delay;
        while !closed && flushed.is_empty() && batch.len() < config.max_batch {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Command::Span(span))) => batch.push(span),
                Ok(Some(Command::Flush(done))) => flushed.push(done),
                Ok(None) => closed = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            export(&client, &config, &headers, &batch, &counters).await;
            batch.clear();
        }
        for done in flushed.drain(..) {
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
