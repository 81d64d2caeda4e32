//! Which deployments a requested name reaches, in LiteLLM's order: a `model_group_alias`
//! first (an alias named like a `model_name` takes it over, as in LiteLLM, where the alias
//! is looked up first; `config check` warns), then an exact `model_name`, then a
//! deployment's `model_info.id`, then the most specific wildcard `model_name`.

use std::borrow::Cow;

use super::wildcard;
use super::{Router, Target};

/// The deployments a name reaches.
pub(super) struct Reached<'r> {
    pub targets: Cow<'r, [Target]>,
    /// A `model_info.id`: that one deployment, tried even while cooling.
    pub pinned: bool,
    /// The group's name (an alias's target, a pattern as written), for tag errors.
    pub group: &'r str,
}

impl Router {
    /// The name a Bedrock model id from `/bedrock/model/{modelId}/…` is routed by: the id
    /// itself when the router serves it as a name (an alias, a `model_name`, a
    /// `model_info.id`, a wildcard); else the `model_name` of the first Bedrock deployment,
    /// in config order, whose model is that id (so its whole group, with failover, serves);
    /// else of the first whose model is the same foundation model (`us.anthropic.…` and
    /// `anthropic.…` of one model); else the Anthropic name inside the id when the router
    /// serves it (Claude Code in Bedrock mode turns ANTHROPIC_MODEL=claude-sonnet-4-6 into
    /// `us.anthropic.claude-sonnet-4-6`). `None`: nothing serves it.
    pub fn bedrock_route(&self, model_id: &str) -> Option<String> {
        if self.serves(model_id) {
            return Some(model_id.to_owned());
        }
        let bedrock = || {
            self.targets()
                .map(|t| &t.deployment)
                .filter(|d| matches!(d.provider, crate::config::ProviderKind::Bedrock(_)))
        };
        if let Some(d) = bedrock().find(|d| d.model == model_id) {
            return Some(d.alias.clone());
        }
        let wanted = crate::provider::BedrockModelId::parse(model_id);
        let foundation = wanted.foundation()?;
        if let Some(d) = bedrock().find(|d| {
            crate::provider::BedrockModelId::parse(&d.model).foundation() == Some(foundation)
        }) {
            return Some(d.alias.clone());
        }
        wanted.anthropic_equivalent().filter(|name| self.serves(name))
    }

    /// The group a `model_group_alias` name routes to.
    pub fn alias_target(&self, name: &str) -> Option<&str> {
        self.group_aliases.get(name).map(String::as_str)
    }

    pub(super) fn reach(&self, name: &str) -> Option<Reached<'_>> {
        let name = self.alias_target(name).unwrap_or(name);
        if let Some((group, targets)) = self.groups.get_key_value(name) {
            return Some(Reached { targets: Cow::Borrowed(targets), pinned: false, group });
        }
        if let Some(t) = self.by_id.get(name) {
            let group = t.deployment.alias.as_str();
            return Some(Reached {
                targets: Cow::Borrowed(std::slice::from_ref(t)),
                pinned: true,
                group,
            });
        }
        let (pattern, matched) = wildcard::find(&self.patterns, name)?;
        let targets = wildcard::serve(pattern, &matched, self.factory.as_ref());
        Some(Reached { targets: Cow::Owned(targets.to_vec()), pinned: false, group: &pattern.name })
    }

    /// The deployments `name` reaches, in the group's configured order (a wildcard's made
    /// concrete for it); `None` when nothing serves it.
    pub fn reaches(&self, name: &str) -> Option<Vec<Target>> {
        self.reach(name).map(|r| r.targets.into_owned())
    }

    /// What requests for `name` are counted under in metrics: the alias, group, deployment
    /// id or pattern as configured — never the name as sent, so clients cannot grow the
    /// series. `None` when nothing serves `name`.
    pub fn label_for(&self, name: &str) -> Option<&str> {
        if let Some((alias, _)) = self.group_aliases.get_key_value(name) {
            return Some(alias);
        }
        if let Some((group, _)) = self.groups.get_key_value(name) {
            return Some(group);
        }
        if let Some((id, _)) = self.by_id.get_key_value(name) {
            return Some(id);
        }
        wildcard::find(&self.patterns, name).map(|(p, _)| p.name.as_str())
    }

    /// Whether `name` reaches any deployment.
    pub fn serves(&self, name: &str) -> bool {
        self.label_for(name).is_some()
    }

    /// The names a client may send as they are: the groups that are not patterns, then the
    /// aliases not marked `hidden`, in config order.
    pub fn listed_names(&self) -> impl Iterator<Item = &str> {
        let groups = self.aliases.iter().filter(|g| !g.contains('*')).map(String::as_str);
        let aliases = self
            .settings
            .model_group_alias
            .iter()
            .filter(|(name, a)| {
                !a.hidden && !self.groups.contains_key(*name) && self.serves(&a.model)
            })
            .map(|(name, _)| name.as_str());
        groups.chain(aliases)
    }

    /// What `/health` probes for `t`: `t` itself, or for a wildcard deployment the model its
    /// `model_info.health_check_model` names (matched like a request, as LiteLLM probes
    /// wildcard routes); `None` when a wildcard has none — there is no one model to ask.
    pub fn probe_target(&self, t: &Target) -> Option<Target> {
        if !t.deployment.is_pattern() {
            return Some(t.clone());
        }
        let name = t.deployment.model_info.get("health_check_model")?.as_str()?;
        let parts = crate::config::pattern::parts_for(&t.deployment, name)?;
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        Some(wildcard::concrete(t, &parts, self.factory.as_ref()))
    }

    /// The wildcard `model_name`s, most specific first.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.name.as_str())
    }
}
