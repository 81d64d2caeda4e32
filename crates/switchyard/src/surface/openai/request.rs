//! Decodes an OpenAI chat completions request body into a canonical [`ChatRequest`].
//!
//! Every malformed input is a 400 naming the field path (`messages[1].content`) in both
//! the message and `param`. Unknown top-level fields are kept in `ChatRequest.extra`, never
//! rejected: whether an upstream can honour them is decided downstream, not here.

use serde_json::{Map, Value, json};

use super::request_wire::{WireRequest, WireStop, WireTool, WireToolChoice};
use crate::canonical::{ChatRequest, Dialect, ResponseFormat, Tool, ToolChoice};
use crate::classify::ApiError;

/// Decode an OpenAI chat completions body. Errors are `invalid_request` (400) with the
/// offending field as `param`.
pub fn decode_chat_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    // Well-formed bodies (nearly all) skip the path tracking, which costs about as much as
    // the parse itself; a body that fails is parsed again with it, for the error's path.
    if let Ok(wire) = serde_json::from_slice::<WireRequest>(body) {
        return wire.into_canonical();
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let wire: WireRequest = serde_path_to_error::deserialize(&mut de).map_err(decode_error)?;
    de.end().map_err(|e| invalid_json(&e))?;
    wire.into_canonical()
}

