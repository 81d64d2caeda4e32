//! `switchyard verify`: "Say: WORKS" through a running gateway for every alias (or those
//! named). Exit 0 only when every alias answers, 1 when one fails, 3 when no gateway runs at
//! the URL (GW-04).

use clap::Args;

use super::output;
use crate::config::{Env, ProcessEnv};
use crate::diagnose::verify::{self, DEFAULT_URL, Options};
use crate::secret::Secret;
use crate::{daemon, exit};

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The gateway's base URL. Default: the gateway `switchyard start` runs, else
    /// http://127.0.0.1:4000.
    #[arg(long)]
    pub url: Option<String>,

    /// The gateway's key. Default: $SWITCHYARD_MASTER_KEY, else $LITELLM_MASTER_KEY, else
    /// the key of the gateway `switchyard start` runs (from its config or env files).
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
    // The gateway `start` launched, when no URL was given: its URL, and its key when the
    // environment holds none (after `init` + `start` the key lives in the env file).
    let started = match &args.url {
        Some(_) => None,
        None => match daemon::StateDir::resolve(None, &env).map(|dir| dir.lookup()) {
            Ok(daemon::Lookup::Running(info)) => Some(info),
            _ => None,
        },
    };
    let key = args
        .key
        .clone()
        .or_else(|| env.get("SWITCHYARD_MASTER_KEY").map(|v| v.value))
        .or_else(|| env.get("LITELLM_MASTER_KEY").map(|v| v.value))
        .or_else(|| started.as_deref().and_then(daemon::client::key_for))
        .filter(|k| !k.trim().is_empty())
        .map(Secret::new);
    let url = match (&args.url, &started) {
        (Some(url), _) => url.clone(),
        (None, Some(info)) => info.connect_url(),
        (None, None) => DEFAULT_URL.to_owned(),
    };
    let opts = Options {
        url,
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
