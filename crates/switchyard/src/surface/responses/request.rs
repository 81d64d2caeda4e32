//! Decodes a Responses API request body into a canonical [`ChatRequest`] and the settings the
//! Response object repeats back ([`Echo`]).
//!
//! Every malformed input is a 400 naming the field path (`input[2].call_id`) in both the
//! message and `param`. Fields with no canonical counterpart (`include`, `truncation`,
//! `service_tier`, `prompt_cache_key` …) are ignored, as an unknown chat completions field
//! would never be forwarded to a different API either.

use serde_json::{Map, Value, json};

use super::items::input_messages;
use crate::canonical::{
    ChatRequest, ContentBlock, Dialect, RESPONSES_BODY, ResponseFormat, Tool, ToolChoice,
};
use crate::classify::{ApiError, Diagnosis};
use crate::surface::openai::split_gateway_params;

/// What the Response object repeats from its request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Echo {
    pub instructions: Value,
    pub tools: Value,
    pub tool_choice: Value,
    pub parallel_tool_calls: bool,
    pub temperature: Value,
    pub top_p: Value,
    pub max_output_tokens: Value,
    pub metadata: Value,
    pub store: bool,
    pub previous_response_id: Option<String>,
    pub text: Value,
    pub reasoning: Value,
    pub user: Value,
    /// `(function, namespace)` for each function declared inside a `namespace` tool: the
    /// upstream sees the function's own name, the client gets its calls with `namespace`.
    pub namespaces: Vec<(String, String)>,
}

impl Echo {
    pub fn namespace_of(&self, function: &str) -> Option<&str> {
        self.namespaces.iter().find(|(f, _)| f == function).map(|(_, ns)| ns.as_str())
    }
}

/// A decoded Responses request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The conversation of this request's `input` only; the handler prepends the one
    /// `previous_response_id` names.
    pub chat: ChatRequest,
    pub echo: Echo,
    /// Hosted tools the request asks for, as `(path, type)`: refused unless the upstream
    /// serves the Responses API itself.
    pub built_in: Vec<(String, String)>,
    /// Web search tools left out: the model answers from what it knows, as with the tool
    /// disabled (Codex CLI declares web search on every request).
    pub dropped: Vec<String>,
}

impl Decoded {
    /// The 400 for hosted tools, when the request has any.
    pub fn refuse_built_in(&self, model: &str) -> Option<ApiError> {
        let (path, kind) = self.built_in.first()?;
        let names: Vec<&str> = self.built_in.iter().map(|(_, k)| k.as_str()).collect();
        Some(
            ApiError::invalid_request(
                format!(
                    "{path}: the hosted tool `{kind}` runs inside OpenAI's Responses API, which \
                     the deployment serving `{model}` does not call."
                ),
                Some(path),
            )
            .with_diagnosis(Diagnosis::new(
                "RSP-01",
                format!(
                    "The request asks for OpenAI hosted tools ({}); Switchyard translates the \
                     Responses API for this deployment and only `function` tools translate.",
                    names.join(", ")
                ),
                "Remove the hosted tools from `tools` or declare what you need as `function` \
                 tools; or route the model only to deployments serving the Responses API \
                 (OpenAI's own API, or `supported_endpoints: [/v1/responses]` in the \
                 deployment's model_info).",
            )),
        )
    }
}

