//! `POST {api_base}/embeddings` on an OpenAI-compatible server: the body from the canonical
//! request (always `encoding_format: float` upstream; the surface encodes what the client
//! asked for), the vectors read back in input order.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::OpenAiProvider;
use crate::classify::{ErrorKind, UpstreamError};
use crate::config::OpenAiFlavor;
use crate::embedding::{self, EmbeddingRequest, Embeddings, Input};
use crate::provider::http::{Timeout, bounded};

impl OpenAiProvider {
    pub(super) async fn embed_call(
        &self,
        req: &EmbeddingRequest,
    ) -> Result<Embeddings, UpstreamError> {
        let d = &self.site.deployment;
        embedding::check_mode(d)?;
        // OpenAI's own API shortens only the text-embedding-3 models' vectors; what other
        // servers support is theirs to say.
        let official = self.flavor == OpenAiFlavor::OpenAi && d.api_base.is_none();
        if let Some(asked) = req.dimensions
            && official
            && !d.model.starts_with("text-embedding-3")
        {
            return Err(embedding::unsupported_dimensions(
                d,
                asked,
                "on OpenAI only the text-embedding-3 models take `dimensions`",
            ));
        }
        let bytes = body(req, &d.model);
        let request = self.post(&self.embeddings_url, bytes::Bytes::from(bytes))?;
        bounded(&self.site.who, self.timeout, Timeout::Request, async {
            let response = self.call(request).await?;
            let bytes = response.bytes().await.map_err(|e| self.site.transport(&e))?;
            let mut answer = parse(&bytes, req.input.len())?;
            if answer.input_tokens == 0 {
                answer.input_tokens = crate::tokens::estimate_request(&req.routing);
            }
            Ok(answer)
        })
        .await
    }
}

fn body(req: &EmbeddingRequest, model: &str) -> Vec<u8> {
    let mut body = Map::new();
    for (k, v) in &req.extra {
        body.insert(k.clone(), v.clone());
    }
    body.insert("model".into(), json!(model));
    body.insert(
        "input".into(),
        match &req.input {
            Input::Texts(texts) => json!(texts),
            Input::Tokens(lists) => json!(lists),
        },
    );
    body.insert("encoding_format".into(), json!("float"));
    if let Some(n) = req.dimensions {
        body.insert("dimensions".into(), json!(n));
    }
    if let Some(user) = &req.routing.user {
        body.insert("user".into(), json!(user));
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

#[derive(Deserialize)]
struct Answer {
    data: Vec<Item>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<AnswerUsage>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vector,
}

enum Vector {
    Floats(Vec<f32>),
    /// Little-endian f32s, base64: what a server sends when it ignores `encoding_format`.
    Base64(String),
}

/// Read in one pass, the form told by the first token. `#[serde(untagged)]` buffered every
/// float of the vector as a `Content` value before trying each form: two thirds of an
/// embedding request's CPU in the gateway, for a 1536-dimension vector.
impl<'de> Deserialize<'de> for Vector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = Vector;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of floats or a base64 string")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vector, A::Error> {
                let mut floats = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(x) = seq.next_element::<f32>()? {
                    floats.push(x);
                }
                Ok(Vector::Floats(floats))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vector, E> {
                Ok(Vector::Base64(text.to_owned()))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

#[derive(Deserialize)]
struct AnswerUsage {
    #[serde(default)]
    prompt_tokens: u64,
}

fn unreadable(detail: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::new(
        ErrorKind::UpstreamUnavailable,
        format!("the server's embeddings answer is unreadable: {detail}"),
    )
}

/// The vectors in input order (by `index`, which servers may send out of order).
fn parse(bytes: &[u8], inputs: usize) -> Result<Embeddings, UpstreamError> {
    let answer: Answer = serde_json::from_slice(bytes).map_err(unreadable)?;
    if answer.data.len() != inputs {
        return Err(unreadable(format!("{} vectors for {inputs} inputs", answer.data.len())));
    }
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; inputs];
    for (position, item) in answer.data.into_iter().enumerate() {
        let at = item.index.unwrap_or(position);
        let slot =
            vectors.get_mut(at).ok_or_else(|| unreadable(format!("index {at} out of range")))?;
        *slot = Some(match item.embedding {
            Vector::Floats(v) => v,
            Vector::Base64(text) => decode_base64(&text).map_err(unreadable)?,
        });
    }
    let vectors = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| v.ok_or_else(|| unreadable(format!("no vector for index {i}"))))
        .collect::<Result<_, _>>()?;
    Ok(Embeddings {
        vectors,
        model: answer.model,
        input_tokens: answer.usage.map_or(0, |u| u.prompt_tokens),
    })
}

fn decode_base64(text: &str) -> Result<Vec<f32>, String> {
    let raw = base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| e.to_string())?;
    if raw.len() % 4 != 0 {
        return Err(format!("{} bytes is not a whole number of f32s", raw.len()));
    }
    Ok(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_come_back_in_input_order_whatever_the_order_sent() {
        let body = br#"{"object":"list","model":"text-embedding-3-small","data":[
            {"object":"embedding","index":1,"embedding":[0.5,0.25]},
            {"object":"embedding","index":0,"embedding":"AACAPwAAAMA="}],
            "usage":{"prompt_tokens":7,"total_tokens":7}}"#;
        let answer = parse(body, 2).unwrap();
        assert_eq!(answer.vectors, vec![vec![1.0, -2.0], vec![0.5, 0.25]]);
        assert_eq!(answer.input_tokens, 7);
        assert_eq!(answer.model.as_deref(), Some("text-embedding-3-small"));
    }

    #[test]
    fn a_vector_in_neither_form_is_an_unreadable_answer() {
        for embedding in ["{}", "1.5", r#"[0.5,"x"]"#, "null"] {
            let body = format!(r#"{{"data":[{{"index":0,"embedding":{embedding}}}]}}"#);
            let err = parse(body.as_bytes(), 1).unwrap_err();
            assert_eq!(err.kind, ErrorKind::UpstreamUnavailable, "{embedding}");
            assert!(err.message.contains("unreadable"), "{embedding}: {}", err.message);
        }
    }

    #[test]
    fn a_missing_vector_is_an_unreadable_answer() {
        let body = br#"{"data":[{"index":0,"embedding":[1.0]}]}"#;
        let err = parse(body, 2).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UpstreamUnavailable);
        assert!(err.message.contains("1 vectors for 2 inputs"), "{}", err.message);
    }

    #[test]
    fn the_body_asks_for_floats_and_forwards_dimensions_and_user() {
        let mut req = EmbeddingRequest::new("alias".into(), Input::Texts(vec!["a".into()]));
        req.dimensions = Some(256);
        req.routing.user = Some("u1".into());
        let body: Value = serde_json::from_slice(&body(&req, "text-embedding-3-large")).unwrap();
        assert_eq!(
            body,
            json!({"model": "text-embedding-3-large", "input": ["a"], "encoding_format": "float",
                   "dimensions": 256, "user": "u1"})
        );
    }
}
