//! The upstream client of the chat paths: hyper-util's pooled client over hyper-rustls,
//! with TCP_NODELAY, keep-alive, a bound on connecting (TCP and TLS together) and HTTP/2 by
//! ALPN when `general_settings.upstream_http2` is on.
//!
//! Requests are `http::Request`s whose `Uri` the provider parsed once per config load, so a
//! request costs no URL parsing; reqwest parsed the URL again in its redirect layer and for
//! `Response::url`, a twelfth of the gateway's instructions per request. A destination that
//! a proxy variable (HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, less NO_PROXY) covers goes through
//! the reqwest client built with the same TLS setting instead, which tunnels as it always did.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::header::{ACCEPT, USER_AGENT};
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

type BoxError = Box<dyn StdError + Send + Sync>;

/// The pooled client of one TLS setting, and the reqwest client for proxied destinations
/// (and the paths not moved to this one: passthrough, Bedrock, batches).
#[derive(Clone)]
pub struct Client {
    pool: Pool<Bounded, Full<Bytes>>,
    fallback: reqwest::Client,
    /// `None` when no proxy variable is set: no destination is looked up.
    proxy: Option<Arc<Matcher>>,
    user_agent: HeaderValue,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("proxied", &self.proxy.is_some()).finish_non_exhaustive()
    }
}

/// What a [`Client`] is built from.
pub struct Settings {
    pub tls: rustls::ClientConfig,
    pub http2: bool,
    pub connect_timeout: std::time::Duration,
    pub pool_idle_timeout: std::time::Duration,
    pub tcp_keepalive: std::time::Duration,
    pub user_agent: &'static str,
}

impl Client {
    /// `proxy`: which destinations go through `fallback` (built with the same proxies).
    pub fn new(settings: Settings, fallback: reqwest::Client, proxy: Option<Matcher>) -> Self {
        let mut tcp = HttpConnector::new();
        // hyper-rustls takes the https scheme; the TCP connector sees both.
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_keepalive(Some(settings.tcp_keepalive));
        let tls = settings.tls;
        let https = if settings.http2 {
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(tcp)
        } else {
            // HTTP/1.1 offered by ALPN, as reqwest did: some servers insist on a protocol. The
            // builder leaves ALPN empty for HTTP/1-only, so the connector is built from parts.
            let mut tls = tls;
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            hyper_rustls::HttpsConnector::from((tcp, tls))
        };
        let pool = Pool::builder(TokioExecutor::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(Bounded { inner: https, after: settings.connect_timeout });
        Self {
            pool,
            fallback,
            proxy: proxy.map(Arc::new),
            user_agent: HeaderValue::from_static(settings.user_agent),
        }
    }

    /// The reqwest client with the same TLS setting.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.fallback
    }

    /// Sends `request` (the user agent and `accept: */*` added unless set, as reqwest did)
    /// and resolves with the answer's head; the body is read from the [`Response`].
    pub fn send(
        &self,
        mut request: Request<Bytes>,
    ) -> impl Future<Output = Result<Response, Error>> + Send + 'static {
        let headers = request.headers_mut();
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, self.user_agent.clone());
        }
        if !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        let proxied = self.proxy.as_ref().is_some_and(|m| m.intercept(request.uri()).is_some());
        if proxied {
            Sending::Proxied(Box::pin(via_reqwest(self.fallback.clone(), request)))
        } else {
            Sending::Direct(self.pool.request(request.map(Full::new)))
        }
    }
}

/// The proxies of the process environment, as reqwest reads them; `None` when no proxy
/// variable is set, so that no destination is looked up.
pub fn env_proxies() -> Option<Matcher> {
    ["ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
        .then(Matcher::from_env)
}

async fn via_reqwest(client: reqwest::Client, request: Request<Bytes>) -> Result<Response, Error> {
    let request = reqwest::Request::try_from(request).map_err(|e| Error(Inner::Proxied(e)))?;
    let response = client.execute(request).await.map_err(|e| Error(Inner::Proxied(e)))?;
    let response = http::Response::from(response);
    let (head, body) = response.into_parts();
    Ok(Response { status: head.status, headers: head.headers, body: Body::Proxied(body) })
}

/// The future of [`Client::send`]: the pool's own future, unboxed, on the direct path.
enum Sending {
    Direct(hyper_util::client::legacy::ResponseFuture),
    Proxied(Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>),
}

impl Future for Sending {
    type Output = Result<Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Sending::Direct(f) => Pin::new(f).poll(cx).map(|r| match r {
                Ok(response) => {
                    let (head, body) = response.into_parts();
                    Ok(Response {
                        status: head.status,
                        headers: head.headers,
                        body: Body::Direct(body),
                    })
                }
                Err(e) => Err(Error(Inner::Request(e))),
            }),
            Sending::Proxied(f) => f.as_mut().poll(cx),
        }
    }
}

/// An upstream answer: its head, and its body read as it arrives.
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

enum Body {
    Direct(Incoming),
    Proxied(reqwest::Body),
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        std::future::poll_fn(|cx| self.body.poll_data(cx)).await.transpose()
    }

    /// The whole body. A body that came in one piece is returned without a copy.
    pub async fn bytes(mut self) -> Result<Bytes, Error> {
        let Some(first) = self.chunk().await? else { return Ok(Bytes::new()) };
        let Some(second) = self.chunk().await? else { return Ok(first) };
        let mut all = BytesMut::with_capacity(first.len() + second.len());
        all.extend_from_slice(&first);
        all.extend_from_slice(&second);
        while let Some(more) = self.chunk().await? {
            all.extend_from_slice(&more);
        }
        Ok(all.freeze())
    }

    /// The body as a stream of pieces.
    pub fn bytes_stream(self) -> BodyStream {
        BodyStream(self.body)
    }
}

