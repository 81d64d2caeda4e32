//! A closed-loop HTTP/1.1 load generator on hyper: `concurrency` clients, each on its own
//! kept-alive connection with TCP_NODELAY, each sending its next request as soon as the
//! previous answer's body ended. Records the latency of every request (send → last body
//! byte) and, for streams, the time to the first body frame.
//!
//! Connections are opened before the clock starts, and a warm-up phase is run and discarded
//! (the gateway fills its upstream pool there), so a round measures steady state only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio::time::Instant;

/// What one request is; every client sends the same.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// The body is an SSE stream: record the time to its first frame.
    pub streaming: bool,
    /// Bytes a correct answer ends with (checked on the last 64 bytes of the body).
    pub expect_tail: &'static [u8],
    /// TLS to the target (a gateway with `--ssl-certfile`), its name `localhost`.
    pub tls: Option<Arc<tokio_rustls::TlsConnector>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("path", &self.path)
            .field("streaming", &self.streaming)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Round {
    pub concurrency: usize,
    /// Run, and discard, this long first.
    pub warmup: Duration,
    /// Then measure this long.
    pub duration: Duration,
}

/// What one round measured.
pub struct Outcome {
    /// Requests completed (successfully) within the measured window.
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// The measured window: from its start to the end of the last counted request.
    pub elapsed: Duration,
    /// Send → last body byte, nanoseconds.
    pub latency: Histogram<u64>,
    /// Send → first body frame, nanoseconds (streams only).
    pub ttfb: Histogram<u64>,
}

impl Outcome {
    pub fn empty() -> Self {
        Self {
            requests: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latency: histogram(),
            ttfb: histogram(),
        }
    }

    pub fn rps(&self) -> f64 {
        if self.elapsed.is_zero() { 0.0 } else { self.requests as f64 / self.elapsed.as_secs_f64() }
    }

    /// Another round of the same kind: counts and histograms add, time adds.
    pub fn merge(&mut self, other: &Outcome) {
        self.requests += other.requests;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        self.elapsed += other.elapsed;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.ttfb.add(&other.ttfb);
    }
}

/// 1 µs to 60 s at 3 significant digits (0.1 % resolution).
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

/// Runs one round against `target`.
pub async fn run(target: Arc<Target>, round: Round) -> Outcome {
    // +1: the coordinator also waits, so the clock starts once every connection is open.
    let ready = Arc::new(Barrier::new(round.concurrency + 1));
    let (start_tx, start_rx) = tokio::sync::watch::channel::<Option<Instant>>(None);
    let mut workers = Vec::with_capacity(round.concurrency);
    for _ in 0..round.concurrency {
        let target = Arc::clone(&target);
        let ready = Arc::clone(&ready);
        let mut start_rx = start_rx.clone();
        workers.push(tokio::spawn(async move {
            let client = Client::connect(&target).await;
            ready.wait().await;
            let start = loop {
                if let Some(start) = *start_rx.borrow_and_update() {
                    break start;
                }
                if start_rx.changed().await.is_err() {
                    return Outcome::empty();
                }
            };
            client.run(&target, start, round).await
        }));
    }
    ready.wait().await;
    let start = Instant::now();
    let _ = start_tx.send(Some(start));
    let mut total = Outcome::empty();
    let mut last_end = Duration::ZERO;
    for worker in workers {
        match worker.await {
            Ok(outcome) => {
                last_end = last_end.max(outcome.elapsed);
                let mut outcome = outcome;
                outcome.elapsed = Duration::ZERO;
                total.merge(&outcome);
            }
            Err(err) => {
                total.errors += 1;
                total.first_error.get_or_insert_with(|| format!("a client task failed: {err}"));
            }
        }
    }
    total.elapsed = last_end;
    total
}

struct Client {
    sender: Option<SendRequest<Full<Bytes>>>,
    outcome: Outcome,
}

impl Client {
    async fn connect(target: &Target) -> Self {
        let mut client = Self { sender: None, outcome: Outcome::empty() };
        if let Err(err) = client.reconnect(target).await {
            client.fail(err);
        }
        client
    }

