//! Phase two: from the YAML tree and the raw structs to the runtime [`Config`], or to
//! every problem at once. Each problem is pinned to a file, line, column and key path by
//! looking the key up in the spanned tree.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::env::{ConfigVar, Env, LayeredEnv};
use super::envfile::EnvFile;
use super::include::{self, Sources};
use super::interpolate::{self, EnvRef, Resolver};
use super::model::{
    Budgets, Config, ConfigOrigin, ConfigWarning, Location, ModelGroup, SourcedSecret, Unservable,
    ValueSource,
};
use super::path::KeyPath;
use super::raw::{self, RawFallbacks, RawTop, TypeError};
use super::yaml::{self, Kind, Node};
use super::{ConfigErrors, ConfigProblem, deploy, keys, pattern, settings};
use crate::secret::Secret;

/// Everything a config is checked against.
pub struct Input<'a> {
    pub path: &'a Path,
    pub origin: ConfigOrigin,
    pub text: &'a str,
    pub env: &'a dyn Env,
    pub env_files: Vec<EnvFile>,
    /// Problems found before the config was read (env files that could not be loaded).
    pub problems: Vec<ConfigProblem>,
}

/// Shared state of one validation run.
pub struct Ctx<'a> {
    pub sources: &'a Sources,
    pub root: &'a Node,
    pub env: &'a dyn Env,
    pub refs: &'a HashMap<KeyPath, EnvRef>,
    pub failed: &'a HashSet<KeyPath>,
    /// `model_list` index → why requests to that deployment cannot be sent.
    pub unservable: &'a HashMap<usize, Unservable>,
    pub problems: Vec<ConfigProblem>,
    pub warnings: Vec<ConfigWarning>,
    pub type_errors: Vec<TypeError>,
}

impl Ctx<'_> {
    fn at(&self, path: &KeyPath, key_pos: bool) -> Location {
        let pos = self.root.locate(path.segs(), key_pos);
        self.sources.location(path, pos)
    }

    /// Where the value at `path` is written (or its nearest written parent).
    pub fn loc(&self, path: &KeyPath) -> Location {
        self.at(path, false)
    }

    /// Where the key at `path` is written.
    pub fn key_loc(&self, path: &KeyPath) -> Location {
        self.at(path, true)
    }

    /// A problem with the value at `path`. Under a key Switchyard does not apply yet (or
    /// does not know) it cannot change what the gateway does, so it is a CFG-06 warning:
    /// a config LiteLLM starts with must start here too.
    pub fn problem(&mut self, id: &'static str, path: &KeyPath, message: String, remedy: String) {
        let location = Some(self.loc(path));
        if let Some(key) = keys::not_applied(path) {
            let message = format!(
                "{message} ({key} has no effect yet, so this does not stop the gateway; fix: {remedy})"
            );
            self.warnings.push(ConfigWarning {
                id: "CFG-06",
                key: path.to_string(),
                location,
                message,
            });
            return;
        }
        self.problems.push(ConfigProblem { id, location, key: path.to_string(), message, remedy });
    }

    /// A warning at the key `path` names.
    pub fn warn(&mut self, id: &'static str, path: &KeyPath, message: String) {
        let location = Some(self.key_loc(path));
        self.warnings.push(ConfigWarning { id, key: path.to_string(), location, message });
    }

    /// A warning at the value written at `path`.
    pub fn warn_value(&mut self, id: &'static str, path: &KeyPath, message: String) {
        let location = Some(self.loc(path));
        self.warnings.push(ConfigWarning { id, key: path.to_string(), location, message });
    }

    /// Whether `path` held an `os.environ/` reference that already failed (so "missing"
    /// would report the same key twice).
    pub fn failed(&self, path: &KeyPath) -> bool {
        self.failed.contains(path)
    }

    /// Whether a type error was found at `path` or inside it (so a "missing" problem
    /// would report the same value twice).
    pub fn type_error_at(&self, path: &KeyPath) -> bool {
        self.type_errors.iter().any(|e| e.path.segs().starts_with(path.segs()))
    }

    /// Whether a type error was found for the value at `path` itself.
    pub fn type_error_at_exactly(&self, path: &KeyPath) -> bool {
        self.type_errors.iter().any(|e| e.path == *path)
    }

    pub fn source(&self, path: &KeyPath) -> ValueSource {
        match self.refs.get(path) {
            Some(r) => ValueSource::ConfigEnvRef {
                var: r.var.clone(),
                origin: r.origin.clone(),
                at: r.at.clone(),
            },
            None => ValueSource::Literal(self.loc(path)),
        }
    }

    pub fn secret(&self, path: &KeyPath, value: String) -> SourcedSecret {
        SourcedSecret { value: Secret::new(value), source: self.source(path) }
    }

    /// Deserializes one part of the file, collecting its type errors.
    pub fn raw<T>(&mut self, value: Option<Value>, path: &KeyPath) -> T
    where
        T: for<'de> serde::Deserialize<'de> + Default,
    {
        match value {
            None | Some(Value::Null) => T::default(),
            Some(v) => raw::collect(v, path, &mut self.type_errors),
        }
    }
}