impl Body {
    /// The next data frame, skipping trailers.
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        loop {
            let frame = match self {
                Body::Direct(b) => match std::task::ready!(Pin::new(b).poll_frame(cx)) {
                    None => return Poll::Ready(None),
                    Some(Err(e)) => return Poll::Ready(Some(Err(Error(Inner::Body(e))))),
                    Some(Ok(frame)) => frame,
                },
                Body::Proxied(b) => match std::task::ready!(Pin::new(b).poll_frame(cx)) {
                    None => return Poll::Ready(None),
                    Some(Err(e)) => return Poll::Ready(Some(Err(Error(Inner::Proxied(e))))),
                    Some(Ok(frame)) => frame,
                },
            };
            if let Ok(data) = frame.into_data() {
                return Poll::Ready(Some(Ok(data)));
            }
        }
    }
}

/// [`Response::bytes_stream`].
pub struct BodyStream(Body);

impl Stream for BodyStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.poll_data(cx)
    }
}

/// A failed upstream call, for `http::transport_error` to classify.
#[derive(Debug)]
pub struct Error(Inner);

#[derive(Debug)]
enum Inner {
    /// Connecting, or sending the request and reading the answer's head.
    Request(hyper_util::client::legacy::Error),
    /// Reading the body.
    Body(hyper::Error),
    Proxied(reqwest::Error),
}

/// What went wrong, as `http::describe` needs to know it.
pub(super) enum Failed<'a> {
    /// `connect`: the connection was never established.
    Direct {
        connect: bool,
        source: &'a (dyn StdError + 'static),
    },
    Proxied(&'a reqwest::Error),
}

impl Error {
    pub(super) fn failed(&self) -> Failed<'_> {
        match &self.0 {
            Inner::Request(e) => Failed::Direct { connect: e.is_connect(), source: e },
            Inner::Body(e) => Failed::Direct { connect: false, source: e },
            Inner::Proxied(e) => Failed::Proxied(e),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Request(_) => f.write_str("error sending request"),
            Inner::Body(_) => f.write_str("error reading a body from connection"),
            Inner::Proxied(e) => e.fmt(f),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.0 {
            Inner::Request(e) => Some(e),
            Inner::Body(e) => Some(e),
            Inner::Proxied(e) => e.source(),
        }
    }
}

/// The connector, with connecting (TCP and the TLS handshake) bounded as reqwest's
/// `connect_timeout` bounded it.
#[derive(Clone)]
struct Bounded {
    inner: HttpsConnector<HttpConnector>,
    after: std::time::Duration,
}

/// Connecting took longer than the connect timeout.
#[derive(Debug)]
pub(super) struct ConnectTimedOut;

impl fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation timed out")
    }
}

impl StdError for ConnectTimedOut {}

impl tower_service::Service<Uri> for Bounded {
    type Response = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let after = self.after;
        Box::pin(async move {
            match tokio::time::timeout(after, connecting).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(ConnectTimedOut) as BoxError),
            }
        })
    }
}

/// The TLS settings of one `ssl_verify` value, with ring as reqwest uses it.
pub mod tls {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, String> {
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("the TLS settings cannot be built: {e}"))
    }

    /// The system roots (SSL_CERT_FILE / SSL_CERT_DIR honoured by rustls-native-certs).
    pub fn system() -> Result<ClientConfig, String> {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        Ok(builder()?.with_root_certificates(roots).with_no_client_auth())
    }

    /// Only `certs` are trusted, as Python's `verify=path`.
    pub fn bundle(certs: Vec<CertificateDer<'static>>) -> Result<ClientConfig, String> {
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots.add(cert).map_err(|e| format!("a certificate is not usable: {e}"))?;
        }
        Ok(builder()?.with_root_certificates(roots).with_no_client_auth())
    }

    /// No verification at all (`ssl_verify: false`).
    pub fn unverified() -> Result<ClientConfig, String> {
        let provider = provider();
        Ok(builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth())
    }

    #[derive(Debug)]
    struct AcceptAny(Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

/// An upstream URL, parsed once per config load rather than once per request.
pub struct Endpoint {
    text: String,
    uri: Option<Uri>,
}

impl Endpoint {
    pub fn new(text: String) -> Self {
        Self { uri: text.parse().ok(), text }
    }

    /// A POST of `body` to this URL with `headers`; `who` names the deployment when the URL
    /// cannot be used.
    pub fn post(
        &self,
        headers: HeaderMap,
        body: Bytes,
        who: &str,
    ) -> Result<Request<Bytes>, crate::classify::UpstreamError> {
        let Some(uri) = &self.uri else {
            return Err(crate::classify::UpstreamError::new(
                crate::classify::ErrorKind::Configuration,
                format!("{who}: the URL `{}` (api_base) is not a valid URL", self.text),
            ));
        };
        let mut request = Request::new(body);
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// A reqwest answer read through the same type (the fuzz targets' canned streams).
impl From<reqwest::Response> for Response {
    fn from(response: reqwest::Response) -> Self {
        let (head, body) = http::Response::from(response).into_parts();
        Response { status: head.status, headers: head.headers, body: Body::Proxied(body) }
    }
}
