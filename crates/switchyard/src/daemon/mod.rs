//! The state directory of a gateway that runs in the background, and how the operator
//! commands (`start`, `stop`, `restart`, `status`, `logs`; `verify` too) find it.
//!
//! Layout (`--state-dir`, else `$XDG_STATE_HOME/switchyard`, else
//! `~/.local/state/switchyard`; created with mode 0700):
//!
//! | file | written by | holds |
//! |---|---|---|
//! | `switchyard.pid` | the serving process, once its port is bound | its pid |
//! | `gateway.json` | the same, updated after each reload | [`GatewayInfo`] |
//! | `switchyard.log` | `start` (the process's stdout and stderr) | the log |
//! | `last-start.json` | `start` | its serve command line, for `restart` |
//!
//! The serving process removes the pid file and `gateway.json` when it exits; a pid file
//! left by a crash is recognised as stale because its process is gone (or, on Linux, is not
//! a gateway of this state directory). Nothing here talks HTTP; see [`client`].

pub mod client;
pub mod clock;
pub mod logfile;
pub mod port;
pub mod process;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Env;

/// What a serving process writes about itself in `gateway.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayInfo {
    pub pid: u32,
    /// `http://HOST:PORT` as bound (the real port, even with `--port 0`).
    pub url: String,
    pub config: PathBuf,
    pub env_files: Vec<PathBuf>,
    /// Unix seconds.
    pub started_at: u64,
    /// Started by `switchyard start` (not in the foreground or by a service manager).
    pub detached: bool,
    /// Where its output goes, when known.
    pub log: Option<PathBuf>,
    pub drain_timeout_secs: u64,
    /// Its command line after the program name: what `restart` runs again.
    pub args: Vec<String>,
    pub version: String,
    /// The last reload and its result (`server::reload::ReloadRecord` as JSON), if any.
    #[serde(default)]
    pub last_reload: Option<Value>,
}

impl GatewayInfo {
    /// The URL to connect to: a wildcard listen address is reached on loopback.
    pub fn connect_url(&self) -> String {
        connect_url(&self.url)
    }
}

/// `http://0.0.0.0:P` → `http://127.0.0.1:P`, `http://[::]:P` → `http://[::1]:P`.
pub fn connect_url(url: &str) -> String {
    url.replacen("//0.0.0.0:", "//127.0.0.1:", 1).replacen("//[::]:", "//[::1]:", 1)
}

/// What the state directory says about its gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Running(Box<GatewayInfo>),
    /// A pid file names a process that is gone (a crash, a `kill -9`).
    Stale {
        pid: u32,
    },
    NotRunning,
}

