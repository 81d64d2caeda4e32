//! At start, each budget's current period is seeded from the ledger — the config's and those
//! of every virtual key, team, user and customer — so a restarted gateway remembers what this
//! period already spent. Runs before the gateway listens (off the request path); a counter
//! that already holds spend (Redis kept it, or another replica seeded it) is left as it is.

use std::collections::HashSet;

use chrono::DateTime;

use super::{Budget, Limits, Scope};
use crate::ledger::read::Reader;
use crate::ledger::{Settings, SpendFilter};

/// Seeds `budgets` from the ledger `settings` names; returns how many were seeded, or why
/// none could be.
pub async fn seed_from_ledger<'a>(
    limits: &Limits,
    budgets: impl IntoIterator<Item = &'a Budget>,
    settings: &Settings,
) -> Result<usize, String> {
    let reader = Reader::new(settings);
    let now = limits.now();
    let mut seen = HashSet::new();
    let mut chosen = Vec::new();
    let mut wanted = Vec::new();
    for budget in budgets {
        if !seen.insert((budget.scope.clone(), budget.period)) {
            continue;
        }
        let filter = match &budget.scope {
            Scope::Global => SpendFilter::All,
            Scope::Alias(a) => SpendFilter::ModelGroup(a.clone()),
            Scope::Provider(p) => SpendFilter::Provider(p.clone()),
            Scope::Deployment(d) => SpendFilter::ModelId(d.clone()),
            Scope::EndUser(u) => SpendFilter::EndUser(u.clone()),
            Scope::Key(k) => SpendFilter::ApiKey(k.clone()),
            Scope::Team(t) => SpendFilter::Team(t.clone()),
            Scope::User(u) => SpendFilter::User(u.clone()),
            // Spend of one key on one model starts from zero at a restart.
            Scope::KeyModel(..) => continue,
        };
        let since = budget.period.window(now).start.max(DateTime::UNIX_EPOCH);
        chosen.push(budget);
        wanted.push((filter, since));
    }
    // Every budget's spend in one read, however many keys there are.
    let spent = reader.spent_since_each(&wanted).await.map_err(|e| e.to_string());
    let mut seeded = 0;
    for (budget, spent) in chosen.into_iter().zip(spent.as_deref().unwrap_or_default()) {
        if !spent.is_zero() {
            limits.seed(budget, *spent).await;
            seeded += 1;
        }
    }
    reader.close().await;
    spent.map(|_| seeded)
}
