//! `switchyard claude` and `switchyard codex`: start Claude Code or Codex pointed at the
//! running gateway, with its key, its tiers and a session of their own, without touching the
//! tool's settings files. The tool replaces this process (exec), so its exit status and
//! signals are the tool's own.
//!
//! Exit codes before the tool starts: 127 the tool is not on PATH (GW-08), 3 no gateway
//! answers (GW-04), 1 the gateway refused the key (GW-01) or failed, 2 a bad `--session`.

mod gateway;
mod plan;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;

use super::output;
use crate::config::{Env, ProcessEnv};
use crate::exit;
pub use plan::Tool;

#[derive(Debug, Clone, Args)]
pub struct LaunchArgs {
    /// The gateway's base URL. Default: the gateway `switchyard start` runs, else
    /// http://127.0.0.1:4000.
    #[arg(long)]
    pub url: Option<String>,

    /// State directory of the gateway to use (default: $XDG_STATE_HOME/switchyard, else
    /// ~/.local/state/switchyard).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// The session the tool's requests are recorded under (`switchyard spend --by
    /// session`). Default: the tool's name, the time and four random hex digits.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,

    /// `claude` only: run Claude Code in its Bedrock mode on the gateway's /bedrock routes
    /// (CLAUDE_CODE_USE_BEDROCK, the key as its Bedrock bearer token), for setups that need
    /// that mode; the gateway still routes every request.
    #[arg(long)]
    pub bedrock: bool,

