//! The Responses API (`POST /v1/responses`) end to end: an HTTP client → an in-process
//! gateway (port 0) → the mock upstream (Anthropic, Bedrock, OpenAI-compatible). Asserts
//! the Response object and the SSE event sequence the client receives, what reaches the
//! upstream (tool round trips, images, structured output, reasoning effort), errors before
//! and after the commit point, stored Responses (`previous_response_id`, GET, DELETE) and
//! the ledger row.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod support;

use mock_upstream::{AwsIdentity, MockUpstream, Reply};
use serde_json::{Value, json};
use switchyard::server::Handle;

const KEY: &str = "sk-ant-api03-test-0123456789abcdefghij";
const MASTER: &str = "sk-gw-master-0123456789";
const AWS_KEY: &str = "AKIAMOCKBEDROCK00001";
const AWS_SECRET: &str = "mockBedrockSecretAccessKey00000000000000";

/// `balanced` (Anthropic), `oai` (OpenAI-compatible) and `br` (Claude on Bedrock), all at
/// the one mock.
fn yaml(mock: &MockUpstream) -> String {
    let url = mock.url();
    format!(
        "model_list:
  - model_name: balanced
    litellm_params:
      model: anthropic/claude-sonnet-4-6
      api_key: {KEY}
      api_base: {url}
  - model_name: oai
    litellm_params:
      model: openai/gpt-4o
      api_key: {KEY}
      api_base: {url}/v1
  - model_name: native
    litellm_params:
      model: openai/gpt-4.1
      api_key: {KEY}
      api_base: {url}/v1
    model_info:
      supported_endpoints: [/v1/chat/completions, /v1/responses]
  - model_name: br
    litellm_params:
      model: bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0
      aws_access_key_id: {AWS_KEY}
      aws_secret_access_key: {AWS_SECRET}
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: {url}
router_settings:
  num_retries: 0
  disable_cooldowns: true
general_settings:
  master_key: {MASTER}
"
    )
}

async fn setup() -> (MockUpstream, Handle) {
    let mock = MockUpstream::builder().api_key(KEY).start().await;
    mock.aws().identity(AwsIdentity::new(AWS_KEY, AWS_SECRET));
    let env = support::no_home();
    let gw = support::gateway(&yaml(&mock), &env).await;
    (mock, gw)
}

async fn post(gw: &Handle, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/responses", gw.url()))
        .bearer_auth(MASTER)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The events of a streamed answer as (`event:` name, data).
async fn stream(gw: &Handle, body: &Value) -> (u16, Vec<(String, Value)>) {
    let resp = reqwest::Client::new()
        .post(format!("{}/responses", gw.url()))
        .bearer_auth(MASTER)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let events = text
        .split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let name = frame.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or_default();
            let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            (name.to_owned(), serde_json::from_str(data).unwrap_or(Value::Null))
        })
        .collect();
    (status, events)
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().unwrap().iter())
        .map(|part| part["text"].as_str().unwrap().to_owned())
        .collect()
}

fn last_upstream_body(mock: &MockUpstream) -> Value {
    mock.received().last().unwrap().body.clone()
}

#[tokio::test]
async fn a_string_input_gets_a_complete_response_object() {
    let (mock, gw) = setup().await;
    let (status, r) = post(
        &gw,
        &json!({"model": "balanced", "input": "Say: WORKS", "instructions": "Be brief.",
                "max_output_tokens": 64, "metadata": {"app": "t"}, "store": false}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert!(r["id"].as_str().unwrap().starts_with("resp_"), "{r}");
    assert_eq!(r["object"], "response");
    assert_eq!(r["status"], "completed");
    assert!(r["created_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["incomplete_details"], Value::Null);
    assert_eq!(r["instructions"], "Be brief.");
    assert_eq!(r["max_output_tokens"], 64);
    assert_eq!(r["metadata"], json!({"app": "t"}));
    assert_eq!(r["store"], false);
    assert_eq!(r["tool_choice"], "auto");
    assert_eq!(r["parallel_tool_calls"], true);
    assert!(r.get("output_text").is_none(), "output_text is computed by the SDKs");
    let message = &r["output"][0];
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["status"], "completed");
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["content"][0]["type"], "output_text");
    assert_eq!(message["content"][0]["annotations"], json!([]));
    assert_eq!(output_text(&r), "WORKS");
    let usage = &r["usage"];
    let (input, output) =
        (usage["input_tokens"].as_u64().unwrap(), usage["output_tokens"].as_u64().unwrap());
    assert!(input > 0 && output > 0, "{usage}");
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), input + output);
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 0);

    let sent = last_upstream_body(&mock);
    assert_eq!(sent["system"][0]["text"], "Be brief.");
    assert_eq!(sent["max_tokens"], 64);
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Say: WORKS"}]}])
    );
    assert!(
        sent.get("metadata").is_none_or(|m| m.get("app").is_none()),
        "metadata is the gateway's"
    );
}

