//! OpenTelemetry traces end to end: a gateway with `callbacks: ["otel"]` → an OTLP/HTTP
//! receiver in this test, which decodes the exported protobuf with OpenTelemetry's own
//! message types. Asserts the request span's GenAI attributes, usage and cost, one child per
//! upstream attempt, a client's `traceparent` continued and the attempt's sent upstream (also
//! through Bedrock's SigV4 signing), a failed request's error class, and that a slow or
//! unreachable collector neither fails nor holds requests and that what it costs is counted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use mock_upstream::{AwsIdentity, MockUpstream, Reply, Usage};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message;
use serde_json::{Value, json};
use switchyard::config::MapEnv;
use switchyard::server::Handle;

const MASTER: &str = "sk-gw-master-0123456789";
const ANTHROPIC_KEY: &str = "sk-ant-api03-traces-0123456789abcdef";
const CLIENT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN: &str = "b7ad6b7169203331";
const CLIENT_STATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

// ---------------------------------------------------------------------------------------
// The OTLP/HTTP receiver.

#[derive(Default)]
struct Received {
    /// Each export's headers and decoded body.
    exports: Vec<(HeaderMap, ExportTraceServiceRequest)>,
}

#[derive(Clone)]
struct Collector {
    url: String,
    got: Arc<Mutex<Received>>,
}

impl Collector {
    /// Accepts `POST /v1/traces` with a protobuf body; with `hang`, never answers.
    async fn start(hang: bool) -> Self {
        let got = Arc::new(Mutex::new(Received::default()));
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(receive))
            .with_state((got.clone(), hang));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, got }
    }

    fn spans(&self) -> Vec<Span> {
        let got = self.got.lock().unwrap();
        got.exports
            .iter()
            .flat_map(|(_, e)| &e.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    /// Waits (at most 10 s) until `n` spans arrived.
    async fn wait_for(&self, n: usize) -> Vec<Span> {
        let spans = self.clone();
        assert!(
            eventually(|| std::future::ready(spans.spans().len() >= n)).await,
            "{n} spans expected, got {:?}",
            self.spans()
        );
        self.spans()
    }
}

async fn receive(
    State((got, hang)): State<(Arc<Mutex<Received>>, bool)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if hang {
        std::future::pending::<()>().await;
    }
    assert_eq!(headers.get("content-type").unwrap(), "application/x-protobuf");
    let decoded = ExportTraceServiceRequest::decode(body).expect("a valid OTLP protobuf export");
    got.lock().unwrap().exports.push((headers, decoded));
    StatusCode::OK
}

async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

// ---------------------------------------------------------------------------------------
// Spans.

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attrs(span: &Span) -> HashMap<String, Any> {
    span.attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
        .collect()
}

fn text(span: &Span, key: &str) -> String {
    match attrs(span).get(key) {
        Some(Any::StringValue(s)) => s.clone(),
        other => panic!("{key}: a string expected, got {other:?} in {span:?}"),
    }
}

fn int(span: &Span, key: &str) -> i64 {
    match attrs(span).get(key) {
        Some(Any::IntValue(i)) => *i,
        other => panic!("{key}: an integer expected, got {other:?} in {span:?}"),
    }
}

fn server_span(spans: &[Span]) -> Span {
    let servers: Vec<&Span> = spans.iter().filter(|s| s.kind == SpanKind::Server as i32).collect();
    assert_eq!(servers.len(), 1, "one request span: {spans:?}");
    servers[0].clone()
}

fn client_spans(spans: &[Span]) -> Vec<Span> {
    let mut out: Vec<Span> =
        spans.iter().filter(|s| s.kind == SpanKind::Client as i32).cloned().collect();
    out.sort_by_key(|s| s.start_time_unix_nano);
    out
}

fn status(span: &Span) -> i32 {
    span.status.as_ref().map_or(0, |s| s.code)
}

// ---------------------------------------------------------------------------------------
// The gateway.

/// `cheap`: a dead deployment first, then the mock's Anthropic API; `down`: only the dead one.
fn yaml(mock: &MockUpstream, callbacks: &str) -> String {
    format!(
        "model_list:
  - model_name: cheap
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: {ANTHROPIC_KEY}
      api_base: http://127.0.0.1:1
      order: 1
    model_info:
      id: dead
  - model_name: cheap
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: {ANTHROPIC_KEY}
      api_base: {}
      order: 2
    model_info:
      id: live
  - model_name: down
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: {ANTHROPIC_KEY}
      api_base: http://127.0.0.1:1
    model_info:
      id: down-only
router_settings:
  num_retries: 0
  disable_cooldowns: true
litellm_settings:
  {callbacks}
general_settings:
  master_key: {MASTER}
",
        mock.url()
    )
}

fn env(collector: &str, extra: &[(&str, &str)]) -> MapEnv {
    let mut pairs = vec![
        ("HOME", "/nonexistent"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector),
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20collector-secret,x-tenant=acme"),
        ("OTEL_SERVICE_NAME", "gateway-under-test"),
        ("OTEL_BSP_SCHEDULE_DELAY", "20"),
    ];
    pairs.extend_from_slice(extra);
    MapEnv::new(pairs)
}

async fn gateway(text: &str, env: &MapEnv) -> Handle {
    support::gateway(text, env).await
}

async fn post(
    gw: &Handle,
    path: &str,
    body: &Value,
    traceparent: Option<&str>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", gw.url()))
        .bearer_auth(MASTER)
        .header("anthropic-version", "2023-06-01")
        .json(body);
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp).header("tracestate", CLIENT_STATE);
    }
    req.send().await.unwrap()
}

