//! OpenTelemetry traces, exported over OTLP/HTTP (`litellm_settings.callbacks: ["otel"]`).
//!
//! One SERVER span per chat request (`chat {model}`), one CLIENT child per upstream attempt,
//! with the GenAI semantic-convention attributes, the error class and the cost. A client's
//! W3C `traceparent` is continued, and each attempt's context is sent upstream in
//! `traceparent`.
//!
//! Off (no `otel` callback), nothing is built: the handlers get `None` and the router's
//! attempt hook is one task-local lookup. On, the request path only fills a small struct and
//! pushes it onto the exporter's queue (`export.rs`), which batches and POSTs in the
//! background; a full queue drops the span and counts it.
//!
//! The request's context reaches the router and the providers through task-locals set around
//! the router call (`within`) and around each attempt (`attempt`), so neither the router's
//! nor the providers' signatures carry it.

mod context;
mod export;
mod otlp;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

pub use context::SpanContext;
pub use export::TraceStatus;
use otlp::{Kind, SpanData, Value};

use crate::canonical::{ChatRequest, ChatResponse, StopReason};
use crate::classify::{ApiError, UpstreamError};
use crate::config::{BedrockApi, Deployment, OpenAiFlavor, OtelConfig, ProviderKind};
use crate::cost::{Charge, Charged, PendingCharge};
use crate::fastpath::Answer;
use crate::router::{Route, Served};

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The process's span exporter; cheap to clone. Dropping the last clone ends the exporter
/// after it sent what was queued.
#[derive(Clone)]
pub struct Tracer {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Arc<export::Queue>,
    config: OtelConfig,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl Tracer {
    /// Starts the exporter on the current tokio runtime; `None` outside one (nothing to
    /// export with).
    pub fn start(config: &OtelConfig) -> Option<Self> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let queue = Arc::new(export::Queue::new(config));
        handle.spawn(export::run(queue.clone(), config.clone()));
        let endpoint = export::shown(&config.traces_url);
        tracing::info!(%endpoint, service = %config.service_name, "traces exported over OTLP/HTTP");
        Some(Self { inner: Arc::new(Inner { queue, config: config.clone() }) })
    }

    /// Whether this exporter was started from `config` (a reload keeps it then).
    pub fn is_for(&self, config: &OtelConfig) -> bool {
        self.inner.config == *config
    }

    pub fn status(&self) -> TraceStatus {
        self.inner.queue.counters.status(&self.inner.config.traces_url)
    }

    /// Exports everything queued so far; waits at most `wait`.
    pub async fn flush(&self, wait: Duration) {
        let flushed = self.inner.queue.flush();
        if tokio::time::timeout(wait, flushed).await.is_err() {
            tracing::warn!("traces not flushed in time; the spans still queued are lost");
        }
    }

    /// Queues a finished span, or drops and counts it when the queue is full.
    fn submit(&self, span: SpanData) {
        self.inner.queue.push(span);
    }
}

/// The span of one chat request, open until its answer ends. Dropped before that (the
/// client went away), it is exported as `cancelled`.
pub struct RequestSpan {
    tracer: Tracer,
    data: SpanData,
    /// The client's `tracestate`, passed upstream unchanged (W3C: vendors' entries).
    tracestate: Option<HeaderValue>,
    ended: bool,
}

impl Drop for RequestSpan {
    fn drop(&mut self) {
        if !self.ended {
            cancelled(&mut self.data);
            self.submit();
        }
    }
}

/// A span whose work was dropped before it finished.
fn cancelled(data: &mut SpanData) {
    data.attributes.push(("error.type", Value::fixed("cancelled")));
    data.error = Some("the request was cancelled before it finished".to_owned());
}

/// What the router and the providers see of the request being served.
#[derive(Clone)]
struct Current {
    tracer: Tracer,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    tracestate: Option<HeaderValue>,
}

/// What an upstream request carries: the attempt's `traceparent`, the client's `tracestate`.
#[derive(Clone)]
struct Upstream {
    traceparent: HeaderValue,
    tracestate: Option<HeaderValue>,
}

tokio::task_local! {
    static REQUEST: Current;
    static UPSTREAM: Upstream;
}

