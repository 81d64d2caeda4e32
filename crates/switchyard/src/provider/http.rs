//! The upstream HTTP clients: one pooled [`Client`] per TLS setting (hyper directly, with a
//! reqwest client beside it for proxied destinations and the less travelled paths), shared
//! by every deployment with that setting; a transport failure described as a
//! [`TransportFailure`] for `classify` to turn into NET-01/02/03; the timeouts providers
//! bound their calls with.
//!
//! Never retries, never logs a header or a body. The clients honour HTTPS_PROXY / HTTP_PROXY
//! / ALL_PROXY / NO_PROXY and (for the system roots) SSL_CERT_FILE / SSL_CERT_DIR from the
//! process environment, through reqwest, hyper-util's proxy matcher and
//! rustls-native-certs; `NetEnv` only reads the names of those variables, to say which are
//! in effect.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use super::client::{Client, Error, Response};
use super::client::{ConnectTimedOut, Failed, Settings, tls};
use crate::classify::{self, Diagnosis, ErrorKind, Transport, TransportFailure, UpstreamError};
pub use crate::classify::{Destination, NetEnv, Timeout, broken, timeout_error};
use crate::config::SslVerify;

/// How long a TCP (and TLS) connection may take to establish.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle pooled connections are closed after this, below the 60 s idle limit common to load
/// balancers, so a reused connection is rarely one the far end already closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);
const USER_AGENT: &str = concat!("switchyard/", env!("CARGO_PKG_VERSION"));

/// The pooled clients of one config load, built on first use per TLS setting.
pub struct Clients {
    env: Arc<NetEnv>,
    http2: bool,
    built: Mutex<HashMap<TlsKey, Result<Client, String>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TlsKey {
    System,
    CaBundle(std::path::PathBuf),
    Disabled,
}

impl Clients {
    pub fn new(env: NetEnv) -> Self {
        Self { env: Arc::new(env), http2: false, built: Mutex::new(HashMap::new()) }
    }

    /// Offers HTTP/2 to https upstreams (`general_settings.upstream_http2`): one connection
    /// carries every concurrent call to a host instead of one connection each.
    pub fn with_http2(mut self, http2: bool) -> Self {
        self.http2 = http2;
        self
    }

    pub fn net_env(&self) -> Arc<NetEnv> {
        Arc::clone(&self.env)
    }

    /// The client for `ssl`, shared with every other deployment using the same setting. The
    /// error says why the TLS setup failed (an unreadable CA bundle).
    pub fn get(&self, ssl: &SslVerify) -> Result<Client, String> {
        let key = match ssl {
            SslVerify::System => TlsKey::System,
            SslVerify::CaBundle(path) => TlsKey::CaBundle(path.clone()),
            SslVerify::Disabled => TlsKey::Disabled,
        };
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        built
            .entry(key)
            .or_insert_with_key(|key| {
                let client = build(key, self.http2);
                if let Err(problem) = &client {
                    tracing::warn!(%problem, "an upstream HTTP client could not be built");
                }
                client
            })
            .clone()
    }
}

fn build(key: &TlsKey, http2: bool) -> Result<Client, String> {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .tcp_nodelay(true)
        .tcp_keepalive(TCP_KEEPALIVE)
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT);
    // With the `http2` feature reqwest offers h2 to every https upstream; it stays opt-in so
    // that upstreams reached over HTTP/1.1 today are reached the same way after an upgrade.
    if !http2 {
        builder = builder.http1_only();
    }
    let tls = match key {
        TlsKey::System => tls::system()?,
        TlsKey::Disabled => {
            builder = builder.danger_accept_invalid_certs(true);
            tls::unverified()?
        }
        TlsKey::CaBundle(path) => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let shown = path.display();
            let pem = std::fs::read(path)
                .map_err(|e| format!("the CA bundle {shown} (ssl_verify) cannot be read: {e}"))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    format!("the CA bundle {shown} (ssl_verify) is not a PEM certificate file: {e}")
                })?;
            if certs.is_empty() {
                return Err(format!(
                    "the CA bundle {shown} (ssl_verify) holds no PEM certificate \
                     (-----BEGIN CERTIFICATE-----)"
                ));
            }
            // Like Python's `verify=path`: this bundle replaces the system roots.
            builder = builder.tls_built_in_root_certs(false);
            for cert in &certs {
                let cert = reqwest::Certificate::from_der(cert).map_err(|e| {
                    format!("the CA bundle {shown} (ssl_verify) is not a PEM certificate file: {e}")
                })?;
                builder = builder.add_root_certificate(cert);
            }
            tls::bundle(certs)
                .map_err(|e| format!("the CA bundle {shown} (ssl_verify) cannot be used: {e}"))?
        }
    };
    let fallback =
        builder.build().map_err(|e| format!("the HTTP client cannot be built: {}", deepest(&e)))?;
    let settings = Settings {
        tls,
        http2,
        connect_timeout: CONNECT_TIMEOUT,
        pool_idle_timeout: POOL_IDLE_TIMEOUT,
        tcp_keepalive: TCP_KEEPALIVE,
        user_agent: USER_AGENT,
    };
    Ok(Client::new(settings, fallback, super::client::env_proxies()))
}

