//! `switchyard config check`: what the gateway understood from the config — the file and
//! how it was found, env files, warnings, and every alias with its deployments and where
//! their credentials come from. Never a secret: at most [`Secret::safe_prefix`].
//!
//! [`Secret::safe_prefix`]: crate::secret::Secret::safe_prefix

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::locate::describe_origin;
use super::model::{
    Config, CredentialSource, Deployment, EnvOrigin, OpenAiFlavor, ProviderKind, SourcedSecret,
    SslVerify, ValueSource,
};
use crate::cost::{self, Kind, Source};

fn origin_text(origin: &EnvOrigin) -> String {
    match origin {
        EnvOrigin::Process => "process environment".to_owned(),
        EnvOrigin::File { path, line } => format!("env file {}:{line}", path.display()),
        EnvOrigin::ConfigFile { path, line } => {
            format!("environment_variables, {}:{line}", path.display())
        }
    }
}

/// "from ANTHROPIC_API_KEY (env file ~/.env:3)" / "written in config.yaml:12:16".
fn source_text(source: &ValueSource) -> String {
    match source {
        ValueSource::Literal(at) => format!("written in {at}"),
        ValueSource::ConfigEnvRef { var, origin, .. } | ValueSource::Env { var, origin } => {
            format!("from {var} ({})", origin_text(origin))
        }
    }
}

fn with_prefix(text: String, secret: Option<&SourcedSecret>) -> String {
    match secret {
        Some(s) => format!("{text}, {}", s.value.safe_prefix()),
        None => text,
    }
}

/// Where a deployment's credentials will come from, in one line.
pub fn credentials_text(d: &Deployment) -> String {
    if let (Some(u), None) = (&d.unservable, &d.mock_response) {
        return format!("NOT SERVED ({}): {}", u.id, u.cause);
    }
    let base = match &d.credentials {
        CredentialSource::Mock => "mock_response (no upstream)".to_owned(),
        CredentialSource::ApiKey(s) => {
            with_prefix(format!("api_key {}", source_text(s)), d.api_key.as_ref())
        }
        CredentialSource::BedrockApiKey(s) => {
            with_prefix(format!("Bedrock API key {}", source_text(s)), d.api_key.as_ref())
        }
        CredentialSource::AwsKeys(s) => {
            with_prefix(format!("AWS access keys {}", source_text(s)), d.aws.access_key_id.as_ref())
        }
        CredentialSource::AwsProfile { name, source } => match source {
            ValueSource::Literal(_) => format!("aws profile {name}"),
            other => format!("aws profile {name} ({})", source_text(other)),
        },
        CredentialSource::AwsDefaultChain => "default AWS chain".to_owned(),
        CredentialSource::NoneNeeded => "none needed".to_owned(),
        CredentialSource::Missing { looked_for } => {
            format!("MISSING: none of {} is set", looked_for.join(", "))
        }
    };
    match &d.aws.role_name {
        Some(role) if matches!(d.provider, ProviderKind::Bedrock(_)) => {
            format!("{base}, then assume role {role}")
        }
        _ => base,
    }
}

fn provider_text(d: &Deployment) -> String {
    match d.provider {
        // The prefix as written (`azure`, `vertex_ai`), which names what is missing.
        ProviderKind::Unsupported => match d.model_as_written.split_once('/') {
            Some((prefix, _)) => format!("{prefix} (unsupported)"),
            None => "unsupported".to_owned(),
        },
        p => p.prefix().to_owned(),
    }
}

fn region_text(d: &Deployment) -> String {
    match (&d.aws.region_name, &d.aws.region_source) {
        (Some(r), Some(ValueSource::Literal(_)) | None) => r.clone(),
        (Some(r), Some(src)) => format!("{r} ({})", source_text(src)),
        (None, _) if matches!(d.provider, ProviderKind::Bedrock(_)) => "from profile".to_owned(),
        (None, _) => "-".to_owned(),
    }
}

fn api_base_text(d: &Deployment) -> String {
    match (&d.api_base, d.provider) {
        (Some(b), _) => b.clone(),
        (None, ProviderKind::OpenAi(OpenAiFlavor::Ollama | OpenAiFlavor::OllamaChat)) => {
            "default (localhost:11434)".to_owned()
        }
        (None, _) => "default".to_owned(),
    }
}