/// Starts the span of a chat request, continuing the client's `traceparent`. `None` when
/// traces are off, or the sampler (or, parent-based, the client's flag) leaves it out.
pub fn request(
    tracer: Option<&Tracer>,
    headers: &HeaderMap,
    chat: &ChatRequest,
    request_id: Option<&str>,
) -> Option<RequestSpan> {
    let tracer = tracer?;
    let parent =
        headers.get(TRACEPARENT).and_then(|v| v.to_str().ok()).and_then(SpanContext::parse);
    let trace_id = parent.map_or_else(context::new_trace_id, |p| p.trace_id);
    let sampler = tracer.inner.config.sampler;
    let sampled = match parent {
        Some(p) if sampler.parent_based => p.sampled,
        _ => by_ratio(&trace_id, sampler.ratio),
    };
    if !sampled {
        return None;
    }
    let mut attributes = Vec::with_capacity(20);
    attributes.push(("gen_ai.operation.name", Value::fixed("chat")));
    attributes.push(("gen_ai.request.model", Value::from(chat.model.as_str())));
    if let Some(max) = chat.max_tokens {
        attributes.push(("gen_ai.request.max_tokens", Value::from(max)));
    }
    if let Some(t) = chat.temperature {
        attributes.push(("gen_ai.request.temperature", Value::from(t)));
    }
    if let Some(p) = chat.top_p {
        attributes.push(("gen_ai.request.top_p", Value::from(p)));
    }
    attributes.push(("switchyard.stream", Value::from(chat.stream)));
    if let Some(id) = request_id {
        attributes.push(("switchyard.request_id", Value::from(id)));
    }
    let data = SpanData {
        trace_id,
        span_id: context::new_span_id(),
        parent: parent.map(|p| p.span_id),
        remote_parent: parent.is_some(),
        name: format!("chat {}", chat.model),
        kind: Kind::Server,
        start: now(),
        end: 0,
        attributes,
        error: None,
    };
    // Only alongside the client's own traceparent, as the W3C spec pairs them.
    let tracestate = parent.and_then(|_| headers.get(TRACESTATE)).cloned();
    Some(RequestSpan { tracer: tracer.clone(), data, tracestate, ended: false })
}

/// Runs `fut` (the router's call) as part of `span`, so its attempts become its children.
pub async fn within<F: Future>(span: Option<&RequestSpan>, fut: F) -> F::Output {
    match span {
        Some(span) => {
            let current = Current {
                tracer: span.tracer.clone(),
                trace_id: span.data.trace_id,
                span_id: span.data.span_id,
                tracestate: span.tracestate.clone(),
            };
            REQUEST.scope(current, fut).await
        }
        None => fut.await,
    }
}

/// A JSON answer: its id, finish reason, usage and cost are known now.
pub fn served(span: Option<RequestSpan>, served: &Served<ChatResponse>) {
    let answer = &served.value;
    answered(span, served, &answer.id, answer.stop_reason);
}

/// [`served`] for an answer of the same-dialect fast path.
pub fn served_answer(span: Option<RequestSpan>, served: &Served<Answer>) {
    let answer = &served.value;
    answered(span, served, answer.id(), answer.stop_reason());
}

fn answered<T>(
    span: Option<RequestSpan>,
    served: &Served<T>,
    id: &str,
    stop_reason: Option<StopReason>,
) {
    let Some(mut span) = span else { return };
    span.route(&served.route);
    span.data.attributes.push(("gen_ai.response.id", Value::from(id)));
    if let Some(reason) = stop_reason {
        let reason = finish_reason(reason).to_owned();
        span.data.attributes.push(("gen_ai.response.finish_reasons", Value::Strings(vec![reason])));
    }
    if let Some(charge) = served.charge.now() {
        span.charge(charge);
    }
    span.end();
}

/// The span of an embeddings request: as [`request`], named and marked as OpenTelemetry's
/// `embeddings` operation (no output limit, no stream).
pub fn embeddings_request(
    tracer: Option<&Tracer>,
    headers: &HeaderMap,
    routing: &ChatRequest,
    request_id: Option<&str>,
) -> Option<RequestSpan> {
    let mut span = request(tracer, headers, routing, request_id)?;
    span.data.name = format!("embeddings {}", routing.model);
    let a = &mut span.data.attributes;
    a.retain(|(k, _)| *k != "gen_ai.request.max_tokens" && *k != "switchyard.stream");
    if let Some(op) = a.iter_mut().find(|(k, _)| *k == "gen_ai.operation.name") {
        op.1 = Value::fixed("embeddings");
    }
    Some(span)
}

/// Embeddings served: the route, input usage and cost.
pub fn embedded(span: Option<RequestSpan>, route: &Route, charge: &Charged) {
    let Some(mut span) = span else { return };
    span.route(route);
    if let Some(charge) = charge.now() {
        span.charge(charge);
    }
    span.end();
}

/// A streamed answer: the span ends when the stream does, with its usage and cost. Returns
/// the charge for the ledger (the same one, passed on).
pub fn streamed(span: Option<RequestSpan>, route: &Route, charge: Charged) -> Charged {
    let Some(mut span) = span else { return charge };
    span.route(route);
    match charge {
        Charged::AtEnd(pending) => {
            let (tx, rx) = PendingCharge::channel();
            tokio::spawn(async move {
                let charge = pending.await;
                if let Some(charge) = &charge {
                    span.charge(charge);
                }
                span.end();
                if let Some(charge) = charge {
                    let _ = tx.send(charge);
                }
            });
            Charged::AtEnd(rx)
        }
        other => {
            if let Some(charge) = other.now() {
                span.charge(charge);
            }
            span.end();
            other
        }
    }
}

