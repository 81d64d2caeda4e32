//! A deployment the config names but Switchyard cannot call: its provider is not
//! implemented yet, or a variable it reads is unset. The config loads (as in LiteLLM) with
//! a warning; every request to the deployment fails with the configuration error the
//! warning named, so the alias falls back to its other deployments when it has them.

use futures_util::future::BoxFuture;

use super::{EventStream, Provider};
use crate::canonical::{ChatRequest, ChatResponse};
use crate::classify::{Diagnosis, ErrorKind, UpstreamError};
use crate::config::Deployment;
use crate::embedding::{EmbeddingRequest, Embeddings};

pub struct UnservableProvider {
    error: UpstreamError,
}

impl UnservableProvider {
    pub fn new(d: &Deployment) -> Self {
        let who = format!("the deployment of `{}` ({})", d.alias, d.model_as_written);
        let (id, cause, remedy) = match &d.unservable {
            Some(u) => (u.id, u.cause.clone(), u.remedy.clone()),
            None => (
                "CFG-04",
                format!(
                    "model `{}` names a provider Switchyard does not implement",
                    d.model_as_written
                ),
                "use one of the supported provider prefixes (see `switchyard config check`)"
                    .to_owned(),
            ),
        };
        // The diagnosis quotes the message, so the client reads the cause once.
        let mut error = UpstreamError::new(ErrorKind::Configuration, cause.clone());
        error.diagnosis = Some(Diagnosis::new(
            id,
            format!("Requests to {who} cannot be sent: {}", sentence(&cause)),
            // As written for the config warning (it may start with a command: `export …`).
            format!("{remedy}, then reload."),
        ));
        Self { error }
    }
}

fn sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.ends_with('.') { text.to_owned() } else { format!("{text}.") }
}

impl Provider for UnservableProvider {
    fn send<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, UpstreamError>> {
        Box::pin(async move { Err(self.error.clone()) })
    }

    fn stream<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<EventStream, UpstreamError>> {
        Box::pin(async move { Err(self.error.clone()) })
    }

    fn count_tokens<'a>(&'a self, _: &'a ChatRequest) -> BoxFuture<'a, Result<u64, UpstreamError>> {
        Box::pin(async move { Err(self.error.clone()) })
    }

    fn embed<'a>(
        &'a self,
        _: &'a EmbeddingRequest,
    ) -> BoxFuture<'a, Result<Embeddings, UpstreamError>> {
        Box::pin(async move { Err(self.error.clone()) })
    }
}
