//! What each client connection is doing, for the listener's two clocks: `keepalive_timeout`
//! (no request in flight and no byte of the next one) and `header_read_timeout` (from the
//! first byte of a request until its headers are parsed). hyper has one clock for both, so
//! it runs only as a backstop and these deadlines are the ones that close connections.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

const NONE: u64 = u64::MAX;

/// Shared by a connection's socket, its requests and its watchdog.
pub struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `born` when the last request ended (0: none yet).
    idle_since: AtomicU64,
    /// Milliseconds after `born` of the first byte read while idle, or [`NONE`].
    first_byte: AtomicU64,
}

/// Held from the moment hyper hands a request over until its response body is dropped
/// (sent in full, or the client went away), so a long stream counts as busy throughout.
pub struct Busy(Arc<Activity>);

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            first_byte: AtomicU64::new(NONE),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    pub fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    fn on_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ = self.first_byte.compare_exchange(
                NONE,
                self.now_ms(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// When the connection is to be closed if nothing changes; `None` while a request is in
    /// flight (its answer may take as long as the model does).
    pub fn deadline(&self, keepalive: Duration, header_read: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let at = |ms: u64| self.born + Duration::from_millis(ms);
        Some(match self.first_byte.load(Ordering::Acquire) {
            NONE => at(self.idle_since.load(Ordering::Acquire)) + keepalive,
            first => at(first) + header_read,
        })
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // The idle clock restarts before the count reaches 0, so a watchdog that sees 0
        // never reads the previous idle period's start.
        self.0.first_byte.store(NONE, Ordering::Release);
        self.0.idle_since.store(self.0.now_ms(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The client's socket, telling [`Activity`] when bytes arrive.
pub struct TrackedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> TrackedIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KA: Duration = Duration::from_secs(5);
    const HR: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn idle_counts_from_the_end_of_the_last_request() {
        let a = Activity::new();
        assert_eq!(a.deadline(KA, HR), Some(a.born + KA));
        let busy = a.busy();
        tokio::time::advance(Duration::from_secs(100)).await;
        assert_eq!(a.deadline(KA, HR), None, "a request in flight has no deadline");
        drop(busy);
        let d = a.deadline(KA, HR).unwrap();
        assert!(d >= a.born + Duration::from_secs(100) + KA, "{d:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_byte_of_a_request_switches_to_the_header_clock() {
        let a = Activity::new();
        tokio::time::advance(Duration::from_secs(2)).await;
        a.on_read();
        a.on_read();
        assert_eq!(a.deadline(KA, HR), Some(a.born + Duration::from_secs(2) + HR));
    }
}
