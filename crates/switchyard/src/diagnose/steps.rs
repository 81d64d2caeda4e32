//! "Next steps": the remedies of every failing deployment, turned into things to run or
//! config lines to write, deduplicated (three tiers with the same stale keys get one set of
//! steps naming all three) and ordered (configuration, then credentials, then permissions,
//! then model ids, then transient trouble).
//!
//! Reads the classified failures only; never re-classifies anything.

use serde::Serialize;

use super::doctor::{AliasReport, DeploymentReport, Failure};
use super::identity::IdentityCheck;
use super::policy;
use crate::config::{Config, CredentialSource, Deployment, EnvOrigin, SourcedSecret, ValueSource};
use crate::credentials::Profiles;

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `run` (commands), `edit` (a file or the config), `grant` (an IAM policy), `do`.
    pub action: &'static str,
    pub text: String,
    /// Commands to run or lines to write, verbatim.
    pub lines: Vec<String>,
    /// The catalog ids this step answers.
    pub diagnoses: Vec<&'static str>,
    /// The deployments it concerns, with where each is in the config.
    pub deployments: Vec<String>,
}

/// Catalog ids in the order their steps come: what blocks everything first.
const ORDER: &[&str] = &[
    "CFG-", "AWS-14", "AWS-04", "AWS-01", "AWS-02", "AWS-03", "AWS-11", "AWS-13", "ANT-01",
    "AWS-12", "NET-02", "NET-01", "AWS-05", "AWS-06", "ANT-02", "AWS-07", "AWS-08", "ANT-05",
    "AWS-09", "AWS-10", "ANT-03", "NET-03",
];

fn rank(id: &str) -> usize {
    ORDER.iter().position(|p| id.starts_with(p)).unwrap_or(ORDER.len())
}

pub fn next_steps(config: &Config, aliases: &[AliasReport], profiles: &Profiles) -> Vec<Step> {
    let mut failing: Vec<(&DeploymentReport, &Failure, &Deployment)> = aliases
        .iter()
        .flat_map(|a| a.deployments.iter())
        .filter_map(|r| {
            let f = r.failure()?;
            let d = config.deployments().find(|d| d.id == r.id)?;
            Some((r, f, d.as_ref()))
        })
        .collect();
    failing.sort_by_key(|(_, f, _)| rank(f.diagnosis.as_ref().map_or("", |d| d.id)));

    let mut steps: Vec<Step> = Vec::new();
    let mut granted = Vec::new();
    for (report, failure, d) in &failing {
        let id = failure.diagnosis.as_ref().map_or("", |d| d.id);
        let who = format!("{} ({})", d.id, d.location);
        let profile = d
            .aws
            .profile_name
            .clone()
            .or_else(|| profiles.suggestion())
            .unwrap_or_else(|| "<profile>".to_owned());
        let new: Vec<Step> = match (id, &d.credentials) {
            ("AWS-01" | "AWS-02" | "AWS-11", CredentialSource::AwsKeys(_)) => {
                exported_keys(d, &profile, id)
            }
            ("AWS-01" | "AWS-02" | "AWS-03", _) => vec![
                step(
                    "run",
                    "Log in to AWS again (the gateway picks the new session up without a restart)",
                    vec![format!("aws sso login --profile {profile}")],
                    id,
                ),
                step(
                    "run",
                    "Check which identity the profile resolves to",
                    vec![format!("aws sts get-caller-identity --profile {profile}")],
                    id,
                ),
            ],
            ("AWS-05", _) => {
                granted.push((*report, *d));
                continue;
            }
            (_, _) => match &failure.diagnosis {
                Some(diag) => vec![step("do", &diag.remedy, Vec::new(), diag.id)],
                None => vec![step(
                    "do",
                    &format!("{}: {}", failure.class, failure.message),
                    Vec::new(),
                    "",
                )],
            },
        };
        for s in new {
            merge(&mut steps, s, &who);
        }
    }
    if !granted.is_empty() {
        merge_grant(&mut steps, config, &granted);
    }
    for report in aliases.iter().flat_map(|a| a.deployments.iter()) {
        let Some(finding) = &report.price.unpriced else { continue };
        let Some(d) = config.deployments().find(|d| d.id == report.id) else { continue };
        let lines = finding
            .missing
            .iter()
            .map(|key| format!("{key}: <USD per token>   # under litellm_params; 0 if free"))
            .collect();
        let text = "Price these deployments: without a price their spend is recorded as \
                    unknown, not as $0";
        merge(
            &mut steps,
            step("edit", text, lines, finding.id),
            &format!("{} ({})", d.id, d.location),
        );
    }
    if !steps.is_empty() {
        let mut again = format!("switchyard doctor --config {}", config.path.display());
        for f in &config.env_files {
            again.push_str(&format!(" --env-file {}", f.display()));
        }
        steps.push(Step {
            action: "run",
            text: "Check again".to_owned(),
            lines: vec![again],
            diagnoses: Vec::new(),
            deployments: Vec::new(),
        });
    }
    steps
}

