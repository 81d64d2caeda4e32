//! Decodes an Anthropic Messages request body (and the `anthropic-beta` header) into a
//! canonical [`ChatRequest`] in [`Dialect::Anthropic`].
//!
//! Every malformed input is a 400 whose message starts with the field path
//! (`messages[1].content[0].source.data`), as the Anthropic API names fields. Nothing the
//! gateway does not interpret is rejected or rewritten: unknown top-level fields go to
//! `extra`, unknown block types and tool fields are kept verbatim.

use axum::http::{HeaderMap, HeaderName};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::blocks;
use super::request_wire::{Object, StringOrBlocks, WireRequest, WireTool};
use crate::canonical::{ChatRequest, ContentBlock, Dialect, Message, Tool};
use crate::classify::ApiError;

/// The request header listing Anthropic beta flags, comma-separated.
pub const BETA_HEADER: HeaderName = HeaderName::from_static("anthropic-beta");
/// The header carrying an Anthropic API key (the gateway's, or the upstream's).
pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// Decode a `POST /v1/messages` body. `max_tokens` is required, as the Anthropic API
/// requires it. Errors are `invalid_request` (400) naming the field.
pub fn decode_messages_request(body: &[u8], headers: &HeaderMap) -> Result<ChatRequest, ApiError> {
    require_max_tokens(decode(body, headers)?)
}

fn require_max_tokens(chat: ChatRequest) -> Result<ChatRequest, ApiError> {
    match chat.max_tokens {
        None => Err(invalid("max_tokens", "missing required field")),
        Some(0) => Err(invalid("max_tokens", "must be at least 1")),
        Some(_) => Ok(chat),
    }
}

/// Decode a `POST /v1/messages/count_tokens` body: the same shape, `max_tokens` optional,
/// never streamed.
pub fn decode_count_tokens_request(
    body: &[u8],
    headers: &HeaderMap,
) -> Result<ChatRequest, ApiError> {
    let mut chat = decode(body, headers)?;
    chat.stream = false;
    Ok(chat)
}

/// Decode a Messages body whose model and streaming are decided elsewhere — Bedrock's
/// InvokeModel names the model in its path and streams by operation — replacing any `model`
/// or `stream` the body holds. `max_tokens` is required. Fields Bedrock adds
/// (`anthropic_version`, `anthropic_beta`) stay in `extra` for the caller. One pass over the
/// body, as for `/v1/messages`.
pub fn decode_messages_as(
    body: &[u8],
    headers: &HeaderMap,
    model: &str,
    stream: bool,
) -> Result<ChatRequest, ApiError> {
    let betas = betas(headers)?;
    let mut wire = decode_wire(body)?;
    wire.model = Some(model.to_owned());
    wire.stream = Some(stream);
    require_max_tokens(wire.into_canonical(betas)?)
}

fn decode(body: &[u8], headers: &HeaderMap) -> Result<ChatRequest, ApiError> {
    let betas = betas(headers)?;
    let wire = decode_wire(body)?;
    if wire.model.is_none() {
        return Err(invalid("model", "missing required field"));
    }
    wire.into_canonical(betas)
}

fn decode_wire(body: &[u8]) -> Result<WireRequest, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let wire: WireRequest =
        serde_path_to_error::deserialize(&mut de).map_err(|e| decode_error("", &e))?;
    de.end().map_err(|e| invalid_json(&e))?;
    Ok(wire)
}

/// Every `anthropic-beta` flag, in order, each once (the header may repeat).
fn betas(headers: &HeaderMap) -> Result<Vec<String>, ApiError> {
    let mut betas: Vec<String> = Vec::new();
    for value in headers.get_all(&BETA_HEADER) {
        let Ok(text) = value.to_str() else {
            return Err(invalid("anthropic-beta", "header must be visible ASCII"));
        };
        for beta in text.split(',').map(str::trim).filter(|b| !b.is_empty()) {
            if !betas.iter().any(|b| b == beta) {
                betas.push(beta.to_owned());
            }
        }
    }
    Ok(betas)
}

