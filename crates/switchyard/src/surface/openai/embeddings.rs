//! OpenAI's embeddings API (`POST /v1/embeddings`): the request body into a canonical
//! [`EmbeddingRequest`], the vectors back as `{object: "list", data, model, usage}` with each
//! vector as floats or, for `encoding_format: base64`, the base64 of its little-endian f32
//! bytes (what the OpenAI SDKs ask for by default and decode).
//!
//! Every malformed input is a 400 naming the field in the message and `param`. Fields the
//! gateway does not interpret are kept in `extra` for OpenAI-compatible upstreams.

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::json_bytes;
use super::request::{invalid, split_gateway_params};
use crate::classify::ApiError;
use crate::embedding::{EmbeddingRequest, Embeddings, Input};

/// How the client wants each vector written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

/// Decodes an embeddings body; also returns the format the vectors are to be written in.
pub fn decode_embedding_request(
    body: &[u8],
) -> Result<(EmbeddingRequest, EncodingFormat), ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_request(format!("The request body is not valid JSON: {e}"), None)
    })?;
    let Value::Object(mut fields) = value else {
        return Err(ApiError::invalid_request(
            "The request body must be an embeddings request object: {\"model\": …, \"input\": …}.",
            None,
        ));
    };
    let model = match fields.remove("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m,
        Some(Value::String(_)) => return Err(invalid("model", "must not be empty")),
        Some(_) => return Err(invalid("model", "must be a string")),
        None => return Err(invalid("model", "missing required field")),
    };
    let input = input(fields.remove("input"))?;
    let format = match fields.remove("encoding_format") {
        None | Some(Value::Null) => EncodingFormat::Float,
        Some(Value::String(f)) if f == "float" => EncodingFormat::Float,
        Some(Value::String(f)) if f == "base64" => EncodingFormat::Base64,
        Some(other) => {
            return Err(invalid(
                "encoding_format",
                format!("must be `float` or `base64`, not {other}"),
            ));
        }
    };
    let dimensions = match fields.remove("dimensions") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0) {
            Some(n) => Some(n),
            None => {
                return Err(invalid("dimensions", format!("must be a positive integer, not {v}")));
            }
        },
    };
    let user = match fields.remove("user") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => Some(u),
        Some(_) => return Err(invalid("user", "must be a string")),
    };
    let input_type = match fields.remove("input_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t),
        Some(_) => return Err(invalid("input_type", "must be a string")),
    };
    let (extra, gateway) = split_gateway_params(fields);
    let mut req = EmbeddingRequest::new(model, input);
    req.routing.user = user;
    req.routing.gateway = gateway;
    req.dimensions = dimensions;
    req.input_type = input_type;
    req.extra = extra;
    Ok((req, format))
}

/// `string | [string] | [int] | [[int]]`, none of them empty.
fn input(value: Option<Value>) -> Result<Input, ApiError> {
    const SHAPES: &str =
        "must be a string, a list of strings, a list of token ids or a list of token-id lists";
    let token = |v: &Value, at: &str| {
        v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
            invalid(at, format!("must be a token id (a non-negative integer), not {v}"))
        })
    };
    match value {
        None | Some(Value::Null) => Err(invalid("input", "missing required field")),
        Some(Value::String(s)) if s.is_empty() => Err(invalid("input", "must not be empty")),
        Some(Value::String(s)) => Ok(Input::Texts(vec![s])),
        Some(Value::Array(items)) if items.is_empty() => {
            Err(invalid("input", "must contain at least one item"))
        }
        Some(Value::Array(items)) => match &items[0] {
            Value::String(_) => {
                let mut texts = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) if !s.is_empty() => texts.push(s),
                        Value::String(_) => {
                            return Err(invalid(&format!("input[{i}]"), "must not be empty"));
                        }
                        _ => {
                            return Err(invalid(
                                &format!("input[{i}]"),
                                "must be a string like the first item",
                            ));
                        }
                    }
                }
                Ok(Input::Texts(texts))
            }
            Value::Number(_) => {
                let ids = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| token(v, &format!("input[{i}]")))
                    .collect::<Result<Vec<u32>, _>>()?;
                Ok(Input::Tokens(vec![ids]))
            }
            Value::Array(_) => {
                let mut lists = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let Value::Array(ids) = item else {
                        return Err(invalid(
                            &format!("input[{i}]"),
                            "must be a list of token ids like the first item",
                        ));
                    };
                    if ids.is_empty() {
                        return Err(invalid(&format!("input[{i}]"), "must not be empty"));
                    }
                    let ids = ids
                        .iter()
                        .enumerate()
                        .map(|(j, v)| token(v, &format!("input[{i}][{j}]")))
                        .collect::<Result<Vec<u32>, _>>()?;
                    lists.push(ids);
                }
                Ok(Input::Tokens(lists))
            }
            _ => Err(invalid("input", SHAPES)),
        },
        Some(_) => Err(invalid("input", SHAPES)),
    }
}

