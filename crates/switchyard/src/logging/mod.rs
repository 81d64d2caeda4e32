//! Structured logs with `tracing`: readable text on a terminal, JSON lines for machines.
//! Logs go to stderr so stdout stays clean for command output, written by a thread of their
//! own (`queue`): `flush` must run before the process exits.
//!
//! Nothing logged anywhere may contain a secret; see `secret::Secret`.

mod access;
mod clock;
mod queue;

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::fmt::time::FormatTime;

pub use access::TARGET as ACCESS_TARGET;
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
    let json = format == LogFormat::Json;
    let ansi = !json && std::io::stderr().is_terminal();
    let subscriber = subscriber(json, ansi, writer, clock::Clock, true, filter);
    // A second init (tests run several servers in one process) is harmless: keep the first
    // and its writing thread; the second's thread ends with its guard.
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        queue::keep(guard);
    }
}

/// The subscriber of `init`: compact text (colours when `ansi`) or flattened JSON lines,
/// written to `writer`, times from `timer`; `fast`: the access line by `access` (the same
/// bytes; `false` only for the test that compares the two).
fn subscriber<W, T>(
    json: bool,
    ansi: bool,
    writer: W,
    timer: T,
    fast: bool,
    filter: EnvFilter,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    T: FormatTime + Clone + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    if json {
        let general = tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_timer(timer.clone());
        let builder = builder.with_ansi(false).fmt_fields(JsonFields::new());
        match fast {
            true => Box::new(builder.event_format(access::Fast::json(general, timer)).finish()),
            false => Box::new(builder.event_format(general).finish()),
        }
    } else {
        let general = tracing_subscriber::fmt::format()
            .compact()
            .with_target(false)
            .with_timer(timer.clone());
        let builder = builder.with_ansi(ansi);
        match fast {
            true => Box::new(builder.event_format(access::Fast::text(general, timer)).finish()),
            false => Box::new(builder.event_format(general).finish()),
        }
    }
}

/// The test's subscriber: every level.
#[cfg(test)]
fn subscriber_with<W, T>(json: bool, ansi: bool, writer: W, timer: T, fast: bool) -> impl Subscriber
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    T: FormatTime + Clone + Send + Sync + 'static,
{
    subscriber(json, ansi, writer, timer, fast, filter("trace").unwrap_or_default())
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