/// The price in dollars per million input / output tokens and where it came from, or
/// "unknown" (CFG-10): `$3/$15 table`, `$0/$0 config`.
fn price_text(d: &Deployment) -> String {
    let price = cost::resolve(d);
    let rate = |kind| price.per_million(kind).map_or("?".to_owned(), |m| format!("${m}"));
    let text = format!("{}/{}", rate(Kind::Input), rate(Kind::Output));
    if !price.is_known() {
        return if price.base.input.is_none() && price.base.output.is_none() {
            "unknown".to_owned()
        } else {
            format!("{text} unknown")
        };
    }
    let from_table =
        |k: Kind| matches!(price.base.get(k), Some(r) if matches!(r.source, Source::Table { .. }));
    let origin = match (from_table(Kind::Input), from_table(Kind::Output)) {
        (true, true) => "table",
        (false, false) => "config",
        _ => "config+table",
    };
    format!("{text} {origin}")
}

fn price_json(d: &Deployment) -> Value {
    let price = cost::resolve(d);
    let sources: serde_json::Map<String, Value> = Kind::ALL
        .into_iter()
        .filter_map(|k| {
            Some((k.litellm_key().to_owned(), json!(price.base.get(k)?.source.to_string())))
        })
        .collect();
    json!({
        "known": price.is_known(),
        "input_per_million": price.per_million(Kind::Input).map(|d| d.to_string()),
        "output_per_million": price.per_million(Kind::Output).map(|d| d.to_string()),
        "sources": sources,
    })
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == cols {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn render_check(cfg: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "config:    {} ({})", cfg.path.display(), describe_origin(&cfg.origin));
    let env_files = if cfg.env_files.is_empty() {
        "none".to_owned()
    } else {
        cfg.env_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    };
    let _ = writeln!(out, "env files: {env_files}");
    if !cfg.included.is_empty() {
        let list: Vec<String> = cfg.included.iter().map(|p| p.display().to_string()).collect();
        let _ = writeln!(out, "included:  {}", list.join(", "));
    }
    let master = match &cfg.general.master_key {
        Some(k) => format!("set, {} {}", k.value.safe_prefix(), source_text(&k.source)),
        None => "not set (only loopback addresses are served without one)".to_owned(),
    };
    let _ = writeln!(out, "master key: {master}");

    if !cfg.warnings.is_empty() {
        let _ = writeln!(out, "\nwarnings ({}):", cfg.warnings.len());
        for w in &cfg.warnings {
            let at = w.location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default();
            let _ = writeln!(out, "  {at}{} {}: {}", w.id, w.key, w.message);
        }
    }

    let _ = writeln!(out, "\naliases ({}):", cfg.groups.len());
    let mut rows = vec![
        ["ALIAS", "PROVIDER", "MODEL", "REGION", "API BASE", "PRICE PER 1M IN/OUT", "CREDENTIALS"]
            .map(String::from)
            .to_vec(),
    ];
    for g in &cfg.groups {
        for (i, d) in g.deployments.iter().enumerate() {
            rows.push(vec![
                if i == 0 { g.name.clone() } else { String::new() },
                provider_text(d),
                d.model.clone(),
                region_text(d),
                api_base_text(d),
                price_text(d),
                credentials_text(d),
            ]);
        }
    }
    if cfg.groups.is_empty() {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&table(&rows));
    }

    let r = &cfg.router;
    let _ = writeln!(
        out,
        "\nrouting: {}, {} retries, cooldown {}s after {} fails",
        r.routing_strategy.as_str(),
        r.num_retries,
        r.cooldown_time.as_secs_f64(),
        r.allowed_fails
    );
    for (what, map) in [
        ("fallbacks", &r.fallbacks),
        ("context_window_fallbacks", &r.context_window_fallbacks),
        ("content_policy_fallbacks", &r.content_policy_fallbacks),
    ] {
        for (from, to) in map {
            let _ = writeln!(out, "  {what}: {from} → {}", to.join(" → "));
        }
    }
    if !r.default_fallbacks.is_empty() {
        let _ = writeln!(out, "  default_fallbacks: {}", r.default_fallbacks.join(" → "));
    }
    out
}