impl WireRequest {
    fn into_canonical(self, betas: Vec<String>) -> Result<ChatRequest, ApiError> {
        let model = self.model.unwrap_or_default();
        if model.trim().is_empty() {
            return Err(invalid("model", "must not be empty"));
        }
        if self.messages.is_empty() {
            return Err(invalid("messages", "must contain at least one message"));
        }
        let mut system = match self.system {
            None => Vec::new(),
            Some(content) => system_blocks(content, "system")?,
        };
        let mut messages = Vec::with_capacity(self.messages.len());
        for (i, message) in self.messages.into_iter().enumerate() {
            match message.role.conversation() {
                Some(role) => {
                    let content =
                        blocks::content(message.content, &format!("messages[{i}].content"))?;
                    messages.push(Message { role, content });
                }
                // Every provider gets a valid request: the Messages API (and Bedrock, and
                // Converse) take system text only at the top, an OpenAI-compatible server
                // gets it as the leading system message, as from the OpenAI surface.
                None => system
                    .extend(system_blocks(message.content, &format!("messages[{i}].content"))?),
            }
        }
        if messages.is_empty() {
            return Err(invalid(
                "messages",
                "must contain at least one `user` or `assistant` message (system messages \
                 become the system prompt)",
            ));
        }
        let mut tools = Vec::with_capacity(self.tools.as_ref().map_or(0, Vec::len));
        for (i, tool) in self.tools.into_iter().flatten().enumerate() {
            tools.push(convert_tool(tool, i)?);
        }
        let (extra, mut gateway) = split_gateway_params(self.extra);
        let user = match self.metadata {
            None => None,
            Some(metadata) => split_metadata(metadata, &mut gateway)?,
        };
        Ok(ChatRequest {
            model,
            system,
            messages,
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            stop_sequences: self.stop_sequences.unwrap_or_default(),
            tools,
            tool_choice: self.tool_choice,
            stream: self.stream.unwrap_or(false),
            // Anthropic streams always carry usage.
            stream_usage: self.stream.unwrap_or(false),
            user,
            response_format: None,
            betas,
            extra,
            dialect: Dialect::Anthropic,
            gateway,
        })
    }
}

/// The system prompt's blocks, from `system` or from a system-role message at `at`: a
/// string or text blocks (the API takes text only); an empty string adds nothing.
fn system_blocks(content: StringOrBlocks, at: &str) -> Result<Vec<ContentBlock>, ApiError> {
    let list = match content {
        StringOrBlocks::Text(text) if text.is_empty() => return Ok(Vec::new()),
        StringOrBlocks::Text(text) => return Ok(vec![ContentBlock::text(text)]),
        StringOrBlocks::Blocks(list) => list,
    };
    let mut system = Vec::with_capacity(list.len());
    for (i, object) in list.into_iter().enumerate() {
        let at = format!("{at}[{i}]");
        let block = blocks::block(object, &at)?;
        let is_text = match &block {
            ContentBlock::Text { .. } => true,
            ContentBlock::Other(fields) => fields.get("type") == Some(&Value::from("text")),
            _ => false,
        };
        if !is_text {
            return Err(invalid(&format!("{at}.type"), "system blocks must be `text` blocks"));
        }
        system.push(block);
    }
    Ok(system)
}

/// `metadata.user_id` is the canonical `user`. Any other key is not Anthropic's (the API
/// rejects it), so it is a LiteLLM-style gateway annotation and never goes upstream.
fn split_metadata(
    mut metadata: Object,
    gateway: &mut Map<String, Value>,
) -> Result<Option<String>, ApiError> {
    let user = match metadata.remove("user_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(user)) => Some(user),
        Some(_) => return Err(invalid("metadata.user_id", "must be a string")),
    };
    if !metadata.is_empty() {
        gateway.insert("metadata".to_owned(), Value::Object(metadata));
    }
    Ok(user)
}

