//! TLS on the listener: the certificate and key files (`--ssl-certfile`, `--ssl-keyfile`),
//! loaded into a rustls `ServerConfig` that is swapped whole when the files change, and the
//! handshake of one connection, bounded by the header read timeout so a client that never
//! finishes it cannot hold a connection slot.
//!
//! A certificate or key that cannot be used is GW-15: at start the gateway refuses to serve;
//! on a change it keeps the certificate it has and says why in the log. A plain-HTTP request
//! on the TLS port is answered GW-16 in plain HTTP, so a client that forgot `https://` reads
//! what to change instead of a reset connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Where the certificate chain and its private key are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a certificate or key cannot be served (GW-15): the file, what is wrong, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    pub file: PathBuf,
    pub problem: String,
    pub fix: String,
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TLS: {} cannot be used (GW-15): {}.\n  fix: {}",
            self.file.display(),
            self.problem,
            self.fix
        )
    }
}

/// The listener's TLS: the `ServerConfig` new connections get, and the files it came from.
pub struct Tls {
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
    /// The files as last read, good or bad: a bad pair is refused once, not on every poll,
    /// and read again as soon as either file changes.
    seen: Mutex<Stamp>,
}

/// What a check of the files found.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Swapped,
    Refused(TlsError),
}

impl Tls {
    /// Reads both files; every problem a client would otherwise meet as a failed handshake
    /// is found here.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let stamp = Stamp::of(&files);
        let config = server_config(&files)?;
        Ok(Arc::new(Self {
            files,
            current: ArcSwap::from_pointee(config),
            seen: Mutex::new(stamp),
        }))
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again if either changed since the last read, and swaps the
    /// certificate in only when the new pair is usable. Connections already open keep the
    /// one they were made with.
    pub fn check(&self) -> Reload {
        let stamp = Stamp::of(&self.files);
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if *seen == stamp {
                return Reload::Unchanged;
            }
            *seen = stamp;
        }
        match server_config(&self.files) {
            Ok(config) => {
                self.current.store(Arc::new(config));
                tracing::info!(cert = %self.files.cert.display(), key = %self.files.key.display(), "TLS certificate reloaded");
                Reload::Swapped
            }
            Err(err) => {
                tracing::error!(
                    file = %err.file.display(),
                    "TLS certificate not reloaded (GW-15): {}; still serving the previous certificate. fix: {}",
                    err.problem,
                    err.fix
                );
                Reload::Refused(err)
            }
        }
    }

    /// Checks the files every `every` until the process ends. Polling, as the config watcher
    /// does: it sees a file replaced by a rename or a symlink swap (a Kubernetes secret, a
    /// certbot renewal) as well as one rewritten in place.
    pub fn spawn_watcher(self: &Arc<Self>, every: Duration) {
        let tls = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                tls.check();
            }
        });
    }

    /// The TLS handshake of one accepted connection, within `timeout` (the header read
    /// timeout: a client that stalls here is treated as one that stalls in its headers).
    /// `None` when the connection is over: the handshake failed or timed out, or the client
    /// spoke plain HTTP and got GW-16.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        timeout: Duration,
    ) -> Option<TlsStream<TcpStream>> {
        let acceptor = TlsAcceptor::from(self.current.load_full());
        let remote = tcp.peer_addr().ok();
        let accept = async {
            // A TLS connection opens with a handshake record (0x16); an HTTP method's first
            // letter means the client forgot `https://`.
            let mut first = [0u8; 1];
            if tcp.peek(&mut first).await? == 1 && first[0].is_ascii_uppercase() {
                return Ok(Err(tcp));
            }
            acceptor.accept(tcp).await.map(Ok)
        };
        match tokio::time::timeout(timeout, accept).await {
            Ok(Ok(Ok(stream))) => Some(stream),
            Ok(Ok(Err(plain))) => {
                tracing::debug!(?remote, "plain HTTP on the TLS port (GW-16)");
                answer_plain_http(plain).await;
                None
            }
            Ok(Err(err)) => {
                tracing::debug!(%err, ?remote, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(
                    ?remote,
                    "TLS handshake not finished within the header read timeout"
                );
                None
            }
        }
    }
}

/// The whole answer to plain HTTP on the TLS port.
fn plain_http_answer() -> String {
    let body = "{\"error\":{\"message\":\"This port speaks HTTPS; the request came as plain HTTP.\",\"type\":\"invalid_request_error\",\"code\":\"GW-16\",\"cause\":\"The gateway was started with --ssl-certfile, so every connection must begin with a TLS handshake.\",\"fix\":\"Call the gateway at https:// instead of http:// (and trust its certificate's CA).\"}}";
    format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

async fn answer_plain_http(mut tcp: TcpStream) {
    let answer = async {
        tcp.write_all(plain_http_answer().as_bytes()).await?;
        tcp.shutdown().await?;
        // Closing with the request still unread would reset the connection, and a reset
        // can discard the answer before the client reads it.
        let mut sink = [0u8; 4096];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), answer).await;
}