/// Decode a Responses body.
pub fn decode_responses_request(body: &[u8]) -> Result<Decoded, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_request(format!("The request body is not valid JSON: {e}"), None)
    })?;
    let Value::Object(mut body) = value else {
        return Err(ApiError::invalid_request(
            "The request body must be a Responses request object.",
            None,
        ));
    };
    let mut raw = body.clone();
    let model = match body.remove("model") {
        Some(Value::String(model)) if !model.trim().is_empty() => model,
        Some(Value::String(_)) => return Err(invalid("model", "must not be empty")),
        None | Some(Value::Null) => return Err(invalid("model", "missing required field")),
        Some(_) => return Err(invalid("model", "must be a string")),
    };
    let instructions = body.remove("instructions").unwrap_or(Value::Null);
    let mut system = Vec::new();
    match &instructions {
        Value::Null => {}
        Value::String(text) if text.is_empty() => {}
        Value::String(text) => system.push(ContentBlock::text(text.as_str())),
        _ => return Err(invalid("instructions", "must be a string")),
    }
    let (input_system, messages) = match body.remove("input") {
        None | Some(Value::Null) => (Vec::new(), Vec::new()),
        Some(input) => input_messages(input)?,
    };
    system.extend(input_system);

    let raw_tools = body.remove("tools").unwrap_or(Value::Null);
    let Tools { tools, built_in, dropped, namespaces } = convert_tools(&raw_tools)?;
    let parallel = match body.remove("parallel_tool_calls") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(invalid("parallel_tool_calls", "must be a boolean")),
    };
    let raw_choice = body.remove("tool_choice").unwrap_or(Value::Null);
    let tool_choice = convert_tool_choice(&raw_choice, !parallel)?;
    let tool_choice = match tool_choice {
        None if !parallel && !tools.is_empty() => {
            Some(ToolChoice::Auto { disable_parallel_tool_use: true })
        }
        other => other,
    };

    let max_output_tokens = body.remove("max_output_tokens").unwrap_or(Value::Null);
    let max_tokens = match &max_output_tokens {
        Value::Null => None,
        v => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(0) | None => {
                return Err(invalid("max_output_tokens", "must be a whole number of at least 1"));
            }
            Some(n) => Some(n),
        },
    };
    let temperature = body.remove("temperature").unwrap_or(Value::Null);
    let top_p = body.remove("top_p").unwrap_or(Value::Null);
    let number = |v: &Value, path: &str| match v {
        Value::Null => Ok(None),
        v => v.as_f64().map(Some).ok_or_else(|| invalid(path, "must be a number")),
    };
    let (temp, top) = (number(&temperature, "temperature")?, number(&top_p, "top_p")?);

    let mut extra = Map::new();
    let reasoning = body.remove("reasoning").unwrap_or(Value::Null);
    match reasoning.get("effort") {
        None | Some(Value::Null) => {}
        Some(Value::String(effort)) => {
            extra.insert("reasoning_effort".into(), Value::from(effort.as_str()));
        }
        Some(_) => return Err(invalid("reasoning.effort", "must be a string")),
    }
    let text = body.remove("text").unwrap_or(Value::Null);
    let response_format = match text.get("format") {
        None | Some(Value::Null) => None,
        Some(format) => convert_format(format)?,
    };
    let user = match body.remove("user") {
        Some(Value::String(user)) => Some(user),
        _ => None,
    };
    let store = !matches!(body.remove("store"), Some(Value::Bool(false)));
    let stream = matches!(body.remove("stream"), Some(Value::Bool(true)));
    let previous_response_id = match body.remove("previous_response_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() => Some(id),
        Some(_) => return Err(invalid("previous_response_id", "must be a response id string")),
    };
    // `metadata` is both the Responses API's own key-value map (echoed back) and where
    // LiteLLM reads tags and the end user: the gateway keeps it, never forwards it.
    let (_, mut gateway) = split_gateway_params(body);
    let metadata = gateway.get("metadata").cloned().unwrap_or_else(|| json!({}));
    if metadata.is_null() {
        gateway.remove("metadata");
    }
    for key in gateway.keys().filter(|k| *k != "metadata") {
        raw.remove(key);
    }
    gateway.insert(RESPONSES_BODY.into(), Value::Object(raw));

    let chat = ChatRequest {
        model,
        system,
        messages,
        max_tokens,
        temperature: temp,
        top_p: top,
        top_k: None,
        stop_sequences: Vec::new(),
        tools,
        tool_choice,
        stream,
        // The Response always carries its usage.
        stream_usage: true,
        user: user.clone(),
        response_format,
        betas: Vec::new(),
        extra,
        dialect: Dialect::OpenAi,
        gateway,
    };
    let echo = Echo {
        instructions,
        tools: if raw_tools.is_null() { json!([]) } else { raw_tools },
        tool_choice: if raw_choice.is_null() { json!("auto") } else { raw_choice },
        parallel_tool_calls: parallel,
        temperature: if temperature.is_null() { json!(1.0) } else { temperature },
        top_p: if top_p.is_null() { json!(1.0) } else { top_p },
        max_output_tokens,
        metadata: if metadata.is_null() { json!({}) } else { metadata },
        store,
        previous_response_id,
        text: if text.is_null() { json!({"format": {"type": "text"}}) } else { text },
        reasoning: if reasoning.is_null() {
            json!({"effort": null, "summary": null})
        } else {
            reasoning
        },
        user: user.map_or(Value::Null, Value::from),
        namespaces,
    };
    Ok(Decoded { chat, echo, built_in, dropped })
}

/// A 400 for `path`: the message starts with the path, `param` is the path.
pub(super) fn invalid(path: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_request(format!("{path}: {problem}"), Some(path))
}

#[derive(Default)]
struct Tools {
    tools: Vec<Tool>,
    built_in: Vec<(String, String)>,
    dropped: Vec<String>,
    namespaces: Vec<(String, String)>,
}

