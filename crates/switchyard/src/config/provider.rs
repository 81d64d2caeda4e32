//! `litellm_params.model` → which provider and which upstream model id (CFG-04). The rules
//! follow LiteLLM's: a `provider/` prefix, `custom_llm_provider` overriding it, and for
//! unprefixed names the inference LiteLLM makes for common families.

use super::model::{BedrockApi, OpenAiFlavor, ProviderKind};

/// The prefixes a `model` may start with, for messages and the README.
pub const ACCEPTED_PREFIXES: &[&str] = &[
    "anthropic/",
    "bedrock/",
    "bedrock/invoke/",
    "bedrock/converse/",
    "openai/",
    "ollama/",
    "ollama_chat/",
    "hosted_vllm/",
];

/// LiteLLM routes under `bedrock/` that pick a model-specific body format. Switchyard
/// speaks Invoke with the Anthropic Messages body and Converse for everything else, so
/// these are reported (CFG-04) with the Converse spelling to use, rather than silently
/// switched to Converse: a silent switch would change behaviour the user asked for.
const OTHER_BEDROCK_ROUTES: &[&str] = &[
    "converse_like",
    "llama",
    "deepseek_r1",
    "qwen2",
    "qwen3",
    "nova",
    "mistral",
    "cohere",
    "openai",
    "twelvelabs",
    "moonshot",
    "gpt-oss",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub provider: ProviderKind,
    /// The upstream model id, without the provider prefix.
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    Empty,
    HasWhitespace,
    UnknownPrefix(String),
    UnknownCustomProvider(String),
    OtherBedrockRoute { route: String, id: String },
    NotInferable,
}

impl ModelError {
    /// The message and remedy for a `model` value that failed with this error.
    pub fn explain(&self, model: &str) -> (String, String) {
        let accepted = ACCEPTED_PREFIXES.join(", ");
        match self {
            Self::Empty => (
                format!("model `{model}` names no model id"),
                format!(
                    "write a provider prefix and a model id, e.g. anthropic/claude-sonnet-4-5; accepted prefixes: {accepted}"
                ),
            ),
            Self::HasWhitespace => (
                format!("model `{model}` contains whitespace"),
                "remove the spaces; model ids never contain them".to_owned(),
            ),
            Self::UnknownPrefix(p) => (
                format!("model `{model}`: provider prefix `{p}/` is not supported"),
                format!(
                    "use one of the accepted prefixes: {accepted} (any OpenAI-compatible server works as openai/ with api_base)"
                ),
            ),
            Self::UnknownCustomProvider(p) => (
                format!("custom_llm_provider `{p}` is not supported"),
                "use one of: anthropic, bedrock, openai, ollama, ollama_chat, hosted_vllm"
                    .to_owned(),
            ),
            Self::OtherBedrockRoute { route, id } => (
                format!("model `{model}`: the LiteLLM route bedrock/{route}/ is not supported"),
                format!(
                    "write bedrock/converse/{id} (Converse serves any Bedrock chat model) or, for Claude, bedrock/invoke/{id}"
                ),
            ),
            Self::NotInferable => (
                format!(
                    "model `{model}` has no provider prefix and is not a name whose provider can be inferred (claude-*, gpt-*, o1*, o3*, o4*, Bedrock ids like anthropic.claude-*)"
                ),
                format!(
                    "add a prefix, e.g. ollama/{model} or openai/{model} with api_base; accepted prefixes: {accepted}"
                ),
            ),
        }
    }
}

fn provider_named(name: &str) -> Option<ProviderKind> {
    Some(match name {
        "anthropic" => ProviderKind::Anthropic,
        "bedrock" => ProviderKind::Bedrock(BedrockApi::Auto),
        "openai" => ProviderKind::OpenAi(OpenAiFlavor::OpenAi),
        "ollama" => ProviderKind::OpenAi(OpenAiFlavor::Ollama),
        "ollama_chat" => ProviderKind::OpenAi(OpenAiFlavor::OllamaChat),
        "hosted_vllm" => ProviderKind::OpenAi(OpenAiFlavor::HostedVllm),
        _ => return None,
    })
}

