//! The command line: clap structs and dispatch. Each command lives in its own file and
//! returns an exit code from [`crate::exit`]; only `main` turns it into the process status.

mod batches;
mod cache;
mod config_check;
mod doctor;
mod health;
mod init;
mod keys;
mod launch;
mod logs;
mod output;
mod policy;
mod serve;
mod service;
mod spend;
mod start;
mod status;
mod stop;
mod store_args;
mod verify;

pub use launch::find_on_path;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "An LLM gateway: tier aliases, failover between providers, and a diagnosis for \
             every failure.",
    long_about = None,
    args_conflicts_with_subcommands = true,
    // A repeated flag takes its last value, as LiteLLM's CLI does: a container's arguments
    // are appended to the image's ENTRYPOINT, which already names --host and --port.
    args_override_self = true,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// With no command, `switchyard` serves (as `litellm --config X --port P` does).
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway in the foreground (the default command).
    #[command(args_override_self = true)]
    Serve(ServeArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check every alias: config, credentials and identity, a live probe per deployment,
    /// and the next steps. Exit 0 when every alias works, 1 when one does not, 64 for a
    /// bad config.
    Doctor(doctor::DoctorArgs),
    /// "Say: WORKS" through a running gateway for every alias. Exit 0 when all pass.
    Verify(verify::VerifyArgs),
    /// Print the minimal IAM policy for the configured Bedrock deployments.
    Policy(policy::PolicyArgs),
    /// Start the gateway in the background and wait until it is ready.
    Start(start::StartArgs),
    /// Stop the background gateway: drain in-flight requests, then exit.
    Stop(stop::StopArgs),
    /// Stop the background gateway and start it again with the same command line.
    Restart(start::RestartArgs),
    /// Is the gateway running: pid, uptime, URL, config, last reload, health per alias.
    /// Exit 0 when running, 3 when not.
    Status(status::StatusArgs),
    /// Probe a gateway's /health/liveliness (or --ready: /health/readiness) once, as a
    /// container HEALTHCHECK does. Exit 0 on 200, 1 on another answer, 3 when none.
    Health(health::HealthArgs),
    /// Show the background gateway's log.
    Logs(logs::LogsArgs),
    /// What was spent, from the ledger: grouped by alias, model, deployment, provider, tag,
    /// user, key, session or day. Works without the gateway running.
    Spend(spend::SpendArgs),
    /// Write a starter config (three tiers) and an env file template.
    Init(init::InitArgs),
    /// Run the gateway as a systemd user service (Linux) or a launchd agent (macOS).
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Virtual keys: create (printed once), list, info, update, revoke. Works on the key
    /// store directly; running gateways see changes within a second.
    Keys(keys::KeysArgs),
    /// Batches the gateway runs (OpenAI and Anthropic): list, show, cancel. Works on the
    /// batch store directly, with or without the gateway running.
    Batches(batches::BatchesArgs),
    /// The running gateway's response cache: `stats`, or `clear` every cached answer.
    Cache(cache::CacheArgs),
    /// Start Claude Code (`claude`) on the running gateway: its URL and key, the tiers for
    /// its models, a session for `spend --by session`. Arguments after `--` go to claude.
    Claude(launch::LaunchArgs),
    /// Start Codex (`codex`) on the running gateway's Responses API, with its key, the
    /// balanced tier and a session. Arguments after `--` go to codex (`-- exec "…"`).
    Codex(launch::LaunchArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config and print what each alias resolves to. Exit 0 when valid, 64
    /// when not.
    Check(CheckArgs),
}

/// Where the config and env files are.
#[derive(Debug, Clone, Args, Default)]
pub struct ConfigArgs {
    /// Config file (LiteLLM format). Default: $SWITCHYARD_CONFIG, ./switchyard.yaml,
    /// ~/.config/switchyard/config.yaml, ~/.config/litellm/config.yaml.
    #[arg(long, short = 'c', value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Env file to load before resolving the config (`KEY=value`, `export KEY='value'`).
    /// Repeatable; variables already in the environment win. Also $SWITCHYARD_ENV_FILE.
    #[arg(long = "env-file", value_name = "PATH")]
    pub env_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0 picks a free one).
    #[arg(long, short = 'p', default_value_t = 4000)]
    pub port: u16,

    /// Listen on a non-loopback address even though no master key is configured.
    #[arg(long)]
    pub allow_unauthenticated: bool,

    /// Serve HTTPS with this PEM certificate chain (with --ssl-keyfile); re-read when the
    /// file changes. Also $SSL_CERTFILE_PATH; LiteLLM's --ssl_certfile_path is accepted.
    #[arg(
        long = "ssl-certfile",
        value_name = "PATH",
        visible_alias = "ssl_certfile_path",
        alias = "ssl-certfile-path"
    )]
    pub ssl_certfile: Option<PathBuf>,

    /// The PEM private key of --ssl-certfile. Also $SSL_KEYFILE_PATH; LiteLLM's
    /// --ssl_keyfile_path is accepted.
    #[arg(
        long = "ssl-keyfile",
        value_name = "PATH",
        visible_alias = "ssl_keyfile_path",
        alias = "ssl-keyfile-path"
    )]
    pub ssl_keyfile: Option<PathBuf>,

    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Log filter (`info`, `debug`, `switchyard=debug`); $SWITCHYARD_LOG overrides.
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// Accepted for LiteLLM command-line compatibility; Switchyard sizes itself to the
    /// machine's cores.
    #[arg(long = "num_workers", alias = "num-workers", hide = true)]
    pub num_workers: Option<usize>,

    /// Accepted for LiteLLM command-line compatibility: same as `--log-level debug`.
    #[arg(long = "detailed_debug", alias = "detailed-debug", hide = true)]
    pub detailed_debug: bool,

    /// On SIGTERM or Ctrl-C, how long in-flight requests and streams may take to finish
    /// before the gateway exits anyway.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub drain_timeout: u64,

    /// On SIGTERM, how long the gateway keeps accepting new connections while
    /// /health/readiness answers 503, so a load balancer watching readiness takes it out of
    /// rotation before the listener closes. 0 closes the listener at once.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub drain_grace: u64,

    /// Directory for the pid file and gateway.json, so `status`, `stop` and `logs` find this
    /// gateway. `start` defaults to $XDG_STATE_HOME/switchyard, else
    /// ~/.local/state/switchyard; `serve` writes one only when given.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Do not watch the config and env files for changes (SIGHUP and POST /config/reload
    /// still reload).
    #[arg(long)]
    pub no_watch: bool,

    /// How often the config and env files are checked for changes.
    #[arg(long, value_name = "MS", default_value_t = 1000, hide = true)]
    pub watch_interval_ms: u64,

    /// Set by `start`: leave the terminal's session.
    #[arg(long, hide = true)]
    pub detached: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Serve(args)) => serve::run(args),
        None => serve::run(cli.serve),
        Some(Command::Config(ConfigCommand::Check(args))) => config_check::run(&args),
        Some(Command::Doctor(args)) => doctor::run(&args),
        Some(Command::Verify(args)) => verify::run(&args),
        Some(Command::Policy(args)) => policy::run(&args),
        Some(Command::Start(args)) => start::run(&args),
        Some(Command::Stop(args)) => stop::run(&args),
        Some(Command::Restart(args)) => start::restart(&args),
        Some(Command::Status(args)) => status::run(&args),
        Some(Command::Health(args)) => health::run(&args),
        Some(Command::Logs(args)) => logs::run(&args),
        Some(Command::Spend(args)) => spend::run(&args),
        Some(Command::Init(args)) => init::run(&args),
        Some(Command::Service(command)) => service::run(&command),
        Some(Command::Keys(args)) => keys::run(&args),
        Some(Command::Batches(args)) => batches::run(&args),
        Some(Command::Cache(args)) => cache::run(&args),
        Some(Command::Claude(args)) => launch::run(launch::Tool::Claude, &args),
        Some(Command::Codex(args)) => launch::run(launch::Tool::Codex, &args),
    };
    // Log lines still queued are written before the process ends.
    crate::logging::flush();
    ExitCode::from(code)
}
