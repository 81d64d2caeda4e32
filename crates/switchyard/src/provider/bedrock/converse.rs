//! Bedrock Converse (`POST /model/{id}/converse`) for `bedrock/converse/` deployments and
//! non-Claude Bedrock models: canonical [`ChatRequest`] → Converse JSON body, and the
//! Converse answer → canonical [`ChatResponse`]. ConverseStream lives in
//! `converse_stream.rs`; signing, credentials, timeouts and error classification are the
//! Invoke path's (`mod.rs`, `classify::bedrock`).
//!
//! What Converse cannot carry is refused by name (InvalidRequest) before anything is sent,
//! unless `drop_params` drops it; model-specific fields (`top_k`, `thinking`, Anthropic beta
//! flags, an explicit `additionalModelRequestFields`) travel in
//! `additionalModelRequestFields`. Never reads or logs message content beyond translating it.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::canonical::{
    ChatRequest, ChatResponse, ContentBlock, ImageSource, Message, ResponseFormat, Role,
    StopReason, Tool, ToolChoice, Usage,
};
use crate::classify::{ErrorKind, UpstreamError};

/// The synthetic tool that carries `response_format` (LiteLLM's name, as on InvokeModel).
pub(super) const JSON_TOOL: &str = "json_tool_call";

/// What the body builder needs from its deployment.
pub(super) struct Options<'a> {
    /// `inferenceConfig.maxTokens` when the request has none (the deployment's `model_info`);
    /// `None` lets the model use its own default, which differs per model family.
    pub default_max_tokens: Option<u32>,
    pub drop_params: bool,
    /// The deployment, as errors name it.
    pub who: &'a str,
}

/// A serialized Converse body and how to read the answer to it.
#[derive(Debug)]
pub(super) struct Body {
    pub value: Value,
    /// `response_format` became [`JSON_TOOL`]: its input is the answer's text.
    pub json_mode: bool,
}

impl Body {
    pub fn bytes(&self) -> Result<Vec<u8>, UpstreamError> {
        serde_json::to_vec(&self.value).map_err(|e| {
            UpstreamError::new(
                ErrorKind::Internal,
                format!("the request body cannot be encoded: {e}"),
            )
        })
    }
}

/// Collects what cannot be carried, so one error names all of it.
struct Refusals<'a> {
    opts: &'a Options<'a>,
    refused: Vec<String>,
}

impl Refusals<'_> {
    /// A request parameter Converse cannot honour: refused, or dropped under `drop_params`.
    fn param(&mut self, name: &str, why: &str) {
        if self.opts.drop_params {
            tracing::debug!(param = name, why, "dropped a parameter Converse cannot honour");
        } else {
            self.refused.push(format!("`{name}` ({why})"));
        }
    }

    /// Content Converse cannot carry: always refused (dropping content changes the prompt).
    fn content(&mut self, what: &str, why: &str) {
        self.refused.push(format!("{what} ({why})"));
    }

    fn finish(self) -> Result<(), UpstreamError> {
        if self.refused.is_empty() {
            return Ok(());
        }
        let what = if self.refused.len() == 1 { "this" } else { "these" };
        let mut error = UpstreamError::new(
            ErrorKind::InvalidRequest,
            format!(
                "{} (Bedrock Converse) cannot carry {what}: {}. Remove them from the request, \
                 or set `drop_params: true` (in litellm_settings, or in this deployment's \
                 litellm_params) to drop such parameters",
                self.opts.who,
                self.refused.join(", ")
            ),
        );
        error.status = Some(400);
        Err(error)
    }
}

