//! The limits a config declares, resolved once per load: the global budget
//! (`litellm_settings.max_budget` + `budget_duration`), per alias (`model_max_budget`), per
//! provider (`provider_budget_config`), per deployment (`litellm_params.max_budget` +
//! `budget_duration`, `rpm`, `tpm`, `max_parallel_requests`) and per end user (`max_end_user_budget`). `plan` builds
//! the [`Plan`] of one attempt at one deployment; a key record adds its own scopes there.

use std::collections::HashMap;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::{Budget, OnExceed, Period, Plan, RateLimit, Scope};
use crate::canonical::{ChatRequest, Usage};
use crate::config::{BudgetLimit, Config, Deployment};
use crate::cost::Price;

/// Output tokens assumed when a request sets no `max_tokens` and the deployment's
/// `model_info` names no `max_output_tokens` / `max_tokens`.
pub const DEFAULT_MAX_OUTPUT: u64 = 4096;

#[derive(Debug, Default)]
pub struct ConfigLimits {
    global: Option<Budget>,
    end_user: Option<(Decimal, Period)>,
    aliases: HashMap<String, Budget>,
    providers: HashMap<String, Budget>,
    deployments: HashMap<String, (Option<Budget>, Option<RateLimit>)>,
}

fn dec(f: f64) -> Decimal {
    Decimal::from_str(&f.to_string()).or_else(|_| Decimal::try_from(f)).unwrap_or(Decimal::MAX)
}

fn period(text: Option<&str>) -> Period {
    text.and_then(Period::parse).unwrap_or(Period::Forever)
}

fn from_limit(scope: Scope, b: &BudgetLimit, source: String, on_exceed: OnExceed) -> Budget {
    Budget {
        scope,
        limit: dec(b.budget_limit),
        period: period(b.time_period.as_deref()),
        soft: None,
        source,
        on_exceed,
    }
}

/// The provider name budgets use: LiteLLM's prefix without a route (`bedrock/converse` →
/// `bedrock`).
pub fn provider_name(d: &Deployment) -> &'static str {
    let prefix = d.provider.prefix();
    prefix.split('/').next().unwrap_or(prefix)
}

impl ConfigLimits {
    pub fn new(config: &Config) -> Self {
        let b = &config.budgets;
        let global = b.global.as_ref().map(|g| {
            from_limit(Scope::Global, g, "litellm_settings.max_budget".to_owned(), OnExceed::Refuse)
        });
        let end_user = b.max_end_user_budget.map(|limit| (dec(limit), Period::Forever));
        let aliases = b
            .model_max_budget
            .iter()
            .map(|(alias, l)| {
                let budget = from_limit(
                    Scope::Alias(alias.clone()),
                    l,
                    format!("model_max_budget.{alias}"),
                    OnExceed::Refuse,
                );
                (alias.clone(), budget)
            })
            .collect();
        let providers = b
            .provider_budget_config
            .iter()
            .map(|(p, l)| {
                let budget = from_limit(
                    Scope::Provider(p.clone()),
                    l,
                    format!("provider_budget_config.{p}"),
                    OnExceed::Skip,
                );
                (p.clone(), budget)
            })
            .collect();
        let deployments = config
            .deployments()
            .map(|d| {
                let budget = d.max_budget.map(|limit| Budget {
                    scope: Scope::Deployment(d.id.clone()),
                    limit: dec(limit),
                    period: period(d.budget_duration.as_deref()),
                    soft: None,
                    source: format!("max_budget of deployment {}", d.id),
                    on_exceed: OnExceed::Skip,
                });
                let parallel = d.max_parallel_requests.filter(|n| *n > 0).map(u64::from);
                let any = d.rpm.is_some() || d.tpm.is_some() || parallel.is_some();
                let rate = any.then(|| RateLimit {
                    scope: Scope::Deployment(d.id.clone()),
                    rpm: d.rpm,
                    tpm: d.tpm,
                    max_parallel: parallel,
                    source: format!("rpm/tpm/max_parallel_requests of deployment {}", d.id),
                    on_exceed: OnExceed::Skip,
                });
                (d.id.clone(), (budget, rate))
            })
            .collect();
        Self { global, end_user, aliases, providers, deployments }
    }

