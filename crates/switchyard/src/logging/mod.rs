//! Structured logs with `tracing`: readable text on a terminal, JSON lines for machines.
//! Logs go to stderr so stdout stays clean for command output, written by a thread of their
//! own (`queue`): `flush` must run before the process exits.
//!
//! Nothing logged anywhere may contain a secret; see `secret::Secret`.

mod queue;

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

pub use queue::flush;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Dependencies whose own logs print credentials: aws-config shows an access key id at info
/// ("loaded base credentials") and debug and a `credential_process` command line at debug;
/// aws-sigv4 the canonical request, session token included, at trace; the AWS SDK runtime
/// whole requests at trace. They log warnings and errors only, whatever the filter says.
const CREDENTIAL_LOGGERS: &[&str] = &[
    "aws_config",
    "aws_sigv4",
    "aws_runtime",
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_sdk_sts",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
];

/// The filter for `directives`, with [`CREDENTIAL_LOGGERS`] held at `warn`.
fn filter(directives: &str) -> Option<EnvFilter> {
    let mut filter = EnvFilter::try_new(directives).ok()?;
    for target in CREDENTIAL_LOGGERS {
        filter = filter.add_directive(format!("{target}=warn").parse().ok()?);
    }
    Some(filter)
}

/// Installs the global subscriber. `level` is a filter directive such as `info` or
/// `switchyard=debug`; `SWITCHYARD_LOG` (then `RUST_LOG`) overrides it when set.
pub fn init(format: LogFormat, level: &str) {
    let filter = std::env::var("SWITCHYARD_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|s| filter(&s))
        .or_else(|| filter(level))
        .or_else(|| filter("info"))
        .unwrap_or_default();
    let (writer, guard) = queue::stderr();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    // A second init (tests run several servers in one process) is harmless: keep the first
    // and its writing thread; the second's thread ends with its guard.
    let installed = match format {
        LogFormat::Pretty => builder
            .compact()
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    if installed.is_ok() {
        queue::keep(guard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn credential_loggers_print_warnings_only_whatever_the_filter() {
        for directives in ["trace", "debug", "info", "aws_config=trace,aws_sigv4=trace"] {
            let out = Captured::default();
            let writer = out.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(filter(directives).unwrap())
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!(target: "aws_config::profile::credentials", "key AKIAEXAMPLEKEYID");
                tracing::trace!(target: "aws_sigv4::http_request::sign", "x-amz-security-token:TKN");
                tracing::warn!(target: "aws_config::profile", "this warning stays");
            });
            let text = String::from_utf8_lossy(&out.0.lock().unwrap()).into_owned();
            assert!(
                !text.contains("AKIAEXAMPLEKEYID") && !text.contains("TKN"),
                "{directives}: {text}"
            );
            assert!(text.contains("this warning stays"), "{directives}: {text}");
        }
    }
}
