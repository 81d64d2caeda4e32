//! `switchyard start` and `restart`: run `serve` in the background (its own session, output
//! to the log in the state directory), wait for `/health/readiness` with visible progress,
//! and say where it runs — or, when it dies while starting, what it said. Never prompts.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::{ServeArgs, output, stop};
use crate::config::{self, ProcessEnv};
use crate::daemon::client::Client;
use crate::daemon::{GatewayInfo, Lookup, StateDir, clock, logfile, process};
use crate::exit;

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub serve: ServeArgs,

    /// How long to wait for the gateway to become ready before giving up (and stopping it).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub wait: u64,
}

#[derive(Debug, Clone, Args)]
pub struct RestartArgs {
    /// State directory (default: $XDG_STATE_HOME/switchyard, else ~/.local/state/switchyard).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// How long to wait for the new gateway to become ready.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub wait: u64,

    /// How long the old gateway may drain (default: its drain timeout plus 5 s).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,

    /// Kill the old gateway at once (SIGKILL) instead of letting it drain.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &StartArgs) -> u8 {
    let dir = match state_dir(args.serve.state_dir.as_ref()) {
        Ok(dir) => dir,
        Err(code) => return code,
    };
    match dir.lookup() {
        Lookup::Running(info) => {
            output::stdout(&format!(
                "Switchyard is already running (pid {}) at {} with {}.\n  To run it with other \
                 options: `switchyard stop{}`, then start it again.",
                info.pid,
                info.connect_url(),
                info.config.display(),
                state_flag(args.serve.state_dir.as_ref(), &dir)
            ));
            return exit::OK;
        }
        Lookup::Stale { pid } => {
            dir.remove_if_pid(pid);
            output::stderr(&format!(
                "switchyard: removed a stale pid file (pid {pid} is gone; see its log: \
                 {})",
                dir.log_file().display()
            ));
        }
        Lookup::NotRunning => {}
    }
    let argv = match serve_argv(&args.serve, &dir) {
        Ok(argv) => argv,
        Err(code) => return code,
    };
    if let Err(err) = dir.write_last_start(&argv) {
        tracing::debug!(%err, "could not record the start command line");
    }
    launch(&dir, &argv, Duration::from_secs(args.wait), args.serve.state_dir.as_ref())
}

pub fn restart(args: &RestartArgs) -> u8 {
    let dir = match state_dir(args.state_dir.as_ref()) {
        Ok(dir) => dir,
        Err(code) => return code,
    };
    let argv = match dir.lookup() {
        Lookup::Running(info) => {
            if !info.detached {
                output::stderr(&format!(
                    "switchyard: the gateway (pid {}) was not started by `switchyard start` \
                     (it runs in the foreground or under a service manager); restart it there \
                     (`systemctl --user restart switchyard`), or send it SIGHUP to reload its \
                     config.",
                    info.pid
                ));
                return exit::FAILED;
            }
            let code = stop::stop_gateway(&dir, &info, args.timeout, args.force);
            if code != exit::OK {
                return code;
            }
            Some(info.args.clone())
        }
        Lookup::Stale { pid } => {
            dir.remove_if_pid(pid);
            dir.read_last_start()
        }
        Lookup::NotRunning => dir.read_last_start(),
    };
    let Some(argv) = argv else {
        output::stderr(&format!(
            "switchyard: nothing to restart: no gateway was started with `switchyard start` in \
             {}.\n  fix: `switchyard start`",
            dir.root().display()
        ));
        return exit::NOT_RUNNING;
    };
    launch(&dir, &argv, Duration::from_secs(args.wait), args.state_dir.as_ref())
}

fn state_dir(flag: Option<&PathBuf>) -> Result<StateDir, u8> {
    let dir = StateDir::resolve(flag.map(PathBuf::as_path), &ProcessEnv).map_err(|m| {
        output::stderr(&format!("switchyard: {m}"));
        exit::USAGE
    })?;
    dir.create().map_err(|e| {
        output::stderr(&format!("switchyard: cannot create {}: {e}", dir.root().display()));
        exit::CANNOT_SERVE
    })?;
    Ok(dir)
}