async fn readiness(gw: &Handle) -> Value {
    reqwest::get(format!("{}/health/readiness", gw.url())).await.unwrap().json().await.unwrap()
}

fn usage(input: u64, output: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_request_is_one_span_with_a_child_per_attempt_continuing_the_clients_trace() {
    let collector = Collector::start(false).await;
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.push(Reply::text("WORKS").usage(usage(12, 3)));
    let gw = gateway(&yaml(&mock, "callbacks: [\"otel\"]"), &env(&collector.url, &[])).await;

    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let body = json!({"model": "cheap", "max_tokens": 20,
                      "messages": [{"role": "user", "content": "Say: WORKS"}]});
    let resp = post(&gw, "/v1/chat/completions", &body, Some(&traceparent)).await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let cost: f64 = resp.headers()["x-litellm-response-cost"].to_str().unwrap().parse().unwrap();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "WORKS");

    let spans = collector.wait_for(3).await;
    assert_eq!(spans.len(), 3, "{spans:?}");
    let request = server_span(&spans);
    // The client's trace goes on: same trace id, its span is the parent.
    assert_eq!(hex(&request.trace_id), CLIENT_TRACE);
    assert_eq!(hex(&request.parent_span_id), CLIENT_SPAN);
    assert_eq!(request.name, "chat cheap");
    assert_eq!(status(&request), SpanStatus::Ok as i32);
    assert_eq!(text(&request, "gen_ai.operation.name"), "chat");
    assert_eq!(text(&request, "gen_ai.request.model"), "cheap");
    assert_eq!(int(&request, "gen_ai.request.max_tokens"), 20);
    assert_eq!(text(&request, "gen_ai.response.model"), "claude-haiku-4-5");
    let upstream_id = text(&request, "gen_ai.response.id");
    assert!(upstream_id.starts_with("msg_"), "the upstream's id: {upstream_id}");
    match attrs(&request).get("gen_ai.response.finish_reasons") {
        Some(Any::ArrayValue(list)) => {
            let reasons: Vec<_> = list.values.iter().map(|v| v.value.clone()).collect();
            assert_eq!(reasons, [Some(Any::StringValue("end_turn".into()))]);
        }
        other => panic!("finish reasons as a list: {other:?}"),
    }
    assert_eq!(text(&request, "gen_ai.provider.name"), "anthropic");
    assert_eq!(int(&request, "gen_ai.usage.input_tokens"), 12);
    assert_eq!(int(&request, "gen_ai.usage.output_tokens"), 3);
    assert_eq!(text(&request, "switchyard.deployment_id"), "live");
    assert_eq!(text(&request, "switchyard.request_id"), request_id);
    assert_eq!(int(&request, "switchyard.attempts"), 2);
    match attrs(&request).get("switchyard.cost_usd") {
        Some(Any::DoubleValue(c)) => assert!((c - cost).abs() < 1e-12 && *c > 0.0, "{c} vs {cost}"),
        other => panic!("the cost as a double: {other:?}"),
    }
    assert!(!attrs(&request).contains_key("error.type"));

    // One child per attempt: the dead deployment's, failed with its class, then the live one.
    let attempts = client_spans(&spans);
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        assert_eq!(a.trace_id, request.trace_id);
        assert_eq!(a.parent_span_id, request.span_id);
        assert_eq!(a.name, "chat claude-haiku-4-5");
        assert_eq!(text(a, "gen_ai.provider.name"), "anthropic");
        assert!(a.start_time_unix_nano >= request.start_time_unix_nano);
        assert!(a.end_time_unix_nano <= request.end_time_unix_nano);
    }
    assert_eq!(text(&attempts[0], "switchyard.deployment_id"), "dead");
    assert!(!text(&attempts[0], "error.type").is_empty());
    assert_eq!(status(&attempts[0]), SpanStatus::Error as i32);
    assert_eq!(text(&attempts[1], "switchyard.deployment_id"), "live");
    assert!(!attrs(&attempts[1]).contains_key("error.type"));
    assert_eq!(status(&attempts[1]), SpanStatus::Ok as i32);

    // The upstream got the live attempt's context.
    let received = mock.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].header("traceparent"),
        Some(format!("00-{CLIENT_TRACE}-{}-01", hex(&attempts[1].span_id)).as_str())
    );
    // The client's vendor entries travel with it, unchanged.
    assert_eq!(received[0].header("tracestate"), Some(CLIENT_STATE));

    // The exporter's headers and the resource's service name.
    {
        let got = collector.got.lock().unwrap();
        let (headers, export) = &got.exports[0];
        assert_eq!(headers["authorization"], "Bearer collector-secret");
        assert_eq!(headers["x-tenant"], "acme");
        let resource = export.resource_spans[0].resource.as_ref().unwrap();
        let service = resource.attributes.iter().find(|kv| kv.key == "service.name").unwrap();
        assert_eq!(
            service.value.as_ref().unwrap().value,
            Some(Any::StringValue("gateway-under-test".into()))
        );
    }
    // Counted once the collector's answer is back.
    let exported = || async { readiness(&gw).await["traces"]["exported"] == 3 };
    assert!(eventually(exported).await, "{}", readiness(&gw).await);
    let ready = readiness(&gw).await;
    assert_eq!(ready["traces"]["dropped"], 0);
    assert!(!ready.to_string().contains("collector-secret"));
}

