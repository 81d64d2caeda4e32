//! The harness of `tests/daily_ops.rs`: the real binary in a temporary HOME, state and
//! working directory, its commands run off the async workers, the mock-backed configs, and
//! small HTTP helpers. Every wait is a poll with a generous bound.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::daemon::process::{self, Sig};

pub const MASTER: &str = "sk-switchyard-test-master";
pub const ANT_KEY: &str = "sk-ant-api03-test-daily-ops";
/// Readiness and reload waits: generous, for a loaded two-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Three tiers answered by `mock_response`, and more entries if given.
pub fn mock_config(extra: &str) -> String {
    let mut text = String::from("model_list:\n");
    for alias in ["cheap", "balanced", "frontier"] {
        text.push_str(&format!(
            "  - model_name: {alias}\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      mock_response: \"WORKS\"\n"
        ));
    }
    text.push_str(extra);
    text.push_str(&format!("general_settings:\n  master_key: {MASTER}\n"));
    text
}

/// `streamed` on the mock Anthropic API at `api_base`, and more entries if given.
pub fn upstream_config(api_base: &str, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: streamed\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      api_key: {ANT_KEY}\n      api_base: {api_base}\n{extra}general_settings:\n  master_key: {MASTER}\n"
    )
}

pub const EXTRA_ALIAS: &str = "  - model_name: extra\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      mock_response: \"EXTRA\"\n";

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// A temporary HOME, XDG_STATE_HOME and working directory; kills whatever gateway its state
/// directory still records when dropped.
pub struct Ops {
    pub tmp: tempfile::TempDir,
}

impl Ops {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["home", "xdg-state", "work"] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        Self { tmp }
    }

    pub fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    pub fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    /// The default state directory under the temporary XDG_STATE_HOME.
    pub fn state(&self) -> PathBuf {
        self.tmp.path().join("xdg-state/switchyard")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(args)
            .current_dir(self.work())
            .env("HOME", self.home())
            .env("XDG_STATE_HOME", self.tmp.path().join("xdg-state"))
            .stdin(Stdio::null());
        for var in [
            "SWITCHYARD_CONFIG",
            "SWITCHYARD_ENV_FILE",
            "SWITCHYARD_MASTER_KEY",
            "LITELLM_MASTER_KEY",
            "ANTHROPIC_API_KEY",
            "XDG_CONFIG_HOME",
            "SWITCHYARD_LOG",
            "RUST_LOG",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Runs a command to completion off the async workers (some wait on the gateway).
    pub async fn run(&self, args: &[&str]) -> Out {
        let mut cmd = self.cmd(args);
        tokio::task::spawn_blocking(move || Out::from(cmd.output().unwrap())).await.unwrap()
    }

    /// Writes `name` in the work directory as editors do: a temporary file, then a rename.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.work().join(name);
        let tmp = self.work().join(format!(".{name}.swp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }

    pub async fn start(&self, config: &Path, extra: &[&str]) -> Value {
        let mut args = vec!["start", "--config", config.to_str().unwrap(), "--port", "0"];
        args.extend_from_slice(extra);
        let out = self.run(&args).await;
        assert_eq!(out.code, 0, "start failed:\n{out}");
        assert!(out.stdout.contains("Switchyard is running (pid "), "{out}");
        let status = self.status().await;
        assert_eq!(status["running"], true, "{status}");
        status
    }

    pub async fn status(&self) -> Value {
        let out = self.run(&["status", "--json"]).await;
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{out}"))
    }

    /// Polls `status --json` until `done` holds for it.
    pub async fn status_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {status:#}");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub fn recorded_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.state().join("switchyard.pid")).ok()?.trim().parse().ok()
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        if let Some(pid) = self.recorded_pid() {
            let _ = process::signal(pid, Sig::Kill);
        }
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(20)).build().unwrap()
}

pub async fn chat(url: &str, model: &str, stream: bool) -> reqwest::Response {
    http()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(MASTER)
        .json(&json!({"model": model, "stream": stream,
            "messages": [{"role": "user", "content": "Say: WORKS"}]}))
        .send()
        .await
        .unwrap()
}

pub async fn answer(url: &str, model: &str) -> String {
    let resp = chat(url, model, false).await;
    assert_eq!(resp.status(), 200, "{model}");
    let body: Value = resp.json().await.unwrap();
    body["choices"][0]["message"]["content"].as_str().unwrap().to_owned()
}

/// Reads a stream until `needle` has arrived.
pub async fn read_until(resp: &mut reqwest::Response, seen: &mut String, needle: &str) {
    tokio::time::timeout(PATIENCE, async {
        while !seen.contains(needle) {
            let chunk = resp.chunk().await.unwrap();
            let chunk = chunk.unwrap_or_else(|| panic!("the stream ended early: {seen}"));
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{needle:?} never arrived: {seen}"));
}

pub async fn read_to_end(resp: &mut reqwest::Response, seen: &mut String) {
    while let Some(chunk) = resp.chunk().await.unwrap() {
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

/// The pids of live processes whose command line names `dir` (Linux only; elsewhere none).
pub fn processes_naming(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .filter(|pid| process::alive(*pid))
        .collect()
}
