//! Turns the model name a client asked for into an ordered plan of deployments and runs
//! it: the first deployment that answers serves; each failure is recorded as an attempt.
//!
//! Precompiled from the config once per load; nothing here parses config or wire formats.

mod health;

pub use health::{DeploymentHealth, Failure};

use std::collections::HashMap;
use std::sync::Arc;

use crate::canonical::{ChatRequest, ChatResponse};
use crate::classify::{ApiError, Diagnosis, ErrorKind, UpstreamError};
use crate::config::{Config, Deployment};
use crate::provider::{self, EventStream, Provider};

/// One deployment ready to call.
#[derive(Clone)]
pub struct Target {
    pub deployment: Arc<Deployment>,
    pub provider: Arc<dyn Provider>,
    pub health: Arc<DeploymentHealth>,
}

/// A failed attempt, as reported to the client in headers and error bodies.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub deployment: Arc<Deployment>,
    pub error: UpstreamError,
}

/// A successful answer and how it was obtained.
pub struct Served<T> {
    pub value: T,
    pub deployment: Arc<Deployment>,
    /// The failures before the one that served, in order.
    pub failed: Vec<Attempt>,
}

pub struct Router {
    groups: HashMap<String, Vec<Target>>,
    by_id: HashMap<String, Target>,
    aliases: Vec<String>,
}

impl Router {
    pub fn new(config: &Config) -> Self {
        let mut groups = HashMap::new();
        let mut by_id = HashMap::new();
        let upstreams = provider::Upstreams::new(config);
        for group in &config.groups {
            let targets: Vec<Target> = group
                .deployments
                .iter()
                .map(|d| Target {
                    deployment: d.clone(),
                    provider: provider::for_deployment(d, &upstreams),
                    health: Arc::default(),
                })
                .collect();
            for t in &targets {
                by_id.insert(t.deployment.id.clone(), t.clone());
            }
            groups.insert(group.name.clone(), targets);
        }
        Self { groups, by_id, aliases: config.aliases().map(str::to_owned).collect() }
    }

    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }

    /// Every deployment in config order with what is known of its health.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.aliases.iter().filter_map(|a| self.groups.get(a)).flatten()
    }

    /// The deployments to try for `model`, in order. A deployment id names exactly one.
    pub fn plan(&self, model: &str) -> Result<Vec<Target>, ApiError> {
        if let Some(targets) = self.groups.get(model) {
            return Ok(targets.clone());
        }
        if let Some(target) = self.by_id.get(model) {
            return Ok(vec![target.clone()]);
        }
        Err(unknown_model(model, &self.aliases))
    }

    pub async fn send(&self, req: &ChatRequest) -> Result<Served<ChatResponse>, ApiError> {
        let plan = self.plan(&req.model)?;
        let mut failed = Vec::new();
        for target in plan {
            match target.provider.send(req).await {
                Ok(value) => {
                    target.health.record_success();
                    return Ok(Served { value, deployment: target.deployment, failed });
                }
                Err(error) => {
                    target.health.record_failure(&error);
                    failed.push(Attempt { deployment: target.deployment, error });
                }
            }
        }
        Err(all_failed(&req.model, failed))
    }

    pub async fn stream(&self, req: &ChatRequest) -> Result<Served<EventStream>, ApiError> {
        let plan = self.plan(&req.model)?;
        let mut failed = Vec::new();
        for target in plan {
            match target.provider.stream(req).await {
                Ok(value) => {
                    target.health.record_success();
                    return Ok(Served { value, deployment: target.deployment, failed });
                }
                Err(error) => {
                    target.health.record_failure(&error);
                    failed.push(Attempt { deployment: target.deployment, error });
                }
            }
        }
        Err(all_failed(&req.model, failed))
    }

    /// Input tokens `req` would use, counted by the first deployment of its plan that
    /// can count them. Counting serves nothing, so deployment health is left alone.
    pub async fn count_tokens(&self, req: &ChatRequest) -> Result<Served<u64>, ApiError> {
        let plan = self.plan(&req.model)?;
        let mut failed = Vec::new();
        for target in plan {
            match target.provider.count_tokens(req).await {
                Ok(value) => return Ok(Served { value, deployment: target.deployment, failed }),
                Err(error) => failed.push(Attempt { deployment: target.deployment, error }),
            }
        }
        Err(all_failed(&req.model, failed))
    }
}

/// GW-02: the client named something the gateway does not serve.
pub fn unknown_model(model: &str, aliases: &[String]) -> ApiError {
    let known =
        if aliases.is_empty() { "none are configured".to_owned() } else { aliases.join(", ") };
    ApiError::new(ErrorKind::UnknownModel, format!("Unknown model `{model}`."))
        .with_diagnosis(Diagnosis::new(
            "GW-02",
            format!("No alias or deployment id `{model}` is configured; the aliases are: {known}."),
            format!(
                "Use one of those names as `model`, or add a `model_list` entry with \
                 `model_name: {model}` to the config."
            ),
        ))
        .with_param("model")
}

fn all_failed(model: &str, failed: Vec<Attempt>) -> ApiError {
    // With one attempt its own error is the most useful answer; with several, the last
    // error leads and the message lists every attempt.
    let Some(last) = failed.last() else {
        return ApiError::new(
            ErrorKind::Internal,
            format!("No deployment was tried for `{model}`."),
        );
    };
    let mut message = if failed.len() == 1 {
        format!("{} → {}: {}", model, describe(&last.deployment), last.error.message)
    } else {
        let tried: Vec<String> = failed
            .iter()
            .map(|a| format!("{} ({})", describe(&a.deployment), a.error.kind.as_str()))
            .collect();
        format!(
            "Every deployment of `{model}` failed: {}. Last: {}",
            tried.join("; "),
            last.error.message
        )
    };
    if !message.ends_with('.') {
        message.push('.');
    }
    let mut err = ApiError::new(last.error.kind, message);
    err.diagnosis = last.error.diagnosis.clone();
    err.retry_after = last.error.retry_after;
    err
}

fn describe(d: &Deployment) -> String {
    format!("{}/{}", d.provider.prefix(), d.model)
}
