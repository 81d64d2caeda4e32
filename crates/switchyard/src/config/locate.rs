//! Which config file to use when `--config` is not given, and the env files to load.
//! HOME and the other variables come through [`Env`], never from the process directly.

use std::path::{Path, PathBuf};

use super::env::Env;
use super::model::ConfigOrigin;
use super::{ConfigErrors, ConfigProblem};

/// The config file and how it was found. `explicit` is `--config`; `cwd` is where
/// `./switchyard.yaml` is looked for.
pub fn locate(
    explicit: Option<&Path>,
    env: &dyn Env,
    cwd: &Path,
) -> Result<(PathBuf, ConfigOrigin), ConfigErrors> {
    if let Some(p) = explicit {
        return Ok((p.to_owned(), ConfigOrigin::Flag));
    }
    if let Some(v) = env.get("SWITCHYARD_CONFIG").filter(|v| !v.value.trim().is_empty()) {
        // Set on purpose: falling through to another file would hide a typo in the path.
        return Ok((PathBuf::from(v.value), ConfigOrigin::EnvVar("SWITCHYARD_CONFIG")));
    }
    let searched = search_path(env, cwd);
    if let Some(found) = searched.iter().find(|p| p.is_file()) {
        return Ok((found.clone(), ConfigOrigin::SearchPath));
    }
    let list: Vec<String> = searched.iter().map(|p| format!("  {}", p.display())).collect();
    Err(ConfigErrors {
        path: None,
        problems: vec![ConfigProblem {
            id: "CFG-08",
            location: None,
            key: String::new(),
            message: format!(
                "no config file found; SWITCHYARD_CONFIG is not set and none of these exist:\n{}",
                list.join("\n")
            ),
            remedy:
                "pass --config PATH (a LiteLLM config.yaml works as is), set SWITCHYARD_CONFIG, \
                     or run `switchyard init` to write ./switchyard.yaml"
                    .to_owned(),
        }],
    })
}

/// The files looked for, in order, after `--config` and `$SWITCHYARD_CONFIG`.
pub fn search_path(env: &dyn Env, cwd: &Path) -> Vec<PathBuf> {
    let mut paths = vec![cwd.join("switchyard.yaml")];
    if let Some(home) = env.get("HOME").filter(|v| !v.value.is_empty()) {
        let home = PathBuf::from(home.value);
        paths.push(home.join(".config/switchyard/config.yaml"));
        paths.push(home.join(".config/litellm/config.yaml"));
    }
    paths
}

/// `--env-file` paths, then those in `SWITCHYARD_ENV_FILE` (`:`-separated), each with how
/// it was named for messages.
pub fn env_files(flags: &[PathBuf], env: &dyn Env) -> Vec<(PathBuf, &'static str)> {
    let mut out: Vec<(PathBuf, &'static str)> =
        flags.iter().map(|p| (p.clone(), "--env-file")).collect();
    if let Some(v) = env.get("SWITCHYARD_ENV_FILE") {
        for part in v.value.split(':').map(str::trim).filter(|p| !p.is_empty()) {
            out.push((PathBuf::from(part), "SWITCHYARD_ENV_FILE"));
        }
    }
    out
}

/// The listener's certificate (`SSL_CERTFILE_PATH`) or key (`SSL_KEYFILE_PATH`) file: the
/// flag, else LiteLLM's variable, with the name it came by for messages. An empty variable
/// is unset, as a blank line in a container's environment should not turn TLS on.
pub fn tls_file(
    flag: Option<&Path>,
    flag_name: &'static str,
    var: &'static str,
    env: &dyn Env,
) -> Option<(PathBuf, &'static str)> {
    if let Some(p) = flag {
        return Some((p.to_owned(), flag_name));
    }
    env.get(var).filter(|v| !v.value.trim().is_empty()).map(|v| (PathBuf::from(v.value), var))
}

/// How a config's origin reads in `config check` and the startup log.
pub fn describe_origin(origin: &ConfigOrigin) -> String {
    match origin {
        ConfigOrigin::Flag => "from --config".to_owned(),
        ConfigOrigin::EnvVar(var) => format!("from ${var}"),
        ConfigOrigin::SearchPath => "found on the search path".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::MapEnv;

    #[test]
    fn a_tls_flag_wins_over_the_variable_and_an_empty_variable_is_unset() {
        let env = MapEnv::new([("SSL_CERTFILE_PATH", "/env/cert.pem"), ("SSL_KEYFILE_PATH", " ")]);
        let flag = PathBuf::from("/flag/cert.pem");
        let got = tls_file(Some(&flag), "--ssl-certfile", "SSL_CERTFILE_PATH", &env);
        assert_eq!(got, Some((flag, "--ssl-certfile")));
        let got = tls_file(None, "--ssl-certfile", "SSL_CERTFILE_PATH", &env);
        assert_eq!(got, Some((PathBuf::from("/env/cert.pem"), "SSL_CERTFILE_PATH")));
        assert_eq!(tls_file(None, "--ssl-keyfile", "SSL_KEYFILE_PATH", &env), None);
    }

    #[test]
    fn env_files_keep_flag_order_then_the_variable() {
        let env = MapEnv::new([("SWITCHYARD_ENV_FILE", "a.env::/b/c.env")]);
        let got = env_files(&[PathBuf::from("x.env")], &env);
        let names: Vec<(String, &str)> =
            got.iter().map(|(p, how)| (p.display().to_string(), *how)).collect();
        assert_eq!(
            names,
            vec![
                ("x.env".to_owned(), "--env-file"),
                ("a.env".to_owned(), "SWITCHYARD_ENV_FILE"),
                ("/b/c.env".to_owned(), "SWITCHYARD_ENV_FILE"),
            ]
        );
    }
}