/// The error every request of a deployment gets when its client could not be built.
pub fn setup_error(who: &str, problem: &str) -> UpstreamError {
    let mut error = UpstreamError::new(ErrorKind::Configuration, format!("{who}: {problem}"));
    error.diagnosis = Some(Diagnosis::new(
        "CFG-08",
        format!("Requests to {who} cannot be sent: {problem}."),
        "Give `ssl_verify` the path of a readable PEM file with the CA certificates, or \
         `true` for the system roots, then reload.",
    ));
    error
}

/// A transport failure, classified: NET-01 (cannot connect, or the answer broke off), NET-02
/// (TLS) or NET-03 (connect timeout).
pub fn transport_error(err: &impl Describe, dest: &Destination<'_>) -> UpstreamError {
    classify::transport_error(&err.describe(), dest)
}

/// A failure of either client, in the terms [`classify::transport_error`] takes.
pub trait Describe {
    fn describe(&self) -> Transport;
}

impl Describe for reqwest::Error {
    fn describe(&self) -> Transport {
        describe(self)
    }
}

impl Describe for super::client::Error {
    fn describe(&self) -> Transport {
        let (connect, err) = match self.failed() {
            Failed::Proxied(e) => return describe(e),
            Failed::Direct { connect, source } => (connect, source),
        };
        described(err, timed_out(err), connect, false)
    }
}

