//! Log lines leave the process on a thread of their own: a request only queues its line
//! (`tracing-appender`'s non-blocking writer), the thread writes what has gathered in one
//! `write`. The queue is bounded and lossless: when it is full, the next line waits for room
//! instead of being dropped.
//!
//! `tracing-appender`'s guard, dropped, waits a bounded time for the thread (about a second),
//! which a long queue behind a slow reader can outlast. So the bytes queued and the bytes
//! written are counted, and [`flush`] waits until the second has caught up with the first —
//! as long as the reader keeps taking them. The end of `cli::run` and the panic hook (with
//! `panic = "abort"` nothing unwinds to `main`) call it. The guard itself is never dropped:
//! the thread lives as long as the process, so a line a straggling thread logs after the
//! last flush is still written if the process lasts long enough, never refused.

use std::io::{self, BufWriter, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;

/// Lines that may wait in the queue (a few MB at most) before a request waits for room:
/// a second or more of access log at the rates this gateway serves.
const QUEUED_LINES: usize = 16_384;

/// What the writing thread gathers before one `write`.
const WRITE_BUFFER: usize = 64 * 1024;

/// After writing what it had, the thread lets the next lines gather this long. Waking it for
/// every line (a futex each way and a context switch) cost more CPU than the `write` it
/// saves the request; woken at most this often, it writes many lines per `write`.
const GATHER: Duration = Duration::from_millis(2);

/// [`flush`] stops waiting when stderr took nothing for this long (a reader that stopped
/// reading): exiting then loses lines, hanging forever would lose the process.
const STALLED: Duration = Duration::from_secs(5);

/// The writing thread's name.
const THREAD: &str = "switchyard-log";

/// Bytes handed to the queue.
static QUEUED: AtomicU64 = AtomicU64::new(0);
/// Bytes that left the process (or that stderr refused: they cannot be written later).
static WRITTEN: AtomicU64 = AtomicU64::new(0);
/// Keeps the writing thread alive until the process ends.
static GUARD: OnceLock<WorkerGuard> = OnceLock::new();

/// The writer for the subscriber, and the guard to hand to [`keep`] once it is installed.
pub(super) fn stderr() -> (Queue, WorkerGuard) {
    let (queue, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name(THREAD)
        .finish(BufWriter::with_capacity(WRITE_BUFFER, Stderr(io::stderr())));
    (Queue(queue), guard)
}

/// Keeps the writing thread's guard for the life of the process, and flushes the queue when
/// the process panics, after the panic's own message.
pub(super) fn keep(guard: WorkerGuard) {
    if GUARD.set(guard).is_err() {
        return;
    }
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        // The writing thread itself cannot wait for its own writes.
        if std::thread::current().name() != Some(THREAD) {
            flush();
        }
    }));
}

/// Waits until every line queued before the call has been written: the last thing before
/// the process exits, and before a message written to stderr directly.
pub fn flush() {
    let queued = QUEUED.load(Ordering::Acquire);
    let mut written = WRITTEN.load(Ordering::Acquire);
    let mut progress = Instant::now();
    while written < queued && progress.elapsed() < STALLED {
        std::thread::sleep(Duration::from_millis(1));
        let now = WRITTEN.load(Ordering::Acquire);
        if now != written {
            written = now;
            progress = Instant::now();
        }
    }
}

/// The subscriber's writer: each event's line goes to the queue, counted.
pub(super) struct Queue(NonBlocking);

impl<'a> MakeWriter<'a> for Queue {
    type Writer = Queued;

    fn make_writer(&'a self) -> Queued {
        Queued(self.0.clone())
    }
}

pub(super) struct Queued(NonBlocking);

impl Write for Queued {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let n = self.0.write(line)?;
        QUEUED.fetch_add(n as u64, Ordering::AcqRel);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// stderr as the writing thread sees it, counting what it took. A failed write counts as
/// written: the thread ignores errors and the bytes would never leave.
struct Stderr(io::Stderr);

impl Write for Stderr {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n = match self.0.write(bytes) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return Err(err),
            Err(_) => bytes.len(),
        };
        WRITTEN.fetch_add(n as u64, Ordering::AcqRel);
        Ok(n)
    }

    /// The end of a batch (the thread found the queue empty): what it gathered is written.
    fn flush(&mut self) -> io::Result<()> {
        let flushed = self.0.flush();
        std::thread::sleep(GATHER);
        flushed
    }
}
