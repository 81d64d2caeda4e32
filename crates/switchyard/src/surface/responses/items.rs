//! Responses items ⇄ canonical content: `input` items to messages, answer blocks to
//! `output` items.
//!
//! Items of one role in a row join one message (a `reasoning` item, an assistant `message`
//! and its `function_call`s are one assistant turn), so the canonical conversation
//! alternates as Anthropic and Bedrock require.

use serde_json::{Value, json};

use super::request::{Echo, invalid};
use crate::canonical::{ContentBlock, Message, Role};
use crate::classify::ApiError;
use crate::surface::openai::image_source;

/// `input` (a string or a list of items) as system blocks and messages.
pub(super) fn input_messages(input: Value) -> Result<(Vec<ContentBlock>, Vec<Message>), ApiError> {
    let items = match input {
        Value::String(text) => {
            return Ok((
                Vec::new(),
                vec![Message { role: Role::User, content: vec![ContentBlock::text(text)] }],
            ));
        }
        Value::Array(items) => items,
        _ => return Err(invalid("input", "must be a string or a list of input items")),
    };
    let mut system = Vec::new();
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = |field: &str| format!("input[{i}].{field}");
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
        match kind {
            "message" => {
                let role = item.get("role").and_then(Value::as_str).unwrap_or_default();
                let content = content_blocks(item.get("content"), i)?;
                match role {
                    "system" | "developer" => system.extend(content),
                    "user" => append(&mut messages, Role::User, content),
                    "assistant" => append(&mut messages, Role::Assistant, content),
                    _ => {
                        return Err(invalid(
                            &at("role"),
                            "must be `user`, `assistant`, `system` or `developer`",
                        ));
                    }
                }
            }
            "function_call" => {
                let call_id = required_str(&item, "call_id", i)?;
                let name = required_str(&item, "name", i)?;
                let input = arguments(item.get("arguments"), &at("arguments"))?;
                let block = ContentBlock::ToolUse { id: call_id, name, input, cache_control: None };
                append(&mut messages, Role::Assistant, vec![block]);
            }
            "function_call_output" => {
                let tool_use_id = required_str(&item, "call_id", i)?;
                let content = match item.get("output") {
                    Some(Value::String(text)) if text.is_empty() => Vec::new(),
                    Some(Value::String(text)) => vec![ContentBlock::text(text.as_str())],
                    Some(parts @ Value::Array(_)) => content_blocks(Some(parts), i)?,
                    _ => return Err(invalid(&at("output"), "must be a string or a list of parts")),
                };
                let block = ContentBlock::ToolResult {
                    tool_use_id,
                    content,
                    is_error: false,
                    cache_control: None,
                };
                append(&mut messages, Role::User, vec![block]);
            }
            "reasoning" => {
                // Only reasoning this gateway produced can be replayed: thinking needs its
                // signature, carried as `encrypted_content`. Anything else is dropped, as
                // the Responses API itself tolerates.
                if let Some(block) = reasoning_block(&item) {
                    append(&mut messages, Role::Assistant, vec![block]);
                }
            }
            other => {
                return Err(invalid(
                    &at("type"),
                    format_args!(
                        "input items of type `{other}` are not supported (use `message`, \
                         `function_call`, `function_call_output` or `reasoning`)"
                    ),
                ));
            }
        }
    }
    Ok((system, messages))
}

/// `previous` (a stored conversation) followed by `next`, joined at the seam.
pub fn prepend(previous: Vec<Message>, next: Vec<Message>) -> Vec<Message> {
    let mut out = previous;
    for message in next {
        append(&mut out, message.role, message.content);
    }
    out
}

fn append(messages: &mut Vec<Message>, role: Role, content: Vec<ContentBlock>) {
    if content.is_empty() {
        return;
    }
    match messages.last_mut() {
        Some(last) if last.role == role => last.content.extend(content),
        _ => messages.push(Message { role, content }),
    }
}

fn required_str(item: &Value, field: &str, i: usize) -> Result<String, ApiError> {
    match item.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(invalid(&format!("input[{i}].{field}"), "missing required field")),
    }
}

fn arguments(raw: Option<&Value>, path: &str) -> Result<Value, ApiError> {
    match raw {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(json!({})),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(invalid(path, "must encode a JSON object")),
            Err(e) => Err(invalid(path, format_args!("not valid JSON: {e}"))),
        },
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(_) => Err(invalid(path, "must be a string of JSON")),
    }
}

fn reasoning_block(item: &Value) -> Option<ContentBlock> {
    let encrypted = item.get("encrypted_content").and_then(Value::as_str).filter(|s| !s.is_empty());
    let text: String = item
        .get("summary")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n\n");
    match (encrypted, text.is_empty()) {
        (Some(data), true) => Some(ContentBlock::RedactedThinking { data: data.to_owned() }),
        (Some(signature), false) => {
            Some(ContentBlock::Thinking { thinking: text, signature: Some(signature.to_owned()) })
        }
        (None, _) => None,
    }
}

