//! What every integration test starts from: a config from YAML text and an in-process gateway
//! on a free loopback port. Feature harnesses (`ledger_support`, `limits_support`, …) build on
//! these; a test file declares `mod support;` beside them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use switchyard::config::{self, Config, MapEnv};
use switchyard::server::{self, Handle, Runtime};

/// The environment most tests load with: `HOME` points nowhere, so no `~/.aws` or
/// `~/.config` of the machine's leaks into a test.
pub fn no_home() -> MapEnv {
    MapEnv::new([("HOME", "/nonexistent")])
}

/// `yaml` loaded as the file `test.yaml` with `env` as the process environment; a config
/// that does not load fails the test with every problem listed.
pub fn config(yaml: &str, env: &MapEnv) -> Config {
    config::load_from_str(yaml, Path::new("test.yaml"), env).unwrap_or_else(|e| panic!("{e}"))
}

/// A gateway serving `config` on 127.0.0.1 with a port the OS picks.
pub async fn start(config: Config) -> Handle {
    server::start("127.0.0.1:0".parse().unwrap(), Runtime::new(config)).await.unwrap()
}

/// A gateway serving `yaml` (loaded with `env`).
pub async fn gateway(yaml: &str, env: &MapEnv) -> Handle {
    start(config(yaml, env)).await
}
