//! `os.environ/VAR` references, resolved in place in the YAML tree before anything reads
//! it, so a reference works wherever a value does (`rpm: os.environ/RPM` included). Each
//! resolved reference remembers the variable and where it was set, for diagnostics that
//! name the source of a secret without printing it (CFG-01, CFG-02).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::ConfigProblem;
use super::env::Env;
use super::include::Sources;
use super::keys::{self, Section};
use super::model::{ConfigWarning, EnvOrigin, Location, Unservable};
use super::path::KeyPath;
use super::yaml::{Kind, Node};

const PREFIX: &str = "os.environ/";

/// Where a resolved reference's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRef {
    pub var: String,
    pub origin: EnvOrigin,
    pub at: Location,
}

#[derive(Debug, Default)]
pub struct Resolved {
    /// Key path of each resolved value → its variable.
    pub refs: HashMap<KeyPath, EnvRef>,
    /// Key paths whose reference could not be resolved (now null), so later checks do not
    /// report the same key a second time as "missing".
    pub failed: HashSet<KeyPath>,
    /// `model_list` index → the first unresolved reference of that deployment, which every
    /// request to it answers with.
    pub unservable: HashMap<usize, Unservable>,
}

pub struct Resolver<'a> {
    pub env: &'a dyn Env,
    pub sources: &'a Sources,
    pub env_files: &'a [PathBuf],
    /// `model_name` of each `model_list` entry, to name the deployment in messages.
    pub aliases: Vec<Option<String>>,
    pub problems: Vec<ConfigProblem>,
    pub warnings: Vec<ConfigWarning>,
    pub out: Resolved,
}

/// The one reference that stops the gateway when it cannot be resolved: without its
/// master key the gateway would otherwise run open (LiteLLM does), or refuse every client.
const FAIL_CLOSED: &str = "general_settings.master_key";

