//! The limits a caller brings to a request, on top of the config's: its virtual key's, the
//! key's team's and user's, and the end user's (`/customer/*`). Built once per request by
//! the handler, added to the plan of every attempt; the per-model ones (`model_max_budget`,
//! `model_rpm_limit`, `model_tpm_limit`) only when the attempt's alias is theirs.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::{Budget, OnExceed, Period, Plan, RateLimit, Scope};

/// A key's limits on one model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelLimit {
    pub budget: Option<(Decimal, Period)>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

/// Everything a caller adds to a request's plan. Empty for the master key and a caller
/// without limits: then admission is the config's alone.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub budgets: Vec<Budget>,
    pub rates: Vec<RateLimit>,
    /// The key (its hash) and its per-model limits, by model name.
    pub models: Option<(String, HashMap<String, ModelLimit>)>,
    /// The request is an item of a batch the gateway runs: charged (and reserved) at the
    /// deployment's batch rates when it has them. Set by the batch runner only, never from
    /// anything a client sends.
    pub batch: bool,
}

/// Spend limits far above any real budget, for a soft budget set without a hard one (a
/// budget needs a limit; this one is never reached).
pub const NO_LIMIT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

impl Caller {
    /// No limits of the caller's own (the batch flag changes prices, not limits).
    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty() && self.rates.is_empty() && self.models.is_none()
    }

    /// The price an attempt at `target` is charged and reserved at for this caller.
    pub fn price_of(
        &self,
        price: &std::sync::Arc<crate::cost::Price>,
    ) -> std::sync::Arc<crate::cost::Price> {
        if self.batch && price.batch.is_some() {
            std::sync::Arc::new(price.for_batch())
        } else {
            price.clone()
        }
    }

    /// A budget of `scope` (refusing), from a limit, a soft limit and a period.
    pub fn budget(
        &mut self,
        scope: Scope,
        limit: Option<f64>,
        soft: Option<f64>,
        period: Option<&str>,
        source: String,
    ) {
        if limit.is_none() && soft.is_none() {
            return;
        }
        self.budgets.push(Budget {
            scope,
            limit: limit.map_or(NO_LIMIT, dec),
            period: period.and_then(Period::parse).unwrap_or(Period::Forever),
            soft: soft.map(dec),
            source,
            on_exceed: OnExceed::Refuse,
        });
    }

    /// Rate limits of `scope` (refusing); negative or absent values mean none.
    pub fn rate(
        &mut self,
        scope: Scope,
        rpm: Option<i64>,
        tpm: Option<i64>,
        parallel: Option<i64>,
        source: String,
    ) {
        let n = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
        let (rpm, tpm, max_parallel) = (n(rpm), n(tpm), n(parallel));
        if rpm.is_none() && tpm.is_none() && max_parallel.is_none() {
            return;
        }
        self.rates.push(RateLimit {
            scope,
            rpm,
            tpm,
            max_parallel,
            source,
            on_exceed: OnExceed::Refuse,
        });
    }

    /// Adds the caller's limits for an attempt on `alias` to `plan`.
    pub fn add_to(&self, plan: &mut Plan, alias: &str) {
        // A customer's own budget replaces the config's default end-user budget (one counter
        // must not be reserved twice).
        if !self.budgets.is_empty() {
            plan.budgets.retain(|b| !self.budgets.iter().any(|c| c.scope == b.scope));
        }
        plan.budgets.extend(self.budgets.iter().cloned());
        plan.rates.extend(self.rates.iter().cloned());
        let Some((key, models)) = &self.models else { return };
        let Some(m) = models.get(alias) else { return };
        let scope = Scope::KeyModel(key.clone(), alias.to_owned());
        if let Some((limit, period)) = m.budget {
            plan.budgets.push(Budget {
                scope: scope.clone(),
                limit,
                period,
                soft: None,
                source: format!("model_max_budget.{alias} of the key"),
                on_exceed: OnExceed::Refuse,
            });
        }
        if m.rpm.is_some() || m.tpm.is_some() {
            plan.rates.push(RateLimit {
                scope,
                rpm: m.rpm,
                tpm: m.tpm,
                max_parallel: None,
                source: format!("model_rpm_limit/model_tpm_limit.{alias} of the key"),
                on_exceed: OnExceed::Refuse,
            });
        }
    }
}

/// A float from a record (LiteLLM stores budgets as `DOUBLE PRECISION`) as the decimal it
/// was written as.
pub fn dec(f: f64) -> Decimal {
    use std::str::FromStr;
    if !f.is_finite() || f < 0.0 {
        return Decimal::ZERO;
    }
    Decimal::from_str(&f.to_string()).or_else(|_| Decimal::try_from(f)).unwrap_or(NO_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_model_limits_apply_only_to_their_alias() {
        let mut caller = Caller::default();
        caller.budget(Scope::Key("k".into()), Some(1.5), None, Some("1d"), "key".into());
        caller.rate(Scope::Key("k".into()), Some(5), None, Some(-1), "key".into());
        let limit =
            ModelLimit { budget: Some((Decimal::ONE, Period::Forever)), rpm: Some(2), tpm: None };
        caller.models = Some(("k".into(), HashMap::from([("frontier".to_owned(), limit)])));
        let mut cheap = Plan::default();
        caller.add_to(&mut cheap, "cheap");
        assert_eq!((cheap.budgets.len(), cheap.rates.len()), (1, 1));
        assert_eq!(cheap.budgets[0].limit.to_string(), "1.5");
        assert_eq!(cheap.budgets[0].period, Period::Day);
        assert_eq!(cheap.rates[0].max_parallel, None, "a negative limit is no limit");
        let mut frontier = Plan::default();
        caller.add_to(&mut frontier, "frontier");
        assert_eq!((frontier.budgets.len(), frontier.rates.len()), (2, 2));
        assert_eq!(frontier.budgets[1].scope, Scope::KeyModel("k".into(), "frontier".into()));
    }

    #[test]
    fn a_soft_budget_alone_never_refuses() {
        let mut caller = Caller::default();
        caller.budget(Scope::Team("t".into()), None, Some(2.0), None, "team".into());
        assert_eq!(caller.budgets[0].limit, NO_LIMIT);
        assert_eq!(caller.budgets[0].soft, Some(Decimal::TWO));
        caller.budget(Scope::User("u".into()), None, None, None, "user".into());
        assert_eq!(caller.budgets.len(), 1, "nothing set, nothing added");
    }
}
