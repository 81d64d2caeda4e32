//! The `policy` command's engine: the Bedrock deployments of the chosen aliases, each with
//! its region, the account from STS (or `--account`, or a placeholder said as such), and
//! the resources [`policy`](super::policy) derives — gathered into one IAM document.
//!
//! Reads config files and the SSO cache through `credentials`, and calls STS once per
//! credential source until one answers; prints nothing.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::identity::{self, IdentityCheck};
use super::policy::{self, Needs};
use super::regions;
use crate::config::{Config, Env, ProviderKind};
use crate::credentials::{self, AwsEnvironment, Profiles};

#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    /// The IAM policy document.
    pub policy: Value,
    pub account: Option<String>,
    /// `--account`, `sts` (with the identity's ARN), or `placeholder`.
    pub account_source: String,
    pub deployments: Vec<Needs>,
    /// When the geo table was last compared with AWS's documentation.
    pub regions_as_of: &'static str,
}

/// The grant for the Bedrock deployments of `aliases` (all when empty). `account` wins over
/// STS; STS is skipped when `offline`.
pub async fn plan(
    config: &Config,
    env: &dyn Env,
    aliases: &[String],
    account: Option<String>,
    offline: bool,
) -> Grant {
    let aws_env = Arc::new(AwsEnvironment::snapshot(env, &config.env_files));
    let profiles = Profiles::load(&aws_env);
    let chosen: Vec<_> = config
        .groups
        .iter()
        .filter(|g| aliases.is_empty() || aliases.contains(&g.name))
        .flat_map(|g| g.deployments.iter())
        .filter(|d| matches!(d.provider, ProviderKind::Bedrock(_)) && d.mock_response.is_none())
        .collect();
    let (account, account_source) = match account {
        Some(a) => (Some(a), "--account".to_owned()),
        None if offline => (None, "placeholder".to_owned()),
        None => {
            let mut found = (None, "placeholder".to_owned());
            let mut asked: Vec<String> = Vec::new();
            for d in &chosen {
                let key = crate::config::report::credentials_text(d);
                if d.api_key.is_some() || asked.contains(&key) {
                    continue;
                }
                asked.push(key);
                let region = credentials::region(d, &profiles)
                    .map_or_else(|| "us-east-1".to_owned(), |(r, _)| r);
                let checked = identity::check(d, &aws_env, &region, false).await;
                if let Some(IdentityCheck::Known(id)) = checked.identity {
                    found = (Some(id.account), format!("sts ({})", id.arn));
                    break;
                }
            }
            found
        }
    };
    let mut all = Vec::new();
    let deployments: Vec<Needs> = chosen
        .iter()
        .map(|d| {
            let region = credentials::region(d, &profiles).map(|(r, _)| r);
            let (resources, mut notes) =
                policy::resources(&d.model, region.as_deref(), account.as_deref());
            if account.is_none() && resources.iter().any(|r| r.contains(":*:inference-profile/")) {
                notes.push(
                    "the account is unknown (STS did not answer): `*` stands for it in the \
                     inference-profile ARN; pass --account to name it"
                        .to_owned(),
                );
            }
            all.extend(resources.iter().cloned());
            Needs {
                alias: d.alias.clone(),
                deployment: d.id.clone(),
                model: d.model.clone(),
                region,
                resources,
                notes,
            }
        })
        .collect();
    Grant {
        policy: policy::document(&all),
        account,
        account_source,
        deployments,
        regions_as_of: regions::AS_OF,
    }
}
