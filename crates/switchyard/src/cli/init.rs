//! `switchyard init`: write a starter config with the three tiers (Anthropic API, Bedrock,
//! or both with Bedrock first) and a private env file template with a generated master key,
//! then say what to run next. Never overwrites without `--force` (which keeps a `.bak`),
//! never prompts.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::output;
use crate::config::{Env, ProcessEnv};
use crate::daemon::clock;
use crate::exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// The Anthropic API (ANTHROPIC_API_KEY).
    Anthropic,
    /// AWS Bedrock (an AWS profile, or the default credential chain).
    Bedrock,
    /// Bedrock first, the Anthropic API when Bedrock fails.
    Both,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Which provider the tiers use.
    #[arg(long, value_enum, default_value_t = Provider::Anthropic)]
    pub provider: Provider,

    /// AWS profile for the Bedrock deployments (default: the standard credential chain).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// AWS region for the Bedrock deployments.
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    pub region: String,

    /// Where to write the config (default: ~/.config/switchyard/config.yaml, which every
    /// command finds without --config).
    #[arg(long, short = 'c', value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Where to write the env file (default: `env` next to the config).
    #[arg(long = "env-file", value_name = "PATH")]
    pub env_file: Option<PathBuf>,

    /// Replace existing files (the old ones are kept as `.bak`).
    #[arg(long)]
    pub force: bool,
}

/// One tier: alias, Anthropic API model, Bedrock foundation model.
const TIERS: [(&str, &str, &str); 3] = [
    ("cheap", "claude-haiku-4-5", "anthropic.claude-haiku-4-5-20251001-v1:0"),
    ("balanced", "claude-sonnet-4-5", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("frontier", "claude-opus-4-6", "anthropic.claude-opus-4-6-v1"),
];

pub fn run(args: &InitArgs) -> u8 {
    let home = ProcessEnv.get("HOME").map(|v| PathBuf::from(v.value));
    let config_path = match (&args.config, &home) {
        (Some(p), _) => p.clone(),
        (None, Some(h)) => h.join(".config/switchyard/config.yaml"),
        (None, None) => {
            output::stderr("switchyard: HOME is not set; pass --config PATH");
            return exit::USAGE;
        }
    };
    let config_path = std::path::absolute(&config_path).unwrap_or(config_path);
    let env_path = args.env_file.clone().unwrap_or_else(|| config_path.with_file_name("env"));
    let env_path = std::path::absolute(&env_path).unwrap_or(env_path);

    if !args.force {
        let existing: Vec<String> = [&config_path, &env_path]
            .iter()
            .filter(|p| p.exists())
            .map(|p| format!("  {}", p.display()))
            .collect();
        if !existing.is_empty() {
            output::stderr(&format!(
                "switchyard: not overwriting what is already there:\n{}\n  fix: edit them, \
                 choose other paths with --config / --env-file, or pass --force to replace \
                 them (the old files are kept as .bak).",
                existing.join("\n")
            ));
            return exit::FAILED;
        }
    }
    let key = match master_key() {
        Ok(key) => key,
        Err(err) => {
            output::stderr(&format!("switchyard: cannot generate a master key: {err}"));
            return exit::FAILED;
        }
    };
    let config_text = config_yaml(args.provider, args.profile.as_deref(), &args.region);
    let env_text = env_template(args.provider, args.profile.as_deref(), &key);
    for (path, text, mode) in [(&config_path, &config_text, 0o644), (&env_path, &env_text, 0o600)] {
        if let Err(err) = write_file(path, text, mode, args.force) {
            output::stderr(&format!("switchyard: cannot write {}: {err}", path.display()));
            return exit::FAILED;
        }
    }
    output::stdout(&next_steps(args, &config_path, &env_path, home.as_deref()));
    exit::OK
}

/// The inference-profile prefix for a region: `us.` for us-*, `eu.` for eu-*, `apac.` for
/// ap-*, `global.` elsewhere (as AWS-09's fix names them).
fn geo(region: &str) -> &'static str {
    match region.split('-').next() {
        Some("us") => "us",
        Some("eu") => "eu",
        Some("ap") => "apac",
        _ => "global",
    }
}

