//! `mock-upstream --port P [--host H] [--api-key K] [--bedrock-api-key K] [--admin]`: serves the
//! default replies (answered at once, nothing recorded) until Ctrl-C, for benchmarks. With
//! `--admin` it records every request and serves the `/_mock/*` routes, so another process (the
//! Python SDK suite) scripts it over HTTP. `--bedrock-api-key` lets a benchmark call the Bedrock
//! emulation without `--admin` (whose recording would grow the mock's memory with every call).
//! All behaviour lives in the library.

use std::process::ExitCode;

use mock_upstream::MockUpstream;

const USAGE: &str =
    "usage: mock-upstream --port P [--host H] [--api-key K] [--bedrock-api-key K] [--admin]";

struct Args {
    host: String,
    port: u16,
    api_key: Option<String>,
    /// Accepted as `Authorization: Bearer` by the Bedrock emulation.
    bedrock_api_keys: Vec<String>,
    admin: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut host, mut port, mut api_key) = ("127.0.0.1".to_owned(), None, None);
    let mut admin = false;
    let mut bedrock_api_keys = Vec::new();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => host = value()?,
            "--port" => {
                let text = value()?;
                port = Some(text.parse().map_err(|_| format!("--port: not a port: {text}"))?);
            }
            "--api-key" => api_key = Some(value()?),
            "--bedrock-api-key" => bedrock_api_keys.push(value()?),
            "--admin" => admin = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    let port = port.ok_or("--port is required")?;
    Ok(Args { host, port, api_key, bedrock_api_keys, admin })
}

#[tokio::main]
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the binary's whole interface: its address on stdout, usage errors on stderr"
)]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("mock-upstream: {problem}");
            }
            eprintln!("{USAGE}");
            return if problem.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) };
        }
    };
    let addr = match tokio::net::lookup_host((args.host.as_str(), args.port)).await {
        Ok(mut addrs) => addrs.next(),
        Err(_) => None,
    };
    let Some(addr) = addr else {
        eprintln!("mock-upstream: cannot resolve host {}", args.host);
        return ExitCode::from(2);
    };
    // Benchmarks (no --admin) skip the recorder so memory stays flat; scripting needs it.
    let mut builder = MockUpstream::builder().bind(addr).record(args.admin).admin(args.admin);
    if let Some(key) = args.api_key {
        builder = builder.api_key(key);
    }
    let mock = match builder.try_start().await {
        Ok(mock) => mock,
        Err(err) => {
            eprintln!("mock-upstream: cannot listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    for key in &args.bedrock_api_keys {
        mock.aws().bedrock_api_key(key.as_str());
    }
    println!("mock-upstream listening on {}", mock.url());
    if let Err(err) = tokio::signal::ctrl_c().await {
        eprintln!("mock-upstream: cannot wait for Ctrl-C: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
