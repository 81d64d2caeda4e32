//! The HTTP server: routes, middleware (request id, access log, auth), graceful shutdown.
//!
//! Handlers stay thin: decode with a surface, run the router, encode with the surface.
//! **Invariant:** nothing here inspects provider payloads or error strings.

mod auth;
mod batch_forward;
pub mod batch_items;
mod batches_api;
mod body;
mod cache_api;
mod cache_hook;
mod chat;
mod embeddings;
mod errors;
mod health;
mod idle;
mod keys_api;
mod ledger_hook;
pub mod listener;
mod message_batches;
mod messages;
mod metrics;
mod model_info;
mod models;
mod multipart;
mod passthrough;
mod readiness;
pub mod reload;
pub(crate) mod request_id;
mod responses;
mod shedding;
mod spend;
mod state;
pub mod tls;
mod ui;

pub use state::{AppState, Runtime};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::response::Response;
use axum::routing::{any, get, post};
use tokio::net::TcpListener;

use crate::classify::{ApiError, ErrorKind};

/// The whole HTTP application for one gateway.
pub fn app(state: Arc<AppState>) -> Router {
    let authenticated = Router::new()
        .route("/health", get(health::health))
        .route("/v1/models", get(models::list))
        .route("/models", get(models::list))
        .route("/v1/models/{*id}", get(models::retrieve))
        .route("/models/{*id}", get(models::retrieve))
        .route("/model/info", get(model_info::info))
        .route("/v1/model/info", get(model_info::info))
        .merge(model_routes(&state))
        .route("/v1/responses/{id}", get(responses::retrieve).delete(responses::delete))
        .route("/responses/{id}", get(responses::retrieve).delete(responses::delete))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/key/generate", post(keys_api::key_generate))
        .route("/key/info", get(keys_api::key_info))
        .route("/key/update", post(keys_api::key_update))
        .route("/key/delete", post(keys_api::key_delete))
        .route("/key/list", get(keys_api::key_list))
        .route("/key/block", post(keys_api::key_block))
        .route("/key/unblock", post(keys_api::key_unblock))
        .route("/key/{key}/regenerate", post(keys_api::key_regenerate))
        .route("/key/regenerate", post(keys_api::key_regenerate_body))
        .route("/team/new", post(keys_api::team_new))
        .route("/team/info", get(keys_api::team_info))
        .route("/team/update", post(keys_api::team_update))
        .route("/team/delete", post(keys_api::team_delete))
        .route("/team/list", get(keys_api::team_list))
        .route("/team/member_add", post(keys_api::team_member_add))
        .route("/user/new", post(keys_api::user_new))
        .route("/user/info", get(keys_api::user_info))
        .route("/customer/new", post(keys_api::customer_new))
        .route("/customer/info", get(keys_api::customer_info))
        .route("/customer/update", post(keys_api::customer_update))
        .route("/customer/delete", post(keys_api::customer_delete))
        .route("/cache/ping", get(cache_api::ping))
        .route("/cache/stats", get(cache_api::stats))
        .route("/cache/delete", post(cache_api::delete))
        .route("/cache/flushall", post(cache_api::flushall))
        .merge(batch_routes())
        .merge(master_routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_key));

    Router::new()
        // Claude Code sends `HEAD /` before its first request to warm the connection.
        .route("/", get(health::root))
        .route("/health/liveliness", get(health::liveliness))
        .route("/health/liveness", get(health::liveliness))
        .route("/health/readiness", get(readiness::readiness))
        // Open unless `require_auth_for_metrics_endpoint` (checked by the handler).
        .route("/metrics", get(metrics::scrape))
        .merge(authenticated)
        .merge(ui::routes(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(request_id::tag_and_log))
        .layer(middleware::from_fn_with_state(state.clone(), readiness::close_while_draining))
        .with_state(state)
}

/// The config and spend over every key: the master key only (KEY-05 for a virtual key). The
/// key, team and cache routes check this in their handlers, which also serve LiteLLM's
/// error wording of their own.
fn master_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/config/reload", post(reload::reload_route))
        .route("/config/status", get(reload::status_route))
        .route("/spend/logs", get(spend::logs))
        .route("/spend/tags", get(spend::tags))
        .route("/global/spend/report", get(spend::report))
        .route("/global/spend/logs", get(spend::global_logs))
        .route_layer(middleware::from_fn(auth::master_only))
}