#[tokio::test]
async fn a_streamed_request_span_ends_with_the_stream_and_its_usage() {
    let collector = Collector::start(false).await;
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.push(Reply::text_chunks(["WO", "RKS"]).usage(usage(7, 5)));
    let text_yaml = yaml(&mock, "success_callback: [\"otel\"]");
    let gw = gateway(&text_yaml, &env(&collector.url, &[])).await;

    // By deployment id: one attempt.
    let body = json!({"model": "live", "max_tokens": 10, "stream": true,
                      "messages": [{"role": "user", "content": "Say: WORKS"}]});
    let resp = post(&gw, "/v1/messages", &body, None).await;
    assert_eq!(resp.status(), 200);
    let streamed = resp.text().await.unwrap();
    assert!(streamed.contains("message_stop"), "{streamed}");

    let spans = collector.wait_for(2).await;
    let request = server_span(&spans);
    // A new trace: no parent.
    assert!(request.parent_span_id.is_empty());
    assert_eq!(request.trace_id.len(), 16);
    assert_eq!(text(&request, "gen_ai.request.model"), "live");
    assert_eq!(int(&request, "gen_ai.usage.input_tokens"), 7);
    assert_eq!(int(&request, "gen_ai.usage.output_tokens"), 5);
    assert!(
        matches!(attrs(&request).get("switchyard.cost_usd"), Some(Any::DoubleValue(c)) if *c > 0.0)
    );
    assert_eq!(attrs(&request).get("switchyard.stream"), Some(&Any::BoolValue(true)));
    let attempts = client_spans(&spans);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].parent_span_id, request.span_id);
    // The stream's span outlives the attempt (which ends at the first event).
    assert!(request.end_time_unix_nano >= attempts[0].end_time_unix_nano);
    let received = mock.received();
    let sent = received[0].header("traceparent").unwrap();
    assert_eq!(sent, format!("00-{}-{}-01", hex(&request.trace_id), hex(&attempts[0].span_id)));
}