/// The Converse request body for `req`.
pub(super) fn build(req: &ChatRequest, opts: &Options<'_>) -> Result<Body, UpstreamError> {
    let mut no = Refusals { opts, refused: Vec::new() };
    let mut additional = Map::new();
    extras(req, &mut additional, &mut no);
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages(&req.messages, &mut no)));
    let system = blocks(&req.system, &mut no, Place::System);
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let mut inference = Map::new();
    if let Some(max) = req.max_tokens.or(opts.default_max_tokens) {
        inference.insert("maxTokens".into(), json!(max));
    }
    if let Some(t) = req.temperature {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        inference.insert("topP".into(), json!(p));
    }
    let stops: Vec<&str> =
        req.stop_sequences.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
    if !stops.is_empty() {
        inference.insert("stopSequences".into(), json!(stops));
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(k) = req.top_k {
        additional.insert("top_k".into(), json!(k));
    }
    if !req.betas.is_empty() {
        additional.insert("anthropic_beta".into(), json!(req.betas));
    }
    let json_mode = req.response_format.is_some();
    if let Some(config) = tool_config(req, &mut no) {
        body.insert("toolConfig".into(), config);
    }
    if !additional.is_empty() {
        body.insert("additionalModelRequestFields".into(), Value::Object(additional));
    }
    no.finish()?;
    Ok(Body { value: Value::Object(body), json_mode })
}

