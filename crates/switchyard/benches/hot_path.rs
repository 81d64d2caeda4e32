//! Microbenchmarks of the request path, without a network:
//!
//! - `request`: an OpenAI chat completions body → canonical request → Anthropic Messages body;
//! - `stream`: Anthropic SSE bytes → canonical events → OpenAI `chat.completion.chunk` frames,
//!   per event (SSE framing, decoding, the idle timer, re-encoding);
//! - `routing`: `Router::send` to a provider that answers at once (plan, state, bookkeeping);
//! - `classify`: an upstream error answer → `UpstreamError` with its diagnosis;
//! - `cost`: reported usage → the exact decimal cost (and its header text); a deployment's
//!   price resolution;
//! - `metrics`: recording one request's outcome and one upstream call (label sets already
//!   seen, as on every request but the first of its kind), and rendering a scrape.
//!
//! `cargo bench -p switchyard --bench hot_path`; CI runs each once in test mode
//! (`cargo test -p switchyard --bench hot_path`). The load benchmark is `crates/bench`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark fixtures")]

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use http::HeaderMap;
use switchyard::canonical::{ChatRequest, ChatResponse, ContentBlock, StopReason, Usage};
use switchyard::classify::{UpstreamError, anthropic_http_error, anthropic_stream_error};
use switchyard::config::{self, Config, Deployment, MapEnv};
use switchyard::provider::{EventStream, Provider, anthropic_bench};
use switchyard::router::Router;
use switchyard::surface::openai;

fn main() {
    divan::main();
}

fn config(yaml: &str) -> Config {
    config::load_from_str(yaml, Path::new("bench.yaml"), &MapEnv::default()).unwrap()
}

fn deployment() -> Arc<Deployment> {
    let yaml = "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      api_key: sk-ant-bench\n";
    config(yaml).groups[0].deployments[0].clone()
}

const SMALL: &str =
    r#"{"model":"cheap","messages":[{"role":"user","content":"Say: WORKS"}],"max_tokens":10}"#;

