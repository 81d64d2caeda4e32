//! The access log loses no line: the real binary serves a burst of requests while nobody
//! reads its stderr (a log reader that fell behind), then is stopped while a slow reader
//! starts; every request has exactly one access line with its id, whether the stop was a
//! graceful drain or a second signal that cut it short.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::process::ChildStderr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use support::Served;
use switchyard::daemon::process::Sig;

const MASTER: &str = "sk-access-log-test-master";
/// Far more than a pipe holds (64 KiB, ~250 lines): most lines are still queued in the
/// gateway when it is told to stop.
const REQUESTS: usize = 2_000;
const CONNECTIONS: usize = 8;
const PATIENCE: Duration = Duration::from_secs(60);
/// The pause between two 4 KiB reads of the gateway's stderr: the ~500 KB of a burst's
/// lines take seconds to read, longer than `tracing-appender`'s own wait at exit.
const SLOW_READER: Duration = Duration::from_millis(20);

/// The binary with JSON logs on a stderr pipe nobody reads yet (and its directory).
async fn start(extra: &[&str]) -> (Served, ChildStderr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      mock_response: WORKS\ngeneral_settings:\n  master_key: {MASTER}\n  disable_spend_logs: true\n"
        ),
    )
    .unwrap();
    let mut cmd = support::serve_command(&config, &dir.path().join("state"), dir.path());
    cmd.args(["--no-watch", "--log-format", "json", "--log-level", "info"])
        .args(extra)
        .env_remove("SWITCHYARD_LOG")
        .env_remove("RUST_LOG");
    let (served, stderr) = support::spawn_ready_piping_stderr(cmd).await;
    (served, stderr, dir)
}

/// `REQUESTS` chat requests over `CONNECTIONS` kept-alive connections, request `i` with the
/// id `burst-i`; every one answered.
async fn burst(url: &str) {
    let client = reqwest::Client::builder().no_proxy().timeout(PATIENCE).build().unwrap();
    futures_util::stream::iter(0..REQUESTS)
        .map(|i| {
            let client = client.clone();
            async move {
                let resp = client
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(MASTER)
                    .header("x-request-id", format!("burst-{i}"))
                    .json(&serde_json::json!({"model": "cheap",
                        "messages": [{"role": "user", "content": "Say: WORKS"}]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            }
        })
        .buffer_unordered(CONNECTIONS)
        .collect::<Vec<()>>()
        .await;
}

/// Reads stderr to its end (the process exited) at a reader's slow pace, so the lines still
/// queued when the gateway finishes take a while to leave it; then the exit code.
async fn finish(gw: Served, mut stderr: ChildStderr) -> (Option<i32>, String) {
    let text = tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stderr.read(&mut chunk).unwrap() {
                0 => break,
                n => bytes.extend_from_slice(&chunk[..n]),
            }
            std::thread::sleep(SLOW_READER);
        }
        String::from_utf8(bytes).unwrap()
    });
    let text = tokio::time::timeout(PATIENCE, text).await.expect("stderr never closed").unwrap();
    let status = tokio::time::timeout(PATIENCE, gw.wait()).await.expect("the gateway did not exit");
    (status.code(), text)
}

/// The ids of the access lines for the chat route, each line once; fails on a line that is
/// not JSON (a line cut or interleaved with another).
fn access_ids(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .filter(|l| l["message"] == "request" && l["path"] == "/v1/chat/completions")
        .map(|l| l["request_id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_every_request_logged_once(text: &str) {
    let ids = access_ids(text);
    let distinct: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let expected: BTreeSet<String> = (0..REQUESTS).map(|i| format!("burst-{i}")).collect();
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(ids.len(), REQUESTS, "one access line per request");
    assert_eq!(distinct, expected, "every request's id, each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_writes_every_access_line() {
    let (gw, stderr, _dir) = start(&[]).await;
    burst(&gw.url).await;
    gw.signal(Sig::Term);
    let (code, text) = finish(gw, stderr).await;
    assert_eq!(code, Some(0), "{}", tail(&text));
    assert_every_request_logged_once(&text);
    assert!(text.contains(r#""message":"stopped""#), "{}", tail(&text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_still_writes_every_access_line() {
    // The grace period keeps the first signal's drain waiting; the second one exits at once.
    let (gw, stderr, _dir) = start(&["--drain-grace", "60"]).await;
    burst(&gw.url).await;
    gw.signal(Sig::Term);
    // Two signals sent together can arrive as one: the second goes once the first is seen.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ready = client.get(format!("{}/health/readiness", gw.url)).send().await.unwrap();
        if ready.status() == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "the first signal never started the drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.signal(Sig::Term);
    let (code, text) = finish(gw, stderr).await;
    assert_eq!(code, Some(1), "the second signal's exit: {}", tail(&text));
    assert_every_request_logged_once(&text);
    assert!(text.contains("second signal"), "{}", tail(&text));
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