    /// Whether any limit is configured (none: admission costs nothing).
    pub fn is_empty(&self) -> bool {
        self.global.is_none()
            && self.end_user.is_none()
            && self.aliases.is_empty()
            && self.providers.is_empty()
            && self.deployments.values().all(|(b, r)| b.is_none() && r.is_none())
    }

    /// The config's limits on one attempt at `d` for a request of `end_user`: the
    /// request's own budgets (refuse) and the deployment's provider and deployment limits
    /// (skip). The caller adds the request's cost.
    pub fn plan(&self, end_user: Option<&str>, d: &Deployment) -> Plan {
        let mut plan = Plan::default();
        if let Some(g) = &self.global {
            plan.budgets.push(g.clone());
        }
        if let Some(a) = self.aliases.get(&d.alias) {
            plan.budgets.push(a.clone());
        }
        if let (Some((limit, period)), Some(user)) = (&self.end_user, end_user) {
            plan.budgets.push(Budget {
                scope: Scope::EndUser(user.to_owned()),
                limit: *limit,
                period: *period,
                soft: None,
                source: "litellm_settings.max_end_user_budget".to_owned(),
                on_exceed: OnExceed::Refuse,
            });
        }
        if let Some(p) = self.providers.get(provider_name(d)) {
            plan.budgets.push(p.clone());
        }
        if let Some((budget, rate)) = self.deployments.get(&d.id) {
            plan.budgets.extend(budget.iter().cloned());
            plan.rates.extend(rate.iter().cloned());
        }
        plan
    }

    /// Every budget the config declares, for seeding from the ledger at start.
    pub fn budgets(&self) -> impl Iterator<Item = &Budget> {
        self.global
            .iter()
            .chain(self.aliases.values())
            .chain(self.providers.values())
            .chain(self.deployments.values().filter_map(|(b, _)| b.as_ref()))
    }
}

/// The most output a request may produce: its `max_tokens`, else the deployment's
/// `model_info.max_output_tokens` (or `max_tokens`), else [`DEFAULT_MAX_OUTPUT`].
pub fn max_output(req: &ChatRequest, d: &Deployment) -> u64 {
    if let Some(n) = req.max_tokens {
        return u64::from(n);
    }
    ["max_output_tokens", "max_tokens"]
        .iter()
        .find_map(|k| d.model_info.get(*k).and_then(serde_json::Value::as_u64))
        .unwrap_or(DEFAULT_MAX_OUTPUT)
}

/// The most a request can cost: its estimated input at the input price plus its maximum
/// output at the output price (the long-context tier when the input crosses it). `None`
/// when the price is unknown.
pub fn max_cost(price: &Price, input_tokens: u64, max_output: u64) -> Option<Decimal> {
    price.cost(&Usage { input_tokens, output_tokens: max_output, ..Usage::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::{Rate, Rates, Source};

    fn price(input: &str, output: &str) -> Price {
        let rate = |s: &str| {
            Some(Rate { per_token: Decimal::from_str(s).unwrap(), source: Source::LitellmParams })
        };
        Price {
            base: Rates { input: rate(input), output: rate(output), ..Rates::default() },
            long_context: None,
            batch: None,
        }
    }

    #[test]
    fn max_cost_is_input_estimate_plus_max_output_at_their_prices() {
        let p = price("0.000003", "0.000015");
        assert_eq!(max_cost(&p, 1000, 100), Some(Decimal::from_str("0.0045").unwrap()));
        assert_eq!(max_cost(&p, 0, 0), Some(Decimal::ZERO));
        assert_eq!(max_cost(&Price::default(), 1000, 100), None, "unknown price reserves nothing");
    }

    #[test]
    fn max_output_comes_from_the_request_then_model_info_then_the_default() {
        let yaml = "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_key: sk-x\n";
        let config = crate::config::load_from_str(
            yaml,
            std::path::Path::new("t.yaml"),
            &crate::config::MapEnv::new([("HOME", "/nonexistent")]),
        )
        .unwrap();
        let mut d = (*config.groups[0].deployments[0]).clone();
        let mut req = ChatRequest::default();
        assert_eq!(max_output(&req, &d), DEFAULT_MAX_OUTPUT);
        d.model_info.insert("max_output_tokens".into(), serde_json::json!(8192));
        assert_eq!(max_output(&req, &d), 8192);
        req.max_tokens = Some(64);
        assert_eq!(max_output(&req, &d), 64);
    }
}
