//! A deployment's effective price (each per-token rate with where it came from) and the one
//! function that turns reported usage into a cost, in exact decimal arithmetic.

use std::fmt;

use rust_decimal::Decimal;

use super::table::{DATE, Family};
use crate::canonical::Usage;

/// Where one rate came from, for `/model/info` and `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Written in the deployment's `litellm_params`.
    LitellmParams,
    /// Written in the deployment's `model_info`.
    ModelInfo,
    /// The built-in table's row for this provider and model id (dated [`DATE`]).
    Table { family: Family, model: &'static str },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LitellmParams => f.write_str("litellm_params"),
            Self::ModelInfo => f.write_str("model_info"),
            Self::Table { family, model } => {
                write!(f, "built-in price table ({} {model}, {DATE})", family.as_str())
            }
        }
    }
}

/// A price per token and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_token: Decimal,
    pub source: Source,
}

/// The five rates of one tier. A missing cache rate is charged as input (a cache that the
/// price does not know about is assumed to save nothing, never to be free); a missing
/// 1-hour write rate as the 5-minute one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rates {
    pub input: Option<Rate>,
    pub output: Option<Rate>,
    pub cache_read: Option<Rate>,
    pub cache_write: Option<Rate>,
    pub cache_write_1h: Option<Rate>,
}

/// Token kinds, in the table's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Input,
    Output,
    CacheRead,
    CacheWrite,
    CacheWrite1h,
}

impl Kind {
    pub const ALL: [Kind; 5] =
        [Kind::Input, Kind::Output, Kind::CacheRead, Kind::CacheWrite, Kind::CacheWrite1h];

    /// LiteLLM's key for this rate (in `litellm_params` or `model_info`).
    pub fn litellm_key(self) -> &'static str {
        match self {
            Self::Input => "input_cost_per_token",
            Self::Output => "output_cost_per_token",
            Self::CacheRead => "cache_read_input_token_cost",
            Self::CacheWrite => "cache_creation_input_token_cost",
            Self::CacheWrite1h => "cache_creation_input_token_cost_above_1hr",
        }
    }
}

impl Rates {
    pub fn get(&self, kind: Kind) -> Option<Rate> {
        *self.slot(kind)
    }

    pub fn set(&mut self, kind: Kind, rate: Rate) {
        *self.slot_mut(kind) = Some(rate);
    }

    fn slot(&self, kind: Kind) -> &Option<Rate> {
        match kind {
            Kind::Input => &self.input,
            Kind::Output => &self.output,
            Kind::CacheRead => &self.cache_read,
            Kind::CacheWrite => &self.cache_write,
            Kind::CacheWrite1h => &self.cache_write_1h,
        }
    }

    fn slot_mut(&mut self, kind: Kind) -> &mut Option<Rate> {
        match kind {
            Kind::Input => &mut self.input,
            Kind::Output => &mut self.output,
            Kind::CacheRead => &mut self.cache_read,
            Kind::CacheWrite => &mut self.cache_write,
            Kind::CacheWrite1h => &mut self.cache_write_1h,
        }
    }

    /// The cost of `usage` at these rates; `None` without an input or output rate.
    fn cost(&self, usage: &Usage) -> Option<Decimal> {
        let input = self.input?.per_token;
        let output = self.output?.per_token;
        let read = self.cache_read.map_or(input, |r| r.per_token);
        let write = self.cache_write.map_or(input, |r| r.per_token);
        let write_1h = self.cache_write_1h.map_or(write, |r| r.per_token);
        let one_hour = usage.cache_creation_1h_input_tokens.min(usage.cache_creation_input_tokens);
        let mut total = Decimal::ZERO;
        for (tokens, rate) in [
            (usage.input_tokens, input),
            (usage.output_tokens, output),
            (usage.cache_read_input_tokens, read),
            (usage.cache_creation_5m_input_tokens(), write),
            (one_hour, write_1h),
        ] {
            if tokens > 0 {
                total = total.checked_add(rate.checked_mul(Decimal::from(tokens))?)?;
            }
        }
        Some(total.normalize())
    }
}

/// A long-context tier: above `above` input tokens (input + cache read + cache write, as
/// Anthropic and AWS count them), every token of the request is priced at `rates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongContext {
    pub above: u64,
    pub rates: Rates,
}