pub fn config_yaml(provider: Provider, profile: Option<&str>, region: &str) -> String {
    let mut out = format!(
        "# Switchyard config, written by `switchyard init --provider {}` on {}.\n\
         # Clients call the tiers `cheap`, `balanced` and `frontier`; change the models freely.\n\
         # A running gateway reloads this file when it changes; an invalid edit is rejected\n\
         # (`switchyard status` shows why) and the previous config keeps serving.\n\
         # Secrets live in the env file, never here.\n\nmodel_list:\n",
        provider.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default(),
        clock::rfc3339(clock::unix_now()),
    );
    for (alias, anthropic, bedrock) in TIERS {
        if matches!(provider, Provider::Bedrock | Provider::Both) {
            out.push_str(&format!(
                "  - model_name: {alias}\n    litellm_params:\n      model: bedrock/{}.{bedrock}\n      aws_region_name: {region}\n",
                geo(region)
            ));
            if let Some(p) = profile {
                out.push_str(&format!("      aws_profile_name: {}\n", yaml_scalar(p)));
            }
            if provider == Provider::Both {
                out.push_str("      order: 1\n");
            }
            out.push_str(&format!("    model_info:\n      id: bedrock-{alias}\n"));
        }
        if matches!(provider, Provider::Anthropic | Provider::Both) {
            out.push_str(&format!(
                "  - model_name: {alias}\n    litellm_params:\n      model: anthropic/{anthropic}\n      # The key: ANTHROPIC_API_KEY, from the env file.\n"
            ));
            if provider == Provider::Both {
                out.push_str("      order: 2\n");
            }
            out.push_str(&format!("    model_info:\n      id: anthropic-{alias}\n"));
        }
    }
    if provider == Provider::Both {
        out.push_str(
            "\n# Bedrock first (order 1); when it fails (credentials, permissions, throttling)\n\
             # the same request goes to the Anthropic API (order 2) and the response says so.\n",
        );
    }
    out.push_str(
        "\ngeneral_settings:\n  # Every client sends this key (Authorization: Bearer … or x-api-key: …).\n  master_key: os.environ/SWITCHYARD_MASTER_KEY\n",
    );
    out
}

/// Quotes a YAML scalar when it is not plainly safe.
fn yaml_scalar(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
        s.to_owned()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

pub fn env_template(provider: Provider, profile: Option<&str>, master_key: &str) -> String {
    let mut out = format!(
        "# Switchyard env file, written by `switchyard init` on {}. Private: mode 0600.\n\
         # Loaded with --env-file (or SWITCHYARD_ENV_FILE); a variable already set in the\n\
         # environment wins. A running gateway reloads when this file changes.\n\n\
         # The key clients send to the gateway (generated; change it at will).\n\
         SWITCHYARD_MASTER_KEY={master_key}\n",
        clock::rfc3339(clock::unix_now())
    );
    if matches!(provider, Provider::Anthropic | Provider::Both) {
        out.push_str(
            "\n# Anthropic API key (console.anthropic.com → API keys); starts with sk-ant-.\n\
             # ANTHROPIC_API_KEY=sk-ant-...\n",
        );
    }
    if matches!(provider, Provider::Bedrock | Provider::Both) {
        let login = profile.map(|p| format!(" --profile {p}")).unwrap_or_default();
        out.push_str(&format!(
            "\n# AWS: the gateway resolves credentials itself{} and refreshes\n\
             # them (after `aws sso login{login}` the next request works, no restart). Do not paste\n\
             # temporary AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN here: they\n\
             # go stale. A Bedrock API key works too:\n\
             # AWS_BEARER_TOKEN_BEDROCK=...\n",
            if profile.is_some() { " from the profile in the config" } else { " (AWS_PROFILE, SSO, …)" }
        ));
    }
    out
}

/// `sk-switchyard-` and 24 random bytes in hex, from the system's CSPRNG.
fn master_key() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sk-switchyard-{hex}"))
}

