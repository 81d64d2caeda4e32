//! Canonical [`ChatRequest`] → OpenAI chat completions JSON body.
//!
//! An OpenAI-dialect request is re-encoded from the canonical request with only `model`
//! replaced: its unknown fields (`extra`) are forwarded verbatim, so what the client sent
//! reaches the upstream (see the README for the few normalisations re-encoding implies). An
//! Anthropic-dialect request is translated: system, text, images, tools, tool_use /
//! tool_result ↔ tool_calls / `tool` messages, stop sequences, max_tokens; Anthropic-only
//! fields are mapped or refused by name (LiteLLM's `drop_params` drops them instead).
//! Never reads or logs message content beyond reshaping it.

use serde_json::{Map, Value, json};

use crate::canonical::{
    ChatRequest, ContentBlock, Dialect, ImageSource, Message, ResponseFormat, Role, Tool,
    ToolChoice,
};
use crate::classify::{ErrorKind, UpstreamError};
use crate::config::OpenAiFlavor;

/// Fields this builder writes itself; an OpenAI-dialect extra with one of these names is not
/// forwarded (it would duplicate or contradict a key).
const OWN_FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "response_format",
];

pub(super) struct Options<'a> {
    /// The upstream model id.
    pub model: &'a str,
    pub flavor: OpenAiFlavor,
    pub stream: bool,
    /// `max_completion_tokens` for OpenAI's own API (its reasoning models refuse
    /// `max_tokens`), `max_tokens` for compatible servers, which all take it.
    pub max_tokens_field: &'static str,
    pub drop_params: bool,
    /// The deployment, as errors name it.
    pub who: &'a str,
}

/// The serialized body.
pub(super) fn build(req: &ChatRequest, opts: &Options<'_>) -> Result<Vec<u8>, UpstreamError> {
    let mut refused: Vec<String> = Vec::new();
    let anthropic = req.dialect == Dialect::Anthropic;
    let mut body = Map::new();
    body.insert("model".into(), Value::from(opts.model));
    body.insert("messages".into(), Value::Array(messages(req, &mut refused)));
    if let Some(max) = req.max_tokens {
        body.insert(opts.max_tokens_field.into(), Value::from(max));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), Value::from(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), Value::from(p));
    }
    if let Some(k) = req.top_k {
        if anthropic && opts.flavor == OpenAiFlavor::OpenAi {
            refused.push("`top_k` (OpenAI has no top-k sampling)".into());
        } else {
            body.insert("top_k".into(), Value::from(k));
        }
    }
    if !req.stop_sequences.is_empty() {
        body.insert("stop".into(), json!(req.stop_sequences));
    }
    if opts.stream {
        body.insert("stream".into(), Value::Bool(true));
        // Usage is always asked for, so it is known whatever the client wants to see.
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    let tools = tools(&req.tools, anthropic, &mut refused);
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = &req.tool_choice {
            let (value, no_parallel) = tool_choice(choice);
            body.insert("tool_choice".into(), value);
            if no_parallel {
                body.insert("parallel_tool_calls".into(), Value::Bool(false));
            }
        }
    }
    if let Some(user) = &req.user {
        body.insert("user".into(), Value::from(user.as_str()));
    }
    if let Some(format) = &req.response_format {
        body.insert("response_format".into(), response_format(format));
    }
    match req.dialect {
        Dialect::OpenAi => {
            for (key, value) in &req.extra {
                if OWN_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                // The canonical answer holds one choice: more would be lost silently.
                if key == "n" && !(value.is_null() || value == &json!(1)) {
                    refused.push("`n` (Switchyard returns one choice)".into());
                    continue;
                }
                body.insert(key.clone(), value.clone());
            }
        }
        Dialect::Anthropic => anthropic_extras(req, opts, &mut body, &mut refused),
    }
    if !refused.is_empty() && !opts.drop_params {
        return Err(refuse(&refused, opts.who));
    }
    if !refused.is_empty() {
        tracing::debug!(?refused, "dropped parameters an OpenAI-compatible upstream cannot honour");
    }
    serde_json::to_vec(&Value::Object(body)).map_err(|e| {
        UpstreamError::new(ErrorKind::Internal, format!("the request body cannot be encoded: {e}"))
    })
}

