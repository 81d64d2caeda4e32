//! `/ui/api/config`: the config file serving (secrets masked), where each deployment's
//! credentials come from, and the last reload. Masking is done twice: a value under a key
//! whose name says secret is hidden unless it is an `os.environ/` reference, and every secret
//! the loaded config holds is hidden wherever else it appears in the text.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::refusal;
use super::session::Viewer;
use crate::config::Config;
use crate::config::model::SourcedSecret;
use crate::server::AppState;
use crate::server::errors::error_response;

pub const MASK: &str = "•••••• (masked)";

/// Key names whose values are credentials (lowercase substrings).
const SECRET_NAMES: &[&str] =
    &["key", "secret", "token", "password", "passwd", "database_url", "authorization", "url"];

/// Key names that contain one of [`SECRET_NAMES`] but are not secret.
const PLAIN_NAMES: &[&str] = &[
    "api_base",
    "base_url",
    "key_alias",
    "_key_header",
    "aws_region_name",
    "max_tokens",
    "tokens_per",
    "tpm",
    "token_cost",
    "cost_per_token",
    "input_cost_per",
    "output_cost_per",
    "health_check_model",
    "sts_endpoint",
    "role_name",
    "session_name",
    "profile_name",
];

fn secret_name(key: &str) -> bool {
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'').to_ascii_lowercase();
    SECRET_NAMES.iter().any(|s| key.contains(s)) && !PLAIN_NAMES.iter().any(|p| key.contains(p))
}

/// Every secret value the loaded config holds, longest first (so no shorter one leaves a
/// tail of a longer one visible).
fn secrets(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: Option<&SourcedSecret>| {
        if let Some(s) = s
            && s.value.expose().len() >= 4
        {
            out.push(s.value.expose().to_owned());
        }
    };
    add(config.general.master_key.as_ref());
    add(config.general.database_url.as_ref());
    for d in config.deployments() {
        add(d.api_key.as_ref());
        add(d.aws.access_key_id.as_ref());
        add(d.aws.secret_access_key.as_ref());
        add(d.aws.session_token.as_ref());
        add(d.aws.web_identity_token.as_ref());
    }
    if let Some(redis) = &config.general.redis
        && redis.url.expose().len() >= 4
    {
        out.push(redis.url.expose().to_owned());
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// The YAML text with secrets masked, line by line.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut line = mask_line(line);
        for s in secrets {
            if line.contains(s.as_str()) {
                line = line.replace(s.as_str(), MASK);
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn mask_line(line: &str) -> String {
    let body = line.trim_start().trim_start_matches("- ");
    let Some((key, value)) = body.split_once(':') else { return line.to_owned() };
    let value = value.trim();
    // `key:` opening a block, a comment, an environment reference: nothing to hide.
    if value.is_empty()
        || value.starts_with('#')
        || value.contains("os.environ/")
        || key.trim_start().starts_with('#')
        || !secret_name(key)
    {
        return line.to_owned();
    }
    let prefix_len = line.len() - value.len();
    let prefix = line.get(..prefix_len).unwrap_or(line);
    format!("{prefix}\"{MASK}\"")
}

fn credentials(config: &Config) -> Vec<Value> {
    config
        .deployments()
        .map(|d| {
            let src = |s: Option<&SourcedSecret>| s.map(|s| s.source.to_string());
            json!({
                "alias": d.alias,
                "id": d.id,
                "model": d.model_as_written,
                "provider": d.provider.prefix(),
                "api_base": d.api_base,
                "aws_region_name": d.aws.region_name,
                "aws_profile_name": d.aws.profile_name,
                "api_key": src(d.api_key.as_ref()),
                "aws_access_key_id": src(d.aws.access_key_id.as_ref()),
                "aws_secret_access_key": src(d.aws.secret_access_key.as_ref()),
                "aws_session_token": src(d.aws.session_token.as_ref()),
            })
        })
        .collect()
}

/// `GET /ui/api/config`.
pub async fn show(State(state): State<Arc<AppState>>, req: Request) -> Response {
    if req.extensions().get::<Viewer>().is_some_and(|v| !v.is_admin()) {
        return error_response(req.uri().path(), req.headers(), &refusal::admin_only());
    }
    let runtime = state.runtime();
    let config = &runtime.config;
    let secrets = secrets(config);
    let files: Vec<Value> = std::iter::once(&config.path)
        .chain(&config.included)
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| match std::fs::read_to_string(p) {
            Ok(text) => json!({"path": p, "text": mask(&text, &secrets)}),
            Err(err) => json!({"path": p, "error": err.to_string()}),
        })
        .collect();
    let status = match state.reloader() {
        Some(reloader) => reloader.status_json(&state),
        None => json!({"config": config.path, "env_files": config.env_files, "last_reload": null}),
    };
    let body = json!({
        "files": files,
        "env_files": config.env_files,
        "master_key": config.general.master_key.as_ref().map(|k| k.source.to_string()),
        "deployments": credentials(config),
        "warnings": config.warnings.len(),
        "loaded_at": status.get("loaded_at"),
        "watching": status.get("watching"),
        "last_reload": status.get("last_reload"),
    });
    let mut text = body.to_string();
    // The JSON escapes nothing a secret is made of, so a last pass over the whole answer
    // catches one that reached a field above (a reload's message quoting a value).
    for s in &secrets {
        if let Ok(escaped) = serde_json::to_string(s)
            && let Some(inner) = escaped.get(1..escaped.len() - 1)
        {
            text = text.replace(inner, MASK);
        }
    }
    ([(CONTENT_TYPE, "application/json")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_masked_and_references_kept() {
        let text = "general_settings:\n  master_key: sk-master-1234\n  database_url: os.environ/DATABASE_URL\n\
                    model_list:\n  - model_name: a\n    litellm_params:\n      api_base: http://x\n      \
                    api_key: \"sk-ant-secret\"\n      aws_secret_access_key: abc/def\n      \
                    max_tokens: 10\n      note: has sk-other-9999 inline\n";
        let out = mask(text, &["sk-other-9999".to_owned()]);
        assert!(!out.contains("sk-master-1234"));
        assert!(!out.contains("sk-ant-secret"));
        assert!(!out.contains("abc/def"));
        assert!(!out.contains("sk-other-9999"));
        assert!(out.contains("os.environ/DATABASE_URL"));
        assert!(out.contains("api_base: http://x"));
        assert!(out.contains("max_tokens: 10"));
    }
}
