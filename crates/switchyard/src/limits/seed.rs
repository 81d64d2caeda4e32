//! At start, each configured budget's current period is seeded from the ledger, so a
//! restarted gateway remembers what this period already spent. Runs before the gateway
//! listens (off the request path); a counter that already holds spend (Redis kept it, or
//! another replica seeded it) is left as it is.

use chrono::DateTime;

use super::{ConfigLimits, Limits, Scope};
use crate::ledger::{Settings, SpendFilter, SpendReader};

/// Seeds every budget `config` declares from the ledger `settings` names; returns how many
/// were seeded, or why none could be.
pub async fn seed_from_ledger(
    limits: &Limits,
    config: &ConfigLimits,
    settings: &Settings,
) -> Result<usize, String> {
    let reader = SpendReader::open(settings)?;
    let now = limits.now();
    let mut seeded = 0;
    for budget in config.budgets() {
        let filter = match &budget.scope {
            Scope::Global => SpendFilter::All,
            Scope::Alias(a) => SpendFilter::ModelGroup(a.clone()),
            Scope::Provider(p) => SpendFilter::Provider(p.clone()),
            Scope::Deployment(d) => SpendFilter::ModelId(d.clone()),
            Scope::EndUser(u) => SpendFilter::EndUser(u.clone()),
            // Key, team and user spend is seeded from their own records.
            Scope::Key(_) | Scope::KeyModel(..) | Scope::Team(_) | Scope::User(_) => continue,
        };
        let since = budget.period.window(now).start.max(DateTime::UNIX_EPOCH);
        let spent = reader.spent_since(&filter, since).await?;
        if !spent.is_zero() {
            limits.seed(budget, spent).await;
            seeded += 1;
        }
    }
    Ok(seeded)
}
