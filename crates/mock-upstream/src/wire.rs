//! Faults below HTTP: a connection that closes, or goes silent, after a given number of bytes
//! of one response — inside its status line and headers, or inside its body as it travels on
//! the wire (chunk framing included) — so tests can cut an answer at every byte.
//!
//! Every accepted connection is a [`WireIo`] sharing a [`Tap`] with the handler that serves
//! it. Taking a reply with a wire fault arms the tap of the connection being served (through a
//! task-local, so the emulations need not know about it); the response is written only after
//! that, so the tap counts exactly its bytes. An armed response is sent with
//! `connection: close`: the connection never serves another request after it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::lock;

/// Where in a response a wire fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireAt {
    /// After this many bytes of the status line and headers (0: before the first byte).
    Head(usize),
    /// After this many bytes following the blank line that ends the headers, counted as sent
    /// (a streamed body's chunk sizes included). Past the body's end, the response is whole.
    Body(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// The connection is closed (a FIN, as a crashed or restarted server's kernel sends).
    Close,
    /// Nothing more is sent, and the connection stays open until the peer gives up.
    Stall,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WireFault {
    pub at: WireAt,
    pub action: Action,
}

tokio::task_local! {
    /// The tap of the connection whose request is being answered.
    static SERVING: Tap;
}

/// Arms the fault on the connection being served; outside a connection (a batch processed
/// in the background) there is nothing to cut.
pub(crate) fn arm(fault: WireFault) {
    let _ = SERVING.try_with(|tap| tap.arm(fault));
}

/// Runs `answer` with `tap` as the connection being served.
pub(crate) async fn serving<F: Future>(tap: Tap, answer: F) -> F::Output {
    SERVING.scope(tap, answer).await
}

const HEAD_END: &[u8; 4] = b"\r\n\r\n";

#[derive(Debug, Default)]
struct Armed {
    fault: Option<WireFault>,
    /// Bytes written since the fault was armed.
    written: usize,
    /// Where the body starts, once the blank line after the headers has been written.
    body_start: Option<usize>,
    /// How much of [`HEAD_END`] the last bytes written matched.
    matched: usize,
    /// A stall has struck: from here on the connection is silent, even when the server
    /// would close it.
    stalled: bool,
}

impl Armed {
    /// How many bytes of `buf` may be written before the fault strikes.
    fn room(&self, fault: WireFault, buf: &[u8]) -> usize {
        let limit = match (fault.at, self.body_start) {
            (WireAt::Head(n), _) => n,
            (WireAt::Body(n), Some(start)) => start.saturating_add(n),
            (WireAt::Body(n), None) => match self.head_end_in(buf) {
                Some(end) => (self.written + end).saturating_add(n),
                None => return buf.len(),
            },
        };
        limit.saturating_sub(self.written).min(buf.len())
    }

    /// The length of `buf` up to and including the end of the headers, if it holds it.
    fn head_end_in(&self, buf: &[u8]) -> Option<usize> {
        let mut matched = self.matched;
        for (i, &b) in buf.iter().enumerate() {
            matched = step(matched, b);
            if matched == HEAD_END.len() {
                return Some(i + 1);
            }
        }
        None
    }

    fn advance(&mut self, sent: &[u8]) {
        if self.body_start.is_none() {
            if let Some(end) = self.head_end_in(sent) {
                self.body_start = Some(self.written + end);
            }
            for &b in sent {
                self.matched = step(self.matched, b);
            }
        }
        self.written += sent.len();
    }
}

fn step(matched: usize, b: u8) -> usize {
    if HEAD_END.get(matched) == Some(&b) {
        matched + 1
    } else if b == b'\r' {
        1
    } else {
        0
    }
}

/// One connection's fault, shared by its [`WireIo`] and the handler serving it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tap(Arc<Mutex<Armed>>);

impl Tap {
    fn arm(&self, fault: WireFault) {
        *lock(&self.0) = Armed { fault: Some(fault), ..Armed::default() };
    }

    pub(crate) fn is_armed(&self) -> bool {
        lock(&self.0).fault.is_some()
    }
}

impl Connected<IncomingStream<'_, WireListener>> for Tap {
    fn connect_info(stream: IncomingStream<'_, WireListener>) -> Self {
        stream.io().tap.clone()
    }
}

/// The mock's listener: TCP with `TCP_NODELAY`, each connection wrapped in a [`WireIo`].
pub(crate) struct WireListener(pub TcpListener);

impl Listener for WireListener {
    type Io = WireIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (WireIo, SocketAddr) {
        let (tcp, addr) = Listener::accept(&mut self.0).await;
        // Best effort: without it responses are only slower, never wrong.
        let _ = tcp.set_nodelay(true);
        (WireIo { inner: tcp, tap: Tap::default() }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A TCP connection that obeys its [`Tap`].
pub(crate) struct WireIo {
    inner: TcpStream,
    tap: Tap,
}

impl WireIo {
    /// A stalled connection sends nothing and answers nothing until the peer closes it; then
    /// the server lets it go.
    fn poll_stalled(&self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        match ready!(self.inner.poll_peek(cx, &mut buf)) {
            Ok(0) | Err(_) => Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into())),
            // The peer sent more (it should not): keep stalling, without spinning.
            Ok(_) => Poll::Pending,
        }
    }
}

impl AsyncRead for WireIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WireIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut armed = lock(&this.tap.0);
        let Some(fault) = armed.fault else {
            drop(armed);
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        let room = armed.room(fault, buf);
        if room == 0 && !buf.is_empty() {
            armed.stalled = fault.action == Action::Stall;
            drop(armed);
            return match fault.action {
                Action::Stall => this.poll_stalled(cx),
                Action::Close => {
                    // A clean FIN: what was sent stays readable for the peer.
                    ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                    Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()))
                }
            };
        }
        let sent = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..room]))?;
        armed.advance(&buf[..sent]);
        Poll::Ready(Ok(sent))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if lock(&this.tap.0).stalled {
            // Closing would end the stall: the peer must see a silent, open connection.
            return this.poll_stalled(cx).map(|r| r.map(|_| ()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armed(at: WireAt) -> (Armed, WireFault) {
        let fault = WireFault { at, action: Action::Close };
        (Armed { fault: Some(fault), ..Armed::default() }, fault)
    }

    #[test]
    fn a_body_offset_counts_from_the_blank_line_across_writes() {
        let (mut a, f) = armed(WireAt::Body(3));
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r";
        assert_eq!(a.room(f, head), head.len());
        a.advance(head);
        // "\n" ends the headers; then 3 body bytes may go.
        assert_eq!(a.room(f, b"\nabcdefghi"), 4);
        a.advance(b"\nabc");
        assert_eq!(a.room(f, b"defghi"), 0);
    }

    #[test]
    fn a_head_offset_counts_from_the_first_byte() {
        let (mut a, f) = armed(WireAt::Head(5));
        assert_eq!(a.room(f, b"HTT"), 3);
        a.advance(b"HTT");
        assert_eq!(a.room(f, b"P/1.1"), 2);
        let (a, f) = armed(WireAt::Body(0));
        assert_eq!(a.room(f, b"HTTP/1.1 200 OK\r\n\r\n{}"), 19);
    }
}
