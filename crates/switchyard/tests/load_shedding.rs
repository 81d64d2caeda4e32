//! Load shedding end to end: `global_max_parallel_requests` filled with streams held
//! mid-body by the mock upstream, the wait queue and its bound, LIM-04 in both client
//! shapes, the key default `general_settings.max_parallel_requests`, and a deployment's
//! `max_parallel_requests` spilling to another deployment of its group.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod limits_support;
mod support;

use std::sync::Arc;
use std::time::Duration;

use mock_upstream::{MockUpstream, Reply};
use serde_json::{Value, json};
use switchyard::keys::{Keys, POLL, Settings as KeySettings};
use switchyard::limits::Limits;
use switchyard::server::Handle;
use tokio::sync::Notify;

use limits_support::*;

/// The queue and shed metrics are the process's: tests reading them take turns.
static METRICS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const STREAMED: &str = "Hello big wide world";

/// Queues a streamed answer the mock holds after its first word until the returned
/// notify fires.
fn held_stream(mock: &MockUpstream) -> Arc<Notify> {
    let release = Arc::new(Notify::new());
    // message_start, content_block_start, the first word: then the hold.
    mock.push(Reply::text(STREAMED).usage(usage(7, 4)).hold_after(3, release.clone()));
    release
}

fn stream_body(alias: &str) -> Value {
    let mut body = chat(alias, None);
    body["stream"] = json!(true);
    body
}

/// A streamed chat completion whose first word has arrived; the rest is still to come.
struct OpenStream {
    resp: reqwest::Response,
    seen: String,
}

