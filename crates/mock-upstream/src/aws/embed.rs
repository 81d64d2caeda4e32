//! Bedrock's embedding models through InvokeModel: Titan Text Embeddings v1/v2
//! (`{inputText, dimensions?, normalize?, embeddingTypes?}` → `{embedding,
//! inputTextTokenCount, embeddingsByType?}`) and Cohere Embed v3 (`{texts, input_type,
//! truncate?, embedding_types?}` → `{embeddings, id, texts, response_type}`), with each
//! schema's "Malformed input request" checks. Vectors come from `embeddings::embedding_of`.

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::AwsCall;
use super::bedrock::Context;
use super::errors::{AwsError, from_reply, json_error, respond};
use crate::Shared;
use crate::embeddings::{embedding_of, json_body, tokens_of, usage_tokens};
use crate::reply::Body;

/// Which body an embedding model id takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    TitanV1,
    TitanV2,
    Cohere { dimensions: usize },
}

/// The embedding family of a model id (bare or ARN), if it is one.
pub(super) fn family(model: &str) -> Option<Family> {
    let id = model.rsplit('/').next().unwrap_or(model);
    if id.starts_with("amazon.titan-embed-text-v2") {
        Some(Family::TitanV2)
    } else if id.starts_with("amazon.titan-embed-text-v1")
        || id.starts_with("amazon.titan-embed-g1")
    {
        Some(Family::TitanV1)
    } else if id.starts_with("cohere.embed-") {
        let dimensions = if id.contains("light") { 384 } else { 1024 };
        Some(Family::Cohere { dimensions })
    } else {
        None
    }
}

fn malformed(violations: &[String]) -> AwsError {
    AwsError::validation(format!(
        "Malformed input request: {}, please reformat your input and try again.",
        violations.join(", ")
    ))
}

/// The texts to embed, the output size and whether to answer by type; or the schema's error.
fn check(family: Family, raw: &[u8]) -> Result<(Vec<String>, usize, bool), AwsError> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(raw) else {
        return Err(malformed(&["#: expected type: JSONObject".to_owned()]));
    };
    let allowed: &[&str] = match family {
        Family::TitanV1 => &["inputText"],
        Family::TitanV2 => &["inputText", "dimensions", "normalize", "embeddingTypes"],
        Family::Cohere { .. } => &["texts", "input_type", "truncate", "embedding_types", "images"],
    };
    let mut violations: Vec<String> = body
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("#: extraneous key [{k}] is not permitted"))
        .collect();
    let result = match family {
        Family::TitanV1 | Family::TitanV2 => titan(family, &body, &mut violations),
        Family::Cohere { dimensions } => cohere(dimensions, &body, &mut violations),
    };
    if violations.is_empty() { Ok(result) } else { Err(malformed(&violations)) }
}

fn titan(
    family: Family,
    body: &Map<String, Value>,
    violations: &mut Vec<String>,
) -> (Vec<String>, usize, bool) {
    let text = match body.get("inputText") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => {
            violations.push("#/inputText: expected minLength: 1, actual: 0".to_owned());
            String::new()
        }
        Some(_) => {
            violations.push("#/inputText: expected type: String".to_owned());
            String::new()
        }
        None => {
            violations.push("#: required key [inputText] not found".to_owned());
            String::new()
        }
    };
    let dimensions = match (family, body.get("dimensions")) {
        (Family::TitanV1, _) => 1536,
        (_, None) => 1024,
        (_, Some(v)) => match v.as_u64() {
            Some(n @ (256 | 512 | 1024)) => n as usize,
            _ => {
                violations.push(format!("#/dimensions: {v} is not a valid enum value"));
                1024
            }
        },
    };
    (vec![text], dimensions, body.contains_key("embeddingTypes"))
}

fn cohere(
    dimensions: usize,
    body: &Map<String, Value>,
    violations: &mut Vec<String>,
) -> (Vec<String>, usize, bool) {
    let texts: Vec<String> = match body.get("texts") {
        Some(Value::Array(items)) => {
            if items.len() > 96 {
                violations.push(format!(
                    "#/texts: expected maximum item count: 96, found: {}",
                    items.len()
                ));
            }
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        Some(_) => {
            violations.push("#/texts: expected type: JSONArray".to_owned());
            Vec::new()
        }
        None => {
            violations.push("#: required key [texts] not found".to_owned());
            Vec::new()
        }
    };
    match body.get("input_type").and_then(Value::as_str) {
        Some("search_document" | "search_query" | "classification" | "clustering") => {}
        Some(other) => violations.push(format!("#/input_type: {other} is not a valid enum value")),
        None => violations.push("#: required key [input_type] not found".to_owned()),
    }
    (texts, dimensions, body.contains_key("embedding_types"))
}

/// InvokeModel on an embedding model, with the next scripted reply.
pub(super) async fn invoke(
    shared: &Shared,
    call: &AwsCall<'_>,
    context: &Context,
    family: Family,
) -> Response {
    let (texts, dimensions, by_type) = match check(family, call.body) {
        Ok(checked) => checked,
        Err(error) => return json_error(call, &error, &[]),
    };
    let reply = shared.next_reply();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let message = match reply.body {
        Body::Error(error) => {
            return json_error(call, &context.fill(from_reply(&error)), &reply.headers);
        }
        Body::Message(message) => message,
    };
    if let Some((_, error)) = &reply.faults.error_after {
        return json_error(call, &context.fill(from_reply(error)), &reply.headers);
    }
    let vectors: Vec<Vec<f32>> = texts.iter().map(|t| embedding_of(t, dimensions)).collect();
    let tokens = usage_tokens(&message, texts.iter().map(|t| tokens_of(t)).sum());
    let body = match family {
        Family::TitanV1 | Family::TitanV2 => {
            let vector = vectors.into_iter().next().unwrap_or_default();
            let mut body = json!({"embedding": vector, "inputTextTokenCount": tokens});
            if by_type {
                body["embeddingsByType"] = json!({"float": vector});
            }
            body
        }
        Family::Cohere { .. } => {
            let (embeddings, kind) = if by_type {
                (json!({"float": vectors}), "embeddings_by_type")
            } else {
                (json!(vectors), "embeddings_floats")
            };
            json!({
                "embeddings": embeddings,
                "id": format!("emb-mock-{:06}", call.seq),
                "response_type": kind,
                "texts": texts,
            })
        }
    };
    let mut headers = vec![
        ("x-amzn-bedrock-input-token-count".to_owned(), tokens.to_string()),
        (
            "x-amzn-bedrock-invocation-latency".to_owned(),
            super::bedrock::millis(reply.delay).to_string(),
        ),
    ];
    headers.extend(reply.headers);
    respond(call, 200, "application/json", &headers, json_body(&body, &reply.faults))
}
