//! A deployment's effective price, decided once per config load: per rate, what
//! `litellm_params` says, else what `model_info` says, else the built-in table's row for
//! the provider and model id, else unknown.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::price::{Kind, LongContext, Price, Rate, Rates, Source};
use super::table::{self, Family, Row, Tier};
use crate::config::{Costs, Deployment, OpenAiFlavor, ProviderKind};
use crate::provider::BedrockModelId;

/// The effective price of `d`.
pub fn resolve(d: &Deployment) -> Price {
    let region = d.aws.region_name.as_deref();
    let mut price = table_row(d.provider, &d.model, region).map(from_row).unwrap_or_default();
    overlay_model_info(&mut price, &d.model_info);
    overlay_litellm_params(&mut price.base, &d.costs);
    price
}

/// The built-in table's price of `model` at `provider`, none configured (unknown rates when
/// the table has no row): what a pass-through call naming a model no deployment has costs.
pub fn table_price(provider: ProviderKind, model: &str, region: Option<&str>) -> Price {
    table_row(provider, model, region).map(from_row).unwrap_or_default()
}

/// The table's row for a deployment's model: by exact id; on Bedrock, an in-region id by its
/// `<region>/<id>` row first (the ARN's region, else the deployment's), an ARN by the id
/// inside, and a geo profile (`us.`, `eu.` …) the table lacks by its in-region id, which AWS
/// prices the same. A `global.` profile has its own price or none.
pub fn table_row(
    provider: ProviderKind,
    model: &str,
    region: Option<&str>,
) -> Option<&'static Row> {
    match provider {
        ProviderKind::Anthropic => table::row(Family::Anthropic, model),
        ProviderKind::OpenAi(OpenAiFlavor::OpenAi) => table::row(Family::OpenAi, model),
        // Local and self-hosted servers: priced in the config or unknown. A provider the
        // gateway does not speak never serves, so it has no price to look up.
        ProviderKind::OpenAi(_) | ProviderKind::Unsupported => None,
        ProviderKind::Bedrock(_) => bedrock_row(model, region),
    }
}

fn bedrock_row(model: &str, region: Option<&str>) -> Option<&'static Row> {
    let id = BedrockModelId::parse(model);
    // An ARN: the profile or foundation model it names, called from the ARN's region.
    if let Some(inner) = id.arn_resource().filter(|inner| *inner != id.raw) {
        return bedrock_row(inner, id.arn_region().or(region));
    }
    let in_region = |bare: &str| {
        region
            .and_then(|r| table::row(Family::Bedrock, &format!("{r}/{bare}")))
            .or_else(|| table::row(Family::Bedrock, bare))
    };
    match id.geo() {
        None => in_region(&id.raw),
        Some(_) if table::row(Family::Bedrock, &id.raw).is_some() => {
            table::row(Family::Bedrock, &id.raw)
        }
        Some("global") => None,
        Some(_) => id.foundation().and_then(in_region),
    }
}

fn from_row(row: &'static Row) -> Price {
    let source = Source::Table { family: row.family, model: row.model };
    let rates = |tier: &Tier| {
        let mut rates = Rates::default();
        for (kind, price) in Kind::ALL.into_iter().zip(tier) {
            if let Some(per_token) = price {
                rates.set(kind, Rate { per_token: *per_token, source });
            }
        }
        rates
    };
    Price {
        base: rates(&row.base),
        long_context: row
            .long_context
            .as_ref()
            .map(|(above, tier)| LongContext { above: *above, rates: rates(tier) }),
        batch: None,
    }
}

fn overlay_litellm_params(base: &mut Rates, costs: &Costs) {
    for (kind, value) in [
        (Kind::Input, costs.input_cost_per_token),
        (Kind::Output, costs.output_cost_per_token),
        (Kind::CacheRead, costs.cache_read_input_token_cost),
        (Kind::CacheWrite, costs.cache_creation_input_token_cost),
    ] {
        if let Some(per_token) = value.and_then(from_f64) {
            base.set(kind, Rate { per_token, source: Source::LitellmParams });
        }
    }
}

/// LiteLLM's batch rates in `model_info`: input, output.
pub(super) const BATCH_KEYS: [&str; 2] =
    ["input_cost_per_token_batches", "output_cost_per_token_batches"];