/// A deployment's effective price. Unknown (no cost, never $0) unless both the input and
/// the output rate are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Price {
    pub base: Rates,
    pub long_context: Option<LongContext>,
    /// LiteLLM's `input_cost_per_token_batches` / `output_cost_per_token_batches`: what a
    /// provider charges for requests sent as part of a batch (usually half).
    pub batch: Option<BatchRates>,
}

/// A price's batch input and output rates; both or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRates {
    pub input: Rate,
    pub output: Rate,
}

impl Price {
    pub fn is_known(&self) -> bool {
        self.base.input.is_some() && self.base.output.is_some()
    }

    /// The price a batch item is charged at: the batch input and output rates when this
    /// price has them (cache rates stay the base's, and no long-context tier: batch rates are
    /// listed flat), else the full price.
    pub fn for_batch(&self) -> Price {
        match self.batch {
            Some(batch) => {
                let mut base = self.base;
                base.input = Some(batch.input);
                base.output = Some(batch.output);
                Price { base, long_context: None, batch: self.batch }
            }
            None => *self,
        }
    }

    /// The price of a request run by Anthropic's Message Batches API: the batch rates when
    /// this price has them, else half the input and output rates — Anthropic bills the
    /// Batches API at 50 % of the standard input and output prices (its pricing page). Cache
    /// rates stay the base's and there is no long-context tier, as in [`Price::for_batch`].
    pub fn for_anthropic_batch(&self) -> Price {
        if self.batch.is_some() {
            return self.for_batch();
        }
        let half = |rate: Option<Rate>| {
            rate.map(|r| Rate { per_token: r.per_token / Decimal::from(2), source: r.source })
        };
        let mut base = self.base;
        base.input = half(base.input);
        base.output = half(base.output);
        Price { base, long_context: None, batch: None }
    }

    /// A base rate in USD per million tokens (as price lists show it), exactly.
    pub fn per_million(&self, kind: Kind) -> Option<Decimal> {
        let rate = self.base.get(kind)?;
        Some((rate.per_token * Decimal::from(1_000_000)).normalize())
    }

    /// What `tokens` input tokens cost at the base input rate, with no output: an embedding
    /// request's cost. `None` without an input rate.
    pub fn input_cost(&self, tokens: u64) -> Option<Decimal> {
        let rate = self.base.input?.per_token;
        Some(rate.checked_mul(Decimal::from(tokens))?.normalize())
    }

