//! The OpenAI Responses surface (`POST /v1/responses`): decodes a Responses request into a
//! canonical request plus the settings its response object repeats, and encodes canonical
//! answers and streams as Response objects and Responses SSE events. Errors use OpenAI's
//! shape (`surface::openai::error_response`), as the API does.
//!
//! **Invariant:** never imports `provider` or `router`; it sees only `canonical` and
//! `classify`.

mod items;
mod request;
mod response;
mod stream;

pub use items::{OutputIds, output_items, prepend};
pub use request::{Decoded, Echo, decode_responses_request};
pub use response::{encode_response, failed_code, new_id, response_object};
pub use stream::encode_stream;

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the Response's `created_at`.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