    /// Arguments for the tool itself, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

pub fn run(tool: Tool, args: &LaunchArgs) -> u8 {
    let env = ProcessEnv;
    let name = tool.program();
    let session = match &args.session {
        Some(s) => match valid_session(s) {
            Ok(()) => s.clone(),
            Err(why) => {
                output::stderr(&format!("switchyard {name}: --session {why}"));
                return exit::USAGE;
            }
        },
        None => new_session(tool),
    };
    if args.bedrock && tool != Tool::Claude {
        output::stderr(&format!("switchyard {name}: --bedrock is for `switchyard claude` only"));
        return exit::USAGE;
    }
    let Some(program) = on_path(name, &env) else {
        report(
            "GW-08",
            &format!("{} is not installed: no `{name}` on PATH.", tool.display_name()),
            &format!(
                "install it with `npm install -g {}` (or put `{name}` on PATH), then run \
                 `switchyard {name}` again",
                tool.npm_package()
            ),
        );
        return exit::TOOL_MISSING;
    };
    let found = match gateway::find(args.url.as_deref(), args.state_dir.as_deref(), &env) {
        Ok(f) => f,
        Err(message) => {
            output::stderr(&format!("switchyard {name}: {message}"));
            return exit::USAGE;
        }
    };
    let aliases = match gateway::aliases(&found) {
        Ok(a) => a,
        Err(unusable) => return refuse(name, args.state_dir.as_deref(), unusable),
    };
    let key = found.key.clone().unwrap_or_else(|| NO_KEY.to_owned());
    let custom_headers = env.get("ANTHROPIC_CUSTOM_HEADERS").map(|v| v.value);
    let region = env.get("AWS_REGION").map(|v| v.value);
    let target = plan::Target {
        url: &found.url,
        key: &key,
        aliases: &aliases,
        session: &session,
        custom_headers: custom_headers.as_deref(),
        bedrock: args.bedrock.then_some(plan::Bedrock { region: region.as_deref() }),
    };
    let plan = plan::plan(tool, &target);
    if plan.model.is_none() {
        output::stderr(&format!(
            "switchyard {name}: the gateway serves none of the tiers cheap, balanced, \
             frontier (it serves: {}); the tool asks for its own model names unless you pass \
             one, e.g. `switchyard {name} -- {} <alias>`",
            if aliases.is_empty() { "nothing".to_owned() } else { aliases.join(", ") },
            if tool == Tool::Claude { "--model" } else { "-m" },
        ));
    }
    if std::io::stderr().is_terminal() {
        output::stderr(&format!(
            "{} → {}{}, session {session} (`switchyard spend --by session`)",
            tool.display_name(),
            found.url,
            plan.model.as_deref().map(|m| format!(", model {m}")).unwrap_or_default(),
        ));
    }

    let mut cmd = Command::new(&program);
    cmd.args(&plan.args).args(&args.args);
    for var in &plan.remove {
        cmd.env_remove(var);
    }
    for (var, value) in &plan.set {
        cmd.env(var, value);
    }
    let err = replace_process(&mut cmd);
    report(
        "GW-08",
        &format!("{} could not be started from {}: {err}.", tool.display_name(), program.display()),
        &format!(
            "reinstall it with `npm install -g {}` or fix the file's permissions",
            tool.npm_package()
        ),
    );
    exit::TOOL_MISSING
}

/// What the tool presents when the gateway has no master key (it accepts any key on
/// loopback then); both tools refuse to start without one.
const NO_KEY: &str = "no-key";

fn refuse(name: &str, state_dir: Option<&Path>, unusable: gateway::Unusable) -> u8 {
    let sd = state_dir.map(|d| format!(" --state-dir {}", d.display())).unwrap_or_default();
    match unusable {
        gateway::Unusable::NotAnswering { url, url_source, why } => {
            report(
                "GW-04",
                &format!("No gateway answers at {url} ({url_source}): {why}."),
                &format!(
                    "start one with `switchyard start{sd}` (`switchyard status{sd}` shows \
                     whether it runs and its log), or name a running one with \
                     `switchyard {name} --url URL`"
                ),
            );
            exit::NOT_RUNNING
        }
        gateway::Unusable::KeyRefused { url, key_source, message } => {
            report(
                "GW-01",
                &format!("The gateway at {url} refused the key from {key_source}: {message}"),
                "set SWITCHYARD_MASTER_KEY to the gateway's master key (general_settings.\
                 master_key of its config, or its env file), or use the gateway `switchyard \
                 start` runs",
            );
            exit::FAILED
        }
        gateway::Unusable::Failed { url, message } => {
            report(
                "GW-04",
                &format!("The gateway at {url} did not list its models: {message}"),
                &format!("check it with `switchyard status{sd}` and `switchyard logs{sd}`"),
            );
            exit::FAILED
        }
    }
}

/// The CLI's diagnosis layout, as `status` prints GW-04.
fn report(id: &str, cause: &str, remedy: &str) {
    output::stderr(&format!("{cause}  ({id})\n  fix: {remedy}"));
}

/// `claude-20260412-153012-a3f9`: sortable, readable in a spend report, unique enough for
/// one person's sessions.
fn new_session(tool: Tool) -> String {
    format!(
        "{}-{}-{:04x}",
        tool.program(),
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        fastrand::u16(..)
    )
}

/// It travels in an HTTP header and is a report's group name: printable, no spaces.
fn valid_session(s: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "._:@/+-".contains(c);
    if s.is_empty() || s.len() > 128 || !s.chars().all(ok) {
        return Err(format!(
            "{s:?} is not a session id: use 1 to 128 letters, digits and . _ : @ / + -"
        ));
    }
    Ok(())
}

fn on_path(program: &str, env: &dyn Env) -> Option<PathBuf> {
    find_on_path(program, env.get("PATH")?.value.as_ref())
}

/// The first executable file named `program` in the directories of `path` (a `PATH` value).
pub fn find_on_path(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path).map(|dir| dir.join(program)).find(|p| executable(p))
}

#[cfg(unix)]
fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn executable(path: &Path) -> bool {
    path.is_file()
}

/// Returns only when the tool could not be started.
#[cfg(unix)]
fn replace_process(cmd: &mut Command) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    cmd.exec()
}

#[cfg(not(unix))]
fn replace_process(cmd: &mut Command) -> std::io::Error {
    match cmd.status() {
        Ok(status) => {
            crate::logging::flush();
            std::process::exit(status.code().unwrap_or(1))
        }
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_header_safe() {
        assert!(valid_session("refactor-auth.2").is_ok());
        assert!(valid_session("team:search/alice@host").is_ok());
        for bad in ["", "two words", "new\nline", "é", &"x".repeat(129)] {
            assert!(valid_session(bad).is_err(), "{bad:?}");
        }
        let generated = new_session(Tool::Codex);
        assert!(generated.starts_with("codex-") && valid_session(&generated).is_ok());
    }
}