#[derive(Serialize)]
struct WireList<'a> {
    object: &'static str,
    data: Vec<WireEmbedding>,
    model: &'a str,
    usage: WireUsage,
}

#[derive(Serialize)]
struct WireEmbedding {
    object: &'static str,
    index: usize,
    embedding: WireVector,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireVector {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct WireUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The embeddings answer in OpenAI's shape, `model` as the answer names it.
pub fn encode_embeddings(answer: Embeddings, model: &str, format: EncodingFormat) -> Bytes {
    let data = answer
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| WireEmbedding {
            object: "embedding",
            index,
            embedding: match format {
                EncodingFormat::Float => WireVector::Floats(v),
                EncodingFormat::Base64 => WireVector::Base64(base64_of(&v)),
            },
        })
        .collect();
    let tokens = answer.input_tokens;
    json_bytes(&WireList {
        object: "list",
        data,
        model,
        usage: WireUsage { prompt_tokens: tokens, total_tokens: tokens },
    })
}

/// OpenAI's base64 encoding: the vector's little-endian f32 bytes.
fn base64_of(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;

    fn read(fields: &Map<String, Value>) -> Vec<&str> {
        fields.keys().map(String::as_str).collect()
    }

    fn decode(v: Value) -> Result<(EmbeddingRequest, EncodingFormat), ApiError> {
        decode_embedding_request(v.to_string().as_bytes())
    }

    #[test]
    fn every_input_shape_decodes() {
        let (r, f) = decode(json!({"model": "m", "input": "hello"})).unwrap();
        assert_eq!(r.input, Input::Texts(vec!["hello".into()]));
        assert_eq!(f, EncodingFormat::Float);
        let (r, _) = decode(json!({"model": "m", "input": ["a", "b"]})).unwrap();
        assert_eq!(r.input, Input::Texts(vec!["a".into(), "b".into()]));
        let (r, _) = decode(json!({"model": "m", "input": [1, 2, 3]})).unwrap();
        assert_eq!(r.input, Input::Tokens(vec![vec![1, 2, 3]]));
        let (r, f) =
            decode(json!({"model": "m", "input": [[1], [2, 3]], "encoding_format": "base64"}))
                .unwrap();
        assert_eq!(r.input, Input::Tokens(vec![vec![1], vec![2, 3]]));
        assert_eq!(f, EncodingFormat::Base64);
    }

    #[test]
    fn gateway_parameters_route_and_the_rest_is_forwarded() {
        let (r, _) = decode(json!({"model": "m", "input": "x", "user": "u", "dimensions": 256,
            "metadata": {"tags": ["t"]}, "num_retries": 1, "truncate": "END"}))
        .unwrap();
        assert_eq!(r.routing.model, "m");
        assert_eq!(r.routing.user.as_deref(), Some("u"));
        assert_eq!(r.dimensions, Some(256));
        assert_eq!(read(&r.routing.gateway), vec!["metadata", "num_retries"]);
        assert_eq!(read(&r.extra), vec!["truncate"]);
    }

    #[test]
    fn malformed_requests_name_the_field() {
        for (body, param) in [
            (json!({"input": "x"}), "model"),
            (json!({"model": "m"}), "input"),
            (json!({"model": "m", "input": []}), "input"),
            (json!({"model": "m", "input": ["a", ""]}), "input[1]"),
            (json!({"model": "m", "input": ["a", 1]}), "input[1]"),
            (json!({"model": "m", "input": [[1], [-2]]}), "input[1][0]"),
            (json!({"model": "m", "input": "x", "encoding_format": "int8"}), "encoding_format"),
            (json!({"model": "m", "input": "x", "dimensions": 0}), "dimensions"),
        ] {
            let err = decode(body.clone()).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{body}: {}", err.message);
            assert!(err.message.starts_with(param), "{}", err.message);
        }
    }

    #[test]
    fn base64_is_the_little_endian_f32_bytes() {
        let answer = Embeddings { vectors: vec![vec![1.0, -2.0]], model: None, input_tokens: 3 };
        let body: Value =
            serde_json::from_slice(&encode_embeddings(answer.clone(), "m", EncodingFormat::Base64))
                .unwrap();
        assert_eq!(body["data"][0]["embedding"], json!("AACAPwAAAMA="));
        assert_eq!(body["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
        let body: Value =
            serde_json::from_slice(&encode_embeddings(answer, "m", EncodingFormat::Float)).unwrap();
        assert_eq!(
            body,
            json!({"object": "list", "model": "m", "usage": {"prompt_tokens": 3, "total_tokens": 3},
                   "data": [{"object": "embedding", "index": 0, "embedding": [1.0, -2.0]}]})
        );
    }
}