/// Whether a hosted tool is web search, which the model can do without.
fn is_web_search(kind: &str) -> bool {
    kind.starts_with("web_search")
}

fn convert_tools(raw: &Value) -> Result<Tools, ApiError> {
    let list = match raw {
        Value::Null => return Ok(Tools::default()),
        Value::Array(list) => list,
        _ => return Err(invalid("tools", "must be an array")),
    };
    let mut out = Tools { tools: Vec::with_capacity(list.len()), ..Tools::default() };
    for (i, tool) in list.iter().enumerate() {
        let path = format!("tools[{i}]");
        match tool.get("type").and_then(Value::as_str) {
            None => return Err(invalid(&format!("{path}.type"), "missing required field")),
            Some("function") => out.tools.push(function_tool(tool, &path)?),
            Some("namespace") => {
                let Some(ns) = tool.get("name").and_then(Value::as_str) else {
                    return Err(invalid(&format!("{path}.name"), "missing required field"));
                };
                let inner = tool.get("tools").and_then(Value::as_array).into_iter().flatten();
                for (j, inner) in inner.enumerate() {
                    let path = format!("{path}.tools[{j}]");
                    match inner.get("type").and_then(Value::as_str) {
                        Some("function") => {
                            let function = function_tool(inner, &path)?;
                            out.namespaces.push((function.name.clone(), ns.to_owned()));
                            out.tools.push(function);
                        }
                        kind => out
                            .built_in
                            .push((format!("{path}.type"), kind.unwrap_or_default().to_owned())),
                    }
                }
            }
            Some(kind) if is_web_search(kind) => out.dropped.push(kind.to_owned()),
            Some(kind) => out.built_in.push((format!("{path}.type"), kind.to_owned())),
        }
    }
    Ok(out)
}

fn function_tool(tool: &Value, path: &str) -> Result<Tool, ApiError> {
    let at = |field: &str| format!("{path}.{field}");
    let Some(name) = tool.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
        return Err(invalid(&at("name"), "missing required field"));
    };
    let input_schema = match tool.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(schema @ Value::Object(_)) => schema.clone(),
        Some(_) => return Err(invalid(&at("parameters"), "must be a JSON Schema object")),
    };
    Ok(Tool {
        name: name.to_owned(),
        description: tool.get("description").and_then(Value::as_str).map(str::to_owned),
        input_schema,
        cache_control: None,
        extra: Map::new(),
    })
}

fn convert_tool_choice(raw: &Value, disable: bool) -> Result<Option<ToolChoice>, ApiError> {
    Ok(Some(match raw {
        Value::Null => return Ok(None),
        Value::String(mode) => match mode.as_str() {
            "auto" => ToolChoice::Auto { disable_parallel_tool_use: disable },
            "required" => ToolChoice::Any { disable_parallel_tool_use: disable },
            "none" => ToolChoice::None,
            _ => return Err(invalid("tool_choice", "must be `auto`, `none` or `required`")),
        },
        Value::Object(choice) => match choice.get("type").and_then(Value::as_str) {
            Some("function") => {
                let Some(name) = choice.get("name").and_then(Value::as_str) else {
                    return Err(invalid("tool_choice.name", "missing required field"));
                };
                ToolChoice::Tool { name: name.to_owned(), disable_parallel_tool_use: disable }
            }
            other => {
                return Err(invalid(
                    "tool_choice.type",
                    format_args!(
                        "`{}` is not supported here (use `function` with a `name`)",
                        other.unwrap_or("")
                    ),
                ));
            }
        },
        _ => return Err(invalid("tool_choice", "must be a string or an object")),
    }))
}

