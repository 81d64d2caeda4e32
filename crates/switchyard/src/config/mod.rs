//! Loading the LiteLLM-format config: locate the file, read env files, parse YAML with
//! positions, resolve `os.environ/VAR`, validate, and build the typed [`Config`].
//!
//! Two phases: raw serde structs mirror the file; validation turns them into the runtime
//! types in [`model`], reporting every problem at once with file, line, column and key.
//!
//! Problem ids: CFG-01..CFG-06 are the catalog's (`DIAGNOSES.md`). Two more cover what the
//! catalog does not name: CFG-08, a file that cannot be found or read (the config, an env
//! file, an included file, a CA bundle); CFG-09, a value of the wrong type or out of
//! range, a missing required key, or a duplicate deployment id.
//!
//! A config LiteLLM starts with starts here too. What Switchyard does not apply yet — a
//! key it does not implement (whatever its value), a provider it does not speak, an unset
//! variable, a fallback to nothing — is a warning at its place, never a failure; a
//! deployment that cannot be called loads and answers every request with the reason
//! ([`Deployment::unservable`]). What stops a config is what would stop LiteLLM or make
//! the gateway do the wrong thing: YAML errors, wrong types of applied keys, a missing
//! `model`, an unset master key (LiteLLM would then run open).

mod deploy;
pub mod env;
pub mod envfile;
mod include;
mod interpolate;
pub mod keys;
pub mod locate;
pub mod model;
mod path;
pub mod pattern;
mod problem;
pub mod provider;
mod raw;
pub mod report;
pub mod response_cache;
mod settings;
mod validate;
mod yaml;

pub use env::{ConfigVar, Env, EnvValue, LayeredEnv, MapEnv, ProcessEnv};
pub use model::*;
pub use report::{check_json, render_check};

use std::path::{Path, PathBuf};

/// What the command line says about where the config and env files are.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub config_path: Option<PathBuf>,
    pub env_files: Vec<PathBuf>,
}

/// One problem found in the config, with where it is and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Catalog id: `CFG-01` … `CFG-05`, and `CFG-08` / `CFG-09` (see the module docs).
    pub id: &'static str,
    pub location: Option<Location>,
    /// Dotted key path, e.g. `model_list[2].litellm_params.api_key`.
    pub key: String,
    pub message: String,
    pub remedy: String,
}

/// Every problem found, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub path: Option<PathBuf>,
    pub problems: Vec<ConfigProblem>,
}

/// Locates the config, loads env files, and parses and validates the config against the
/// environment `env` (the process environment in production) layered over the env files.
pub fn load(opts: &LoadOptions, env: &dyn Env) -> Result<Config, ConfigErrors> {
    // The working directory is process state, not configuration; without one only the
    // HOME-based search paths apply.
    let cwd = std::env::current_dir().unwrap_or_default();
    let (path, origin) = locate::locate(opts.config_path.as_deref(), env, &cwd)?;

    let mut problems = Vec::new();
    let mut files = Vec::new();
    for (file, how) in locate::env_files(&opts.env_files, env) {
        match envfile::load(&file, how) {
            Ok(f) => files.push(f),
            Err(p) => problems.push(p),
        }
    }

    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(ConfigProblem {
                id: "CFG-08",
                location: None,
                key: String::new(),
                message: format!(
                    "config file {} ({}) cannot be read: {e}",
                    path.display(),
                    locate::describe_origin(&origin)
                ),
                remedy: "check the path, or run `switchyard init` to write a starter config"
                    .to_owned(),
            });
            return Err(ConfigErrors { path: Some(path), problems });
        }
    };
    validate::run(validate::Input {
        path: &path,
        origin,
        text: &text,
        env,
        env_files: files,
        problems,
    })
}

/// Parses and validates config text as if read from `path`, against `env` only (no env
/// files, no search). For tests and for checking a config before swapping it in.
pub fn load_from_str(text: &str, path: &Path, env: &dyn Env) -> Result<Config, ConfigErrors> {
    validate::run(validate::Input {
        path,
        origin: ConfigOrigin::Flag,
        text,
        env,
        env_files: Vec::new(),
        problems: Vec::new(),
    })
}