fn write_file(path: &Path, text: &str, mode: u32, force: bool) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if force && path.exists() {
        let mut bak = path.as_os_str().to_owned();
        bak.push(".bak");
        std::fs::rename(path, PathBuf::from(bak))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn next_steps(args: &InitArgs, config: &Path, env: &Path, home: Option<&Path>) -> String {
    let default_config = home.map(|h| h.join(".config/switchyard/config.yaml"));
    let show = |p: &Path| match home.and_then(|h| p.strip_prefix(h).ok()) {
        Some(rest) => format!("~/{}", rest.display()),
        None => p.display().to_string(),
    };
    let config_flag = if default_config.as_deref() == Some(config) {
        String::new()
    } else {
        format!(" --config {}", show(config))
    };
    let flags = format!("{config_flag} --env-file {}", show(env));
    let mut steps: Vec<(String, &str)> = Vec::new();
    if matches!(args.provider, Provider::Anthropic | Provider::Both) {
        steps.push((format!("$EDITOR {}", show(env)), "set ANTHROPIC_API_KEY"));
    }
    if matches!(args.provider, Provider::Bedrock | Provider::Both) {
        let profile =
            args.profile.as_deref().map(|p| format!(" --profile {p}")).unwrap_or_default();
        steps.push((format!("aws sso login{profile}"), "if the profile uses SSO"));
    }
    steps
        .push((format!("switchyard doctor{flags}"), "checks every deployment and its credentials"));
    steps.push((format!("switchyard start{flags}"), "runs the gateway in the background"));
    steps.push(("switchyard verify".to_owned(), "\"Say: WORKS\" through every tier"));
    let width = steps.iter().map(|(c, _)| c.chars().count()).max().unwrap_or(0);
    let mut text = format!(
        "Wrote {} (config) and {} (env file, mode 0600).\n\nNext:\n",
        show(config),
        show(env)
    );
    for (command, why) in steps {
        text.push_str(&format!("  {command:<width$}   # {why}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, MapEnv};

    fn check(provider: Provider, profile: Option<&str>) -> config::Config {
        let text = config_yaml(provider, profile, "eu-west-1");
        let env = MapEnv::new([("SWITCHYARD_MASTER_KEY", "sk-switchyard-x")]);
        config::load_from_str(&text, Path::new("c.yaml"), &env)
            .unwrap_or_else(|e| panic!("{provider:?}: {e}\n{text}"))
    }

    #[test]
    fn every_starter_config_is_valid_with_three_tiers() {
        for provider in [Provider::Anthropic, Provider::Bedrock, Provider::Both] {
            let config = check(provider, Some("dev"));
            let aliases: Vec<&str> = config.aliases().collect();
            assert_eq!(aliases, ["cheap", "balanced", "frontier"], "{provider:?}");
        }
    }

    #[test]
    fn both_puts_bedrock_first_with_the_regions_profile_prefix() {
        let config = check(Provider::Both, Some("dev"));
        let cheap = config.group("cheap").unwrap();
        assert_eq!(cheap.deployments.len(), 2);
        let first = &cheap.deployments[0];
        assert_eq!(first.id, "bedrock-cheap");
        assert!(first.model.starts_with("eu.anthropic.claude-haiku-4-5"), "{}", first.model);
        assert_eq!(first.order, Some(1));
        assert_eq!(first.aws.profile_name.as_deref(), Some("dev"));
        assert_eq!(cheap.deployments[1].id, "anthropic-cheap");
        assert_eq!(cheap.deployments[1].order, Some(2));
    }

    #[test]
    fn regions_map_to_inference_profile_prefixes() {
        assert_eq!(geo("us-west-2"), "us");
        assert_eq!(geo("eu-central-1"), "eu");
        assert_eq!(geo("ap-northeast-1"), "apac");
        assert_eq!(geo("ca-central-1"), "global");
    }

    #[test]
    fn the_env_template_carries_the_key_and_no_live_secrets() {
        let text = env_template(Provider::Both, Some("dev"), "sk-switchyard-abc");
        assert!(text.contains("\nSWITCHYARD_MASTER_KEY=sk-switchyard-abc\n"));
        assert!(text.contains("# ANTHROPIC_API_KEY="));
        assert!(text.contains("aws sso login --profile dev"));
        let key = master_key().unwrap();
        assert_eq!(key.len(), "sk-switchyard-".len() + 48);
    }
}