    async fn reconnect(&mut self, target: &Target) -> Result<(), String> {
        self.sender = None;
        let tcp = TcpStream::connect(target.addr).await.map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        let sender = match &target.tls {
            None => {
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
                tokio::spawn(conn);
                sender
            }
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from("localhost")
                    .map_err(|e| e.to_string())?;
                let stream =
                    tls.connect(name, tcp).await.map_err(|e| format!("TLS handshake: {e}"))?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
                tokio::spawn(conn);
                sender
            }
        };
        self.sender = Some(sender);
        Ok(())
    }

    fn fail(&mut self, err: String) {
        self.outcome.errors += 1;
        self.outcome.first_error.get_or_insert(err);
    }

    /// Sends requests back to back until the round ends; `elapsed` of the outcome is the end
    /// of this client's last counted request, from `start`.
    async fn run(mut self, target: &Target, start: Instant, round: Round) -> Outcome {
        let measure_from = start + round.warmup;
        let deadline = measure_from + round.duration;
        let mut last_end = measure_from;
        loop {
            let sent = Instant::now();
            if sent >= deadline {
                break;
            }
            let measured = sent >= measure_from;
            match self.once(target).await {
                Ok(ttfb) => {
                    let done = Instant::now();
                    if measured && done <= deadline {
                        self.outcome.requests += 1;
                        let _ = self.outcome.latency.record(nanos(done - sent));
                        if let Some(first) = ttfb {
                            let _ = self.outcome.ttfb.record(nanos(first - sent));
                        }
                        last_end = done;
                    }
                }
                Err(err) => {
                    // Errors count whenever they happen: a round must have none at all.
                    self.fail(err);
                    if let Err(err) = self.reconnect(target).await {
                        self.fail(err);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
        self.outcome.elapsed = last_end.saturating_duration_since(measure_from);
        self.outcome
    }

    /// One request; the time its first body frame arrived, for streams.
    async fn once(&mut self, target: &Target) -> Result<Option<Instant>, String> {
        let sender = self.sender.as_mut().ok_or("not connected")?;
        sender.ready().await.map_err(|e| format!("connection: {e}"))?;
        let mut request = Request::builder().method(Method::POST).uri(target.path.as_str());
        let headers = request.headers_mut().ok_or("request builder")?;
        headers.insert(HOST, HeaderValue::from_static("127.0.0.1"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &target.headers {
            headers.insert(name.clone(), value.clone());
        }
        let request =
            request.body(Full::new(target.body.clone())).map_err(|e| format!("request: {e}"))?;
        let response = sender.send_request(request).await.map_err(|e| format!("send: {e}"))?;
        let status = response.status();
        let mut body = response.into_body();
        let mut first = None;
        let mut tail: Vec<u8> = Vec::with_capacity(128);
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("body: {e}"))?;
            if let Ok(data) = frame.into_data() {
                if first.is_none() && !data.is_empty() {
                    first = Some(Instant::now());
                }
                total += data.len();
                tail.extend_from_slice(&data);
                if tail.len() > 64 {
                    tail.drain(..tail.len() - 64);
                }
            }
        }
        if !status.is_success() {
            return Err(format!("status {status}: {}", String::from_utf8_lossy(&tail)));
        }
        let trimmed = trim_end(&tail);
        if total == 0 || !trimmed.ends_with(target.expect_tail) {
            return Err(format!(
                "unexpected answer ({total} bytes, ending {:?})",
                String::from_utf8_lossy(trimmed)
            ));
        }
        Ok(if target.streaming { first } else { None })
    }
}

/// Exactly `n` requests over `concurrency` kept-alive connections, the i-th with the body
/// `body(i)`: for counting what each request costs elsewhere (Redis commands, database
/// transactions), where a round's warm-up would blur the count.
pub async fn exactly(
    target: Arc<Target>,
    n: u64,
    concurrency: usize,
    body: Arc<dyn Fn(u64) -> Bytes + Send + Sync>,
) -> Outcome {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (target, next, body) = (Arc::clone(&target), Arc::clone(&next), Arc::clone(&body));
        workers.push(tokio::spawn(async move {
            let mut client = Client::connect(&target).await;
            let mut one = (*target).clone();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                one.body = body(i);
                let sent = Instant::now();
                match client.once(&one).await {
                    Ok(_) => {
                        client.outcome.requests += 1;
                        let _ = client.outcome.latency.record(nanos(sent.elapsed()));
                    }
                    Err(err) => {
                        client.fail(err);
                        if let Err(err) = client.reconnect(&one).await {
                            client.fail(err);
                        }
                    }
                }
            }
            client.outcome
        }));
    }
    let mut total = Outcome::empty();
    for worker in workers {
        match worker.await {
            Ok(o) => total.merge(&o),
            Err(err) => {
                total.errors += 1;
                total.first_error.get_or_insert_with(|| format!("a client task failed: {err}"));
            }
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// A connection left open by [`idle_connections`] or [`open_streams`]; dropping it closes it.
pub struct Open {
    _sender: SendRequest<Full<Bytes>>,
    /// A stream's body, not read any further: the server keeps the stream in flight.
    _body: Option<hyper::body::Incoming>,
}

/// `n` connections to `target`, each after one complete request, left idle and open (the
/// server holds them as kept-alive connections). Opened `parallel` at a time.
pub async fn idle_connections(
    target: Arc<Target>,
    n: usize,
    parallel: usize,
) -> Result<Vec<Open>, String> {
    let mut open = Vec::with_capacity(n);
    while open.len() < n {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..parallel.min(n - open.len()) {
            let target = Arc::clone(&target);
            set.spawn(async move {
                let mut client = Client { sender: None, outcome: Outcome::empty() };
                client.reconnect(&target).await?;
                client.once(&target).await?;
                let sender = client.sender.take().ok_or("not connected")?;
                Ok::<_, String>(Open { _sender: sender, _body: None })
            });
        }
        while let Some(done) = set.join_next().await {
            open.push(done.map_err(|e| e.to_string())??);
        }
    }
    Ok(open)
}

/// `n` streaming requests to `target`, each on its own connection, returned once every one
/// has received its first body frame and left unread from there: `n` streams in flight
/// for as long as the upstream takes to finish them.
pub async fn open_streams(target: Arc<Target>, n: usize) -> Result<Vec<Open>, String> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let target = Arc::clone(&target);
        set.spawn(async move {
            let mut client = Client { sender: None, outcome: Outcome::empty() };
            client.reconnect(&target).await?;
            let mut sender = client.sender.take().ok_or("not connected")?;
            let mut request = Request::builder().method(Method::POST).uri(target.path.as_str());
            let headers = request.headers_mut().ok_or("request builder")?;
            headers.insert(HOST, HeaderValue::from_static("127.0.0.1"));
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            for (name, value) in &target.headers {
                headers.insert(name.clone(), value.clone());
            }
            let request = request
                .body(Full::new(target.body.clone()))
                .map_err(|e| format!("request: {e}"))?;
            let response = sender.send_request(request).await.map_err(|e| format!("send: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("status {}", response.status()));
            }
            let mut body = response.into_body();
            loop {
                match body.frame().await {
                    Some(Ok(frame)) if frame.data_ref().is_some_and(|d| !d.is_empty()) => break,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(format!("body: {e}")),
                    None => return Err("the stream ended before it was counted".into()),
                }
            }
            Ok::<_, String>(Open { _sender: sender, _body: Some(body) })
        });
    }
    let mut open = Vec::with_capacity(n);
    while let Some(done) = set.join_next().await {
        open.push(done.map_err(|e| e.to_string())??);
    }
    Ok(open)
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    &bytes[..end]
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1_000)
}

/// One request of `target` on a fresh connection: the status and the whole body, for checking
/// what a target answers before its rounds (a round keeps only the body's tail).
pub async fn fetch(target: &Target) -> Result<(u16, Bytes), String> {
    let mut client = Client { sender: None, outcome: Outcome::empty() };
    client.reconnect(target).await?;
    let sender = client.sender.as_mut().ok_or("not connected")?;
    let mut request = Request::builder().method(Method::POST).uri(target.path.as_str());
    let headers = request.headers_mut().ok_or("request builder")?;
    headers.insert(HOST, HeaderValue::from_static("127.0.0.1"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in &target.headers {
        headers.insert(name.clone(), value.clone());
    }
    let request =
        request.body(Full::new(target.body.clone())).map_err(|e| format!("request: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("send: {e}"))?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
    Ok((status, body))
}

/// One GET, for readiness polling: the status, or why there is none.
pub async fn get_status(addr: SocketAddr, path: &str) -> Result<u16, String> {
    call(addr, Method::GET, path, None, Bytes::new()).await.map(|(status, _)| status)
}

/// One request on a fresh connection, for setup and checks around the rounds (creating a
/// virtual key, reading `/health`): the status and the whole body.
pub async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut request = Request::builder().method(method).uri(path).header(HOST, "127.0.0.1");
    if !body.is_empty() {
        request = request.header(CONTENT_TYPE, "application/json");
    }
    if let Some(key) = bearer {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body))
}
