//! What the batch store holds, as plain data: uploaded files, batches (OpenAI's and
//! Anthropic's, one lifecycle), and one item per request line with its state.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

/// Which API a batch was created through: its objects, results and errors are in that API's
/// shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `POST /v1/batches` over a file from `POST /v1/files`.
    OpenAi,
    /// `POST /v1/messages/batches`.
    Anthropic,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }

    pub fn parse(text: &str) -> Self {
        if text == "anthropic" { Self::Anthropic } else { Self::OpenAi }
    }
}

/// A batch's status in OpenAI's words; Anthropic's `processing_status` is derived from it
/// ([`Status::anthropic`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Validating,
    InProgress,
    Finalizing,
    Completed,
    Failed,
    Expired,
    Cancelling,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validating => "validating",
            Self::InProgress => "in_progress",
            Self::Finalizing => "finalizing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Cancelling => "cancelling",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "validating" => Self::Validating,
            "in_progress" => Self::InProgress,
            "finalizing" => Self::Finalizing,
            "completed" => Self::Completed,
            "expired" => Self::Expired,
            "cancelling" => Self::Cancelling,
            "cancelled" => Self::Cancelled,
            _ => Self::Failed,
        }
    }

    /// Items may still run or be waiting.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Validating | Self::InProgress | Self::Finalizing | Self::Cancelling)
    }

    /// Anthropic's `processing_status`.
    pub fn anthropic(self) -> &'static str {
        match self {
            Self::Cancelling => "canceling",
            s if s.is_open() => "in_progress",
            _ => "ended",
        }
    }
}

/// One request line's state. `queued` → `running` (claimed by one runner) → one of the
/// final states; `queued` → `canceled`/`expired` without running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    Queued,
    Running,
    Succeeded,
    Errored,
    Canceled,
    Expired,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Errored => "errored",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "canceled" => Self::Canceled,
            "expired" => Self::Expired,
            _ => Self::Errored,
        }
    }
}

/// An uploaded file (or a batch's output or error file). Its content is read separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub id: String,
    /// The sha256 hex of the virtual key that uploaded it; empty for the master key.
    pub owner: String,
    pub filename: String,
    /// `batch` for uploads, `batch_output` for what a batch wrote.
    pub purpose: String,
    pub bytes: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// How many of a batch's items are in each state, and what the finished ones cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub queued: i64,
    pub running: i64,
    pub succeeded: i64,
    pub errored: i64,
    pub canceled: i64,
    pub expired: i64,
    /// USD, exact: the sum of the items' known costs.
    pub cost: Decimal,
    /// Items that were answered by a deployment without a price (their cost is unknown).
    pub unpriced: i64,
}

impl Counts {
    pub fn total(&self) -> i64 {
        self.queued + self.running + self.succeeded + self.errored + self.canceled + self.expired
    }

    /// Items not finished yet.
    pub fn processing(&self) -> i64 {
        self.queued + self.running
    }

    pub fn add(&mut self, state: ItemState, n: i64) {
        match state {
            ItemState::Queued => self.queued += n,
            ItemState::Running => self.running += n,
            ItemState::Succeeded => self.succeeded += n,
            ItemState::Errored => self.errored += n,
            ItemState::Canceled => self.canceled += n,
            ItemState::Expired => self.expired += n,
        }
    }

    pub fn add_cost(&mut self, cost: Option<&str>) {
        match cost.and_then(|c| Decimal::from_str(c).ok()) {
            Some(c) => self.cost += c,
            None => self.unpriced += 1,
        }
    }
}

/// One batch. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub id: String,
    pub surface: Surface,
    /// The sha256 hex of the virtual key that created it; empty for the master key.
    pub owner: String,
    /// The key's alias when it had one, for `switchyard batches list`.
    pub owner_alias: Option<String>,
    /// `/v1/chat/completions`, `/v1/responses` or `/v1/messages`.
    pub endpoint: String,
    pub input_file_id: Option<String>,
    pub completion_window: String,
    pub status: Status,
    pub metadata: Option<Value>,
    /// Why a batch failed validation: OpenAI's `errors.data` entries.
    pub errors: Option<Value>,
    pub created_at: i64,
    pub in_progress_at: Option<i64>,
    pub finalizing_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub expired_at: Option<i64>,
    pub cancelling_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    pub expires_at: i64,
    pub output_file_id: Option<String>,
    pub error_file_id: Option<String>,
    /// A batch forwarded to a provider's own Batches API (Anthropic's): its id there. Empty
    /// for the batches the gateway runs itself.
    pub upstream_id: Option<String>,
    pub counts: Counts,
}

