//! The upstream HTTP clients: one pooled `reqwest::Client` per TLS setting, shared by every
//! deployment with that setting, and the classification of transport failures — connection
//! (NET-01), TLS (NET-02) and timeouts (NET-03).
//!
//! Never retries, never logs a header or a body. The clients honour HTTPS_PROXY / HTTP_PROXY
//! / ALL_PROXY / NO_PROXY and (for the system roots) SSL_CERT_FILE / SSL_CERT_DIR from the
//! process environment, through reqwest and rustls-native-certs; this module only reads the
//! names of those variables, through [`Env`], to say which are in effect.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::classify::{Diagnosis, ErrorKind, UpstreamError};
use crate::config::{Env, SslVerify};

/// How long a TCP (and TLS) connection may take to establish.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle pooled connections are closed after this, below the 60 s idle limit common to load
/// balancers, so a reused connection is rarely one the far end already closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);
const USER_AGENT: &str = concat!("switchyard/", env!("CARGO_PKG_VERSION"));

/// The proxy variables reqwest reads, in the order a person would look for them.
const PROXY_VARS: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// What the environment does to upstream connections, for diagnoses: variable names, and
/// the CA file path (a path, not a secret). Never proxy URLs, which may carry credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetEnv {
    pub proxy_vars: Vec<&'static str>,
    pub ssl_cert_file: Option<String>,
}

impl NetEnv {
    pub fn from_env(env: &dyn Env) -> Self {
        Self {
            proxy_vars: PROXY_VARS
                .iter()
                .copied()
                .filter(|v| env.get(v).is_some_and(|v| !v.value.is_empty()))
                .collect(),
            ssl_cert_file: env.get("SSL_CERT_FILE").map(|v| v.value).filter(|v| !v.is_empty()),
        }
    }

    fn proxies(&self) -> String {
        if self.proxy_vars.is_empty() {
            "No proxy variable (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY) is set.".to_owned()
        } else {
            format!("Proxy variables in effect: {}.", self.proxy_vars.join(", "))
        }
    }
}

