//! Embeddings on Bedrock through InvokeModel, signed like every other call: Titan Text
//! Embeddings (one text per call, so a batch fans out, a few calls at a time) and Cohere Embed
//! v3 (up to 96 texts per call). The vectors come back in input order.

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{BedrockProvider, JSON};
use crate::classify::{ErrorKind, UpstreamError};
use crate::embedding::{self, BedrockFamily, EmbeddingRequest, Embeddings, Input};
use crate::provider::http::{Timeout, bounded, transport_error};

/// Titan calls in flight for one request: enough to hide latency, few enough not to trip a
/// per-account rate limit with one batch.
const TITAN_CONCURRENCY: usize = 8;
/// Cohere Embed's limit of texts per call on Bedrock.
const COHERE_BATCH: usize = 96;
/// Cohere's `input_type` when the client names none (LiteLLM's default).
const COHERE_DEFAULT_INPUT_TYPE: &str = "search_document";

impl BedrockProvider {
    pub(super) async fn embed_call(
        &self,
        req: &EmbeddingRequest,
    ) -> Result<Embeddings, UpstreamError> {
        let d = &self.site.deployment;
        embedding::check_mode(d)?;
        let Some(family) = embedding::bedrock_family(d) else {
            return Err(embedding::cannot_embed(
                d,
                "its model is not a Bedrock embedding model Switchyard knows (amazon.titan-embed-text-v1/v2, cohere.embed-*-v3)",
            ));
        };
        if let Some(error) = &self.no_region {
            return Err(error.clone());
        }
        let Input::Texts(texts) = &req.input else {
            return Err(embedding::unsupported_input(
                d,
                "token ids (Bedrock embedding models read text)",
            ));
        };
        match (family, req.dimensions) {
            (BedrockFamily::TitanV2, Some(n)) if !embedding::TITAN_V2_DIMENSIONS.contains(&n) => {
                return Err(embedding::unsupported_dimensions(
                    d,
                    n,
                    "Titan Text Embeddings v2 makes 256, 512 or 1024",
                ));
            }
            (BedrockFamily::TitanV1, Some(n)) => {
                return Err(embedding::unsupported_dimensions(
                    d,
                    n,
                    "Titan Text Embeddings v1 always makes 1536",
                ));
            }
            (BedrockFamily::CohereV3, Some(n)) => {
                return Err(embedding::unsupported_dimensions(
                    d,
                    n,
                    "Cohere Embed v3 has one size per model",
                ));
            }
            _ => {}
        }
        bounded(&self.site.who, self.timeout, Timeout::Request, async {
            match family {
                BedrockFamily::TitanV1 | BedrockFamily::TitanV2 => self.titan(req, texts).await,
                BedrockFamily::CohereV3 => self.cohere(req, texts).await,
            }
        })
        .await
    }