#[tokio::test]
async fn a_function_call_round_trip_reaches_the_upstream_as_tool_use_and_result() {
    let (mock, gw) = setup().await;
    mock.push(Reply::tool_use("get_weather", json!({"city": "Paris"})));
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}]);
    let (status, r) = post(
        &gw,
        &json!({"model": "balanced", "input": "Weather in Paris?", "tools": tools,
                "tool_choice": {"type": "function", "name": "get_weather"}}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let call = &r["output"][0];
    assert_eq!(call["type"], "function_call", "{r}");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["status"], "completed");
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    let sent = last_upstream_body(&mock);
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(sent["tool_choice"], json!({"type": "tool", "name": "get_weather"}));

    // The client runs the tool and sends the whole conversation back.
    let call_id = call["call_id"].as_str().unwrap();
    let (status, r) = post(
        &gw,
        &json!({"model": "balanced", "tools": tools, "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
            call,
            {"type": "function_call_output", "call_id": call_id, "output": "18C and sunny"}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let sent = last_upstream_body(&mock);
    assert_eq!(sent["messages"][1]["role"], "assistant");
    assert_eq!(sent["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(sent["messages"][1]["content"][0]["id"], call_id);
    assert_eq!(sent["messages"][1]["content"][0]["input"], json!({"city": "Paris"}));
    assert_eq!(
        sent["messages"][2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": call_id, "content": [{"type": "text", "text": "18C and sunny"}]})
    );
}

#[tokio::test]
async fn images_travel_as_url_and_base64_sources() {
    let (mock, gw) = setup().await;
    let (status, r) = post(
        &gw,
        &json!({"model": "balanced", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0K", "detail": "low"},
            {"type": "input_image", "image_url": "https://example.com/cat.jpg"}
        ]}]}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let content = &last_upstream_body(&mock)["messages"][0]["content"];
    assert_eq!(
        content[1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0K"})
    );
    assert_eq!(content[2]["source"], json!({"type": "url", "url": "https://example.com/cat.jpg"}));

    let (status, r) = post(
        &gw,
        &json!({"model": "balanced", "input": [{"role": "user", "content": [
            {"type": "input_image", "file_id": "file-123"}]}]}),
    )
    .await;
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["error"]["param"], "input[0].content[0].image_url");
}

#[tokio::test]
async fn a_json_schema_format_asks_the_upstream_for_that_schema() {
    let (mock, gw) = setup().await;
    let schema =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    mock.push(Reply::tool_use("json_tool_call", json!({"city": "Paris"})));
    let (status, r) = post(
        &gw,
        &json!({"model": "balanced", "input": "Capital of France as JSON",
                "text": {"format": {"type": "json_schema", "name": "capital", "schema": schema, "strict": true}}}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let sent = last_upstream_body(&mock);
    let tool = sent["tools"].as_array().unwrap().iter().find(|t| t["input_schema"] == schema);
    assert!(tool.is_some(), "the schema reaches the upstream: {sent}");
    assert_eq!(r["text"]["format"]["name"], "capital");
    assert_eq!(serde_json::from_str::<Value>(&output_text(&r)).unwrap(), json!({"city": "Paris"}));
}

#[tokio::test]
async fn reasoning_effort_becomes_a_thinking_budget_and_thinking_comes_back_as_reasoning() {
    let (mock, gw) = setup().await;
    mock.push(Reply::text("Four.").with_thinking("2 + 2 = 4"));
    let (status, r) =
        post(&gw, &json!({"model": "balanced", "input": "2+2?", "reasoning": {"effort": "high"}}))
            .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        last_upstream_body(&mock)["thinking"],
        json!({"type": "enabled", "budget_tokens": 4096})
    );
    let reasoning = &r["output"][0];
    assert_eq!(reasoning["type"], "reasoning", "{r}");
    assert_eq!(reasoning["summary"][0], json!({"type": "summary_text", "text": "2 + 2 = 4"}));
    assert_eq!(reasoning["encrypted_content"], "mock-signature");
    assert_eq!(r["reasoning"]["effort"], "high");

    // Passed back, the reasoning item is the signed thinking block again.
    let (status, _) = post(
        &gw,
        &json!({"model": "balanced", "reasoning": {"effort": "low"}, "input": [
            {"role": "user", "content": "2+2?"}, reasoning, r["output"][1],
            {"role": "user", "content": "And 3+3?"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let sent = last_upstream_body(&mock);
    assert_eq!(sent["thinking"]["budget_tokens"], 1024);
    assert_eq!(
        sent["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "2 + 2 = 4", "signature": "mock-signature"})
    );
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

#[tokio::test]
async fn a_streamed_text_answer_has_the_documented_event_sequence() {
    let (_mock, gw) = setup().await;
    let (status, events) =
        stream(&gw, &json!({"model": "balanced", "input": "Say: WORKS", "stream": true})).await;
    assert_eq!(status, 200);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i);
    }
    assert_eq!(events[0].1["response"]["status"], "in_progress");
    let item_id = events[2].1["item"]["id"].as_str().unwrap();
    assert_eq!(events[4].1["item_id"], item_id);
    assert_eq!(events[4].1["delta"], "WORKS");
    assert_eq!(events[5].1["text"], "WORKS");
    let done = &events[8].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["id"], events[0].1["response"]["id"]);
    assert_eq!(done["output"][0]["id"], item_id);
    assert_eq!(output_text(done), "WORKS");
    assert!(done["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_streamed_tool_call_streams_its_arguments() {
    let (_mock, gw) = setup().await;
    _mock.push(Reply::tool_use("get_weather", json!({"city": "Paris"})));
    let (status, events) = stream(
        &gw,
        &json!({"model": "balanced", "input": "Weather?", "stream": true,
                "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]}),
    )
    .await;
    assert_eq!(status, 200);
    let names = names(&events);
    assert_eq!(
        names[..3],
        ["response.created", "response.in_progress", "response.output_item.added"]
    );
    assert_eq!(events[2].1["item"]["type"], "function_call");
    assert_eq!(events[2].1["item"]["arguments"], "");
    assert_eq!(events[2].1["item"]["status"], "in_progress");
    let deltas: String = events
        .iter()
        .filter(|(n, _)| n == "response.function_call_arguments.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&deltas).unwrap(), json!({"city": "Paris"}));
    let tail = &names[names.len() - 3..];
    assert_eq!(
        tail,
        [
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let done_item = &events[events.len() - 2].1["item"];
    assert_eq!(done_item["name"], "get_weather");
    assert_eq!(done_item["status"], "completed");
    assert_eq!(done_item["arguments"], deltas);
    assert_eq!(events.last().unwrap().1["response"]["output"][0], *done_item);
}

#[tokio::test]
async fn errors_before_the_commit_point_are_openai_shaped_http_errors() {
    let (mock, gw) = setup().await;
    mock.push(Reply::error(429, "rate_limit_error", "Slow down"));
    let (status, body) =
        post(&gw, &json!({"model": "balanced", "input": "hi", "stream": true})).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Slow down"), "{body}");

    let (status, r) = post(&gw, &json!({"model": "nope", "input": "hi"})).await;
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["error"]["code"], "unknown_model", "{r}");
    assert_eq!(r["error"]["diagnosis"]["id"], "GW-02");

    // A hosted tool is refused by name unless the upstream serves the Responses API.
    let (status, r) = post(
        &gw,
        &json!({"model": "balanced", "input": "hi", "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}),
    )
    .await;
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["error"]["param"], "tools[0].type");
    assert_eq!(r["error"]["diagnosis"]["id"], "RSP-01");
    assert!(r["error"]["message"].as_str().unwrap().contains("code_interpreter"), "{r}");

    // Malformed JSON and unknown routes below /v1/responses answer in the same shape.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/responses", gw.url()))
        .bearer_auth(MASTER)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let r: Value = resp.json().await.unwrap();
    assert_eq!(r["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn web_search_is_left_out_and_namespaced_functions_are_offered() {
    let (mock, gw) = setup().await;
    mock.push(Reply::tool_use("spawn_agent", json!({"task": "x"})));
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/responses", gw.url()))
        .bearer_auth(MASTER)
        .json(&json!({"model": "balanced", "input": "hi", "tools": [
            {"type": "web_search", "external_web_access": false},
            {"type": "namespace", "name": "multi_agent_v1", "description": "Agents", "tools": [
                {"type": "function", "name": "spawn_agent", "parameters": {"type": "object"}}]}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-dropped-tools"], "web_search");
    let r: Value = resp.json().await.unwrap();
    let sent = last_upstream_body(&mock);
    let offered: Vec<&str> =
        sent["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(offered, ["spawn_agent"]);
    assert_eq!(r["output"][0]["name"], "spawn_agent");
    assert_eq!(r["output"][0]["namespace"], "multi_agent_v1");
}

#[tokio::test]
async fn an_upstream_failure_after_the_commit_point_ends_with_response_failed() {
    let (mock, gw) = setup().await;
    mock.push(Reply::stream_error_after(4, "overloaded_error", "Overloaded"));
    let (status, events) =
        stream(&gw, &json!({"model": "balanced", "input": "hi", "stream": true})).await;
    assert_eq!(status, 200);
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "response.failed", "{events:?}");
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(last["response"]["error"]["code"], "server_error");
    assert!(
        last["response"]["error"]["message"].as_str().unwrap().contains("Overloaded"),
        "{last}"
    );
    assert!(names(&events).contains(&"response.output_text.delta"));
    assert!(!names(&events).contains(&"response.completed"));
}

#[tokio::test]
async fn previous_response_id_continues_a_stored_conversation() {
    let (mock, gw) = setup().await;
    mock.push(Reply::text("Hello Ada."));
    let (status, first) = post(
        &gw,
        &json!({"model": "balanced", "input": "My name is Ada.", "instructions": "Be brief."}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["store"], true);
    let id = first["id"].as_str().unwrap();

    let (status, second) = stream(
        &gw,
        &json!({"model": "balanced", "input": "What is my name?", "previous_response_id": id, "stream": true}),
    )
    .await;
    assert_eq!(status, 200);
    let completed = &second.last().unwrap().1["response"];
    assert_eq!(completed["previous_response_id"], id);
    let sent = last_upstream_body(&mock);
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "My name is Ada."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello Ada."}]},
            {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]}
        ])
    );
    assert!(sent.get("system").is_none(), "instructions are not carried over: {sent}");

    // The streamed one was stored too: a third turn continues it.
    let second_id = completed["id"].as_str().unwrap();
    let (status, _) = post(
        &gw,
        &json!({"model": "balanced", "input": "Thanks", "previous_response_id": second_id}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(last_upstream_body(&mock)["messages"].as_array().unwrap().len(), 5);

    // GET returns it as it was returned; DELETE forgets it.
    let client = reqwest::Client::new();
    let got: Value = client
        .get(format!("{}/v1/responses/{id}", gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, first);
    let deleted = client
        .delete(format!("{}/v1/responses/{id}", gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);

    let calls = mock.calls();
    let (status, r) =
        post(&gw, &json!({"model": "balanced", "input": "again", "previous_response_id": id}))
            .await;
    assert_eq!(status, 404, "{r}");
    assert_eq!(r["error"]["type"], "not_found_error");
    assert_eq!(r["error"]["param"], "previous_response_id");
    assert_eq!(r["error"]["diagnosis"]["id"], "RSP-02");
    assert!(r["error"]["message"].as_str().unwrap().contains("Fix:"), "{r}");
    assert_eq!(mock.calls(), calls, "an unknown id never reaches the upstream");

    // `store: false` keeps nothing.
    let (_, unstored) =
        post(&gw, &json!({"model": "balanced", "input": "x", "store": false})).await;
    let (status, _) = post(
        &gw,
        &json!({"model": "balanced", "input": "y", "previous_response_id": unstored["id"]}),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn every_provider_answers_a_basic_call() {
    let (mock, gw) = setup().await;
    for (alias, path) in [
        ("balanced", "/v1/messages"),
        ("oai", "/v1/chat/completions"),
        ("br", "/model/us.anthropic.claude-3-5-haiku-20241022-v1:0/invoke"),
    ] {
        let (status, r) =
            post(&gw, &json!({"model": alias, "input": "Say: WORKS", "store": false})).await;
        assert_eq!(status, 200, "{alias}: {r}");
        assert_eq!(output_text(&r), "WORKS", "{alias}");
        assert!(r["usage"]["total_tokens"].as_u64().unwrap() > 0, "{alias}");
        let got = mock.received();
        let last = got.last().unwrap();
        assert_eq!(last.path.replace("%3A", ":"), path, "{alias}");

        let (status, events) =
            stream(&gw, &json!({"model": alias, "input": "Say: WORKS", "stream": true})).await;
        assert_eq!(status, 200, "{alias}");
        assert_eq!(events.last().unwrap().0, "response.completed", "{alias}: {events:?}");
        assert_eq!(output_text(&events.last().unwrap().1["response"]), "WORKS", "{alias}");
    }
}

#[tokio::test]
async fn a_ledger_row_is_written_with_litellms_responses_call_type() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ledger_support::settings(dir.path(), None);
    let (_mock, gw, ledger) = ledger_support::gateway(&settings).await;
    let (status, _, _, body) = ledger_support::call(
        &reqwest::Client::new(),
        &gw.url(),
        "/v1/responses",
        "req-responses-1",
        json!({"model": "good", "input": "Say: WORKS"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    ledger.flush().await;
    let rows = ledger_support::sqlite_rows(&ledger_support::sqlite_pool(dir.path()).await).await;
    let row = rows.iter().find(|r| r.request_id == "req-responses-1").unwrap();
    assert_eq!(row.call_type, "aresponses");
    assert_eq!(row.model_group, "good");
    assert_eq!(row.status, "success");
    assert!(row.total_tokens > 0);
}

#[tokio::test]
async fn the_response_cache_answers_a_repeated_request_without_an_upstream_call() {
    let mock = MockUpstream::builder().api_key(KEY).start().await;
    let text = format!("{}litellm_settings:\n  cache: true\n", yaml(&mock));
    let env = support::no_home();
    let gw = support::gateway(&text, &env).await;
    let body = json!({"model": "balanced", "input": "Say: CACHED"});
    let (status, first) = post(&gw, &body).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = post(&gw, &body).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(mock.calls(), 1, "the second answer came from the cache");
    assert_eq!(output_text(&second), "CACHED");
    assert_ne!(first["id"], second["id"], "each Response has its own id");
    let (status, events) =
        stream(&gw, &json!({"model": "balanced", "input": "Say: CACHED", "stream": true})).await;
    assert_eq!(status, 200);
    assert_eq!(mock.calls(), 1);
    assert_eq!(output_text(&events.last().unwrap().1["response"]), "CACHED");
}

/// A second turn as Codex CLI sends it: developer messages as the system prompt, items with
/// ids, a function call echoed back with its status, a string output, hosted web search and
/// a namespace tool, and the fields it adds (`include`, `prompt_cache_key`,
/// `client_metadata`).
#[tokio::test]
async fn a_codex_cli_turn_is_served() {
    let (mock, gw) = setup().await;
    mock.push(Reply::text("Done."));
    let body = json!({
        "model": "balanced",
        "stream": true,
        "input": [
            {"type": "message", "id": "msg_1", "role": "developer",
             "content": [{"type": "input_text", "text": "You are a coding agent running in the Codex CLI."}]},
            {"type": "message", "id": "msg_2", "role": "user",
             "content": [{"type": "input_text", "text": "<environment_context>cwd</environment_context>"}]},
            {"type": "message", "id": "msg_3", "role": "user",
             "content": [{"type": "input_text", "text": "Run echo"}]},
            {"type": "function_call", "status": "completed", "id": "fc_1", "name": "exec_command",
             "arguments": "{\"cmd\": \"echo TOOL-RAN\"}", "call_id": "call_1"},
            {"type": "function_call_output", "id": "fco_1", "call_id": "call_1",
             "output": "Process exited with code 0\nOutput:\nTOOL-RAN\n"}
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "description": "Run a command", "strict": false,
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}},
                            "required": ["cmd"], "additionalProperties": false}},
            {"type": "namespace", "name": "multi_agent_v1", "description": "Agents",
             "tools": [{"type": "function", "name": "spawn_agent", "parameters": {"type": "object"}}]},
            {"type": "web_search", "external_web_access": false}
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": true,
        "reasoning": {"summary": "auto"},
        "store": false,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "5b1c",
        "client_metadata": {"turn_id": "t1", "session_id": "s1"}
    });
    let (status, events) = stream(&gw, &body).await;
    assert_eq!(status, 200, "{events:?}");
    let (name, done) = events.last().unwrap();
    assert_eq!(name, "response.completed");
    assert_eq!(output_text(&done["response"]), "Done.");
    let sent = last_upstream_body(&mock);
    assert_eq!(sent["system"][0]["text"], "You are a coding agent running in the Codex CLI.");
    let roles: Vec<&str> =
        sent["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(sent["messages"][0]["content"].as_array().unwrap().len(), 2);
    assert_eq!(sent["messages"][1]["content"][0]["input"], json!({"cmd": "echo TOOL-RAN"}));
    assert_eq!(sent["messages"][2]["content"][0]["tool_use_id"], "call_1");
    assert!(sent.get("thinking").is_none(), "no effort, no thinking budget");
    for field in ["include", "prompt_cache_key", "client_metadata", "store"] {
        assert!(sent.get(field).is_none(), "{field} is not forwarded");
    }
}

#[tokio::test]
async fn a_deployment_serving_the_responses_api_gets_the_request_as_sent() {
    let (mock, gw) = setup().await;
    let request = json!({
        "model": "native", "input": "Say: NATIVE", "instructions": "Be brief.",
        "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}, {"type": "web_search"}],
        "include": ["file_search_call.results"], "metadata": {"app": "t"}, "fallbacks": ["balanced"]
    });
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/responses", gw.url()))
        .bearer_auth(MASTER)
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-switchyard-dropped-tools").is_none(), "nothing is left out");
    let first: Value = resp.json().await.unwrap();
    assert_eq!(output_text(&first), "NATIVE", "{first}");
    assert!(first["id"].as_str().unwrap().starts_with("resp_"));
    let got = mock.received().last().unwrap().clone();
    assert_eq!(got.path, "/v1/responses");
    assert_eq!(got.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    let mut expected = request.clone();
    expected["model"] = json!("gpt-4.1");
    expected["stream"] = json!(false);
    expected["store"] = json!(false);
    expected.as_object_mut().unwrap().remove("fallbacks");
    assert_eq!(
        got.body, expected,
        "the client's body, for the deployment's model, stored nowhere upstream"
    );

    // Continued: the upstream receives the conversation as items; streamed answers too.
    let (status, events) = stream(
        &gw,
        &json!({"model": "native", "input": "Say: AGAIN", "previous_response_id": first["id"], "stream": true}),
    )
    .await;
    assert_eq!(status, 200);
    let names = names(&events);
    assert_eq!(names.first(), Some(&"response.created"));
    assert_eq!(names.last(), Some(&"response.completed"), "{events:?}");
    assert_eq!(output_text(&events.last().unwrap().1["response"]), "AGAIN");
    let sent = last_upstream_body(&mock);
    assert_eq!(sent["stream"], true);
    assert!(sent.get("previous_response_id").is_none());
    let input = sent["input"].as_array().unwrap();
    assert_eq!(input[0], json!({"role": "user", "content": "Say: NATIVE"}));
    assert_eq!(input[1]["type"], "message");
    assert_eq!(input[1]["content"][0]["text"], "NATIVE");
    assert_eq!(input[2], json!({"role": "user", "content": "Say: AGAIN"}));

    // A function call comes back as one.
    mock.push(Reply::tool_use("get_weather", json!({"city": "Paris"})));
    let (status, r) = post(
        &gw,
        &json!({"model": "native", "input": "Weather?",
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["output"][0]["type"], "function_call");
    assert_eq!(r["output"][0]["arguments"], json!({"city": "Paris"}).to_string());
}

#[tokio::test]
async fn streamed_thinking_arrives_as_reasoning_summary_events() {
    let (mock, gw) = setup().await;
    mock.push(Reply::text("Four.").with_thinking("two plus two"));
    let (status, events) =
        stream(&gw, &json!({"model": "balanced", "input": "2+2?", "stream": true, "reasoning": {"effort": "low"}})).await;
    assert_eq!(status, 200);
    let names = names(&events);
    assert_eq!(
        names[2..5],
        [
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta"
        ]
    );
    let thought: String = events
        .iter()
        .filter(|(n, _)| n == "response.reasoning_summary_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(thought, "two plus two");
    assert!(names.contains(&"response.reasoning_summary_text.done"));
    assert!(names.contains(&"response.reasoning_summary_part.done"));
    let done = &events.last().unwrap().1["response"];
    assert_eq!(done["output"][0]["type"], "reasoning");
    assert_eq!(done["output"][0]["encrypted_content"], "mock-signature");
    assert_eq!(output_text(done), "Four.");
}

#[tokio::test]
async fn an_answer_cut_by_max_output_tokens_is_incomplete() {
    let (mock, gw) = setup().await;
    mock.push(Reply::text("Once upon").stop_reason("max_tokens"));
    let (status, r) =
        post(&gw, &json!({"model": "balanced", "input": "A story", "max_output_tokens": 2})).await;
    assert_eq!(status, 200);
    assert_eq!(r["status"], "incomplete");
    assert_eq!(r["incomplete_details"], json!({"reason": "max_output_tokens"}));
    mock.push(Reply::text("Once upon").stop_reason("max_tokens"));
    let (_, events) = stream(
        &gw,
        &json!({"model": "balanced", "input": "A story", "max_output_tokens": 2, "stream": true}),
    )
    .await;
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
}

/// Two gateways on one Redis (a prefix of this test's own, removed afterwards): a Response
/// stored by one is continued on the other.
#[tokio::test]
async fn replicas_on_one_redis_share_stored_responses() {
    let mock = MockUpstream::builder().api_key(KEY).start().await;
    let prefix = format!("sy-test-responses-{:016x}:", fastrand_like());
    let text = yaml(&mock)
        .replace(
            "router_settings:\n",
            "router_settings:\n  redis_host: 127.0.0.1\n  redis_port: 6379\n",
        )
        .replace(
            "general_settings:\n",
            &format!("general_settings:\n  redis_key_prefix: \"{prefix}\"\n"),
        );
    let env = support::no_home();
    let start = || async { support::gateway(&text, &env).await };
    let (one, two) = (start().await, start().await);
    mock.push(Reply::text("Hello Ada."));
    let (status, first) = post(&one, &json!({"model": "balanced", "input": "I am Ada."})).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = post(
        &two,
        &json!({"model": "balanced", "input": "Who am I?", "previous_response_id": first["id"]}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(last_upstream_body(&mock)["messages"].as_array().unwrap().len(), 3);

    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let ttl: i64 = redis::cmd("TTL").arg(&keys[0]).query_async(&mut conn).await.unwrap();
    assert!(ttl > 0 && ttl <= 3600, "stored Responses expire: {ttl}");
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
}

fn fastrand_like() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        ^ u64::from(std::process::id())
}