async fn open_stream(c: &reqwest::Client, gw: &str, alias: &str) -> OpenStream {
    let mut resp = post_chat(c, gw, &stream_body(alias)).await;
    assert_eq!(resp.status(), 200);
    let mut seen = String::new();
    while !text_of(&seen).contains("Hello") {
        let chunk = resp.chunk().await.unwrap().expect("the stream ended before its first word");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    OpenStream { resp, seen }
}

impl OpenStream {
    /// Reads the rest of the stream: the answer's whole text, and whether it ended with
    /// `[DONE]`.
    async fn finish(mut self) -> (String, bool) {
        while let Some(chunk) = self.resp.chunk().await.unwrap() {
            self.seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        (text_of(&self.seen), self.seen.contains("data: [DONE]"))
    }
}

/// The content deltas of an OpenAI stream, joined.
fn text_of(sse: &str) -> String {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

async fn metric(gw: &Handle, name: &str) -> f64 {
    let text = client().get(format!("{}/metrics", gw.url())).send().await.unwrap();
    let text = text.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} is not in /metrics"))
        .parse()
        .unwrap()
}

async fn eventually_metric(gw: &Handle, name: &str, want: f64) {
    for _ in 0..500 {
        if metric(gw, name).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} never reached {want}");
}

fn shed_config(mock: &MockUpstream, general: &str) -> switchyard::config::Config {
    config(&[deployment(mock, "cheap", "anthropic/claude-haiku-4-5", &[])], general)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cap_full_of_streams_the_next_request_waits_then_gets_429_in_its_own_shape() {
    let _turn = METRICS.lock().await;
    let mock = mock().await;
    let general = "  global_max_parallel_requests: 2\n  max_queue_wait_seconds: 0.3\n";
    let gw = start(shed_config(&mock, general), Limits::in_process()).await;
    let c = client();
    let shed_before = metric(&gw, "switchyard_shed_requests_total").await;

    let releases = [held_stream(&mock), held_stream(&mock)];
    let first = open_stream(&c, &gw.url(), "cheap").await;
    let second = open_stream(&c, &gw.url(), "cheap").await;

    let resp = post_chat(&c, &gw.url(), &chat("cheap", None)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(body["error"]["diagnosis"]["id"], "LIM-04", "{body}");
    let cause = body["error"]["diagnosis"]["cause"].as_str().unwrap();
    assert!(cause.contains("at most 2 model requests at once"), "{cause}");
    assert!(cause.contains("waited 0.3s"), "{cause}");

    let resp = post_messages(&c, &gw.url(), &chat("cheap", None)).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(body["error"]["diagnosis"]["id"], "LIM-04", "{body}");

    // Health and metrics are not model requests: never counted, never refused.
    let health = c.get(format!("{}/health/liveliness", gw.url())).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(metric(&gw, "switchyard_shed_requests_total").await - shed_before, 2.0);
    assert_eq!(mock.calls(), 2, "a shed request never reaches the upstream");

    for release in &releases {
        release.notify_one();
    }
    for stream in [first, second] {
        assert_eq!(stream.finish().await, (STREAMED.to_owned(), true), "streams are never cut");
    }
    mock.set_default(Reply::text("WORKS").usage(usage(7, 100)));
    let resp = post_chat(&c, &gw.url(), &chat("cheap", None)).await;
    assert_eq!(resp.status(), 200, "the finished streams freed their slots");
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_request_is_admitted_when_a_slot_frees_and_the_queue_is_bounded() {
    let _turn = METRICS.lock().await;
    let mock = mock().await;
    let general = "  global_max_parallel_requests: 1\n  max_queue_wait_seconds: 60\n  \
                   max_queued_requests: 1\n";
    let gw = start(shed_config(&mock, general), Limits::in_process()).await;
    let c = client();

    let release = held_stream(&mock);
    let stream = open_stream(&c, &gw.url(), "cheap").await;
    let queued = {
        let (c, url) = (c.clone(), gw.url());
        tokio::spawn(async move {
            let resp = post_chat(&c, &url, &chat("cheap", None)).await;
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        })
    };
    eventually_metric(&gw, "switchyard_queued_requests", 1.0).await;

    // The queue holds one: the next is refused at once, not after the minute's wait.
    let resp = post_messages(&c, &gw.url(), &chat("cheap", None)).await;
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("1 requests already wait for a slot"), "{message}");
    assert!(!queued.is_finished(), "the queued request still waits for the stream");

    release.notify_one();
    assert_eq!(stream.finish().await, (STREAMED.to_owned(), true));
    let (status, body) = queued.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "WORKS");
    eventually_metric(&gw, "switchyard_queued_requests", 0.0).await;
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn general_max_parallel_requests_is_the_default_for_keys_without_their_own() {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(shed_config(&mock, "  max_parallel_requests: 1\n"), Limits::in_process()).await;
    let keys =
        Keys::open(&KeySettings { database_url: None, state_dir: dir.path().to_owned() }).unwrap();
    keys.start(POLL).await;
    gw.state.set_keys(keys);
    let c = client();
    let key = |body: Value| {
        let (c, url) = (c.clone(), gw.url());
        async move {
            let resp = c
                .post(format!("{url}/key/generate"))
                .bearer_auth(MASTER)
                .json(&body)
                .send()
                .await
                .unwrap();
            resp.json::<Value>().await.unwrap()["key"].as_str().unwrap().to_owned()
        }
    };
    let plain = key(json!({})).await;
    let roomy = key(json!({"max_parallel_requests": 2})).await;
    let stream_with = |key: String| {
        let (c, url) = (c.clone(), gw.url());
        async move {
            let resp = c
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&stream_body("cheap"))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp)
        }
    };

    let releases = [held_stream(&mock), held_stream(&mock), held_stream(&mock)];
    let (status, plain_stream) = stream_with(plain.clone()).await;
    assert_eq!(status, 200);
    let (status, refused) = stream_with(plain.clone()).await;
    assert_eq!(status, 429, "the default allows one in flight");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["diagnosis"]["id"], "LIM-01", "{body}");
    let cause = body["error"]["diagnosis"]["cause"].as_str().unwrap();
    assert!(cause.contains("general_settings.max_parallel_requests"), "{cause}");

    let (a, b) = (stream_with(roomy.clone()).await, stream_with(roomy.clone()).await);
    assert_eq!((a.0, b.0), (200, 200), "a key's own max_parallel_requests wins");
    for release in &releases {
        release.notify_one();
    }
    for resp in [plain_stream, a.1, b.1] {
        let text = resp.text().await.unwrap();
        assert_eq!(text_of(&text), STREAMED);
    }
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_at_its_max_parallel_requests_is_skipped_for_another_of_its_group() {
    let mock = mock().await;
    let deployments = [
        deployment(&mock, "pool", "anthropic/claude-haiku-4-5", &["max_parallel_requests: 1"]),
        deployment(&mock, "pool", "anthropic/claude-sonnet-4-5", &["max_parallel_requests: 1"]),
    ];
    let gw = start(config(&deployments, ""), Limits::in_process()).await;
    let c = client();

    let releases = [held_stream(&mock), held_stream(&mock)];
    let first = open_stream(&c, &gw.url(), "pool").await;
    let second = open_stream(&c, &gw.url(), "pool").await;
    let mut models: Vec<String> =
        mock.received().iter().map(|r| r.body["model"].as_str().unwrap().to_owned()).collect();
    models.sort();
    assert_eq!(models, ["claude-haiku-4-5", "claude-sonnet-4-5"], "one stream on each");

    let resp = post_chat(&c, &gw.url(), &chat("pool", None)).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["diagnosis"]["id"], "LIM-02", "{body}");
    let cause = body["error"]["diagnosis"]["cause"].as_str().unwrap();
    assert!(cause.contains("at 1 requests in flight"), "{cause}");
    assert_eq!(mock.calls(), 2);

    for release in &releases {
        release.notify_one();
    }
    for stream in [first, second] {
        assert_eq!(stream.finish().await, (STREAMED.to_owned(), true));
    }
    gw.shutdown().await.unwrap();
}