/// An answer from the response cache: no attempt, no cost; the span says so and carries
/// the entry's key and usage.
pub fn cached(span: Option<RequestSpan>, answer: &ChatResponse, key: &str) {
    let Some(mut span) = span else { return };
    let a = &mut span.data.attributes;
    a.push(("switchyard.cache_hit", Value::from(true)));
    a.push(("switchyard.cache_key", Value::from(key)));
    a.push(("gen_ai.response.id", Value::from(answer.id.as_str())));
    a.push(("gen_ai.usage.input_tokens", Value::from(answer.usage.total_input_tokens())));
    a.push(("gen_ai.usage.output_tokens", Value::from(answer.usage.output_tokens)));
    a.push(("switchyard.cost_usd", Value::Double(0.0)));
    span.end();
}

/// No answer: the error that ended the request.
pub fn failed(span: Option<RequestSpan>, err: &ApiError) {
    let Some(mut span) = span else { return };
    span.data.attributes.push(("error.type", Value::fixed(err.kind.as_str())));
    span.data.attributes.push((
        "http.response.status_code",
        Value::from(u32::from(err.kind.http_status().as_u16())),
    ));
    if let Some(last) = err.attempts.last() {
        span.data
            .attributes
            .push(("switchyard.deployment_id", Value::from(last.deployment.as_str())));
    }
    span.data.error = Some(err.message.clone());
    span.end();
}

impl RequestSpan {
    fn route(&mut self, route: &Route) {
        let d = &route.deployment;
        let a = &mut self.data.attributes;
        provider_attributes(a, d);
        a.push(("gen_ai.response.model", Value::from(d.model.as_str())));
        a.push(("switchyard.deployment_id", Value::from(d.id.as_str())));
        a.push(("switchyard.model_group", Value::from(d.alias.as_str())));
        a.push(("switchyard.attempts", Value::from(route.failed.len() as u64 + 1)));
        a.push(("switchyard.retries", Value::from(route.retries)));
        a.push(("switchyard.fallbacks", Value::from(route.fallbacks)));
    }

    fn charge(&mut self, charge: &Charge) {
        let u = &charge.usage;
        let a = &mut self.data.attributes;
        a.push(("gen_ai.usage.input_tokens", Value::from(u.total_input_tokens())));
        a.push(("gen_ai.usage.output_tokens", Value::from(u.output_tokens)));
        if u.cache_read_input_tokens > 0 {
            a.push((
                "gen_ai.usage.cache_read_input_tokens",
                Value::from(u.cache_read_input_tokens),
            ));
        }
        if u.cache_creation_input_tokens > 0 {
            a.push((
                "gen_ai.usage.cache_creation_input_tokens",
                Value::from(u.cache_creation_input_tokens),
            ));
        }
        // A double, as trace backends sum it; the exact decimal is in the ledger.
        if let Some(cost) = charge.cost {
            a.push(("switchyard.cost_usd", Value::Double(decimal_f64(cost))));
        }
        if !charge.complete {
            a.push(("switchyard.stream_incomplete", Value::from(true)));
        }
    }

    fn end(mut self) {
        self.submit();
    }

    fn submit(&mut self) {
        self.ended = true;
        let mut data =
            SpanData { name: String::new(), attributes: Vec::new(), error: None, ..self.data };
        std::mem::swap(&mut data, &mut self.data);
        data.end = now();
        self.tracer.submit(data);
    }
}

/// Runs one upstream attempt (`call`, made inside so the provider sees the attempt's
/// context) as a CLIENT child of the request's span, when there is one.
pub async fn attempt<T, F, Fut>(deployment: &Deployment, call: F) -> Result<T, UpstreamError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, UpstreamError>>,
{
    let Ok(current) = REQUEST.try_with(Clone::clone) else {
        return call().await;
    };
    let span_id = context::new_span_id();
    let traceparent = SpanContext { trace_id: current.trace_id, span_id, sampled: true }.header();
    let mut attributes = Vec::with_capacity(10);
    attributes.push(("gen_ai.operation.name", Value::fixed("chat")));
    attributes.push(("gen_ai.request.model", Value::from(deployment.model.as_str())));
    provider_attributes(&mut attributes, deployment);
    attributes.push(("switchyard.deployment_id", Value::from(deployment.id.as_str())));
    let tracestate = current.tracestate;
    let mut span = AttemptSpan {
        tracer: current.tracer,
        data: Some(SpanData {
            trace_id: current.trace_id,
            span_id,
            parent: Some(current.span_id),
            remote_parent: false,
            name: format!("chat {}", deployment.model),
            kind: Kind::Client,
            start: now(),
            end: 0,
            attributes,
            error: None,
        }),
    };
    let result = match HeaderValue::from_str(&traceparent) {
        Ok(traceparent) => {
            UPSTREAM.scope(Upstream { traceparent, tracestate }, async { call().await }).await
        }
        Err(_) => call().await,
    };
    if let (Err(e), Some(data)) = (&result, span.data.as_mut()) {
        data.attributes.push(("error.type", Value::fixed(e.kind.as_str())));
        if let Some(status) = e.status {
            data.attributes.push(("http.response.status_code", Value::Int(i64::from(status))));
        }
        data.error = Some(e.message.clone());
    }
    span.end();
    result
}

