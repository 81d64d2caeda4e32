//! `switchyard policy`: the minimal IAM policy for the configured Bedrock deployments. The
//! policy (valid IAM JSON) goes to stdout, the explanations to stderr, so
//! `switchyard policy > policy.json` keeps only the document.

use std::fmt::Write as _;

use clap::Args;

use super::{ConfigArgs, output};
use crate::config::{self, LoadOptions, ProcessEnv};
use crate::diagnose::grant;
use crate::exit;

#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// Only this alias's deployments (repeatable).
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,

    /// The AWS account id for inference-profile ARNs. Default: from STS with the
    /// deployments' credentials.
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,

    /// Do not call STS (the account becomes `*` unless --account names it).
    #[arg(long)]
    pub offline: bool,

    /// Print the policy with each deployment's resources and notes as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &PolicyArgs) -> u8 {
    let opts = LoadOptions {
        config_path: args.config.config.clone(),
        env_files: args.config.env_files.clone(),
    };
    let config = match config::load(&opts, &ProcessEnv) {
        Ok(config) => config,
        Err(errors) => {
            output::stderr(&format!("switchyard: the configuration is invalid\n\n{errors}"));
            return exit::BAD_CONFIG;
        }
    };
    if let Some(a) = args.aliases.iter().find(|a| config.group(a).is_none()) {
        let known: Vec<&str> = config.aliases().collect();
        output::stderr(&format!(
            "switchyard policy: no alias `{a}` in {}; the aliases are: {}",
            config.path.display(),
            known.join(", ")
        ));
        return exit::USAGE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            output::stderr(&format!("switchyard policy: cannot start the async runtime: {err}"));
            return exit::FAILED;
        }
    };
    let grant = runtime.block_on(grant::plan(
        &config,
        &ProcessEnv,
        &args.aliases,
        args.account.clone(),
        args.offline,
    ));
    if grant.deployments.is_empty() {
        output::stderr(&format!(
            "switchyard policy: no Bedrock deployment in {}{}: nothing needs an IAM policy.",
            config.path.display(),
            if args.aliases.is_empty() { String::new() } else { " for those aliases".to_owned() }
        ));
        return exit::FAILED;
    }
    let mut notes = String::new();
    let _ = writeln!(
        notes,
        "Minimal IAM policy for {} Bedrock deployment(s) in {}: bedrock:InvokeModel and \
         bedrock:InvokeModelWithResponseStream on exactly these resources.",
        grant.deployments.len(),
        config.path.display()
    );
    let _ = writeln!(
        notes,
        "Account: {} ({}).",
        grant.account.as_deref().unwrap_or("*"),
        grant.account_source
    );
    for n in &grant.deployments {
        let region = n.region.as_deref().unwrap_or("no region");
        let _ = writeln!(
            notes,
            "  {} ({}: {}, {region}): {} resource(s)",
            n.deployment,
            n.alias,
            n.model,
            n.resources.len()
        );
        for note in &n.notes {
            let _ = writeln!(notes, "    note: {note}");
        }
    }
    let _ = writeln!(
        notes,
        "Destination regions of geo inference profiles are from the built-in table as of {}.",
        grant.regions_as_of
    );
    output::stderr(notes.trim_end());
    let out = if args.json {
        serde_json::to_string_pretty(&grant)
    } else {
        serde_json::to_string_pretty(&grant.policy)
    };
    output::stdout(&out.unwrap_or_default());
    exit::OK
}
