use serde_json::json;

use super::*;
use crate::canonical::Dialect;

fn opts(drop_params: bool) -> Options<'static> {
    Options { default_max_tokens: None, drop_params, who: "the deployment of `x`" }
}

fn user(text: &str) -> Message {
    Message { role: Role::User, content: vec![ContentBlock::text(text)] }
}

#[test]
fn text_system_parameters_and_tools_become_the_converse_body() {
    let req = ChatRequest {
        system: vec![ContentBlock::Text {
            text: "Be terse.".into(),
            cache_control: Some(json!({"type": "ephemeral"})),
        }],
        messages: vec![
            user("Weather?"),
            Message {
                role: Role::Assistant,
                content: vec![ContentBlock::ToolUse {
                    id: "t1".into(),
                    name: "get_weather".into(),
                    input: json!({"city": "Paris"}),
                    cache_control: None,
                }],
            },
            Message {
                role: Role::User,
                content: vec![ContentBlock::ToolResult {
                    tool_use_id: "t1".into(),
                    content: vec![ContentBlock::text("sunny")],
                    is_error: true,
                    cache_control: None,
                }],
            },
        ],
        max_tokens: Some(100),
        temperature: Some(0.5),
        top_p: Some(0.9),
        top_k: Some(40),
        stop_sequences: vec!["END".into(), String::new()],
        tools: vec![Tool {
            name: "get_weather".into(),
            description: Some("Weather".into()),
            input_schema: json!({"type": "object"}),
            ..Tool::default()
        }],
        tool_choice: Some(ToolChoice::Tool {
            name: "get_weather".into(),
            disable_parallel_tool_use: false,
        }),
        ..ChatRequest::default()
    };
    let body = build(&req, &opts(false)).unwrap();
    assert!(!body.json_mode);
    assert_eq!(
        body.value,
        json!({
            "messages": [
                {"role": "user", "content": [{"text": "Weather?"}]},
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}], "status": "error"}}]},
            ],
            "system": [{"text": "Be terse."}, {"cachePoint": {"type": "default"}}],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather", "inputSchema": {"json": {"type": "object"}}}}],
                "toolChoice": {"tool": {"name": "get_weather"}},
            },
            "additionalModelRequestFields": {"top_k": 40},
        })
    );
}

#[test]
fn consecutive_turns_of_one_role_become_one_converse_message() {
    let req = ChatRequest {
        messages: vec![
            user("first"),
            user("second"),
            Message { role: Role::Assistant, content: vec![ContentBlock::text("ok")] },
            user("third"),
        ],
        ..ChatRequest::default()
    };
    let body = build(&req, &opts(false)).unwrap();
    assert_eq!(
        body.value["messages"],
        json!([
            {"role": "user", "content": [{"text": "first"}, {"text": "second"}]},
            {"role": "assistant", "content": [{"text": "ok"}]},
            {"role": "user", "content": [{"text": "third"}]},
        ])
    );
}

#[test]
fn images_travel_as_bytes_and_urls_are_refused() {
    let image = |source| Message {
        role: Role::User,
        content: vec![ContentBlock::Image { source, cache_control: None }],
    };
    let req = ChatRequest {
        messages: vec![image(ImageSource::Base64 {
            media_type: "image/png".into(),
            data: "iVBORw0KGgo=".into(),
        })],
        ..ChatRequest::default()
    };
    let body = build(&req, &opts(false)).unwrap();
    assert_eq!(
        body.value["messages"][0]["content"][0],
        json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}})
    );
    let req = ChatRequest {
        messages: vec![image(ImageSource::Url { url: "https://x/y.png".into() })],
        ..ChatRequest::default()
    };
    for drop in [false, true] {
        let err = build(&req, &opts(drop)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
        assert!(err.message.contains("not a URL"), "{}", err.message);
    }
}

