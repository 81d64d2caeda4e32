//! Anthropic's Message Batches API as the gateway calls it: through the deployment's own
//! provider (its `api_base`, its key, `anthropic-version`), each upstream refusal turned into
//! a BAT error that says which side refused and what to do. The deployment's key never
//! appears in what is returned: errors carry the upstream's message only.

use axum::http::{HeaderMap, HeaderValue, Method};
use bytes::Bytes;

use crate::batches::forwarded::{Forwarding, UpstreamBatch};
use crate::classify::{ApiError, Diagnosis, ErrorKind};
use crate::provider::Forward;
use crate::router::Target;
use crate::server::AppState;

/// A refused answer is read up to this much for its message.
const ERROR_BODY_CAP: usize = 64 << 10;

/// The Batches API of one deployment.
pub(super) struct Upstream {
    pub target: Target,
}

impl Upstream {
    /// The deployment a forwarded batch went through, as the config has it now.
    pub fn of(state: &AppState, forwarding: &Forwarding) -> Result<Self, ApiError> {
        let runtime = state.runtime();
        let found = runtime.router.targets().find(|t| t.deployment.id == forwarding.deployment);
        match found {
            Some(t) => Ok(Self { target: t.clone() }),
            None => Err(deployment_gone(&forwarding.deployment)),
        }
    }

    pub async fn create(&self, body: Bytes) -> Result<UpstreamBatch, ApiError> {
        let answer = self.call(Method::POST, "v1/messages/batches".to_owned(), body).await?;
        batch_of(answer).await
    }

    pub async fn get(&self, id: &str) -> Result<UpstreamBatch, ApiError> {
        let answer =
            self.call(Method::GET, format!("v1/messages/batches/{id}"), Bytes::new()).await?;
        batch_of(answer).await
    }

    pub async fn cancel(&self, id: &str) -> Result<UpstreamBatch, ApiError> {
        let path = format!("v1/messages/batches/{id}/cancel");
        batch_of(self.call(Method::POST, path, Bytes::new()).await?).await
    }

    pub async fn delete(&self, id: &str) -> Result<(), ApiError> {
        let path = format!("v1/messages/batches/{id}");
        self.call(Method::DELETE, path, Bytes::new()).await.map(|_| ())
    }

    /// The results as the upstream sends them (JSON lines, streamed).
    pub async fn results(&self, id: &str) -> Result<reqwest::Response, ApiError> {
        self.call(Method::GET, format!("v1/messages/batches/{id}/results"), Bytes::new()).await
    }

    async fn call(
        &self,
        method: Method,
        path: String,
        body: Bytes,
    ) -> Result<reqwest::Response, ApiError> {
        let mut headers = HeaderMap::new();
        if !body.is_empty() {
            headers.insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let d = &self.target.deployment;
        let forward = Forward { method, path, headers, body };
        let answer = self
            .target
            .provider
            .forward(forward)
            .await
            .map_err(|e| unavailable(&d.alias, &e.message))?;
        if answer.status().is_success() {
            return Ok(answer);
        }
        let status = answer.status().as_u16();
        let answer_headers = answer.headers().clone();
        let mut answer = answer;
        let mut text = Vec::new();
        while let Ok(Some(chunk)) = answer.chunk().await {
            text.extend_from_slice(&chunk);
            if text.len() > ERROR_BODY_CAP {
                break;
            }
        }
        let error = crate::classify::anthropic_http_error(d, status, &answer_headers, &text, 0);
        Err(match status {
            404 => unknown_upstream(&d.alias, &error.message),
            s if s >= 500 || s == 429 => unavailable(&d.alias, &error.message),
            _ => refused(&d.alias, error.kind, &error.message),
        })
    }
}

async fn batch_of(answer: reqwest::Response) -> Result<UpstreamBatch, ApiError> {
    let bytes = answer.bytes().await.map_err(|e| unavailable("the upstream", &e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        unavailable("the upstream", &format!("its answer is not a message batch ({e})"))
    })
}

/// BAT-07: the Anthropic API refused the batch call (the deployment's key, its workspace's
/// permissions, or the batch itself).
fn refused(alias: &str, kind: ErrorKind, message: &str) -> ApiError {
    ApiError::new(
        kind,
        format!("The Anthropic API refused the message batch call for `{alias}`: {message}"),
    )
    .with_diagnosis(Diagnosis::new(
        "BAT-07",
        "This batch runs at Anthropic's Message Batches API through the deployment's key, and \
         Anthropic refused the call: the key in the deployment's `api_key` is invalid or lacks \
         access, or the request is not one the Batches API takes.",
        "Check the deployment's key (`switchyard doctor` tests it) and the upstream's message \
         above; once fixed, send the request again.",
    ))
}

/// BAT-08: the Anthropic API does not know the batch (any more).
fn unknown_upstream(alias: &str, message: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!(
            "The Anthropic API no longer knows this message batch (through `{alias}`): {message}"
        ),
    )
    .with_diagnosis(Diagnosis::new(
        "BAT-08",
        "The batch was forwarded to Anthropic, which answers 404 for it now: it was deleted \
         there, its results are past Anthropic's 29-day retention, or the deployment's key now \
         belongs to another workspace.",
        "If the batch is gone upstream, delete it here (DELETE /v1/messages/batches/{id}) and \
         create it again; otherwise restore the deployment's original key.",
    ))
}

/// BAT-09: the Anthropic API could not be reached, failed, or the deployment is gone.
fn unavailable(alias: &str, message: &str) -> ApiError {
    ApiError::new(
        ErrorKind::UpstreamUnavailable,
        format!("The Anthropic Batches API did not answer for `{alias}`: {message}"),
    )
    .with_diagnosis(Diagnosis::new(
        "BAT-09",
        "This batch runs at Anthropic's Message Batches API, which could not be reached or \
         failed (a network problem, a 5xx or a rate limit). The batch itself is unaffected.",
        "Retry in a moment; the gateway keeps polling the batch and records its spend when it ends.",
    ))
}

fn deployment_gone(id: &str) -> ApiError {
    ApiError::new(
        ErrorKind::Configuration,
        format!(
            "The deployment `{id}` this message batch was forwarded through is no longer in the config, so the gateway has no key to reach the batch with."
        ),
    )
    .with_diagnosis(Diagnosis::new(
        "BAT-09",
        "A forwarded batch is read and cancelled through the deployment (its `model_info.id`) it \
         was created with; the config no longer has one by that id.",
        "Put the deployment back (the same `model_info.id`, api_base and key) and reload the config.",
    ))
}
