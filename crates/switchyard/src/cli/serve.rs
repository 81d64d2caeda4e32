//! `switchyard serve`: load the config, bind, serve until SIGTERM/SIGINT, drain (bounded by
//! `--drain-timeout`). SIGHUP and changes to the config or env files reload; with
//! `--state-dir` the pid file and gateway.json tell `status`/`stop` where this gateway is.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::ServeArgs;
use super::output;
use crate::config::{self, Config, ConfigOrigin, Env, LoadOptions, ProcessEnv, locate};
use crate::daemon::{self, GatewayInfo, Lookup, StateDir, clock};
use crate::exit;
use crate::keys::{Keys, Settings as KeySettings};
use crate::ledger::{Ledger, Settings as LedgerSettings};
use crate::server::reload::{Reloader, Trigger};
use crate::server::tls::{Tls, TlsFiles};
use crate::server::{self, AppState, Runtime};

pub fn run(args: ServeArgs) -> u8 {
    // First, before anything can be logged about it: `start` asked for a session of our own.
    let detach = args.detached.then(daemon::process::detach_session);

    let level = if args.detailed_debug { "debug" } else { args.log_level.as_str() };
    crate::logging::init(args.log_format, level);
    if let Some(Err(err)) = detach {
        tracing::warn!(%err, "could not leave the terminal's session");
    }

    let opts = LoadOptions {
        config_path: args.config.config.clone(),
        env_files: args.config.env_files.clone(),
    };
    let config = match config::load(&opts, &ProcessEnv) {
        Ok(config) => config,
        Err(errors) => {
            output::stderr(&format!("switchyard: the configuration is invalid\n\n{errors}"));
            return exit::BAD_CONFIG;
        }
    };
    announce_config(&config);
    if args.num_workers.is_some() {
        tracing::warn!("--num_workers is ignored: Switchyard uses every core in one process");
    }

    let addr = match resolve(&args.host, args.port) {
        Ok(addr) => addr,
        Err(message) => {
            output::stderr(&format!("switchyard: {message}"));
            return exit::CANNOT_SERVE;
        }
    };
    if config.general.master_key.is_none() && !addr.ip().is_loopback() {
        if !args.allow_unauthenticated {
            output::stderr(&format!(
                "switchyard: refusing to listen on {addr} without a master key: anyone who can \
                 reach this address could use your provider credentials.\n  fix: set \
                 general_settings.master_key (or LITELLM_MASTER_KEY), or listen on 127.0.0.1, \
                 or pass --allow-unauthenticated if the network is private."
            ));
            return exit::CANNOT_SERVE;
        }
        tracing::warn!(%addr, "serving without a master key on a non-loopback address");
    }

    let tls = match listener_tls(&args, &ProcessEnv) {
        Ok(tls) => tls,
        Err(message) => {
            output::stderr(&format!("switchyard: {message}"));
            return exit::CANNOT_SERVE;
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            output::stderr(&format!("switchyard: cannot start the async runtime: {err}"));
            return exit::CANNOT_SERVE;
        }
    };
    runtime.block_on(serve(addr, config, tls, &opts, &args))
}

/// The listener's certificate and key (GW-15 when only one is given or either is unusable),
/// or `None` to serve plain HTTP.
fn listener_tls(args: &ServeArgs, env: &dyn Env) -> Result<Option<Arc<Tls>>, String> {
    let cert =
        locate::tls_file(args.ssl_certfile.as_deref(), "--ssl-certfile", "SSL_CERTFILE_PATH", env);
    let key =
        locate::tls_file(args.ssl_keyfile.as_deref(), "--ssl-keyfile", "SSL_KEYFILE_PATH", env);
    let alone = |(path, how): (std::path::PathBuf, &str), given: &str, missing: &str| {
        format!(
            "TLS: {given} {} was given ({how}) without its {missing} (GW-15).
  fix: pass              both --ssl-certfile and --ssl-keyfile (or SSL_CERTFILE_PATH and SSL_KEYFILE_PATH),              or neither to serve plain HTTP.",
            path.display()
        )
    };
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), None) => Err(alone(cert, "the certificate", "private key")),
        (None, Some(key)) => Err(alone(key, "the private key", "certificate")),
        (Some((cert, _)), Some((key, _))) => {
            let tls = Tls::load(TlsFiles { cert, key }).map_err(|e| e.to_string())?;
            tracing::info!(cert = %tls.files().cert.display(), key = %tls.files().key.display(), "serving HTTPS");
            Ok(Some(tls))
        }
    }
}

