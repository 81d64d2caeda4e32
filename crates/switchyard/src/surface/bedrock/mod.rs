//! Bedrock's InvokeModel surface for Anthropic models, as clients that speak Bedrock (Claude
//! Code with `CLAUDE_CODE_USE_BEDROCK=1`, the `AnthropicBedrock` SDKs) call it on
//! `/bedrock/model/{modelId}/invoke` and `…/invoke-with-response-stream`: the body is the
//! Anthropic Messages body with `anthropic_version` and no `model`; the answer is the Messages
//! JSON, or the Messages stream events each base64-wrapped in an AWS event-stream `chunk`;
//! errors are `{"message": …}` with `x-amzn-errortype`.
//!
//! **Invariant:** never imports `provider` or `router`, like every surface. The events are the
//! Anthropic surface's own (`anthropic::stream`), only framed differently.

mod error;
mod request;
mod stream;

pub use error::{error_response, exception_name};
pub use request::decode_invoke;
pub use stream::encode_stream;

use axum::body::Body;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;

use crate::canonical::ChatResponse;

/// The InvokeModel answer: the Messages JSON, with the token counts in Bedrock's headers.
pub fn encode_response(resp: &ChatResponse) -> Response {
    let mut response = Response::new(Body::from(super::anthropic::encode_response(resp)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("x-amzn-bedrock-input-token-count", resp.usage.total_input_tokens().into());
    headers.insert("x-amzn-bedrock-output-token-count", resp.usage.output_tokens.into());
    response
}
