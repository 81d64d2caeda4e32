//! Shared by the diagnostics tests: a temporary HOME with an SSO profile, env files, config
//! files, the mock upstream as Anthropic, Bedrock and STS, and gateways on port 0 whose AWS
//! environment is a map (never the process's).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mock_upstream::MockUpstream;
use switchyard::config::{self, Config, EnvOrigin, LoadOptions, MapEnv};
use switchyard::provider::{self, Upstreams};
use switchyard::router::Router;
use switchyard::server::{self, Handle, Runtime};

pub const ANTHROPIC_KEY: &str = "sk-ant-api03-diagnostics-0123456789abcdef";
pub const MASTER: &str = "sk-gw-diagnostics-0123456789";
/// The stale temporary key of the incident: the mock does not know it.
pub const STALE_KEY_ID: &str = "ASIASTALEKEY00000001";

/// `~/.aws/config` of the incident's user: an SSO profile `claude` (the permission set
/// ClaudeAccess), never used because keys were exported instead.
pub const AWS_CONFIG: &str = "\
[profile claude]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = ClaudeAccess
region = us-east-1

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1

[profile nocreds]
region = us-east-1
";

pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".aws/sso/cache")).unwrap();
        std::fs::write(dir.path().join(".aws/config"), AWS_CONFIG).unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The environment of the gateway: this HOME, AWS endpoints at the mock.
    pub fn env(&self, mock: &MockUpstream) -> MapEnv {
        MapEnv::new([
            ("HOME", self.path().to_str().unwrap()),
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", mock.url().as_str()),
            ("AWS_ENDPOINT_URL_STS", mock.url().as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ])
    }
}

/// The incident's env file: stale exported AWS keys, and the Anthropic key.
pub fn incident_env_file(home: &Home) -> PathBuf {
    home.write(
        "toolkit-env",
        &format!(
            "export AWS_ACCESS_KEY_ID='{STALE_KEY_ID}'\n\
             export AWS_SECRET_ACCESS_KEY='staleSecretAccessKey0000000000000000000'\n\
             export AWS_SESSION_TOKEN='IQoJb3JpZ2luX2VjStaleSessionToken'\n\
             export ANTHROPIC_API_KEY='{ANTHROPIC_KEY}'\n"
        ),
    )
}

/// The incident's config: three tiers, each Bedrock first and the Anthropic API second.
pub fn incident_config(home: &Home, anthropic_base: &str) -> PathBuf {
    let tiers = [
        ("cheap", "anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku-20240307"),
        ("balanced", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("frontier", "us.anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
    ];
    let mut yaml = String::from("model_list:\n");
    for (alias, bedrock, anthropic) in tiers {
        yaml.push_str(&format!(
            "  - model_name: {alias}\n    litellm_params:\n      model: bedrock/{bedrock}\n      \
             aws_region_name: us-east-1\n    model_info:\n      id: {alias}-bedrock\n\
             \x20 - model_name: {alias}\n    litellm_params:\n      model: anthropic/{anthropic}\n      \
             api_key: os.environ/ANTHROPIC_API_KEY\n      api_base: {anthropic_base}\n    \
             model_info:\n      id: {alias}-claude\n"
        ));
    }
    yaml.push_str(&format!(
        "router_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER}\n"
    ));
    home.write("config.yaml", &yaml)
}

pub fn load(config: &Path, env_files: &[PathBuf], env: &MapEnv) -> Config {
    let opts = LoadOptions { config_path: Some(config.to_owned()), env_files: env_files.to_vec() };
    config::load(&opts, env).unwrap_or_else(|e| panic!("{e}"))
}

/// A gateway on port 0 whose providers see `env` (not the process environment).
pub async fn gateway(config: Config, env: &MapEnv) -> Handle {
    let upstreams = Upstreams::with_env(&config, env);
    let router = Router::with_providers(&config, |d| provider::for_deployment(d, &upstreams));
    let mut runtime = Runtime::new(config);
    runtime.router = router;
    server::start("127.0.0.1:0".parse().unwrap(), runtime).await.unwrap()
}

/// A MapEnv with one variable set by an env file (for origins in messages).
pub fn from_file(env: MapEnv, name: &str, value: &str, file: &Path, line: usize) -> MapEnv {
    env.with(name, value, EnvOrigin::File { path: file.to_owned(), line })
}

pub fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}
