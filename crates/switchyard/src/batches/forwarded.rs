//! A batch forwarded to Anthropic's own Message Batches API, as plain data: which deployment
//! it went through and what the upstream last said of it. Kept in the batch row (its
//! `upstream_id`, and `metadata`, which Anthropic batches have no other use for), so the
//! tables stay as they are.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{BatchRow, Counts, Status};

/// What the batch row's `metadata` holds for a forwarded batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarding {
    /// The `model_info.id` of the deployment whose API and key the batch went to.
    pub deployment: String,
    /// The upstream's `request_counts` as last read (while its results are not settled,
    /// the counts a client sees).
    #[serde(default)]
    pub counts: UpstreamCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamCounts {
    #[serde(default)]
    pub processing: i64,
    #[serde(default)]
    pub succeeded: i64,
    #[serde(default)]
    pub errored: i64,
    #[serde(default)]
    pub canceled: i64,
    #[serde(default)]
    pub expired: i64,
}

impl Forwarding {
    pub fn of(b: &BatchRow) -> Option<Self> {
        b.upstream_id.as_ref()?;
        b.metadata.as_ref().and_then(|m| serde_json::from_value(m.clone()).ok())
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The counts a client sees before the results are settled into the items: the
    /// upstream's, with the cost the items have so far.
    pub fn overlay(&self, counts: &mut Counts) {
        let c = self.counts;
        let (cost, unpriced) = (counts.cost, counts.unpriced);
        *counts = Counts {
            queued: c.processing,
            running: 0,
            succeeded: c.succeeded,
            errored: c.errored,
            canceled: c.canceled,
            expired: c.expired,
            cost,
            unpriced,
        };
    }
}

/// Anthropic's `MessageBatch` as the gateway reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UpstreamBatch {
    pub id: String,
    pub processing_status: String,
    #[serde(default)]
    pub request_counts: UpstreamCounts,
    pub created_at: Option<String>,
    pub ended_at: Option<String>,
    pub expires_at: Option<String>,
    pub cancel_initiated_at: Option<String>,
}

fn unix(t: Option<&String>) -> Option<i64> {
    t.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp())
}

impl UpstreamBatch {
    pub fn ended(&self) -> bool {
        self.processing_status == "ended"
    }

    /// The batch's status in the store's (OpenAI's) words.
    pub fn status(&self) -> Status {
        match self.processing_status.as_str() {
            "ended" if self.cancel_initiated_at.is_some() => Status::Cancelled,
            "ended" if self.request_counts.expired > 0 => Status::Expired,
            "ended" => Status::Completed,
            "canceling" => Status::Cancelling,
            _ => Status::InProgress,
        }
    }

    pub fn ended_at(&self) -> Option<i64> {
        unix(self.ended_at.as_ref())
    }

    pub fn expires_at(&self) -> Option<i64> {
        unix(self.expires_at.as_ref())
    }

    pub fn cancel_initiated_at(&self) -> Option<i64> {
        unix(self.cancel_initiated_at.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(status: &str, cancel: Option<&str>, expired: i64) -> UpstreamBatch {
        UpstreamBatch {
            id: "msgbatch_01".into(),
            processing_status: status.into(),
            request_counts: UpstreamCounts { succeeded: 2, expired, ..UpstreamCounts::default() },
            created_at: Some("2025-01-01T00:00:00Z".into()),
            ended_at: Some("2025-01-01T00:10:00Z".into()),
            expires_at: Some("2025-01-02T00:00:00Z".into()),
            cancel_initiated_at: cancel.map(str::to_owned),
        }
    }

    #[test]
    fn the_upstream_status_maps_onto_the_stores() {
        assert_eq!(upstream("in_progress", None, 0).status(), Status::InProgress);
        assert_eq!(
            upstream("canceling", Some("2025-01-01T00:01:00Z"), 0).status(),
            Status::Cancelling
        );
        assert_eq!(upstream("ended", Some("2025-01-01T00:01:00Z"), 0).status(), Status::Cancelled);
        assert_eq!(upstream("ended", None, 1).status(), Status::Expired);
        let done = upstream("ended", None, 0);
        assert_eq!(done.status(), Status::Completed);
        assert_eq!(done.ended_at(), Some(1_735_690_200));
        assert_eq!(done.expires_at(), Some(1_735_776_000));
    }

    #[test]
    fn forwarding_survives_the_metadata_column() {
        let f = Forwarding {
            deployment: "anthropic-1".into(),
            counts: UpstreamCounts { processing: 3, ..UpstreamCounts::default() },
        };
        let back: Forwarding = serde_json::from_value(f.to_json()).unwrap();
        assert_eq!(back, f);
        let mut counts = Counts { cost: rust_decimal::Decimal::ONE, ..Counts::default() };
        back.overlay(&mut counts);
        assert_eq!((counts.queued, counts.cost), (3, rust_decimal::Decimal::ONE));
    }
}
