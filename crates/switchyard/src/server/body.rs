//! Reads a request body up to the configured limit, answering 413 (not a truncated or
//! hung request) when a client sends more.

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::classify::{ApiError, Diagnosis, ErrorKind};

pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared
        && len > limit as u64
    {
        return Err(too_large(Some(len), limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(None, limit)),
        Err(err) => {
            Err(ApiError::invalid_request(format!("Could not read the request body: {err}."), None))
        }
    }
}

fn too_large(size: Option<u64>, limit: usize) -> ApiError {
    let size = size.map(|s| format!(" ({s} bytes)")).unwrap_or_default();
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!("The request body{size} is larger than the gateway's limit of {limit} bytes."),
    )
    .with_diagnosis(Diagnosis::new(
        "GW-06",
        "",
        "Send a smaller request, or raise `general_settings.max_request_body_size_mb` in the \
         config.",
    ))
}
