//! The budgets and rate limits of a caller, read from its records: the virtual key's own
//! (`max_budget`, `soft_budget`, `budget_duration`, `rpm_limit`, `tpm_limit`,
//! `max_parallel_requests`, `model_max_budget`, `model_rpm_limit`, `model_tpm_limit`), its
//! team's and its user's, and the end user's `/customer/*` budget. A key's own columns win
//! over the budget row it references (`budget_id`), as in LiteLLM.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::record::{BudgetRecord, Json};
use super::{Identity, Keys};
use crate::limits::{Budget, Caller, ModelLimit, Period, Scope, caller_dec};

/// The limits `identity` (none for the master key) and the request's `end_user` bring;
/// `default_parallel` (`general_settings.max_parallel_requests`) caps a key that sets no
/// `max_parallel_requests` of its own, as in LiteLLM. The key's own limits are the ones its
/// snapshot built ([`own_limits`]), shared as they are when nothing is added to them.
pub fn caller_limits(
    identity: Option<&Identity>,
    keys: Option<&Keys>,
    end_user: Option<&str>,
    default_parallel: Option<u64>,
) -> Arc<Caller> {
    let own = identity.map(|id| id.limits.clone().unwrap_or_else(|| Arc::new(own_limits(id))));
    let default_parallel = identity
        .filter(|id| {
            let budget = id.budget.as_deref();
            id.key.max_parallel_requests.or(budget.and_then(|b| b.max_parallel_requests)).is_none()
        })
        .and(default_parallel)
        .and_then(|n| i64::try_from(n).ok());
    let customer = match (keys, end_user) {
        (Some(keys), Some(end_user)) => {
            let snap = keys.snapshot();
            snap.end_users
                .get(end_user)
                .and_then(|c| c.budget_id.as_ref().and_then(|b| snap.budgets.get(b)))
                .map(|b| (end_user, b.clone()))
        }
        _ => None,
    };
    if default_parallel.is_none() && customer.is_none() {
        return own.unwrap_or_default();
    }
    let mut caller = own.map(|c| (*c).clone()).unwrap_or_default();
    if let (Some(n), Some(id)) = (default_parallel, identity) {
        // Right after the key's own rate limits, where it was always checked.
        let at = caller.rates.iter().take_while(|r| matches!(r.scope, Scope::Key(_))).count();
        let mut rates = std::mem::take(&mut caller.rates);
        caller.rate(
            Scope::Key(id.key.token.clone()),
            None,
            None,
            Some(n),
            "general_settings.max_parallel_requests (the default for keys without their \
             own max_parallel_requests)"
                .to_owned(),
        );
        let default = caller.rates.pop();
        rates.splice(at..at, default);
        caller.rates = rates;
    }
    if let Some((end_user, b)) = customer {
        caller.budget(
            Scope::EndUser(end_user.to_owned()),
            b.max_budget,
            b.soft_budget,
            b.budget_duration.as_deref(),
            format!("max_budget of customer {end_user}"),
        );
        caller.rate(
            Scope::EndUser(end_user.to_owned()),
            b.rpm_limit,
            b.tpm_limit,
            b.max_parallel_requests,
            format!("rpm_limit/tpm_limit/max_parallel_requests of customer {end_user}"),
        );
    }
    Arc::new(caller)
}