/// The request's extra fields: passed on in `additionalModelRequestFields`, ignored when
/// harmless, otherwise refused by name.
fn extras(req: &ChatRequest, additional: &mut Map<String, Value>, no: &mut Refusals<'_>) {
    for (key, value) in &req.extra {
        let key = key.as_str();
        let is = |defaults: &[Value]| value.is_null() || defaults.contains(value);
        match key {
            "additionalModelRequestFields" => match value {
                Value::Object(fields) => additional.extend(fields.clone()),
                _ => no.param(key, "must be an object"),
            },
            // Claude's extended thinking; Converse passes it to the model as is.
            "thinking" => {
                additional.insert(key.into(), value.clone());
            }
            // Advisory or client-side: nothing for Converse to do. Anthropic's context editing
            // (`context_management`) only saves tokens on the Anthropic side; the request stands
            // without it.
            "metadata" | "store" | "prompt_cache_key" | "stream_options" | "parallel_tool_calls"
            | "safety_identifier" | "context_management" => {}
            // Anthropic's effort hint is advisory; anything else in it (a structured-output
            // `format`) changes the answer and is refused.
            "output_config"
                if value.as_object().is_some_and(|o| o.keys().all(|k| k == "effort")) => {}
            "n" if is(&[json!(1)]) => {}
            "logprobs" if is(&[json!(false)]) => {}
            "top_logprobs" if is(&[json!(0)]) => {}
            "frequency_penalty" | "presence_penalty" if is(&[json!(0), json!(0.0)]) => {}
            "logit_bias" if is(&[json!({})]) => {}
            "modalities" if is(&[json!(["text"])]) => {}
            "service_tier" if is(&[json!("auto"), json!("default")]) => {}
            "reasoning_effort" if is(&[json!("none")]) => {}
            _ => no.param(key, "not something Converse carries; pass model-specific fields in `additionalModelRequestFields`"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    System,
    Message,
    ToolResult,
}

/// Converse requires the roles to alternate (the Messages API merges consecutive turns
/// itself), so consecutive messages of one role become one message, in order: tool results
/// followed by a user's text, or two user turns around a system message folded away.
fn messages(list: &[Message], no: &mut Refusals<'_>) -> Vec<Value> {
    let mut out: Vec<(Role, Vec<Value>)> = Vec::with_capacity(list.len());
    for m in list {
        let content = blocks(&m.content, no, Place::Message);
        match out.last_mut() {
            Some((role, blocks)) if *role == m.role => blocks.extend(content),
            _ => out.push((m.role, content)),
        }
    }
    out.into_iter()
        .map(|(role, content)| {
            let role = match role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({ "role": role, "content": content })
        })
        .collect()
}

/// Canonical blocks → Converse content blocks; a `cache_control` mark becomes a
/// `cachePoint` after its block (Converse's spelling of a cache breakpoint).
fn blocks(content: &[ContentBlock], no: &mut Refusals<'_>, place: Place) -> Vec<Value> {
    let mut out = Vec::with_capacity(content.len());
    for block in content {
        let (value, cache) = match block {
            ContentBlock::Text { text, cache_control } => (json!({ "text": text }), cache_control),
            ContentBlock::Image { source, cache_control } if place != Place::System => {
                match image(source) {
                    Ok(v) => (v, cache_control),
                    Err(why) => {
                        no.content("an image", why);
                        continue;
                    }
                }
            }
            ContentBlock::ToolUse { id, name, input, cache_control } if place == Place::Message => {
                let input = if input.is_object() { input.clone() } else { json!({}) };
                (
                    json!({ "toolUse": { "toolUseId": id, "name": name, "input": input } }),
                    cache_control,
                )
            }
            ContentBlock::ToolResult { tool_use_id, content, is_error, cache_control }
                if place == Place::Message =>
            {
                let mut result = json!({
                    "toolUseId": tool_use_id,
                    "content": blocks(content, no, Place::ToolResult),
                });
                if *is_error {
                    result["status"] = json!("error");
                }
                (json!({ "toolResult": result }), cache_control)
            }
            ContentBlock::Thinking { thinking, signature } if place == Place::Message => {
                let mut text = json!({ "text": thinking });
                if let Some(s) = signature {
                    text["signature"] = json!(s);
                }
                (json!({ "reasoningContent": { "reasoningText": text } }), &None)
            }
            ContentBlock::RedactedThinking { data } if place == Place::Message => {
                (json!({ "reasoningContent": { "redactedContent": data } }), &None)
            }
            other => {
                let kind = match other {
                    ContentBlock::Other(map) => {
                        map.get("type").and_then(Value::as_str).unwrap_or("unknown").to_owned()
                    }
                    ContentBlock::Text { .. } => "text".into(),
                    ContentBlock::Image { .. } => "image".into(),
                    ContentBlock::ToolUse { .. } => "tool_use".into(),
                    ContentBlock::ToolResult { .. } => "tool_result".into(),
                    ContentBlock::Thinking { .. } => "thinking".into(),
                    ContentBlock::RedactedThinking { .. } => "redacted_thinking".into(),
                };
                let place = match place {
                    Place::System => "the system prompt",
                    Place::Message => "a message",
                    Place::ToolResult => "a tool result",
                };
                no.content(&format!("a `{kind}` block in {place}"), "no Converse equivalent");
                continue;
            }
        };
        out.push(value);
        if cache.is_some() && place != Place::ToolResult {
            out.push(json!({ "cachePoint": { "type": "default" } }));
        }
    }
    out
}

/// An image as Converse takes it: its format and base64 bytes (restJson1 blobs are base64).
fn image(source: &ImageSource) -> Result<Value, &'static str> {
    let ImageSource::Base64 { media_type, data } = source else {
        return Err("Converse takes image bytes, not a URL: send the image as base64 data");
    };
    let format = match media_type.as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return Err("Converse takes png, jpeg, gif and webp images"),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| "its data is not valid base64")?;
    let bytes = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(json!({ "image": { "format": format, "source": { "bytes": bytes } } }))
}

fn tool_config(req: &ChatRequest, no: &mut Refusals<'_>) -> Option<Value> {
    let mut tools: Vec<Value> = Vec::new();
    for tool in &req.tools {
        if let Some(spec) = tool_spec(tool, no) {
            tools.push(spec);
            if tool.cache_control.is_some() {
                tools.push(json!({ "cachePoint": { "type": "default" } }));
            }
        }
    }
    if let Some(format) = &req.response_format {
        tools.push(json_tool(format));
        return Some(json!({ "tools": tools, "toolChoice": { "tool": { "name": JSON_TOOL } } }));
    }
    if tools.is_empty() {
        return None;
    }
    let mut config = json!({ "tools": tools });
    let parallel = |disable: bool, no: &mut Refusals<'_>| {
        if disable {
            no.param("parallel_tool_calls", "Converse cannot forbid parallel tool calls");
        }
    };
    match &req.tool_choice {
        None => {}
        Some(ToolChoice::Auto { disable_parallel_tool_use }) => {
            parallel(*disable_parallel_tool_use, no);
            config["toolChoice"] = json!({ "auto": {} });
        }
        Some(ToolChoice::Any { disable_parallel_tool_use }) => {
            parallel(*disable_parallel_tool_use, no);
            config["toolChoice"] = json!({ "any": {} });
        }
        Some(ToolChoice::Tool { name, disable_parallel_tool_use }) => {
            parallel(*disable_parallel_tool_use, no);
            config["toolChoice"] = json!({ "tool": { "name": name } });
        }
        Some(ToolChoice::None) => {
            no.param("tool_choice", "Converse has no `none` choice; leave the tools out instead");
        }
    }
    Some(config)
}