async fn serve(
    addr: SocketAddr,
    config: Config,
    tls: Option<Arc<Tls>>,
    opts: &LoadOptions,
    args: &ServeArgs,
) -> u8 {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
            output::stderr(&port_in_use(addr));
            return exit::CANNOT_SERVE;
        }
        Err(err) => {
            output::stderr(&format!("switchyard: cannot listen on {addr}: {err}"));
            return exit::CANNOT_SERVE;
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    let aliases: Vec<String> = config.aliases().map(str::to_owned).collect();
    let reloader = Reloader::new(opts, &config);
    let env_files = config.env_files.clone();
    // Serving matters more than recording: without a usable state directory the gateway
    // still serves, and says loudly that nothing is recorded.
    let ledger = if config.general.disable_spend_logs {
        tracing::info!("spend ledger off (general_settings.disable_spend_logs)");
        None
    } else {
        match open_ledger(&config, args) {
            Ok(ledger) => Some(ledger),
            Err(message) => {
                tracing::error!("spend ledger unavailable, requests are not recorded: {message}");
                None
            }
        }
    };
    let keys = open_keys(&config, args).await;
    let batches = open_batches(&config, args);
    let runtime = Runtime::new(config);
    // Before listening: each budget's current period starts from what the ledger says it
    // spent, so a restart does not forget it.
    if ledger.is_some()
        && let Ok(dir) = StateDir::resolve(args.state_dir.as_deref(), &ProcessEnv)
    {
        let settings = LedgerSettings {
            database_url: runtime.config.general.database_url.as_ref().map(|u| u.value.clone()),
            state_dir: dir.root().to_owned(),
            retention: None,
        };
        let key_budgets = keys.as_ref().map(Keys::budgets).unwrap_or_default();
        let seeding = crate::limits::seed_from_ledger(
            runtime.router.limits(),
            runtime.router.config_limits().budgets().chain(&key_budgets),
            &settings,
        );
        match tokio::time::timeout(Duration::from_secs(10), seeding).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(budgets = n, "budgets seeded from the ledger"),
            Ok(Err(error)) => {
                tracing::warn!(%error, "budgets could not be seeded from the ledger; they start from zero this period")
            }
            Err(_) => tracing::warn!(
                "the ledger did not answer within 10 s; budgets start from zero this period"
            ),
        }
    }
    let state = AppState::new(runtime);
    state.set_reloader(reloader.clone());
    if let Some(ledger) = &ledger {
        state.set_ledger(ledger.clone());
    }
    if let Some(keys) = keys {
        state.set_keys(keys);
    }
    let batch_runner = batches.map(|b| server::run_batches(&state, b));
    // Before the pid is published: SIGHUP's default action would end the process.
    reload_on_hangup(state.clone(), reloader.clone(), tls.clone());
    if !args.no_watch {
        let every = Duration::from_millis(args.watch_interval_ms.max(50));
        reloader.spawn_watcher(state.clone(), every);
        if let Some(tls) = &tls {
            tls.spawn_watcher(every);
        }
    }

    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{bound}");
    let _published = match &args.state_dir {
        None => None,
        Some(dir) => match publish(dir, &url, &reloader, env_files, args) {
            Ok(published) => Some(published),
            Err(message) => {
                output::stderr(&format!("switchyard: {message}"));
                return exit::CANNOT_SERVE;
            }
        },
    };

    tracing::info!(url = %url, aliases = %aliases.join(", "), "ready");
    // The one line scripts and tests wait for: the real address, even with --port 0.
    output::stdout(&format!("Switchyard listening on {url}"));

    let drain_timeout = Duration::from_secs(args.drain_timeout);
    let drain_grace = Duration::from_secs(args.drain_grace);
    let (first_signal, mut second_signal) = shutdown_signals();
    let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
    let drain_state = state.clone();
    let shutdown = async move {
        first_signal.await;
        // Readiness answers 503 from here on, while the listener still accepts: a load
        // balancer that watches it stops sending before connections are refused.
        drain_state.start_draining();
        if !drain_grace.is_zero() {
            tracing::info!(
                drain_grace_secs = drain_grace.as_secs(),
                "draining: readiness is 503; still accepting connections for the grace period"
            );
            tokio::time::sleep(drain_grace).await;
        }
        let in_flight: u32 =
            drain_state.runtime().router.targets().map(|t| t.state.in_flight()).sum();
        tracing::info!(
            upstream_calls_in_flight = in_flight,
            drain_timeout_secs = drain_timeout.as_secs(),
            "shutting down: accepting no new connections, finishing in-flight requests"
        );
        let _ = draining_tx.send(());
    };
    let drain_deadline = async move {
        if draining_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(drain_timeout).await;
    };
    let traces = state.clone();
    let server = server::serve(listener, state, tls, shutdown);
    let code = tokio::select! {
        result = server => match result {
            Ok(()) => {
                tracing::info!("stopped");
                exit::OK
            }
            Err(err) => {
                tracing::error!(%err, "server failed");
                exit::CANNOT_SERVE
            }
        },
        _ = second_signal.recv() => {
            tracing::warn!("second signal: exiting without waiting for in-flight requests");
            exit::FAILED
        }
        () = drain_deadline => {
            tracing::warn!(
                drain_timeout_secs = drain_timeout.as_secs(),
                "drain timeout: exiting with requests still in flight"
            );
            exit::FAILED
        }
    };
    // Items in flight finish like requests in flight; what cannot wait runs again on the
    // next start. Before the ledger closes: their rows go to it.
    if let Some(runner) = batch_runner {
        let wait = if code == exit::OK { drain_timeout } else { Duration::from_secs(1) };
        runner.stop(wait).await;
    }
    // Every row of a served request is written (or spooled) before the process exits.
    if let Some(ledger) = ledger {
        // A second signal or the drain timeout asked for a quick exit: streams still open
        // are not waited for long.
        let wait = if code == exit::OK { LEDGER_CLOSE } else { Duration::from_secs(1) };
        ledger.close(wait).await;
        let status = ledger.status();
        tracing::info!(written = status.written, spooled = status.spooled, "ledger flushed");
    }
    // After the ledger: a stream's span ends just before its row is recorded.
    if let Some(tracer) = &traces.runtime().tracer {
        let wait = if code == exit::OK { TRACES_FLUSH } else { Duration::from_secs(1) };
        tracer.flush(wait).await;
    }
    code
}

