//! A scriptable stand-in for the model providers, for Switchyard's tests (in-process, port 0)
//! and benchmarks (the `mock-upstream` binary). Never a run-time dependency of the gateway.
//!
//! ```no_run
//! # async fn demo() {
//! use mock_upstream::{MockUpstream, Reply};
//! let mock = MockUpstream::start().await;
//! mock.push(Reply::error(529, "overloaded_error", "Overloaded").retry_after(3));
//! mock.push(Reply::text("Hello world").stream_drop_after(3));
//! // ... point the gateway at mock.url(), send two requests ...
//! assert_eq!(mock.calls(), 2);
//! let first = &mock.received()[0];
//! assert_eq!(first.header("x-api-key"), Some("sk-ant-test"));
//! # }
//! ```
//!
//! Every request is recorded before it is answered. Requests the emulated API rejects
//! (authentication, missing fields) are answered by the API's own checks and do not consume a
//! scripted reply; valid ones take the next scripted reply, or the default when the script is
//! empty.
//!
//! Another process (the Python SDK suite, via the binary's `--admin`) scripts the same
//! replies over HTTP: see [`Builder::admin`] and the `/_mock/*` routes in `admin.rs`.
//!
//! The same mock emulates AWS for Bedrock — the runtime (`/model/{id}/invoke`, with SigV4 or
//! API-key checks and event-stream frames), STS and the SSO portal — configured through
//! [`MockUpstream::aws`]; scripted replies render as Bedrock answers, [`AwsError`] names AWS's
//! errors.

mod admin;
mod anthropic;
mod anthropic_batches;
mod aws;
mod embeddings;
mod faults;
mod openai;
mod openai_responses;
mod reply;
mod wire;

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use aws::{Aws, AwsError, AwsIdentity};
pub use axum::http::HeaderMap;
pub use embeddings::{base64_of, embedding_of, tokens_of, tokens_text};
pub use reply::{Reply, Usage};
pub use wire::WireAt;

/// The largest request body accepted, as the Messages API (32 MB); larger ones get a 413.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// One request as the mock received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// The path without the query string, e.g. `/v1/messages`.
    pub path: String,
    /// The raw query string, if any (Claude Code sends `?beta=true`).
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The parsed JSON body; `Value::Null` when the body is empty or not JSON.
    pub body: Value,
    pub raw_body: Bytes,
}

impl Received {
    /// A header's value, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Configures a [`MockUpstream`] before it starts.
#[derive(Debug)]
pub struct Builder {
    addr: SocketAddr,
    api_key: Option<String>,
    record: bool,
    admin: bool,
    default: Reply,
}

impl Builder {
    /// Accept only this key (`x-api-key` or `Authorization: Bearer`); others get a 401.
    /// Without it any non-empty key is accepted.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Listen here instead of `127.0.0.1:0`.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Keep (default) or skip the request log; benchmarks skip it so memory stays flat.
    /// [`MockUpstream::calls`] counts either way.
    pub fn record(mut self, record: bool) -> Self {
        self.record = record;
        self
    }

    /// Serve the `/_mock/*` admin routes (push, default, received, calls, release, reset) so
    /// another process can script the mock over HTTP. Off by default: the emulated API then
    /// answers those paths like any unknown path. Admin requests are never recorded or counted.
    pub fn admin(mut self, enabled: bool) -> Self {
        self.admin = enabled;
        self
    }

    /// The reply used when the script is empty (default: [`Reply::echo`]).
    pub fn default_reply(mut self, reply: Reply) -> Self {
        self.default = reply;
        self
    }

    /// Binds and starts serving in a background task.
    pub async fn try_start(self) -> io::Result<MockUpstream> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(self.api_key, self.record, self.admin, self.default));
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let listener = wire::WireListener(listener);
        let app = app.into_make_service_with_connect_info::<wire::Tap>();
        let task = tokio::spawn(async move {
            // `axum::serve` only returns when the task is aborted; there is no error to report.
            let _ = axum::serve(listener, app).await;
        });
        Ok(MockUpstream { addr, shared, task })
    }

    /// Like [`Builder::try_start`], for tests: panics if the port cannot be bound.
    #[allow(clippy::expect_used, reason = "a test helper; failing to bind loopback ends the test")]
    pub async fn start(self) -> MockUpstream {
        self.try_start().await.expect("mock-upstream: cannot bind its listener")
    }
}