pub fn parse_model(model: &str, custom_provider: Option<&str>) -> Result<ModelRef, ModelError> {
    if model.chars().any(char::is_whitespace) {
        return Err(ModelError::HasWhitespace);
    }
    if model.is_empty() {
        return Err(ModelError::Empty);
    }
    if let Some(name) = custom_provider {
        let name = name.trim();
        let provider = provider_named(name)
            .ok_or_else(|| ModelError::UnknownCustomProvider(name.to_owned()))?;
        let rest = model.strip_prefix(name).and_then(|r| r.strip_prefix('/')).unwrap_or(model);
        return match provider {
            ProviderKind::Bedrock(_) => bedrock(rest),
            _ => whole(provider, rest),
        };
    }
    match model.split_once('/') {
        Some(("bedrock", rest)) => bedrock(rest),
        Some((prefix, rest)) => match provider_named(prefix) {
            Some(provider) => whole(provider, rest),
            // A Bedrock ARN contains `/` but no LiteLLM prefix.
            None if prefix.starts_with("arn:aws") => {
                whole(ProviderKind::Bedrock(BedrockApi::Auto), model)
            }
            None => Err(ModelError::UnknownPrefix(prefix.to_owned())),
        },
        None => infer(model),
    }
}

fn whole(provider: ProviderKind, model: &str) -> Result<ModelRef, ModelError> {
    if model.is_empty() {
        return Err(ModelError::Empty);
    }
    Ok(ModelRef { provider, model: model.to_owned() })
}

fn bedrock(rest: &str) -> Result<ModelRef, ModelError> {
    if rest.starts_with("arn:") {
        return whole(ProviderKind::Bedrock(BedrockApi::Auto), rest);
    }
    match rest.split_once('/') {
        None => whole(ProviderKind::Bedrock(BedrockApi::Auto), rest),
        Some(("invoke", id)) => whole(ProviderKind::Bedrock(BedrockApi::Invoke), id),
        Some(("converse", id)) => whole(ProviderKind::Bedrock(BedrockApi::Converse), id),
        Some((route, id)) if OTHER_BEDROCK_ROUTES.contains(&route) => {
            Err(ModelError::OtherBedrockRoute { route: route.to_owned(), id: id.to_owned() })
        }
        Some((route, _)) => Err(ModelError::UnknownPrefix(format!("bedrock/{route}"))),
    }
}

/// Unprefixed names LiteLLM resolves through its model catalog: Claude names go to the
/// Anthropic API, GPT and o-series to OpenAI, and Bedrock ids (optionally with a geo
/// inference-profile prefix) to Bedrock.
fn infer(model: &str) -> Result<ModelRef, ModelError> {
    let provider = if model.starts_with("claude-") {
        ProviderKind::Anthropic
    } else if ["gpt-", "chatgpt-", "o1", "o3", "o4"].iter().any(|p| model.starts_with(p)) {
        ProviderKind::OpenAi(OpenAiFlavor::OpenAi)
    } else if is_bedrock_id(model) {
        ProviderKind::Bedrock(BedrockApi::Auto)
    } else {
        return Err(ModelError::NotInferable);
    };
    whole(provider, model)
}

