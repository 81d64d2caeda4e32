//! Canonical [`ChatRequest`] → Anthropic Messages JSON body, serialized once, straight to
//! bytes, from structs that borrow the request (no intermediate `serde_json::Value`).
//!
//! Written for two upstreams: the Anthropic API and, later, Bedrock InvokeModel ([`Target`]),
//! which takes the same body without `model`/`stream` and with `anthropic_version` and
//! `anthropic_beta` inside it. Never sends a field twice and never reads message content.

use std::borrow::Cow;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::params;
use crate::canonical::{ChatRequest, ContentBlock, Message, ResponseFormat, Tool, ToolChoice};
use crate::classify::{ErrorKind, UpstreamError};

/// The synthetic tool that carries `response_format` (LiteLLM's name for it).
pub(crate) const JSON_TOOL: &str = "json_tool_call";

/// `max_tokens` when neither the request nor the deployment's `model_info` gives one.
pub(crate) const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Fields the count_tokens endpoint refuses although Messages accepts them.
const NOT_COUNTED: &[&str] = &["metadata", "service_tier", "container", "inference_geo"];

/// Which API the body is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code, reason = "Bedrock InvokeModel will reuse this body builder")]
pub(crate) enum Target {
    /// api.anthropic.com: `model` and `stream` in the body, betas in a header.
    Api,
    /// Bedrock InvokeModel: model in the URL, `anthropic_version` and `anthropic_beta` here.
    Bedrock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Send,
    Stream,
    CountTokens,
}

pub(crate) struct Options<'a> {
    pub target: Target,
    pub purpose: Purpose,
    /// The upstream model id.
    pub model: &'a str,
    /// `max_tokens` when the request has none.
    pub default_max_tokens: u32,
    pub drop_params: bool,
    /// The deployment, as errors name it.
    pub who: &'a str,
}

/// A serialized body and how to read the answer to it.
#[derive(Debug)]
pub(crate) struct Body {
    pub bytes: Vec<u8>,
    /// `response_format` was turned into [`JSON_TOOL`]: its input is the answer's text.
    pub json_mode: bool,
}

/// `max_output_tokens`, else `max_tokens`, from a deployment's `model_info`.
pub(crate) fn configured_max_tokens(model_info: &Map<String, Value>) -> Option<u32> {
    ["max_output_tokens", "max_tokens"]
        .iter()
        .find_map(|k| model_info.get(*k)?.as_u64())
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
}

pub(crate) fn build(req: &ChatRequest, opts: &Options<'_>) -> Result<Body, UpstreamError> {
    let extras = params::decide(req, opts.drop_params, opts.who)?;
    let counting = opts.purpose == Purpose::CountTokens;
    let thinking_on = extras
        .thinking()
        .and_then(|t| t.get("type"))
        .is_some_and(|t| t.as_str() != Some("disabled"));
    let json_tool = req.response_format.as_ref().map(JsonTool::new);
    let has_tools = !req.tools.is_empty() || json_tool.is_some();
    let tool_choice = match (&json_tool, &req.tool_choice) {
        // Thinking cannot be combined with a forced tool: let the model choose it.
        (Some(_), _) => Some(Choice::Json { forced: !thinking_on }),
        (None, Some(choice)) if has_tools => Some(Choice::Given(choice)),
        (None, _) => None,
    };
    let max_tokens = (!counting).then(|| {
        req.max_tokens.unwrap_or_else(|| {
            // A thinking budget comes out of max_tokens: keep the default for the answer.
            let budget = extras.thinking().and_then(|t| t.get("budget_tokens")?.as_u64());
            let budget = budget.and_then(|b| u32::try_from(b).ok()).unwrap_or(0);
            opts.default_max_tokens.saturating_add(budget)
        })
    });
    let api = opts.target == Target::Api;
    let forward: Vec<(&str, &Value)> = extras
        .forward
        .iter()
        .filter(|(k, _)| !counting || !NOT_COUNTED.contains(k))
        .copied()
        .collect();
    let wire = Wire {
        anthropic_version: (!api).then_some("bedrock-2023-05-31"),
        anthropic_beta: (!api && !req.betas.is_empty()).then_some(req.betas.as_slice()),
        model: api.then_some(opts.model),
        max_tokens,
        system: &req.system,
        messages: &req.messages,
        temperature: req.temperature.filter(|_| !counting),
        top_p: req.top_p.filter(|_| !counting),
        top_k: req.top_k.filter(|_| !counting),
        // Anthropic rejects whitespace-only stop sequences.
        stop_sequences: if counting {
            Vec::new()
        } else {
            req.stop_sequences.iter().map(String::as_str).filter(|s| !s.trim().is_empty()).collect()
        },
        tools: Tools { given: &req.tools, json: json_tool.as_ref() },
        tool_choice,
        metadata: extras.user_id.filter(|_| !counting).map(|user_id| Metadata { user_id }),
        thinking: extras.thinking.as_ref(),
        stream: api && opts.purpose == Purpose::Stream,
        extra: Fields(forward),
    };
    let bytes = serde_json::to_vec(&wire).map_err(|e| {
        UpstreamError::new(ErrorKind::Internal, format!("the request body cannot be encoded: {e}"))
    })?;
    Ok(Body { bytes, json_mode: json_tool.is_some() })
}

