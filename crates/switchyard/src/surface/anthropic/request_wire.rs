//! Anthropic Messages request wire structs, deserialized straight from the body.
//!
//! Content blocks are read as JSON objects here and typed in `request.rs`, so a block type
//! the gateway does not know is kept verbatim instead of rejected. Fields that accept
//! several JSON shapes have hand-written visitors so a wrong type reads "expected a string
//! or an array of content blocks", not serde's "did not match any variant". Never leaves
//! the Anthropic surface.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::canonical::{Role, ToolChoice};

/// One JSON object: a content block or a tool definition before it is typed.
pub(super) type Object = Map<String, Value>;

#[derive(Deserialize)]
pub(super) struct WireRequest {
    /// Required by `/v1/messages` (checked after decoding); InvokeModel names it in its path.
    pub model: Option<String>,
    pub messages: Vec<WireMessage>,
    /// Required by `/v1/messages`, not by `count_tokens`: checked after decoding.
    pub max_tokens: Option<u32>,
    pub system: Option<StringOrBlocks>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub stop_sequences: Option<Vec<String>>,
    pub stream: Option<bool>,
    pub metadata: Option<Object>,
    pub tools: Option<Vec<Object>>,
    /// The same shape as Anthropic's, so it is read straight into the canonical type.
    pub tool_choice: Option<ToolChoice>,
    /// Everything else (thinking, service_tier, container, output_config, LiteLLM's
    /// gateway parameters …), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Deserialize)]
pub(super) struct WireMessage {
    pub role: WireRole,
    pub content: StringOrBlocks,
}

/// A message's role as clients send it. The Messages API's own roles are `user` and
/// `assistant`; Claude Code (2.1.197 and later, at least) also sends `system` messages
/// inside `messages`, which the gateway folds into the system prompt in order.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum WireRole {
    User,
    Assistant,
    System,
}

impl WireRole {
    /// The conversation role; `None` for a system message.
    pub fn conversation(self) -> Option<Role> {
        match self {
            WireRole::User => Some(Role::User),
            WireRole::Assistant => Some(Role::Assistant),
            WireRole::System => None,
        }
    }
}

/// `content`, `system` and a tool result's `content`: a string or an array of blocks.
#[derive(Debug)]
pub(super) enum StringOrBlocks {
    Text(String),
    Blocks(Vec<Object>),
}

impl<'de> Deserialize<'de> for StringOrBlocks {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringOrBlocks;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content blocks")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StringOrBlocks::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(StringOrBlocks::Text(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(block) = seq.next_element()? {
                    blocks.push(block);
                }
                Ok(StringOrBlocks::Blocks(blocks))
            }
        }
        de.deserialize_any(V)
    }
}

/// The typed fields of each block type the canonical model interprets. Read from the
/// block's own JSON object (by value, so large strings such as image data move, not copy).
#[derive(Deserialize)]
pub(super) struct WireText {
    pub text: String,
    pub cache_control: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct WireImage {
    pub source: WireImageSource,
    pub cache_control: Option<Value>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum WireImageSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

#[derive(Deserialize)]
pub(super) struct WireToolUse {
    pub id: String,
    pub name: String,
    pub input: Value,
    pub cache_control: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct WireToolResult {
    pub tool_use_id: String,
    pub content: Option<StringOrBlocks>,
    #[serde(default)]
    pub is_error: Option<bool>,
    pub cache_control: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct WireThinking {
    pub thinking: String,
    pub signature: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct WireRedactedThinking {
    pub data: String,
}

#[derive(Deserialize)]
pub(super) struct WireTool {
    pub name: String,
    pub description: Option<String>,
    pub input_schema: Value,
    pub cache_control: Option<Value>,
}
