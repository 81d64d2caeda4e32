//! The Anthropic Messages surface: decodes `POST /v1/messages` and
//! `/v1/messages/count_tokens` bodies into canonical requests and encodes canonical
//! responses, SSE streams and errors back exactly as the Anthropic API sends them, so the
//! Anthropic SDKs and Claude Code work through the gateway. Wire structs stay private.
//!
//! **Invariant:** never imports `provider` or `router`; it sees only `canonical`, `fastpath`'s plain data and
//! `classify`. Never rewrites what it does not interpret: `cache_control`, unknown block
//! types and unknown top-level fields are carried through verbatim.

mod blocks;
mod error;
mod request;
mod request_wire;
mod response;
pub(crate) mod stream;

pub use error::{error_body, error_response};
pub use request::{
    API_KEY_HEADER, BETA_HEADER, decode_count_tokens_request, decode_messages_as,
    decode_messages_request,
};
pub use response::{encode_count_tokens, encode_response};
pub use stream::{encode_relayed, encode_stream};

use bytes::Bytes;
use serde::Serialize;

/// Serialized JSON. Our wire structs cannot fail to serialize (string keys only); should
/// one ever, the client gets an Anthropic-shaped internal error rather than an empty body.
fn json_bytes<T: Serialize>(value: &T) -> Bytes {
    serde_json::to_vec(value).map_or_else(|_| Bytes::from_static(ENCODE_FAILED), Bytes::from)
}

const ENCODE_FAILED: &[u8] = br#"{"type":"error","error":{"type":"api_error","message":"Switchyard could not encode this response."}}"#;
