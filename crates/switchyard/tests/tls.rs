//! HTTPS on the listener, with the real binary: certificates made at test time, the three
//! ways to name the files (`--ssl-certfile`, LiteLLM's `--ssl_certfile_path`, and
//! `SSL_CERTFILE_PATH`), a certificate replaced while serving (and a bad replacement
//! refused), plain HTTP on the TLS port, a client that stalls in the handshake, and the
//! files that stop a start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MASTER: &str = "sk-switchyard-tls-master";
/// Generous, for a loaded two-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// A self-signed certificate for 127.0.0.1 and localhost with `name` as its subject.
struct Cert {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn cert(name: &str) -> Cert {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Cert { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
}

/// Writes `text` to `path` the way deploy tools do: a temporary file renamed over it.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new(general: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let config = format!(
            "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      mock_response: \"WORKS\"\ngeneral_settings:\n  master_key: {MASTER}\n  disable_spend_logs: true\n{general}"
        );
        std::fs::write(tmp.path().join("config.yaml"), config).unwrap();
        Self { tmp }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn write_pair(&self, c: &Cert) -> (PathBuf, PathBuf) {
        replace(&self.path("key.pem"), &c.key_pem);
        replace(&self.path("cert.pem"), &c.cert_pem);
        (self.path("cert.pem"), self.path("key.pem"))
    }

