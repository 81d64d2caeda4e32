//! The one internal representation of a chat request, a response and a stream of events.
//!
//! Surfaces decode client wire formats into these types and encode them back; providers
//! translate them to one upstream. The shapes follow Anthropic Messages (both main upstreams
//! speak it) so the common path loses nothing. Wire structs never leave their surface or
//! provider module: only these types cross the boundary.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// Provider-side prompt caching marker, carried through untouched.
pub type CacheControl = Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    Image {
        source: ImageSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    ToolResult {
        tool_use_id: String,
        content: Vec<ContentBlock>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    Thinking {
        thinking: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    /// A block type the gateway does not interpret (`document`, `search_result`,
    /// `server_tool_use`, `web_search_tool_result` …), kept verbatim with its `type` and
    /// `cache_control` so an Anthropic-speaking upstream receives exactly what the client
    /// sent. Serializes as the object itself.
    #[serde(untagged)]
    Other(Map<String, Value>),
}

impl ContentBlock {
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into(), cache_control: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentBlock>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The input's JSON Schema; `Null` for an Anthropic server tool (`web_search_…`,
    /// `bash_…`), which has none and is named by its `type` in `extra`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub input_schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// Fields the gateway does not interpret (`type`, `defer_loading`, `strict`,
    /// `eager_input_streaming` …), in the request's [`Dialect`], kept so a provider that
    /// speaks it forwards them verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    Any {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    Tool {
        name: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    None,
}

/// Which client vocabulary [`ChatRequest::extra`] is written in, so a provider knows
/// whether an unknown field is something to forward or a parameter it cannot honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    #[default]
    OpenAi,
    Anthropic,
}

/// OpenAI's `response_format`: structured output the provider must produce.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    /// Any JSON object.
    JsonObject,
    JsonSchema {
        name: String,
        description: Option<String>,
        schema: Value,
        strict: bool,
    },
}

/// The key in [`ChatRequest::gateway`] holding a Responses API request as the client sent
/// it (less the gateway's own parameters, `metadata` kept), for an upstream that serves the
/// Responses API itself.
pub const RESPONSES_BODY: &str = "responses_body";

/// What the client asked for, in provider-neutral form.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// The name the client used: an alias, a deployment id, or a raw model name.
    pub model: String,
    pub system: Vec<ContentBlock>,
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub stop_sequences: Vec<String>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub stream: bool,
    /// Asked for the usage of a streamed response (OpenAI `stream_options.include_usage`).
    pub stream_usage: bool,
    pub user: Option<String>,
    pub response_format: Option<ResponseFormat>,
    /// Anthropic beta flags (`anthropic-beta`), forwarded to providers that take them.
    pub betas: Vec<String>,
    /// Fields the gateway does not interpret, kept so providers that understand them
    /// (and pass-through upstreams) can forward them.
    pub extra: Map<String, Value>,
    /// The vocabulary `extra` is in.
    pub dialect: Dialect,
    /// LiteLLM's per-request gateway parameters (`fallbacks`, `metadata`, `num_retries`,
    /// `mock_testing_*` …): for the router, never forwarded upstream.
    pub gateway: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    PauseTurn,
    Refusal,
    ContentFilter,
    ModelContextWindowExceeded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens not read from or written to the prompt cache (Anthropic's meaning).
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_input_tokens: u64,
    /// Tokens written to the prompt cache, whatever their lifetime.
    pub cache_creation_input_tokens: u64,
    /// Of `cache_creation_input_tokens`, those written for one hour (Anthropic's
    /// `cache_creation.ephemeral_1h_input_tokens`), which cost more than 5-minute writes.
    #[serde(default)]
    pub cache_creation_1h_input_tokens: u64,
}

impl Usage {
    /// Every input token, cached or not: what OpenAI calls `prompt_tokens`.
    pub fn total_input_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens
    }

    /// Cache writes with the default 5-minute lifetime.
    pub fn cache_creation_5m_input_tokens(&self) -> u64 {
        self.cache_creation_input_tokens.saturating_sub(self.cache_creation_1h_input_tokens)
    }

    /// Takes the counts a later report of the same answer gives (a stream's closing usage
    /// after its opening one): each count that is not zero replaces the earlier one.
    pub fn merge(&mut self, later: &Usage) {
        for (to, from) in [
            (&mut self.input_tokens, later.input_tokens),
            (&mut self.output_tokens, later.output_tokens),
            (&mut self.cache_read_input_tokens, later.cache_read_input_tokens),
            (&mut self.cache_creation_input_tokens, later.cache_creation_input_tokens),
            (&mut self.cache_creation_1h_input_tokens, later.cache_creation_1h_input_tokens),
        ] {
            if from > 0 {
                *to = from;
            }
        }
    }
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub id: String,
    /// The model id the upstream reports having used.
    pub model: String,
    pub content: Vec<ContentBlock>,
    pub stop_reason: Option<StopReason>,
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}

/// One event of a streamed answer. The sequence mirrors Anthropic's: `Start`, then per
/// content block `BlockStart`, deltas, `BlockStop`; then `Delta` with the stop reason and
/// cumulative usage; then `Stop`.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Start { id: String, model: String, usage: Usage },
    BlockStart { index: usize, block: ContentBlock },
    BlockDelta { index: usize, delta: BlockDelta },
    BlockStop { index: usize },
    Delta { stop_reason: Option<StopReason>, stop_sequence: Option<String>, usage: Usage },
    Stop,
    Ping,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BlockDelta {
    Text(String),
    InputJson(String),
    Thinking(String),
    Signature(String),
}
