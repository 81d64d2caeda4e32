//! Embeddings in provider-neutral form: what a client asked to embed, what came back, which
//! deployments can serve it, and the EMB-xx diagnoses when one cannot.
//!
//! An embedding request is routed like a chat request: it carries a [`ChatRequest`]
//! (`routing`) holding exactly what the router, the limits, the key rules and the ledger read
//! (the name asked for, `user`, LiteLLM's gateway parameters, the inputs as text for the token
//! estimate), so failover, retries, cooldowns, fallbacks, budgets and attribution work on it
//! unchanged. Providers read the rest.

use serde_json::{Map, Value};

use crate::canonical::{ChatRequest, ContentBlock, Message, Role};
use crate::classify::{Diagnosis, ErrorKind, UpstreamError};
use crate::config::Deployment;

/// What to embed: texts, or texts already tokenized (OpenAI's `[[int]]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Texts(Vec<String>),
    Tokens(Vec<Vec<u32>>),
}

impl Input {
    pub fn len(&self) -> usize {
        match self {
            Self::Texts(texts) => texts.len(),
            Self::Tokens(lists) => lists.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An embedding request as the client made it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingRequest {
    /// What the router and everything around it read; its `model` is the name to route (the
    /// key rules may rename it).
    pub routing: ChatRequest,
    pub input: Input,
    /// Output dimensions, for models that can shorten their vectors.
    pub dimensions: Option<u32>,
    /// Cohere's `input_type` (`search_document`, `search_query`, …), which LiteLLM accepts
    /// as a provider parameter.
    pub input_type: Option<String>,
    /// Fields the gateway does not interpret, forwarded to OpenAI-compatible servers.
    pub extra: Map<String, Value>,
}

impl EmbeddingRequest {
    pub fn new(model: String, input: Input) -> Self {
        let routing = routing_request(model, &input);
        Self { routing, input, dimensions: None, input_type: None, extra: Map::new() }
    }
}

/// The routing view of `input`: one user message per input, so the gateway's token estimate
/// (rate limits, the budget reservation) counts what will be embedded, and no output.
fn routing_request(model: String, input: &Input) -> ChatRequest {
    let texts: Vec<String> = match input {
        Input::Texts(texts) => texts.clone(),
        // A token id estimates as at least one token, so the reservation never falls short.
        Input::Tokens(lists) => lists
            .iter()
            .map(|l| l.iter().map(u32::to_string).collect::<Vec<_>>().join(" "))
            .collect(),
    };
    ChatRequest {
        model,
        messages: texts
            .into_iter()
            .map(|t| Message { role: Role::User, content: vec![ContentBlock::text(t)] })
            .collect(),
        max_tokens: Some(0),
        ..ChatRequest::default()
    }
}

/// Vectors in input order, as an upstream returned them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    /// The model the upstream named, if it named one.
    pub model: Option<String>,
    /// Input tokens the upstream counted (the gateway's estimate where it counts none).
    pub input_tokens: u64,
}

/// The word an embedding-only deployment is marked with (`model_info.mode`, as LiteLLM).
pub const MODE: &str = "embedding";

/// Whether `d` serves only embeddings: `model_info.mode: embedding`, or a Bedrock model that
/// only embeds.
pub fn only_embeds(d: &Deployment) -> bool {
    d.is_embedding() || bedrock_family(d).is_some()
}

/// The Bedrock embedding model family of `d`, whatever form its id takes (bare, ARN).
pub fn bedrock_family(d: &Deployment) -> Option<BedrockFamily> {
    if !matches!(d.provider, crate::config::ProviderKind::Bedrock(_)) {
        return None;
    }
    let id = d.model.rsplit('/').next().unwrap_or(&d.model);
    if id.starts_with("amazon.titan-embed-text-v2") {
        Some(BedrockFamily::TitanV2)
    } else if id.starts_with("amazon.titan-embed-text-v1")
        || id.starts_with("amazon.titan-embed-g1-text")
    {
        Some(BedrockFamily::TitanV1)
    } else if id.starts_with("cohere.embed-") && id.contains("-v3") {
        Some(BedrockFamily::CohereV3)
    } else {
        None
    }
}

/// Bedrock embedding bodies differ by model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BedrockFamily {
    /// `{inputText}` → `{embedding, inputTextTokenCount}`, one text per call.
    TitanV1,
    /// Titan v1's body plus `dimensions` (256, 512, 1024) and `normalize`.
    TitanV2,
    /// `{texts, input_type, truncate}` → `{embeddings, …}`, up to 96 texts per call.
    CohereV3,
}

/// Titan Text Embeddings v2's output sizes.
pub const TITAN_V2_DIMENSIONS: [u32; 3] = [256, 512, 1024];

fn who(d: &Deployment) -> String {
    format!("the deployment of `{}` ({})", d.alias, d.model_as_written)
}

fn refused(id: &'static str, message: String, cause: String, remedy: String) -> UpstreamError {
    let mut error = UpstreamError::new(ErrorKind::InvalidRequest, message);
    error.diagnosis = Some(Diagnosis::new(id, cause, remedy));
    error
}

/// EMB-01: an embedding request reached a deployment that cannot embed.
pub fn cannot_embed(d: &Deployment, why: &str) -> UpstreamError {
    refused(
        "EMB-01",
        format!("{} cannot create embeddings: {why}", who(d)),
        format!("An embedding request was routed to {}, which {why}.", who(d)),
        format!(
            "send embeddings to a model_name whose deployments embed (mark them `model_info.mode: {MODE}`), or send `{}` chat requests instead",
            d.alias
        ),
    )
}

/// EMB-01 for a provider with no embeddings API here, when the deployment is unknown.
pub fn no_embeddings_api() -> UpstreamError {
    refused(
        "EMB-01",
        "this deployment cannot create embeddings: its provider has no embeddings API in Switchyard".to_owned(),
        "An embedding request was routed to a deployment whose provider (Anthropic, a mock_response) has no embeddings API.".to_owned(),
        format!("send embeddings to a model_name whose deployments embed (OpenAI-compatible, Bedrock Titan or Cohere Embed; `model_info.mode: {MODE}`)"),
    )
}

/// EMB-02: a chat request (or a token count) reached an embedding-only deployment.
pub fn only_embeddings(d: &Deployment) -> UpstreamError {
    refused(
        "EMB-02",
        format!(
            "{} is an embedding model: it cannot answer chat, messages or responses requests",
            who(d)
        ),
        format!("A chat request was routed to {}, which only creates embeddings.", who(d)),
        format!("send it to POST /v1/embeddings, or ask a chat model instead of `{}`", d.alias),
    )
}

/// EMB-03: `dimensions` the model cannot produce.
pub fn unsupported_dimensions(d: &Deployment, asked: u32, supported: &str) -> UpstreamError {
    let mut error = refused(
        "EMB-03",
        format!("{} cannot produce {asked}-dimension embeddings: {supported}", who(d)),
        format!("The request asked for `dimensions: {asked}`, which {} does not support ({supported}).", who(d)),
        "leave `dimensions` out for the model's own size, or ask a model that supports it (Titan v2: 256, 512, 1024; OpenAI text-embedding-3-*)".to_owned(),
    );
    error.status = Some(400);
    error
}

/// EMB-04: the input is in a form the model does not take (token ids for a model that reads
/// text only).
pub fn unsupported_input(d: &Deployment, what: &str) -> UpstreamError {
    refused(
        "EMB-04",
        format!("{} cannot embed {what}", who(d)),
        format!("The request's `input` holds {what}, which {} does not accept.", who(d)),
        "send the input as a string or a list of strings".to_owned(),
    )
}

/// An embedding request to a deployment explicitly marked for another mode (`chat`,
/// `completion`, …) is refused before anything is sent.
pub fn check_mode(d: &Deployment) -> Result<(), UpstreamError> {
    match d.model_info.get("mode").and_then(Value::as_str) {
        Some(mode) if mode != MODE => {
            Err(cannot_embed(d, &format!("it is marked `model_info.mode: {mode}`, not `{MODE}`")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{self, MapEnv};

    fn deployment(model: &str, model_info: &str) -> std::sync::Arc<Deployment> {
        let yaml = format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: {model}\n      aws_region_name: us-east-1\n      api_base: http://localhost:1/v1\n{model_info}"
        );
        let cfg = config::load_from_str(&yaml, Path::new("c.yaml"), &MapEnv::default()).unwrap();
        cfg.groups[0].deployments[0].clone()
    }

    #[test]
    fn bedrock_families_are_read_from_the_model_id() {
        let family = |m: &str| bedrock_family(&deployment(m, ""));
        assert_eq!(family("bedrock/amazon.titan-embed-text-v2:0"), Some(BedrockFamily::TitanV2));
        assert_eq!(family("bedrock/amazon.titan-embed-text-v1"), Some(BedrockFamily::TitanV1));
        assert_eq!(family("bedrock/cohere.embed-english-v3"), Some(BedrockFamily::CohereV3));
        assert_eq!(family("bedrock/cohere.embed-multilingual-v3"), Some(BedrockFamily::CohereV3));
        assert_eq!(family("bedrock/anthropic.claude-3-haiku-20240307-v1:0"), None);
        assert_eq!(family("openai/amazon.titan-embed-text-v2:0"), None);
    }

    #[test]
    fn mode_marks_embedding_only_deployments_and_refuses_others() {
        let embed = deployment("openai/bge-m3", "    model_info:\n      mode: embedding\n");
        assert!(only_embeds(&embed));
        assert!(check_mode(&embed).is_ok());
        let chat = deployment("openai/gpt-4o", "    model_info:\n      mode: chat\n");
        assert!(!only_embeds(&chat));
        let err = check_mode(&chat).unwrap_err();
        assert_eq!(err.diagnosis.unwrap().id, "EMB-01");
        // No mode: the upstream decides, as LiteLLM lets it.
        assert!(check_mode(&deployment("openai/bge-m3", "")).is_ok());
    }

    #[test]
    fn routing_request_estimates_every_input_and_no_output() {
        let req = EmbeddingRequest::new("m".into(), Input::Tokens(vec![vec![101, 2023], vec![7]]));
        assert_eq!(req.routing.messages.len(), 2);
        assert_eq!(req.routing.max_tokens, Some(0));
        assert!(crate::tokens::estimate_request(&req.routing) >= 3);
    }
}