/// A coding-agent turn: a system prompt, a few turns with a tool call and its result, tools.
fn large() -> String {
    let mut messages = vec![
        serde_json::json!({"role": "system", "content": "You are a careful coding assistant. ".repeat(40)}),
    ];
    for i in 0..8 {
        messages.push(serde_json::json!({"role": "user", "content": format!("Step {i}: explain the next change in detail. {}", "context ".repeat(60))}));
        messages.push(serde_json::json!({"role": "assistant", "content": null, "tool_calls": [{"id": format!("call_{i}"), "type": "function", "function": {"name": "read_file", "arguments": format!("{{\"path\":\"src/file_{i}.rs\"}}")}}]}));
        messages.push(serde_json::json!({"role": "tool", "tool_call_id": format!("call_{i}"), "content": "fn main() { println!(\"hello\"); }\n".repeat(20)}));
    }
    let tools: Vec<_> = (0..6).map(|i| serde_json::json!({"type": "function", "function": {"name": format!("tool_{i}"), "description": "Does one thing well.", "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "line": {"type": "integer"}}, "required": ["path"]}}})).collect();
    serde_json::json!({"model": "cheap", "messages": messages, "tools": tools, "max_tokens": 1024, "temperature": 0.2, "stream": true}).to_string()
}

#[divan::bench_group]
mod request {
    use super::*;

    fn translate(bencher: Bencher, body: &str) {
        let deployment = deployment();
        let body = Bytes::from(body.to_owned());
        bencher.counter(divan::counter::BytesCount::new(body.len())).bench(|| {
            let req = openai::decode_chat_request(black_box(&body)).unwrap();
            anthropic_bench::body(&req, &deployment).unwrap()
        });
    }

    /// The load benchmark's request.
    #[divan::bench]
    fn small(bencher: Bencher) {
        translate(bencher, SMALL);
    }

    /// 25 messages, tool calls and results, 6 tools (~17 KB).
    #[divan::bench]
    fn large(bencher: Bencher) {
        translate(bencher, &super::large());
    }

    /// The decoding half of `large`: OpenAI JSON → canonical only.
    #[divan::bench]
    fn large_decode_only(bencher: Bencher) {
        let body = Bytes::from(super::large());
        bencher
            .counter(divan::counter::BytesCount::new(body.len()))
            .bench(|| openai::decode_chat_request(black_box(&body)).unwrap());
    }
}

/// Anthropic's SSE for one answer with `deltas` text deltas, as chunks of one event each.
fn sse(deltas: usize) -> Vec<Bytes> {
    let mut events = vec![
        (
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#.to_owned(),
        ),
        ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#.to_owned()),
        ("ping", r#"{"type":"ping"}"#.to_owned()),
    ];
    for i in 0..deltas {
        events.push((
            "content_block_delta",
            format!(r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"word{i} and "}}}}"#),
        ));
    }
    events.push(("content_block_stop", r#"{"type":"content_block_stop","index":0}"#.to_owned()));
    events.push(("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#.to_owned()));
    events.push(("message_stop", r#"{"type":"message_stop"}"#.to_owned()));
    events
        .into_iter()
        .map(|(name, data)| Bytes::from(format!("event: {name}\ndata: {data}\n\n")))
        .collect()
}

#[divan::bench_group]
mod stream {
    use super::*;

    /// Per upstream event: an answer of 100 text deltas (106 events) relayed whole.
    #[divan::bench]
    fn relay_per_event(bencher: Bencher) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let deployment = deployment();
        let chunks = sse(100);
        bencher.counter(ItemsCount::new(chunks.len())).bench(|| {
            runtime.block_on(async {
                let events = anthropic_bench::stream(deployment.clone(), black_box(chunks.clone()))
                    .await
                    .unwrap();
                let mut frames = Box::pin(openai::encode_stream(events, true));
                let mut bytes = 0;
                while let Some(Ok(frame)) = frames.next().await {
                    bytes += frame.len();
                }
                bytes
            })
        });
    }
}

/// Answers at once, without I/O: what is left is the router's own work.
struct Instant;

impl Provider for Instant {
    fn send<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, UpstreamError>> {
        Box::pin(async {
            Ok(ChatResponse {
                id: "msg_1".into(),
                model: "m".into(),
                content: vec![ContentBlock::text("WORKS")],
                stop_reason: Some(StopReason::EndTurn),
                stop_sequence: None,
                usage: Usage::default(),
            })
        })
    }

    fn stream<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<EventStream, UpstreamError>> {
        Box::pin(async { Ok(Box::pin(futures_util::stream::empty()) as EventStream) })
    }

    fn count_tokens<'a>(&'a self, _: &'a ChatRequest) -> BoxFuture<'a, Result<u64, UpstreamError>> {
        Box::pin(async { Ok(1) })
    }
}

/// One routed request through a router built from `yaml`, against an instant provider.
fn routing_bench(bencher: Bencher, yaml: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let router = Router::with_providers(&config(yaml), |_| Arc::new(Instant));
    let req = ChatRequest { model: "cheap".into(), ..ChatRequest::default() };
    bencher
        .bench(|| runtime.block_on(router.send(black_box(&req))).map(|s| s.route.retries).unwrap());
}

#[divan::bench_group]
mod routing {
    use super::*;

    fn route(bencher: Bencher, yaml: &str) {
        super::routing_bench(bencher, yaml);
    }

    /// One deployment for the alias.
    #[divan::bench]
    fn one_deployment(bencher: Bencher) {
        route(
            bencher,
            "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: anthropic/m\n      api_key: k\n",
        );
    }

    /// Four weighted deployments (simple-shuffle samples a failover order).
    #[divan::bench]
    fn four_weighted(bencher: Bencher) {
        let mut yaml = String::from("model_list:\n");
        for i in 0..4 {
            yaml.push_str(&format!("  - model_name: cheap\n    litellm_params:\n      model: anthropic/m{i}\n      api_key: k\n      weight: {}\n", i + 1));
        }
        route(bencher, &yaml);
    }

    /// Four deployments, least-busy.
    #[divan::bench]
    fn four_least_busy(bencher: Bencher) {
        let mut yaml = String::from("model_list:\n");
        for i in 0..4 {
            yaml.push_str(&format!("  - model_name: cheap\n    litellm_params:\n      model: anthropic/m{i}\n      api_key: k\n"));
        }
        yaml.push_str("router_settings:\n  routing_strategy: least-busy\n");
        route(bencher, &yaml);
    }
}

#[divan::bench_group]
mod admission {
    use super::*;
    use switchyard::limits::{Budget, Limits, OnExceed, Period, Plan, RateLimit, Scope};

    /// The engine alone, in process: admit against three budgets and an rpm limit, then
    /// settle (the settlement runs in the background, on the same runtime).
    #[divan::bench]
    fn admit_and_settle_in_process(bencher: Bencher) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let limits = runtime.block_on(async { Limits::in_process() });
        let budget = |scope| Budget {
            scope,
            limit: "1000000".parse().unwrap(),
            period: Period::Day,
            soft: None,
            source: String::new(),
            on_exceed: OnExceed::Refuse,
        };
        let plan = Plan {
            budgets: vec![
                budget(Scope::Global),
                budget(Scope::Alias("cheap".into())),
                budget(Scope::Deployment("a".into())),
            ],
            rates: vec![RateLimit {
                scope: Scope::Deployment("a".into()),
                rpm: Some(u64::MAX / 2),
                tpm: None,
                max_parallel: None,
                source: String::new(),
                on_exceed: OnExceed::Skip,
            }],
            max_cost: Some("0.0001".parse().unwrap()),
            tokens: 100,
        };
        bencher.bench(|| {
            runtime.block_on(async {
                let r = limits.admit(black_box(&plan)).await.unwrap();
                r.settle(None);
            })
        });
    }

    /// A whole routed request whose alias has a global and an alias budget and an rpm.
    #[divan::bench]
    fn route_with_budgets(bencher: Bencher) {
        super::routing_bench(
            bencher,
            "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: anthropic/m\n      api_key: k\n      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000001\n      rpm: 1000000000\nmodel_max_budget:\n  cheap: 1000000\nlitellm_settings:\n  max_budget: 1000000\n  budget_duration: 1d\n",
        );
    }
}

#[divan::bench_group]
mod classify {
    use super::*;

    /// A 529 `overloaded_error` with `retry-after`.
    #[divan::bench]
    fn http_overloaded(bencher: Bencher) {
        let d = deployment();
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "3".parse().unwrap());
        headers.insert("request-id", "req_011".parse().unwrap());
        let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"}"#;
        bencher.bench(|| {
            anthropic_http_error(&d, 529, black_box(&headers), black_box(body), 120).kind
        });
    }

    /// A 401 with the API's `authentication_error` (diagnosis names the key's source).
    #[divan::bench]
    fn http_unauthorized(bencher: Bencher) {
        let d = deployment();
        let headers = HeaderMap::new();
        let body = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
        bencher.bench(|| {
            anthropic_http_error(&d, 401, black_box(&headers), black_box(body), 120).kind
        });
    }

    /// A proxy's HTML page instead of the API's JSON.
    #[divan::bench]
    fn http_html_page(bencher: Bencher) {
        let d = deployment();
        let headers = HeaderMap::new();
        let body = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
        bencher.bench(|| {
            anthropic_http_error(&d, 502, black_box(&headers), black_box(body), 120).kind
        });
    }

    /// An `error` event in the middle of a stream.
    #[divan::bench]
    fn stream_error_event(bencher: Bencher) {
        let d = deployment();
        let data = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        bencher.bench(|| anthropic_stream_error(&d, black_box(data)).kind);
    }
}

#[divan::bench_group]
mod cost {
    use super::*;
    use switchyard::cost;

    /// A Claude answer with every token kind, at a table price (what each served request
    /// pays), and the price as the header's text.
    #[divan::bench]
    fn answer_cost(bencher: Bencher) {
        let price = cost::resolve(&deployment());
        let usage = Usage {
            input_tokens: 1_200,
            output_tokens: 350,
            cache_read_input_tokens: 48_000,
            cache_creation_input_tokens: 2_000,
            cache_creation_1h_input_tokens: 500,
        };
        bencher.bench(|| price.cost(black_box(&usage)).map(|c| c.to_string()));
    }

    /// Resolving a deployment's price (once per deployment per config load).
    #[divan::bench]
    fn resolve_price(bencher: Bencher) {
        let d = deployment();
        bencher.bench(|| cost::resolve(black_box(&d)).is_known());
    }
}

#[divan::bench_group]
mod metrics {
    use std::time::Duration;

    use super::*;
    use switchyard::metrics::{self, Deployment, Outcome, Who};

    const WHO: Who<'static> = Who {
        end_user: "",
        hashed_api_key: "d04ccbf2a5e0c1232d446c0980bbe89b19cc2f1f903ced483705792bfc8b768d",
        api_key_alias: "ci-pipeline",
        team: "team-platform",
        team_alias: "platform",
        user: "user-1234",
        requested_model: "cheap",
        model: "claude-haiku-4-5",
    };

    /// What every served request records: counters, spend, tokens, four histograms.
    #[divan::bench]
    fn request(bencher: Bencher) {
        let outcome = Outcome {
            status: 200,
            spend_nanos: Some(107_000),
            input_tokens: 7,
            output_tokens: 100,
            total: Duration::from_micros(900),
            llm_api: Some(Duration::from_micros(700)),
            first_token: Some(Duration::from_micros(300)),
            attempts: 1,
            ..Outcome::default()
        };
        bencher.bench(|| metrics::global().request(black_box(&WHO), black_box(&outcome)));
    }

    /// One upstream call's counter.
    #[divan::bench]
    fn deployment_call(bencher: Bencher) {
        let d = Deployment {
            litellm_model_name: "anthropic/claude-haiku-4-5",
            model_id: "b889b9e560935c13",
            api_base: "http://127.0.0.1:9000",
            api_provider: "anthropic",
        };
        bencher.bench(|| {
            metrics::global().deployment_call(black_box(&d), black_box(&WHO), 200, "");
        });
    }

    /// A scrape of the request families with 1,000 label sets (keys × models).
    #[divan::bench]
    fn render(bencher: Bencher) {
        let keys: Vec<String> = (0..250).map(|i| format!("{i:064x}")).collect();
        for key in &keys {
            for model in ["cheap", "balanced", "frontier", "other"] {
                let who = Who { hashed_api_key: key, requested_model: model, ..WHO };
                metrics::global().request(&who, &Outcome { status: 200, ..Outcome::default() });
            }
        }
        bencher.bench(|| {
            let mut text = metrics::render::Text::default();
            metrics::render::requests(metrics::global(), &mut text);
            text.into_string().len()
        });
    }
}
