//! Decoding tests: a representative Anthropic request to its exact canonical form, the
//! shape Claude Code sends, and every malformed input as a 400 naming its field.

use axum::http::HeaderValue;
use serde_json::json;

use super::*;
use crate::canonical::{ImageSource, Role, ToolChoice};
use crate::classify::ErrorKind;

fn decode(v: Value) -> Result<ChatRequest, ApiError> {
    decode_messages_request(v.to_string().as_bytes(), &HeaderMap::new())
}

fn object(v: Value) -> Map<String, Value> {
    let Value::Object(map) = v else { unreachable!("not an object: {v}") };
    map
}

/// The error for `body`, asserting it is a 400 whose message starts with `param`.
fn rejected(body: &[u8], param: Option<&str>) -> String {
    let err = decode_messages_request(body, &HeaderMap::new()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidRequest);
    assert_eq!(err.kind.http_status(), 400);
    assert_eq!(err.param.as_deref(), param, "{}", err.message);
    if let Some(p) = param {
        assert!(err.message.starts_with(&format!("{p}: ")), "{}", err.message);
    }
    err.message
}

#[test]
fn representative_request_decodes_to_the_exact_canonical_request() {
    let body = json!({
        "model": "balanced",
        "max_tokens": 1024,
        "system": [
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Long context.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in this picture's city?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"},
                 "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Paris, then the tool.", "signature": "EqQBCkYIBxgC"},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C", "is_error": false,
                 "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Thanks"}
            ]}
        ],
        "tools": [
            {"name": "get_weather", "description": "Weather by city",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
             "cache_control": {"type": "ephemeral"}}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "stop_sequences": ["END"],
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "stream": false,
        "metadata": {"user_id": "alice"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "service_tier": "auto",
        "fallbacks": ["cheap"],
        "mock_testing_fallbacks": true
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        BETA_HEADER,
        HeaderValue::from_static("prompt-caching-2024-07-31, extended-cache-ttl-2025-04-11"),
    );
    headers.append(
        BETA_HEADER,
        HeaderValue::from_static("extended-cache-ttl-2025-04-11,,files-api-2025-04-14"),
    );
    let req = decode_messages_request(body.to_string().as_bytes(), &headers).unwrap();

    let ephemeral = Some(json!({"type": "ephemeral"}));
    let expected = ChatRequest {
        model: "balanced".into(),
        system: vec![
            ContentBlock::text("You are terse."),
            ContentBlock::Text {
                text: "Long context.".into(),
                cache_control: Some(json!({"type": "ephemeral", "ttl": "1h"})),
            },
        ],
        messages: vec![
            Message {
                role: Role::User,
                content: vec![
                    ContentBlock::text("Weather in this picture's city?"),
                    ContentBlock::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0K".into(),
                        },
                        cache_control: None,
                    },
                    ContentBlock::Image {
                        source: ImageSource::Url { url: "https://example.com/cat.jpg".into() },
                        cache_control: ephemeral.clone(),
                    },
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    ContentBlock::Thinking {
                        thinking: "Paris, then the tool.".into(),
                        signature: Some("EqQBCkYIBxgC".into()),
                    },
                    ContentBlock::RedactedThinking { data: "EmwKAhgBEgy3".into() },
                    ContentBlock::ToolUse {
                        id: "toolu_1".into(),
                        name: "get_weather".into(),
                        input: json!({"city": "Paris"}),
                        cache_control: None,
                    },
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    ContentBlock::ToolResult {
                        tool_use_id: "toolu_1".into(),
                        content: vec![ContentBlock::text("18C")],
                        is_error: false,
                        cache_control: ephemeral.clone(),
                    },
                    ContentBlock::text("Thanks"),
                ],
            },
        ],
        max_tokens: Some(1024),
        temperature: Some(0.5),
        top_p: Some(0.9),
        top_k: Some(40),
        stop_sequences: vec!["END".into()],
        tools: vec![Tool {
            name: "get_weather".into(),
            description: Some("Weather by city".into()),
            input_schema: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
            cache_control: ephemeral,
            extra: Map::new(),
        }],
        tool_choice: Some(ToolChoice::Auto { disable_parallel_tool_use: true }),
        stream: false,
        stream_usage: false,
        user: Some("alice".into()),
        response_format: None,
        betas: vec![
            "prompt-caching-2024-07-31".into(),
            "extended-cache-ttl-2025-04-11".into(),
            "files-api-2025-04-14".into(),
        ],
        extra: object(json!({
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "service_tier": "auto"
        })),
        dialect: Dialect::Anthropic,
        gateway: object(json!({"fallbacks": ["cheap"], "mock_testing_fallbacks": true})),
    };
    assert_eq!(req, expected);
}

