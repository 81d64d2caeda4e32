//! Bedrock Converse end to end: OpenAI and Anthropic clients → an in-process gateway (port 0)
//! → the mock's Converse emulation (same SigV4 checks as InvokeModel, real event-stream
//! framing, AWS's errors). Asserts the exact Converse body for representative requests from
//! both surfaces, which model ids go to Converse, what the client receives (text, tool use,
//! usage with cache tokens, streaming included), AWS-xx classification, and exception frames
//! before and after the first client byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use mock_upstream::{AwsError, AwsIdentity, MockUpstream, Reply, Usage};
use serde_json::{Value, json};
use switchyard::server::Handle;

const KEY: &str = "AKIAMOCKCONVERSE0001";
const SECRET: &str = "mockConverseSecretAccessKey0000000000000";
const MASTER: &str = "sk-gw-master-0123456789";
const LLAMA: &str = "us.meta.llama3-3-70b-instruct-v1:0";
const NOVA: &str = "amazon.nova-pro-v1:0";
const CLAUDE: &str = "anthropic.claude-3-haiku-20240307-v1:0";
/// 1x1 PNG.
const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

/// `(alias, id, model after bedrock/ (or `mock:TEXT`))`.
fn yaml(mock: &MockUpstream, deps: &[(&str, &str, &str)]) -> String {
    let mut out = "model_list:\n".to_owned();
    for (i, (alias, id, model)) in deps.iter().enumerate() {
        out.push_str(&format!("  - model_name: {alias}\n    litellm_params:\n"));
        match model.strip_prefix("mock:") {
            Some(text) => out.push_str(&format!(
                "      model: anthropic/claude-sonnet-4-6\n      mock_response: {text}\n"
            )),
            None => out.push_str(&format!(
                "      model: bedrock/{model}\n      aws_region_name: us-east-1\n      \
                 aws_bedrock_runtime_endpoint: {}\n      aws_access_key_id: {KEY}\n      \
                 aws_secret_access_key: {SECRET}\n",
                mock.url()
            )),
        }
        out.push_str(&format!("      order: {}\n    model_info:\n      id: {id}\n", i + 1));
    }
    out.push_str(&format!(
        "router_settings:\n  num_retries: 0\n  disable_cooldowns: true\ngeneral_settings:\n  master_key: {MASTER}\n"
    ));
    out
}

async fn setup(deps: &[(&str, &str, &str)]) -> (MockUpstream, Handle) {
    let mock = MockUpstream::start().await;
    mock.aws().identity(AwsIdentity::new(KEY, SECRET));
    let env = support::no_home();
    let gw = support::gateway(&yaml(&mock, deps), &env).await;
    (mock, gw)
}

async fn openai(gw: &Handle, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(MASTER)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn anthropic(gw: &Handle, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/messages", gw.url()))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

fn say(alias: &str, stream: bool) -> Value {
    json!({"model": alias, "stream": stream, "stream_options": {"include_usage": true},
           "messages": [{"role": "user", "content": "Say: WORKS"}]})
}

fn sse(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|frame| frame.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned())))
        .collect()
}

fn weather_tool_openai() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "description": "Weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})
}

#[tokio::test]
async fn converse_serves_non_claude_ids_and_bedrock_converse_while_claude_keeps_invoke() {
    let (mock, gw) = setup(&[
        ("llama", "d-llama", LLAMA),
        ("nova", "d-nova", NOVA),
        ("forced", "d-forced", &format!("converse/{CLAUDE}")),
        ("claude", "d-claude", CLAUDE),
    ])
    .await;
    for alias in ["llama", "nova", "forced", "claude"] {
        let resp = openai(&gw, &say(alias, false)).await;
        assert_eq!(resp.status(), 200, "{alias}: {}", resp.text().await.unwrap());
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "WORKS", "{alias}");
    }
    let paths: Vec<String> = mock.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/model/us.meta.llama3-3-70b-instruct-v1%3A0/converse",
            "/model/amazon.nova-pro-v1%3A0/converse",
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke",
        ]
    );
    let auth = mock.received()[0].header("authorization").unwrap().to_owned();
    assert!(
        auth.contains(
            "/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date,"
        ),
        "{auth}"
    );
}