/// How long the stop waits for the collector to take the last spans.
const TRACES_FLUSH: Duration = Duration::from_secs(5);

/// How long the stop waits for streams still open to deliver their rows.
const LEDGER_CLOSE: Duration = Duration::from_secs(10);

/// The spend ledger: PostgreSQL with `database_url`, else SQLite in the state directory.
fn open_ledger(config: &Config, args: &ServeArgs) -> Result<Ledger, String> {
    let dir = StateDir::resolve(args.state_dir.as_deref(), &ProcessEnv)?;
    let settings = LedgerSettings {
        database_url: config.general.database_url.as_ref().map(|u| u.value.clone()),
        state_dir: dir.root().to_owned(),
        retention: config.general.spend_logs_retention,
    };
    let ledger = Ledger::open(&settings)?;
    let status = ledger.status();
    tracing::info!(backend = status.backend, at = %status.location, spooled = status.spooled, "spend ledger");
    Ok(ledger)
}

/// Virtual keys: PostgreSQL with `database_url`, else `keys.sqlite3` in the state directory.
/// Loaded once before serving; an unreachable database leaves the master key working and the
/// key store degraded (retried in the background), never the gateway down.
async fn open_keys(config: &Config, args: &ServeArgs) -> Option<Keys> {
    let opened = StateDir::resolve(args.state_dir.as_deref(), &ProcessEnv).and_then(|dir| {
        Keys::open(&KeySettings {
            database_url: config.general.database_url.as_ref().map(|u| u.value.clone()),
            state_dir: dir.root().to_owned(),
        })
    });
    match opened {
        Ok(keys) => {
            keys.start(crate::keys::POLL).await;
            let s = keys.status();
            tracing::info!(backend = s.backend, at = %s.location, keys = s.keys, teams = s.teams, state = s.state, "virtual keys");
            Some(keys)
        }
        Err(message) => {
            tracing::error!("virtual keys unavailable, only the master key works: {message}");
            None
        }
    }
}

/// Files and batches: PostgreSQL with `database_url`, else `batches.sqlite3` in the state
/// directory. Nothing is contacted here; without a usable place the batch routes answer
/// BAT-05 and everything else serves.
fn open_batches(config: &Config, args: &ServeArgs) -> Option<crate::batches::Batches> {
    let opened = StateDir::resolve(args.state_dir.as_deref(), &ProcessEnv).and_then(|dir| {
        crate::batches::Batches::open(&crate::batches::Settings {
            database_url: config.general.database_url.as_ref().map(|u| u.value.clone()),
            state_dir: dir.root().to_owned(),
        })
    });
    match opened {
        Ok(batches) => {
            let store = &batches.store;
            tracing::info!(backend = store.backend(), at = %store.location(), concurrency = config.general.batch_concurrency, "batches");
            Some(batches)
        }
        Err(message) => {
            tracing::error!("batches unavailable: {message}");
            None
        }
    }
}

/// The pid file and gateway.json, kept up to date with the last reload and removed when
/// this process exits.
struct Published {
    dir: StateDir,
    pid: u32,
}

impl Drop for Published {
    fn drop(&mut self) {
        self.dir.remove_if_pid(self.pid);
    }
}

