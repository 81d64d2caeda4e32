//! The processes under test: the release builds of `mock-upstream` and `switchyard`, started
//! as children (killed when dropped), and their memory as `/proc` reports it.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process that is killed (by its own pid) when dropped.
pub struct Proc {
    child: Child,
    pub addr: SocketAddr,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resets the peak RSS (`VmHWM`) to the current RSS (`/proc/PID/clear_refs`, "5").
    pub fn reset_peak(&self) -> Result<(), String> {
        reset_peak(self.pid())
    }

    /// CPU time used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> Result<f64, String> {
        cpu_seconds(self.pid())
    }

    /// (`VmRSS`, `VmHWM`) in bytes.
    pub fn memory(&self) -> Result<Memory, String> {
        memory(self.pid())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// SIGTERM (a graceful stop, so a profiler wrapped around the child writes its data), then
/// SIGKILL if it has not exited within 5 s.
pub fn stop(child: &mut Child) {
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    if term.is_ok_and(|s| s.success()) {
        for _ in 0..500 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Resets the peak RSS (`VmHWM`) of `pid` to its current RSS (`/proc/PID/clear_refs`, "5").
pub fn reset_peak(pid: u32) -> Result<(), String> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .map_err(|e| format!("cannot reset the peak RSS of pid {pid}: {e}"))
}

/// The processes whose parent is `pid` (nginx's workers), from every `/proc/N/stat`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&n| {
            std::fs::read_to_string(format!("/proc/{n}/stat")).ok().is_some_and(|stat| {
                // Field 4 (the parent) is the second after the command name's parenthesis.
                let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
                rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid)
            })
        })
        .collect()
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss: u64,
    pub peak: u64,
}

pub fn memory(pid: u32) -> Result<Memory, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Ok(Memory { rss: field("VmRSS:").unwrap_or(0), peak: field("VmHWM:").unwrap_or(0) })
}

/// utime + stime of `pid` (fields 14 and 15 of `/proc/PID/stat`), in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("cannot read /proc/{pid}/stat: {e}"))?;
    // The command name (field 2) may hold spaces: count from after its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields 14 and 15 overall are the 12th and 13th after the command name.
    Ok((ticks(11) + ticks(12)) as f64 / clock_ticks())
}

/// CPU seconds the machine's PostgreSQL server has used: every process named `postgres`
/// (user + system), with what its exited children used (a backend that closed its
/// connection is counted in the postmaster's). Every client's work, this run's among them.
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    let mut ticks = 0u64;
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        if !head.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let at = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        // utime, stime, cutime, cstime: fields 14 to 17, the 12th to 15th after the name.
        ticks += at(11) + at(12) + at(13) + at(14);
    }
    ticks as f64 / clock_ticks()
}

/// `getconf CLK_TCK` (100 on Linux unless configured otherwise).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A port free right now on 127.0.0.1 (bound, read, released).
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Builds the release binaries of the gateway and the mock (cargo's own lock makes this wait
/// for other builds) and returns the directory holding them.
pub fn build_release(workspace: &Path, target_dir: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // `cargo run` gave this process the bench package's CARGO_MANIFEST_DIR, CARGO_PKG_* and
    // the like. Build scripts (ring's) rerun when these differ from the last build, so passed
    // on they would rebuild ring and everything above it here, and again at the next plain
    // `cargo build`.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || matches!(
                name.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "OUT_DIR"
            )
        {
            command.env_remove(name.as_ref());
        }
    }
    let status = command
        .current_dir(workspace)
        .args(["build", "--release", "-p", "switchyard", "-p", "mock-upstream", "--bins"])
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release failed ({status})"));
    }
    Ok(target_dir.join("release"))
}

/// Starts `mock-upstream` and waits for its address line.
pub fn start_mock(bin_dir: &Path) -> Result<Proc, String> {
    start_mock_with(bin_dir, &[])
}

/// [`start_mock`] with more arguments (`--admin`, to script slow streams).
pub fn start_mock_with(bin_dir: &Path, args: &[&str]) -> Result<Proc, String> {
    let port = free_port()?;
    let child = Command::new(bin_dir.join("mock-upstream"))
        .args(["--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start mock-upstream: {e}"))?;
    wait_for_line(child, "mock-upstream listening on http://")
}