impl Resolver<'_> {
    /// Resolves every reference under keys the gateway reads. Keys it ignores (CFG-06)
    /// are left alone: an unset variable under `cache_params` must not stop the gateway.
    pub fn run(&mut self, root: &mut Node) {
        let Kind::Map(entries) = &mut root.kind else { return };
        for e in entries {
            let path = KeyPath::root().key(e.key.clone());
            match e.key.as_str() {
                // These are inputs to the environment, not consumers of it.
                "environment_variables" => {}
                "model_list" => {
                    if let Kind::Seq(items) = &mut e.value.kind {
                        for (i, item) in items.iter_mut().enumerate() {
                            self.entry(item, &path.index(i), i);
                        }
                    }
                }
                "router_settings" => self.section(&mut e.value, &path, Section::RouterSettings),
                "litellm_settings" => self.section(&mut e.value, &path, Section::LitellmSettings),
                "general_settings" => self.section(&mut e.value, &path, Section::GeneralSettings),
                key if keys::is_read(Section::Top, key) => self.value(&mut e.value, &path, None),
                _ => {}
            }
        }
    }

    fn entry(&mut self, node: &mut Node, path: &KeyPath, index: usize) {
        let Kind::Map(entries) = &mut node.kind else { return };
        for e in entries {
            let p = path.key(e.key.clone());
            if e.key == "litellm_params" {
                if let Kind::Map(params) = &mut e.value.kind {
                    for pe in params {
                        if keys::is_read(Section::LitellmParams, &pe.key) {
                            self.value(&mut pe.value, &p.key(pe.key.clone()), Some(index));
                        }
                    }
                }
            } else if keys::is_read(Section::Entry, &e.key) {
                self.value(&mut e.value, &p, Some(index));
            }
        }
    }

    fn section(&mut self, node: &mut Node, path: &KeyPath, section: Section) {
        let Kind::Map(entries) = &mut node.kind else { return };
        for e in entries {
            if keys::is_read(section, &e.key) {
                self.value(&mut e.value, &path.key(e.key.clone()), None);
            }
        }
    }

    fn value(&mut self, node: &mut Node, path: &KeyPath, entry: Option<usize>) {
        match &mut node.kind {
            Kind::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.value(item, &path.index(i), entry);
                }
            }
            Kind::Map(entries) => {
                for e in entries {
                    self.value(&mut e.value, &path.key(e.key.clone()), entry);
                }
            }
            Kind::Str(s) => {
                if let Some(var) = s.strip_prefix(PREFIX) {
                    let var = var.trim().to_owned();
                    let at = self.sources.location(path, node.pos);
                    match self.lookup(&var, path, entry, at) {
                        Some(value) => node.kind = Kind::Str(value),
                        None => {
                            node.kind = Kind::Null;
                            self.out.failed.insert(path.clone());
                        }
                    }
                }
            }
            Kind::Null | Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) => {}
        }
    }

    fn lookup(
        &mut self,
        var: &str,
        path: &KeyPath,
        entry: Option<usize>,
        at: Location,
    ) -> Option<String> {
        let who = self.who(path, entry);
        if var.is_empty() {
            self.report(
                entry,
                ConfigProblem {
                    id: "CFG-01",
                    location: Some(at),
                    key: path.to_string(),
                    message: format!("{who} says `os.environ/` without a variable name"),
                    remedy: "write os.environ/NAME, e.g. api_key: os.environ/ANTHROPIC_API_KEY"
                        .to_owned(),
                },
            );
            return None;
        }
        match self.env.get(var) {
            None => {
                self.report(
                    entry,
                    ConfigProblem {
                        id: "CFG-01",
                        location: Some(at),
                        key: path.to_string(),
                        message: format!(
                            "{var} is not set, but {who} reads it (os.environ/{var}). {}",
                            self.files_loaded()
                        ),
                        remedy: format!(
                            "export {var}=... before starting the gateway, put {var}=... in an env \
                         file passed with --env-file (or listed in SWITCHYARD_ENV_FILE), or set \
                         it under environment_variables in the config"
                        ),
                    },
                );
                None
            }
            Some(v) if v.value.trim().is_empty() => {
                let remedy = match &v.origin {
                    EnvOrigin::Process => format!(
                        "the process environment has {var} set to an empty value, and it wins \
                         over env files: export {var} with a value, or `unset {var}` so an env \
                         file can supply it"
                    ),
                    EnvOrigin::File { path, line } => format!(
                        "give {var} a value at {}:{line} ({var}=value, or export {var}='value')",
                        path.display()
                    ),
                    EnvOrigin::ConfigFile { path, line } => format!(
                        "give {var} a value under environment_variables at {}:{line}",
                        path.display()
                    ),
                };
                self.report(entry, ConfigProblem {
                    id: "CFG-02",
                    location: Some(at),
                    key: path.to_string(),
                    message: format!(
                        "{var} is set but empty (set in {}), and {who} reads it (os.environ/{var})",
                        v.origin
                    ),
                    remedy,
                });
                None
            }
            Some(v) => {
                self.out
                    .refs
                    .insert(path.clone(), EnvRef { var: var.to_owned(), origin: v.origin, at });
                Some(v.value)
            }
        }
    }

    /// An unresolved reference: LiteLLM starts with the value unset, and so does
    /// Switchyard — with a warning at load, and, for a deployment, the same problem as the
    /// answer to every request it gets (rather than calling with a value missing). Only the
    /// master key stops the gateway.
    fn report(&mut self, entry: Option<usize>, p: ConfigProblem) {
        if p.key == FAIL_CLOSED {
            self.problems.push(p);
            return;
        }
        let consequence = match entry {
            Some(i) if decides_the_call(&p.key) => {
                self.out.unservable.entry(i).or_insert_with(|| Unservable {
                    id: p.id,
                    cause: p.message.clone(),
                    remedy: p.remedy.clone(),
                });
                "Until it is, every request to this deployment fails with this error"
            }
            _ => "The setting is left unset until then",
        };
        self.warnings.push(ConfigWarning {
            id: p.id,
            key: p.key,
            location: p.location,
            message: format!("{} {consequence}. Fix: {}", sentence(&p.message), p.remedy),
        });
    }

    fn who(&self, path: &KeyPath, entry: Option<usize>) -> String {
        match entry {
            Some(i) => match self.aliases.get(i).and_then(Option::as_deref) {
                Some(alias) => format!("the deployment of alias `{alias}` (model_list[{i}])"),
                None => format!("the deployment model_list[{i}]"),
            },
            None => format!("`{path}`"),
        }
    }

    fn files_loaded(&self) -> String {
        if self.env_files.is_empty() {
            "No env files were loaded.".to_owned()
        } else {
            let list: Vec<String> =
                self.env_files.iter().map(|p| p.display().to_string()).collect();
            format!("Env files loaded: {}.", list.join(", "))
        }
    }
}