impl BatchRow {
    /// A batch created `now`, in progress, with nothing run yet.
    pub fn new(id: String, surface: Surface, endpoint: &str, now: i64, window_secs: i64) -> Self {
        Self {
            id,
            surface,
            owner: String::new(),
            owner_alias: None,
            endpoint: endpoint.to_owned(),
            input_file_id: None,
            completion_window: "24h".to_owned(),
            status: Status::InProgress,
            metadata: None,
            errors: None,
            created_at: now,
            in_progress_at: Some(now),
            finalizing_at: None,
            completed_at: None,
            failed_at: None,
            expired_at: None,
            cancelling_at: None,
            cancelled_at: None,
            expires_at: now + window_secs,
            output_file_id: None,
            error_file_id: None,
            upstream_id: None,
            counts: Counts::default(),
        }
    }

    /// Runs at a provider's own Batches API rather than in the gateway.
    pub fn is_forwarded(&self) -> bool {
        self.upstream_id.is_some()
    }

    /// Where the batch runs: `gateway`, or `anthropic` for a forwarded one.
    pub fn runs_at(&self) -> &'static str {
        if self.is_forwarded() { "anthropic" } else { "gateway" }
    }
}

/// A request line as stored when the batch is created.
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    pub line: i64,
    pub custom_id: String,
    /// The request body (OpenAI's `body`, Anthropic's `params`), as JSON text.
    pub body: String,
}

/// An item a runner claimed: it runs it and reports a [`Finished`].
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub batch_id: String,
    pub line: i64,
    pub custom_id: String,
    pub body: String,
    /// Runs so far, this one included.
    pub attempts: i64,
}

/// A finished item: its answer (or error) in the batch's surface shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub state: ItemState,
    pub status_code: i64,
    /// The response body (an answer or an error body) as JSON text.
    pub result: String,
    /// USD, exact; `None` when unknown or nothing was served.
    pub cost: Option<Decimal>,
    /// The item's ledger row (JSON), kept until the ledger confirmed it.
    pub ledger: Option<String>,
}

/// A finished item as results are rendered from it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemResult {
    pub line: i64,
    pub custom_id: String,
    pub state: ItemState,
    pub status_code: Option<i64>,
    pub result: Option<String>,
    pub request_id: String,
}

/// The request id of one item: the same on every run, so its ledger row is written once.
pub fn request_id(batch_id: &str, line: i64) -> String {
    format!("{batch_id}-{line}")
}

/// `prefix` and 24 random hex digits (96 bits from the OS).
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = fastrand::u128(..).to_le_bytes()[..12].try_into().unwrap_or([0; 12]);
    }
    let mut out = String::with_capacity(prefix.len() + 24);
    out.push_str(prefix);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Unix milliseconds now (claims and their heartbeats).
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_sees_three_processing_states() {
        assert_eq!(Status::InProgress.anthropic(), "in_progress");
        assert_eq!(Status::Finalizing.anthropic(), "in_progress");
        assert_eq!(Status::Cancelling.anthropic(), "canceling");
        for s in [Status::Completed, Status::Cancelled, Status::Failed, Status::Expired] {
            assert_eq!(s.anthropic(), "ended");
            assert_eq!(Status::parse(s.as_str()), s);
        }
    }

    #[test]
    fn ids_carry_their_prefix_and_differ() {
        let a = new_id("batch_");
        assert!(a.starts_with("batch_") && a.len() == 30, "{a}");
        assert_ne!(a, new_id("batch_"));
    }

    #[test]
    fn unknown_costs_are_counted_apart() {
        let mut c = Counts::default();
        c.add_cost(Some("0.0015"));
        c.add_cost(Some("0.0005"));
        c.add_cost(None);
        assert_eq!(c.cost, Decimal::from_str("0.002").unwrap());
        assert_eq!(c.unpriced, 1);
    }
}