/// Tool fields the canonical [`Tool`] interprets; all others (`type`, `defer_loading`,
/// `strict`, server-tool settings …) ride in `Tool::extra`.
const TOOL_FIELDS: &[&str] = &["name", "description", "input_schema", "cache_control"];

fn convert_tool(mut object: Object, i: usize) -> Result<Tool, ApiError> {
    let at = format!("tools[{i}]");
    let custom = match object.get("type") {
        None | Some(Value::Null) => true,
        Some(Value::String(kind)) => kind == "custom",
        Some(_) => return Err(invalid(&format!("{at}.type"), "must be a string")),
    };
    let mut extra = Map::new();
    object.retain(|key, value| {
        let interpreted = TOOL_FIELDS.contains(&key.as_str());
        if !interpreted {
            extra.insert(key.clone(), std::mem::take(value));
        }
        interpreted
    });
    // A server tool (`web_search_20250305` …) has no schema; a custom tool must have one.
    if !custom && !object.contains_key("input_schema") {
        object.insert("input_schema".to_owned(), Value::Null);
    }
    let wire: WireTool = typed(Value::Object(object), &at)?;
    if custom && !wire.input_schema.is_object() {
        return Err(invalid(&format!("{at}.input_schema"), "must be a JSON Schema object"));
    }
    Ok(Tool {
        name: wire.name,
        description: wire.description,
        input_schema: wire.input_schema,
        cache_control: wire.cache_control,
        extra,
    })
}

/// LiteLLM's per-request gateway parameters: they steer the gateway and must never reach
/// an upstream, which would reject them as unknown. Unlike the OpenAI surface, `metadata`
/// is Anthropic's own field here; LiteLLM's `/v1/messages` takes `litellm_metadata`.
const GATEWAY_PARAMS: &[&str] = &[
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "mock_testing_fallbacks",
    "mock_testing_context_window_fallbacks",
    "mock_testing_content_policy_fallbacks",
    "mock_response",
    "num_retries",
    "timeout",
    "litellm_metadata",
    "litellm_session_id",
    "tags",
    "caching",
    "cache",
];

fn split_gateway_params(mut extra: Map<String, Value>) -> (Map<String, Value>, Map<String, Value>) {
    let mut gateway = Map::new();
    for key in GATEWAY_PARAMS {
        if let Some(value) = extra.remove(*key) {
            gateway.insert((*key).to_owned(), value);
        }
    }
    (extra, gateway)
}

/// Reads `value` as `T`, naming any problem by its path under `at`.
pub(super) fn typed<T: DeserializeOwned>(value: Value, at: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| decode_error(at, &e))
}

fn decode_error(at: &str, err: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = err.inner();
    if !matches!(inner.classify(), serde_json::error::Category::Data) {
        return invalid_json(inner);
    }
    let mut path = join(at, &err.path().to_string());
    let full = inner.to_string();
    let suffix = format!(" at line {} column {}", inner.line(), inner.column());
    let mut problem = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    // serde reports a missing field at its parent: name the field itself instead.
    if let Some(field) =
        problem.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`'))
    {
        path = join(&path, field);
        problem = "missing required field".to_owned();
    }
    if path.is_empty() {
        return ApiError::invalid_request(
            format!("The request body must be a Messages request object: {problem}"),
            None,
        );
    }
    invalid(&path, problem)
}

/// `at` + a serde path (`.` for the root, `[0].text`, `source.data`).
fn join(at: &str, path: &str) -> String {
    match (at, path) {
        (_, "." | "") => at.to_owned(),
        ("", _) => path.to_owned(),
        (_, p) if p.starts_with('[') => format!("{at}{p}"),
        (_, p) => format!("{at}.{p}"),
    }
}

fn invalid_json(err: &serde_json::Error) -> ApiError {
    ApiError::invalid_request(format!("The request body is not valid JSON: {err}"), None)
}

/// A 400 for `path`: the message starts with the path (Anthropic names fields that way),
/// and `param` is the path too.
pub(super) fn invalid(path: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_request(format!("{path}: {problem}"), Some(path))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
