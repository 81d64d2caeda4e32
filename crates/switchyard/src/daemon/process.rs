//! Process control for `start`/`stop`/`status`: is a pid alive, is it the gateway of this
//! state directory, signal it, wait for it to go, leave the terminal's session. Safe
//! wrappers over rustix; nothing here knows about HTTP or config.

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// The signals the operator verbs send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// Drain and exit.
    Term,
    /// Exit now, no cleanup.
    Kill,
    /// Reload the config.
    Hup,
}

fn pid_of(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// Whether `pid` names a live process (a zombie waiting to be reaped counts as gone).
pub fn alive(pid: u32) -> bool {
    let Some(p) = pid_of(pid) else { return false };
    let exists = match rustix::process::test_kill_process(p) {
        Ok(()) => true,
        // It exists but belongs to someone else.
        Err(e) => e == rustix::io::Errno::PERM,
    };
    exists && !zombie(pid)
}

#[cfg(target_os = "linux")]
fn zombie(pid: u32) -> bool {
    // `/proc/PID/stat` is `PID (COMM) STATE …`; COMM may hold spaces and parentheses, so
    // the state follows the last `)`.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().starts_with('Z')))
        .unwrap_or(false)
}

#[cfg(not(target_os = "linux"))]
fn zombie(_pid: u32) -> bool {
    false
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: Sig) -> std::io::Result<()> {
    let p = pid_of(pid).ok_or_else(|| std::io::Error::other(format!("invalid pid {pid}")))?;
    let s = match sig {
        Sig::Term => Signal::TERM,
        Sig::Kill => Signal::KILL,
        Sig::Hup => Signal::HUP,
    };
    rustix::process::kill_process(p, s).map_err(std::io::Error::from)
}

/// Polls until `pid` is gone or `timeout` passes; true when it is gone.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a new session with this process as its leader, so a gateway started by `start`
/// has no controlling terminal: closing the terminal or Ctrl-C there never reaches it.
pub fn detach_session() -> std::io::Result<()> {
    rustix::process::setsid().map(|_| ()).map_err(std::io::Error::from)
}

/// Whether the live process `pid` is a gateway serving with `--state-dir state_dir`, so a
/// recycled pid is never taken for ours. Linux reads its command line; elsewhere liveness
/// is all there is to go on.
pub fn serves_state_dir(pid: u32, state_dir: &Path) -> bool {
    if !alive(pid) {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            // Not readable (another user's process): do not claim it.
            return false;
        };
        let args: Vec<String> =
            raw.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        state_dir_arg(&args).is_some_and(|dir| same_path(Path::new(&dir), state_dir))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = state_dir;
        true
    }
}

/// The value of `--state-dir` in a command line.
pub fn state_dir_arg(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--state-dir" {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix("--state-dir=") {
            return Some(v.to_owned());
        }
    }
    None
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// A process's command line for messages (`switchyard serve --port 4000`), at most `max`
/// characters; `None` when it cannot be read.
pub fn command_line(pid: u32, max: usize) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let text: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let line = text.join(" ");
        if line.is_empty() {
            return None;
        }
        Some(shorten(&line, max))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let out = std::process::Command::new("ps")
            .args(["-o", "command=", "-p", &pid.to_string()])
            .output()
            .ok()?;
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!line.is_empty()).then(|| shorten(&line, max))
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_huge_pid_is_not() {
        assert!(alive(std::process::id()));
        assert!(!alive(0));
        assert!(!alive(u32::MAX));
    }

    #[test]
    fn finds_the_state_dir_argument_in_both_spellings() {
        let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            state_dir_arg(&args(&["switchyard", "serve", "--state-dir", "/s"])).as_deref(),
            Some("/s")
        );
        assert_eq!(state_dir_arg(&args(&["x", "--state-dir=/t"])).as_deref(), Some("/t"));
        assert_eq!(state_dir_arg(&args(&["x", "--port", "1"])), None);
    }

    #[test]
    fn shortens_long_command_lines() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
    }
}