fn step(action: &'static str, text: &str, lines: Vec<String>, id: &'static str) -> Step {
    Step {
        action,
        text: text.to_owned(),
        lines,
        diagnoses: if id.is_empty() { Vec::new() } else { vec![id] },
        deployments: Vec::new(),
    }
}

/// Adds `new`, or names `who` on the equal step already there.
fn merge(steps: &mut Vec<Step>, mut new: Step, who: &str) {
    if let Some(same) = steps
        .iter_mut()
        .find(|s| s.action == new.action && s.text == new.text && s.lines == new.lines)
    {
        for id in new.diagnoses {
            if !same.diagnoses.contains(&id) {
                same.diagnoses.push(id);
            }
        }
        if !same.deployments.iter().any(|d| d == who) {
            same.deployments.push(who.to_owned());
        }
        return;
    }
    new.deployments.push(who.to_owned());
    steps.push(new);
}

/// Keys that cannot refresh themselves (exported, or written in the config): remove them,
/// log in with the profile, name the profile instead.
fn exported_keys(d: &Deployment, profile: &str, id: &'static str) -> Vec<Step> {
    let vars = [
        ("AWS_ACCESS_KEY_ID", "aws_access_key_id", d.aws.access_key_id.as_ref()),
        ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key", d.aws.secret_access_key.as_ref()),
        ("AWS_SESSION_TOKEN", "aws_session_token", d.aws.session_token.as_ref()),
    ];
    let mut files: Vec<(String, Vec<String>)> = Vec::new();
    let mut process = Vec::new();
    let mut config_keys = Vec::new();
    for (var, key, secret) in vars {
        let Some(SourcedSecret { source, .. }) = secret else { continue };
        match source {
            ValueSource::Env { origin: EnvOrigin::File { path, line }, .. }
            | ValueSource::Env { origin: EnvOrigin::ConfigFile { path, line }, .. } => {
                let path = path.display().to_string();
                let entry = format!("line {line}: {var}");
                match files.iter_mut().find(|(p, _)| *p == path) {
                    Some((_, lines)) => lines.push(entry),
                    None => files.push((path, vec![entry])),
                }
            }
            ValueSource::Env { origin: EnvOrigin::Process, .. } => process.push(var),
            ValueSource::ConfigEnvRef { at, .. } | ValueSource::Literal(at) => {
                config_keys.push(format!("{at}: {key}"));
            }
        }
    }
    let mut steps = Vec::new();
    for (path, lines) in files {
        steps.push(step(
            "edit",
            &format!(
                "Delete the exported AWS keys from {path}: keys copied from an earlier session \
                 go stale and can never refresh themselves"
            ),
            lines,
            id,
        ));
    }
    if !process.is_empty() {
        steps.push(step(
            "run",
            "Stop exporting the AWS keys in the shell (or service) that starts the gateway",
            vec![format!("unset {}", process.join(" "))],
            id,
        ));
    }
    if !config_keys.is_empty() {
        steps.push(step("edit", "Remove the static AWS keys from the deployment", config_keys, id));
    }
    steps.push(step(
        "run",
        "Log in with the AWS profile (the gateway then refreshes the credentials itself)",
        vec![format!("aws sso login --profile {profile}")],
        id,
    ));
    steps.push(step(
        "edit",
        "Name the profile in each Bedrock deployment's litellm_params instead of keys",
        vec![format!("aws_profile_name: {profile}")],
        id,
    ));
    steps.push(step(
        "run",
        "Check that the profile resolves to the identity you expect",
        vec![format!("aws sts get-caller-identity --profile {profile}")],
        id,
    ));
    steps
}