fn decode_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = err.inner();
    if !matches!(inner.classify(), serde_json::error::Category::Data) {
        return invalid_json(inner);
    }
    let mut path = err.path().to_string();
    let full = inner.to_string();
    let suffix = format!(" at line {} column {}", inner.line(), inner.column());
    let mut problem = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    // serde reports a missing field at its parent: name the field itself instead.
    if let Some(field) =
        problem.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`'))
    {
        path = if path == "." { field.to_owned() } else { format!("{path}.{field}") };
        problem = "missing required field".to_owned();
    }
    if path == "." {
        return ApiError::invalid_request(
            format!("The request body must be a chat completion request object: {problem}"),
            None,
        );
    }
    invalid(&path, problem)
}

fn invalid_json(err: &serde_json::Error) -> ApiError {
    ApiError::invalid_request(format!("The request body is not valid JSON: {err}"), None)
}

/// A 400 for `path`: the message starts with the path, `param` is the path.
pub(super) fn invalid(path: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_request(format!("{path}: {problem}"), Some(path))
}

impl WireRequest {
    fn into_canonical(self) -> Result<ChatRequest, ApiError> {
        if self.model.trim().is_empty() {
            return Err(invalid("model", "must not be empty"));
        }
        if self.messages.is_empty() {
            return Err(invalid("messages", "must contain at least one message"));
        }
        let (system, messages) = super::messages::convert_messages(self.messages)?;
        let max_tokens = match (self.max_completion_tokens, self.max_tokens) {
            (Some(0), _) => return Err(invalid("max_completion_tokens", "must be at least 1")),
            (None, Some(0)) => return Err(invalid("max_tokens", "must be at least 1")),
            (completion, legacy) => completion.or(legacy),
        };
        let mut tools = Vec::with_capacity(self.tools.as_ref().map_or(0, Vec::len));
        for (i, tool) in self.tools.into_iter().flatten().enumerate() {
            tools.push(convert_tool(tool, i)?);
        }
        let disable_parallel = self.parallel_tool_calls == Some(false);
        let tool_choice = match self.tool_choice {
            Some(choice) => Some(convert_tool_choice(choice, disable_parallel)?),
            None if disable_parallel && !tools.is_empty() => {
                Some(ToolChoice::Auto { disable_parallel_tool_use: true })
            }
            None => None,
        };
        let stop_sequences = match self.stop {
            None => Vec::new(),
            Some(WireStop::One(s)) => vec![s],
            Some(WireStop::Many(v)) => v,
        };
        let (mut extra, gateway) = split_gateway_params(self.extra);
        let response_format = match extra.remove("response_format") {
            None => None,
            Some(value) => convert_response_format(value)?,
        };
        Ok(ChatRequest {
            model: self.model,
            system,
            messages,
            max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            stop_sequences,
            tools,
            tool_choice,
            stream: self.stream.unwrap_or(false),
            stream_usage: self.stream_options.and_then(|o| o.include_usage).unwrap_or(false),
            user: self.user,
            response_format,
            betas: Vec::new(),
            extra,
            dialect: Dialect::OpenAi,
            gateway,
        })
    }
}

/// LiteLLM's per-request gateway parameters: they steer the gateway and must never reach
/// an upstream, which would reject them as unknown.
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
    "metadata",
    "litellm_metadata",
    "litellm_session_id",
    "tags",
    "caching",
    "cache",
];

pub(crate) fn split_gateway_params(
    mut extra: Map<String, Value>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut gateway = Map::new();
    for key in GATEWAY_PARAMS {
        if let Some(value) = extra.remove(*key) {
            gateway.insert((*key).to_owned(), value);
        }
    }
    (extra, gateway)
}

fn convert_response_format(value: Value) -> Result<Option<ResponseFormat>, ApiError> {
    let kind = value.get("type").and_then(Value::as_str);
    match kind {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(ResponseFormat::JsonObject)),
        Some("json_schema") => {
            let Some(spec) = value.get("json_schema").and_then(Value::as_object) else {
                return Err(invalid(
                    "response_format.json_schema",
                    "is required when type is `json_schema`",
                ));
            };
            let Some(name) = spec.get("name").and_then(Value::as_str) else {
                return Err(invalid("response_format.json_schema.name", "is required"));
            };
            let schema = spec
                .get("schema")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "object"}));
            if !schema.is_object() {
                return Err(invalid("response_format.json_schema.schema", "must be an object"));
            }
            Ok(Some(ResponseFormat::JsonSchema {
                name: name.to_owned(),
                description: spec.get("description").and_then(Value::as_str).map(str::to_owned),
                schema,
                strict: spec.get("strict").and_then(Value::as_bool).unwrap_or(false),
            }))
        }
        _ => Err(invalid(
            "response_format.type",
            "must be one of `text`, `json_object`, `json_schema`",
        )),
    }
}

fn convert_tool(tool: WireTool, i: usize) -> Result<Tool, ApiError> {
    if tool.kind != "function" {
        return Err(invalid(
            &format!("tools[{i}].type"),
            format_args!("tool type `{}` is not supported (use `function`)", tool.kind),
        ));
    }
    let Some(function) = tool.function else {
        return Err(invalid(&format!("tools[{i}].function"), "missing required field"));
    };
    let input_schema = match function.parameters {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(schema @ Value::Object(_)) => schema,
        Some(_) => {
            return Err(invalid(
                &format!("tools[{i}].function.parameters"),
                "must be a JSON Schema object",
            ));
        }
    };
    Ok(Tool {
        name: function.name,
        description: function.description,
        input_schema,
        cache_control: tool.cache_control,
        extra: Map::new(),
    })
}

fn convert_tool_choice(choice: WireToolChoice, disable: bool) -> Result<ToolChoice, ApiError> {
    Ok(match choice {
        WireToolChoice::Auto => ToolChoice::Auto { disable_parallel_tool_use: disable },
        WireToolChoice::Required => ToolChoice::Any { disable_parallel_tool_use: disable },
        WireToolChoice::None => ToolChoice::None,
        WireToolChoice::Named(named) => {
            if named.kind != "function" {
                return Err(invalid(
                    "tool_choice.type",
                    format_args!("`{}` is not supported (use `function`)", named.kind),
                ));
            }
            let Some(function) = named.function else {
                return Err(invalid("tool_choice.function", "missing required field"));
            };
            ToolChoice::Tool { name: function.name, disable_parallel_tool_use: disable }
        }
    })
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::json;

    use super::*;
    use crate::canonical::{ContentBlock, ImageSource, Message, Role};
    use crate::classify::ErrorKind;

    pub(in crate::surface::openai) fn decode(v: Value) -> Result<ChatRequest, ApiError> {
        decode_chat_request(v.to_string().as_bytes())
    }

    /// The error for `body`, asserting it is a 400 naming `param` in its message.
    pub(in crate::surface::openai) fn rejected(body: &[u8], param: Option<&str>) -> String {
        let err = decode_chat_request(body).unwrap_err();
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
        let req = decode(json!({
            "model": "balanced",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this image, and the weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K", "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
                {"role": "user", "content": "Thanks", "cache_control": {"type": "ephemeral"}}
            ],
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
                {"type": "function", "function": {"name": "get_time"}}
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": false,
            "max_completion_tokens": 256,
            "max_tokens": 10,
            "temperature": 0.5,
            "top_p": 0.9,
            "stop": "END",
            "stream": true,
            "stream_options": {"include_usage": true},
            "user": "alice",
            "response_format": {"type": "json_object"},
            "seed": 7,
            "fallbacks": ["cheap"]
        }))
        .unwrap();

        let expected = ChatRequest {
            model: "balanced".into(),
            system: vec![ContentBlock::text("Be brief."), ContentBlock::text("Use tools.")],
            messages: vec![
                Message {
                    role: Role::User,
                    content: vec![
                        ContentBlock::text("What is in this image, and the weather?"),
                        ContentBlock::Image {
                            source: ImageSource::Base64 {
                                media_type: "image/png".into(),
                                data: "iVBORw0K".into(),
                            },
                            cache_control: None,
                        },
                        ContentBlock::Image {
                            source: ImageSource::Url { url: "https://example.com/cat.jpg".into() },
                            cache_control: None,
                        },
                    ],
                },
                Message {
                    role: Role::Assistant,
                    content: vec![
                        ContentBlock::ToolUse {
                            id: "call_1".into(),
                            name: "get_weather".into(),
                            input: json!({"city": "Paris"}),
                            cache_control: None,
                        },
                        ContentBlock::ToolUse {
                            id: "call_2".into(),
                            name: "get_time".into(),
                            input: json!({}),
                            cache_control: None,
                        },
                    ],
                },
                Message {
                    role: Role::User,
                    content: vec![
                        ContentBlock::ToolResult {
                            tool_use_id: "call_1".into(),
                            content: vec![ContentBlock::text("18C")],
                            is_error: false,
                            cache_control: None,
                        },
                        ContentBlock::ToolResult {
                            tool_use_id: "call_2".into(),
                            content: vec![ContentBlock::text("noon")],
                            is_error: false,
                            cache_control: None,
                        },
                        ContentBlock::Text {
                            text: "Thanks".into(),
                            cache_control: Some(json!({"type": "ephemeral"})),
                        },
                    ],
                },
            ],
            max_tokens: Some(256),
            temperature: Some(0.5),
            top_p: Some(0.9),
            top_k: None,
            stop_sequences: vec!["END".into()],
            tools: vec![
                Tool {
                    name: "get_weather".into(),
                    description: Some("Weather".into()),
                    input_schema: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
                    cache_control: None,
                    extra: Map::new(),
                },
                Tool {
                    name: "get_time".into(),
                    description: None,
                    input_schema: json!({"type": "object", "properties": {}}),
                    cache_control: None,
                    extra: Map::new(),
                },
            ],
            tool_choice: Some(ToolChoice::Tool {
                name: "get_weather".into(),
                disable_parallel_tool_use: true,
            }),
            stream: true,
            stream_usage: true,
            user: Some("alice".into()),
            response_format: Some(ResponseFormat::JsonObject),
            betas: Vec::new(),
            extra: json!({"seed": 7}).as_object().unwrap().clone(),
            dialect: Dialect::OpenAi,
            gateway: json!({"fallbacks": ["cheap"]}).as_object().unwrap().clone(),
        };
        assert_eq!(req, expected);
    }

    #[test]
    fn minimal_request_has_defaults() {
        let req =
            decode(json!({"model": "cheap", "messages": [{"role": "user", "content": "hi"}]}))
                .unwrap();
        assert_eq!(
            req.messages,
            vec![Message { role: Role::User, content: vec![ContentBlock::text("hi")] }]
        );
        assert!(!req.stream && !req.stream_usage);
        assert_eq!((req.max_tokens, req.tool_choice.clone()), (None, None));
        assert!(req.extra.is_empty() && req.system.is_empty() && req.stop_sequences.is_empty());
    }

    #[test]
    fn tool_choice_strings_and_parallel_flag_map_like_litellm() {
        let with = |choice: Value, parallel: Value| {
            let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f"}}]});
            if !choice.is_null() {
                body["tool_choice"] = choice;
            }
            if !parallel.is_null() {
                body["parallel_tool_calls"] = parallel;
            }
            decode(body).unwrap().tool_choice
        };
        let auto = |d| Some(ToolChoice::Auto { disable_parallel_tool_use: d });
        assert_eq!(with(json!("auto"), Value::Null), auto(false));
        assert_eq!(
            with(json!("required"), json!(false)),
            Some(ToolChoice::Any { disable_parallel_tool_use: true })
        );
        assert_eq!(with(json!("none"), json!(false)), Some(ToolChoice::None));
        assert_eq!(with(Value::Null, json!(false)), auto(true));
        assert_eq!(with(Value::Null, json!(true)), None);
    }

    #[test]
    fn legacy_max_tokens_and_stop_list_are_read() {
        let req = decode(json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 12, "stop": ["a", "b"], "top_k": 3}))
        .unwrap();
        assert_eq!(req.max_tokens, Some(12));
        assert_eq!(req.stop_sequences, ["a", "b"]);
        assert_eq!(req.top_k, Some(3));
    }

    #[test]
    fn invalid_json_is_a_400_without_param() {
        let msg = rejected(br#"{"model": "m", "messages": ["#, None);
        assert!(msg.starts_with("The request body is not valid JSON"), "{msg}");
        let msg = rejected(br#"{"model": "m", "messages": []} trailing"#, None);
        assert!(msg.starts_with("The request body is not valid JSON"), "{msg}");
    }

    #[test]
    fn body_that_is_not_an_object_is_a_400() {
        let msg = rejected(b"[1, 2]", None);
        assert!(msg.contains("must be a chat completion request object"), "{msg}");
    }

    #[test]
    fn missing_model_and_messages_are_named() {
        rejected(br#"{"messages": [{"role": "user", "content": "x"}]}"#, Some("model"));
        let msg = rejected(br#"{"model": "m"}"#, Some("messages"));
        assert_eq!(msg, "messages: missing required field");
        rejected(
            br#"{"model": "", "messages": [{"role": "user", "content": "x"}]}"#,
            Some("model"),
        );
        rejected(br#"{"model": "m", "messages": []}"#, Some("messages"));
    }

    #[test]
    fn messages_not_an_array_is_named() {
        let msg = rejected(br#"{"model": "m", "messages": "hi"}"#, Some("messages"));
        assert!(msg.contains("expected a sequence"), "{msg}");
    }

    #[test]
    fn content_of_the_wrong_type_names_its_path() {
        let body = br#"{"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": 5}]}"#;
        let msg = rejected(body, Some("messages[1].content"));
        assert_eq!(
            msg,
            "messages[1].content: invalid type: integer `5`, expected a string or an array of content parts"
        );
    }

    #[test]
    fn bad_tools_and_parameters_are_named() {
        let base = r#""model": "m", "messages": [{"role": "user", "content": "x"}]"#;
        let cases: &[(&str, &str)] = &[
            (r#""tools": [{"type": "custom", "custom": {}}]"#, "tools[0].type"),
            (r#""tools": [{"type": "function"}]"#, "tools[0].function"),
            (
                r#""tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}]"#,
                "tools[0].function.parameters",
            ),
            (r#""tool_choice": "sometimes""#, "tool_choice"),
            (r#""tool_choice": {"type": "function"}"#, "tool_choice.function"),
            (r#""stop": 5"#, "stop"),
            (r#""max_tokens": -1"#, "max_tokens"),
            (r#""max_completion_tokens": 0"#, "max_completion_tokens"),
            (r#""temperature": "hot""#, "temperature"),
            (r#""stream": "yes""#, "stream"),
            (r#""stream_options": {"include_usage": 1}"#, "stream_options.include_usage"),
        ];
        for (field, param) in cases {
            let body = format!("{{{base}, {field}}}");
            rejected(body.as_bytes(), Some(param));
        }
    }
}
