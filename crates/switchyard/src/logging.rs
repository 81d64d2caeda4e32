//! Structured logs with `tracing`: readable text on a terminal, JSON lines for machines.
//! Logs go to stderr so stdout stays clean for command output.
//!
//! Nothing logged anywhere may contain a secret; see `secret::Secret`.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. `level` is a filter directive such as `info` or
/// `switchyard=debug`; `SWITCHYARD_LOG` (then `RUST_LOG`) overrides it when set.
pub fn init(format: LogFormat, level: &str) {
    let filter = std::env::var("SWITCHYARD_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|s| EnvFilter::try_new(s).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests run several servers in one process) is harmless: keep the first.
    let _ = match format {
        LogFormat::Pretty => builder
            .compact()
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
}