#[test]
fn claude_code_shaped_request_keeps_everything_it_sends() {
    // Trimmed from what Claude Code 2.1 sends to `/v1/messages?beta=true`.
    let req = decode(json!({
        "model": "claude-sonnet-4-6",
        "max_tokens": 32000,
        "stream": true,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
            {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Say: WORKS", "cache_control": {"type": "ephemeral"}}
        ]}],
        "tools": [
            {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}},
            {"name": "DeferredToolPlaceholder", "description": "d", "input_schema": {"type": "object"},
             "defer_loading": true},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}
        ],
        "metadata": {"user_id": "{\"device_id\":\"84da\",\"session_id\":\"4139\"}"},
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"}
    }))
    .unwrap();
    assert!(req.stream && req.stream_usage);
    assert_eq!(req.user.as_deref(), Some("{\"device_id\":\"84da\",\"session_id\":\"4139\"}"));
    assert_eq!(req.system.len(), 2);
    assert_eq!(req.tools[1].extra, object(json!({"defer_loading": true})));
    let server_tool = &req.tools[2];
    assert_eq!(server_tool.name, "web_search");
    assert_eq!(server_tool.input_schema, Value::Null);
    assert_eq!(server_tool.extra, object(json!({"type": "web_search_20250305", "max_uses": 8})));
    // A canonical tool serializes back to exactly what the client sent.
    assert_eq!(
        serde_json::to_value(&req.tools).unwrap(),
        json!([
            {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}},
            {"name": "DeferredToolPlaceholder", "description": "d", "input_schema": {"type": "object"},
             "defer_loading": true},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}
        ])
    );
    assert_eq!(
        req.extra.keys().collect::<Vec<_>>(),
        ["context_management", "output_config", "thinking"]
    );
    assert!(req.gateway.is_empty());
}

/// What Claude Code 2.1.197 … 2.1.332 send with a tier alias as the model (`--model cheap`):
/// a `system` message inside `messages`, after the user turn. It joins the system prompt
/// after the top-level blocks, in order, keeping its cache_control; the turns stay as sent.
#[test]
fn system_messages_inside_messages_fold_into_the_system_prompt_in_order() {
    let req = decode(json!({
        "model": "cheap", "max_tokens": 32000,
        "system": [{"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Say: WORKS"}]},
            {"role": "system", "content": "Available agent types for the Agent tool: ..."},
            {"role": "assistant", "content": "OK"},
            {"role": "system", "content": [{"type": "text", "text": "Second.", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": ""},
            {"role": "user", "content": "again"}
        ]
    }))
    .unwrap();
    assert_eq!(
        serde_json::to_value(&req.system).unwrap(),
        json!([
            {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Available agent types for the Agent tool: ..."},
            {"type": "text", "text": "Second.", "cache_control": {"type": "ephemeral"}}
        ])
    );
    let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
    assert_eq!(req.messages[2].content, vec![ContentBlock::text("again")]);
}

#[test]
fn string_system_and_content_and_non_anthropic_metadata() {
    let req = decode(json!({"model": "m", "max_tokens": 5, "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}],
        "metadata": {"user_id": null, "tags": ["x"]}, "litellm_metadata": {"team": "a"}}))
    .unwrap();
    assert_eq!(req.system, vec![ContentBlock::text("Be brief.")]);
    assert_eq!(req.messages[0].content, vec![ContentBlock::text("hi")]);
    assert!(req.messages[1].content.is_empty(), "an empty prefill is no blocks");
    assert_eq!(req.user, None);
    assert_eq!(
        req.gateway,
        object(json!({"metadata": {"tags": ["x"]}, "litellm_metadata": {"team": "a"}}))
    );
    assert!(req.extra.is_empty() && !req.stream);
}

#[test]
fn count_tokens_does_not_need_max_tokens_and_never_streams() {
    let body =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]});
    let req = decode_count_tokens_request(body.to_string().as_bytes(), &HeaderMap::new()).unwrap();
    assert_eq!(req.max_tokens, None);
    assert!(!req.stream);
    let msg = rejected(body.to_string().as_bytes(), Some("max_tokens"));
    assert_eq!(msg, "max_tokens: missing required field");
}