    /// One InvokeModel: the answer's bytes and Bedrock's input-token header.
    async fn invoke_json(&self, body: &Value) -> Result<(Vec<u8>, Option<u64>), UpstreamError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let response = self.call(&self.invoke_url, bytes, JSON).await?;
        let tokens = response
            .headers()
            .get("x-amzn-bedrock-input-token-count")
            .and_then(|v| v.to_str().ok()?.trim().parse().ok());
        let bytes =
            response.bytes().await.map_err(|e| transport_error(&e, &self.site.destination()))?;
        Ok((bytes.to_vec(), tokens))
    }

    async fn titan(
        &self,
        req: &EmbeddingRequest,
        texts: &[String],
    ) -> Result<Embeddings, UpstreamError> {
        // Futures made up front (not by a closure inside the stream) keep the borrow of each
        // text a plain one; `buffered` keeps input order whatever order the calls finish in.
        let calls: Vec<_> = texts.iter().map(|text| self.titan_one(req, text)).collect();
        let answers: Vec<(Vec<f32>, u64)> =
            stream::iter(calls).buffered(TITAN_CONCURRENCY).try_collect().await?;
        let input_tokens = answers.iter().map(|(_, n)| n).sum();
        Ok(Embeddings {
            vectors: answers.into_iter().map(|(v, _)| v).collect(),
            model: None,
            input_tokens,
        })
    }

    async fn titan_one(
        &self,
        req: &EmbeddingRequest,
        text: &str,
    ) -> Result<(Vec<f32>, u64), UpstreamError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            embedding: Vec<f32>,
            #[serde(default)]
            input_text_token_count: Option<u64>,
        }
        let mut body = Map::new();
        body.insert("inputText".into(), json!(text));
        if let Some(n) = req.dimensions {
            body.insert("dimensions".into(), json!(n));
        }
        // Titan's own switch, as LiteLLM forwards it; the vector is always read as floats.
        if let Some(v) = req.extra.get("normalize") {
            body.insert("normalize".into(), v.clone());
        }
        let (bytes, header) = self.invoke_json(&Value::Object(body)).await?;
        let answer: Answer = serde_json::from_slice(&bytes).map_err(unreadable)?;
        let tokens = answer
            .input_text_token_count
            .or(header)
            .unwrap_or_else(|| crate::tokens::estimate(text));
        Ok((answer.embedding, tokens))
    }

    async fn cohere(
        &self,
        req: &EmbeddingRequest,
        texts: &[String],
    ) -> Result<Embeddings, UpstreamError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(deserialize_with = "cohere_floats")]
            embeddings: Vec<Vec<f32>>,
        }
        let input_type = req.input_type.as_deref().unwrap_or(COHERE_DEFAULT_INPUT_TYPE);
        let mut vectors = Vec::with_capacity(texts.len());
        let mut input_tokens = 0;
        for batch in texts.chunks(COHERE_BATCH) {
            let mut body = Map::new();
            body.insert("texts".into(), json!(batch));
            body.insert("input_type".into(), json!(input_type));
            if let Some(v) = req.extra.get("truncate") {
                body.insert("truncate".into(), v.clone());
            }
            let (bytes, header) = self.invoke_json(&Value::Object(body)).await?;
            let answer: Answer = serde_json::from_slice(&bytes).map_err(unreadable)?;
            let got = answer.embeddings;
            if got.len() != batch.len() {
                return Err(unreadable(format!("{} vectors for {} texts", got.len(), batch.len())));
            }
            vectors.extend(got);
            input_tokens += header
                .unwrap_or_else(|| batch.iter().map(|t| crate::tokens::estimate(t)).sum::<u64>());
        }
        Ok(Embeddings { vectors, model: None, input_tokens })
    }
}

/// Cohere's `embeddings`: the float vectors, or with `embedding_types` the `float` member of
/// `{"float": [[…]], "int8": …}`. Read in one pass, the form told by the first token: an
/// untagged enum buffered every float as a `Content` value before trying each form.
fn cohere_floats<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Vec<f32>>, D::Error> {
    struct Either;
    impl<'de> serde::de::Visitor<'de> for Either {
        type Value = Vec<Vec<f32>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of float vectors, or an object with `float` vectors")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut vectors = Vec::new();
            while let Some(v) = seq.next_element::<Vec<f32>>()? {
                vectors.push(v);
            }
            Ok(vectors)
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut float = None;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "float" {
                    float = Some(map.next_value::<Vec<Vec<f32>>>()?);
                } else {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            float.ok_or_else(|| serde::de::Error::missing_field("float"))
        }
    }
    d.deserialize_any(Either)
}

fn unreadable(detail: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::new(
        ErrorKind::UpstreamUnavailable,
        format!("Bedrock's embeddings answer is unreadable: {detail}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Answer {
        #[serde(deserialize_with = "cohere_floats")]
        embeddings: Vec<Vec<f32>>,
    }

    fn read(body: &str) -> Result<Vec<Vec<f32>>, serde_json::Error> {
        serde_json::from_str::<Answer>(body).map(|a| a.embeddings)
    }

    #[test]
    fn cohere_vectors_are_read_as_floats_or_by_type() {
        let plain = read(r#"{"embeddings": [[0.5, -1], [2.0]], "id": "x"}"#).unwrap();
        assert_eq!(plain, vec![vec![0.5, -1.0], vec![2.0]]);
        let by_type = read(
            r#"{"embeddings": {"int8": [[1, 2]], "float": [[0.25, 0.75]], "ubinary": [[3]]}}"#,
        )
        .unwrap();
        assert_eq!(by_type, vec![vec![0.25, 0.75]]);
        let err = read(r#"{"embeddings": {"int8": [[1, 2]]}}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `float`"), "{err}");
        assert!(read(r#"{"embeddings": "AAAA"}"#).is_err());
    }
}