/// Starts the gateway on `config` (any free port), its log going to `log`, and waits for
/// its address line.
pub fn start_gateway(bin_dir: &Path, config: &Path, log: &Path) -> Result<Proc, String> {
    start_gateway_in(bin_dir, config, log, None)
}

/// [`start_gateway`] with its own state directory (its SQLite ledger, spool and pid file),
/// so a benchmark never writes into the user's. The database and Redis are the config's
/// alone: the environment's `DATABASE_URL` and `REDIS_*` are not passed on.
pub fn start_gateway_in(
    bin_dir: &Path,
    config: &Path,
    log: &Path,
    state_dir: Option<&Path>,
) -> Result<Proc, String> {
    let log = std::fs::File::create(log).map_err(|e| format!("cannot create the log: {e}"))?;
    let mut command = Command::new(bin_dir.join("switchyard"));
    command.arg("--config").arg(config).args(["--port", "0"]);
    if let Some(dir) = state_dir {
        command.arg("--state-dir").arg(dir);
    }
    let child = command
        .env_remove("SWITCHYARD_LOG")
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("REDIS_HOST")
        .env_remove("REDIS_PORT")
        .env_remove("REDIS_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start switchyard: {e}"))?;
    wait_for_line(child, "Switchyard listening on http://")
}

/// [`start_gateway_in`] with TLS on the listener: `(certificate, key)` PEM files.
pub fn start_gateway_tls(
    bin_dir: &Path,
    config: &Path,
    log: &Path,
    state_dir: &Path,
    (cert, key): (&Path, &Path),
) -> Result<Proc, String> {
    let log = std::fs::File::create(log).map_err(|e| format!("cannot create the log: {e}"))?;
    let child = Command::new(bin_dir.join("switchyard"))
        .arg("--config")
        .arg(config)
        .args(["--port", "0", "--state-dir"])
        .arg(state_dir)
        .arg("--ssl-certfile")
        .arg(cert)
        .arg("--ssl-keyfile")
        .arg(key)
        .env_remove("SWITCHYARD_LOG")
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start switchyard: {e}"))?;
    wait_for_line(child, "Switchyard listening on https://")
}

/// Starts another gateway (`--peer-cmd`, run by `sh -c`, `{port}` and `{mock}` replaced by a
/// free port and the mock's address) and waits until its port accepts connections.
pub fn start_peer(command: &str, mock: SocketAddr, log: &Path) -> Result<Proc, String> {
    let port = free_port()?;
    let command = command.replace("{port}", &port.to_string()).replace("{mock}", &mock.to_string());
    let log = std::fs::File::create(log).map_err(|e| format!("cannot create the log: {e}"))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    // `exec`: the peer itself is the child, so its CPU and memory are what is read.
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {command}"))
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start the peer gateway: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut proc = Proc { child, addr };
    for _ in 0..600 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(proc);
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            return Err(format!("the peer gateway exited ({status}) before listening on {port}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("the peer gateway did not listen on {port} within 30 s"))
}

/// Starts the gateway on a known port and returns at once (for readiness timing).
pub fn spawn_gateway_at(bin_dir: &Path, config: &Path, port: u16) -> Result<Child, String> {
    Command::new(bin_dir.join("switchyard"))
        .arg("--config")
        .arg(config)
        .args(["--port", &port.to_string()])
        .env_remove("SWITCHYARD_LOG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start switchyard: {e}"))
}

fn wait_for_line(mut child: Child, prefix: &str) -> Result<Proc, String> {
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        return Err("no stdout".into());
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = prefix.to_owned();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut sent = false;
        // Keep reading after the address so the child never blocks on a full pipe.
        while let Some(Ok(line)) = lines.next() {
            if !sent && let Some(addr) = line.strip_prefix(&prefix) {
                let _ = tx.send(addr.trim().to_owned());
                sent = true;
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => match addr.parse() {
            Ok(addr) => Ok(Proc { child, addr }),
            Err(_) => {
                let _ = child.kill();
                Err(format!("unreadable address {addr:?}"))
            }
        },
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            Err(format!("no address line within 30 s ({status})"))
        }
    }
}