/// `text.format`: in the Responses API the schema's fields sit beside `type`.
fn convert_format(format: &Value) -> Result<Option<ResponseFormat>, ApiError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(ResponseFormat::JsonObject)),
        Some("json_schema") => {
            let Some(name) = format.get("name").and_then(Value::as_str) else {
                return Err(invalid("text.format.name", "missing required field"));
            };
            let schema = format.get("schema").cloned().unwrap_or_else(|| json!({"type": "object"}));
            if !schema.is_object() {
                return Err(invalid("text.format.schema", "must be a JSON Schema object"));
            }
            Ok(Some(ResponseFormat::JsonSchema {
                name: name.to_owned(),
                description: format.get("description").and_then(Value::as_str).map(str::to_owned),
                schema,
                strict: format.get("strict").and_then(Value::as_bool).unwrap_or(false),
            }))
        }
        _ => {
            Err(invalid("text.format.type", "must be one of `text`, `json_object`, `json_schema`"))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::canonical::{Message, Role};
    use crate::classify::ErrorKind;

    fn decode(v: Value) -> Result<Decoded, ApiError> {
        decode_responses_request(v.to_string().as_bytes())
    }

    fn rejected(v: Value) -> (String, String) {
        let err = decode(v).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
        (err.param.unwrap_or_default(), err.message)
    }

    #[test]
    fn a_string_input_with_settings_decodes_to_the_canonical_request() {
        let d = decode(json!({
            "model": "balanced", "input": "Hi", "instructions": "Be brief.",
            "max_output_tokens": 50, "temperature": 0.5, "top_p": 0.9, "user": "u-1",
            "parallel_tool_calls": false, "reasoning": {"effort": "medium"},
            "text": {"format": {"type": "json_object"}}, "store": false, "stream": true,
            "metadata": {"tags": ["a"]}, "num_retries": 2, "truncation": "auto"
        }))
        .unwrap();
        let chat = &d.chat;
        assert_eq!(chat.system, vec![ContentBlock::text("Be brief.")]);
        assert_eq!(
            chat.messages,
            vec![Message { role: Role::User, content: vec![ContentBlock::text("Hi")] }]
        );
        assert_eq!(
            (chat.max_tokens, chat.temperature, chat.top_p),
            (Some(50), Some(0.5), Some(0.9))
        );
        assert_eq!(chat.user.as_deref(), Some("u-1"));
        assert_eq!(chat.extra, json!({"reasoning_effort": "medium"}).as_object().unwrap().clone());
        assert_eq!(chat.response_format, Some(ResponseFormat::JsonObject));
        assert!(chat.stream && chat.stream_usage);
        assert_eq!(chat.gateway["metadata"], json!({"tags": ["a"]}));
        assert_eq!(chat.gateway["num_retries"], 2);
        let raw = chat.gateway[RESPONSES_BODY].as_object().unwrap();
        assert!(raw.contains_key("truncation") && raw.contains_key("metadata"));
        assert!(!raw.contains_key("num_retries"), "gateway parameters never go upstream");
        assert!(!d.echo.store && !d.echo.parallel_tool_calls);
        assert_eq!(d.echo.tool_choice, "auto");
    }

    #[test]
    fn tool_choice_forms_map_to_the_canonical_choice() {
        let tools = json!([{"type": "function", "name": "f"}]);
        for (choice, expected) in [
            (json!("auto"), ToolChoice::Auto { disable_parallel_tool_use: false }),
            (json!("required"), ToolChoice::Any { disable_parallel_tool_use: false }),
            (json!("none"), ToolChoice::None),
            (
                json!({"type": "function", "name": "f"}),
                ToolChoice::Tool { name: "f".into(), disable_parallel_tool_use: false },
            ),
        ] {
            let d =
                decode(json!({"model": "m", "input": "x", "tools": tools, "tool_choice": choice}))
                    .unwrap();
            assert_eq!(d.chat.tool_choice, Some(expected));
        }
    }

    #[test]
    fn malformed_requests_name_the_field() {
        for (body, param) in [
            (json!({"input": "x"}), "model"),
            (json!({"model": "m", "input": 5}), "input"),
            (json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}), "input[0].role"),
            (
                json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]}),
                "input[0].call_id",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{"}]}),
                "input[0].arguments",
            ),
            (
                json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}),
                "input[0].type",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
                "input[0].content[0].type",
            ),
            (json!({"model": "m", "input": "x", "max_output_tokens": 0}), "max_output_tokens"),
            (json!({"model": "m", "input": "x", "tool_choice": "sometimes"}), "tool_choice"),
            (
                json!({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}),
                "text.format.type",
            ),
            (json!({"model": "m", "input": "x", "tools": [{"type": "function"}]}), "tools[0].name"),
        ] {
            let (got, message) = rejected(body);
            assert_eq!(got, param, "{message}");
            assert!(message.starts_with(&format!("{param}: ")), "{message}");
        }
    }

    #[test]
    fn hosted_tools_are_listed_for_refusal_and_web_search_is_left_out() {
        let d = decode(json!({"model": "m", "input": "x", "tools": [
            {"type": "web_search_preview"}, {"type": "code_interpreter"}, {"type": "function", "name": "f"}
        ]}))
        .unwrap();
        assert_eq!(d.dropped, ["web_search_preview"]);
        assert_eq!(d.built_in, [("tools[1].type".to_owned(), "code_interpreter".to_owned())]);
        let err = d.refuse_built_in("m").unwrap();
        assert_eq!(err.diagnosis.unwrap().id, "RSP-01");
        assert_eq!(d.chat.tools.len(), 1);
    }
}