    /// What `usage` cost in USD, exactly; `None` when the price is unknown. The
    /// long-context tier applies when the request's whole input exceeds its threshold; a
    /// rate it lacks is the base tier's.
    pub fn cost(&self, usage: &Usage) -> Option<Decimal> {
        match &self.long_context {
            Some(long) if usage.total_input_tokens() > long.above && self.is_known() => {
                let mut rates = self.base;
                for kind in Kind::ALL {
                    if let Some(rate) = long.rates.get(kind) {
                        rates.set(kind, rate);
                    }
                }
                rates.cost(usage)
            }
            _ => self.base.cost(usage),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::cost::usage;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn rate(s: &str) -> Option<Rate> {
        Some(Rate { per_token: d(s), source: Source::LitellmParams })
    }

    fn sonnet() -> Price {
        Price {
            base: Rates {
                input: rate("0.000003"),
                output: rate("0.000015"),
                cache_read: rate("0.0000003"),
                cache_write: rate("0.00000375"),
                cache_write_1h: rate("0.000006"),
            },
            long_context: Some(LongContext {
                above: 200_000,
                rates: Rates {
                    input: rate("0.000006"),
                    output: rate("0.0000225"),
                    cache_read: rate("0.0000006"),
                    cache_write: rate("0.0000075"),
                    cache_write_1h: rate("0.000012"),
                },
            }),
            batch: None,
        }
    }

    #[test]
    fn each_token_kind_has_its_rate() {
        let p = sonnet();
        assert_eq!(p.cost(&usage(1000, 0, 0, 0, 0)), Some(d("0.003")));
        assert_eq!(p.cost(&usage(0, 1000, 0, 0, 0)), Some(d("0.015")));
        assert_eq!(p.cost(&usage(0, 0, 1000, 0, 0)), Some(d("0.0003")));
        assert_eq!(p.cost(&usage(0, 0, 0, 1000, 0)), Some(d("0.00375")));
        // 1-hour writes are part of the cache writes and cost more than 5-minute ones.
        assert_eq!(p.cost(&usage(0, 0, 0, 1000, 1000)), Some(d("0.006")));
        assert_eq!(p.cost(&usage(0, 0, 0, 1000, 400)), Some(d("0.00465")));
        // 12 in, 30 out, 2000 read, 100 written: exact, no float drift.
        assert_eq!(p.cost(&usage(12, 30, 2000, 100, 0)), Some(d("0.001461")));
        assert_eq!(p.cost(&Usage::default()), Some(Decimal::ZERO));
    }

    #[test]
    fn above_the_threshold_every_token_is_at_the_long_context_rate() {
        let p = sonnet();
        // 200,000 input tokens exactly: still the base tier.
        assert_eq!(p.cost(&usage(200_000, 1000, 0, 0, 0)), Some(d("0.615")));
        // One more: every token at the long-context rates.
        assert_eq!(p.cost(&usage(200_001, 1000, 0, 0, 0)), Some(d("1.222506")));
        // Cache reads and writes count toward the threshold.
        assert_eq!(
            p.cost(&usage(1, 1000, 150_000, 50_000, 10_000)),
            Some(d("0.000006") + d("0.0225") + d("0.09") + d("0.3") + d("0.12"))
        );
    }

    #[test]
    fn unknown_stays_unknown_and_zero_means_free() {
        assert_eq!(Price::default().cost(&usage(10, 10, 0, 0, 0)), None);
        let half = Price {
            base: Rates { input: rate("0.000001"), ..Rates::default() },
            ..Price::default()
        };
        assert!(!half.is_known());
        assert_eq!(half.cost(&usage(10, 10, 0, 0, 0)), None);
        let free = Price {
            base: Rates { input: rate("0"), output: rate("0"), ..Rates::default() },
            long_context: None,
            batch: None,
        };
        assert_eq!(free.cost(&usage(10_000, 500, 300, 20, 0)), Some(Decimal::ZERO));
    }

    #[test]
    fn cache_tokens_without_a_cache_rate_cost_what_input_costs() {
        let p = Price {
            base: Rates {
                input: rate("0.00000025"),
                output: rate("0.00000125"),
                ..Rates::default()
            },
            long_context: None,
            batch: None,
        };
        assert_eq!(p.cost(&usage(100, 0, 100, 100, 50)), Some(d("0.000075")));
    }

    #[test]
    fn batch_items_pay_batch_rates_when_the_price_has_them() {
        let mut p = sonnet();
        assert_eq!(p.for_batch(), p, "no batch rates: the full price");
        p.batch = Some(BatchRates {
            input: rate("0.0000015").unwrap(),
            output: rate("0.0000075").unwrap(),
        });
        let batch = p.for_batch();
        assert_eq!(batch.cost(&usage(1000, 1000, 0, 0, 0)), Some(d("0.009")));
        assert_eq!(p.cost(&usage(1000, 1000, 0, 0, 0)), Some(d("0.018")));
        // Flat: no long-context tier above 200k.
        assert_eq!(batch.cost(&usage(300_000, 0, 0, 0, 0)), Some(d("0.45")));
    }

    #[test]
    fn costs_print_as_plain_decimals() {
        let cost = sonnet().cost(&usage(10, 2, 0, 0, 0)).unwrap();
        assert_eq!(cost.to_string(), "0.00006");
        let tiny = Price {
            base: Rates {
                input: rate("0.000000035"),
                output: rate("0.00000014"),
                ..Rates::default()
            },
            long_context: None,
            batch: None,
        };
        assert_eq!(tiny.cost(&usage(1, 0, 0, 0, 0)).unwrap().to_string(), "0.000000035");
    }

    #[test]
    fn an_anthropic_batch_is_half_price_unless_batch_rates_are_written() {
        let rate = |usd: &str| Rate { per_token: usd.parse().unwrap(), source: Source::ModelInfo };
        let mut price = Price::default();
        price.base.input = Some(rate("0.000002"));
        price.base.output = Some(rate("0.00001"));
        let usage = Usage { input_tokens: 100, output_tokens: 20, ..Usage::default() };
        assert_eq!(price.for_anthropic_batch().cost(&usage), Some("0.0002".parse().unwrap()));
        price.batch = Some(BatchRates { input: rate("0.0000015"), output: rate("0.0000075") });
        assert_eq!(price.for_anthropic_batch().cost(&usage), Some("0.0003".parse().unwrap()));
    }
}