/// One state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// `flag`, else `$XDG_STATE_HOME/switchyard`, else `$HOME/.local/state/switchyard`.
    /// Relative paths are made absolute (the serving process may run elsewhere).
    pub fn resolve(flag: Option<&Path>, env: &dyn Env) -> Result<Self, String> {
        let var = |name: &str| env.get(name).map(|v| v.value).filter(|v| !v.trim().is_empty());
        let root = match flag {
            Some(p) => p.to_owned(),
            None => match (var("XDG_STATE_HOME"), var("HOME")) {
                (Some(xdg), _) => PathBuf::from(xdg).join("switchyard"),
                (None, Some(home)) => PathBuf::from(home).join(".local/state/switchyard"),
                (None, None) => {
                    return Err("cannot choose a state directory: neither XDG_STATE_HOME nor \
                                HOME is set; pass --state-dir DIR"
                        .to_owned());
                }
            },
        };
        let root = std::path::absolute(&root)
            .map_err(|e| format!("state directory {}: {e}", root.display()))?;
        Ok(Self { root })
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pid_file(&self) -> PathBuf {
        self.root.join("switchyard.pid")
    }

    pub fn info_file(&self) -> PathBuf {
        self.root.join("gateway.json")
    }

    pub fn log_file(&self) -> PathBuf {
        self.root.join("switchyard.log")
    }

    pub fn last_start_file(&self) -> PathBuf {
        self.root.join("last-start.json")
    }

    /// Creates the directory (and its parents); the directory itself is private (0700).
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    /// Writes `gateway.json`, then the pid file, each replaced atomically.
    pub fn write_info(&self, info: &GatewayInfo) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
        write_atomic(&self.info_file(), &json)?;
        write_atomic(&self.pid_file(), format!("{}\n", info.pid).as_bytes())
    }

    pub fn read_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.pid_file()).ok()?.trim().parse().ok()
    }

    pub fn read_info(&self) -> Option<GatewayInfo> {
        let text = std::fs::read(self.info_file()).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Removes the pid file and `gateway.json` if they still name `pid` (a newer gateway's
    /// files are left alone).
    pub fn remove_if_pid(&self, pid: u32) {
        if self.read_pid().is_none_or(|p| p == pid) {
            let _ = std::fs::remove_file(self.pid_file());
        }
        if self.read_info().is_none_or(|i| i.pid == pid) {
            let _ = std::fs::remove_file(self.info_file());
        }
    }

    /// Whether a gateway of this state directory is running.
    pub fn lookup(&self) -> Lookup {
        let pid = self.read_pid().or_else(|| self.read_info().map(|i| i.pid));
        let Some(pid) = pid else { return Lookup::NotRunning };
        if !process::serves_state_dir(pid, &self.root) {
            return Lookup::Stale { pid };
        }
        match self.read_info() {
            Some(info) if info.pid == pid => Lookup::Running(Box::new(info)),
            // Alive but its facts are missing: it is starting or exiting right now.
            _ => Lookup::Stale { pid },
        }
    }

    /// Records the serve command line `start` used, for `restart`.
    pub fn write_last_start(&self, args: &[String]) -> std::io::Result<()> {
        let json = serde_json::json!({"args": args, "at": clock::unix_now()});
        write_atomic(&self.last_start_file(), json.to_string().as_bytes())
    }

    pub fn read_last_start(&self) -> Option<Vec<String>> {
        let text = std::fs::read(self.last_start_file()).ok()?;
        let value: Value = serde_json::from_slice(&text).ok()?;
        serde_json::from_value(value.get("args")?.clone()).ok()
    }
}

/// Writes `path` through a temporary file in the same directory and a rename, so a reader
/// never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

    fn info(pid: u32) -> GatewayInfo {
        GatewayInfo {
            pid,
            url: "http://0.0.0.0:4000".into(),
            config: "/c.yaml".into(),
            env_files: vec![],
            started_at: 1,
            detached: true,
            log: None,
            drain_timeout_secs: 30,
            args: vec!["serve".into()],
            version: "0".into(),
            last_reload: None,
        }
    }

    #[test]
    fn the_state_dir_follows_xdg_then_home() {
        let env = MapEnv::new([("XDG_STATE_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(StateDir::resolve(None, &env).unwrap().root(), Path::new("/x/switchyard"));
        let env = MapEnv::new([("HOME", "/h")]);
        assert_eq!(
            StateDir::resolve(None, &env).unwrap().root(),
            Path::new("/h/.local/state/switchyard")
        );
        let flag = StateDir::resolve(Some(Path::new("/s")), &env).unwrap();
        assert_eq!(flag.root(), Path::new("/s"));
        assert!(StateDir::resolve(None, &MapEnv::default()).is_err());
    }

    #[test]
    fn a_pid_file_of_a_dead_process_is_stale_and_our_own_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::at(dir.path());
        assert_eq!(state.lookup(), Lookup::NotRunning);
        // Pid 0 is never a live process.
        state.write_info(&info(0)).unwrap();
        assert_eq!(state.lookup(), Lookup::Stale { pid: 0 });
        state.remove_if_pid(7);
        assert!(state.pid_file().exists(), "another pid's files are left alone");
        state.remove_if_pid(0);
        assert!(!state.pid_file().exists() && !state.info_file().exists());
    }

    #[test]
    fn wildcard_addresses_are_reached_on_loopback() {
        assert_eq!(info(1).connect_url(), "http://127.0.0.1:4000");
        assert_eq!(connect_url("http://[::]:9"), "http://[::1]:9");
        assert_eq!(connect_url("http://10.0.0.1:9"), "http://10.0.0.1:9");
    }

    #[test]
    fn last_start_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::at(dir.path());
        assert_eq!(state.read_last_start(), None);
        state.write_last_start(&["serve".into(), "--port".into(), "1".into()]).unwrap();
        assert_eq!(state.read_last_start().unwrap(), vec!["serve", "--port", "1"]);
    }
}