fn publish(
    dir: &std::path::Path,
    url: &str,
    reloader: &Arc<Reloader>,
    env_files: Vec<std::path::PathBuf>,
    args: &ServeArgs,
) -> Result<Published, String> {
    let dir = StateDir::resolve(Some(dir), &ProcessEnv)?;
    dir.create().map_err(|e| format!("cannot create {}: {e}", dir.root().display()))?;
    if let Lookup::Running(other) = dir.lookup()
        && other.pid != std::process::id()
    {
        return Err(format!(
            "state directory {} belongs to the gateway running as pid {} at {}; stop it \
             (`switchyard stop`) or pass another --state-dir",
            dir.root().display(),
            other.pid,
            other.connect_url()
        ));
    }
    let info = GatewayInfo {
        pid: std::process::id(),
        url: url.to_owned(),
        config: reloader.files()[0].clone(),
        env_files: env_files.iter().map(|p| std::path::absolute(p).unwrap_or(p.clone())).collect(),
        started_at: clock::unix_now(),
        detached: args.detached,
        log: args.detached.then(|| dir.log_file()),
        drain_timeout_secs: args.drain_grace + args.drain_timeout,
        args: std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        last_reload: None,
    };
    dir.write_info(&info)
        .map_err(|e| format!("cannot write {}: {e}", dir.info_file().display()))?;
    let published = Published { dir: dir.clone(), pid: info.pid };
    let info = Arc::new(Mutex::new(info));
    let mut records = reloader.subscribe();
    tokio::spawn(async move {
        while records.changed().await.is_ok() {
            let record = records.borrow_and_update().clone();
            let mut info = info.lock().unwrap_or_else(PoisonError::into_inner);
            info.last_reload = record.map(|r| r.to_json());
            if let Err(err) = dir.write_info(&info) {
                tracing::warn!(%err, "could not record the reload in the state directory");
            }
        }
    });
    Ok(published)
}

#[cfg(unix)]
fn reload_on_hangup(state: Arc<AppState>, reloader: Arc<Reloader>, tls: Option<Arc<Tls>>) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the config");
                    reloader.reload(&state, Trigger::Signal).await;
                    // A certificate renewal hook that sends SIGHUP works with --no-watch too.
                    if let Some(tls) = &tls {
                        tls.check();
                    }
                }
            });
        }
        Err(err) => {
            tracing::warn!(%err, "cannot listen for SIGHUP; POST /config/reload still works")
        }
    }
}

#[cfg(not(unix))]
fn reload_on_hangup(_state: Arc<AppState>, _reloader: Arc<Reloader>, _tls: Option<Arc<Tls>>) {}

/// GW-03, naming the process that holds the port when it can be found.
fn port_in_use(addr: SocketAddr) -> String {
    let port = addr.port();
    let who = match daemon::port::holder(port) {
        Some(h) => {
            let command = h.command.map(|c| format!(" ({c})")).unwrap_or_default();
            format!("held by pid {}{command}", h.pid)
        }
        None => format!(
            "the process holding it could not be identified (it may belong to another user: \
             `sudo ss -ltnp 'sport = :{port}'` shows it)"
        ),
    };
    format!(
        "switchyard: port {port} on {} is already in use (GW-03): {who}.\n  fix: stop that \
         process (if it is a gateway started with `switchyard start`: `switchyard stop`), or \
         pick another port with --port.",
        addr.ip()
    )
}

/// The first SIGTERM/SIGINT starts a graceful drain; a second one arrives on the receiver
/// so the caller can stop waiting.
fn shutdown_signals()
-> (impl std::future::Future<Output = ()> + Send + 'static, tokio::sync::mpsc::Receiver<()>) {
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let (second_tx, second_rx) = tokio::sync::mpsc::channel::<()>(1);
    tokio::spawn(async move {
        let mut first = Some(first_tx);
        loop {
            wait_for_signal().await;
            match first.take() {
                Some(tx) => {
                    let _ = tx.send(());
                }
                None => {
                    let _ = second_tx.send(()).await;
                    return;
                }
            }
        }
    });
    (
        async move {
            let _ = first_rx.await;
        },
        second_rx,
    )
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve --host {host}: {err}"))?
        .next()
        .ok_or_else(|| format!("--host {host} resolves to no address"))
}

fn announce_config(config: &Config) {
    let how = match &config.origin {
        ConfigOrigin::Flag => "from --config".to_owned(),
        ConfigOrigin::EnvVar(var) => format!("from ${var}"),
        ConfigOrigin::SearchPath => "found on the search path".to_owned(),
    };
    tracing::info!(path = %config.path.display(), "using config {how}");
    for file in &config.env_files {
        tracing::info!(path = %file.display(), "loaded env file");
    }
    for warning in &config.warnings {
        match &warning.location {
            Some(at) => tracing::warn!(key = %warning.key, at = %at, "{}", warning.message),
            None => tracing::warn!(key = %warning.key, "{}", warning.message),
        }
    }
}
