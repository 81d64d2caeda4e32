//! The AWS variables as the gateway sees them: a snapshot, taken once per config load through
//! [`config::Env`](crate::config::Env) and the config's env files, of every variable the AWS
//! credential chain reads. The gateway passes what it decides from them (profile files,
//! region, endpoints) to aws-config explicitly, so AWS_CONFIG_FILE or AWS_ENDPOINT_URL_STS
//! set only in an env file work, and tests hand in a map instead of calling `set_var`.
//!
//! Never holds more than those variables; never prints a value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::envfile;
use crate::config::{EnvOrigin, EnvValue};

/// Every variable aws-config (and this gateway's AWS code) reads.
const VARS: &[&str] = &[
    "HOME",
    "USERPROFILE",
    "HOMEDRIVE",
    "HOMEPATH",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCOUNT_ID",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE",
    "AWS_AUTH_SCHEME_PREFERENCE",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_EC2_METADATA_V1_DISABLED",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_SSO",
    "AWS_ENDPOINT_URL_SSO_OIDC",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_SDK_UA_APP_ID",
    "AWS_DISABLE_REQUEST_COMPRESSION",
    "AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES",
    "AWS_REQUEST_CHECKSUM_CALCULATION",
    "AWS_RESPONSE_CHECKSUM_VALIDATION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
];

/// The AWS variables of one config load, with where each was set.
#[derive(Debug, Clone, Default)]
pub struct AwsEnvironment {
    vars: HashMap<&'static str, EnvValue>,
}

impl AwsEnvironment {
    /// Reads [`VARS`] from `env` (the process environment in production), then from
    /// `env_files` in order for those `env` does not set — the config's own layering.
    pub fn snapshot(env: &dyn crate::config::Env, env_files: &[PathBuf]) -> Self {
        let files: Vec<envfile::EnvFile> =
            env_files.iter().filter_map(|p| envfile::load(p, "--env-file").ok()).collect();
        let mut vars = HashMap::new();
        for name in VARS {
            let value = env.get(name).or_else(|| {
                files.iter().find_map(|f| {
                    let var = f.get(name)?;
                    Some(EnvValue {
                        value: var.value.clone(),
                        origin: EnvOrigin::File { path: f.path.clone(), line: var.line },
                    })
                })
            });
            if let Some(value) = value {
                vars.insert(*name, value);
            }
        }
        Self { vars }
    }

    /// A variable's value, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.value.as_str()).filter(|v| !v.trim().is_empty())
    }

    /// Where a variable was set.
    pub fn origin(&self, name: &str) -> Option<&EnvOrigin> {
        self.vars.get(name).map(|v| &v.origin)
    }

    pub fn home(&self) -> Option<PathBuf> {
        self.get("HOME").or_else(|| self.get("USERPROFILE")).map(PathBuf::from)
    }

    /// The shared config file: AWS_CONFIG_FILE or `~/.aws/config`.
    pub fn config_file(&self) -> PathBuf {
        self.file("AWS_CONFIG_FILE", "config")
    }

    /// The shared credentials file: AWS_SHARED_CREDENTIALS_FILE or `~/.aws/credentials`.
    pub fn credentials_file(&self) -> PathBuf {
        self.file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
    }

    /// `~/.aws/sso/cache`.
    pub fn sso_cache_dir(&self) -> PathBuf {
        self.home().unwrap_or_default().join(".aws").join("sso").join("cache")
    }

    fn file(&self, var: &str, name: &str) -> PathBuf {
        match self.get(var) {
            Some(path) => self.expand(path),
            None => self.home().unwrap_or_default().join(".aws").join(name),
        }
    }

    fn expand(&self, path: &str) -> PathBuf {
        match path.strip_prefix("~/") {
            Some(rest) => self.home().unwrap_or_default().join(rest),
            None => PathBuf::from(path),
        }
    }

    /// The paths aws-config reads profiles from, for messages.
    pub fn profile_files(&self) -> Vec<String> {
        [self.config_file(), self.credentials_file()].iter().map(|p| shown(p)).collect()
    }
}

/// A path as messages show it.
pub fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

    #[test]
    fn the_snapshot_layers_the_process_over_env_files_and_keeps_origins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("aws.env");
        std::fs::write(
            &file,
            "AWS_PROFILE=cc\nAWS_CONFIG_FILE=~/corp/config\nAWS_REGION=eu-west-1\n",
        )
        .unwrap();
        let env = MapEnv::new([("HOME", "/home/u"), ("AWS_REGION", "us-east-1")]);
        let aws = AwsEnvironment::snapshot(&env, std::slice::from_ref(&file));
        assert_eq!(aws.get("AWS_REGION"), Some("us-east-1"));
        assert_eq!(aws.get("AWS_PROFILE"), Some("cc"));
        assert_eq!(aws.origin("AWS_PROFILE"), Some(&EnvOrigin::File { path: file, line: 1 }));
        assert_eq!(aws.config_file(), PathBuf::from("/home/u/corp/config"));
        assert_eq!(aws.credentials_file(), PathBuf::from("/home/u/.aws/credentials"));
        assert_eq!(aws.sso_cache_dir(), PathBuf::from("/home/u/.aws/sso/cache"));
    }
}
