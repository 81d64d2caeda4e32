//! Memory: the gateway's RSS per idle kept-alive connection and per in-flight stream.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use bench::load::{self, Target};
use bench::procs::{self, Proc};

use super::{CONNECTIONS, STREAMS, chat_target};
use crate::compare::{Settings, Setup, start_all};

/// RSS after `n` more of something, against a base: (count, bytes, bytes each).
pub(super) type Steps = Vec<(usize, f64, f64)>;

async fn settled_rss(pid: u32) -> Result<f64, String> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(procs::memory(pid)?.rss as f64)
}

/// Idle kept-alive connections, each after one JSON request: the gateway's RSS before and
/// with `CONNECTIONS` of them open.
pub(super) async fn memory_per_connection(
    gateway: &Proc,
    target: Arc<Target>,
) -> Result<Steps, String> {
    // Warm: the allocator's first arenas and the upstream pool are not a connection's.
    drop(load::idle_connections(Arc::clone(&target), 100, 50).await?);
    let base = settled_rss(gateway.pid()).await?;
    let mut open = Vec::new();
    let mut steps = Vec::new();
    for n in CONNECTIONS {
        open.extend(load::idle_connections(Arc::clone(&target), n - open.len(), 100).await?);
        let rss = settled_rss(gateway.pid()).await?;
        steps.push((n, rss - base, (rss - base) / n as f64));
    }
    drop(open);
    Ok(steps)
}

/// In-flight streams: a mock that sends one event a second (a stream lasts about a minute),
/// a gateway in front of it, and `STREAMS` requests left open after their first event.
pub(super) async fn memory_per_stream(s: &Settings<'_>) -> Result<Steps, String> {
    let slow = procs::start_mock_with(s.bins, &["--admin"])?;
    let words = vec!["word"; 60].join(" ");
    let spec = json!({ "text": words, "event_gap_ms": 1000 });
    let (status, answer) =
        load::call(slow.addr, Method::POST, "/_mock/default", None, Bytes::from(spec.to_string()))
            .await?;
    if status != 200 {
        return Err(format!(
            "the mock refused the slow reply: {status} {}",
            String::from_utf8_lossy(&answer)
        ));
    }
    let setup = [Setup { name: "streams", settings: "  disable_spend_logs: true\n".into() }];
    let gateways = start_all(s, &slow, &setup).await?;
    let gateway = &gateways[0].0;
    let target = chat_target(&slow, gateway.addr, crate::MASTER_KEY, true)?;
    let warm = load::open_streams(Arc::clone(&target), 20).await?;
    let base = settled_rss(gateway.pid()).await?;
    let mut open = Vec::new();
    let mut steps = Vec::new();
    for n in STREAMS {
        open.extend(load::open_streams(Arc::clone(&target), n - open.len()).await?);
        let rss = settled_rss(gateway.pid()).await?;
        steps.push((n, rss - base, (rss - base) / n as f64));
    }
    drop(open);
    drop(warm);
    Ok(steps)
}

pub(super) fn memory_table(
    md: &mut String,
    json: &mut serde_json::Map<String, Value>,
    conns: &Steps,
    streams: &Steps,
) {
    let _ = writeln!(
        md,
        "\n## Memory\n\nMethod: the gateway's RSS (`VmRSS`) 0.5 s after opening each step, against \
         its RSS after a warm-up (100 connections, or 20 streams, opened first). A connection: \
         one JSON request, then kept alive and idle (ledger off, master key). A stream: a \
         streamed request left open after its first event, the upstream (mock-upstream \
         `event_gap_ms: 1000`, 60 words) sending one event a second: it includes the client's \
         connection and the gateway's upstream connection.\n\n\
         | held open | count | RSS delta | per one |\n|---|--:|--:|--:|"
    );
    let mut out = Vec::new();
    for (what, steps) in [("idle kept-alive connections", conns), ("in-flight streams", streams)] {
        for &(n, delta, each) in steps {
            let _ = writeln!(
                md,
                "| {what} | {n} | {:.1} MB | {:.1} KB |",
                delta / 1_048_576.0,
                each / 1024.0
            );
            out.push(
                json!({"what": what, "count": n, "rss_delta_bytes": delta, "bytes_each": each}),
            );
        }
    }
    json.insert("memory".into(), Value::Array(out));
}