fn credentials_json(d: &Deployment) -> Value {
    let kind = match &d.credentials {
        CredentialSource::Mock => "mock",
        CredentialSource::ApiKey(_) => "api_key",
        CredentialSource::BedrockApiKey(_) => "bedrock_api_key",
        CredentialSource::AwsKeys(_) => "aws_keys",
        CredentialSource::AwsProfile { .. } => "aws_profile",
        CredentialSource::AwsDefaultChain => "aws_default_chain",
        CredentialSource::NoneNeeded => "none_needed",
        CredentialSource::Missing { .. } => "missing",
    };
    let (var, origin) = match &d.credentials {
        CredentialSource::ApiKey(s)
        | CredentialSource::BedrockApiKey(s)
        | CredentialSource::AwsKeys(s)
        | CredentialSource::AwsProfile { source: s, .. } => match s {
            ValueSource::ConfigEnvRef { var, origin, .. } | ValueSource::Env { var, origin } => {
                (Some(var.clone()), Some(origin_text(origin)))
            }
            ValueSource::Literal(at) => (None, Some(format!("config {at}"))),
        },
        _ => (None, None),
    };
    let secret = match &d.credentials {
        CredentialSource::AwsKeys(_) => d.aws.access_key_id.as_ref(),
        _ => d.api_key.as_ref(),
    };
    json!({
        "kind": kind,
        "description": credentials_text(d),
        "variable": var,
        "origin": origin,
        "profile": match &d.credentials { CredentialSource::AwsProfile { name, .. } => Some(name.clone()), _ => None },
        "safe_prefix": secret.map(|s| s.value.safe_prefix()),
    })
}

pub fn check_json(cfg: &Config) -> Value {
    let aliases: Vec<Value> = cfg
        .groups
        .iter()
        .map(|g| {
            let deployments: Vec<Value> = g
                .deployments
                .iter()
                .map(|d| {
                    json!({
                        "id": d.id,
                        "provider": provider_text(d),
                        "model": d.model,
                        "model_as_written": d.model_as_written,
                        "region": d.aws.region_name,
                        "api_base": d.api_base,
                        "credentials": credentials_json(d),
                        "price": price_json(d),
                        "mock_response": d.mock_response.is_some(),
                        "not_served": d.unservable.as_ref().filter(|_| d.mock_response.is_none()).map(|u| json!({
                            "id": u.id, "cause": u.cause, "remedy": u.remedy,
                        })),
                        "tls_verify": !matches!(d.ssl_verify, SslVerify::Disabled),
                        "location": d.location.to_string(),
                    })
                })
                .collect();
            json!({ "alias": g.name, "deployments": deployments })
        })
        .collect();
    let warnings: Vec<Value> = cfg
        .warnings
        .iter()
        .map(|w| {
            json!({
                "id": w.id,
                "key": w.key,
                "file": w.location.as_ref().map(|l| l.file.display().to_string()),
                "line": w.location.as_ref().map(|l| l.line),
                "column": w.location.as_ref().map(|l| l.column),
                "message": w.message,
            })
        })
        .collect();
    let r = &cfg.router;
    json!({
        "ok": true,
        "config": cfg.path.display().to_string(),
        "found": describe_origin(&cfg.origin),
        "env_files": cfg.env_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "included": cfg.included.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "master_key": cfg.general.master_key.as_ref().map(|k| json!({
            "safe_prefix": k.value.safe_prefix(),
            "source": source_text(&k.source),
        })),
        "warnings": warnings,
        "aliases": aliases,
        "router": {
            "routing_strategy": r.routing_strategy.as_str(),
            "num_retries": r.num_retries,
            "allowed_fails": r.allowed_fails,
            "cooldown_time_secs": r.cooldown_time.as_secs_f64(),
            "fallbacks": r.fallbacks,
            "context_window_fallbacks": r.context_window_fallbacks,
            "content_policy_fallbacks": r.content_policy_fallbacks,
            "default_fallbacks": r.default_fallbacks,
        },
    })
}