/// Files, OpenAI batches and Anthropic message batches (`server/batches_api.rs`,
/// `server/message_batches.rs`).
/// The routes that call a model: each takes a slot under `global_max_parallel_requests`
/// for as long as its answer flows (load shedding, LIM-04).
fn model_routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/chat/completions", post(chat::completions))
        .route("/chat/completions", post(chat::completions))
        .route("/v1/embeddings", post(embeddings::create))
        .route("/embeddings", post(embeddings::create))
        .route("/engines/{model}/embeddings", post(embeddings::create_for))
        .route("/openai/deployments/{model}/embeddings", post(embeddings::create_for))
        .route("/v1/responses", post(responses::create))
        .route("/responses", post(responses::create))
        .route("/v1/messages", post(messages::create))
        .route("/anthropic/{*path}", any(passthrough::anthropic))
        .route("/bedrock/{*path}", any(passthrough::bedrock))
        .route_layer(middleware::from_fn_with_state(state.clone(), shedding::admit))
}

fn batch_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/files", post(batches_api::file_create).get(batches_api::file_list))
        .route("/v1/files/{id}", get(batches_api::file_get).delete(batches_api::file_delete))
        .route("/v1/files/{id}/content", get(batches_api::file_content))
        .route("/v1/batches", post(batches_api::batch_create).get(batches_api::batch_list))
        .route("/v1/batches/{id}", get(batches_api::batch_get))
        .route("/v1/batches/{id}/cancel", post(batches_api::batch_cancel))
        .route("/v1/messages/batches", post(message_batches::create).get(message_batches::list))
        .route(
            "/v1/messages/batches/{id}",
            get(message_batches::retrieve).delete(message_batches::delete),
        )
        .route("/v1/messages/batches/{id}/results", get(message_batches::results))
        .route("/v1/messages/batches/{id}/cancel", post(message_batches::cancel))
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
/// finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<Arc<tls::Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // `background_health_checks`: probes on `health_check_interval` while serving.
    let background = health::spawn_background(&state);
    let limits = state.runtime().config.general.listener;
    let served = listener::run(listener, app(state), limits, tls, shutdown).await;
    if let Some(task) = background {
        task.abort();
    }
    served
}

/// A gateway serving in the background of the current tokio runtime, for tests and
/// embedding. Dropping the handle does not stop it; call [`Handle::shutdown`].
pub struct Handle {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Handle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap_or_else(|join| Err(std::io::Error::other(join)))
    }
}

/// Attaches `batches` to `state` and starts its runner (`batch_concurrency` items at once,
/// recorded in the state's ledger); stop it with the handle after the server has drained.
pub fn run_batches(
    state: &Arc<AppState>,
    batches: crate::batches::Batches,
) -> crate::batches::runner::Handle {
    state.set_batches(batches.clone());
    let concurrency = state.runtime().config.general.batch_concurrency;
    let items = batch_items::Items::new(state);
    crate::batches::Runner::new(batches, items, state.ledger().cloned(), concurrency).spawn()
}

/// Cancels the forwarded batch `b` at its upstream through the deployment `config` names
/// (`switchyard batches cancel`, which runs without a gateway), and records what the
/// upstream says of it.
pub async fn cancel_forwarded(
    config: crate::config::Config,
    batches: crate::batches::Batches,
    b: crate::batches::BatchRow,
) -> Result<crate::batches::BatchRow, crate::classify::ApiError> {
    let state = AppState::new(Runtime::new(config));
    state.set_batches(batches);
    batch_forward::cancel(&state, b).await
}

/// Binds `addr` (port 0 for any free port) and serves `runtime` in a background task.
pub async fn start(addr: SocketAddr, runtime: Runtime) -> std::io::Result<Handle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let state = AppState::new(runtime);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state.clone(), None, async move {
        let _ = stopped.await;
    }));
    Ok(Handle { addr, state, stop: Some(stop), task })
}

async fn not_found(req: Request) -> Response {
    let err = ApiError::new(
        ErrorKind::NotFound,
        format!(
            "No route for {} {}. Switchyard serves POST /v1/chat/completions, POST /v1/responses, \
             POST /v1/embeddings, POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models, GET /model/info and the /health \
             endpoints.",
            req.method(),
            req.uri().path()
        ),
    );
    errors::error_response(req.uri().path(), req.headers(), &err)
}

async fn method_not_allowed(method: Method, req: Request) -> Response {
    let err = ApiError::new(
        ErrorKind::InvalidRequest,
        format!("{} is not allowed on {}.", method, req.uri().path()),
    );
    errors::error_response_with_status(
        req.uri().path(),
        req.headers(),
        &err,
        StatusCode::METHOD_NOT_ALLOWED,
    )
}