/// Anthropic Messages fields: mapped to their OpenAI equivalent, ignored when harmless, or
/// refused by name.
fn anthropic_extras(
    req: &ChatRequest,
    opts: &Options<'_>,
    body: &mut Map<String, Value>,
    refused: &mut Vec<String>,
) {
    for (key, value) in &req.extra {
        match key.as_str() {
            "thinking" => {
                let kind = value.get("type").and_then(Value::as_str);
                if kind == Some("disabled") || opts.flavor != OpenAiFlavor::OpenAi {
                    // A local model's reasoning is its own (Ollama and vLLM refuse
                    // `reasoning_effort` for models that do not reason).
                    continue;
                }
                let budget = value.get("budget_tokens").and_then(Value::as_u64).unwrap_or(2048);
                let effort = match budget {
                    0..=1024 => "low",
                    1025..=4096 => "medium",
                    _ => "high",
                };
                body.insert("reasoning_effort".into(), Value::from(effort));
            }
            "service_tier" if matches!(value.as_str(), Some("auto" | "standard_only")) => {}
            // Server-side context editing: without it the conversation is sent whole, which
            // changes nothing but its length (Claude Code sends it on every request).
            "context_management" => {}
            "output_config" => {
                for (k, v) in value.as_object().into_iter().flatten() {
                    match (k.as_str(), v.as_str()) {
                        ("effort", Some(effort)) => {
                            if opts.flavor == OpenAiFlavor::OpenAi {
                                let effort = if effort == "max" { "high" } else { effort };
                                body.insert("reasoning_effort".into(), Value::from(effort));
                            }
                        }
                        _ => refused.push(format!("`output_config.{k}`")),
                    }
                }
            }
            // Our own keys, never in extra from the Anthropic surface, but harmless.
            "metadata" | "model" | "stream" => {}
            other => refused.push(format!("`{other}` (an Anthropic-only parameter)")),
        }
    }
}

fn messages(req: &ChatRequest, refused: &mut Vec<String>) -> Vec<Value> {
    let mut out = Vec::with_capacity(req.system.len() + req.messages.len());
    for block in &req.system {
        match block {
            ContentBlock::Text { text, .. } => out.push(json!({"role": "system", "content": text})),
            ContentBlock::Other(fields) => match fields.get("text").and_then(Value::as_str) {
                Some(text) => out.push(json!({"role": "system", "content": text})),
                None => refused.push("a non-text `system` block".into()),
            },
            _ => refused.push("a non-text `system` block".into()),
        }
    }
    for (i, message) in req.messages.iter().enumerate() {
        match message.role {
            Role::User => user(message, i, &mut out, refused),
            Role::Assistant => out.push(assistant(message, i, refused)),
        }
    }
    out
}

/// A user message: its tool results become `tool` messages (first, as OpenAI requires them
/// right after the assistant's tool calls), the rest one user message.
fn user(message: &Message, i: usize, out: &mut Vec<Value>, refused: &mut Vec<String>) {
    let mut rest = Vec::new();
    let mut result_images = Vec::new();
    for (j, block) in message.content.iter().enumerate() {
        match block {
            ContentBlock::ToolResult { tool_use_id, content, .. } => {
                let mut texts = Vec::new();
                for inner in content {
                    match inner {
                        ContentBlock::Text { text, .. } => texts.push(text.as_str()),
                        // OpenAI `tool` messages carry text only: images follow as user content.
                        ContentBlock::Image { .. } => result_images.push(inner),
                        _ => refused.push(format!(
                            "`messages[{i}].content[{j}]` (a tool result block OpenAI cannot carry)"
                        )),
                    }
                }
                out.push(json!({
                    "role": "tool",
                    "tool_call_id": tool_use_id,
                    "content": texts.concat(),
                }));
            }
            _ => rest.push((j, block)),
        }
    }
    let mut parts = Vec::with_capacity(rest.len() + result_images.len());
    for block in result_images {
        if let Some(part) = part(block) {
            parts.push(part);
        }
    }
    for (j, block) in rest {
        match part(block) {
            Some(p) => parts.push(p),
            None => refused.push(format!(
                "`messages[{i}].content[{j}]` (a `{}` block, which OpenAI cannot take)",
                block_type(block)
            )),
        }
    }
    if parts.is_empty() {
        return;
    }
    let content = match parts.as_slice() {
        [only] if only["type"] == "text" => only["text"].clone(),
        _ => Value::Array(parts),
    };
    out.push(json!({"role": "user", "content": content}));
}