fn content_blocks(content: Option<&Value>, i: usize) -> Result<Vec<ContentBlock>, ApiError> {
    let parts = match content {
        Some(Value::String(text)) if text.is_empty() => return Ok(Vec::new()),
        Some(Value::String(text)) => return Ok(vec![ContentBlock::text(text.as_str())]),
        Some(Value::Array(parts)) => parts,
        None | Some(Value::Null) => {
            return Err(invalid(&format!("input[{i}].content"), "missing required field"));
        }
        Some(_) => {
            return Err(invalid(&format!("input[{i}].content"), "must be a string or a list"));
        }
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = |field: &str| format!("input[{i}].content[{j}].{field}");
        let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "input_text" | "output_text" | "text" => {
                let text = part.get("text").and_then(Value::as_str).unwrap_or_default();
                if !text.is_empty() {
                    blocks.push(ContentBlock::text(text));
                }
            }
            "refusal" => {
                let text = part.get("refusal").and_then(Value::as_str).unwrap_or_default();
                if !text.is_empty() {
                    blocks.push(ContentBlock::text(text));
                }
            }
            "input_image" => {
                let Some(url) = part.get("image_url").and_then(Value::as_str) else {
                    return Err(invalid(
                        &at("image_url"),
                        "an image needs `image_url` (an http(s) URL or a base64 data URL); \
                         `file_id` refers to OpenAI's file storage, which Switchyard does not have",
                    ));
                };
                let source =
                    image_source(url.to_owned()).map_err(|why| invalid(&at("image_url"), why))?;
                blocks.push(ContentBlock::Image { source, cache_control: None });
            }
            other => {
                return Err(invalid(
                    &at("type"),
                    format_args!(
                        "content parts of type `{other}` are not supported (use `input_text`, \
                         `input_image` or `output_text`)"
                    ),
                ));
            }
        }
    }
    Ok(blocks)
}

/// Ids for a response's output items, all derived from the response id so a stream and the
/// Response it ends with name every item the same.
#[derive(Debug, Clone)]
pub struct OutputIds {
    stem: String,
}

impl OutputIds {
    pub fn for_response(response_id: &str) -> Self {
        Self { stem: response_id.strip_prefix("resp_").unwrap_or(response_id).to_owned() }
    }

    pub fn item(&self, kind: &str, index: usize) -> String {
        format!("{kind}_{}_{index}", self.stem)
    }
}

/// One answer block as an output item (`None` for blocks with no Responses counterpart).
pub(super) fn output_item(block: &ContentBlock, id: String, status: &str) -> Option<Value> {
    Some(match block {
        ContentBlock::Text { text, .. } => json!({
            "type": "message",
            "id": id,
            "status": status,
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }),
        ContentBlock::ToolUse { id: call_id, name, input, .. } => json!({
            "type": "function_call",
            "id": id,
            "call_id": call_id,
            "name": name,
            "arguments": input.to_string(),
            "status": status,
        }),
        ContentBlock::Thinking { thinking, signature } => json!({
            "type": "reasoning",
            "id": id,
            "summary": [{"type": "summary_text", "text": thinking}],
            "encrypted_content": signature,
        }),
        ContentBlock::RedactedThinking { data } => json!({
            "type": "reasoning",
            "id": id,
            "summary": [],
            "encrypted_content": data,
        }),
        // An item the canonical types do not model (a hosted tool's call from an upstream
        // serving the Responses API), as that upstream sent it.
        ContentBlock::Other(item) if item.contains_key("type") => Value::Object(item.clone()),
        _ => return None,
    })
}

/// The prefix of an output item's id.
pub(super) fn id_kind(block: &ContentBlock) -> &'static str {
    match block {
        ContentBlock::ToolUse { .. } => "fc",
        ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => "rs",
        _ => "msg",
    }
}

/// An answer's content as `output` items, one per block, in order.
pub fn output_items(content: &[ContentBlock], ids: &OutputIds, echo: &Echo) -> Vec<Value> {
    content
        .iter()
        .enumerate()
        .filter_map(|(index, block)| {
            let mut item = output_item(block, ids.item(id_kind(block), index), "completed")?;
            with_namespace(&mut item, echo);
            Some(item)
        })
        .collect()
}

/// Names the namespace of a call to a function declared inside a `namespace` tool.
pub(super) fn with_namespace(item: &mut Value, echo: &Echo) {
    if item["type"] == "function_call"
        && let Some(ns) = item["name"].as_str().and_then(|name| echo.namespace_of(name))
    {
        item["namespace"] = Value::from(ns);
    }
}