#[tokio::test]
async fn a_failed_request_carries_its_error_class() {
    let collector = Collector::start(false).await;
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    let gw = gateway(&yaml(&mock, "callbacks: otel"), &env(&collector.url, &[])).await;
    let body = json!({"model": "down", "messages": [{"role": "user", "content": "Say: WORKS"}]});
    let resp = post(&gw, "/v1/chat/completions", &body, None).await;
    assert!(resp.status().is_server_error(), "{}", resp.status());
    let answer: Value = resp.json().await.unwrap();

    let spans = collector.wait_for(2).await;
    let request = server_span(&spans);
    assert_eq!(status(&request), SpanStatus::Error as i32);
    let class = text(&request, "error.type");
    assert!(!class.is_empty());
    // The class the client's error names.
    assert!(answer.to_string().contains(&class), "{class} in {answer}");
    assert_eq!(text(&request, "switchyard.deployment_id"), "down-only");
    assert!(!attrs(&request).contains_key("gen_ai.usage.input_tokens"));
    let attempts = client_spans(&spans);
    assert_eq!(attempts.len(), 1);
    assert_eq!(text(&attempts[0], "error.type"), class);
}

#[tokio::test]
async fn a_request_the_client_abandons_is_exported_as_cancelled() {
    let collector = Collector::start(false).await;
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.push(Reply::text("late").delay(Duration::from_secs(30)));
    let gw = gateway(&yaml(&mock, "callbacks: [\"otel\"]"), &env(&collector.url, &[])).await;
    let body = json!({"model": "live", "messages": [{"role": "user", "content": "Say: WORKS"}]});
    let abandoned = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(MASTER)
        .json(&body)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(abandoned.is_err());

    let spans = collector.wait_for(2).await;
    let request = server_span(&spans);
    assert_eq!(text(&request, "error.type"), "cancelled");
    assert_eq!(status(&request), SpanStatus::Error as i32);
    let attempts = client_spans(&spans);
    assert_eq!(attempts.len(), 1);
    assert_eq!(text(&attempts[0], "error.type"), "cancelled");
    assert_eq!(attempts[0].parent_span_id, request.span_id);
}

#[tokio::test]
async fn the_sampler_and_the_clients_sampled_flag_decide_what_is_traced() {
    let collector = Collector::start(false).await;
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    let env = env(&collector.url, &[("OTEL_TRACES_SAMPLER", "parentbased_always_off")]);
    let gw = gateway(&yaml(&mock, "callbacks: [\"otel\"]"), &env).await;
    let body = json!({"model": "live", "messages": [{"role": "user", "content": "Say: WORKS"}]});
    let unsampled = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-00");
    let sampled = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    // Not traced: a new trace (the sampler keeps none), and a client's unsampled trace. They
    // are sent first: anything they queued would be exported before the last request's.
    for traceparent in [None, Some(unsampled.as_str()), Some(sampled.as_str())] {
        let resp = post(&gw, "/v1/chat/completions", &body, traceparent).await;
        assert_eq!(resp.status(), 200);
    }
    let spans = collector.wait_for(2).await;
    assert_eq!(spans.len(), 2, "only the sampled client's request: {spans:?}");
    assert!(spans.iter().all(|s| hex(&s.trace_id) == CLIENT_TRACE));
    let received = mock.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[0].header("traceparent"), None);
    assert_eq!(received[1].header("traceparent"), None);
    assert!(received[2].header("traceparent").unwrap().starts_with(&format!("00-{CLIENT_TRACE}-")));
}

#[tokio::test]
async fn a_slow_or_unreachable_collector_costs_spans_not_requests() {
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    // A collector that never answers, and a queue of one span.
    let slow = Collector::start(true).await;
    let slow_env = env(
        &slow.url,
        &[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "1"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "600000"),
        ],
    );
    // Nothing listens on port 1.
    let gone_env = env("http://127.0.0.1:1", &[]);
    for env in [slow_env, gone_env] {
        let gw = gateway(&yaml(&mock, "callbacks: [\"otel\"]"), &env).await;
        for _ in 0..6 {
            let body =
                json!({"model": "live", "messages": [{"role": "user", "content": "Say: WORKS"}]});
            let resp = post(&gw, "/v1/chat/completions", &body, None).await;
            assert_eq!(resp.status(), 200);
            let answer: Value = resp.json().await.unwrap();
            assert_eq!(answer["choices"][0]["message"]["content"], "WORKS");
        }
        let dropped = || async {
            let ready = readiness(&gw).await;
            ready["traces"]["dropped"].as_u64().unwrap() > 0
        };
        assert!(eventually(dropped).await, "{}", readiness(&gw).await);
        assert_eq!(readiness(&gw).await["traces"]["exported"], 0);
    }
    assert!(slow.spans().is_empty());
}