/// LiteLLM's keys in `model_info`: the five rates, the batch rates, and a long-context tier written as
/// `<key>_above_<N>k_tokens` (`input_cost_per_token_above_200k_tokens`).
fn overlay_model_info(price: &mut Price, info: &Map<String, Value>) {
    let rate =
        |v: &Value| from_json(v).map(|per_token| Rate { per_token, source: Source::ModelInfo });
    for kind in Kind::ALL {
        if let Some(r) = info.get(kind.litellm_key()).and_then(rate) {
            price.base.set(kind, r);
        }
    }
    let batch = |key: &str| info.get(key).and_then(rate);
    if let (Some(input), Some(output)) = (batch(BATCH_KEYS[0]), batch(BATCH_KEYS[1])) {
        price.batch = Some(super::price::BatchRates { input, output });
    }
    for (key, value) in info {
        let Some((kind, above)) = long_context_key(key) else { continue };
        let Some(r) = rate(value) else { continue };
        let long = match &mut price.long_context {
            Some(long) if long.above == above => long,
            // A threshold of its own replaces the table's tier.
            long => long.insert(LongContext { above, rates: Rates::default() }),
        };
        long.rates.set(kind, r);
    }
}

/// `input_cost_per_token_above_200k_tokens` → (input, 200,000).
pub(super) fn long_context_key(key: &str) -> Option<(Kind, u64)> {
    let (head, rest) = key.rsplit_once("_above_")?;
    let thousands: u64 = rest.strip_suffix("k_tokens")?.parse().ok()?;
    let kind = Kind::ALL.into_iter().find(|k| k.litellm_key() == head)?;
    Some((kind, thousands.checked_mul(1000)?))
}

/// A config number → its shortest decimal form, so 0.000003 is exactly 3e-6.
fn from_f64(value: f64) -> Option<Decimal> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Decimal::from_str(&format!("{value}")).ok().map(|d| d.normalize())
}

