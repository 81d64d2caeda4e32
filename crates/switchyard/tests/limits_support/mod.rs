//! The harness of the limits tests: the mock-backed, priced config, an in-process gateway
//! on a given engine, requests on both surfaces, and a fresh Redis key prefix per test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use mock_upstream::{MockUpstream, Reply, Usage};
use serde_json::{Value, json};
use switchyard::config::{self, RedisConfig};
use switchyard::limits::{Clock, Limits};
use switchyard::secret::Secret;
use switchyard::server::{self, Handle, Runtime};

pub const KEY: &str = "sk-ant-api03-limits-test-00000000000";
pub const MASTER: &str = "sk-gw-limits-0123456789";
pub const REDIS: &str = "127.0.0.1:6379";
/// Each test request: "Say: WORKS" is 7 input tokens by the estimator, and max_tokens 100:
/// at $1 per million tokens either way, it reserves $0.000107.
pub const PRICED: &[&str] = &["input_cost_per_token: 0.000001", "output_cost_per_token: 0.000001"];

pub fn deployment(mock: &MockUpstream, alias: &str, model: &str, extra: &[&str]) -> String {
    let mut out = format!("  - model_name: {alias}\n    litellm_params:\n      model: {model}\n");
    let base =
        if model.starts_with("anthropic/") { mock.url() } else { format!("{}/v1", mock.url()) };
    for line in [format!("api_key: {KEY}"), format!("api_base: {base}")]
        .iter()
        .map(String::as_str)
        .chain(PRICED.iter().copied())
        .chain(extra.iter().copied())
    {
        out.push_str(&format!("      {line}\n"));
    }
    out
}

pub fn config(deployments: &[String], sections: &str) -> config::Config {
    let mut text = "model_list:\n".to_owned();
    for d in deployments {
        text.push_str(d);
    }
    text.push_str(&format!(
        "router_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER}\n{sections}"
    ));
    crate::support::config(&text, &crate::support::no_home())
}

pub async fn mock() -> MockUpstream {
    let mock = MockUpstream::builder().api_key(KEY).start().await;
    mock.set_default(Reply::text("WORKS").usage(usage(7, 100)));
    mock
}

pub fn usage(input: u64, output: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
}

pub async fn start(config: config::Config, limits: Arc<Limits>) -> Handle {
    server::start("127.0.0.1:0".parse().unwrap(), Runtime::with_limits(config, limits))
        .await
        .unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(200).build().unwrap()
}

pub fn chat(alias: &str, user: Option<&str>) -> Value {
    let mut body = json!({"model": alias, "max_tokens": 100,
                          "messages": [{"role": "user", "content": "Say: WORKS"}]});
    if let Some(u) = user {
        body["user"] = json!(u);
    }
    body
}

pub async fn post_chat(c: &reqwest::Client, gw: &str, body: &Value) -> reqwest::Response {
    c.post(format!("{gw}/v1/chat/completions")).bearer_auth(MASTER).json(body).send().await.unwrap()
}

pub async fn post_messages(c: &reqwest::Client, gw: &str, body: &Value) -> reqwest::Response {
    c.post(format!("{gw}/v1/messages"))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A Redis engine under a fresh prefix; the guard deletes its keys.
pub struct RedisPrefix(pub String);

impl RedisPrefix {
    pub fn new() -> Self {
        Self(format!("switchyard-test:{}:", fastrand::u64(..)))
    }

    pub fn engine(&self, addr: &str, clock: Arc<dyn Clock>, fail_closed: bool) -> Arc<Limits> {
        let settings = RedisConfig {
            url: Secret::new(format!("redis://{addr}")),
            place: addr.to_owned(),
            prefix: self.0.clone(),
            fail_closed,
        };
        Limits::redis(&settings, clock).unwrap()
    }

    pub async fn clean(&self) {
        let client = redis::Client::open(format!("redis://{REDIS}")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}*", self.0)).query_async(&mut conn).await.unwrap();
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.unwrap();
        }
    }
}

/// Fires `n` chat requests at once, spread over `gateways`; returns how many were served
/// and checks every refusal is LiteLLM's budget error.
pub async fn burst(gateways: &[&Handle], n: usize) -> usize {
    let c = client();
    let mut tasks = Vec::new();
    for i in 0..n {
        let url = gateways[i % gateways.len()].url();
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let resp = post_chat(&c, &url, &chat("cheap", None)).await;
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (status, body)
        }));
    }
    let mut served = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => served += 1,
            400 => assert_eq!(body["error"]["type"], "budget_exceeded", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    served
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}
