//! One ledger row: what one request was, who sent it, what it used and cost, how it ended.
//! A plain struct the request path fills; it never holds a secret (the key is a sha256 hash,
//! the api base has no credentials or query).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical::Usage;

/// LiteLLM's `call_type` for `POST /v1/chat/completions`.
pub const CALL_CHAT: &str = "acompletion";
/// LiteLLM's `call_type` for `POST /v1/messages`.
pub const CALL_MESSAGES: &str = "anthropic_messages";
/// LiteLLM's `call_type` for its pass-through routes (`/anthropic/…`, `/bedrock/…`).
pub const CALL_PASS_THROUGH: &str = "pass_through_endpoint";
/// LiteLLM's `call_type` for `POST /v1/responses`.
pub const CALL_RESPONSES: &str = "aresponses";
/// LiteLLM's `call_type` for `POST /v1/embeddings` (its `CallTypes.aembedding`).
pub const CALL_EMBEDDING: &str = "aembedding";
/// The `call_type` of one request of a batch the gateway ran: LiteLLM records batch spend
/// under `aretrieve_batch` (the call that finds a batch's results and cost).
pub const CALL_BATCH: &str = "aretrieve_batch";

/// How a request ended, in LiteLLM's words (`status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    #[default]
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One request in the ledger. Field names follow LiteLLM's `"LiteLLM_SpendLogs"` columns
/// where one exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Record {
    /// The gateway's request id (`x-request-id`): the primary key, so writes are idempotent.
    pub request_id: String,
    /// [`CALL_CHAT`] or [`CALL_MESSAGES`].
    pub call_type: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    /// When the first token was known (a stream's first event; a JSON answer's end).
    pub first_token_time: Option<DateTime<Utc>>,
    pub duration_ms: u64,
    /// The alias the request named (`model_group`).
    pub model_group: String,
    /// The deployment id that served, or the last one tried (`model_id`).
    pub model_id: Option<String>,
    /// `custom_llm_provider`: `anthropic`, `bedrock`, `openai`, …
    pub provider: Option<String>,
    /// The upstream model id.
    pub model: String,
    /// Scheme, host, port and path only.
    pub api_base: Option<String>,
    /// sha256 hex of the key the client presented ([`crate::attribution::hash_key`]); empty
    /// without one.
    pub api_key: String,
    pub key_alias: Option<String>,
    /// The key owner's user id (`"user"`).
    pub user: Option<String>,
    /// The end user the request named (OpenAI `user`, Anthropic `metadata.user_id`).
    pub end_user: Option<String>,
    pub team_id: Option<String>,
    pub tags: Vec<String>,
    pub session_id: Option<String>,
    pub tokens: Tokens,
    /// USD; `None` when unknown (an unpriced model, a failure before any usage is zero
    /// rather than unknown: see the request path).
    #[serde(with = "rust_decimal::serde::str_option")]
    pub spend: Option<Decimal>,
    pub status: Outcome,
    /// The failure's class (`rate_limit`, `auth`, …) when it failed.
    pub error_class: Option<String>,
    pub cache_hit: bool,
    /// The provider's usage as reported, when it reported one: written as
    /// `metadata.usage_object` by the writer (nothing JSON is built on the request path).
    #[serde(default)]
    pub usage: Option<Usage>,
    /// A stream that ended before its usage arrived.
    #[serde(default)]
    pub stream_incomplete: bool,
    /// The gateway's own time in the request (everything but the serving upstream call), in
    /// milliseconds: LiteLLM's `metadata.litellm_overhead_time_ms`. `None` when no upstream
    /// served (a cache hit, a failure).
    #[serde(default)]
    pub overhead_ms: Option<f64>,
    /// What else goes into LiteLLM's `metadata` JSON: error information and attempts, on
    /// the paths where something failed.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Tokens {
    /// Every input token, cache reads and writes included (`prompt_tokens`).
    pub prompt: u64,
    pub completion: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Tokens {
    pub fn total(&self) -> u64 {
        self.prompt + self.completion
    }
}

/// `api_base` without credentials, query or fragment: `https://user:pw@h/p?key=x` →
/// `https://h/p`.
pub fn clean_api_base(base: &str) -> String {
    // The usual base has nothing to remove: copied as it is, without taking it apart.
    if !base.contains(['@', '?', '#']) {
        return base.to_owned();
    }
    let base = base.split(['?', '#']).next().unwrap_or_default();
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => base.rsplit_once('@').map_or(base, |(_, host)| host).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_bases_lose_credentials_and_queries() {
        assert_eq!(
            clean_api_base("https://u:p@h.example:8443/v1?key=s#x"),
            "https://h.example:8443/v1"
        );
        assert_eq!(clean_api_base("http://127.0.0.1:4000"), "http://127.0.0.1:4000");
        assert_eq!(clean_api_base("h/v1?api-key=1"), "h/v1");
    }

    #[test]
    fn a_record_survives_the_spool_format_with_unknown_spend() {
        let record = Record { request_id: "r".into(), spend: None, ..Record::default() };
        let line = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), record);
        let priced = Record { spend: Some(Decimal::new(123, 6)), ..record };
        let line = serde_json::to_string(&priced).unwrap();
        assert!(line.contains("\"0.000123\""), "{line}");
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), priced);
    }
}