fn is_bedrock_id(model: &str) -> bool {
    const VENDORS: &[&str] = &["anthropic.", "amazon.", "meta.", "mistral.", "cohere.", "ai21."];
    let unprefixed = match model.split_once('.') {
        Some((geo, rest))
            if ["us", "eu", "apac", "global", "jp", "au", "ca", "us-gov"].contains(&geo) =>
        {
            rest
        }
        _ => model,
    };
    VENDORS.iter().any(|v| unprefixed.starts_with(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(model: &str) -> (ProviderKind, String) {
        let r = parse_model(model, None).unwrap();
        (r.provider, r.model)
    }

    #[test]
    fn prefixes_pick_the_provider_and_are_stripped() {
        use BedrockApi::*;
        assert_eq!(
            ok("anthropic/claude-sonnet-4-5"),
            (ProviderKind::Anthropic, "claude-sonnet-4-5".into())
        );
        assert_eq!(
            ok("bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0"),
            (ProviderKind::Bedrock(Auto), "us.anthropic.claude-3-5-haiku-20241022-v1:0".into())
        );
        assert_eq!(
            ok("bedrock/invoke/anthropic.claude-x"),
            (ProviderKind::Bedrock(Invoke), "anthropic.claude-x".into())
        );
        assert_eq!(
            ok("bedrock/converse/meta.llama3"),
            (ProviderKind::Bedrock(Converse), "meta.llama3".into())
        );
        assert_eq!(
            ok("bedrock/arn:aws:bedrock:us-east-1:123:inference-profile/us.anthropic.claude-x"),
            (
                ProviderKind::Bedrock(Auto),
                "arn:aws:bedrock:us-east-1:123:inference-profile/us.anthropic.claude-x".into()
            )
        );
        assert_eq!(
            ok("ollama/llama3.1:8b"),
            (ProviderKind::OpenAi(OpenAiFlavor::Ollama), "llama3.1:8b".into())
        );
        assert_eq!(
            ok("ollama_chat/qwen3"),
            (ProviderKind::OpenAi(OpenAiFlavor::OllamaChat), "qwen3".into())
        );
        assert_eq!(
            ok("hosted_vllm/meta-llama/Llama-3.1-8B"),
            (ProviderKind::OpenAi(OpenAiFlavor::HostedVllm), "meta-llama/Llama-3.1-8B".into())
        );
    }

    #[test]
    fn unprefixed_names_are_inferred_like_litellm() {
        assert_eq!(ok("claude-3-5-haiku-latest").0, ProviderKind::Anthropic);
        for m in ["gpt-4o", "o1", "o3-mini", "o4-mini", "chatgpt-4o-latest"] {
            assert_eq!(ok(m).0, ProviderKind::OpenAi(OpenAiFlavor::OpenAi), "{m}");
        }
        assert_eq!(
            ok("us.anthropic.claude-sonnet-4-20250514-v1:0").0,
            ProviderKind::Bedrock(BedrockApi::Auto)
        );
        assert_eq!(parse_model("llama3", None), Err(ModelError::NotInferable));
    }

    #[test]
    fn custom_llm_provider_overrides_the_prefix_rules() {
        let r = parse_model("my-model", Some("openai")).unwrap();
        assert_eq!(
            (r.provider, r.model.as_str()),
            (ProviderKind::OpenAi(OpenAiFlavor::OpenAi), "my-model")
        );
        let r = parse_model("meta-llama/Llama-3", Some("hosted_vllm")).unwrap();
        assert_eq!(r.model, "meta-llama/Llama-3");
        let r = parse_model("bedrock/invoke/anthropic.claude-x", Some("bedrock")).unwrap();
        assert_eq!(r.provider, ProviderKind::Bedrock(BedrockApi::Invoke));
        assert_eq!(
            parse_model("x", Some("azure")),
            Err(ModelError::UnknownCustomProvider("azure".into()))
        );
    }

    #[test]
    fn unsupported_and_malformed_models() {
        assert_eq!(
            parse_model("azure/gpt-4o", None),
            Err(ModelError::UnknownPrefix("azure".into()))
        );
        assert_eq!(
            parse_model("bedrock/llama/meta.llama3-70b", None),
            Err(ModelError::OtherBedrockRoute {
                route: "llama".into(),
                id: "meta.llama3-70b".into()
            })
        );
        assert_eq!(parse_model("anthropic/", None), Err(ModelError::Empty));
        assert_eq!(parse_model("anthropic/claude sonnet", None), Err(ModelError::HasWhitespace));
        let (msg, remedy) = ModelError::UnknownPrefix("azure".into()).explain("azure/gpt-4o");
        assert!(msg.contains("azure/gpt-4o"));
        assert!(remedy.contains("anthropic/") && remedy.contains("hosted_vllm/"));
    }
}
