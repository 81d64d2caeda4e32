//! The accept loop: hyper's HTTP/1 connection settings against oversized requests
//! (`max_request_headers`, `max_request_header_size_kb`), a cap on open connections
//! (`max_connections`), and per connection a watchdog that closes it when it sits idle past
//! `keepalive_timeout` or sends a request's headers slower than `header_read_timeout`
//! (`idle.rs`). A connection beyond the cap gets a fixed 503 (GW-14) and is closed at once,
//! so a client never waits on a socket nobody reads. With TLS (`server/tls.rs`) the handshake
//! runs inside the connection's slot, under the header read timeout.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::idle::{Activity, TrackedIo};
use super::tls::Tls;
use crate::config::model::ListenerLimits;

/// The listener's own address for the connection a request came on: whether the client
/// reached a loopback address decides what an error may tell it about the server.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

impl LocalAddr {
    /// True when the request did not come through the extension (in-process tests that call
    /// the router directly), as those never cross a network.
    pub fn is_loopback_of(req_local: Option<&LocalAddr>) -> bool {
        req_local.is_none_or(|l| l.0.ip().is_loopback())
    }
}

/// The whole answer to a connection over `max_connections`: written without parsing the
/// request, then the socket is closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 268\r\n\
\r\n\
{\"error\":{\"message\":\"The gateway is at its connection limit.\",\"type\":\"overloaded\",\"code\":\"GW-14\",\"cause\":\"Every one of general_settings.max_connections is open.\",\"fix\":\"Retry after a second, reuse connections (keep-alive), or raise general_settings.max_connections.\"}}";

/// Accepts until `shutdown` resolves, then waits for open connections to finish.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: ListenerLimits,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper's one clock starts when a connection turns idle and runs until the next request's
    // headers are in: the watchdog's two deadlines always come first, this is the backstop.
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout + limits.keepalive_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_bytes)
        // The read buffer holds at most the headers plus what the body reader has not taken.
        .max_buf_size(limits.max_header_bytes.max(8192) + 64 * 1024)
        .keep_alive(true);
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(err) => {
                    // Out of descriptors or a reset before accept: keep serving the rest.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp, remote));
            continue;
        };
        if let Err(err) = tcp.set_nodelay(true) {
            // Nagle adds a delayed-ACK wait (~40 ms) to small responses on kept-alive sockets.
            tracing::debug!(%err, "could not set TCP_NODELAY");
        }
        let local = LocalAddr(tcp.local_addr().unwrap_or_else(|_| listener_addr(&listener)));
        let activity = Activity::new();
        let service = {
            let (app, activity) = (app.clone(), activity.clone());
            tower::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(local);
                let busy = activity.busy();
                let app = app.clone();
                async move {
                    let Ok(response) = app.oneshot(req).await;
                    // The body carries the guard: a stream is busy until its last byte.
                    Ok::<_, Infallible>(response.map(move |body| {
                        Body::new(body.map_frame(move |frame| {
                            let _ = &busy;
                            frame
                        }))
                    }))
                }
            })
        };
        let service = TowerToHyperService::new(service);
        let watcher = graceful.watcher();
        let (http, tls) = (http.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => serve(&http, tcp, service, activity, limits, watcher, remote).await,
                // Boxed: the TLS branch's state (handshake, rustls session) is several KiB, and
                // a task is as large as its largest branch; plain connections must not pay it.
                Some(tls) => {
                    Box::pin(async move {
                        if let Some(tls) = tls.handshake(tcp, limits.header_read_timeout).await {
                            serve(&http, tls, service, activity, limits, watcher, remote).await;
                        }
                    })
                    .await
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves one connection (plain TCP, or TLS after its handshake) until it ends, the server
/// shuts down, or the watchdog finds it idle past `keepalive_timeout` or its headers slower
/// than `header_read_timeout`.
async fn serve<I, S>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    service: S,
    activity: Arc<Activity>,
    limits: ListenerLimits,
    watcher: hyper_util::server::graceful::Watcher,
    remote: SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Send,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io = TokioIo::new(TrackedIo::new(io, activity.clone()));
    let conn = watcher.watch(http.serve_connection(io, service));
    tokio::pin!(conn);
    loop {
        // Looks again at least this often: a request's first byte or its end moves the
        // deadline, and neither wakes this task.
        let recheck =
            tokio::time::Instant::now() + limits.keepalive_timeout.min(limits.header_read_timeout);
        let deadline = activity
            .deadline(limits.keepalive_timeout, limits.header_read_timeout)
            .map_or(recheck, |d| d.min(recheck));
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(err) = ended {
                    tracing::debug!(%err, %remote, "connection ended with an error");
                }
                break;
            }
            () = tokio::time::sleep_until(deadline) => {
                let due = activity.deadline(limits.keepalive_timeout, limits.header_read_timeout);
                if due.is_some_and(|d| d <= tokio::time::Instant::now()) {
                    // Dropping the connection closes the socket: nothing is owed to a client
                    // that sent no request, or not its headers in time.
                    tracing::debug!(%remote, "connection closed: idle or headers too slow");
                    break;
                }
            }
        }
    }
}

fn listener_addr(listener: &TcpListener) -> SocketAddr {
    listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

async fn refuse(mut tcp: TcpStream, remote: SocketAddr) {
    tracing::warn!(%remote, "connection refused: at general_settings.max_connections (GW-14)");
    let write = async {
        tcp.write_all(OVER_CAPACITY).await?;
        tcp.shutdown().await
    };
    // A client that does not read must not hold this task either.
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_response() {
        let text = std::str::from_utf8(OVER_CAPACITY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize =
            head.lines().find_map(|l| l.strip_prefix("content-length: ")).unwrap().parse().unwrap();
        assert_eq!(body.len(), len);
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "GW-14");
    }
}