/// The limits a key's records declare: the key's own (its columns, else its budget row's),
/// its per-model ones, its team's and its user's.
pub fn own_limits(id: &Identity) -> Caller {
    let mut caller = Caller::default();
    let key = &id.key;
    let budget = id.budget.as_deref();
    let label = key.key_alias.as_deref().map_or_else(String::new, |a| format!(" ({a})"));
    let from = |own: Option<f64>, of: fn(&BudgetRecord) -> Option<f64>| {
        own.or_else(|| budget.and_then(of))
    };
    caller.budget(
        Scope::Key(key.token.clone()),
        from(key.max_budget, |b| b.max_budget),
        budget.and_then(|b| b.soft_budget),
        key.budget_duration.as_deref().or(budget.and_then(|b| b.budget_duration.as_deref())),
        format!("max_budget of the key{label}"),
    );
    let int = |own: Option<i64>, of: fn(&BudgetRecord) -> Option<i64>| {
        own.or_else(|| budget.and_then(of))
    };
    caller.rate(
        Scope::Key(key.token.clone()),
        int(key.rpm_limit, |b| b.rpm_limit),
        int(key.tpm_limit, |b| b.tpm_limit),
        int(key.max_parallel_requests, |b| b.max_parallel_requests),
        format!("rpm_limit/tpm_limit/max_parallel_requests of the key{label}"),
    );
    let models = model_limits(&key.model_max_budget, &key.metadata);
    if !models.is_empty() {
        caller.models = Some((key.token.clone(), models));
    }
    if let Some(team) = &id.team {
        let name = team.team_alias.as_deref().unwrap_or(&team.team_id);
        caller.budget(
            Scope::Team(team.team_id.clone()),
            team.max_budget,
            team.soft_budget,
            team.budget_duration.as_deref(),
            format!("max_budget of team {name}"),
        );
        caller.rate(
            Scope::Team(team.team_id.clone()),
            team.rpm_limit,
            team.tpm_limit,
            team.max_parallel_requests,
            format!("rpm_limit/tpm_limit/max_parallel_requests of team {name}"),
        );
    }
    if let Some(user) = &id.user {
        caller.budget(
            Scope::User(user.user_id.clone()),
            user.max_budget,
            None,
            user.budget_duration.as_deref(),
            format!("max_budget of user {}", user.user_id),
        );
        caller.rate(
            Scope::User(user.user_id.clone()),
            user.rpm_limit,
            user.tpm_limit,
            user.max_parallel_requests,
            format!("rpm_limit/tpm_limit/max_parallel_requests of user {}", user.user_id),
        );
    }
    caller
}

impl Keys {
    /// Every budget the keys, their teams and users, and the customers declare (for
    /// seeding from the ledger at start).
    pub fn budgets(&self) -> Vec<Budget> {
        let snap = self.snapshot();
        let now = chrono::Utc::now();
        let mut out = Vec::new();
        for token in snap.keys.keys() {
            if let Ok(id) = super::access::identify(&snap, token, now) {
                out.extend(caller_limits(Some(&id), None, None, None).budgets.iter().cloned());
            }
        }
        for user in snap.end_users.keys() {
            out.extend(caller_limits(None, Some(self), Some(user), None).budgets.iter().cloned());
        }
        out
    }
}

/// `model_max_budget` (`{"m": {"budget_limit": 1.0, "time_period": "1d"}}`, or LiteLLM's older
/// `{"m": 1.0}`) and `metadata.model_rpm_limit` / `model_tpm_limit` (`{"m": 5}`), by model.
fn model_limits(max_budget: &Json, metadata: &Json) -> HashMap<String, ModelLimit> {
    let mut out: HashMap<String, ModelLimit> = HashMap::new();
    for (model, v) in max_budget {
        let (limit, period) = match v {
            Value::Number(n) => (n.as_f64(), None),
            Value::Object(o) => (
                o.get("budget_limit").or_else(|| o.get("max_budget")).and_then(Value::as_f64),
                o.get("time_period").or_else(|| o.get("budget_duration")).and_then(Value::as_str),
            ),
            _ => (None, None),
        };
        if let Some(limit) = limit {
            let period = period.and_then(Period::parse).unwrap_or(Period::Forever);
            out.entry(model.clone()).or_default().budget = Some((caller_dec(limit), period));
        }
    }
    for (field, is_rpm) in [("model_rpm_limit", true), ("model_tpm_limit", false)] {
        let Some(Value::Object(map)) = metadata.get(field) else { continue };
        for (model, v) in map {
            let Some(n) = v.as_u64() else { continue };
            let m = out.entry(model.clone()).or_default();
            if is_rpm {
                m.rpm = Some(n);
            } else {
                m.tpm = Some(n);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_limits_read_both_budget_forms_and_the_metadata_rates() {
        let budgets: Json = serde_json::from_str(
            r#"{"frontier": {"budget_limit": 0.5, "time_period": "1d"}, "cheap": 2, "bad": "x"}"#,
        )
        .unwrap();
        let metadata: Json = serde_json::from_str(
            r#"{"model_rpm_limit": {"frontier": 3}, "model_tpm_limit": {"cheap": 100}}"#,
        )
        .unwrap();
        let m = model_limits(&budgets, &metadata);
        assert_eq!(m.len(), 2);
        assert_eq!(m["frontier"].budget, Some(("0.5".parse().unwrap(), Period::Day)));
        assert_eq!(m["frontier"].rpm, Some(3));
        assert_eq!(m["cheap"].budget, Some((2.into(), Period::Forever)));
        assert_eq!(m["cheap"].tpm, Some(100));
    }
}
