//! The dashboard at `/ui`: embedded static pages (`assets`) and the JSON API under `/ui/api`
//! they call. `session` signs people in and guards every API route; the page APIs reuse the
//! gateway's own logic (`/health`'s entries, `keys::admin`, the reloader's status).

mod assets;
mod config;
pub(crate) mod data;
mod deployments;
mod keys;
mod refusal;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::{get, patch, post};

use super::AppState;

/// Every `/ui` route, with the security headers on each answer.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let api = Router::new()
        .route("/deployments", get(deployments::list))
        .route("/deployments/{id}/probe", post(deployments::probe))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}", patch(keys::update).delete(keys::delete))
        .route("/keys/{id}/block", post(keys::block))
        .route("/keys/{id}/unblock", post(keys::unblock))
        .route("/teams", get(keys::teams).post(keys::team_create))
        .route("/teams/{id}", patch(keys::team_update).delete(keys::team_delete))
        .route("/teams/{id}/block", post(keys::team_block))
        .route("/teams/{id}/unblock", post(keys::team_unblock))
        .route("/config", get(config::show))
        .merge(data::routes())
        .route_layer(middleware::from_fn_with_state(state, session::require));
    Router::new()
        .route("/ui", get(assets::index))
        .route("/ui/", get(assets::index))
        .route("/ui/assets/{*path}", get(assets::file))
        .route("/ui/api/session", get(session::get).post(session::create).delete(session::delete))
        .nest("/ui/api", api)
        .layer(middleware::map_response(assets::security_headers))
}
