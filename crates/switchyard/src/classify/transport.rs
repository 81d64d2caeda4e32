//! Transport failures — the connection, TLS and timeouts rather than an upstream's answer —
//! classified into NET-01 (cannot connect, or the answer broke off), NET-02 (TLS) and NET-03
//! (a timeout). An HTTP client describes what went wrong as a [`TransportFailure`]; nothing
//! here knows which client that was.

use std::time::Duration;

use super::{Diagnosis, ErrorKind, UpstreamError};
use crate::config::{Env, SslVerify};

/// What went wrong on the wire, as any HTTP client can tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportFailure {
    /// The connection was refused: nothing listens on the port.
    Refused,
    /// The host name did not resolve.
    Dns,
    /// Any other failure to connect (an unreachable network, a proxy refusing, a reset).
    Connect,
    /// Connecting (TCP and TLS) took longer than this.
    ConnectTimeout(Duration),
    /// The TLS handshake failed, in the TLS library's words.
    Tls(String),
    /// The connection was reset or closed before the answer was complete.
    Closed,
    /// The answer's framing or encoding could not be decoded (a bad chunk size, say).
    BodyDecode,
}

/// A transport failure and the innermost error message, which says what actually happened
/// (`Connection refused (os error 111)`, `failed to lookup address information`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    pub failure: TransportFailure,
    pub detail: String,
}

/// The proxy variables the HTTP client reads, in the order a person would look for them.
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

/// The error a transport failure on the way to `dest` is.
pub fn transport_error(transport: &Transport, dest: &Destination<'_>) -> UpstreamError {
    let detail = transport.detail.as_str();
    match &transport.failure {
        TransportFailure::Tls(problem) => return tls_error(dest, problem),
        TransportFailure::ConnectTimeout(after) => {
            return timeout_error(dest.who, Timeout::Connect, *after, "the connect timeout");
        }
        TransportFailure::Closed | TransportFailure::BodyDecode => return broken(dest, detail),
        TransportFailure::Refused | TransportFailure::Dns | TransportFailure::Connect => {}
    }
    let refused = transport.failure == TransportFailure::Refused;
    // On loopback there is no network in between: a refusal means the server is not
    // running, so the deployment cools and the request falls over at once, unretried.
    let down = refused && is_loopback(dest.host_port);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

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

    fn dest<'a>(host_port: &'a str, env: &'a NetEnv) -> Destination<'a> {
        Destination {
            who: "the deployment of `x` (openai/m)",
            host_port,
            base: "http://h/v1",
            ssl: &SslVerify::System,
            env,
        }
    }

    fn failure(failure: TransportFailure, detail: &str) -> Transport {
        Transport { failure, detail: detail.to_owned() }
    }

    #[test]
    fn a_refusal_on_this_machine_is_a_server_down_elsewhere_unavailable() {
        let env = NetEnv::default();
        let refused = failure(TransportFailure::Refused, "Connection refused (os error 111)");
        let e = transport_error(&refused, &dest("127.0.0.1:11434", &env));
        assert_eq!(e.kind, ErrorKind::ServerDown);
        assert_eq!(
            e.message,
            "cannot connect to 127.0.0.1:11434: Connection refused (os error 111)"
        );
        let d = e.diagnosis.unwrap();
        assert_eq!(d.id, "NET-01");
        assert!(d.cause.contains("Nothing listens there."), "{}", d.cause);
        let e = transport_error(&refused, &dest("ollama.internal:11434", &env));
        assert_eq!(e.kind, ErrorKind::UpstreamUnavailable);
    }

    #[test]
    fn a_name_that_does_not_resolve_is_net01_with_the_proxies_in_effect() {
        let env = NetEnv { proxy_vars: vec!["HTTPS_PROXY"], ssl_cert_file: None };
        let dns = failure(TransportFailure::Dns, "failed to lookup address information");
        // Even on a name that looks local: only a refusal says nothing listens.
        let e = transport_error(&dns, &dest("localhost:4000", &env));
        assert_eq!(e.kind, ErrorKind::UpstreamUnavailable);
        let d = e.diagnosis.unwrap();
        assert_eq!(d.id, "NET-01");
        assert!(
            d.cause.contains("failed to lookup") && d.cause.contains("HTTPS_PROXY"),
            "{}",
            d.cause
        );
        assert!(d.remedy.contains("curl -sS http://h/v1"), "{}", d.remedy);
    }

    #[test]
    fn a_connect_timeout_is_net03_and_a_broken_answer_net01() {
        let env = NetEnv::default();
        let slow = failure(TransportFailure::ConnectTimeout(Duration::from_secs(10)), "timed out");
        let e = transport_error(&slow, &dest("h:443", &env));
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert_eq!(e.message, "no connection within 10 s (the connect timeout)");
        assert_eq!(e.diagnosis.unwrap().id, "NET-03");
        for cut in [TransportFailure::Closed, TransportFailure::BodyDecode] {
            let e = transport_error(&failure(cut, "connection closed"), &dest("h:443", &env));
            assert_eq!(e.kind, ErrorKind::UpstreamUnavailable);
            assert_eq!(e.message, "the answer from h:443 broke off: connection closed");
            assert_eq!(e.diagnosis.unwrap().id, "NET-01");
        }
        let tls = failure(TransportFailure::Tls("invalid peer certificate".into()), "x");
        assert_eq!(transport_error(&tls, &dest("h:443", &env)).kind, ErrorKind::Tls);
    }
}