/// The pooled clients of one config load, built on first use per TLS setting.
pub struct Clients {
    env: Arc<NetEnv>,
    http2: bool,
    built: Mutex<HashMap<TlsKey, Result<reqwest::Client, String>>>,
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
    pub fn get(&self, ssl: &SslVerify) -> Result<reqwest::Client, String> {
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

fn build(key: &TlsKey, http2: bool) -> Result<reqwest::Client, String> {
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
    match key {
        TlsKey::System => {}
        TlsKey::Disabled => builder = builder.danger_accept_invalid_certs(true),
        TlsKey::CaBundle(path) => {
            let shown = path.display();
            let pem = std::fs::read(path)
                .map_err(|e| format!("the CA bundle {shown} (ssl_verify) cannot be read: {e}"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
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
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
    }
    builder.build().map_err(|e| format!("the HTTP client cannot be built: {}", deepest(&e)))
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

/// Where a request was going, to name it in transport diagnoses.
pub struct Destination<'a> {
    /// e.g. "the deployment of `balanced` (anthropic/claude-sonnet-4-6)".
    pub who: &'a str,
    /// `host:port`.
    pub host_port: &'a str,
    /// The API base URL, for a command to try.
    pub base: &'a str,
    pub ssl: &'a SslVerify,
    pub env: &'a NetEnv,
}

/// A reqwest failure: NET-01 (cannot connect), NET-02 (TLS) or NET-03 (connect timeout);
/// a connection broken while reading the answer is `upstream_unavailable` too.
pub fn transport_error(err: &reqwest::Error, dest: &Destination<'_>) -> UpstreamError {
    let detail = deepest(err);
    if let Some(problem) = tls_problem(err) {
        return tls_error(dest, &problem);
    }
    if err.is_timeout() {
        return timeout_error(dest.who, Timeout::Connect, CONNECT_TIMEOUT, "the connect timeout");
    }
    if !err.is_connect() {
        return broken(dest, &detail);
    }
    // On loopback there is no network in between: a refusal means the server is not
    // running, so the deployment cools and the request falls over at once, unretried.
    let down = refused(err) && is_loopback(dest.host_port);
    let kind = if down { ErrorKind::ServerDown } else { ErrorKind::UpstreamUnavailable };
    let mut error =
        UpstreamError::new(kind, format!("cannot connect to {}: {detail}", dest.host_port));
    let (cause, remedy) = if down {
        (
            format!(
                "{} could not reach {} ({detail}). Nothing listens there.",
                dest.who, dest.host_port
            ),
            format!(
                "Start the server that should listen on {} (check with `curl -sS {}`), or set \
                 api_base to where it listens. Meanwhile the alias falls back to its next \
                 deployment when it has one.",
                dest.host_port, dest.base
            ),
        )
    } else {
        (
            format!(
                "{} could not reach {} ({detail}). {}",
                dest.who,
                dest.host_port,
                dest.env.proxies()
            ),
            format!(
                "Check that {} is reachable from this machine (curl -sS {}); behind a proxy \
                 set HTTPS_PROXY (and NO_PROXY for hosts that must bypass it); for a local \
                 server check that it runs and that api_base names its port.",
                dest.host_port, dest.base
            ),
        )
    };
    error.diagnosis = Some(Diagnosis::new("NET-01", cause, remedy));
    error
}

/// The connection broke, or the body ended, before the answer was complete: `what` says how.
pub fn broken(dest: &Destination<'_>, what: &str) -> UpstreamError {
    let mut error = UpstreamError::new(
        ErrorKind::UpstreamUnavailable,
        format!("the answer from {} broke off: {what}", dest.host_port),
    );
    error.diagnosis = Some(Diagnosis::new(
        "NET-01",
        format!(
            "The connection to {} of {} ended before the answer was complete ({what}).",
            dest.host_port, dest.who
        ),
        "Usually transient: retry the request. If it happens often, look for a proxy or load \
         balancer between the gateway and the upstream that cuts long responses.",
    ));
    error
}

fn tls_error(dest: &Destination<'_>, problem: &str) -> UpstreamError {
    let roots = match dest.ssl {
        SslVerify::CaBundle(path) => format!("the CA bundle {} (ssl_verify)", path.display()),
        SslVerify::Disabled => "nothing (ssl_verify: false)".to_owned(),
        SslVerify::System => match &dest.env.ssl_cert_file {
            Some(file) => format!("the certificates in SSL_CERT_FILE={file}"),
            None => "the system's root certificates".to_owned(),
        },
    };
    let mut error = UpstreamError::new(
        ErrorKind::Tls,
        format!("TLS with {} failed: {problem}", dest.host_port),
    );
    error.diagnosis = Some(Diagnosis::new(
        "NET-02",
        format!(
            "The TLS handshake of {} with {} failed: {problem}. Certificates were checked \
             against {roots}. {}",
            dest.who,
            dest.host_port,
            dest.env.proxies()
        ),
        "If a corporate proxy inspects TLS, give the deployment its CA with `ssl_verify: \
         /path/to/ca.pem` (or set SSL_CERT_FILE for every deployment); `ssl_verify: false` \
         only as a last resort, since anyone on the path can then read the traffic.",
    ));
    error
}

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    Connect,
    /// A whole non-streamed request.
    Request,
    /// The time to the first event of a stream.
    FirstEvent,
    /// The gap between two events of a stream.
    Idle,
}

/// NET-03. `setting` names where the value came from (`timeout`, `stream_timeout`, …).
pub fn timeout_error(who: &str, which: Timeout, after: Duration, setting: &str) -> UpstreamError {
    let after = seconds(after);
    let (message, what) = match which {
        Timeout::Connect => (
            format!("no connection within {after} (the connect timeout)"),
            format!("{who} could not be connected to within {after}"),
        ),
        Timeout::Request => (
            format!("no complete answer within {after} ({setting})"),
            format!("{who} did not answer within {after}, the timeout for a whole request"),
        ),
        Timeout::FirstEvent => (
            format!("no first stream event within {after} ({setting})"),
            format!("{who} did not start streaming within {after}"),
        ),
        Timeout::Idle => (
            format!("the stream went silent for more than {after} ({setting})"),
            format!("{who} sent nothing for more than {after} in the middle of a stream"),
        ),
    };
    let mut error = UpstreamError::new(ErrorKind::Timeout, message);
    error.diagnosis = Some(Diagnosis::new(
        "NET-03",
        format!("{what} (set by {setting})."),
        match which {
            Timeout::Connect => "Check the network path to the upstream (proxy variables, \
                                 firewall); the gateway falls back to the alias's next \
                                 deployment meanwhile."
                .to_owned(),
            _ => "Raise `timeout` (whole requests) or `stream_timeout` (time to the first \
                  event and between events) in the deployment's litellm_params, or \
                  litellm_settings.request_timeout for every deployment."
                .to_owned(),
        },
    ));
    error
}

/// `30 s`, `0.25 s`.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{} s", s.trim_end_matches('0'))
    }
}

/// The innermost message of an error chain: the one that says what actually went wrong.
/// Whether the connection was refused (a TCP reset to the SYN: nothing listens on the port).
fn refused(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// Whether `host:port` names this machine: `localhost`, 127.0.0.0/8, `[::1]` (or the
/// unspecified address, which connects to this machine too).
fn is_loopback(host_port: &str) -> bool {
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => host_port,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

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

/// Up to [`ERROR_BODY_LIMIT`] bytes of an error answer; a body that breaks off is used as
/// far as it came.
pub async fn read_capped(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
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
    use crate::config::MapEnv;

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

    #[test]
    fn loopback_hosts_are_this_machine() {
        for local in
            ["localhost:11434", "LOCALHOST", "127.0.0.1:8000", "127.1.2.3:80", "[::1]:4000"]
        {
            assert!(is_loopback(local), "{local}");
        }
        for remote in
            ["api.anthropic.com:443", "10.0.0.5:11434", "[2001:db8::1]:80", "ollama:11434"]
        {
            assert!(!is_loopback(remote), "{remote}");
        }
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

    #[test]
    fn net02_names_the_roots_and_the_remedies() {
        let env = NetEnv { proxy_vars: vec!["HTTPS_PROXY"], ssl_cert_file: None };
        let ssl = SslVerify::CaBundle("/etc/corp-ca.pem".into());
        let dest = Destination {
            who: "the deployment of `x` (anthropic/m)",
            host_port: "api.anthropic.com:443",
            base: "https://api.anthropic.com",
            ssl: &ssl,
            env: &env,
        };
        let e = tls_error(&dest, "invalid peer certificate: UnknownIssuer");
        assert_eq!(e.kind, ErrorKind::Tls);
        let d = e.diagnosis.unwrap();
        assert_eq!(d.id, "NET-02");
        assert!(d.cause.contains("UnknownIssuer"), "{}", d.cause);
        assert!(d.cause.contains("/etc/corp-ca.pem"), "{}", d.cause);
        assert!(d.cause.contains("Proxy variables in effect: HTTPS_PROXY."), "{}", d.cause);
        assert!(d.remedy.contains("ssl_verify: /path/to/ca.pem"));
        assert!(d.remedy.contains("SSL_CERT_FILE"));
        assert!(d.remedy.contains("last resort"));
    }

    #[test]
    fn net03_says_which_timeout_and_its_value() {
        let e = timeout_error(
            "the deployment of `x`",
            Timeout::FirstEvent,
            Duration::from_millis(250),
            "stream_timeout",
        );
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert_eq!(e.message, "no first stream event within 0.25 s (stream_timeout)");
        let d = e.diagnosis.unwrap();
        assert_eq!(d.id, "NET-03");
        assert!(d.cause.contains("set by stream_timeout"), "{}", d.cause);
        let e = timeout_error("d", Timeout::Request, Duration::from_secs(30), "timeout");
        assert_eq!(e.message, "no complete answer within 30 s (timeout)");
    }

    #[test]
    fn net_env_lists_names_only() {
        let env = MapEnv::new([
            ("HTTPS_PROXY", "http://user:pw@proxy:3128"),
            ("NO_PROXY", "localhost"),
            ("http_proxy", ""),
        ]);
        let net = NetEnv::from_env(&env);
        assert_eq!(net.proxy_vars, ["HTTPS_PROXY", "NO_PROXY"]);
        assert!(!net.proxies().contains("pw@"));
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