#[derive(Serialize)]
struct Wire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    anthropic_version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anthropic_beta: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    /// Canonical blocks serialize in Anthropic's shape (`canonical` follows Messages).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    system: &'a [ContentBlock],
    messages: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<&'a str>,
    #[serde(skip_serializing_if = "Tools::is_empty")]
    tools: Tools<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Choice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(flatten)]
    extra: Fields<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

/// The request's tools, then the `response_format` tool.
struct Tools<'a> {
    given: &'a [Tool],
    json: Option<&'a JsonTool<'a>>,
}

impl Tools<'_> {
    fn is_empty(&self) -> bool {
        self.given.is_empty() && self.json.is_none()
    }
}

impl Serialize for Tools<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.given.len() + usize::from(self.json.is_some())))?;
        for tool in self.given {
            seq.serialize_element(tool)?;
        }
        if let Some(json) = self.json {
            seq.serialize_element(json)?;
        }
        seq.end()
    }
}

/// The tool that makes the model answer with JSON matching `response_format`.
#[derive(Serialize)]
struct JsonTool<'a> {
    name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: Cow<'a, Value>,
}

impl<'a> JsonTool<'a> {
    fn new(format: &'a ResponseFormat) -> Self {
        match format {
            ResponseFormat::JsonObject => Self {
                name: JSON_TOOL,
                description: None,
                input_schema: Cow::Owned(
                    json!({"type": "object", "additionalProperties": true, "properties": {}}),
                ),
            },
            ResponseFormat::JsonSchema { description, schema, .. } => {
                // Tool inputs must be objects: `type: object` unless the schema says.
                let input_schema = match schema.as_object() {
                    Some(o) if !o.contains_key("type") => {
                        let mut o = o.clone();
                        o.insert("type".to_owned(), json!("object"));
                        Cow::Owned(Value::Object(o))
                    }
                    _ => Cow::Borrowed(schema),
                };
                Self { name: JSON_TOOL, description: description.as_deref(), input_schema }
            }
        }
    }
}

enum Choice<'a> {
    Given(&'a ToolChoice),
    /// The `response_format` tool: forced, or offered when thinking forbids forcing.
    Json {
        forced: bool,
    },
}

impl Serialize for Choice<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Given(choice) => choice.serialize(s),
            Self::Json { forced: true } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "tool")?;
                m.serialize_entry("name", JSON_TOOL)?;
                m.end()
            }
            Self::Json { forced: false } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("type", "auto")?;
                m.end()
            }
        }
    }
}

