//! Ten thousand idle client connections against the real binary: half never send a byte,
//! half send one request and then sit on the kept-alive connection. The gateway keeps serving
//! a normal request, its memory stays bounded, a connection beyond `max_connections` gets the
//! fast 503 (GW-14) instead of hanging, and after `keepalive_timeout` it has closed them all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mock_upstream::{MockUpstream, Reply};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MASTER: &str = "sk-gw-idle-0123456789";
const UPSTREAM_KEY: &str = "sk-ant-api03-idle-test-0000000000000";
const IDLE: usize = 10_000;
/// Room above the idle ones for the probes, then the cap is reached on purpose.
const HEADROOM: usize = 50;
const KEEPALIVE_SECS: u64 = 25;
/// What the gateway may hold resident with 10,000 idle connections. Measured (debug build):
/// 29 MB before, 150 MB with them open, about 12 KiB a connection, most of it hyper's 8 KiB
/// read buffer, allocated at the first read. The bound allows 17 KiB a connection: it fails
/// if a connection comes to cost a second buffer or one grown to its 64 KiB ceiling.
const RSS_BOUND_KB: u64 = 200 * 1024;

mod support;

struct Gateway {
    served: support::Served,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Gateway {
    fn pid(&self) -> u32 {
        self.served.pid()
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, Iterator::count)
    }

    /// The clients' connections the gateway holds open: its sockets that are established
    /// TCP connections on its listening port (read from the kernel's tables by inode, so the
    /// files its SQLite pools open and close, and its connections upstream, do not count).
    fn held_connections(&self) -> usize {
        let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|fds| {
                fds.filter_map(Result::ok)
                    .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                    .filter_map(|to| {
                        let to = to.to_string_lossy().into_owned();
                        Some(to.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let port = self.addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).unwrap();
        let local = format!(":{port:04X}");
        ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|table| std::fs::read_to_string(table).ok())
            .flat_map(|text| {
                text.lines()
                    .skip(1)
                    .map(|line| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            })
            // local address, remote address, state (01: established), …, inode.
            .filter(|f| {
                f.len() > 9 && f[1].ends_with(&local) && f[3] == "01" && inodes.contains(&f[9])
            })
            .count()
    }

    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

/// The soft limit on open files raised to the hard one; the gateway inherits it. `None` when
/// the hard limit is too low for the test.
fn raise_fd_limit(needed: u64) -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if hard < needed {
        return None;
    }
    let soft = hard.min(1 << 20);
    setrlimit(Resource::Nofile, Rlimit { current: Some(soft), maximum: limit.maximum }).unwrap();
    Some(soft)
}

async fn start(mock: &MockUpstream) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("idle.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_key: {UPSTREAM_KEY}\n      api_base: {}\ngeneral_settings:\n  master_key: {MASTER}\n  max_connections: {}\n  keepalive_timeout: {KEEPALIVE_SECS}\n  disable_spend_logs: true\n",
            mock.url(),
            IDLE + HEADROOM
        ),
    )
    .unwrap();
    let mut cmd = support::serve_command(&config, dir.path(), dir.path());
    cmd.arg("--no-watch").env("RUST_LOG", "error");
    let served = support::spawn_ready(cmd).await;
    let addr = served.addr().to_owned();
    Gateway { served, addr, _dir: dir }
}

const LIVELINESS: &[u8] = b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n";

/// Sends one request and reads the start of its answer, keeping the connection.
async fn one_request(s: &mut TcpStream) -> String {
    s.write_all(LIVELINESS).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf))
        .await
        .expect("no answer in 30 s")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Polls `f` every 200 ms until it holds or `wait` passes.
async fn eventually(wait: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + wait;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections() {
    // Each side holds IDLE sockets plus its own files.
    let Some(limit) = raise_fd_limit(IDLE as u64 + 1000) else {
        println!("skipped: the hard limit on open files is below {}", IDLE + 1000);
        return;
    };
    let mock = MockUpstream::builder().api_key(UPSTREAM_KEY).record(false).start().await;
    mock.set_default(Reply::text("WORKS"));
    let gw = start(&mock).await;
    let baseline = gw.open_fds();
    let rss_before = gw.rss_kb();

    // Half silent, half one request then idle; at most 200 connects in flight (the listen
    // backlog is bounded by net.core.somaxconn).
    let addr = gw.addr.clone();
    let mut conns: Vec<TcpStream> = futures_util::stream::iter(0..IDLE)
        .map(|i| {
            let addr = addr.clone();
            async move {
                let mut s = TcpStream::connect(&addr).await.unwrap();
                if i % 2 == 1 {
                    let head = one_request(&mut s).await;
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                }
                s
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    assert!(
        eventually(Duration::from_secs(20), || gw.held_connections() >= IDLE).await,
        "the gateway holds {} of the {IDLE} connections (limit {limit})",
        gw.held_connections()
    );

    // A normal request on a fresh connection is still answered.
    let resp = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .post(format!("http://{}/v1/chat/completions", gw.addr))
        .bearer_auth(MASTER)
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("a request beside 10,000 idle connections got no answer in 30 s");
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("WORKS"));

    let rss = gw.rss_kb();
    println!("RSS: {rss_before} kB idle, {rss} kB with {IDLE} connections open");
    assert!(rss < RSS_BOUND_KB, "RSS {rss} kB with {IDLE} idle connections");

    // Fill the headroom: each extra connection sends a request and keeps its socket. Once the
    // cap is reached the next ones get the fixed 503 at once instead of waiting.
    let mut refused = 0;
    for _ in 0..HEADROOM * 2 {
        let mut s = TcpStream::connect(&gw.addr).await.unwrap();
        let head = one_request(&mut s).await;
        if head.starts_with("HTTP/1.1 503") {
            assert!(head.contains("GW-14") && head.contains("retry-after: 1"), "{head}");
            refused += 1;
        } else {
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            conns.push(s);
        }
    }
    assert!(refused >= HEADROOM / 2, "only {refused} of {} over the cap got GW-14", HEADROOM * 2);

    // Nobody sends anything more: after keepalive_timeout the gateway closes every one.
    let wait = Duration::from_secs(KEEPALIVE_SECS + 30);
    assert!(
        eventually(wait, || gw.open_fds() < baseline + 20).await,
        "{} descriptors still open {wait:?} after the last request (baseline {baseline})",
        gw.open_fds()
    );
    // And the clients see their sockets closed.
    let mut buf = [0u8; 16];
    for s in conns.iter_mut().step_by(997) {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert!(matches!(n, Ok(Ok(0) | Err(_))), "a client socket is still open: {n:?}");
    }
}
