//! `switchyard stop`: SIGTERM the gateway of the state directory and wait (bounded) while
//! it drains in-flight requests; `--force` kills it at once. Stopping a gateway that is not
//! running is not an error (scripts can always call it).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use super::output;
use crate::config::ProcessEnv;
use crate::daemon::process::{self, Sig};
use crate::daemon::{GatewayInfo, Lookup, StateDir};
use crate::exit;

#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// State directory (default: $XDG_STATE_HOME/switchyard, else ~/.local/state/switchyard).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// How long to wait for in-flight requests to drain (default: the gateway's own drain
    /// timeout plus 5 s).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,

    /// Kill the gateway at once (SIGKILL): requests in flight are cut off.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &StopArgs) -> u8 {
    let dir = match StateDir::resolve(args.state_dir.as_deref(), &ProcessEnv) {
        Ok(dir) => dir,
        Err(message) => {
            output::stderr(&format!("switchyard: {message}"));
            return exit::USAGE;
        }
    };
    match dir.lookup() {
        Lookup::Running(info) => stop_gateway(&dir, &info, args.timeout, args.force),
        Lookup::Stale { pid } => {
            dir.remove_if_pid(pid);
            output::stdout(&format!(
                "Switchyard is not running (removed a stale pid file: pid {pid} is gone)."
            ));
            exit::OK
        }
        Lookup::NotRunning => {
            output::stdout(&format!(
                "Switchyard is not running (nothing is recorded in {}).",
                dir.root().display()
            ));
            exit::OK
        }
    }
}

/// Stops the running gateway `info`: 0 once it is gone, 1 if it outlived the bound.
pub fn stop_gateway(dir: &StateDir, info: &GatewayInfo, timeout: Option<u64>, force: bool) -> u8 {
    let pid = info.pid;
    let started = Instant::now();
    if force {
        if let Err(err) = process::signal(pid, Sig::Kill) {
            output::stderr(&format!("switchyard: cannot kill pid {pid}: {err}"));
            return exit::FAILED;
        }
        process::wait_gone(pid, Duration::from_secs(5));
        dir.remove_if_pid(pid);
        output::stdout(&format!("Switchyard killed (pid {pid}); requests in flight were cut off."));
        return exit::OK;
    }
    if let Err(err) = process::signal(pid, Sig::Term) {
        output::stderr(&format!("switchyard: cannot signal pid {pid}: {err}"));
        return exit::FAILED;
    }
    let bound = Duration::from_secs(timeout.unwrap_or(info.drain_timeout_secs + 5));
    output::stderr(&format!(
        "stopping switchyard (pid {pid}): finishing requests in flight (up to {} s)",
        bound.as_secs()
    ));
    if process::wait_gone(pid, bound) {
        // The gateway removes its own files; these are for one that could not.
        dir.remove_if_pid(pid);
        output::stdout(&format!(
            "Switchyard stopped (pid {pid}) in {:.1} s.",
            started.elapsed().as_secs_f64()
        ));
        exit::OK
    } else {
        output::stderr(&format!(
            "switchyard: pid {pid} is still running after {} s (still draining requests?).\n  \
             fix: `switchyard stop --force` kills it; its log: {}",
            bound.as_secs(),
            dir.log_file().display()
        ));
        exit::FAILED
    }
}
