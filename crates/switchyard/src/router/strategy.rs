//! The order in which a group's deployments are tried, per routing strategy.
//!
//! Pure functions of the deployments' configuration and live state: no I/O, no clocks
//! beyond the `now` passed in, randomness from the caller's generator (seeded in tests).

use tokio::time::Instant;

use super::Target;
use crate::config::{Deployment, RoutingStrategy};

/// Indices into `targets`, most preferred first. Every deployment appears once; the
/// caller skips the ones that are cooling or over their limits. Deployments with a lower
/// `order` always come before those with a higher one (missing `order` comes last); the
/// strategy decides within one `order`.
pub fn rank(
    strategy: RoutingStrategy,
    targets: &[Target],
    now: Instant,
    rng: &mut fastrand::Rng,
) -> Vec<usize> {
    let mut tiers: Vec<(u32, Vec<usize>)> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let order = t.deployment.order.unwrap_or(u32::MAX);
        match tiers.iter_mut().find(|(o, _)| *o == order) {
            Some((_, members)) => members.push(i),
            None => tiers.push((order, vec![i])),
        }
    }
    tiers.sort_by_key(|(order, _)| *order);
    let mut ranked = Vec::with_capacity(targets.len());
    for (_, members) in tiers {
        ranked.extend(rank_tier(strategy, targets, members, now, rng));
    }
    ranked
}

fn rank_tier(
    strategy: RoutingStrategy,
    targets: &[Target],
    mut members: Vec<usize>,
    now: Instant,
    rng: &mut fastrand::Rng,
) -> Vec<usize> {
    // A random start breaks ties fairly for the sorting strategies.
    rng.shuffle(&mut members);
    match strategy {
        RoutingStrategy::SimpleShuffle => weighted_shuffle(targets, members, rng),
        RoutingStrategy::LeastBusy => {
            members.sort_by_key(|&i| targets[i].state.in_flight());
            members
        }
        // Unknown latency sorts first, so a new deployment gets measured.
        RoutingStrategy::LatencyBased => {
            members.sort_by_key(|&i| targets[i].state.latency().unwrap_or_default());
            members
        }
        RoutingStrategy::UsageBased => {
            members.sort_by(|&a, &b| {
                usage_ratio(&targets[a], now).total_cmp(&usage_ratio(&targets[b], now))
            });
            members
        }
        RoutingStrategy::CostBased => {
            members.sort_by(|&a, &b| {
                cost(&targets[a].deployment).total_cmp(&cost(&targets[b].deployment))
            });
            members
        }
    }
}

/// LiteLLM's simple-shuffle: weights from `weight` when the group's first deployment has
/// one, else from `rpm`, else from `tpm`, else uniform — sampled without replacement so
/// the rest of the order is a sensible failover order too.
fn weighted_shuffle(
    targets: &[Target],
    mut members: Vec<usize>,
    rng: &mut fastrand::Rng,
) -> Vec<usize> {
    let first = targets.first().map(|t| &t.deployment);
    let weight: fn(&Deployment) -> f64 = match first {
        Some(d) if d.weight.is_some() => |d| d.weight.unwrap_or(0.0),
        Some(d) if d.rpm.is_some() => |d| d.rpm.unwrap_or(0) as f64,
        Some(d) if d.tpm.is_some() => |d| d.tpm.unwrap_or(0) as f64,
        _ => return members,
    };
    let mut ranked = Vec::with_capacity(members.len());
    while !members.is_empty() {
        let total: f64 = members.iter().map(|&i| weight(&targets[i].deployment).max(0.0)).sum();
        if total <= 0.0 {
            ranked.append(&mut members);
            break;
        }
        let mut pick = rng.f64() * total;
        let mut chosen = members.len() - 1;
        for (pos, &i) in members.iter().enumerate() {
            let w = weight(&targets[i].deployment).max(0.0);
            if pick < w {
                chosen = pos;
                break;
            }
            pick -= w;
        }
        ranked.push(members.remove(chosen));
    }
    ranked
}

/// How close a deployment is to its `rpm`/`tpm` limits this minute (the larger of both).
fn usage_ratio(t: &Target, now: Instant) -> f64 {
    let (requests, tokens) = t.state.usage(now);
    let r = t.deployment.rpm.map_or(0.0, |limit| requests as f64 / limit.max(1) as f64);
    let k = t.deployment.tpm.map_or(0.0, |limit| tokens as f64 / limit.max(1) as f64);
    r.max(k)
}

/// Whether sending one more request of `tokens` would exceed the deployment's limits.
pub fn over_limits(t: &Target, now: Instant, tokens: u64) -> bool {
    let (requests, used) = t.state.usage(now);
    t.deployment.rpm.is_some_and(|limit| requests >= limit)
        || t.deployment.tpm.is_some_and(|limit| used + tokens > limit)
}

fn cost(d: &Deployment) -> f64 {
    d.costs.input_cost_per_token.unwrap_or(0.0) + d.costs.output_cost_per_token.unwrap_or(0.0)
}
