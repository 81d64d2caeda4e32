//! The adapter for providers this build cannot call yet: every request fails with a
//! configuration error that names the deployment and what does work today.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{EventStream, Provider};
use crate::canonical::{ChatRequest, ChatResponse};
use crate::classify::{Diagnosis, ErrorKind, UpstreamError};
use crate::config::Deployment;

pub struct Unsupported {
    error: UpstreamError,
}

impl Unsupported {
    pub fn new(deployment: &Arc<Deployment>) -> Self {
        let prefix = deployment.provider.prefix();
        let mut error = UpstreamError::new(
            ErrorKind::Configuration,
            format!("provider `{prefix}/` cannot be called by this version of Switchyard"),
        );
        error.diagnosis = Some(Diagnosis::new(
            "CFG-04",
            format!(
                "Deployment {} of alias `{}` ({}) uses a provider this version does not implement.",
                deployment.id, deployment.alias, deployment.model_as_written
            ),
            "Add `mock_response: ...` to its litellm_params to answer without an upstream, \
             or upgrade Switchyard.",
        ));
        Self { error }
    }
}

impl Provider for Unsupported {
    fn send<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, UpstreamError>> {
        let error = self.error.clone();
        Box::pin(async move { Err(error) })
    }

    fn stream<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<EventStream, UpstreamError>> {
        let error = self.error.clone();
        Box::pin(async move { Err(error) })
    }

    fn count_tokens<'a>(&'a self, _: &'a ChatRequest) -> BoxFuture<'a, Result<u64, UpstreamError>> {
        let error = self.error.clone();
        Box::pin(async move { Err(error) })
    }
}