/// Whether the deployment setting at `key` (`model_list[2].litellm_params.api_key`)
/// decides where a request goes or how it is authenticated: without it the deployment
/// would call the wrong place, or with the wrong identity, so it answers with the problem
/// instead. Any other setting (`rpm`, `timeout`, ...) is simply left unset.
fn decides_the_call(key: &str) -> bool {
    let Some((_, name)) = key.split_once(".litellm_params.") else { return true };
    let name = name.split(['.', '[']).next().unwrap_or(name);
    matches!(
        name,
        "model" | "api_key" | "api_base" | "api_version" | "custom_llm_provider" | "mock_response"
    ) || name.starts_with("aws_")
}

/// `text` ending with a full stop.
fn sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.ends_with('.') { text.to_owned() } else { format!("{text}.") }
}

/// The `model_name` of each `model_list` entry, where it is written literally.
pub fn aliases(root: &Node) -> Vec<Option<String>> {
    match root.get("model_list").map(|n| &n.kind) {
        Some(Kind::Seq(items)) => items
            .iter()
            .map(|item| item.get("model_name").and_then(|n| n.as_str()).map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::env::MapEnv;
    use crate::config::yaml;

    fn resolve(text: &str, env: &MapEnv) -> (Node, Resolver<'static>) {
        let mut root = yaml::parse(text).unwrap().root.unwrap();
        let env: &'static MapEnv = Box::leak(Box::new(env.clone()));
        let mut r = Resolver {
            env,
            sources: Box::leak(Box::new(Sources::single(Path::new("c.yaml")))),
            env_files: &[],
            aliases: aliases(&root),
            problems: Vec::new(),
            warnings: Vec::new(),
            out: Resolved::default(),
        };
        r.run(&mut root);
        (root, r)
    }

    #[test]
    fn references_resolve_anywhere_a_value_goes_and_remember_the_variable() {
        let env = MapEnv::new([("KEY", "sk-1"), ("RPM", "100")]);
        let (root, r) = resolve(
            "model_list:\n  - model_name: a\n    litellm_params:\n      api_key: os.environ/KEY\n      rpm: os.environ/RPM\n",
            &env,
        );
        assert!(r.problems.is_empty());
        let params = root.get("model_list").unwrap();
        let Kind::Seq(items) = &params.kind else { panic!() };
        let lp = items[0].get("litellm_params").unwrap();
        assert_eq!(lp.get("rpm").unwrap().as_str(), Some("100"));
        let path = KeyPath::root().key("model_list").index(0).key("litellm_params").key("api_key");
        let r_ref = &r.out.refs[&path];
        assert_eq!((r_ref.var.as_str(), r_ref.at.line, r_ref.at.column), ("KEY", 4, 16));
    }

    #[test]
    fn ignored_keys_are_not_resolved() {
        let (_, r) = resolve(
            "litellm_settings:\n  cache_params:\n    password: os.environ/NOPE\n",
            &MapEnv::default(),
        );
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn unset_and_empty_are_different_problems() {
        let env = MapEnv::new([("EMPTY", "")]);
        let (_, r) = resolve(
            "general_settings:\n  master_key: os.environ/UNSET\nmodel_list:\n  - model_name: a\n    litellm_params:\n      api_key: os.environ/EMPTY\n",
            &env,
        );
        // The master key is the one fatal reference; a deployment's is a warning, and the
        // deployment answers every request with it.
        let ids: Vec<(&str, &str)> = r.problems.iter().map(|p| (p.id, p.key.as_str())).collect();
        assert_eq!(ids, vec![("CFG-01", "general_settings.master_key")]);
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].id, "CFG-02");
        assert!(r.warnings[0].message.contains("set but empty"));
        assert!(r.warnings[0].message.contains("alias `a`"));
        assert_eq!(r.out.unservable[&0].id, "CFG-02");
        assert_eq!(r.out.failed.len(), 2);
    }
}