/// An assistant message: its text, and its tool uses as `tool_calls`. Thinking is dropped
/// (an OpenAI-compatible model cannot take it back).
fn assistant(message: &Message, i: usize, refused: &mut Vec<String>) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in message.content.iter().enumerate() {
        match block {
            ContentBlock::Text { text: t, .. } => text.push_str(t),
            ContentBlock::ToolUse { id, name, input, .. } => calls.push(json!({
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": input.to_string()},
            })),
            ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => {}
            other => refused.push(format!(
                "`messages[{i}].content[{j}]` (a `{}` block, which OpenAI cannot take)",
                block_type(other)
            )),
        }
    }
    let mut out = json!({"role": "assistant"});
    if calls.is_empty() {
        out["content"] = Value::String(text);
    } else {
        out["content"] = if text.is_empty() { Value::Null } else { Value::String(text) };
        out["tool_calls"] = Value::Array(calls);
    }
    out
}

/// A user content part, or `None` for a block OpenAI has no part for.
fn part(block: &ContentBlock) -> Option<Value> {
    match block {
        ContentBlock::Text { text, .. } => Some(json!({"type": "text", "text": text})),
        ContentBlock::Image { source, .. } => {
            let url = match source {
                ImageSource::Base64 { media_type, data } => {
                    format!("data:{media_type};base64,{data}")
                }
                ImageSource::Url { url } => url.clone(),
            };
            Some(json!({"type": "image_url", "image_url": {"url": url}}))
        }
        _ => None,
    }
}

fn block_type(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Other(fields) => {
            fields.get("type").and_then(Value::as_str).unwrap_or("unknown").to_owned()
        }
        ContentBlock::Text { .. } => "text".into(),
        ContentBlock::Image { .. } => "image".into(),
        ContentBlock::ToolUse { .. } => "tool_use".into(),
        ContentBlock::ToolResult { .. } => "tool_result".into(),
        ContentBlock::Thinking { .. } => "thinking".into(),
        ContentBlock::RedactedThinking { .. } => "redacted_thinking".into(),
    }
}

fn tools(tools: &[Tool], anthropic: bool, refused: &mut Vec<String>) -> Vec<Value> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        if tool.input_schema.is_null() {
            let kind = tool.extra.get("type").and_then(Value::as_str).unwrap_or("server tool");
            refused.push(format!("`tools[{i}]` (Anthropic's `{kind}` tool)"));
            continue;
        }
        let mut function = json!({"name": tool.name, "parameters": tool.input_schema});
        if let Some(d) = &tool.description {
            function["description"] = Value::from(d.as_str());
        }
        if anthropic {
            for (key, value) in &tool.extra {
                match key.as_str() {
                    "type" if value == "custom" => {}
                    // Tool search and streaming hints: the tool is simply sent whole.
                    "defer_loading" | "eager_input_streaming" => {}
                    "strict" => function["strict"] = value.clone(),
                    other => refused.push(format!("`tools[{i}].{other}`")),
                }
            }
        }
        out.push(json!({"type": "function", "function": function}));
    }
    out
}

/// OpenAI's `tool_choice`, and whether parallel calls are off.
fn tool_choice(choice: &ToolChoice) -> (Value, bool) {
    match choice {
        ToolChoice::Auto { disable_parallel_tool_use } => {
            (Value::from("auto"), *disable_parallel_tool_use)
        }
        ToolChoice::Any { disable_parallel_tool_use } => {
            (Value::from("required"), *disable_parallel_tool_use)
        }
        ToolChoice::Tool { name, disable_parallel_tool_use } => {
            (json!({"type": "function", "function": {"name": name}}), *disable_parallel_tool_use)
        }
        ToolChoice::None => (Value::from("none"), false),
    }
}

