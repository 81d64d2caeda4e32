//! What `config check`, startup and `doctor` say about prices: a deployment whose spend
//! would be unknown (CFG-10), and which LiteLLM price keys are applied where (the others
//! are warned about as CFG-06).

use super::price::{Kind, Price};
use super::resolve::long_context_key;
use crate::config::Deployment;

/// Catalog id of an unpriced deployment.
pub const UNPRICED: &str = "CFG-10";

/// Why a deployment's spend will be unknown, and what to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpriced {
    pub cause: String,
    pub remedy: String,
}

impl Unpriced {
    /// One line for a config warning.
    pub fn message(&self) -> String {
        format!("{}. Fix: {}", self.cause, self.remedy)
    }
}

/// `Some` when `d` will serve answers it cannot price: no input or no output rate anywhere.
/// A `mock_response` deployment calls no upstream (nothing bills it) and an unservable one
/// never answers, so neither is reported.
pub fn unpriced(d: &Deployment, price: &Price) -> Option<Unpriced> {
    if price.is_known() || d.mock_response.is_some() || d.unservable.is_some() || d.is_pattern() {
        return None;
    }
    // Embeddings bill input only: an input rate prices them.
    if price.base.input.is_some() && crate::embedding::only_embeds(d) {
        return None;
    }
    let missing: Vec<&str> = [Kind::Input, Kind::Output]
        .into_iter()
        .filter(|k| price.base.get(*k).is_none())
        .map(Kind::litellm_key)
        .collect();
    let what = match (price.base.input.is_some(), price.base.output.is_some()) {
        (false, false) => "no price".to_owned(),
        (true, _) => "an input price but no output price".to_owned(),
        (_, true) => "an output price but no input price".to_owned(),
    };
    Some(Unpriced {
        cause: format!(
            "`{}` ({}) has {what} in its litellm_params, its model_info or the built-in \
             price table: spend will be recorded as unknown, not as $0",
            d.alias, d.model_as_written
        ),
        remedy: format!(
            "add {} (USD per token) to its litellm_params or model_info, or 0 for a free \
             local model",
            missing.join(" and ")
        ),
    })
}

/// A key LiteLLM reads as a price (`input_cost_per_second`, `output_cost_per_pixel`,
/// `cache_read_input_token_cost_above_200k_tokens` …).
pub fn is_price_key(key: &str) -> bool {
    key.contains("_cost_per_") || key.ends_with("_token_cost") || key.contains("_token_cost_")
}

/// Whether a price key under `model_info` is applied: the five per-token rates and their
/// long-context tiers (`<rate>_above_<N>k_tokens`) and the batch input and output rates.
pub fn applied_in_model_info(key: &str) -> bool {
    Kind::ALL.iter().any(|k| k.litellm_key() == key)
        || long_context_key(key).is_some()
        || super::resolve::BATCH_KEYS.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_keys_are_told_apart_from_what_is_applied() {
        for key in [
            "input_cost_per_second",
            "output_cost_per_second",
            "input_cost_per_pixel",
            "output_cost_per_audio_token",
            "cache_read_input_token_cost_above_200k_tokens",
            "input_cost_per_token_batches",
        ] {
            assert!(is_price_key(key), "{key}");
        }
        assert!(!is_price_key("max_input_tokens"));
        assert!(!is_price_key("base_model"));
        assert!(applied_in_model_info("input_cost_per_token"));
        assert!(applied_in_model_info("cache_creation_input_token_cost_above_1hr"));
        assert!(applied_in_model_info("output_cost_per_token_above_200k_tokens"));
        assert!(!applied_in_model_info("input_cost_per_second"));
        assert!(applied_in_model_info("input_cost_per_token_batches"));
        assert!(!applied_in_model_info("input_cost_per_character_batches"));
    }
}
