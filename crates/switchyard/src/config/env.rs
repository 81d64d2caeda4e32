//! The environment as the config sees it, behind a trait: nothing in the gateway reads the
//! process environment directly, so tests pass a [`MapEnv`] and never call `set_var`, and
//! every value carries where it came from for diagnostics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::envfile::EnvFile;
use super::model::EnvOrigin;

/// A source of environment variables.
pub trait Env: Send + Sync {
    fn get(&self, name: &str) -> Option<EnvValue>;
}

/// A variable's value and where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvValue {
    pub value: String,
    pub origin: EnvOrigin,
}

/// The gateway's own process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<EnvValue> {
        // A value that is not valid UTF-8 is still "set"; a lossy copy keeps the
        // set-but-wrong case visible instead of pretending it is absent.
        std::env::var_os(name).map(|v| EnvValue {
            value: v.to_string_lossy().into_owned(),
            origin: EnvOrigin::Process,
        })
    }
}

/// A fixed set of variables standing in for the process environment (tests, embedding).
#[derive(Debug, Clone, Default)]
pub struct MapEnv {
    vars: HashMap<String, EnvValue>,
}

impl MapEnv {
    pub fn new<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), EnvValue { value: v.into(), origin: EnvOrigin::Process }))
            .collect();
        Self { vars }
    }

    /// Adds or replaces one variable with an explicit origin.
    pub fn with(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        origin: EnvOrigin,
    ) -> Self {
        self.vars.insert(name.into(), EnvValue { value: value.into(), origin });
        self
    }
}

impl Env for MapEnv {
    fn get(&self, name: &str) -> Option<EnvValue> {
        self.vars.get(name).cloned()
    }
}

/// One variable from the config's `environment_variables` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigVar {
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// The environment a config is resolved against: the base (process) environment wins,
/// then env files in the order given, then the config's `environment_variables`.
///
/// The process environment wins because that is what `VAR=x switchyard ...` and a
/// service manager's `Environment=` mean to a user: the most specific setting.
pub struct LayeredEnv<'a> {
    base: &'a dyn Env,
    files: Vec<EnvFile>,
    config_path: PathBuf,
    config_vars: Vec<ConfigVar>,
}

impl<'a> LayeredEnv<'a> {
    pub fn new(base: &'a dyn Env) -> Self {
        Self { base, files: Vec::new(), config_path: PathBuf::new(), config_vars: Vec::new() }
    }

    /// Env files, earliest wins.
    pub fn with_files(mut self, files: Vec<EnvFile>) -> Self {
        self.files = files;
        self
    }

    /// The config's `environment_variables` section, consulted last.
    pub fn with_config_vars(mut self, config_path: &Path, vars: Vec<ConfigVar>) -> Self {
        config_path.clone_into(&mut self.config_path);
        self.config_vars = vars;
        self
    }

    /// The env files that were loaded, in order.
    pub fn file_paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }
}

impl Env for LayeredEnv<'_> {
    fn get(&self, name: &str) -> Option<EnvValue> {
        if let Some(v) = self.base.get(name) {
            return Some(v);
        }
        for file in &self.files {
            if let Some(var) = file.get(name) {
                return Some(EnvValue {
                    value: var.value.clone(),
                    origin: EnvOrigin::File { path: file.path.clone(), line: var.line },
                });
            }
        }
        // Later entries win inside the section, as a YAML mapping's last duplicate does.
        self.config_vars.iter().rev().find(|v| v.name == name).map(|v| EnvValue {
            value: v.value.clone(),
            origin: EnvOrigin::ConfigFile { path: self.config_path.clone(), line: v.line },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::envfile::EnvFileVar;

    fn file(path: &str, vars: &[(&str, &str, usize)]) -> EnvFile {
        EnvFile {
            path: PathBuf::from(path),
            vars: vars
                .iter()
                .map(|(k, v, l)| EnvFileVar { key: (*k).into(), value: (*v).into(), line: *l })
                .collect(),
        }
    }

    #[test]
    fn process_beats_files_beats_config_section() {
        let base = MapEnv::new([("A", "process")]);
        let env = LayeredEnv::new(&base)
            .with_files(vec![
                file("one.env", &[("A", "one", 1), ("B", "one", 2)]),
                file("two.env", &[("B", "two", 1), ("C", "two", 7)]),
            ])
            .with_config_vars(
                Path::new("c.yaml"),
                vec![
                    ConfigVar { name: "C".into(), value: "section".into(), line: 3 },
                    ConfigVar { name: "D".into(), value: "section".into(), line: 4 },
                ],
            );
        let a = env.get("A").unwrap();
        assert_eq!((a.value.as_str(), a.origin), ("process", EnvOrigin::Process));
        let b = env.get("B").unwrap();
        assert_eq!(b.value, "one");
        assert_eq!(b.origin, EnvOrigin::File { path: "one.env".into(), line: 2 });
        let c = env.get("C").unwrap();
        assert_eq!(c.origin, EnvOrigin::File { path: "two.env".into(), line: 7 });
        let d = env.get("D").unwrap();
        assert_eq!(d.origin, EnvOrigin::ConfigFile { path: "c.yaml".into(), line: 4 });
        assert_eq!(env.get("E"), None);
    }

    #[test]
    fn an_empty_process_value_still_wins() {
        // "Set but empty" must be reported where it was set, not papered over by a file.
        let base = MapEnv::new([("K", "")]);
        let env = LayeredEnv::new(&base).with_files(vec![file("f.env", &[("K", "full", 1)])]);
        assert_eq!(env.get("K").unwrap().value, "");
    }
}
