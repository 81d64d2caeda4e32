//! The cache key: sha256 over a canonical serialization of what determines an answer —
//! the model name as routed (alias, or deployment id for a direct model), system, messages,
//! tools, tool choice, response format, sampling parameters, beta flags and the
//! provider parameters the gateway forwards. Never `user`, tags or metadata (those are
//! gateway parameters, outside the request's answer), nor `stream`: a streamed and a JSON
//! request share one entry.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::canonical::{ChatRequest, ResponseFormat};

/// Fields of `extra` that change how an answer is delivered, not what it says.
const DELIVERY: &[&str] = &["stream_options", "user", "service_tier"];

pub fn key(chat: &ChatRequest, namespace: Option<&str>) -> String {
    let extra: Map<String, Value> = chat
        .extra
        .iter()
        .filter(|(k, _)| !DELIVERY.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let format = chat.response_format.as_ref().map(|f| match f {
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema { name, description, schema, strict } => json!({
            "type": "json_schema", "name": name, "description": description,
            "schema": schema, "strict": strict,
        }),
    });
    let canonical = json!({
        "model": chat.model,
        "system": chat.system,
        "messages": chat.messages,
        "tools": chat.tools,
        "tool_choice": chat.tool_choice,
        "response_format": format,
        "max_tokens": chat.max_tokens,
        "temperature": chat.temperature,
        "top_p": chat.top_p,
        "top_k": chat.top_k,
        "stop": chat.stop_sequences,
        "betas": chat.betas,
        "extra": extra,
    });
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    let mut hex = String::with_capacity(64 + namespace.map_or(0, |n| n.len() + 1));
    if let Some(ns) = namespace {
        hex.push_str(ns);
        hex.push(':');
    }
    for b in digest {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{ContentBlock, Message, Role};

    fn request() -> ChatRequest {
        ChatRequest {
            model: "cheap".into(),
            messages: vec![Message { role: Role::User, content: vec![ContentBlock::text("hi")] }],
            max_tokens: Some(10),
            ..ChatRequest::default()
        }
    }

    #[test]
    fn user_tags_metadata_and_stream_do_not_change_the_key() {
        let base = key(&request(), None);
        let mut other = request();
        other.user = Some("alice".into());
        other.stream = true;
        other.stream_usage = true;
        other.gateway.insert("metadata".into(), json!({"tags": ["a"]}));
        other.gateway.insert("tags".into(), json!(["b"]));
        other.extra.insert("stream_options".into(), json!({"include_usage": true}));
        assert_eq!(key(&other, None), base);
    }

    #[test]
    fn what_determines_the_answer_changes_the_key() {
        let base = key(&request(), None);
        let mut t = request();
        t.temperature = Some(0.5);
        assert_ne!(key(&t, None), base);
        let mut m = request();
        m.model = "balanced".into();
        assert_ne!(key(&m, None), base);
        let mut s = request();
        s.system = vec![ContentBlock::text("be brief")];
        assert_ne!(key(&s, None), base);
        let mut r = request();
        r.response_format = Some(ResponseFormat::JsonObject);
        assert_ne!(key(&r, None), base);
        let mut e = request();
        e.extra.insert("seed".into(), json!(7));
        assert_ne!(key(&e, None), base);
        assert!(key(&request(), Some("ns")).starts_with("ns:"));
        assert_eq!(base.len(), 64);
    }
}