#[tokio::test]
async fn openai_requests_become_the_exact_converse_body() {
    let (mock, gw) = setup(&[("llama", "d1", LLAMA)]).await;
    let body = json!({
        "model": "llama", "max_tokens": 50, "temperature": 0.2, "top_p": 0.8, "stop": ["END"],
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this, and the weather?"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
            ]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
              "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        "tools": [weather_tool_openai()], "tool_choice": "required",
    });
    let resp = openai(&gw, &body).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = &mock.received()[0];
    assert_eq!(
        sent.body,
        json!({
            "system": [{"text": "Be terse."}],
            "messages": [
                {"role": "user", "content": [
                    {"text": "What is this, and the weather?"},
                    {"image": {"format": "png", "source": {"bytes": PNG}}},
                ]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "call_1", "content": [{"text": "sunny"}]}},
                ]},
            ],
            "inferenceConfig": {"maxTokens": 50, "temperature": 0.2, "topP": 0.8, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather",
                           "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}],
                "toolChoice": {"any": {}},
            },
        })
    );

    // What Converse cannot carry is refused by name before anything is sent.
    let resp = openai(
        &gw,
        &json!({"model": "llama", "seed": 7, "logit_bias": {"1": 1},
                                   "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("`seed`") && message.contains("`logit_bias`"), "{message}");
    assert!(message.contains("drop_params"), "{message}");
    assert_eq!(mock.received().len(), 1, "nothing sent for a refused request");
}

#[tokio::test]
async fn anthropic_requests_become_the_exact_converse_body() {
    let (mock, gw) = setup(&[("nova", "d1", NOVA)]).await;
    let body = json!({
        "model": "nova", "max_tokens": 64, "top_k": 5,
        "system": [{"type": "text", "text": "You are a cat.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "text", "text": "Describe."},
            ]},
        ],
        "tools": [{"name": "purr", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "purr"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    });
    let resp = anthropic(&gw, &body).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(
        mock.received()[0].body,
        json!({
            "system": [{"text": "You are a cat."}, {"cachePoint": {"type": "default"}}],
            "messages": [{"role": "user", "content": [
                {"image": {"format": "png", "source": {"bytes": PNG}}},
                {"text": "Describe."},
            ]}],
            "inferenceConfig": {"maxTokens": 64},
            "toolConfig": {"tools": [{"toolSpec": {"name": "purr", "inputSchema": {"json": {"type": "object"}}}}],
                           "toolChoice": {"tool": {"name": "purr"}}},
            "additionalModelRequestFields": {"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}},
        })
    );
}

#[tokio::test]
async fn text_tool_use_and_usage_reach_both_surfaces_streamed_or_not() {
    let usage = Usage {
        input_tokens: 12,
        output_tokens: 5,
        cache_creation_input_tokens: 100,
        cache_read_input_tokens: 2000,
        ..Usage::default()
    };
    let (mock, gw) = setup(&[("llama", "d1", LLAMA)]).await;
    let tool_reply =
        || Reply::text("Let me check.").then_tool_use("get_weather", json!({"city": "Paris"}));
    let ask = |stream: bool| {
        json!({"model": "llama", "stream": stream, "stream_options": {"include_usage": true},
               "tools": [weather_tool_openai()],
               "messages": [{"role": "user", "content": "Weather in Paris?"}]})
    };

    // OpenAI, JSON: text, a tool call and usage with cache tokens.
    mock.push(tool_reply().usage(usage));
    let v: Value = openai(&gw, &ask(false)).await.json().await.unwrap();
    let message = &v["choices"][0]["message"];
    assert_eq!(message["content"], "Let me check.");
    assert_eq!(message["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(message["tool_calls"][0]["function"]["arguments"], r#"{"city":"Paris"}"#);
    assert!(message["tool_calls"][0]["id"].as_str().unwrap().starts_with("tooluse_"));
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(v["usage"]["prompt_tokens"], 2112);
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 2000);

    // OpenAI, streamed: the same, usage from ConverseStream's metadata event.
    mock.push(tool_reply().usage(usage));
    let resp = openai(&gw, &ask(true)).await;
    assert_eq!(resp.status(), 200);
    let events = sse(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let text: String =
        events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Let me check.");
    let args: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, r#"{"city":"Paris"}"#);
    assert!(events.iter().any(|e| e["choices"][0]["finish_reason"] == "tool_calls"));
    let usage_chunk = events.iter().find(|e| e["usage"].is_object()).expect("a usage chunk");
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 2112);
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 5);
    assert!(mock.received()[1].path.ends_with("/converse-stream"));

    // Anthropic, JSON and streamed.
    let ask = |stream: bool| {
        json!({"model": "llama", "max_tokens": 64, "stream": stream,
               "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
               "messages": [{"role": "user", "content": "Weather in Paris?"}]})
    };
    mock.push(tool_reply().usage(usage));
    let v: Value = anthropic(&gw, &ask(false)).await.json().await.unwrap();
    assert_eq!(v["content"][0], json!({"type": "text", "text": "Let me check."}));
    assert_eq!(v["content"][1]["type"], "tool_use");
    assert_eq!(v["content"][1]["input"], json!({"city": "Paris"}));
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["usage"]["input_tokens"], 12);
    assert_eq!(v["usage"]["cache_read_input_tokens"], 2000);
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 100);

    mock.push(tool_reply().usage(usage));
    let resp = anthropic(&gw, &ask(true)).await;
    let events = sse(&resp.text().await.unwrap());
    assert_eq!(events[0]["type"], "message_start");
    assert_eq!(events.last().unwrap()["type"], "message_stop");
    let text: String = events.iter().filter_map(|e| e["delta"]["text"].as_str()).collect();
    assert_eq!(text, "Let me check.");
    let json_parts: String =
        events.iter().filter_map(|e| e["delta"]["partial_json"].as_str()).collect();
    assert_eq!(json_parts, r#"{"city":"Paris"}"#);
    let delta = events.iter().find(|e| e["type"] == "message_delta").unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 5);
    let starts: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "content_block_start")
        .filter_map(|e| e["content_block"]["type"].as_str())
        .collect();
    assert_eq!(starts, ["text", "tool_use"]);
}

#[tokio::test]
async fn converse_errors_are_classified_with_the_aws_rows() {
    let scripted: Vec<(&str, AwsError, u16, &str)> = vec![
        ("AWS-05", AwsError::not_authorized(), 403, "permission_denied"),
        ("AWS-07", AwsError::model_access_denied(), 403, "model_access"),
        ("AWS-10", AwsError::invalid_model_identifier(), 404, "model_not_found"),
        ("AWS-15", AwsError::throttling(), 429, "rate_limited"),
        ("AWS-16", AwsError::service_unavailable(), 502, "upstream_unavailable"),
        ("AWS-17", AwsError::input_too_long(), 400, "context_window"),
    ];
    for (row, error, status, class) in scripted {
        let (mock, gw) = setup(&[("llama", "d1", LLAMA)]).await;
        mock.push(error.clone().into());
        mock.push(error.into());
        for stream in [false, true] {
            let resp = openai(&gw, &say("llama", stream)).await;
            assert_eq!(resp.status(), status, "{row} stream={stream}");
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["error"]["code"], class, "{row}: {v}");
            assert_eq!(v["error"]["diagnosis"]["id"], row, "{row}: {v}");
        }
        let action = &mock.received()[1];
        assert!(action.path.ends_with("/converse-stream"));
    }
    // A wrong secret: the emulation's own SigV4 check (AWS-11), as on InvokeModel.
    let mock = MockUpstream::start().await;
    mock.aws().identity(AwsIdentity::new(KEY, "another000000000000000000000000000000000"));
    let env = support::no_home();
    let gw = support::gateway(&yaml(&mock, &[("llama", "d1", LLAMA)]), &env).await;
    let v: Value = openai(&gw, &say("llama", false)).await.json().await.unwrap();
    assert_eq!(v["error"]["diagnosis"]["id"], "AWS-11", "{v}");
}