#[test]
fn invalid_json_and_non_objects_are_400s_without_param() {
    let msg = rejected(br#"{"model": "m", "messages": ["#, None);
    assert!(msg.starts_with("The request body is not valid JSON"), "{msg}");
    let msg = rejected(br#"{"model": "m", "max_tokens": 1, "messages": []} trailing"#, None);
    assert!(msg.starts_with("The request body is not valid JSON"), "{msg}");
    let msg = rejected(b"[1, 2]", None);
    assert!(msg.contains("must be a Messages request object"), "{msg}");
}

#[test]
fn missing_and_wrong_fields_are_named() {
    let base = r#""model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "x"}]"#;
    let cases: &[(&str, &str)] = &[
        (r#""system": 5"#, "system"),
        (
            r#""system": [{"type": "image", "source": {"type": "url", "url": "u"}}]"#,
            "system[0].type",
        ),
        (r#""system": [{"type": "text"}]"#, "system[0].text"),
        (r#""temperature": "hot""#, "temperature"),
        (r#""top_k": -1"#, "top_k"),
        (r#""stream": "yes""#, "stream"),
        (r#""stop_sequences": "END""#, "stop_sequences"),
        (r#""metadata": "alice""#, "metadata"),
        (r#""metadata": {"user_id": 7}"#, "metadata.user_id"),
        (r#""tools": {"name": "f"}"#, "tools"),
        (r#""tools": [{"name": "f"}]"#, "tools[0].input_schema"),
        (r#""tools": [{"name": "f", "input_schema": "{}"}]"#, "tools[0].input_schema"),
        (r#""tools": [{"input_schema": {}}]"#, "tools[0].name"),
        (r#""tools": [{"type": 1, "name": "f"}]"#, "tools[0].type"),
        (r#""tool_choice": {"type": "sometimes"}"#, "tool_choice.type"),
        (r#""tool_choice": {"type": "tool"}"#, "tool_choice.name"),
        (r#""tool_choice": "auto""#, "tool_choice"),
    ];
    for (field, param) in cases {
        let body = format!("{{{base}, {field}}}");
        rejected(body.as_bytes(), Some(param));
    }
}

#[test]
fn required_fields_are_named_as_the_api_requires_them() {
    let msg = rejected(
        br#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#,
        Some("max_tokens"),
    );
    assert_eq!(msg, "max_tokens: missing required field");
    rejected(
        br#"{"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}"#,
        Some("max_tokens"),
    );
    let msg = rejected(
        br#"{"model": "m", "max_tokens": "many", "messages": [{"role": "user", "content": "x"}]}"#,
        Some("max_tokens"),
    );
    assert!(msg.contains("expected u32"), "{msg}");
    rejected(
        br#"{"max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}"#,
        Some("model"),
    );
    rejected(
        br#"{"model": " ", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}"#,
        Some("model"),
    );
    rejected(br#"{"model": "m", "max_tokens": 1}"#, Some("messages"));
    rejected(br#"{"model": "m", "max_tokens": 1, "messages": []}"#, Some("messages"));
}

#[test]
fn message_problems_name_their_paths() {
    let cases: &[(&str, &str)] = &[
        (r#"[{"role": "system", "content": "x"}]"#, "messages"),
        (r#"[{"role": "tool", "content": "x"}]"#, "messages[0].role"),
        (r#"[{"content": "x"}]"#, "messages[0].role"),
        (
            r#"[{"role": "user", "content": "x"}, {"role": "system", "content": [{"type": "image", "source": {"type": "url", "url": "https://x"}}]}]"#,
            "messages[1].content[0].type",
        ),
        (r#"[{"role": "user"}]"#, "messages[0].content"),
        (
            r#"[{"role": "user", "content": "x"}, {"role": "assistant", "content": 5}]"#,
            "messages[1].content",
        ),
        (r#"[{"role": "user", "content": ["text"]}]"#, "messages[0].content[0]"),
        (
            r#"[{"role": "user", "content": [{"type": "text", "text": null}]}]"#,
            "messages[0].content[0].text",
        ),
    ];
    for (messages, param) in cases {
        let body = format!(r#"{{"model": "m", "max_tokens": 1, "messages": {messages}}}"#);
        rejected(body.as_bytes(), Some(param));
    }
    let body = br#"{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": 5}]}"#;
    assert_eq!(
        rejected(body, Some("messages[0].content")),
        "messages[0].content: invalid type: integer `5`, expected a string or an array of content blocks"
    );
}

#[test]
fn a_non_ascii_beta_header_is_a_400() {
    let mut headers = HeaderMap::new();
    headers.insert(BETA_HEADER, HeaderValue::from_bytes(b"caf\xe9").unwrap());
    let body =
        br#"{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}"#;
    let err = decode_messages_request(body, &headers).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("anthropic-beta"));
}

#[test]
fn a_number_is_forwarded_as_the_number_sent() {
    // Found by fuzzing (fuzz/ anthropic_request): a long decimal was read one unit off, so
    // the body sent upstream, read again, gave yet another number.
    let body = br#"{"model":"balanced","max_tokens":2048,"thinking":{"typet_tokens":102.522222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222},"messages":[{"role":"user","content":"S+ay: WORKS"}]}"#;
    let req = decode_messages_request(body, &HeaderMap::new()).unwrap();
    let sent = req.extra["thinking"]["typet_tokens"].clone();
    assert_eq!(sent.as_f64(), Some(102.522_222_222_222_23));
    let forwarded: Value = serde_json::from_str(&sent.to_string()).unwrap();
    assert_eq!(forwarded, sent, "the forwarded text reads back as another number");
}