fn response_format(format: &ResponseFormat) -> Value {
    match format {
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema { name, description, schema, strict } => {
            let mut spec = json!({"name": name, "schema": schema, "strict": strict});
            if let Some(d) = description {
                spec["description"] = Value::from(d.as_str());
            }
            json!({"type": "json_schema", "json_schema": spec})
        }
    }
}

fn refuse(refused: &[String], who: &str) -> UpstreamError {
    let plural = if refused.len() == 1 { "parameter" } else { "parameters" };
    let mut error = UpstreamError::new(
        ErrorKind::InvalidRequest,
        format!(
            "{who} cannot honour the {plural} {}. Remove them from the request, or set \
             `drop_params: true` (in litellm_settings, or in this deployment's litellm_params) \
             to drop such parameters",
            refused.join(", ")
        ),
    );
    error.status = Some(400);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(flavor: OpenAiFlavor, stream: bool) -> Options<'static> {
        Options {
            model: "m",
            flavor,
            stream,
            max_tokens_field: "max_tokens",
            drop_params: false,
            who: "the deployment of `x`",
        }
    }

    fn body(req: &ChatRequest, o: &Options<'_>) -> Value {
        serde_json::from_slice(&build(req, o).unwrap()).unwrap()
    }

    #[test]
    fn anthropic_tool_round_trip_becomes_tool_calls_and_tool_messages() {
        let req = ChatRequest {
            dialect: Dialect::Anthropic,
            system: vec![ContentBlock::text("Be brief.")],
            max_tokens: Some(100),
            messages: vec![
                Message { role: Role::User, content: vec![ContentBlock::text("Weather?")] },
                Message {
                    role: Role::Assistant,
                    content: vec![
                        ContentBlock::Thinking { thinking: "hm".into(), signature: None },
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
                            cache_control: None,
                        },
                        ContentBlock::text("Thanks"),
                    ],
                },
            ],
            ..ChatRequest::default()
        };
        let b = body(&req, &opts(OpenAiFlavor::Ollama, false));
        assert_eq!(
            b["messages"],
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_1", "type": "function",
                  "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                {"role": "user", "content": "Thanks"}
            ])
        );
        assert_eq!(b["max_tokens"], 100);
    }

    #[test]
    fn anthropic_only_fields_are_refused_by_name_unless_dropped() {
        let Value::Object(extra) =
            json!({"mcp_servers": [], "container": "c", "context_management": {}})
        else {
            unreachable!()
        };
        let req = ChatRequest {
            dialect: Dialect::Anthropic,
            extra,
            top_k: Some(5),
            messages: vec![Message { role: Role::User, content: vec![ContentBlock::text("x")] }],
            ..ChatRequest::default()
        };
        let err = build(&req, &opts(OpenAiFlavor::OpenAi, false)).unwrap_err();
        assert!(!err.message.contains("context_management"), "ignored, not refused");
        for name in ["`mcp_servers`", "`container`", "`top_k`", "drop_params: true"] {
            assert!(err.message.contains(name), "{name}: {}", err.message);
        }
        let dropped = Options { drop_params: true, ..opts(OpenAiFlavor::OpenAi, false) };
        let b = body(&req, &dropped);
        assert!(b.get("mcp_servers").is_none() && b.get("top_k").is_none());
    }

    #[test]
    fn thinking_maps_to_reasoning_effort_for_openai_only() {
        let Value::Object(extra) = json!({"thinking": {"type": "enabled", "budget_tokens": 8000}})
        else {
            unreachable!()
        };
        let req = ChatRequest { dialect: Dialect::Anthropic, extra, ..ChatRequest::default() };
        assert_eq!(body(&req, &opts(OpenAiFlavor::OpenAi, true))["reasoning_effort"], "high");
        let b = body(&req, &opts(OpenAiFlavor::Ollama, true));
        assert!(b.get("reasoning_effort").is_none());
        assert_eq!(b["stream_options"], json!({"include_usage": true}));
    }
}