    fn command(&self, args: &[&str], vars: &[(&str, &Path)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(["serve", "--port", "0", "--watch-interval-ms", "100", "--config"])
            .arg(self.path("config.yaml"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.tmp.path())
            .env("XDG_STATE_HOME", self.tmp.path());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// The gateway serving, its URL, and its log lines as they come.
    fn serve(&self, args: &[&str], vars: &[(&str, &Path)]) -> Gateway {
        let mut child =
            self.command(args, vars).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("Switchyard listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}; log: {:?}", log.lock()))
            .to_owned();
        Gateway { child, url, log }
    }
}

struct Gateway {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new client (so a new connection) trusting `roots`; returns the answer's status and the
/// certificate the gateway presented.
async fn served(gw: &Gateway, roots: &[&Cert]) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let mut builder = reqwest::Client::builder().tls_info(true).no_proxy();
    for root in roots {
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(root.cert_pem.as_bytes()).unwrap(),
        );
    }
    let resp = builder.build().unwrap().get(format!("{}/health/liveliness", gw.url)).send().await?;
    let der = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .unwrap()
        .to_vec();
    Ok((resp.status().as_u16(), der))
}

/// Polls until the gateway presents `want` to a new connection.
async fn until_served(gw: &Gateway, roots: &[&Cert], want: &Cert) {
    let started = Instant::now();
    loop {
        if let Ok((200, der)) = served(gw, roots).await
            && der == want.der
        {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "the new certificate was never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn https_serves_a_chat_and_plain_http_on_the_port_is_told_to_use_https() {
    let dir = Dir::new("");
    let a = cert("gateway-a");
    let (c, k) = dir.write_pair(&a);
    let gw = dir
        .serve(&["--ssl-certfile", c.to_str().unwrap(), "--ssl-keyfile", k.to_str().unwrap()], &[]);
    assert!(gw.url.starts_with("https://127.0.0.1:"), "{}", gw.url);

    let (status, der) = served(&gw, &[&a]).await.unwrap();
    assert_eq!((status, der), (200, a.der.clone()));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(a.cert_pem.as_bytes()).unwrap())
        .no_proxy()
        .build()
        .unwrap();
    let resp = client
        .post(format!("https://localhost:{}/v1/chat/completions", gw.port()))
        .bearer_auth(MASTER)
        .json(&json!({"model": "cheap", "messages": [{"role": "user", "content": "Say: WORKS"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "WORKS");

    // A client that does not trust the certificate is refused by its own TLS check.
    assert!(served(&gw, &[]).await.is_err());

    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{}/health/liveliness", gw.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "GW-16");
    assert!(body["error"]["fix"].as_str().unwrap().contains("https://"), "{body}");

    // And the gateway still serves HTTPS after it.
    assert_eq!(served(&gw, &[&a]).await.unwrap().0, 200);
}

#[tokio::test]
async fn a_replaced_certificate_reaches_new_connections_and_a_bad_one_is_refused() {
    let dir = Dir::new("");
    let (a, b, c) = (cert("gateway-a"), cert("gateway-b"), cert("gateway-c"));
    let (cf, kf) = dir.write_pair(&a);
    // LiteLLM's spelling of the flags.
    let gw = dir.serve(
        &["--ssl_certfile_path", cf.to_str().unwrap(), "--ssl_keyfile_path", kf.to_str().unwrap()],
        &[],
    );
    let all = [&a, &b, &c];
    assert_eq!(served(&gw, &all).await.unwrap().1, a.der);

    dir.write_pair(&b);
    until_served(&gw, &all, &b).await;

    // C's certificate with B's key: refused, B stays.
    replace(&cf, &c.cert_pem);
    let started = Instant::now();
    while !gw.logged("GW-15") {
        assert!(started.elapsed() < PATIENCE, "no GW-15 in the log: {:?}", gw.log.lock());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gw.logged("does not belong to the certificate"), "{:?}", gw.log.lock());
    assert!(gw.logged("still serving the previous certificate"), "{:?}", gw.log.lock());
    assert_eq!(served(&gw, &all).await.unwrap().1, b.der);

    // The matching key arrives: C is served.
    replace(&kf, &c.key_pem);
    until_served(&gw, &all, &c).await;
}

#[tokio::test]
async fn a_client_stalling_in_the_handshake_is_cut_and_frees_its_slot() {
    let dir = Dir::new("  header_read_timeout: 2\n  max_connections: 1\n");
    let a = cert("gateway-a");
    let (c, k) = dir.write_pair(&a);
    // Named through LiteLLM's environment variables.
    let gw = dir.serve(&[], &[("SSL_CERTFILE_PATH", &c), ("SSL_KEYFILE_PATH", &k)]);
    assert!(gw.url.starts_with("https://"), "{}", gw.url);

    // The start of a TLS record, then nothing.
    let mut stalled = TcpStream::connect(("127.0.0.1", gw.port())).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a stalled handshake kept its connection open for 15 s");

    // The only slot is free again: a real client is served, not refused with GW-14.
    let started = Instant::now();
    loop {
        match served(&gw, &[&a]).await {
            Ok((200, _)) => break,
            other => assert!(started.elapsed() < PATIENCE, "never served again: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn unusable_files_stop_the_start_with_gw15_naming_the_file_and_the_fix() {
    let dir = Dir::new("");
    let (a, b) = (cert("gateway-a"), cert("gateway-b"));
    let (c, k) = dir.write_pair(&a);
    let run = |args: &[&str], vars: &[(&str, &Path)]| {
        let out = dir.command(args, vars).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };

    let (code, err) = run(&["--ssl-certfile", c.to_str().unwrap()], &[]);
    assert_eq!(code, Some(69), "{err}");
    assert!(err.contains("GW-15") && err.contains("--ssl-keyfile"), "{err}");

    let other_key = dir.path("other-key.pem");
    std::fs::write(&other_key, &b.key_pem).unwrap();
    let (code, err) = run(
        &["--ssl-certfile", c.to_str().unwrap(), "--ssl-keyfile", other_key.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, Some(69), "{err}");
    assert!(err.contains("GW-15") && err.contains("other-key.pem"), "{err}");
    assert!(err.contains("does not belong to the certificate"), "{err}");
    assert!(err.contains("fix:"), "{err}");

    let missing = dir.path("missing.pem");
    let (code, err) = run(&[], &[("SSL_CERTFILE_PATH", &missing), ("SSL_KEYFILE_PATH", &k)]);
    assert_eq!(code, Some(69), "{err}");
    assert!(err.contains("missing.pem") && err.contains("cannot be read"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "the key's text must never be shown: {err}");
}

/// An https upstream offering h2 and http/1.1 that records what each connection picked,
/// then closes it.
async fn alpn_upstream(c: &Cert) -> (u16, Arc<Mutex<Vec<Option<Vec<u8>>>>>) {
    use rustls::pki_types::pem::PemObject;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap();
    let certs = vec![rustls::pki_types::CertificateDer::from(c.der.clone())];
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            if let Ok(tls) = acceptor.accept(tcp).await {
                record.lock().unwrap().push(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
            }
        }
    });
    (port, seen)
}

/// The protocols the gateway's calls to an https upstream negotiated, with `general` added to
/// its general_settings.
async fn upstream_protocols(general: &str) -> Vec<Option<Vec<u8>>> {
    let dir = Dir::new("");
    let up = cert("upstream");
    let ca = dir.path("upstream-ca.pem");
    std::fs::write(&ca, &up.cert_pem).unwrap();
    let (port, seen) = alpn_upstream(&up).await;
    let text = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n      api_key: sk-up\n      api_base: https://localhost:{port}/v1\n      ssl_verify: {}\ngeneral_settings:\n  master_key: {MASTER}\n  disable_spend_logs: true\n{general}",
        ca.display()
    );
    let cfg = switchyard::config::load_from_str(
        &text,
        Path::new("h2.yaml"),
        &switchyard::config::MapEnv::new::<&str, &str>([]),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let gw = switchyard::server::start(
        "127.0.0.1:0".parse().unwrap(),
        switchyard::server::Runtime::new(cfg),
    )
    .await
    .unwrap();
    // The upstream hangs up after the handshake, so the call fails; what matters is the
    // protocol it was offered and picked.
    let _ = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(MASTER)
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    gw.shutdown().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the upstream was never called");
    seen
}

#[tokio::test]
async fn upstream_http2_is_offered_only_when_configured() {
    let h2 = upstream_protocols("  upstream_http2: true\n").await;
    assert!(h2.iter().all(|p| p.as_deref() == Some(b"h2".as_slice())), "{h2:?}");
    let h1 = upstream_protocols("").await;
    assert!(h1.iter().all(|p| p.as_deref() == Some(b"http/1.1".as_slice())), "{h1:?}");
}