/// Connecting took too long: the connector's bound, or the system's own TCP timeout (what
/// reqwest's `is_timeout` recognised).
fn timed_out(err: &(dyn StdError + 'static)) -> bool {
    in_chain(err, |e| {
        e.is::<ConnectTimedOut>()
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// What went wrong, in the terms [`classify::transport_error`] takes.
fn describe(err: &reqwest::Error) -> Transport {
    described(err, err.is_timeout(), err.is_connect(), err.is_decode())
}

/// The failure of either client, from what it says of `err`: whether it timed out, whether it
/// happened while connecting, whether a body failed to decode.
fn described(
    err: &(dyn StdError + 'static),
    timed_out: bool,
    connect: bool,
    decode: bool,
) -> Transport {
    let failure = if let Some(problem) = tls_problem(err) {
        TransportFailure::Tls(problem)
    } else if timed_out {
        // Only connecting is bounded by the client; whole requests by the provider.
        TransportFailure::ConnectTimeout(CONNECT_TIMEOUT)
    } else if !connect {
        if decode { TransportFailure::BodyDecode } else { TransportFailure::Closed }
    } else if refused(err) {
        TransportFailure::Refused
    } else if in_chain(err, |e| e.to_string().starts_with("dns error")) {
        TransportFailure::Dns
    } else {
        TransportFailure::Connect
    };
    Transport { failure, detail: deepest(err) }
}

/// Whether the connection was refused (a TCP reset to the SYN: nothing listens on the port).
fn refused(err: &(dyn StdError + 'static)) -> bool {
    in_chain(err, |e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

fn in_chain(
    err: &(dyn StdError + 'static),
    test: impl Fn(&(dyn StdError + 'static)) -> bool,
) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if test(e) {
            return true;
        }
        current = e.source();
    }
    false
}

/// The innermost message of an error chain: the one that says what actually went wrong.
fn deepest(err: &(dyn StdError + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// The TLS failure in an error chain, if it is one (rustls's messages, as hyper-util and
/// tokio-rustls wrap them).
fn tls_problem(err: &(dyn StdError + 'static)) -> Option<String> {
    const MARKERS: &[&str] = &[
        "certificate",
        "fatal alert",
        "corrupt message",
        "peer is incompatible",
        "peer misbehaved",
        "handshake",
        "tls",
    ];
    let mut found = None;
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        let lower = text.to_ascii_lowercase();
        if MARKERS.iter().any(|m| lower.contains(m)) {
            found = Some(text);
        }
        current = e.source();
    }
    found
}

/// A timeout and the setting it came from, for NET-03.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub after: Duration,
    pub setting: &'static str,
}

/// `work` (send and read the answer) within `limit`; NET-03 naming `who` when it fires.
pub async fn bounded<T>(
    who: &str,
    limit: Limit,
    which: Timeout,
    work: impl std::future::Future<Output = Result<T, UpstreamError>>,
) -> Result<T, UpstreamError> {
    match tokio::time::timeout(limit.after, work).await {
        Ok(result) => result,
        Err(_) => Err(timeout_error(who, which, limit.after, limit.setting)),
    }
}

/// The most of an error body that is read: error bodies are small; a proxy's page need not
/// be read whole.
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// An answer whose body is read a piece at a time.
pub trait ReadChunk {
    fn chunk(&mut self) -> impl std::future::Future<Output = Option<bytes::Bytes>> + Send;
}

impl ReadChunk for reqwest::Response {
    async fn chunk(&mut self) -> Option<bytes::Bytes> {
        reqwest::Response::chunk(self).await.ok().flatten()
    }
}

impl ReadChunk for Response {
    async fn chunk(&mut self) -> Option<bytes::Bytes> {
        Response::chunk(self).await.ok().flatten()
    }
}

/// Up to [`ERROR_BODY_LIMIT`] bytes of an error answer; a body that breaks off is used as
/// far as it came.
pub async fn read_capped(mut response: impl ReadChunk) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(chunk) = ReadChunk::chunk(&mut response).await {
        let room = ERROR_BODY_LIMIT.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= ERROR_BODY_LIMIT {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Chain(&'static str, Option<Box<Chain>>);
    impl std::fmt::Display for Chain {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Chain {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|c| c as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn tls_failures_are_found_deep_in_the_chain() {
        let inner = Chain("invalid peer certificate: UnknownIssuer", None);
        let err = Chain(
            "error sending request",
            Some(Box::new(Chain("client error (Connect)", Some(Box::new(inner))))),
        );
        assert_eq!(tls_problem(&err).as_deref(), Some("invalid peer certificate: UnknownIssuer"));
        let dns = Chain(
            "error sending request",
            Some(Box::new(Chain("dns error: failed to lookup address information", None))),
        );
        assert_eq!(tls_problem(&dns), None);
        assert_eq!(deepest(&dns), "dns error: failed to lookup address information");
    }

    /// A real refused connection: a port nothing listens on, on loopback.
    #[tokio::test]
    async fn a_refused_local_connection_is_a_server_down() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let host_port = format!("127.0.0.1:{port}");
        let base = format!("http://{host_port}/v1");
        let err = reqwest::Client::new().get(&base).send().await.unwrap_err();
        let (env, ssl) = (NetEnv::default(), SslVerify::System);
        let dest = Destination {
            who: "the deployment of `free` (ollama/llama3)",
            host_port: &host_port,
            base: &base,
            ssl: &ssl,
            env: &env,
        };
        let e = transport_error(&err, &dest);
        assert_eq!(e.kind, ErrorKind::ServerDown, "{}", e.message);
        assert!(e.message.starts_with("cannot connect to 127.0.0.1:"), "{}", e.message);
        let d = e.diagnosis.unwrap();
        assert_eq!(d.id, "NET-01");
        assert!(d.cause.contains("Nothing listens there."), "{}", d.cause);
        // The same refusal from a host elsewhere may be a restart in progress: retryable.
        let far = Destination { host_port: "ollama.internal:11434", ..dest };
        assert_eq!(transport_error(&err, &far).kind, ErrorKind::UpstreamUnavailable);
    }

    fn local(host_port: &str) -> (String, http::Request<bytes::Bytes>) {
        let base = format!("http://{host_port}/v1");
        let endpoint = super::super::client::Endpoint::new(format!("{base}/messages"));
        let request = endpoint.post(http::HeaderMap::new(), "{}".into(), "the test").unwrap();
        (base, request)
    }

    /// The same refusal through the hyper client: the same diagnosis.
    #[tokio::test]
    async fn a_refused_connection_through_the_pool_is_a_server_down() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let host_port = format!("127.0.0.1:{port}");
        let (base, request) = local(&host_port);
        let client = Clients::new(NetEnv::default()).get(&SslVerify::System).unwrap();
        let err = client.send(request).await.err().unwrap();
        let (env, ssl) = (NetEnv::default(), SslVerify::System);
        let dest = Destination {
            who: "the deployment",
            host_port: &host_port,
            base: &base,
            ssl: &ssl,
            env: &env,
        };
        let e = transport_error(&err, &dest);
        assert_eq!(e.kind, ErrorKind::ServerDown, "{}", e.message);
        assert_eq!(e.diagnosis.unwrap().id, "NET-01");
    }

    /// An answer cut short mid-body is NET-01 "closed", and a TLS handshake with a server
    /// that speaks plain HTTP is NET-02.
    #[tokio::test]
    async fn a_cut_body_and_a_failed_handshake_are_classified() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host_port = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"id\":")
                    .await;
            }
        });
        let client = Clients::new(NetEnv::default()).get(&SslVerify::System).unwrap();
        let (env, ssl) = (NetEnv::default(), SslVerify::System);
        let (base, request) = local(&host_port);
        let dest = Destination {
            who: "the deployment",
            host_port: &host_port,
            base: &base,
            ssl: &ssl,
            env: &env,
        };
        let response = client.send(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let err = response.bytes().await.unwrap_err();
        let e = transport_error(&err, &dest);
        assert_eq!(e.diagnosis.as_ref().unwrap().id, "NET-01", "{}", e.message);
        assert!(matches!(err.describe().failure, TransportFailure::Closed));

        let secure = super::super::client::Endpoint::new(format!("https://{host_port}/v1"));
        let request = secure.post(http::HeaderMap::new(), "{}".into(), "the test").unwrap();
        let err = client.send(request).await.err().unwrap();
        assert!(matches!(err.describe().failure, TransportFailure::Tls(_)), "{err:?}");
        assert_eq!(transport_error(&err, &dest).diagnosis.unwrap().id, "NET-02");
    }

    /// A destination a proxy covers goes through the proxy (reqwest's tunnel); others not.
    #[tokio::test]
    async fn a_proxied_destination_goes_through_the_proxy() {
        use hyper_util::client::proxy::matcher::Matcher;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = format!("http://{}", listener.local_addr().unwrap());
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let head =
                    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_owned();
                let _ = seen_tx.send(head);
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
            }
        });
        let fallback = reqwest::Client::builder()
            .proxy(reqwest::Proxy::http(&proxy).unwrap())
            .build()
            .unwrap();
        let settings = Settings {
            tls: tls::system().unwrap(),
            http2: false,
            connect_timeout: CONNECT_TIMEOUT,
            pool_idle_timeout: POOL_IDLE_TIMEOUT,
            tcp_keepalive: TCP_KEEPALIVE,
            user_agent: USER_AGENT,
        };
        let matcher = Matcher::builder().http(proxy.clone()).build();
        let client = Client::new(settings, fallback, Some(matcher));
        let (_, request) = local("upstream.invalid:8080");
        let response = client.send(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(&response.bytes().await.unwrap()[..], b"ok");
        assert_eq!(
            seen.recv().await.unwrap(),
            "POST http://upstream.invalid:8080/v1/messages HTTP/1.1"
        );
    }

    #[test]
    fn an_unreadable_ca_bundle_is_a_clear_error_and_clients_are_shared() {
        let clients = Clients::new(NetEnv::default());
        let err = clients.get(&SslVerify::CaBundle("/nonexistent/ca.pem".into())).unwrap_err();
        assert!(err.contains("/nonexistent/ca.pem") && err.contains("cannot be read"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = clients.get(&SslVerify::CaBundle(junk)).unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        assert!(clients.get(&SslVerify::System).is_ok());
        assert!(clients.get(&SslVerify::Disabled).is_ok());
        assert_eq!(clients.built.lock().unwrap().len(), 4);
        clients.get(&SslVerify::System).unwrap();
        assert_eq!(clients.built.lock().unwrap().len(), 4);
    }
}