fn from_json(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(n) => from_f64(n.as_f64()?),
        Value::String(s) => from_f64(s.trim().parse().ok()?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{self, MapEnv};
    use crate::cost::usage;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    /// The price of the only deployment of a config with these `litellm_params` lines (and
    /// `model_info` lines, if any).
    fn price(params: &str, model_info: &str) -> Price {
        let mut yaml = format!("model_list:\n  - model_name: m\n    litellm_params:\n{params}");
        if !model_info.is_empty() {
            yaml.push_str(&format!("    model_info:\n{model_info}"));
        }
        let env = MapEnv::new([
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
            ("OPENAI_API_KEY", "sk-x"),
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "us-east-1"),
        ]);
        let config = config::load_from_str(&yaml, Path::new("c.yaml"), &env)
            .unwrap_or_else(|e| panic!("{e:?}"));
        resolve(&config.groups[0].deployments[0])
    }

    fn model(m: &str) -> Price {
        price(&format!("      model: {m}\n"), "")
    }

    const MILLION: u64 = 1_000_000;

    #[test]
    fn anthropic_models_are_priced_from_the_table_with_their_source() {
        let p = model("anthropic/claude-sonnet-4-6");
        assert_eq!(p.cost(&usage(MILLION, MILLION, 0, 0, 0)), Some(d("18")));
        assert_eq!(p.cost(&usage(0, 0, MILLION, MILLION, MILLION / 2)), Some(d("5.175")));
        let source = p.base.input.unwrap().source;
        assert_eq!(
            source.to_string(),
            "built-in price table (anthropic claude-sonnet-4-6, 2026-12-03)"
        );
        // Sonnet 4.5's 1M-context tier: above 200k input tokens.
        let long = model("anthropic/claude-sonnet-4-5-20250929");
        assert_eq!(long.cost(&usage(300_000, 1000, 0, 0, 0)), Some(d("1.8225")));
    }

    #[test]
    fn bedrock_ids_profiles_and_arns_find_their_price() {
        // 100k input tokens: under the long-context threshold.
        let cost = |m: &str| model(m).cost(&usage(100_000, 0, 0, 0, 0));
        let id = "anthropic.claude-sonnet-4-5-20250929-v1:0";
        assert_eq!(cost(&format!("bedrock/global.{id}")), Some(d("0.3")));
        assert_eq!(cost(&format!("bedrock/us.{id}")), Some(d("0.33")));
        assert_eq!(cost(&format!("bedrock/{id}")), Some(d("0.33")));
        assert_eq!(
            cost(&format!(
                "bedrock/arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{id}"
            )),
            Some(d("0.33"))
        );
        assert_eq!(
            cost(&format!("bedrock/arn:aws:bedrock:us-east-1::foundation-model/{id}")),
            Some(d("0.33"))
        );
        assert_eq!(cost("bedrock/converse/us.amazon.nova-lite-v1:0"), Some(d("0.006")));
        assert_eq!(cost("bedrock/converse/mistral.mistral-large-2407-v1:0"), Some(d("0.2")));
        // A geo profile the table lacks is priced as its in-region id.
        assert_eq!(cost("bedrock/apac.anthropic.claude-opus-4-6-v1"), Some(d("0.55")));
        // In-region calls from a region with its own price (GovCloud: 20 % more).
        let gov = |m: &str, region: &str| {
            price(&format!("      model: {m}\n      aws_region_name: {region}\n"), "")
                .cost(&usage(100_000, 0, 0, 0, 0))
        };
        assert_eq!(gov(&format!("bedrock/{id}"), "us-gov-west-1"), Some(d("0.36")));
        assert_eq!(
            gov(
                &format!("bedrock/arn:aws-us-gov:bedrock:us-gov-east-1::foundation-model/{id}"),
                "us-gov-west-1"
            ),
            Some(d("0.36"))
        );
        assert_eq!(gov(&format!("bedrock/{id}"), "us-west-2"), Some(d("0.33")));
        assert_eq!(
            gov("bedrock/converse/meta.llama3-70b-instruct-v1:0", "eu-west-2"),
            Some(d("0.345"))
        );
        assert_eq!(
            gov("bedrock/converse/meta.llama3-70b-instruct-v1:0", "us-east-1"),
            Some(d("0.265"))
        );
        // An application inference profile says nothing about its model.
        assert_eq!(
            cost(
                "bedrock/arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"
            ),
            None
        );
    }

    #[test]
    fn a_model_with_no_price_anywhere_is_unknown_never_free() {
        assert!(!model("anthropic/claude-unreleased-9").is_known());
        assert_eq!(model("ollama/llama3.2").cost(&usage(10, 10, 0, 0, 0)), None);
        assert_eq!(model("openai/my-finetune").cost(&usage(10, 10, 0, 0, 0)), None);
        assert_eq!(
            model("bedrock/global.meta.llama3-3-70b-instruct-v1:0").cost(&usage(1, 1, 0, 0, 0)),
            None
        );
    }

    #[test]
    fn config_prices_win_per_key_and_zero_means_free() {
        // A local model priced 0 in the config costs 0.
        let local = price(
            "      model: ollama/llama3.2\n      input_cost_per_token: 0\n      output_cost_per_token: 0\n",
            "",
        );
        assert_eq!(local.cost(&usage(5000, 500, 0, 0, 0)), Some(Decimal::ZERO));
        assert_eq!(local.base.input.unwrap().source, Source::LitellmParams);

        // The config's input price, the table's others.
        let p = price(
            "      model: anthropic/claude-sonnet-4-6\n      input_cost_per_token: 0.000002\n",
            "",
        );
        assert_eq!(p.base.input.unwrap().per_token, d("0.000002"));
        assert_eq!(p.base.input.unwrap().source, Source::LitellmParams);
        assert!(matches!(p.base.output.unwrap().source, Source::Table { .. }));
        assert_eq!(p.cost(&usage(MILLION, MILLION, 0, 0, 0)), Some(d("17")));

        // litellm_params before model_info before the table.
        let p = price(
            "      model: openai/gpt-4o\n      output_cost_per_token: 0.00001\n",
            "      output_cost_per_token: 0.5\n      input_cost_per_token: \"0.000001\"\n      cache_read_input_token_cost: 0.0000001\n",
        );
        assert_eq!(p.base.output.unwrap().source, Source::LitellmParams);
        assert_eq!(
            p.base.input.unwrap(),
            Rate { per_token: d("0.000001"), source: Source::ModelInfo }
        );
        assert_eq!(p.cost(&usage(MILLION, MILLION, MILLION, 0, 0)), Some(d("11.1")));
    }

    #[test]
    fn model_info_can_price_1_hour_writes_and_a_long_context_tier() {
        let p = price(
            "      model: openai/my-model\n",
            "      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n      cache_creation_input_token_cost_above_1hr: 0.000004\n      input_cost_per_token_above_128k_tokens: 0.000003\n",
        );
        assert_eq!(p.cost(&usage(0, 0, 0, MILLION, MILLION)), Some(d("4")));
        let long = p.long_context.unwrap();
        assert_eq!(long.above, 128_000);
        assert_eq!(p.cost(&usage(200_000, 0, 0, 0, 0)), Some(d("0.6")));
    }

    #[test]
    fn config_floats_become_their_shortest_decimal() {
        assert_eq!(from_f64(0.000003), Some(d("0.000003")));
        assert_eq!(from_f64(3.75e-6), Some(d("0.00000375")));
        assert_eq!(from_f64(0.0), Some(Decimal::ZERO));
        assert_eq!(from_f64(-1.0), None);
        assert_eq!(from_f64(f64::NAN), None);
        assert_eq!(from_json(&serde_json::json!("3e-6")), Some(d("0.000003")));
    }
}
