//! What the commands that work on a store directly (`keys`, `batches`) share: the options
//! that find the config and the state directory, and opening them before any store is touched.

use std::path::PathBuf;

use clap::Args;

use super::output;
use crate::config::{self, Config, LoadOptions, ProcessEnv};
use crate::daemon::StateDir;
use crate::exit;

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Config file (LiteLLM format), for `database_url`; the same search order as `serve`.
    #[arg(long, short = 'c', value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,

    /// Env file to load before resolving the config (repeatable).
    #[arg(long = "env-file", value_name = "PATH", global = true)]
    pub env_files: Vec<PathBuf>,

    /// The state directory whose SQLite files hold the store (without `database_url`); the
    /// same default as `serve`.
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,

    /// Print JSON (LiteLLM's answer where the command has one) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The loaded config, the runtime to run the command on and the store's settings.
pub struct Opened {
    pub config: Config,
    pub runtime: tokio::runtime::Runtime,
    pub database_url: Option<crate::secret::Secret>,
    pub state_dir: PathBuf,
}

impl StoreArgs {
    /// Loads the config and resolves the state directory of `store` ("key store" …); on
    /// failure, the message is printed and the exit code returned.
    pub fn open(&self, store: &str) -> Result<Opened, u8> {
        let opts =
            LoadOptions { config_path: self.config.clone(), env_files: self.env_files.clone() };
        let config = config::load(&opts, &ProcessEnv).map_err(|errors| {
            output::stderr(&format!("switchyard: the configuration is invalid\n\n{errors}"));
            exit::BAD_CONFIG
        })?;
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|err| {
                output::stderr(&format!("switchyard: cannot start the async runtime: {err}"));
                exit::FAILED
            })?;
        let state_dir = StateDir::resolve(self.state_dir.as_deref(), &ProcessEnv).map_err(|m| {
            output::stderr(&format!("switchyard: cannot open the {store}: {m}"));
            exit::FAILED
        })?;
        let database_url = config.general.database_url.as_ref().map(|u| u.value.clone());
        Ok(Opened { config, runtime, database_url, state_dir: state_dir.root().to_owned() })
    }
}