#[tokio::test]
async fn an_exception_frame_before_the_first_byte_falls_back_and_after_it_ends_the_stream() {
    let (mock, gw) =
        setup(&[("llama", "converse-1", LLAMA), ("llama", "fallback-1", "mock:from the fallback")])
            .await;
    mock.push(AwsError::throttling().mid_stream(0));
    let resp = openai(&gw, &say("llama", true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-deployment"], "fallback-1");
    let attempts = resp.headers()["x-switchyard-attempts"].to_str().unwrap().to_owned();
    assert_eq!(attempts, "converse-1=rate_limited, fallback-1=ok");

    let (mock, gw) = setup(&[("llama", "converse-1", LLAMA)]).await;
    mock.push(AwsError::model_stream_error().mid_stream(3));
    let resp = openai(&gw, &say("llama", true)).await;
    assert_eq!(resp.status(), 200);
    let events = sse(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let text: String =
        events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Hello world", "the deltas before the exception arrived");
    let error = &events[events.len() - 2]["error"];
    assert_eq!(error["code"], "upstream_unavailable", "{events:?}");
    assert!(error["message"].as_str().unwrap().contains("ModelStreamErrorException"), "{error}");

    mock.push(AwsError::throttling().mid_stream(3));
    let body = json!({"model": "llama", "max_tokens": 64, "stream": true,
                      "messages": [{"role": "user", "content": "Say: WORKS"}]});
    let text = anthropic(&gw, &body).await.text().await.unwrap();
    let last = sse(&text).pop().unwrap();
    assert_eq!(last["type"], "error", "{text}");
    assert_eq!(last["error"]["type"], "rate_limit_error");

    // A stream cut before messageStop is an error, never a silent end.
    mock.push(Reply::text("Hello world").stream_drop_after(3));
    let events = sse(&openai(&gw, &say("llama", true)).await.text().await.unwrap());
    assert!(events.iter().any(|e| e["error"].is_object()), "{events:?}");
}
