//! OpenAI chat completions request wire structs, deserialized straight from the body.
//!
//! Fields that accept several JSON shapes (content, stop, tool_choice) have hand-written
//! visitors so a wrong type reads "expected a string or an array of content parts", not
//! serde's "did not match any variant". Never leaves the OpenAI surface.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::{Map, Value};

#[derive(Deserialize)]
pub(super) struct WireRequest {
    pub model: String,
    pub messages: Vec<WireMessage>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// Not OpenAI's, but LiteLLM passes it through to Anthropic.
    pub top_k: Option<u32>,
    pub stop: Option<WireStop>,
    pub stream: Option<bool>,
    pub stream_options: Option<WireStreamOptions>,
    pub tools: Option<Vec<WireTool>>,
    pub tool_choice: Option<WireToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub user: Option<String>,
    /// Everything else (response_format, n, seed, metadata, fallbacks …), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Deserialize)]
pub(super) struct WireStreamOptions {
    pub include_usage: Option<bool>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum WireRole {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

#[derive(Deserialize)]
pub(super) struct WireMessage {
    pub role: WireRole,
    pub content: Option<WireContent>,
    pub tool_calls: Option<Vec<WireToolCall>>,
    pub tool_call_id: Option<String>,
    /// LiteLLM's message-level prompt caching marker.
    pub cache_control: Option<Value>,
}

/// `content`: a string or an array of parts.
pub(super) enum WireContent {
    Text(String),
    Parts(Vec<WirePart>),
}

#[derive(Deserialize)]
pub(super) struct WirePart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub refusal: Option<String>,
    pub image_url: Option<WireImageUrl>,
    pub cache_control: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct WireImageUrl {
    pub url: String,
}

#[derive(Deserialize)]
pub(super) struct WireToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub function: WireFunctionCall,
}

#[derive(Deserialize)]
pub(super) struct WireFunctionCall {
    pub name: String,
    /// A JSON string per the spec; an object is tolerated (some clients send one).
    pub arguments: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct WireTool {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: Option<WireFunctionDef>,
    pub cache_control: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct WireFunctionDef {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Option<Value>,
}

pub(super) enum WireStop {
    One(String),
    Many(Vec<String>),
}

pub(super) enum WireToolChoice {
    Auto,
    Required,
    None,
    Named(WireNamedChoice),
}

#[derive(Deserialize)]
pub(super) struct WireNamedChoice {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: Option<WireFunctionName>,
}

#[derive(Deserialize)]
pub(super) struct WireFunctionName {
    pub name: String,
}

impl<'de> Deserialize<'de> for WireContent {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireContent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(WireContent::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(WireContent::Text(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(WireContent::Parts(parts))
            }
        }
        de.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for WireStop {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireStop;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(WireStop::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element()? {
                    all.push(s);
                }
                Ok(WireStop::Many(all))
            }
        }
        de.deserialize_any(V)
    }
}

const TOOL_CHOICE_EXPECTED: &str =
    r#""auto", "required", "none" or {"type":"function","function":{"name":...}}"#;

impl<'de> Deserialize<'de> for WireToolChoice {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireToolChoice;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(TOOL_CHOICE_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "auto" => Ok(WireToolChoice::Auto),
                    "required" => Ok(WireToolChoice::Required),
                    "none" => Ok(WireToolChoice::None),
                    _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                WireNamedChoice::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(WireToolChoice::Named)
            }
        }
        de.deserialize_any(V)
    }
}