pub fn run(input: Input<'_>) -> Result<Config, ConfigErrors> {
    let Input { path, origin, text, env, env_files, mut problems } = input;
    let fail = |problems| ConfigErrors { path: Some(path.to_owned()), problems };

    let parsed = match yaml::parse(text) {
        Ok(p) => p,
        Err(e) => {
            problems.push(ConfigProblem {
                id: "CFG-03",
                location: Some(Location {
                    file: path.to_owned(),
                    line: e.pos.line,
                    column: e.pos.column,
                }),
                key: String::new(),
                message: format!("YAML syntax error: {}", e.message),
                remedy: format!(
                    "fix the YAML at line {} column {}: check the indentation (spaces, not tabs), \
                     that each `key: value` has a space after the colon, and that brackets and \
                     quotes are closed",
                    e.pos.line, e.pos.column
                ),
            });
            return Err(fail(problems));
        }
    };
    let mut root = parsed
        .root
        .unwrap_or(Node { kind: Kind::Map(Vec::new()), pos: yaml::Pos { line: 1, column: 1 } });
    if !matches!(root.kind, Kind::Map(_)) {
        problems.push(ConfigProblem {
            id: "CFG-09",
            location: Some(Location {
                file: path.to_owned(),
                line: root.pos.line,
                column: root.pos.column,
            }),
            key: String::new(),
            message: format!(
                "the config must be a mapping with model_list, router_settings, ...; found {}",
                root.type_name()
            ),
            remedy: "start the file with `model_list:` (see examples/quickstart.yaml)".to_owned(),
        });
        return Err(fail(problems));
    }

    let mut pre_warnings: Vec<ConfigWarning> = parsed
        .duplicates
        .iter()
        .map(|d| ConfigWarning {
            id: "CFG-03",
            key: d.path.to_string(),
            location: Some(Location {
                file: path.to_owned(),
                line: d.second.line,
                column: d.second.column,
            }),
            message: format!(
                "`{}` is written twice (also at line {}); the later value wins, as in LiteLLM",
                d.path, d.first.line
            ),
        })
        .collect();

    let sources = include::expand(&mut root, path, &mut problems, &mut pre_warnings);
    let config_vars = environment_variables(&root, &sources, &mut pre_warnings);
    let file_paths: Vec<PathBuf> = env_files.iter().map(|f| f.path.clone()).collect();
    let vars_file = sources.file_of(&KeyPath::root().key("environment_variables"));
    let layered =
        LayeredEnv::new(env).with_files(env_files).with_config_vars(vars_file, config_vars);

    let mut resolver = Resolver {
        env: &layered,
        sources: &sources,
        env_files: &file_paths,
        aliases: interpolate::aliases(&root),
        problems: Vec::new(),
        warnings: Vec::new(),
        out: interpolate::Resolved::default(),
    };
    resolver.run(&mut root);
    problems.append(&mut resolver.problems);
    pre_warnings.append(&mut resolver.warnings);
    let resolved = resolver.out;

    pre_warnings.extend(keys::warnings(&root, &sources));

    let mut ctx = Ctx {
        sources: &sources,
        root: &root,
        env: &layered,
        refs: &resolved.refs,
        failed: &resolved.failed,
        unservable: &resolved.unservable,
        problems: Vec::new(),
        warnings: pre_warnings,
        type_errors: Vec::new(),
    };

    let top: RawTop = ctx.raw(Some(root.to_json()), &KeyPath::root());
    let groups = build_groups(&mut ctx, top.model_list.map(|e| e.0).unwrap_or_default());
    let aliases: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let ids: HashSet<String> =
        groups.iter().flat_map(|g| g.deployments.iter().map(|d| d.id.clone())).collect();

    let parts =
        settings::build(&mut ctx, top.router_settings, top.litellm_settings, top.general_settings);
    let budgets = settings::budgets(
        &mut ctx,
        top.model_max_budget,
        top.provider_budget_config,
        parts.router_budgets,
    );
    let budgets = Budgets {
        global: parts.global_budget,
        max_end_user_budget: parts.max_end_user_budget,
        ..budgets
    };
    for (p, fallbacks) in &parts.fallback_sources {
        check_fallbacks(&mut ctx, p, fallbacks, &aliases, &ids, &parts.router.model_group_alias);
    }
    check_group_aliases(&mut ctx, &parts.router.model_group_alias, &aliases);
    if let Some((p, names)) = &parts.default_fallbacks_source {
        for (i, name) in names.iter().enumerate() {
            let known = reachable(name, &aliases, &parts.router.model_group_alias);
            if !known && !ids.contains(name) {
                undefined_alias(&mut ctx, &p.index(i), name, "default_fallbacks", &aliases);
            }
        }
    }
    for name in budgets.model_max_budget.keys() {
        if !aliases.contains(name) {
            let p = KeyPath::root().key("model_max_budget").key(name.clone());
            let (message, remedy) = undefined_text(name, "model_max_budget", &aliases, false);
            ctx.warn("CFG-05", &p, format!("{message}; it limits nothing. Fix: {remedy}"));
        }
    }

    let type_errors = std::mem::take(&mut ctx.type_errors);
    for e in type_errors {
        let remedy = match e.message.find("expected ") {
            Some(i) => format!("write {} here", &e.message[i + "expected ".len()..]),
            None => "fix the value; the README's configuration reference lists each key".to_owned(),
        };
        ctx.problem("CFG-09", &e.path, e.message, remedy);
    }

    let mut config_problems = std::mem::take(&mut ctx.problems);
    config_problems.sort_by_key(|p| p.location.as_ref().map(|l| (l.line, l.column)));
    problems.append(&mut config_problems);
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    let mut warnings = ctx.warnings;
    warnings.sort_by_key(|w| w.location.as_ref().map(|l| (l.line, l.column)));
    Ok(Config {
        path: path.to_owned(),
        origin,
        env_files: file_paths,
        included: sources.included(),
        groups,
        router: parts.router,
        general: parts.general,
        budgets,
        warnings,
    })
}