#[test]
fn uncarried_parameters_are_refused_by_name_unless_dropped() {
    let Value::Object(extra) = json!({"seed": 7, "n": 1, "store": false, "logit_bias": {"1": 2},
                                      "thinking": {"type": "enabled", "budget_tokens": 1024}})
    else {
        unreachable!()
    };
    let req = ChatRequest {
        messages: vec![user("hi")],
        extra,
        tool_choice: Some(ToolChoice::None),
        tools: vec![Tool { name: "t".into(), input_schema: json!({}), ..Tool::default() }],
        dialect: Dialect::OpenAi,
        ..ChatRequest::default()
    };
    let err = build(&req, &opts(false)).unwrap_err();
    for name in ["`seed`", "`logit_bias`", "`tool_choice`", "drop_params: true"] {
        assert!(err.message.contains(name), "{name}: {}", err.message);
    }
    assert!(!err.message.contains("`n`") && !err.message.contains("`store`"));
    let body = build(&req, &opts(true)).unwrap();
    assert_eq!(
        body.value["additionalModelRequestFields"],
        json!({"thinking": {"type": "enabled", "budget_tokens": 1024}})
    );
    assert!(body.value["toolConfig"].get("toolChoice").is_none());
}

#[test]
fn response_format_is_a_forced_tool_whose_input_is_the_answer() {
    let req = ChatRequest {
        messages: vec![user("colors")],
        response_format: Some(ResponseFormat::JsonObject),
        ..ChatRequest::default()
    };
    let body = build(&req, &opts(false)).unwrap();
    assert!(body.json_mode);
    assert_eq!(body.value["toolConfig"]["toolChoice"], json!({"tool": {"name": JSON_TOOL}}));
    let answer = br#"{"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t", "name": "json_tool_call", "input": {"a": 1}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}}"#;
    let r = parse(answer, true, "msg".into(), "m").unwrap();
    assert_eq!(r.content, vec![ContentBlock::text(r#"{"a":1}"#)]);
    assert_eq!(r.stop_reason, Some(StopReason::EndTurn));
}

#[test]
fn an_answer_maps_blocks_stop_reasons_and_usage_with_cache_counts() {
    let answer = br#"{"output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
        {"text": "Checking."},
        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]}},
        "stopReason": "tool_use", "metrics": {"latencyMs": 12},
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 1515,
                  "cacheReadInputTokens": 1000, "cacheWriteInputTokens": 500,
                  "cacheDetails": [{"ttl": "1h", "inputTokens": 200}, {"ttl": "5m", "inputTokens": 300}]}}"#;
    let r = parse(answer, false, "msg_bdrk_1".into(), "us.meta.llama").unwrap();
    assert_eq!(r.id, "msg_bdrk_1");
    assert_eq!(r.model, "us.meta.llama");
    assert_eq!(r.content.len(), 3);
    assert_eq!(
        r.content[0],
        ContentBlock::Thinking { thinking: "hmm".into(), signature: Some("sig".into()) }
    );
    assert_eq!(r.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 10,
            output_tokens: 5,
            cache_read_input_tokens: 1000,
            cache_creation_input_tokens: 500,
            cache_creation_1h_input_tokens: 200,
        }
    );
    for (wire, canonical) in [
        ("end_turn", Some(StopReason::EndTurn)),
        ("max_tokens", Some(StopReason::MaxTokens)),
        ("stop_sequence", Some(StopReason::StopSequence)),
        ("guardrail_intervened", Some(StopReason::ContentFilter)),
        ("content_filtered", Some(StopReason::ContentFilter)),
        ("model_context_window_exceeded", Some(StopReason::ModelContextWindowExceeded)),
        ("malformed_tool_use", None),
    ] {
        assert_eq!(stop_reason(Some(wire)), canonical, "{wire}");
    }
    let err = parse(b"<html>", false, "m".into(), "m").unwrap_err();
    assert_eq!(err.kind, ErrorKind::UpstreamUnavailable);
}
