//! The OpenAI chat completions surface: decodes `POST /v1/chat/completions` bodies into
//! canonical requests and encodes canonical responses, streams and errors back in OpenAI's
//! wire shape (and, in `embeddings`, the same for `POST /v1/embeddings`). Wire structs stay
//! private to this module.
//!
//! **Invariant:** never imports `provider` or `router`; it sees only `canonical` and
//! `classify`, so any upstream can sit behind it.

mod embeddings;
mod error;
mod messages;
mod request;
mod request_wire;
mod response;
mod stream;

pub use embeddings::{EncodingFormat, decode_embedding_request, encode_embeddings};
pub use error::{error_body, error_response};
pub(crate) use messages::image_source;
pub use request::decode_chat_request;
pub(crate) use request::split_gateway_params;
pub use response::encode_response;
pub use stream::{encode_relayed, encode_stream};

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;

/// Seconds since the Unix epoch, OpenAI's `created`. A clock before 1970 reads as 0.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Serialized JSON. Our wire structs cannot fail to serialize (string keys only); should
/// one ever, the client gets an OpenAI-shaped internal error rather than an empty body.
fn json_bytes<T: Serialize>(value: &T) -> Bytes {
    serde_json::to_vec(value).map_or_else(|_| Bytes::from_static(ENCODE_FAILED), Bytes::from)
}

const ENCODE_FAILED: &[u8] = br#"{"error":{"message":"Switchyard could not encode this response.","type":"api_error","param":null,"code":"internal"}}"#;
