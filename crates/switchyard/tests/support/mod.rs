//! What every integration test starts from: a config from YAML text and an in-process gateway
//! on a free loopback port. Feature harnesses (`ledger_support`, `limits_support`, …) build on
//! these; a test file declares `mod support;` beside them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use switchyard::config::{self, Config, MapEnv};
use switchyard::server::{self, Handle, Runtime};

/// The environment most tests load with: `HOME` points nowhere, so no `~/.aws` or
/// `~/.config` of the machine's leaks into a test.
pub fn no_home() -> MapEnv {
    MapEnv::new([("HOME", "/nonexistent")])
}

/// `yaml` loaded as the file `test.yaml` with `env` as the process environment; a config
/// that does not load fails the test with every problem listed.
pub fn config(yaml: &str, env: &MapEnv) -> Config {
    config::load_from_str(yaml, Path::new("test.yaml"), env).unwrap_or_else(|e| panic!("{e}"))
}

/// A gateway serving `config` on 127.0.0.1 with a port the OS picks.
pub async fn start(config: Config) -> Handle {
    server::start("127.0.0.1:0".parse().unwrap(), Runtime::new(config)).await.unwrap()
}

/// A gateway serving `yaml` (loaded with `env`).
pub async fn gateway(yaml: &str, env: &MapEnv) -> Handle {
    start(config(yaml, env)).await
}

/// The real binary, started as a user starts it, until [`Served::stop`] (or the end of the
/// test: dropped, it is killed).
pub struct Served {
    child: Option<std::process::Child>,
    /// `http://127.0.0.1:<port>` (or `https://` with TLS), as its ready line says.
    pub url: String,
}

/// `switchyard serve --port 0 --no-watch --config <config> --state-dir <state>`, HOME and
/// XDG_STATE_HOME at `home`, no DATABASE_URL from the machine. Callers add arguments and
/// variables before [`spawn_ready`].
pub fn serve_command(config: &Path, state: &Path, home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(["serve", "--port", "0", "--config"])
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .env("HOME", home)
        .env("XDG_STATE_HOME", home)
        .env_remove("DATABASE_URL");
    cmd
}

/// [`serve_command`] with `--no-watch`, started and ready.
pub async fn serve(config: &Path, state: &Path, home: &Path) -> Served {
    let mut cmd = serve_command(config, state, home);
    cmd.arg("--no-watch");
    spawn_ready(cmd).await
}

/// Starts `cmd` and waits for its ready line (`Switchyard listening on <url>`), the one line
/// scripts wait for; a binary that exits first fails the test with what it printed.
pub async fn spawn_ready(cmd: std::process::Command) -> Served {
    spawn_with(cmd, std::process::Stdio::null()).await.0
}

/// [`spawn_ready`] with the gateway's stderr on a pipe, handed back unread.
pub async fn spawn_ready_piping_stderr(
    cmd: std::process::Command,
) -> (Served, std::process::ChildStderr) {
    let (served, stderr) = spawn_with(cmd, std::process::Stdio::piped()).await;
    (served, stderr.unwrap())
}

async fn spawn_with(
    mut cmd: std::process::Command,
    stderr: std::process::Stdio,
) -> (Served, Option<std::process::ChildStderr>) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let Some(url) = line.trim().strip_prefix("Switchyard listening on ") else {
        let _ = child.kill();
        let status = child.wait().unwrap();
        panic!("the gateway did not start ({status}): {line:?}");
    };
    (Served { url: url.to_owned(), child: Some(child) }, stderr)
}

impl Served {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, std::process::Child::id)
    }

    /// `host:port`, for raw connections.
    pub fn addr(&self) -> &str {
        self.url.split_once("://").map_or(&*self.url, |(_, a)| a)
    }

    /// Sends `sig` (SIGHUP reloads; SIGTERM drains, as [`Served::stop`] does).
    pub fn signal(&self, sig: switchyard::daemon::process::Sig) {
        switchyard::daemon::process::signal(self.pid(), sig).unwrap();
    }

    /// SIGTERM, then the exit status once the gateway has drained and exited.
    pub async fn stop(self) -> std::process::ExitStatus {
        self.signal(switchyard::daemon::process::Sig::Term);
        self.wait().await
    }

    /// The exit status once the gateway has exited (told to by the test).
    pub async fn wait(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