/// A running mock. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl MockUpstream {
    pub fn builder() -> Builder {
        Builder {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            api_key: None,
            record: true,
            admin: false,
            default: Reply::echo(),
        }
    }

    /// Starts on `127.0.0.1:0` with the default settings; panics if that cannot be bound.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a reply: valid calls take queued replies in order, then the default.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.script).push_back(reply);
    }

    /// Replaces the reply used when the script is empty.
    pub fn set_default(&self, reply: Reply) {
        *lock(&self.shared.default) = reply;
    }

    /// How many scripted replies have not been used yet.
    pub fn pending(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// Every request received so far, in arrival order (empty if recording is off).
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }

    /// How many requests arrived, whatever their path or outcome.
    pub fn calls(&self) -> usize {
        usize::try_from(self.shared.calls.load(Ordering::SeqCst)).unwrap_or(usize::MAX)
    }

    /// How long a Message Batch waits before its requests are answered (none by default):
    /// long enough, and a client sees it `in_progress` before it ends.
    pub fn set_batch_delay(&self, delay: Duration) {
        lock(&self.shared.batches).delay = delay;
    }

    /// Back to the state at start: empty script and recorder, the builder's default reply,
    /// call numbering (and so ids) from 1 again, no AWS identities, keys or tokens, no batches.
    pub fn reset(&self) {
        self.shared.reset();
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// State shared between the handle and the server task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub api_key: Option<String>,
    record: bool,
    admin: bool,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    /// The builder's default, restored by a reset.
    initial_default: Reply,
    received: Mutex<Vec<Received>>,
    calls: AtomicU64,
    /// Releases replies scripted over HTTP with `hold_after`. A reset replaces it, so a
    /// release left over from one test never lets another test's hold through.
    release: Mutex<Arc<Notify>>,
    /// Identities, Bedrock API keys and SSO tokens of the AWS emulation.
    aws: aws::AwsState,
    /// The Message Batches the Anthropic emulation holds.
    pub(crate) batches: Mutex<anthropic_batches::BatchState>,
}

impl Shared {
    fn new(api_key: Option<String>, record: bool, admin: bool, default: Reply) -> Self {
        Self {
            api_key,
            record,
            admin,
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(default.clone()),
            initial_default: default,
            received: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
            release: Mutex::new(Arc::new(Notify::new())),
            aws: aws::AwsState::default(),
            batches: Mutex::new(anthropic_batches::BatchState::default()),
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self::new(None, true, true, Reply::echo())
    }

    fn reset(&self) {
        lock(&self.script).clear();
        lock(&self.received).clear();
        *lock(&self.default) = self.initial_default.clone();
        self.calls.store(0, Ordering::SeqCst);
        *lock(&self.release) = Arc::new(Notify::new());
        self.aws.reset();
        lock(&self.batches).reset();
    }

    /// The next scripted reply, or a copy of the default.
    /// A reply with a wire fault arms it on the connection being served.
    pub fn next_reply(&self) -> Reply {
        let scripted = lock(&self.script).pop_front();
        let reply = scripted.unwrap_or_else(|| lock(&self.default).clone());
        if let Some(fault) = reply.faults.wire {
            wire::arm(fault);
        }
        reply
    }
}

/// One call, as the emulations see it.
pub(crate) struct Call {
    /// 1-based arrival number; ids derived from it are deterministic per mock.
    pub seq: u64,
    pub headers: HeaderMap,
    /// `None` when the body is not JSON.
    pub body: Option<Value>,
}

/// Answers one request on its connection; a response whose reply carries a wire fault
/// closes the connection after it.
async fn handle(state: State<Arc<Shared>>, request: Request) -> Response {
    let tap = request
        .extensions()
        .get::<axum::extract::ConnectInfo<wire::Tap>>()
        .map(|info| info.0.clone())
        .unwrap_or_default();
    let mut response = wire::serving(tap.clone(), dispatch(state, request)).await;
    if tap.is_armed() {
        let close = axum::http::HeaderValue::from_static("close");
        response.headers_mut().insert(axum::http::header::CONNECTION, close);
    }
    response
}

/// Records every request, then routes it to the emulated API.
async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let admin = shared.admin && parts.uri.path().starts_with(admin::PREFIX);
    // An OTLP/HTTP collector that takes spans and keeps none (a benchmark's trace sink):
    // neither a call nor a recorded request.
    let sink = parts.method == axum::http::Method::POST && parts.uri.path() == "/v1/traces";
    let seq = if admin || sink { 0 } else { shared.calls.fetch_add(1, Ordering::SeqCst) + 1 };
    let (raw, too_large) = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(raw) => (raw, false),
        Err(_) => (Bytes::new(), true),
    };
    if sink {
        return ([(axum::http::header::CONTENT_TYPE, "application/x-protobuf")], Bytes::new())
            .into_response();
    }
    if admin {
        return admin::route(&shared, parts.method.as_str(), parts.uri.path(), &raw);
    }
    let json = serde_json::from_slice::<Value>(&raw).ok();
    if shared.record {
        lock(&shared.received).push(Received {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.clone(),
            body: json.clone().unwrap_or(Value::Null),
            raw_body: raw.clone(),
        });
    }
    if aws::owns(parts.method.as_str(), parts.uri.path()) {
        return aws::route(&shared, seq, &parts, &raw).await;
    }
    let call = Call { seq, headers: parts.headers, body: json };
    if too_large {
        return anthropic::too_large(&call);
    }
    if anthropic_batches::owns(parts.uri.path()) {
        let (method, path, query) = (parts.method.as_str(), parts.uri.path(), parts.uri.query());
        return anthropic_batches::route(&shared, method, path, query, &call).await;
    }
    if openai::owns(parts.method.as_str(), parts.uri.path()) {
        return openai::route(&shared, &call).await;
    }
    if embeddings::owns(parts.method.as_str(), parts.uri.path()) {
        return embeddings::route(&shared, &call).await;
    }
    if openai_responses::owns(parts.method.as_str(), parts.uri.path()) {
        return openai_responses::route(&shared, &call).await;
    }
    anthropic::route(&shared, parts.method.as_str(), parts.uri.path(), &call).await
}

/// Locks, ignoring poisoning: a panicking test thread must not hide the log from the others.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