#[tokio::test]
async fn bedrock_signing_is_intact_with_traceparent_sent() {
    const KEY: &str = "AKIAMOCKBEDROCK00001";
    const SECRET: &str = "mockBedrockSecretAccessKey00000000000000";
    let collector = Collector::start(false).await;
    let mock = MockUpstream::start().await;
    mock.aws().identity(AwsIdentity::new(KEY, SECRET));
    let text = format!(
        "model_list:
  - model_name: br
    litellm_params:
      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: {}
      aws_access_key_id: {KEY}
      aws_secret_access_key: {SECRET}
litellm_settings:
  callbacks: [\"otel\"]
general_settings:
  master_key: {MASTER}
",
        mock.url()
    );
    let gw = gateway(&text, &env(&collector.url, &[])).await;
    for stream in [false, true] {
        let body = json!({"model": "br", "stream": stream,
                          "messages": [{"role": "user", "content": "Say: WORKS"}]});
        let resp = post(&gw, "/v1/chat/completions", &body, None).await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        assert!(resp.text().await.unwrap().contains("WORKS"));
    }
    let spans = collector.wait_for(4).await;
    let received = mock.received();
    assert_eq!(received.len(), 2, "each signed request accepted the first time");
    for r in &received {
        let sent = r.header("traceparent").expect("traceparent sent to Bedrock");
        let attempt = client_spans(&spans)
            .into_iter()
            .find(|s| sent.contains(&hex(&s.span_id)))
            .expect("the attempt span the header names");
        assert!(sent.contains(&hex(&attempt.trace_id)));
        assert!(!r.header("authorization").unwrap().contains("traceparent"));
    }
}

#[tokio::test]
async fn without_the_otel_callback_nothing_is_traced_or_sent_upstream() {
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    let collector = Collector::start(false).await;
    let gw = gateway(&yaml(&mock, "callbacks: [\"prometheus\"]"), &env(&collector.url, &[])).await;
    let body = json!({"model": "live", "messages": [{"role": "user", "content": "Say: WORKS"}]});
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let resp = post(&gw, "/v1/chat/completions", &body, Some(&traceparent)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(mock.received()[0].header("traceparent"), None);
    assert_eq!(readiness(&gw).await["traces"], Value::Null);
    assert!(collector.spans().is_empty());
}

#[test]
fn otel_is_read_from_the_callbacks_and_other_callbacks_are_still_named() {
    let base = "model_list:\n  - model_name: m\n    litellm_params:\n      model: anthropic/x\n      mock_response: hi\nlitellm_settings:\n";
    let load =
        |callbacks: &str, env: &MapEnv| support::config(&format!("{base}  {callbacks}\n"), env);
    let none = MapEnv::default();
    let on = load("callbacks: [\"otel\"]", &none);
    let otel = on.general.otel.as_ref().unwrap();
    assert_eq!(otel.traces_url, "http://localhost:4318/v1/traces");
    assert_eq!(otel.service_name, "switchyard");
    assert!(on.warnings.is_empty(), "{:?}", on.warnings);
    assert!(load("success_callback: otel", &none).general.otel.is_some());
    assert!(load("callbacks: [\"prometheus\"]", &none).general.otel.is_none());
    let sampler = |name: &str, arg: &str| {
        let env = MapEnv::new([("OTEL_TRACES_SAMPLER", name), ("OTEL_TRACES_SAMPLER_ARG", arg)]);
        let cfg = load("callbacks: otel", &env);
        let s = cfg.general.otel.unwrap().sampler;
        (s.ratio, s.parent_based, cfg.warnings.len())
    };
    assert_eq!(sampler("parentbased_traceidratio", "0.25"), (0.25, true, 0));
    assert_eq!(sampler("traceidratio", "0.5"), (0.5, false, 0));
    assert_eq!(sampler("always_off", ""), (0.0, false, 0));
    assert_eq!(sampler("traceidratio", "2"), (1.0, false, 1));
    assert_eq!(sampler("jaeger_remote", ""), (1.0, true, 1));
    let disabled = MapEnv::new([("OTEL_SDK_DISABLED", "true")]);
    assert!(load("callbacks: [\"otel\"]", &disabled).general.otel.is_none());

    let mixed = load("success_callback: [\"otel\", \"langfuse\"]", &none);
    assert!(mixed.general.otel.is_some());
    let w: Vec<_> = mixed.warnings.iter().map(|w| (w.id, w.key.as_str())).collect();
    assert_eq!(w, [("CFG-06", "litellm_settings.success_callback")]);

    let env = MapEnv::new([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector.example:4318/"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%3Db,broken"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
    ]);
    let cfg = load("callbacks: [\"otel\"]", &env);
    let otel = cfg.general.otel.as_ref().unwrap();
    assert_eq!(otel.traces_url, "https://collector.example:4318/v1/traces");
    assert_eq!(otel.headers.len(), 1);
    assert_eq!((otel.headers[0].0.as_str(), otel.headers[0].1.expose()), ("api-key", "a=b"));
    assert_eq!(otel.queue_size, 2048);
    assert!(cfg.warnings.iter().any(|w| w.message.contains("OTEL_BSP_MAX_QUEUE_SIZE")));
    // The whole traces URL, as LiteLLM's users write it, is not doubled.
    let env = MapEnv::new([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/v1/traces")]);
    assert_eq!(
        load("callbacks: otel", &env).general.otel.unwrap().traces_url,
        "http://c:4318/v1/traces"
    );
    // A signal-specific endpoint is used as written.
    let env = MapEnv::new([("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:9/custom")]);
    assert_eq!(load("callbacks: otel", &env).general.otel.unwrap().traces_url, "http://c:9/custom");
}

#[tokio::test]
async fn a_graceful_stop_exports_the_spans_still_queued_and_never_logs_the_headers() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let collector = Collector::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("traces.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      mock_response: WORKS\nlitellm_settings:\n  callbacks: [\"otel\"]\ngeneral_settings:\n  master_key: {MASTER}\n  disable_spend_logs: true\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--config", config.to_str().unwrap(), "--port", "0", "--log-level", "debug"])
        .env("HOME", dir.path())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url)
        .env("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20collector-secret-42")
        // A batch would wait ten minutes to fill: only the stop's flush sends it.
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .env_remove("SWITCHYARD_CONFIG")
        .env_remove("SWITCHYARD_ENV_FILE")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    let url = line.strip_prefix("Switchyard listening on ").unwrap().to_owned();
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(MASTER)
        .json(&json!({"model": "cheap", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(collector.spans().is_empty(), "nothing exported before the stop");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exited = eventually(|| std::future::ready(child.try_wait().unwrap().is_some())).await;
    if !exited {
        let _ = child.kill();
    }
    assert!(exited, "the gateway did not stop");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let spans = collector.spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(text(&server_span(&spans), "gen_ai.request.model"), "cheap");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("traces exported over OTLP/HTTP"), "{logged}");
    assert!(!logged.contains("collector-secret-42"), "{logged}");
}

#[tokio::test]
async fn an_answer_from_the_cache_is_a_span_without_attempts() {
    let collector = Collector::start(false).await;
    let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
    mock.set_default(Reply::text("WORKS").usage(usage(7, 3)));
    let callbacks = "callbacks: otel\n  cache: true\n  cache_params:\n    type: local";
    let gw = gateway(&yaml(&mock, callbacks), &env(&collector.url, &[])).await;
    let body = json!({"model": "cheap", "max_tokens": 50, "messages": [{"role": "user", "content": "Say: WORKS"}]});
    for _ in 0..2 {
        let resp = post(&gw, "/v1/messages", &body, None).await;
        assert_eq!(resp.status(), 200);
    }
    // The miss: a request span and its two attempts (the dead deployment, then the live
    // one); the hit: one more request span, no attempt.
    let spans = collector.wait_for(4).await;
    let requests: Vec<&Span> = spans.iter().filter(|s| s.parent_span_id.is_empty()).collect();
    assert_eq!(requests.len(), 2, "{spans:?}");
    let hit = requests
        .iter()
        .find(|s| attrs(s).contains_key("switchyard.cache_hit"))
        .expect("the hit's span says it came from the cache");
    assert!(!text(hit, "switchyard.cache_key").is_empty());
    assert_eq!(int(hit, "gen_ai.usage.output_tokens"), 3);
    assert_eq!(status(hit), SpanStatus::Ok as i32);
    let children = spans.iter().filter(|s| s.parent_span_id == hit.span_id).count();
    assert_eq!(children, 0);
    assert_eq!(client_spans(&spans).len(), 2, "only the miss called upstream");
}
