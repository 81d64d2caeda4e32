//! `switchyard health`: one probe of a gateway's `/health/liveliness` (or, with `--ready`,
//! `/health/readiness`), for a container's HEALTHCHECK or a script where no curl exists.
//! Exit 0 when it answers 200, 1 when it answers anything else, 3 when nothing answers
//! (GW-04 either way, with the cause).

use std::time::Duration;

use clap::Args;

use super::output;
use crate::daemon::client::Client;
use crate::exit;

#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// The gateway's address.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:4000")]
    pub url: String,

    /// Ask /health/readiness (503 while draining) instead of /health/liveliness.
    #[arg(long)]
    pub ready: bool,

    /// How long to wait for the answer.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub timeout: u64,
}

pub fn run(args: &HealthArgs) -> u8 {
    let path = if args.ready { "/health/readiness" } else { "/health/liveliness" };
    let client = match Client::new(&args.url, None) {
        Ok(client) => client,
        Err(message) => {
            report(&format!("Cannot probe {}: {message}.", args.url), "run it again");
            return exit::FAILED;
        }
    };
    let url = format!("{}{path}", client.base());
    match client.probe(path, Duration::from_secs(args.timeout.max(1))) {
        Ok(answer) if answer.status == 200 => {
            output::stdout(&format!("{url}: 200"));
            exit::OK
        }
        Ok(answer) => {
            let why = if args.ready && answer.status == 503 {
                "it is draining after SIGTERM (or not ready yet), so a load balancer should \
                 send it nothing new"
                    .to_owned()
            } else {
                format!("HTTP {} is not the 200 a healthy gateway gives", answer.status)
            };
            report(
                &format!(
                    "The gateway at {} answered {path} with {}: {why}.",
                    client.base(),
                    answer.status
                ),
                "if it is stopping, let it finish; otherwise see its log (`switchyard logs`, or \
                 the container's output) and restart it",
            );
            exit::FAILED
        }
        Err(why) => {
            report(
                &format!("The gateway did not answer its health probe: {why}."),
                "start it (`switchyard serve --host 0.0.0.0` in a container, `switchyard start` \
                 on a workstation), or pass the address it listens on with --url",
            );
            exit::NOT_RUNNING
        }
    }
}

/// The CLI's diagnosis layout, as `status` prints GW-04.
fn report(cause: &str, remedy: &str) {
    output::stderr(&format!("{cause}  (GW-04)\n  fix: {remedy}"));
}
