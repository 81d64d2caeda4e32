//! `switchyard serve`: load the config, bind, serve until SIGTERM/SIGINT, drain.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use super::ServeArgs;
use super::output;
use crate::config::{self, Config, ConfigOrigin, LoadOptions, ProcessEnv};
use crate::exit;
use crate::server::{self, AppState, Runtime};

pub fn run(args: ServeArgs) -> u8 {
    let level = if args.detailed_debug { "debug" } else { args.log_level.as_str() };
    crate::logging::init(args.log_format, level);

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

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            output::stderr(&format!("switchyard: cannot start the async runtime: {err}"));
            return exit::CANNOT_SERVE;
        }
    };
    runtime.block_on(serve(addr, config))
}

async fn serve(addr: SocketAddr, config: Config) -> u8 {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
            output::stderr(&format!(
                "switchyard: port {} on {} is already in use (GW-03).\n  fix: stop the process \
                 holding it (`ss -ltnp 'sport = :{}'` shows it), or pick another port with \
                 --port.",
                addr.port(),
                addr.ip(),
                addr.port()
            ));
            return exit::CANNOT_SERVE;
        }
        Err(err) => {
            output::stderr(&format!("switchyard: cannot listen on {addr}: {err}"));
            return exit::CANNOT_SERVE;
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    let aliases: Vec<String> = config.aliases().map(str::to_owned).collect();
    let state = AppState::new(Runtime::new(config));
    tracing::info!(url = %format!("http://{bound}"), aliases = %aliases.join(", "), "ready");
    // The one line scripts and tests wait for: the real address, even with --port 0.
    output::stdout(&format!("Switchyard listening on http://{bound}"));

    let (first_signal, mut second_signal) = shutdown_signals();
    let server = server::serve(listener, state, first_signal);
    tokio::select! {
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
    }
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
                    tracing::info!("shutting down: finishing in-flight requests");
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
