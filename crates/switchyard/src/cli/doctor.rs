//! `switchyard doctor`: config and environment, credentials and identity per deployment, a
//! live probe of each, which aliases are served, and the next steps. Exit 0 when every
//! alias has a working deployment, 1 when one has none, 64 for an invalid config.

use clap::Args;

use super::{ConfigArgs, output};
use crate::config::{self, LoadOptions, ProcessEnv};
use crate::diagnose::{self, DoctorOptions};
use crate::exit;

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// Check only this alias (repeatable).
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// No network: no STS call and no live probe.
    #[arg(long)]
    pub offline: bool,

    /// Also probe streaming (on Bedrock: bedrock:InvokeModelWithResponseStream).
    #[arg(long)]
    pub stream: bool,

    /// The state directory whose spend ledger and spool are checked (as given to `serve`).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<std::path::PathBuf>,
}

pub fn run(args: &DoctorArgs) -> u8 {
    let opts = LoadOptions {
        config_path: args.config.config.clone(),
        env_files: args.config.env_files.clone(),
    };
    let config = match config::load(&opts, &ProcessEnv) {
        Ok(config) => config,
        Err(errors) => {
            if args.json {
                let json = serde_json::json!({
                    "ok": false,
                    "exit_code": exit::BAD_CONFIG,
                    "config": errors.to_json(),
                });
                output::stdout(&serde_json::to_string_pretty(&json).unwrap_or_default());
            } else {
                output::stdout(&format!(
                    "Config\n  the configuration is invalid: nothing can be served until it is \
                     fixed.\n\n{errors}\nNext steps\n  1. Fix each problem above (file:line:column \
                     and the fix are given), then run `switchyard doctor` again."
                ));
            }
            return exit::BAD_CONFIG;
        }
    };
    let unknown: Vec<&String> = args.aliases.iter().filter(|a| config.group(a).is_none()).collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = config.aliases().collect();
        output::stderr(&format!(
            "switchyard doctor: no alias {} in {}; the aliases are: {}",
            unknown.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", "),
            config.path.display(),
            known.join(", ")
        ));
        return exit::USAGE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            output::stderr(&format!("switchyard doctor: cannot start the async runtime: {err}"));
            return exit::FAILED;
        }
    };
    let opts = DoctorOptions {
        aliases: args.aliases.clone(),
        offline: args.offline,
        stream: args.stream,
        state_dir: args.state_dir.clone(),
    };
    let report = runtime.block_on(diagnose::doctor::run(&config, &ProcessEnv, &opts));
    if args.json {
        let mut json = serde_json::to_value(&report).unwrap_or_default();
        json["ok"] = serde_json::Value::Bool(report.exit_code == exit::OK);
        output::stdout(&serde_json::to_string_pretty(&json).unwrap_or_default());
    } else {
        output::stdout(diagnose::render::text(&report).trim_end());
    }
    report.exit_code
}
