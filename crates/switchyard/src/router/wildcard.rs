//! Wildcard groups (`model_name: anthropic/*`, `claude-*`, `*`): the deployments that serve
//! a requested name no `model_name` spells out, with the matched part filling the `*` of
//! each deployment's `model`.
//!
//! Each matched name gets its own concrete targets (the deployment with its model filled
//! in, a provider for it, its own price) sharing the pattern deployment's live state, so
//! cooldowns and limits stay per configured deployment. They are built once per name and
//! kept in a map that requests read without a lock; the map stops growing at
//! [`MAX_NAMES`] per pattern, beyond which a name's targets are built per request — clients
//! cannot grow the gateway's memory by sending names.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{ProviderFactory, Target};
use crate::config::Deployment;
use crate::config::pattern;
use crate::cost;

/// Names kept per pattern.
const MAX_NAMES: usize = 256;

/// One wildcard group.
pub(super) struct Pattern {
    /// The `model_name` as written, e.g. `anthropic/*`.
    pub name: String,
    pub targets: Vec<Target>,
    built: ArcSwap<HashMap<String, Arc<[Target]>>>,
}

impl Pattern {
    pub fn new(name: String, targets: Vec<Target>) -> Self {
        Self { name, targets, built: ArcSwap::from_pointee(HashMap::new()) }
    }

    /// The targets serving `name`, which this pattern matched with `parts`.
    fn targets_for(
        &self,
        name: &str,
        parts: &[&str],
        factory: Option<&ProviderFactory>,
    ) -> Arc<[Target]> {
        if let Some(t) = self.built.load().get(name) {
            return t.clone();
        }
        let targets: Arc<[Target]> =
            self.targets.iter().map(|t| concrete(t, parts, factory)).collect();
        if self.built.load().len() < MAX_NAMES {
            self.built.rcu(|map| {
                let mut map = HashMap::clone(map);
                map.entry(name.to_owned()).or_insert_with(|| targets.clone());
                map
            });
        }
        targets
    }
}

/// A pattern deployment made concrete for one name: its `model` filled in (the `model` as
/// written keeps the pattern, for bounded metrics labels), its provider and price for
/// that model, and the pattern deployment's own live state and cooldown policy.
pub(super) fn concrete(t: &Target, parts: &[&str], factory: Option<&ProviderFactory>) -> Target {
    let mut d: Deployment = (*t.deployment).clone();
    d.model = pattern::fill(&t.deployment.model, parts);
    let d = Arc::new(d);
    Target {
        provider: factory.map_or_else(|| t.provider.clone(), |make| make(&d)),
        price: Arc::new(cost::resolve(&d)),
        deployment: d,
        state: t.state.clone(),
        cooldown: t.cooldown,
    }
}

/// The patterns, most specific first (ties: config order).
pub(super) fn sort(patterns: &mut [Pattern]) {
    patterns.sort_by_key(|p| std::cmp::Reverse(pattern::specificity(&p.name)));
}

/// The most specific pattern matching `name` and what its `*`s matched. A name without a
/// provider prefix that matches none is tried again with the provider LiteLLM infers for
/// it (`claude-sonnet-4-6` as `anthropic/claude-sonnet-4-6`, `us.anthropic.claude-…` as
/// `bedrock/us.anthropic.claude-…`), as LiteLLM's pattern router does.
pub(super) fn find<'p>(patterns: &'p [Pattern], name: &str) -> Option<(&'p Pattern, String)> {
    let direct = patterns.iter().find(|p| pattern::captures(&p.name, name).is_some());
    if let Some(p) = direct {
        return Some((p, name.to_owned()));
    }
    let inferred = pattern::inferred_name(name)?;
    let p = patterns.iter().find(|p| pattern::captures(&p.name, &inferred).is_some())?;
    Some((p, inferred))
}

/// The concrete targets serving `name` through `pattern` (which matched `matched`).
pub(super) fn serve(
    pattern: &Pattern,
    matched: &str,
    factory: Option<&ProviderFactory>,
) -> Arc<[Target]> {
    let parts = pattern::captures(&pattern.name, matched).unwrap_or_default();
    pattern.targets_for(matched, &parts, factory)
}
