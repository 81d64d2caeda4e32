//! The harness of `tests/deploy.rs`: the Containerfile's instructions, every YAML file under
//! deploy/ as JSON values, the serve flags `--help` lists, and the real binary started with
//! a container's command line (its output read for the address, killed when dropped).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use switchyard::daemon::client::Client;
use yaml_rust2::{Yaml, YamlLoader};

/// Startup and reload waits: generous, for a loaded two-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The Containerfile's instructions that matter to a running container.
#[derive(Debug, Default)]
pub struct Containerfile {
    pub from: String,
    pub user: String,
    pub expose: Vec<u16>,
    pub volumes: Vec<String>,
    pub env: Vec<(String, String)>,
    /// (source in the build context, destination in the image)
    pub copies: Vec<(String, String)>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub healthcheck: Vec<String>,
    /// Every instruction keyword, in order (to check there is no RUN).
    pub keywords: Vec<String>,
}

impl Containerfile {
    pub fn load() -> Self {
        Self::parse(&read("Containerfile"))
    }

    pub fn parse(text: &str) -> Self {
        let joined = text.replace("\\\n", " ");
        let mut cf = Self::default();
        for line in joined.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            let keyword = keyword.to_ascii_uppercase();
            let exec_form = || -> Vec<String> {
                let start = rest.find('[').unwrap_or_else(|| panic!("{keyword} not exec form"));
                serde_json::from_str(&rest[start..]).unwrap()
            };
            match keyword.as_str() {
                "FROM" => cf.from = rest.to_owned(),
                "USER" => cf.user = rest.to_owned(),
                "EXPOSE" => cf.expose.extend(
                    rest.split_whitespace()
                        .map(|p| p.trim_end_matches("/tcp").parse::<u16>().unwrap()),
                ),
                "VOLUME" => cf.volumes.extend(serde_json::from_str::<Vec<String>>(rest).unwrap()),
                "ENV" => {
                    let (k, v) = rest.split_once('=').unwrap();
                    cf.env.push((k.to_owned(), v.to_owned()));
                }
                "COPY" => {
                    let parts: Vec<&str> =
                        rest.split_whitespace().filter(|p| !p.starts_with("--")).collect();
                    cf.copies.push((parts[0].to_owned(), parts[1].to_owned()));
                }
                "ENTRYPOINT" => cf.entrypoint = exec_form(),
                "CMD" => cf.cmd = exec_form(),
                "HEALTHCHECK" => cf.healthcheck = exec_form(),
                _ => {}
            }
            cf.keywords.push(keyword);
        }
        cf
    }

    /// The command line a container runs: `command` replaces the ENTRYPOINT, `args` the CMD
    /// (Kubernetes' and Compose's rules).
    pub fn effective(
        &self,
        command: Option<Vec<String>>,
        args: Option<Vec<String>>,
    ) -> Vec<String> {
        let mut argv = command.unwrap_or_else(|| self.entrypoint.clone());
        argv.extend(args.unwrap_or_else(|| self.cmd.clone()));
        argv
    }
}

/// The last value given to `flag` (a repeated flag takes its last value).
pub fn flag(argv: &[String], name: &str) -> Option<String> {
    argv.windows(2).filter(|w| w[0] == name).map(|w| w[1].clone()).next_back()
}

pub fn secs(argv: &[String], name: &str, default: u64) -> u64 {
    flag(argv, name).map_or(default, |v| v.parse().unwrap())
}

/// Every `--flag` on a command line.
pub fn flags(argv: &[String]) -> Vec<String> {
    argv.iter()
        .filter(|a| a.starts_with("--"))
        .map(|a| a.split('=').next().unwrap().to_owned())
        .collect()
}

/// The binary's answer to `args`, run to completion with an empty environment and `env`.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .envs(env.iter().copied())
        .current_dir(home.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The long flags `switchyard <command> --help` lists.
pub fn help_flags(command: &str) -> Vec<String> {
    let (code, out, err) = run(&[command, "--help"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    out.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '=')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches(|c: char| !c.is_alphanumeric()).to_owned())
        .collect()
}

/// The subcommands `switchyard --help` lists.
pub fn subcommands() -> Vec<String> {
    let (code, out, err) = run(&["--help"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let commands = out.split("Commands:").nth(1).unwrap().split("Arguments:").next().unwrap();
    let commands = commands.split("Options:").next().unwrap();
    commands
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Every document of a YAML file as JSON (`<<` merge keys applied, as Compose does).
pub fn yaml_docs(rel: &str) -> Vec<Value> {
    let docs = YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    docs.iter().map(to_json).collect()
}

pub fn yaml(rel: &str) -> Value {
    let mut docs = yaml_docs(rel);
    assert_eq!(docs.len(), 1, "{rel}: one document");
    docs.remove(0)
}

fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => s.parse::<f64>().map(Value::from).unwrap_or(Value::String(s.clone())),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            let mut merged = Map::new();
            for (k, v) in hash {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    other => panic!("unexpected key {other:?}"),
                };
                if key == "<<" {
                    if let Value::Object(m) = to_json(v) {
                        merged.extend(m);
                    }
                } else {
                    map.insert(key, to_json(v));
                }
            }
            for (k, v) in merged {
                map.entry(k).or_insert(v);
            }
            Value::Object(map)
        }
        Yaml::Null => Value::Null,
        other => panic!("unsupported YAML node {other:?}"),
    }
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| match s {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Does the gateway read `var`: named as a string literal in its source (config/env.rs is
/// the only reader of the environment, and it is called with literals), or referenced as
/// `os.environ/VAR` in `config`.
pub fn gateway_reads(var: &str, config: &str) -> bool {
    if config.contains(&format!("os.environ/{var}")) {
        return true;
    }
    let needle = format!("\"{var}\"");
    let mut stack = vec![repo().join("crates/switchyard/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && std::fs::read_to_string(&path).unwrap().contains(&needle)
            {
                return true;
            }
        }
    }
    false
}

/// The binary serving with `args`, its environment only `env` (as in a container).
pub struct Gateway {
    child: Child,
    pub url: String,
    stderr: mpsc::Receiver<String>,
}

impl Gateway {
    pub fn start(args: &[String], env: &[(String, String)], cwd: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (line_tx, line_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = line_tx.send(line);
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let deadline = Instant::now() + PATIENCE;
        let mut gateway = Self { child, url: String::new(), stderr: err_rx };
        loop {
            match line_rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("Switchyard listening on ") {
                        // Listening on every address: reached over loopback only.
                        gateway.url = url.replace("0.0.0.0", "127.0.0.1");
                        return gateway;
                    }
                }
                Err(_) => {
                    if let Ok(Some(status)) = gateway.child.try_wait() {
                        panic!("the gateway exited ({status}):\n{}", gateway.stderr_text());
                    }
                    assert!(
                        Instant::now() < deadline,
                        "the gateway did not listen:\n{}",
                        gateway.stderr_text()
                    );
                }
            }
        }
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM, then the exit code.
    pub fn stop(mut self) -> i32 {
        let pid = self.child.id();
        switchyard::daemon::process::signal(pid, switchyard::daemon::process::Sig::Term).unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A client of the gateway at `url` sending `key` on the authenticated routes.
pub fn client(url: &str, key: Option<&str>) -> Client {
    Client::new(url, key.map(str::to_owned)).unwrap()
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
