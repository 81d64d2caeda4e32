//! Embeddings, for every emulation that serves them: OpenAI's `POST /v1/embeddings` (and
//! `/embeddings`) here, Bedrock's Titan and Cohere InvokeModel bodies in `aws/embed.rs`.
//!
//! Vectors are derived from the input alone ([`embedding_of`]), so a test can say which
//! vector belongs to which input; the scripted reply decides only success, error, delay and
//! faults (a JSON body cut in two, dropped or held), as for chat.

use axum::body::Body as HttpBody;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::faults::{self, Plan};
use crate::openai::{JSON, check_key_and_model, error, error_response, respond};
use crate::reply::{Body, Faults, Message};
use crate::{Call, Shared};

/// The vector the mock returns for `text`: component 0 is the text's length in characters
/// (so an SDK test can tell inputs apart without this function), the others come from an
/// FNV-1a hash of the text, each a multiple of 1/1024 in [-1, 1), exact in any float
/// encoding.
pub fn embedding_of(text: &str, dimensions: usize) -> Vec<f32> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut out = Vec::with_capacity(dimensions);
    if dimensions > 0 {
        out.push(text.chars().count() as f32);
    }
    for _ in 1..dimensions {
        // xorshift: a cheap, deterministic sequence from the text's hash.
        hash ^= hash << 13;
        hash ^= hash >> 7;
        hash ^= hash << 17;
        out.push((hash % 2048) as f32 / 1024.0 - 1.0);
    }
    out
}

/// The mock's token count of one text: a token per started 4 bytes, at least one.
pub fn tokens_of(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4).max(1)
}

/// The text a token-id list stands for here (ids joined by spaces): what its vector is
/// derived from.
pub fn tokens_text(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
}

/// Whether this emulation answers `path`.
pub(crate) fn owns(method: &str, path: &str) -> bool {
    method == "POST" && matches!(path, "/v1/embeddings" | "/embeddings")
}

/// OpenAI's default sizes: text-embedding-3-large 3072, everything else 1536.
fn default_dimensions(model: &str) -> usize {
    if model.contains("3-large") { 3072 } else { 1536 }
}

/// One OpenAI input as the text its vector comes from and its token count.
fn inputs(request: &Map<String, Value>) -> Result<Vec<(String, u64)>, &'static str> {
    let one = |v: &Value| -> Option<(String, u64)> {
        match v {
            Value::String(s) if !s.is_empty() => Some((s.clone(), tokens_of(s))),
            Value::Array(ids) if !ids.is_empty() => {
                let ids: Option<Vec<u64>> = ids.iter().map(Value::as_u64).collect();
                let ids = ids?;
                Some((tokens_text(&ids), ids.len() as u64))
            }
            _ => None,
        }
    };
    const INVALID: &str = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.";
    match request.get("input") {
        None => Err("Missing required parameter: 'input'."),
        Some(Value::Array(items)) if items.first().is_some_and(Value::is_u64) => {
            one(&Value::Array(items.clone())).map(|i| vec![i]).ok_or(INVALID)
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            items.iter().map(one).collect::<Option<Vec<_>>>().ok_or(INVALID)
        }
        Some(v @ Value::String(_)) => one(v).map(|i| vec![i]).ok_or(INVALID),
        Some(_) => Err(INVALID),
    }
}

/// Answers one OpenAI embeddings call.
pub(crate) async fn route(shared: &Shared, call: &Call) -> Response {
    let request = match check_key_and_model(shared, call) {
        Ok(request) => request,
        Err(error) => return error_response(call.seq, &error, &[]),
    };
    let inputs = match inputs(request) {
        Ok(inputs) => inputs,
        Err(message) => {
            return error_response(call.seq, &error(400, "invalid_request_error", message), &[]);
        }
    };
    let model = request.get("model").and_then(Value::as_str).unwrap_or_default().to_owned();
    let dimensions = match request.get("dimensions") {
        None | Some(Value::Null) => default_dimensions(&model),
        Some(v) => match v.as_u64().filter(|n| *n > 0) {
            Some(n) if !model.starts_with("text-embedding-ada") => n as usize,
            _ => {
                let message = "This model does not support specifying dimensions.";
                return error_response(
                    call.seq,
                    &error(400, "invalid_request_error", message),
                    &[],
                );
            }
        },
    };
    let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let reply = shared.next_reply();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let message = match reply.body {
        Body::Error(error) => return error_response(call.seq, &error, &reply.headers),
        Body::Message(message) => message,
    };
    if let Some((_, error)) = &reply.faults.error_after {
        return error_response(call.seq, error, &reply.headers);
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, (text, _))| {
            let vector = embedding_of(text, dimensions);
            let embedding = if base64 { json!(base64_of(&vector)) } else { json!(vector) };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens = usage_tokens(&message, inputs.iter().map(|(_, n)| n).sum());
    let body = json!({
        "object": "list",
        "data": data,
        "model": message.model.clone().unwrap_or(model),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    respond(200, JSON, call.seq, &reply.headers, json_body(&body, &reply.faults))
}

/// The scripted usage's input tokens, else the mock's own count.
pub(crate) fn usage_tokens(message: &Message, counted: u64) -> u64 {
    message.usage.map_or(counted, |u| u.input_tokens)
}

/// A JSON body, cut in two when the reply holds or drops it mid-way.
pub(crate) fn json_body(body: &Value, faults: &Faults) -> HttpBody {
    let json = Bytes::from(body.to_string());
    if faults.drop_after.is_none() && faults.hold_after.is_none() {
        return HttpBody::from(json);
    }
    let half = json.len() / 2;
    let plan = Plan {
        hold: faults.hold_after.clone().map(|(_, release)| (1, release)),
        drop: faults.drop_after.map(|_| 1),
        ..Plan::default()
    };
    faults::body(vec![json.slice(..half), json.slice(half..)], plan)
}

/// OpenAI's base64 vectors: little-endian f32 bytes.
pub fn base64_of(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
    aws_smithy_types::base64::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_depend_on_the_text_only() {
        let a = embedding_of("hello", 8);
        assert_eq!(a, embedding_of("hello", 8));
        assert_ne!(a, embedding_of("hellp", 8));
        assert_eq!(a[0], 5.0);
        assert!(a[1..].iter().all(|v| (-1.0..1.0).contains(v)));
        assert_eq!(embedding_of("hello", 4), a[..4]);
    }
}
