//! The minimal live request that shows whether a deployment works: "Say: WORKS" with a few
//! output tokens, sent through the deployment's real provider (`send`, or `stream` for the
//! streaming permission), so a failure comes back classified by the one classifier.
//! `doctor` and `/health` both probe with this.
//!
//! Never retries and never falls back: one probe, one answer.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use crate::canonical::{BlockDelta, ChatRequest, ContentBlock, Message, Role, StreamEvent, Usage};
use crate::classify::{Diagnosis, ErrorKind, UpstreamError};
use crate::config::Deployment;
use crate::embedding::{EmbeddingRequest, Input};
use crate::provider::Provider;

/// What every probe asks.
pub const PROMPT: &str = "Say: WORKS";
/// Output tokens a probe may use.
pub const MAX_TOKENS: u32 = 10;
/// How long a probe may take unless `model_info.health_check_timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A probe that got an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub reply: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub latency_ms: u64,
}

/// The probe request for `alias`.
pub fn request(alias: &str, stream: bool) -> ChatRequest {
    ChatRequest {
        model: alias.to_owned(),
        messages: vec![Message { role: Role::User, content: vec![ContentBlock::text(PROMPT)] }],
        max_tokens: Some(MAX_TOKENS),
        stream,
        stream_usage: stream,
        ..ChatRequest::default()
    }
}

/// The probe timeout of a deployment: `model_info.health_check_timeout` (seconds) or 60 s.
pub fn timeout_of(deployment: &Deployment) -> Duration {
    deployment
        .model_info
        .get("health_check_timeout")
        .and_then(serde_json::Value::as_f64)
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// What an embedding probe embeds.
pub const EMBED_WORD: &str = "WORKS";

/// The probe a deployment gets: one word embedded for an embedding model (which cannot chat),
/// else "Say: WORKS".
pub async fn check(
    provider: &dyn Provider,
    deployment: &Deployment,
) -> Result<Answer, UpstreamError> {
    if crate::embedding::only_embeds(deployment) {
        embed(provider, deployment).await
    } else {
        send(provider, deployment).await
    }
}

/// One embedding of one word; the reply says how many dimensions came back.
pub async fn embed(
    provider: &dyn Provider,
    deployment: &Deployment,
) -> Result<Answer, UpstreamError> {
    let req =
        EmbeddingRequest::new(deployment.alias.clone(), Input::Texts(vec![EMBED_WORD.to_owned()]));
    let limit = timeout_of(deployment);
    let started = Instant::now();
    let answer = tokio::time::timeout(limit, provider.embed(&req))
        .await
        .map_err(|_| too_slow(deployment, limit))??;
    let size = answer.vectors.first().map_or(0, Vec::len);
    let usage = Usage { input_tokens: answer.input_tokens, ..Usage::default() };
    Ok(finish(format!("{size} dimensions"), usage, started))
}

/// One non-streaming probe.
pub async fn send(
    provider: &dyn Provider,
    deployment: &Deployment,
) -> Result<Answer, UpstreamError> {
    let req = request(&deployment.alias, false);
    let limit = timeout_of(deployment);
    let started = Instant::now();
    let answer = tokio::time::timeout(limit, provider.send(&req))
        .await
        .map_err(|_| too_slow(deployment, limit))??;
    let reply = answer
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect::<String>();
    Ok(finish(reply, answer.usage, started))
}

/// One streaming probe, read to its end: a failure after the first event counts too.
pub async fn stream(
    provider: &dyn Provider,
    deployment: &Deployment,
) -> Result<Answer, UpstreamError> {
    let req = request(&deployment.alias, true);
    let limit = timeout_of(deployment);
    let started = Instant::now();
    let work = async {
        let mut events = provider.stream(&req).await?;
        let mut reply = String::new();
        let mut usage = Usage::default();
        while let Some(event) = events.next().await {
            match event? {
                StreamEvent::BlockDelta { delta: BlockDelta::Text(t), .. } => reply.push_str(&t),
                StreamEvent::Start { usage: u, .. } => usage.input_tokens = u.input_tokens,
                StreamEvent::Delta { usage: u, .. } => {
                    usage.output_tokens = u.output_tokens;
                    if u.input_tokens > 0 {
                        usage.input_tokens = u.input_tokens;
                    }
                }
                _ => {}
            }
        }
        Ok::<_, UpstreamError>((reply, usage))
    };
    let (reply, usage) =
        tokio::time::timeout(limit, work).await.map_err(|_| too_slow(deployment, limit))??;
    Ok(finish(reply, usage, started))
}

fn finish(reply: String, usage: Usage, started: Instant) -> Answer {
    Answer {
        reply: reply.trim().to_owned(),
        input_tokens: usage.total_input_tokens(),
        output_tokens: usage.output_tokens,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// NET-03 for the probe itself: the provider's own timeouts are longer than the probe's.
fn too_slow(deployment: &Deployment, limit: Duration) -> UpstreamError {
    let mut error = UpstreamError::new(
        ErrorKind::Timeout,
        format!("no answer within the probe's {} s", limit.as_secs_f64()),
    );
    error.diagnosis = Some(Diagnosis::new(
        "NET-03",
        format!(
            "The probe of `{}` ({}/{}) got no answer within {} s (model_info.health_check_timeout, \
             default 60 s).",
            deployment.alias,
            deployment.provider.prefix(),
            deployment.model,
            limit.as_secs_f64()
        ),
        "Check that the upstream is reachable and not overloaded; raise \
         model_info.health_check_timeout if this model is slow to answer.",
    ));
    error
}