/// ` --state-dir DIR` when the user named one, for the commands we suggest.
pub fn state_flag(flag: Option<&PathBuf>, dir: &StateDir) -> String {
    match flag {
        Some(_) => format!(" --state-dir {}", dir.root().display()),
        None => String::new(),
    }
}

/// The `serve` command line for the background process: every path absolute (the config
/// located now, as `serve` would), the state directory, and `--detached`.
fn serve_argv(args: &ServeArgs, dir: &StateDir) -> Result<Vec<String>, u8> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let config = match config::locate::locate(args.config.config.as_deref(), &ProcessEnv, &cwd) {
        Ok((path, _)) => absolute(path),
        Err(errors) => {
            output::stderr(&format!("switchyard: the configuration is invalid\n\n{errors}"));
            return Err(exit::BAD_CONFIG);
        }
    };
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    let mut argv = vec!["serve".to_owned(), "--config".to_owned(), s(config)];
    for file in &args.config.env_files {
        argv.extend(["--env-file".to_owned(), s(absolute(file.clone()))]);
    }
    let format = args.log_format.to_possible_value().map(|v| v.get_name().to_owned());
    argv.extend([
        "--host".to_owned(),
        args.host.clone(),
        "--port".to_owned(),
        args.port.to_string(),
        "--log-format".to_owned(),
        format.unwrap_or_else(|| "pretty".to_owned()),
        "--log-level".to_owned(),
        if args.detailed_debug { "debug".to_owned() } else { args.log_level.clone() },
        "--drain-timeout".to_owned(),
        args.drain_timeout.to_string(),
        "--drain-grace".to_owned(),
        args.drain_grace.to_string(),
        "--watch-interval-ms".to_owned(),
        args.watch_interval_ms.to_string(),
        "--state-dir".to_owned(),
        s(dir.root().to_owned()),
        "--detached".to_owned(),
    ]);
    if args.allow_unauthenticated {
        argv.push("--allow-unauthenticated".to_owned());
    }
    if args.no_watch {
        argv.push("--no-watch".to_owned());
    }
    Ok(argv)
}

fn absolute(p: PathBuf) -> PathBuf {
    std::path::absolute(&p).unwrap_or(p)
}

/// Spawns `switchyard <argv>` in the background and waits for it to be ready.
fn launch(dir: &StateDir, argv: &[String], wait: Duration, flag: Option<&PathBuf>) -> u8 {
    let log_path = dir.log_file();
    let offset = logfile::size(&log_path);
    let spawned = open_log(&log_path).and_then(|mut log| {
        let _ = writeln!(
            log,
            "--- {} switchyard start: switchyard {}",
            clock::rfc3339(clock::unix_now()),
            argv.join(" ")
        );
        let exe = std::env::current_exe()?;
        Command::new(exe)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            output::stderr(&format!("switchyard: cannot start the gateway process: {err}"));
            return exit::CANNOT_SERVE;
        }
    };
    let pid = child.id();
    let started = Instant::now();
    let mut progress = Progress::new(pid);
    let mut client: Option<Client> = None;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            progress.clear();
            return died(status, dir, pid, offset);
        }
        if let Some(info) = dir.read_info().filter(|i| i.pid == pid) {
            if client.is_none() {
                client = Client::new(&info.connect_url(), None).ok();
            }
            let ready = client.as_ref().and_then(|c| c.readiness(Duration::from_secs(2)).ok());
            if ready.is_some_and(|a| a.status == 200) {
                progress.clear();
                report_ready(&info, dir, started.elapsed(), flag);
                return exit::OK;
            }
        }
        if started.elapsed() > wait {
            progress.clear();
            return gave_up(&mut child, dir, pid, offset, wait);
        }
        progress.tick(started.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn open_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn report_ready(info: &GatewayInfo, dir: &StateDir, took: Duration, flag: Option<&PathBuf>) {
    let sd = state_flag(flag, dir);
    let mut text = format!(
        "Switchyard is running (pid {}), ready in {:.1} s.\n  url:     {}\n  config:  {}\n",
        info.pid,
        took.as_secs_f64(),
        info.connect_url(),
        info.config.display()
    );
    for file in &info.env_files {
        text.push_str(&format!("  env:     {}\n", file.display()));
    }
    text.push_str(&format!(
        "  log:     {}  (`switchyard logs{sd} -f`)\n  status:  `switchyard status{sd}`; stop: \
         `switchyard stop{sd}`",
        dir.log_file().display()
    ));
    output::stdout(&text);
}

/// The process exited while starting: what it wrote is the explanation.
fn died(status: ExitStatus, dir: &StateDir, pid: u32, offset: u64) -> u8 {
    dir.remove_if_pid(pid);
    let code = status.code();
    let how = match code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".to_owned(),
    };
    let mut text = format!("switchyard: the gateway exited during startup ({how}).");
    text.push_str(&said(dir, offset));
    output::stderr(&text);
    match code {
        Some(c) if c == i32::from(exit::BAD_CONFIG) => exit::BAD_CONFIG,
        _ => exit::CANNOT_SERVE,
    }
}

