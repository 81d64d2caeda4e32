//! The config loader: YAML with positions, `os.environ/` interpolation, validation, and the
//! `switchyard check` report of what loaded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::config::{check_json, render_check};
use switchyard::fuzzing::{ENV_SECRET, load_config};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // A secret may show only where the config itself spells it out.
    let spelled_out = text.contains(ENV_SECRET);
    match load_config(text) {
        Ok(cfg) => {
            let report = render_check(&cfg);
            let json = check_json(&cfg).to_string();
            if !spelled_out {
                assert!(
                    !report.contains(ENV_SECRET),
                    "a secret from the environment in the check report"
                );
                assert!(
                    !json.contains(ENV_SECRET),
                    "a secret from the environment in the JSON report"
                );
            }
            for w in &cfg.warnings {
                let _ = format!("{w:?}");
            }
        }
        Err(errors) => {
            assert!(!errors.problems.is_empty(), "a failed load names no problem");
            let shown = errors.to_string();
            let json = errors.to_json().to_string();
            if !spelled_out {
                assert!(
                    !shown.contains(ENV_SECRET),
                    "a secret from the environment in a config error"
                );
                assert!(
                    !json.contains(ENV_SECRET),
                    "a secret from the environment in a config error"
                );
            }
        }
    }
});
