//! `switchyard config check`: validate and show what every alias resolves to.

use super::CheckArgs;
use super::output;
use crate::config::{self, LoadOptions, ProcessEnv};
use crate::{credentials, exit};

pub fn run(args: &CheckArgs) -> u8 {
    let opts = LoadOptions {
        config_path: args.config.config.clone(),
        env_files: args.config.env_files.clone(),
    };
    match config::load(&opts, &ProcessEnv) {
        Ok(cfg) => {
            // Bedrock deployments without a region (AWS-14) cannot be called, though the
            // file itself is valid: name them here rather than at the first request.
            let aws = credentials::AwsEnvironment::snapshot(&ProcessEnv, &cfg.env_files);
            let no_region = credentials::region_problems(&cfg, &aws);
            if args.json {
                let mut json = config::report::check_json(&cfg);
                json["valid"] = serde_json::Value::Bool(true);
                json["deployment_problems"] = no_region
                    .iter()
                    .map(|(d, e)| {
                        let fix = e.diagnosis.as_ref().map(|d| d.remedy.as_str()).unwrap_or("");
                        serde_json::json!({
                            "deployment": d.id,
                            "alias": d.alias,
                            "class": e.kind.as_str(),
                            "id": e.diagnosis.as_ref().map(|d| d.id),
                            "message": e.message,
                            "remedy": fix,
                        })
                    })
                    .collect();
                output::stdout(&json.to_string());
            } else {
                let mut text = config::report::render_check(&cfg);
                for (d, e) in &no_region {
                    let fix = e.diagnosis.as_ref().map(|d| d.remedy.as_str()).unwrap_or("");
                    text.push_str(&format!(
                        "\nAWS-14 {} ({}): {}\n    fix: {fix}\n",
                        d.id, d.alias, e.message
                    ));
                }
                output::stdout(text.trim_end());
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
