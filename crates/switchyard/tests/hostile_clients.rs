//! Hostile clients: slow and oversized headers, idle and long-lived connections, connection
//! floods and malformed HTTP, on the gateway's real listener (the auth sweep over every route
//! is `auth_sweep.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use switchyard::config::{self, MapEnv};
use switchyard::server::{self, Handle, Runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MASTER: &str = "sk-gw-master-0123456789";

async fn gateway_on(addr: &str, general: &str) -> Handle {
    let text = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n      api_key: sk-up\n      api_base: http://127.0.0.1:9\ngeneral_settings:\n  master_key: {MASTER}\n{general}"
    );
    let cfg =
        config::load_from_str(&text, Path::new("hostile.yaml"), &MapEnv::new::<&str, &str>([]))
            .unwrap_or_else(|e| panic!("{e:?}"));
    server::start(addr.parse().unwrap(), Runtime::new(cfg)).await.unwrap()
}

async fn gateway(general: &str) -> Handle {
    gateway_on("127.0.0.1:0", general).await
}

/// Sends `bytes` and reads until the server closes or `wait` passes; returns what came back.
async fn exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_all(&mut s, wait).await
}

async fn read_all(s: &mut TcpStream, wait: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn still_serves(gw: &Handle) {
    let resp = reqwest::get(format!("{}/health/liveliness", gw.url())).await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// True when the server closed the socket (a read returns 0 or an error) within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_slowloris_client_is_cut_after_the_header_read_timeout() {
    let gw = gateway("  header_read_timeout: 2\n").await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let started = Instant::now();
    let mut cut = false;
    for b in b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaa\r\n" {
        if s.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    if !cut {
        cut = closed_within(&mut s, Duration::from_secs(1)).await;
    }
    assert!(cut, "a client still sending headers after 10 s was not cut off");
    still_serves(&gw).await;
}

/// One request on a fresh connection, its answer read; the connection left open.
async fn after_one_request(gw: &Handle) -> TcpStream {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    s
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout() {
    let gw = gateway("  keepalive_timeout: 1\n").await;
    let mut s = after_one_request(&gw).await;
    assert!(closed_within(&mut s, Duration::from_secs(10)).await, "idle connection stayed open");
    // A connection that never sent a byte is idle too.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(10)).await, "silent connection stayed open");
}

#[tokio::test]
async fn the_header_read_timeout_does_not_cut_an_idle_connection() {
    let gw = gateway("  keepalive_timeout: 60\n  header_read_timeout: 1\n").await;
    let mut s = after_one_request(&gw).await;
    assert!(
        !closed_within(&mut s, Duration::from_secs(4)).await,
        "an idle connection was closed by the 1 s header_read_timeout, not the 60 s keepalive_timeout"
    );
    s.write_all(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_stream_longer_than_both_timeouts_is_not_cut() {
    let mock = mock_upstream::MockUpstream::builder().api_key("sk-up").start().await;
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    mock.push(mock_upstream::Reply::text("one two three").hold_after(3, release.clone()));
    let text = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_key: sk-up\n      api_base: {}\ngeneral_settings:\n  master_key: {MASTER}\n  keepalive_timeout: 1\n  header_read_timeout: 1\n",
        mock.url()
    );
    let cfg =
        config::load_from_str(&text, Path::new("hostile.yaml"), &MapEnv::new::<&str, &str>([]))
            .unwrap_or_else(|e| panic!("{e:?}"));
    let gw = server::start("127.0.0.1:0".parse().unwrap(), Runtime::new(cfg)).await.unwrap();
    let mut resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(MASTER)
        .json(&serde_json::json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut seen = String::new();
    while !seen.contains("one") {
        let chunk = resp.chunk().await.unwrap().expect("the stream ended before its first word");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // Silent for three times both timeouts, mid-answer.
    tokio::time::sleep(Duration::from_secs(3)).await;
    release.notify_one();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("three") && seen.contains("data: [DONE]"), "{seen}");
}

#[tokio::test]
async fn oversize_headers_and_too_many_headers_are_431() {
    let gw = gateway("  max_request_headers: 20\n  max_request_header_size_kb: 16\n").await;
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(40 * 1024));
    let out = exchange(gw.addr, big.as_bytes(), Duration::from_secs(5)).await;
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..40 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let out = exchange(gw.addr, many.as_bytes(), Duration::from_secs(5)).await;
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    still_serves(&gw).await;
}

#[tokio::test]
async fn beyond_the_connection_limit_a_fast_503_while_open_connections_are_served() {
    let gw = gateway("  max_connections: 2\n").await;
    let mut first = TcpStream::connect(gw.addr).await.unwrap();
    let _second = TcpStream::connect(gw.addr).await.unwrap();
    // Let the accept loop take both before the third arrives.
    first.write_all(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = first.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    let out = exchange(
        gw.addr,
        b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    assert!(out.contains("retry-after: 1"), "{out}");
    assert!(out.contains("GW-14"), "{out}");

    // The connection already open is still served.
    first.write_all(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let n = first.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn malformed_http_gets_400_and_the_gateway_keeps_serving() {
    let gw = gateway("").await;
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /\x01\x02 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nhello\r\n0\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    ] {
        let out = exchange(gw.addr, bad, Duration::from_secs(5)).await;
        let status = out.get(9..12).unwrap_or("");
        assert!(
            status == "400" || (status.starts_with('4') && status != "404") || out.is_empty(),
            "{:?} got {out}",
            String::from_utf8_lossy(bad)
        );
        still_serves(&gw).await;
    }
}

#[tokio::test]
async fn path_traversal_never_reaches_an_authenticated_route() {
    let gw = gateway("").await;
    for path in [
        "/ui/../key/list",
        "/ui/%2e%2e/key/list",
        "/%2e%2e/key/list",
        "/anthropic/..%2f..%2fkey/list",
        "/anthropic/../../key/list",
        "//key/list",
        "/health/..%2fkey/list",
        "/ui//../spend/logs",
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let out = exchange(gw.addr, req.as_bytes(), Duration::from_secs(5)).await;
        let status = out.get(9..12).unwrap_or("");
        assert!(status != "200" && !status.is_empty(), "{path}: {out}");
        assert!(!out.contains("\"keys\""), "{path}: {out}");
    }
    still_serves(&gw).await;
}

async fn wrong_key_answer(gw: &Handle) -> String {
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/models", gw.url()))
        .bearer_auth("sk-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    resp.text().await.unwrap()
}

#[tokio::test]
async fn the_master_key_hint_is_given_on_loopback_only() {
    let gw = gateway("").await;
    let body = wrong_key_answer(&gw).await;
    assert!(body.contains("hostile.yaml") && body.contains("GW-01"), "{body}");

    let ip = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().find(|a| !a.contains(':')).map(str::to_owned));
    let Some(ip) = ip else {
        println!("skipped the network half: `hostname -I` names no IPv4 address");
        return;
    };
    let gw = gateway_on(&format!("{ip}:0"), "").await;
    let body = wrong_key_answer(&gw).await;
    assert!(body.contains("GW-01"), "{body}");
    assert!(!body.contains("hostile.yaml") && !body.contains("master_key"), "{body}");
}