/// Forwarded fields, flattened into the body.
struct Fields<'a>(Vec<(&'a str, &'a Value)>);

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{Dialect, ImageSource, Role};

    fn opts(purpose: Purpose) -> Options<'static> {
        Options {
            target: Target::Api,
            purpose,
            model: "claude-sonnet-4-6",
            default_max_tokens: DEFAULT_MAX_TOKENS,
            drop_params: false,
            who: "the deployment of `balanced` (anthropic/claude-sonnet-4-6)",
        }
    }

    fn body(req: &ChatRequest, purpose: Purpose) -> Value {
        serde_json::from_slice(&build(req, &opts(purpose)).unwrap().bytes).unwrap()
    }

    fn user(text: &str) -> Message {
        Message { role: Role::User, content: vec![ContentBlock::text(text)] }
    }

    fn rich() -> ChatRequest {
        ChatRequest {
            model: "balanced".into(),
            system: vec![ContentBlock::text("Be brief.")],
            messages: vec![
                Message {
                    role: Role::User,
                    content: vec![
                        ContentBlock::text("What is this?"),
                        ContentBlock::Image {
                            source: ImageSource::Base64 {
                                media_type: "image/png".into(),
                                data: "iVBORw0K".into(),
                            },
                            cache_control: Some(json!({"type": "ephemeral"})),
                        },
                    ],
                },
                Message {
                    role: Role::Assistant,
                    content: vec![ContentBlock::ToolUse {
                        id: "call_1".into(),
                        name: "look".into(),
                        input: json!({"q": "x"}),
                        cache_control: None,
                    }],
                },
                Message {
                    role: Role::User,
                    content: vec![ContentBlock::ToolResult {
                        tool_use_id: "call_1".into(),
                        content: vec![ContentBlock::text("a cat")],
                        is_error: false,
                        cache_control: None,
                    }],
                },
            ],
            temperature: Some(0.5),
            stop_sequences: vec!["END".into(), " \n".into()],
            tools: vec![Tool {
                name: "look".into(),
                description: Some("Look".into()),
                input_schema: json!({"type": "object", "properties": {}}),
                ..Tool::default()
            }],
            tool_choice: Some(ToolChoice::Any { disable_parallel_tool_use: true }),
            user: Some("user-42".into()),
            betas: vec!["beta-a".into()],
            ..ChatRequest::default()
        }
    }

    #[test]
    fn a_rich_openai_request_becomes_the_exact_messages_body() {
        assert_eq!(
            body(&rich(), Purpose::Stream),
            json!({
                "model": "claude-sonnet-4-6",
                "max_tokens": 4096,
                "system": [{"type": "text", "text": "Be brief."}],
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
                         "cache_control": {"type": "ephemeral"}}
                    ]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "call_1", "name": "look", "input": {"q": "x"}}
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "a cat"}]}
                    ]}
                ],
                "temperature": 0.5,
                "stop_sequences": ["END"],
                "tools": [{"name": "look", "description": "Look", "input_schema": {"type": "object", "properties": {}}}],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
                "metadata": {"user_id": "user-42"},
                "stream": true
            })
        );
    }

    #[test]
    fn bedrock_moves_version_and_betas_into_the_body_and_drops_model_and_stream() {
        let req = rich();
        let o = Options { target: Target::Bedrock, ..opts(Purpose::Stream) };
        let v: Value = serde_json::from_slice(&build(&req, &o).unwrap().bytes).unwrap();
        assert_eq!(v["anthropic_version"], "bedrock-2023-05-31");
        assert_eq!(v["anthropic_beta"], json!(["beta-a"]));
        assert!(v.get("model").is_none() && v.get("stream").is_none());
        assert_eq!(v["max_tokens"], 4096);
    }

    #[test]
    fn count_tokens_keeps_only_what_the_endpoint_accepts() {
        let mut req = rich();
        req.dialect = Dialect::Anthropic;
        req.extra =
            json!({"thinking": {"type": "enabled", "budget_tokens": 1024}, "service_tier": "auto"})
                .as_object()
                .unwrap()
                .clone();
        req.max_tokens = Some(100);
        let v = body(&req, Purpose::CountTokens);
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["messages", "model", "system", "thinking", "tool_choice", "tools"]);
    }

    #[test]
    fn response_format_becomes_a_forced_json_tool() {
        let req = ChatRequest {
            messages: vec![user("List two colors")],
            response_format: Some(ResponseFormat::JsonSchema {
                name: "colors".into(),
                description: Some("Colors".into()),
                schema: json!({"properties": {"colors": {"type": "array"}}}),
                strict: true,
            }),
            ..ChatRequest::default()
        };
        let built = build(&req, &opts(Purpose::Send)).unwrap();
        assert!(built.json_mode);
        let v: Value = serde_json::from_slice(&built.bytes).unwrap();
        assert_eq!(
            v["tools"],
            json!([{"name": "json_tool_call", "description": "Colors",
                    "input_schema": {"type": "object", "properties": {"colors": {"type": "array"}}}}])
        );
        assert_eq!(v["tool_choice"], json!({"type": "tool", "name": "json_tool_call"}));

        let req = ChatRequest {
            messages: vec![user("Any JSON")],
            response_format: Some(ResponseFormat::JsonObject),
            extra: json!({"reasoning_effort": "low"}).as_object().unwrap().clone(),
            ..ChatRequest::default()
        };
        let v = body(&req, Purpose::Send);
        assert_eq!(
            v["tools"][0]["input_schema"],
            json!({"type": "object", "additionalProperties": true, "properties": {}})
        );
        // Thinking forbids a forced tool.
        assert_eq!(v["tool_choice"], json!({"type": "auto"}));
        assert_eq!(v["thinking"], json!({"type": "enabled", "budget_tokens": 1024}));
        assert_eq!(v["max_tokens"], 4096 + 1024);
    }

    #[test]
    fn tool_choice_without_tools_is_not_sent_and_max_tokens_is_kept() {
        let req = ChatRequest {
            messages: vec![user("hi")],
            max_tokens: Some(12),
            tool_choice: Some(ToolChoice::None),
            ..ChatRequest::default()
        };
        assert_eq!(
            body(&req, Purpose::Send),
            json!({"model": "claude-sonnet-4-6", "max_tokens": 12,
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
        );
    }

    #[test]
    fn configured_max_tokens_prefers_max_output_tokens() {
        let info = json!({"max_tokens": 8192, "max_output_tokens": 64000});
        assert_eq!(configured_max_tokens(info.as_object().unwrap()), Some(64000));
        let info = json!({"max_tokens": 8192});
        assert_eq!(configured_max_tokens(info.as_object().unwrap()), Some(8192));
        assert_eq!(configured_max_tokens(&Map::new()), None);
    }

    #[test]
    fn an_unsupported_openai_parameter_is_refused_before_anything_is_sent() {
        let req = ChatRequest {
            messages: vec![user("hi")],
            extra: json!({"seed": 1}).as_object().unwrap().clone(),
            ..ChatRequest::default()
        };
        let err = build(&req, &opts(Purpose::Send)).unwrap_err();
        assert!(err.message.contains("`seed`"), "{}", err.message);
        let o = Options { drop_params: true, ..opts(Purpose::Send) };
        let v: Value = serde_json::from_slice(&build(&req, &o).unwrap().bytes).unwrap();
        assert!(v.get("seed").is_none());
    }
}