fn tool_spec(tool: &Tool, no: &mut Refusals<'_>) -> Option<Value> {
    if tool.input_schema.is_null() {
        let kind = tool.extra.get("type").and_then(Value::as_str).unwrap_or(&tool.name);
        no.content(
            &format!("the server tool `{kind}`"),
            "Converse takes only tools with an input schema",
        );
        return None;
    }
    let mut spec = json!({ "name": tool.name, "inputSchema": { "json": tool.input_schema } });
    if let Some(d) = tool.description.as_deref().filter(|d| !d.is_empty()) {
        spec["description"] = json!(d);
    }
    Some(json!({ "toolSpec": spec }))
}

fn json_tool(format: &ResponseFormat) -> Value {
    let (description, schema) = match format {
        ResponseFormat::JsonObject => {
            (None, json!({"type": "object", "additionalProperties": true, "properties": {}}))
        }
        ResponseFormat::JsonSchema { description, schema, .. } => {
            let mut schema = schema.clone();
            if let Some(o) = schema.as_object_mut() {
                o.entry("type").or_insert(json!("object"));
            }
            (description.clone(), schema)
        }
    };
    let mut spec = json!({ "name": JSON_TOOL, "inputSchema": { "json": schema } });
    if let Some(d) = description {
        spec["description"] = json!(d);
    }
    json!({ "toolSpec": spec })
}

/// The messages, system prompt and tools of a body: what CountTokens' `converse` input takes.
pub(super) fn count_input(body: &Value) -> Value {
    let mut input = Map::new();
    for key in ["messages", "system", "toolConfig"] {
        if let Some(v) = body.get(key) {
            input.insert(key.into(), v.clone());
        }
    }
    json!({ "input": { "converse": input } })
}

// ---- the answer ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse {
    output: WireOutput,
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
struct WireOutput {
    message: Option<WireMessage>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Vec<Value>,
}

/// Converse's `TokenUsage`. `inputTokens` excludes the cached tokens, as Anthropic's
/// `input_tokens` does.
#[derive(Deserialize, Default, Debug, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_write_input_tokens: Option<u64>,
    /// The cache writes by TTL (`[{"ttl": "1h", "inputTokens": N}, {"ttl": "5m", …}]`);
    /// only the 1-hour count is kept (it is priced apart).
    #[serde(default, deserialize_with = "one_hour_writes")]
    cache_details: u64,
}

/// The `inputTokens` of the `1h` entries of `cacheDetails`, without keeping the array.
fn one_hour_writes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Detail {
        #[serde(default)]
        ttl: Option<String>,
        #[serde(default)]
        input_tokens: Option<u64>,
    }
    let details: Option<Vec<Detail>> = Deserialize::deserialize(d)?;
    Ok(details
        .unwrap_or_default()
        .iter()
        .filter(|c| c.ttl.as_deref() == Some("1h"))
        .filter_map(|c| c.input_tokens)
        .sum())
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Self {
            input_tokens: u.input_tokens.unwrap_or(0),
            output_tokens: u.output_tokens.unwrap_or(0),
            cache_read_input_tokens: u.cache_read_input_tokens.unwrap_or(0),
            cache_creation_input_tokens: u.cache_write_input_tokens.unwrap_or(0),
            cache_creation_1h_input_tokens: u.cache_details,
        }
    }
}

