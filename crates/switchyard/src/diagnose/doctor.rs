//! The doctor engine: for each alias and deployment of a loaded config, where the
//! credentials come from, who AWS says they are (STS), and a live probe through the real
//! provider, classified by the one classifier; then which aliases are served and the next
//! steps. Produces data ([`Report`]); `render` turns it into text or JSON.
//!
//! Never prints or stores a secret beyond its safe prefix; never classifies an upstream
//! answer itself.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;

use super::identity::{self, IdentityCheck};
use super::probe::{self, Answer};
use super::steps::{self, Step};
use crate::classify::{Diagnosis, UpstreamError};
use crate::config::report::credentials_text;
use crate::config::{Config, CredentialSource, Deployment, Env, ProviderKind, locate};
use crate::cost;
use crate::credentials::{self, AwsEnvironment, Profiles, SourceKind};
use crate::exit;
use crate::provider::{self, Upstreams};

/// How many deployments are probed at once.
const CONCURRENCY: usize = 4;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these aliases (all when empty).
    pub aliases: Vec<String>,
    /// No network: no STS, no probes (deployments that fail before any I/O still show).
    pub offline: bool,
    /// Also probe streaming (InvokeModelWithResponseStream on Bedrock).
    pub stream: bool,
    /// The state directory whose ledger and spool are checked (the default one when None).
    pub state_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub config: ConfigSection,
    pub aliases: Vec<AliasReport>,
    /// Every alias has a working deployment (`None` offline, when nothing said otherwise).
    pub all_served: Option<bool>,
    pub next_steps: Vec<Step>,
    pub offline: bool,
    /// The spend ledger: where rows go and whether that store answers (None when the state
    /// directory cannot be named).
    pub ledger: Option<super::ledger::LedgerReport>,
    /// The Redis budgets and rate limits share (None when none is configured).
    pub redis: Option<super::redis::RedisReport>,
    pub exit_code: u8,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigSection {
    pub path: String,
    pub found: String,
    pub env_files: Vec<String>,
    pub warnings: Vec<Warning>,
    /// AWS variables in effect and where each was set (values never shown; a key id as its
    /// safe prefix).
    pub aws_environment: Vec<EnvVar>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub id: &'static str,
    pub key: String,
    pub at: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvVar {
    pub name: &'static str,
    pub origin: String,
    pub shown: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AliasReport {
    pub alias: String,
    /// Some deployment answered (`None`: nothing was probed).
    pub served: Option<bool>,
    pub served_by: Option<String>,
    pub deployments: Vec<DeploymentReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentReport {
    pub id: String,
    pub provider: &'static str,
    pub model: String,
    pub region: Option<String>,
    pub region_source: Option<String>,
    /// Where the entry is in the config file.
    pub location: String,
    pub credentials: Credentials,
    /// For AWS: what STS says about those credentials.
    pub identity: Option<IdentityCheck>,
    pub result: Outcome,
    /// With `--stream`: the streaming probe.
    pub stream: Option<Outcome>,
    /// What its answers cost, and a finding when their spend would be unknown.
    pub price: PriceReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct PriceReport {
    /// Both the input and the output rate are known (0 counts: a free local model).
    pub known: bool,
    /// USD per million tokens, exact decimals.
    pub input_per_million: Option<String>,
    pub output_per_million: Option<String>,
    /// Where the input rate came from (`/model/info` shows every rate's source).
    pub source: Option<String>,
    /// CFG-10: why spend would be recorded as unknown, and what to write.
    pub unpriced: Option<PriceFinding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PriceFinding {
    pub id: &'static str,
    pub cause: String,
    pub remedy: String,
    /// The keys to add, under the deployment's `litellm_params` or `model_info`.
    pub missing: Vec<&'static str>,
}

impl PriceReport {
    fn of(d: &Deployment) -> Self {
        let price = cost::resolve(d);
        let per_million = |kind| price.per_million(kind).map(|d| d.to_string());
        let missing = [cost::Kind::Input, cost::Kind::Output]
            .into_iter()
            .filter(|k| price.base.get(*k).is_none())
            .map(cost::Kind::litellm_key)
            .collect();
        Self {
            known: price.is_known(),
            input_per_million: per_million(cost::Kind::Input),
            output_per_million: per_million(cost::Kind::Output),
            source: price.base.input.map(|r| r.source.to_string()),
            unpriced: cost::unpriced(d, &price).map(|u| PriceFinding {
                id: cost::UNPRICED,
                cause: u.cause,
                remedy: u.remedy,
                missing,
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Credentials {
    /// `aws_keys`, `aws_profile`, `sso_session`, `api_key`, `mock` …
    pub kind: &'static str,
    /// One line: the source and a safe prefix.
    pub source: String,
    pub expires: Option<String>,
    pub sso_token_expires: Option<String>,
    pub assumed_role: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ok(Answer),
    Failed(Failure),
    NotChecked { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The class (`credentials_invalid` …).
    pub class: &'static str,
    /// The upstream's HTTP status, when it answered.
    pub http_status: Option<u16>,
    pub provider_code: Option<String>,
    /// The upstream's own message.
    pub message: String,
    pub diagnosis: Option<Diagnosis>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        matches!(self, Self::Ok(_))
    }

    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Failed(f) => Some(f),
            _ => None,
        }
    }

    fn from(result: Result<Answer, UpstreamError>) -> Self {
        match result {
            Ok(answer) => Self::Ok(answer),
            Err(e) => Self::Failed(Failure {
                class: e.kind.as_str(),
                http_status: e.status,
                provider_code: e.provider_code,
                message: e.message,
                diagnosis: e.diagnosis,
            }),
        }
    }
}

impl DeploymentReport {
    /// Works: every probe that ran answered.
    pub fn works(&self) -> Option<bool> {
        let probes = [Some(&self.result), self.stream.as_ref()];
        let ran: Vec<&Outcome> = probes
            .into_iter()
            .flatten()
            .filter(|o| !matches!(o, Outcome::NotChecked { .. }))
            .collect();
        if ran.is_empty() {
            return None;
        }
        Some(ran.iter().all(|o| o.ok()))
    }

    /// The first failure (send, then stream).
    pub fn failure(&self) -> Option<&Failure> {
        self.result.failure().or_else(|| self.stream.as_ref().and_then(Outcome::failure))
    }
}

/// Runs the checks. `env` is the environment the config was loaded with (the process's in
/// production); `aliases` in `opts` must exist in `config`.
pub async fn run(config: &Config, env: &dyn Env, opts: &Options) -> Report {
    let aws_env = Arc::new(AwsEnvironment::snapshot(env, &config.env_files));
    let profiles = Profiles::load(&aws_env);
    let upstreams = Upstreams::with_env(config, env);
    let selected: Vec<&crate::config::ModelGroup> = config
        .groups
        .iter()
        .filter(|g| opts.aliases.is_empty() || opts.aliases.contains(&g.name))
        .collect();

    // Identities first, once per credential source: three tiers on one profile ask STS once.
    let mut identities: HashMap<String, (credentials::CredentialReport, Option<IdentityCheck>)> =
        HashMap::new();
    let mut keys: HashMap<String, String> = HashMap::new();
    for d in selected.iter().flat_map(|g| g.deployments.iter()) {
        if !is_bedrock(d) || d.mock_response.is_some() {
            continue;
        }
        let region = credentials::region(d, &profiles).map(|(r, _)| r);
        let region = region.unwrap_or_else(|| "us-east-1".to_owned());
        let key = format!("{}|{:?}|{region}", credentials_text(d), d.aws.role_name);
        if !identities.contains_key(&key) {
            let checked = identity::check(d, &aws_env, &region, opts.offline).await;
            identities.insert(key.clone(), (checked.report, checked.identity));
        }
        keys.insert(d.id.clone(), key);
    }

    let work: Vec<(usize, Arc<Deployment>)> = selected
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.deployments.iter().map(move |d| (i, Arc::clone(d))))
        .collect();
    let probed: Vec<(usize, DeploymentReport)> = futures_util::stream::iter(work)
        .map(|(i, d)| {
            let upstreams = &upstreams;
            let profiles = &profiles;
            let identities = &identities;
            let keys = &keys;
            async move {
                let held = keys.get(&d.id).and_then(|k| identities.get(k));
                (i, deployment_report(&d, upstreams, profiles, held, opts).await)
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;

    let mut aliases: Vec<AliasReport> = selected
        .iter()
        .map(|g| AliasReport {
            alias: g.name.clone(),
            served: None,
            served_by: None,
            deployments: Vec::new(),
        })
        .collect();
    for (i, report) in probed {
        aliases[i].deployments.push(report);
    }
    for a in &mut aliases {
        let verdicts: Vec<Option<bool>> =
            a.deployments.iter().map(DeploymentReport::works).collect();
        a.served_by = a.deployments.iter().find(|d| d.works() == Some(true)).map(|d| d.id.clone());
        a.served = if a.served_by.is_some() {
            Some(true)
        } else if !verdicts.is_empty() && verdicts.iter().all(|v| *v == Some(false)) {
            Some(false)
        } else if opts.offline {
            None
        } else {
            Some(false)
        };
    }
    let all_served = if aliases.iter().any(|a| a.served == Some(false)) {
        Some(false)
    } else if aliases.iter().all(|a| a.served == Some(true)) {
        Some(true)
    } else {
        None
    };
    let exit_code = if all_served == Some(false) { exit::FAILED } else { exit::OK };
    let mut next_steps = steps::next_steps(config, &aliases, &profiles);
    let ledger = match crate::daemon::StateDir::resolve(opts.state_dir.as_deref(), env) {
        Ok(dir) => Some(super::ledger::check(config, dir.root(), opts.offline).await),
        Err(_) => None,
    };
    if let Some(step) = ledger.as_ref().and_then(steps::ledger_step) {
        next_steps.push(step);
    }
    let redis = super::redis::check(config, opts.offline).await;
    if let Some(step) = redis.as_ref().and_then(steps::redis_step) {
        next_steps.push(step);
    }
    Report {
        config: config_section(config, &aws_env),
        aliases,
        all_served,
        next_steps,
        offline: opts.offline,
        ledger,
        redis,
        exit_code,
    }
}

/// A wildcard deployment made concrete for its `model_info.health_check_model`, as `/health`
/// probes it.
fn wildcard_probe(d: &Arc<Deployment>) -> Option<Arc<Deployment>> {
    if !d.is_pattern() {
        return None;
    }
    let name = d.model_info.get("health_check_model")?.as_str()?;
    let parts = crate::config::pattern::parts_for(d, name)?;
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let mut concrete = Deployment::clone(d);
    concrete.model = crate::config::pattern::fill(&d.model, &parts);
    Some(Arc::new(concrete))
}

fn is_bedrock(d: &Deployment) -> bool {
    matches!(d.provider, ProviderKind::Bedrock(_))
}

async fn deployment_report(
    d: &Arc<Deployment>,
    upstreams: &Upstreams,
    profiles: &Profiles,
    held: Option<&(credentials::CredentialReport, Option<IdentityCheck>)>,
    opts: &Options,
) -> DeploymentReport {
    let (region, region_source) = if is_bedrock(d) {
        match credentials::region(d, profiles) {
            Some((r, from)) => (Some(r), Some(from)),
            None => (None, None),
        }
    } else {
        (None, None)
    };
    let credentials = match held {
        Some((report, _)) => Credentials {
            kind: source_kind(report.kind),
            source: report.source.clone(),
            expires: report.expires.map(identity::rfc3339),
            sso_token_expires: report.sso_token_expires.map(identity::rfc3339),
            assumed_role: report.assumed_role.clone(),
        },
        None => Credentials {
            kind: config_kind(&d.credentials),
            source: credentials_text(d),
            expires: None,
            sso_token_expires: None,
            assumed_role: None,
        },
    };
    // Offline, only what fails (or answers) before any I/O is probed: a mock, a Bedrock
    // deployment with no region, a deployment with no key.
    let no_io = d.mock_response.is_some()
        || (is_bedrock(d) && region.is_none())
        || matches!(d.credentials, CredentialSource::Missing { .. });
    // A wildcard deployment has no one model to ask, unless `health_check_model` names one.
    let probed = wildcard_probe(d);
    let (result, stream) = if opts.offline && !no_io {
        let skipped = Outcome::NotChecked { reason: "--offline".to_owned() };
        (skipped.clone(), opts.stream.then_some(skipped))
    } else if d.is_pattern() && probed.is_none() {
        let skipped = Outcome::NotChecked {
            reason: format!(
                "`{}` is a wildcard; set model_info.health_check_model (a name it matches) to probe it",
                d.alias
            ),
        };
        (skipped.clone(), opts.stream.then_some(skipped))
    } else {
        let d = probed.as_ref().unwrap_or(d);
        let provider = provider::for_deployment(d, upstreams);
        let result = Outcome::from(probe::check(provider.as_ref(), d).await);
        let stream = if !opts.stream {
            None
        } else if crate::embedding::only_embeds(d) {
            Some(Outcome::NotChecked { reason: "an embedding model does not stream".to_owned() })
        } else {
            Some(Outcome::from(probe::stream(provider.as_ref(), d).await))
        };
        (result, stream)
    };
    DeploymentReport {
        id: d.id.clone(),
        provider: d.provider.prefix(),
        model: d.model.clone(),
        region,
        region_source,
        location: d.location.to_string(),
        credentials,
        identity: held.and_then(|(_, i)| i.clone()),
        result,
        stream,
        price: PriceReport::of(d),
    }
}

fn source_kind(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::BedrockApiKey => "bedrock_api_key",
        SourceKind::StaticKeys => "aws_keys",
        SourceKind::Profile => "aws_profile",
        SourceKind::SsoSession => "sso_session",
        SourceKind::LegacySso => "legacy_sso",
        SourceKind::CredentialProcess => "credential_process",
        SourceKind::RoleProfile => "role_profile",
        SourceKind::WebIdentity => "web_identity",
        SourceKind::DefaultChain => "aws_default_chain",
    }
}

fn config_kind(source: &CredentialSource) -> &'static str {
    match source {
        CredentialSource::Mock => "mock",
        CredentialSource::ApiKey(_) => "api_key",
        CredentialSource::BedrockApiKey(_) => "bedrock_api_key",
        CredentialSource::AwsKeys(_) => "aws_keys",
        CredentialSource::AwsProfile { .. } => "aws_profile",
        CredentialSource::AwsDefaultChain => "aws_default_chain",
        CredentialSource::NoneNeeded => "none_needed",
        CredentialSource::Missing { .. } => "missing",
    }
}

/// AWS variables worth showing, in the order a person checks them.
const SHOWN_VARS: &[&str] = &[
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
];

fn config_section(config: &Config, aws_env: &AwsEnvironment) -> ConfigSection {
    let aws_environment = SHOWN_VARS
        .iter()
        .filter_map(|name| {
            let origin = aws_env.origin(name)?;
            let value = aws_env.get(name)?;
            let shown = match *name {
                "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN" => None,
                "AWS_ACCESS_KEY_ID" | "AWS_BEARER_TOKEN_BEDROCK" => {
                    Some(crate::secret::Secret::new(value).safe_prefix())
                }
                _ => Some(value.to_owned()),
            };
            Some(EnvVar { name, origin: origin.to_string(), shown })
        })
        .collect();
    ConfigSection {
        path: config.path.display().to_string(),
        found: locate::describe_origin(&config.origin),
        env_files: config.env_files.iter().map(|p| p.display().to_string()).collect(),
        // An unpriced deployment is reported with the deployment (`price.unpriced`).
        warnings: config
            .warnings
            .iter()
            .filter(|w| w.id != cost::UNPRICED)
            .map(|w| Warning {
                id: w.id,
                key: w.key.clone(),
                at: w.location.as_ref().map(ToString::to_string),
                message: w.message.clone(),
            })
            .collect(),
        aws_environment,
    }
}
