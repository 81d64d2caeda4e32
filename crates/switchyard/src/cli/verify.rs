//! `switchyard verify`: "Say: WORKS" through a running gateway for every alias (or those
//! named). Exit 0 only when every alias answers, 1 when one fails, 3 when no gateway runs at
//! the URL (GW-04).

use clap::Args;

use super::output;
use crate::config::{Env, ProcessEnv};
use crate::diagnose::verify::{self, DEFAULT_URL, Options};
use crate::exit;
use crate::secret::Secret;

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The gateway's base URL.
    #[arg(long, default_value = DEFAULT_URL)]
    pub url: String,

    /// The gateway's key. Default: $SWITCHYARD_MASTER_KEY, else $LITELLM_MASTER_KEY.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    /// Check only this alias (repeatable). Default: every alias in /v1/models.
    #[arg(long = "model", short = 'm', value_name = "ALIAS")]
    pub models: Vec<String>,

    /// Ask for streamed answers.
    #[arg(long)]
    pub stream: bool,

    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &VerifyArgs) -> u8 {
    let env = ProcessEnv;
    let key = args
        .key
        .clone()
        .or_else(|| env.get("SWITCHYARD_MASTER_KEY").map(|v| v.value))
        .or_else(|| env.get("LITELLM_MASTER_KEY").map(|v| v.value))
        .filter(|k| !k.trim().is_empty())
        .map(Secret::new);
    let opts = Options {
        url: args.url.clone(),
        key,
        models: args.models.clone(),
        stream: args.stream,
        state_dir: verify::state_dir(&env),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            output::stderr(&format!("switchyard verify: cannot start the async runtime: {err}"));
            return exit::FAILED;
        }
    };
    let report = runtime.block_on(verify::run(&opts));
    if args.json {
        output::stdout(&serde_json::to_string_pretty(&report).unwrap_or_default());
    } else if report.unavailable.is_some() || report.listing_error.is_some() {
        output::stderr(verify::text(&report).trim_end());
    } else {
        output::stdout(verify::text(&report).trim_end());
    }
    report.exit_code
}