/// AWS-05: one policy for every deployment missing a permission.
fn merge_grant(
    steps: &mut Vec<Step>,
    config: &Config,
    granted: &[(&DeploymentReport, &Deployment)],
) {
    let mut resources = Vec::new();
    let mut who = Vec::new();
    let mut deployments = Vec::new();
    for (report, d) in granted {
        let account = report.identity.as_ref().and_then(IdentityCheck::account);
        let (r, _) = policy::resources(&d.model, report.region.as_deref(), account);
        resources.extend(r);
        deployments.push(format!("{} ({})", d.id, d.location));
        let holder = match &report.identity {
            Some(IdentityCheck::Known(id)) => match &id.permission_set {
                Some(set) => format!("the IAM Identity Center permission set `{set}`"),
                None => id.arn.clone(),
            },
            _ => "the identity in use".to_owned(),
        };
        if !who.contains(&holder) {
            who.push(holder);
        }
    }
    let document = policy::document(&resources);
    let text = format!(
        "Grant this minimal IAM policy to {} (`switchyard policy --config {}` prints it), or \
         list a deployment of the same alias on the Anthropic API after the Bedrock one so \
         requests fall back meanwhile",
        who.join(" and "),
        config.path.display()
    );
    let lines = serde_json::to_string_pretty(&document)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let pos = steps.iter().position(|s| s.diagnoses.iter().any(|id| rank(id) > rank("AWS-05")));
    let grant = Step { action: "grant", text, lines, diagnoses: vec!["AWS-05"], deployments };
    match pos {
        Some(i) => steps.insert(i, grant),
        None => steps.push(grant),
    }
}

/// What to do when the Redis that budgets and rate limits share does not answer.
pub fn redis_step(r: &super::redis::RedisReport) -> Option<Step> {
    (r.state == "unreachable").then(|| Step {
        action: "do",
        text: format!(
            "Redis at {} does not answer ({}): budgets and rate limits are {}. Start Redis or \
             fix `router_settings.redis_host`/`redis_port` (or REDIS_URL).",
            r.place,
            r.error.as_deref().unwrap_or("no answer"),
            if r.fail_closed {
                "unavailable and every request is refused (general_settings.fail_closed)"
            } else {
                "counted per replica until it answers, so N replicas allow up to N times each limit"
            }
        ),
        lines: Vec::new(),
        diagnoses: vec!["LIM-03"],
        deployments: Vec::new(),
    })
}

/// What to do about the spend ledger, when anything: its database does not answer, or rows
/// wait in the spool. Serving is not affected either way.
pub fn ledger_step(l: &super::ledger::LedgerReport) -> Option<Step> {
    let waiting = if l.spooled > 0 {
        format!(" {} row(s) wait in the spool and are written once it answers.", l.spooled)
    } else {
        String::new()
    };
    if l.degraded() {
        return Some(Step {
            action: "do",
            text: format!(
                "The spend ledger's {} at {} does not answer ({}): requests are still served \
                 and their rows spooled, not lost.{waiting} Start the database or fix \
                 `database_url`.",
                l.backend,
                l.location,
                l.error.as_deref().unwrap_or("no answer")
            ),
            lines: Vec::new(),
            diagnoses: vec!["LED-01"],
            deployments: Vec::new(),
        });
    }
    (l.spooled > 0).then(|| Step {
        action: "do",
        text: format!(
            "{} spend ledger row(s) wait in the spool of this state directory; the gateway \
             writes them to {} when it runs (`switchyard start`).",
            l.spooled, l.location
        ),
        lines: Vec::new(),
        diagnoses: Vec::new(),
        deployments: Vec::new(),
    })
}
