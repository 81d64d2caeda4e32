//! `switchyard config check`: validate and show what every alias resolves to.

use super::CheckArgs;
use super::output;
use crate::config::{self, LoadOptions, ProcessEnv};
use crate::exit;

pub fn run(args: &CheckArgs) -> u8 {
    let opts = LoadOptions {
        config_path: args.config.config.clone(),
        env_files: args.config.env_files.clone(),
    };
    match config::load(&opts, &ProcessEnv) {
        Ok(cfg) => {
            if args.json {
                let mut json = config::report::check_json(&cfg);
                json["valid"] = serde_json::Value::Bool(true);
                output::stdout(&json.to_string());
            } else {
                output::stdout(&config::report::render_check(&cfg));
            }
            exit::OK
        }
        Err(errors) => {
            if args.json {
                let mut json = errors.to_json();
                json["valid"] = serde_json::Value::Bool(false);
                output::stdout(&json.to_string());
            } else {
                output::stderr(&format!("switchyard: the configuration is invalid\n\n{errors}"));
            }
            exit::BAD_CONFIG
        }
    }
}
