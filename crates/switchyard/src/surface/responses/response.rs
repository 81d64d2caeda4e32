//! The Response object: built from a canonical answer and the request's [`Echo`].
//!
//! `output_text` is not a wire field (the SDKs compute it from the `output` messages).

use serde_json::{Value, json};

use super::items::{OutputIds, output_items};
use super::request::Echo;
use crate::canonical::{ChatResponse, StopReason, Usage};
use crate::classify::{ApiError, ErrorKind};

/// A fresh response id, `resp_` and 32 hex digits.
pub fn new_id() -> String {
    format!("resp_{:032x}", fastrand::u128(..))
}

/// How a Response ends, and why when it is not `completed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    Incomplete,
    Failed,
}

impl Status {
    pub fn of(stop: Option<StopReason>) -> Self {
        match stop {
            Some(StopReason::MaxTokens | StopReason::ModelContextWindowExceeded) => {
                Self::Incomplete
            }
            Some(StopReason::ContentFilter | StopReason::Refusal) => Self::Incomplete,
            _ => Self::Completed,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Incomplete => "incomplete",
            Self::Failed => "failed",
        }
    }
}

/// Everything of a Response that is not its request's echo.
pub struct Outcome<'a> {
    pub id: &'a str,
    pub created_at: u64,
    pub model: &'a str,
    pub status: Status,
    pub stop: Option<StopReason>,
    pub output: Vec<Value>,
    pub usage: Option<&'a Usage>,
    pub error: Option<&'a ApiError>,
}

/// The Response object.
pub fn response_object(echo: &Echo, outcome: Outcome<'_>) -> Value {
    let incomplete = match (outcome.status, outcome.stop) {
        (Status::Incomplete, Some(StopReason::ContentFilter | StopReason::Refusal)) => {
            json!({"reason": "content_filter"})
        }
        (Status::Incomplete, _) => json!({"reason": "max_output_tokens"}),
        _ => Value::Null,
    };
    let error = outcome.error.map_or(
        Value::Null,
        |err| json!({"code": failed_code(err.kind), "message": err.full_message()}),
    );
    json!({
        "id": outcome.id,
        "object": "response",
        "created_at": outcome.created_at,
        "status": outcome.status.as_str(),
        "background": false,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": echo.instructions,
        "max_output_tokens": echo.max_output_tokens,
        "model": outcome.model,
        "output": outcome.output,
        "parallel_tool_calls": echo.parallel_tool_calls,
        "previous_response_id": echo.previous_response_id,
        "reasoning": echo.reasoning,
        "store": echo.store,
        "temperature": echo.temperature,
        "text": echo.text,
        "tool_choice": echo.tool_choice,
        "tools": echo.tools,
        "top_p": echo.top_p,
        "truncation": "disabled",
        "usage": outcome.usage.map_or(Value::Null, usage),
        "user": echo.user,
        "metadata": echo.metadata,
    })
}

/// A complete answer as a Response object.
pub fn encode_response(id: &str, created_at: u64, echo: &Echo, answer: &ChatResponse) -> Value {
    let ids = OutputIds::for_response(id);
    response_object(
        echo,
        Outcome {
            id,
            created_at,
            model: &answer.model,
            status: Status::of(answer.stop_reason),
            stop: answer.stop_reason,
            output: output_items(&answer.content, &ids, echo),
            usage: Some(&answer.usage),
            error: None,
        },
    )
}

/// The Responses usage object. Anthropic does not count thinking apart from the answer, so
/// `reasoning_tokens` is 0 (they are in `output_tokens`).
fn usage(u: &Usage) -> Value {
    let input = u.total_input_tokens();
    json!({
        "input_tokens": input,
        "input_tokens_details": {
            "cached_tokens": u.cache_read_input_tokens,
            "cache_write_tokens": u.cache_creation_input_tokens,
        },
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input + u.output_tokens,
    })
}

/// The Responses API's `error.code` of a failed Response (clients such as Codex CLI act on
/// `context_length_exceeded`, `rate_limit_exceeded` and `insufficient_quota`).
pub fn failed_code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::RateLimited => "rate_limit_exceeded",
        ErrorKind::ContextWindow => "context_length_exceeded",
        ErrorKind::Billing | ErrorKind::BudgetExceeded => "insufficient_quota",
        ErrorKind::InvalidRequest | ErrorKind::ContentPolicy | ErrorKind::PayloadTooLarge => {
            "invalid_prompt"
        }
        _ => "server_error",
    }
}