/// Not ready in time: stop it rather than leave a half-started process behind.
fn gave_up(child: &mut Child, dir: &StateDir, pid: u32, offset: u64, wait: Duration) -> u8 {
    let _ = process::signal(pid, process::Sig::Term);
    if !process::wait_gone(pid, Duration::from_secs(5)) {
        let _ = child.kill();
    }
    let _ = child.wait();
    dir.remove_if_pid(pid);
    let mut text = format!(
        "switchyard: the gateway (pid {pid}) was not ready after {} s, so it was stopped.",
        wait.as_secs()
    );
    text.push_str(&said(dir, offset));
    text.push_str("\n  fix: read the log above; `--wait SECS` allows a slower start.");
    output::stderr(&text);
    exit::CANNOT_SERVE
}

/// What the process wrote to the log since `offset` (the last 40 lines), indented.
fn said(dir: &StateDir, offset: u64) -> String {
    let path = dir.log_file();
    let lines: Vec<String> = logfile::lines_since(&path, offset)
        .unwrap_or_default()
        .into_iter()
        .filter(|l| !l.starts_with("--- ") || !l.contains(" switchyard start: "))
        .collect();
    let skip = lines.len().saturating_sub(40);
    let mut text = String::new();
    if lines.is_empty() {
        text.push_str("\n  It wrote nothing.");
    } else {
        text.push_str(if skip > 0 { "\n  The last lines it wrote:\n" } else { "\n  It wrote:\n" });
        for line in &lines[skip..] {
            text.push_str(&format!("    {line}\n"));
        }
    }
    text.push_str(&format!("  Full log: {}", path.display()));
    text
}

/// A spinner with the elapsed time on a terminal; a plain line now and then otherwise.
struct Progress {
    pid: u32,
    tty: bool,
    frame: usize,
    said_at: Option<u64>,
}

impl Progress {
    fn new(pid: u32) -> Self {
        Self { pid, tty: std::io::stderr().is_terminal(), frame: 0, said_at: None }
    }

    fn tick(&mut self, elapsed: Duration) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            self.frame = (self.frame + 1) % FRAMES.len();
            let _ = write!(
                err,
                "\r{} starting switchyard (pid {}) … {:.1} s\x1b[K",
                FRAMES[self.frame],
                self.pid,
                elapsed.as_secs_f64()
            );
            let _ = err.flush();
            return;
        }
        let secs = elapsed.as_secs();
        match self.said_at {
            None => {
                let _ = writeln!(
                    err,
                    "starting switchyard (pid {}), waiting until it is ready",
                    self.pid
                );
                self.said_at = Some(0);
            }
            Some(last) if secs >= last + 5 => {
                let _ = writeln!(err, "still waiting ({secs} s)");
                self.said_at = Some(secs);
            }
            Some(_) => {}
        }
    }

    fn clear(&mut self) {
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}
