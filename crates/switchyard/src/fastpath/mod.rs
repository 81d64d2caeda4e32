//! The same-dialect fast path: when a client speaks the dialect of the deployment that
//! serves it (Anthropic Messages to an Anthropic deployment, OpenAI chat completions to an
//! OpenAI-compatible one), the client's body goes upstream with only the edits the gateway
//! must make, and the answer comes back as the upstream's bytes, read only for what the
//! gateway needs (usage, the commit point, errors).
//!
//! The canonical request is still decoded — routing, key rules, limits, the ledger and a
//! failover to a deployment in another dialect read it — but neither re-encoded for the
//! upstream nor rebuilt from the answer. Plain data here, and how any dialect's stream is
//! relayed (`stream`); the provider that recognises its own dialect does the edits and reads
//! its own events (`provider::{anthropic,openai}::relay`).

pub mod body;
pub mod sse;
pub mod stream;

use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

pub use self::body::RawBody;
use crate::canonical::{ChatResponse, StopReason, Usage};
use crate::classify::UpstreamError;
use crate::provider::EventStream;

/// A JSON answer as the upstream sent it, with what the gateway reads from it.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub body: Bytes,
    pub id: String,
    pub stop_reason: Option<StopReason>,
    pub usage: Usage,
}

/// A piece of a relayed stream: whole upstream events, and what they reported.
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    pub bytes: Bytes,
    /// Usage these events reported, merged as canonical stream usage merges.
    pub usage: Option<Usage>,
    /// The answer's last event is in this chunk: it ended normally.
    pub complete: bool,
}

/// A relayed stream. An `Err` item ends it: the upstream failed after the commit point,
/// and the client's surface writes the error event in its own format.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, UpstreamError>> + Send>>;

/// A JSON answer on the fast path: relayed, or translated when the attempt that served went
/// to a deployment in another dialect.
pub enum Answer {
    Relayed(RawAnswer),
    Translated(ChatResponse),
}

impl Answer {
    pub fn usage(&self) -> Usage {
        match self {
            Self::Relayed(raw) => raw.usage,
            Self::Translated(resp) => resp.usage,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Self::Relayed(raw) => &raw.id,
            Self::Translated(resp) => &resp.id,
        }
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        match self {
            Self::Relayed(raw) => raw.stop_reason,
            Self::Translated(resp) => resp.stop_reason,
        }
    }
}

/// A streamed answer on the fast path, relayed or translated as [`Answer`].
pub enum AnswerStream {
    Relayed(ChunkStream),
    Translated(EventStream),
}