/// Converse's stop reasons; one this gateway does not know reads as none.
pub(super) fn stop_reason(reason: Option<&str>) -> Option<StopReason> {
    Some(match reason? {
        "end_turn" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "guardrail_intervened" | "content_filtered" => StopReason::ContentFilter,
        "model_context_window_exceeded" => StopReason::ModelContextWindowExceeded,
        other => {
            tracing::debug!(stop_reason = other, "a Converse stop reason with no canonical match");
            return None;
        }
    })
}

/// One Converse content block of an answer → canonical; `None` for blocks with no canonical
/// form (citations, guard content …).
fn answer_block(block: &Value, json_mode: bool) -> Option<ContentBlock> {
    if let Some(text) = block.get("text").and_then(Value::as_str) {
        return Some(ContentBlock::text(text));
    }
    if let Some(tool) = block.get("toolUse") {
        let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
        let input = tool.get("input").cloned().unwrap_or_else(|| json!({}));
        if json_mode && name == JSON_TOOL {
            return Some(ContentBlock::text(input.to_string()));
        }
        return Some(ContentBlock::ToolUse {
            id: tool.get("toolUseId").and_then(Value::as_str).unwrap_or_default().to_owned(),
            name: name.to_owned(),
            input,
            cache_control: None,
        });
    }
    let reasoning = block.get("reasoningContent")?;
    if let Some(text) = reasoning.get("reasoningText") {
        return Some(ContentBlock::Thinking {
            thinking: text.get("text").and_then(Value::as_str).unwrap_or_default().to_owned(),
            signature: text.get("signature").and_then(Value::as_str).map(str::to_owned),
        });
    }
    let data = reasoning.get("redactedContent").and_then(Value::as_str)?;
    Some(ContentBlock::RedactedThinking { data: data.to_owned() })
}

/// The answer of a Converse call. `id` names it (Converse has none: the request id);
/// `model` is the deployment's model id.
pub(super) fn parse(
    bytes: &[u8],
    json_mode: bool,
    id: String,
    model: &str,
) -> Result<ChatResponse, UpstreamError> {
    let wire: WireResponse = serde_json::from_slice(bytes).map_err(|e| {
        UpstreamError::new(
            ErrorKind::UpstreamUnavailable,
            format!("Bedrock's answer is not a Converse response: {e}"),
        )
    })?;
    let content: Vec<ContentBlock> = wire
        .output
        .message
        .map(|m| m.content)
        .unwrap_or_default()
        .iter()
        .filter_map(|b| answer_block(b, json_mode))
        .collect();
    let mut stop = stop_reason(wire.stop_reason.as_deref());
    let tools_left = content.iter().any(|b| matches!(b, ContentBlock::ToolUse { .. }));
    if json_mode && !tools_left && stop == Some(StopReason::ToolUse) {
        stop = Some(StopReason::EndTurn);
    }
    Ok(ChatResponse {
        id,
        model: model.to_owned(),
        content,
        stop_reason: stop,
        stop_sequence: None,
        usage: wire.usage.into(),
    })
}

/// A message id for an answer: Converse sends none, so the AWS request id stands in.
pub(super) fn message_id(headers: &http::HeaderMap) -> String {
    let id = ["x-amzn-requestid", "x-amz-request-id"]
        .iter()
        .find_map(|h| headers.get(*h)?.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:016x}", fastrand::u64(..)));
    format!("msg_bdrk_{id}")
}

#[cfg(test)]
#[path = "converse_tests.rs"]
mod tests;