/// Size and modification time of both files (`None` for one that cannot be read): a
/// change in either reads the pair again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp([Option<(u64, SystemTime)>; 2]);

impl Stamp {
    fn of(files: &TlsFiles) -> Self {
        let one =
            |p: &Path| std::fs::metadata(p).ok().and_then(|m| Some((m.len(), m.modified().ok()?)));
        Self([one(&files.cert), one(&files.key)])
    }
}

fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError {
            file: files.cert.clone(),
            problem: format!("TLS cannot be set up: {e}"),
            fix: "report this as a bug".to_owned(),
        })?
        .with_no_client_auth();
    let mut config = builder.with_single_cert(certs, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError {
            file: files.key.clone(),
            problem: format!("this private key does not belong to the certificate in {}", files.cert.display()),
            fix: "pass the key the certificate was issued for (`openssl x509 -noout -pubkey -in CERT` and `openssl pkey -pubout -in KEY` print the same key when they match)".to_owned(),
        },
        other => TlsError {
            file: files.key.clone(),
            problem: format!("the private key cannot be used: {other}"),
            fix: "use an RSA (2048 bits or more), ECDSA P-256/P-384 or Ed25519 key in PEM".to_owned(),
        },
    })?;
    // The server side speaks HTTP/1.1 only: offering h2 would break clients that pick it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read(path: &Path, what: &str, flag: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError {
        file: path.to_owned(),
        problem: format!("the {what} file cannot be read: {e}"),
        fix: format!("check the path given to {flag} and that the gateway's user may read it"),
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path, "certificate", "--ssl-certfile")?;
    let bad = |problem: String, fix: &str| TlsError {
        file: path.to_owned(),
        problem,
        fix: fix.to_owned(),
    };
    let certs =
        CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, pem::Error>>().map_err(
            |e| bad(format!("it is not valid PEM ({e})"), "pass the certificate chain in PEM form"),
        )?;
    if certs.is_empty() {
        let fix = if PrivateKeyDer::from_pem_slice(&bytes).is_ok() {
            "this file holds a private key: pass it to --ssl-keyfile, and the certificate to --ssl-certfile"
        } else {
            "pass the certificate in PEM form (`-----BEGIN CERTIFICATE-----`); a DER file converts with `openssl x509 -inform der -in cert.der -out cert.pem`"
        };
        return Err(bad("it holds no PEM certificate".to_owned(), fix));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path, "private key", "--ssl-keyfile")?;
    let bad = |problem: &str, fix: &str| TlsError {
        file: path.to_owned(),
        problem: problem.to_owned(),
        fix: fix.to_owned(),
    };
    // The parser's own message is not repeated: it could quote part of the key.
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(_) if contains(&bytes, b"ENCRYPTED") => Err(bad(
            "the private key is encrypted with a passphrase",
            "write it unencrypted for the gateway (`openssl pkey -in KEY -out key.pem`) and keep that file readable by the gateway's user only",
        )),
        Err(_) if CertificateDer::from_pem_slice(&bytes).is_ok() => Err(bad(
            "it holds a certificate, not a private key",
            "pass the private key to --ssl-keyfile and the certificate to --ssl-certfile",
        )),
        Err(pem::Error::NoItemsFound) => Err(bad(
            "it holds no PEM private key",
            "pass the key in PEM form (`-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)",
        )),
        Err(_) => Err(bad(
            "the private key is not valid PEM",
            "pass the key in PEM form, as written by the tool that made it",
        )),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_http_answer_is_a_complete_response() {
        let text = plain_http_answer();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize =
            head.lines().find_map(|l| l.strip_prefix("content-length: ")).unwrap().parse().unwrap();
        assert_eq!(body.len(), len);
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "GW-16");
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn files(dir: &Path, cert: &str, key: &str) -> TlsFiles {
        TlsFiles { cert: write(dir, "cert.pem", cert), key: write(dir, "key.pem", key) }
    }

    #[test]
    fn a_missing_file_names_itself_and_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let f = TlsFiles { cert: dir.path().join("nope.pem"), key: dir.path().join("k.pem") };
        let err = Tls::load(f).err().unwrap();
        assert!(err.file.ends_with("nope.pem"));
        assert!(err.problem.contains("cannot be read"), "{err}");
        assert!(err.fix.contains("--ssl-certfile"), "{err}");
        assert!(err.to_string().contains("GW-15"));
    }

    #[test]
    fn files_that_are_not_pem_or_swapped_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let key =
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        let err = Tls::load(files(dir.path(), "not a certificate", key)).err().unwrap();
        assert_eq!(err.problem, "it holds no PEM certificate");
        let err = Tls::load(files(dir.path(), key, key)).err().unwrap();
        assert!(err.fix.contains("holds a private key"), "{err}");
        let cert = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        let err = Tls::load(files(dir.path(), cert, cert)).err().unwrap();
        assert!(err.file.ends_with("key.pem"));
        assert_eq!(err.problem, "it holds a certificate, not a private key");
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = Tls::load(files(dir.path(), cert, encrypted)).err().unwrap();
        assert!(err.problem.contains("encrypted"), "{err}");
    }
}
