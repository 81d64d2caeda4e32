//! `switchyard cache stats | clear`: the running gateway's response cache, through its
//! master-key routes (`GET /cache/stats`, `POST /cache/flushall`). Exit 0 on success, 1
//! when the gateway refuses or the cache is off or unreachable, 3 when no gateway answers.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::output;
use crate::config::{Env, ProcessEnv};
use crate::daemon::client::{Client, error_message};
use crate::diagnose::verify::DEFAULT_URL;
use crate::{daemon, exit};

#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,

    /// The gateway's base URL. Default: the gateway `switchyard start` runs, else
    /// http://127.0.0.1:4000.
    #[arg(long, global = true)]
    pub url: Option<String>,

    /// The master key. Default: $SWITCHYARD_MASTER_KEY, else $LITELLM_MASTER_KEY, else the
    /// key of the gateway `switchyard start` runs (from its config or env files).
    #[arg(long, value_name = "KEY", global = true)]
    pub key: Option<String>,

    /// Print the gateway's answer as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum CacheCommand {
    /// Hits, misses, bypasses and stores since the gateway started, entries and bytes held,
    /// and whether the store is reachable.
    Stats,
    /// Delete every cached answer (in Redis: every key under the cache's namespace).
    Clear,
}

pub fn run(args: &CacheArgs) -> u8 {
    let env = ProcessEnv;
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
        .filter(|k| !k.trim().is_empty());
    let url = match (&args.url, &started) {
        (Some(url), _) => url.clone(),
        (None, Some(info)) => info.connect_url(),
        (None, None) => DEFAULT_URL.to_owned(),
    };
    let client = match Client::new(&url, key) {
        Ok(c) => c,
        Err(err) => {
            output::stderr(&format!("switchyard cache: {err}"));
            return exit::FAILED;
        }
    };
    let timeout = Duration::from_secs(30);
    let answer = match args.command {
        CacheCommand::Stats => client.get("/cache/stats", timeout),
        CacheCommand::Clear => client.post("/cache/flushall", timeout),
    };
    let answer = match answer {
        Ok(a) => a,
        Err(err) => {
            output::stderr(&format!(
                "switchyard cache: {err}. Start the gateway (`switchyard start`) or pass --url."
            ));
            return exit::NOT_RUNNING;
        }
    };
    if answer.status != 200 {
        let message = match answer.body["error"].as_str() {
            Some(e) => format!("the cache store cannot be reached: {e}"),
            None => error_message(&answer),
        };
        output::stderr(&format!("switchyard cache: {message}"));
        return exit::FAILED;
    }
    if args.json {
        output::stdout(&serde_json::to_string_pretty(&answer.body).unwrap_or_default());
        return exit::OK;
    }
    match args.command {
        CacheCommand::Stats => output::stdout(&stats_text(&answer.body)),
        CacheCommand::Clear => {
            output::stdout(&format!("deleted {} cached answers", answer.body["deleted"]));
        }
    }
    exit::OK
}

fn stats_text(s: &Value) -> String {
    let health = &s["health"];
    let store = match health["type"].as_str() {
        Some("redis") => format!(
            "redis at {} (namespace {})",
            health["redis"].as_str().unwrap_or("?"),
            s["namespace"].as_str().unwrap_or("?")
        ),
        _ => format!(
            "local, {} of {} bytes",
            s["bytes"].as_u64().unwrap_or(0),
            s["max_bytes"].as_u64().unwrap_or(0)
        ),
    };
    let mut out = format!(
        "store     {store}\nentries   {}\nhits      {}\nmisses    {}\nbypasses  {}\nstores    {} ({} failed)\nttl       {} s, {}",
        s["entries"],
        s["hits"],
        s["misses"],
        s["bypasses"],
        s["stores"],
        s["store_errors"],
        s["ttl_seconds"],
        s["mode"].as_str().unwrap_or("default_on"),
    );
    if health["degraded"] == true {
        out.push_str(&format!(
            "\nDEGRADED  since {}: {} (requests bypass the cache)",
            health["since"].as_str().unwrap_or("?"),
            health["error"].as_str().unwrap_or("?")
        ));
    }
    out
}