/// The `environment_variables` section, read straight from the tree: it feeds the
/// environment that `os.environ/` references are resolved against.
fn environment_variables(
    root: &Node,
    sources: &Sources,
    warnings: &mut Vec<ConfigWarning>,
) -> Vec<ConfigVar> {
    let Some(section) = root.get("environment_variables") else { return Vec::new() };
    let mut vars = Vec::new();
    for e in section.entries() {
        let value = match &e.value.kind {
            Kind::Str(s) => s.clone(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            Kind::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
            Kind::Null => String::new(),
            Kind::Seq(_) | Kind::Map(_) => {
                warnings.push(ConfigWarning {
                    id: "CFG-06",
                    key: format!("environment_variables.{}", e.key),
                    location: Some(sources.location(
                        &KeyPath::root().key("environment_variables").key(e.key.clone()),
                        e.value.pos,
                    )),
                    message: format!(
                        "{} is not set: its value is {}, and an environment variable holds a \
                         single value (write it as NAME: value)",
                        e.key,
                        e.value.type_name()
                    ),
                });
                continue;
            }
        };
        vars.push(ConfigVar { name: e.key.clone(), value, line: e.key_pos.line });
    }
    vars
}

fn build_groups(ctx: &mut Ctx<'_>, entries: Vec<Value>) -> Vec<ModelGroup> {
    let list_path = KeyPath::root().key("model_list");
    if entries.is_empty() {
        let has_list = ctx.root.get("model_list").is_some();
        let p = if has_list { list_path } else { KeyPath::root() };
        ctx.warn(
            "CFG-06",
            &p,
            "no models are configured (model_list is empty or missing): every request will be \
             answered with \"unknown model\""
                .to_owned(),
        );
        return Vec::new();
    }
    let mut groups: Vec<ModelGroup> = Vec::new();
    let mut seen_ids: HashMap<String, KeyPath> = HashMap::new();
    for (i, value) in entries.into_iter().enumerate() {
        let path = list_path.index(i);
        let Some(d) = deploy::build(ctx, value, &path, i) else { continue };
        let id_path = path.key("model_info").key("id");
        if let Some(first) = seen_ids.get(&d.id) {
            let first_at = ctx.loc(first);
            ctx.problem(
                "CFG-09",
                &id_path,
                format!(
                    "deployment id `{}` is also used by {} (line {})",
                    d.id, first, first_at.line
                ),
                "give each deployment its own model_info.id, or remove it to get a derived id"
                    .to_owned(),
            );
            continue;
        }
        seen_ids.insert(d.id.clone(), id_path);
        // A pattern's price is the price of each model it fills in, known per request.
        if !d.is_pattern()
            && let Some(finding) = crate::cost::unpriced(&d, &crate::cost::resolve(&d))
        {
            let model = path.key("litellm_params").key("model");
            ctx.warn(crate::cost::UNPRICED, &model, finding.message());
        }
        let d = Arc::new(d);
        match groups.iter_mut().find(|g| g.name == d.alias) {
            Some(g) => g.deployments.push(d),
            None => groups.push(ModelGroup { name: d.alias.clone(), deployments: vec![d] }),
        }
    }
    groups
}

fn check_fallbacks(
    ctx: &mut Ctx<'_>,
    base: &KeyPath,
    fallbacks: &RawFallbacks,
    aliases: &[String],
    ids: &HashSet<String>,
    group_aliases: &std::collections::BTreeMap<String, crate::config::GroupAlias>,
) {
    let what = base.to_string();
    for rule in &fallbacks.0 {
        let rule_path = match rule.index {
            Some(i) => base.index(i).key(rule.from.clone()),
            None => base.key(rule.from.clone()),
        };
        if !reachable(&rule.from, aliases, group_aliases) {
            let (message, remedy) = undefined_text(&rule.from, &what, aliases, false);
            ctx.warn(
                "CFG-05",
                &rule_path,
                format!(
                    "{message}; no request is sent to it, so this rule never applies. Fix: {remedy}"
                ),
            );
        }
        // `{a: b}` names one target as a plain string; `{a: [b, c]}` a list of them.
        let as_list =
            matches!(ctx.root.find(rule_path.segs()).map(|n| &n.kind), Some(Kind::Seq(_)));
        for (j, to) in rule.to.iter().enumerate() {
            if !reachable(to, aliases, group_aliases) && !ids.contains(to) {
                let p = if as_list { rule_path.index(j) } else { rule_path.clone() };
                undefined_alias(ctx, &p, to, &what, aliases);
            }
        }
    }
}

/// Each `model_group_alias` must lead to a group: a `model_name`, or a name one of the
/// wildcard `model_name`s matches. One that leads nowhere is a warning (LiteLLM starts with
/// it; a request for it is an unknown model). An alias that is also a `model_name` takes
/// that name over, as in LiteLLM, where the alias is looked up first: said at its place.
fn check_group_aliases(
    ctx: &mut Ctx<'_>,
    group_aliases: &std::collections::BTreeMap<String, crate::config::GroupAlias>,
    groups: &[String],
) {
    let base = KeyPath::root().key("router_settings").key("model_group_alias");
    let reaches = |name: &str| {
        groups
            .iter()
            .any(|g| g == name || (g.contains('*') && pattern::captures(g, name).is_some()))
    };
    for (name, alias) in group_aliases {
        let p = base.key(name.clone());
        if !reaches(&alias.model) {
            let (message, remedy) =
                undefined_text(&alias.model, &format!("model_group_alias `{name}`"), groups, false);
            ctx.warn_value(
                "CFG-05",
                &p,
                format!(
                    "{message}; a request for `{name}` is answered as an unknown model (GW-02). \
                     Fix: {remedy}"
                ),
            );
        }
        if groups.iter().any(|g| g == name) {
            ctx.warn(
                "CFG-05",
                &p,
                format!(
                    "`{name}` is both a model_name and a model_group_alias: requests for it go \
                     to `{}`, never to its own model_list entries (the alias is looked up first, \
                     as in LiteLLM). Fix: rename the alias or the model_name",
                    alias.model
                ),
            );
        }
    }
}

/// Whether a request for `name` reaches a group: a `model_name`, a name a wildcard
/// `model_name` matches, or a `model_group_alias`.
fn reachable(
    name: &str,
    groups: &[String],
    group_aliases: &std::collections::BTreeMap<String, crate::config::GroupAlias>,
) -> bool {
    group_aliases.contains_key(name)
        || groups
            .iter()
            .any(|g| g == name || (g.contains('*') && pattern::captures(g, name).is_some()))
}

fn undefined_text(
    name: &str,
    what: &str,
    aliases: &[String],
    ids_allowed: bool,
) -> (String, String) {
    let message = format!("{what} names `{name}`, which is not a model_name in model_list");
    let close = aliases
        .iter()
        .map(|a| (keys::edit_distance(a, name), a))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| format!(" (did you mean `{a}`?)"))
        .unwrap_or_default();
    let ids = if ids_allowed { "; a fallback target may also be a model_info.id" } else { "" };
    let remedy = if aliases.is_empty() {
        "define the alias in model_list first; no aliases are defined yet".to_owned()
    } else {
        format!("use one of the aliases that exist: {}{close}{ids}", aliases.join(", "))
    };
    (message, remedy)
}

/// A fallback target that names nothing: LiteLLM starts with it, and a request that falls
/// back to it skips it, so it is a warning at the name.
fn undefined_alias(ctx: &mut Ctx<'_>, path: &KeyPath, name: &str, what: &str, aliases: &[String]) {
    let (message, remedy) = undefined_text(name, what, aliases, true);
    ctx.warn_value(
        "CFG-05",
        path,
        format!("{message}; a request falling back to it skips it. Fix: {remedy}"),
    );
}