/// An attempt's span; dropped before the attempt finished (the request was cancelled), it
/// is exported as `cancelled`.
struct AttemptSpan {
    tracer: Tracer,
    data: Option<SpanData>,
}

impl AttemptSpan {
    fn end(&mut self) {
        if let Some(mut data) = self.data.take() {
            data.end = now();
            self.tracer.submit(data);
        }
    }
}

impl Drop for AttemptSpan {
    fn drop(&mut self) {
        if let Some(data) = self.data.as_mut() {
            cancelled(data);
        }
        self.end();
    }
}

/// Adds the current attempt's `traceparent` (and the client's `tracestate`) to an upstream
/// request (nothing when traces are off). Bedrock signs an explicit list of headers, so this one, added after signing,
/// leaves its signature intact.
pub fn propagate(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match UPSTREAM.try_with(Clone::clone) {
        Ok(Upstream { traceparent, tracestate: None }) => request.header(TRACEPARENT, traceparent),
        Ok(Upstream { traceparent, tracestate: Some(state) }) => {
            request.header(TRACEPARENT, traceparent).header(TRACESTATE, state)
        }
        Err(_) => request,
    }
}

/// The stop reason as the canonical form serializes it (`end_turn` …), without serde.
fn finish_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::PauseTurn => "pause_turn",
        StopReason::Refusal => "refusal",
        StopReason::ContentFilter => "content_filter",
        StopReason::ModelContextWindowExceeded => "model_context_window_exceeded",
    }
}

/// [`propagate`] for a request built as an `http::Request`.
pub fn propagate_into(headers: &mut http::HeaderMap) {
    if let Ok(Upstream { traceparent, tracestate }) = UPSTREAM.try_with(Clone::clone) {
        headers.insert(TRACEPARENT, traceparent);
        if let Some(state) = tracestate {
            headers.insert(TRACESTATE, state);
        }
    }
}

fn provider_attributes(a: &mut Vec<(&'static str, Value)>, d: &Deployment) {
    // The semantic conventions' provider names; others go by their LiteLLM prefix.
    let name = match d.provider {
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Bedrock(BedrockApi::Auto | BedrockApi::Invoke | BedrockApi::Converse) => {
            "aws.bedrock"
        }
        ProviderKind::OpenAi(OpenAiFlavor::OpenAi) => "openai",
        other => other.prefix(),
    };
    a.push(("gen_ai.provider.name", Value::fixed(name)));
    a.push(("gen_ai.system", Value::fixed(name)));
}

/// `traceidratio`: the trace is kept when its id's last 8 bytes fall under the ratio, so
/// every service sampling at the same ratio keeps the same traces.
fn by_ratio(trace_id: &[u8; 16], ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    (u64::from_be_bytes(low) >> 1) < bound
}

fn decimal_f64(d: crate::cost::Decimal) -> f64 {
    d.to_string().parse().unwrap_or(0.0)
}

/// Unix time in nanoseconds.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::{StopReason, by_ratio, finish_reason};

    #[test]
    fn finish_reasons_are_the_canonical_names() {
        for reason in [
            StopReason::EndTurn,
            StopReason::MaxTokens,
            StopReason::StopSequence,
            StopReason::ToolUse,
            StopReason::PauseTurn,
            StopReason::Refusal,
            StopReason::ContentFilter,
            StopReason::ModelContextWindowExceeded,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), finish_reason(reason), "{reason:?}");
        }
    }

    #[test]
    fn the_ratio_decides_by_the_trace_ids_low_bytes() {
        let low = [0u8; 16];
        let mut high = [0u8; 16];
        high[8..].copy_from_slice(&[0xff; 8]);
        let mut middle = [0u8; 16];
        middle[8] = 0x80; // half of the range
        assert!(by_ratio(&low, 0.01) && by_ratio(&high, 1.0));
        assert!(!by_ratio(&high, 0.99) && !by_ratio(&low, 0.0));
        assert!(by_ratio(&middle, 0.6) && !by_ratio(&middle, 0.4));
    }
}
