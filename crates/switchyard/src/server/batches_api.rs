//! OpenAI's Files and Batches routes (`/v1/files*`, `/v1/batches*`) over the batch store.
//! A file or batch belongs to the key that created it: other virtual keys get 404 for it,
//! the master key sees everything. Errors are OpenAI-shaped with a BAT catalog id.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::body::read_limited;
use super::multipart;
use crate::batches::model::{self, BatchRow, FileRow, Status, Surface};
use crate::batches::{Batches, Page, input, wire};
use crate::classify::{ApiError, Diagnosis, ErrorKind};
use crate::keys::Identity;
use crate::ledger::StoreError;
use crate::surface::openai::error_response as fail;

/// How long a batch may take (OpenAI's only `completion_window`).
pub const WINDOW: &str = "24h";
const WINDOW_SECS: i64 = 24 * 3600;

/// Who is asking: the key's token (its sha256 hex), or `None` for the master key (and a
/// gateway without one), which sees every batch.
pub(super) fn owner(req_identity: Option<&Identity>) -> Option<String> {
    req_identity.map(|i| i.key.token.clone())
}

/// [`owner`] as a handler argument.
pub struct Owner(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Owner {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(owner(parts.extensions.get::<Identity>())))
    }
}

/// An answer rendered by `render`, or the error in OpenAI's shape.
fn reply<T>(result: Result<T, ApiError>, render: impl FnOnce(T) -> Value) -> Response {
    match result {
        Ok(value) => ok(&render(value)),
        Err(err) => fail(&err),
    }
}

/// Whether `owner` may see something `row_owner` created.
pub(super) fn visible(owner: Option<&str>, row_owner: &str) -> bool {
    owner.is_none_or(|o| o == row_owner)
}

/// BAT-05: no batch store in this process.
pub(super) fn unavailable() -> ApiError {
    ApiError::new(
        ErrorKind::Configuration,
        "Batches are not available on this gateway: it has no state directory or database to keep them in.",
    )
    .with_diagnosis(Diagnosis::new(
        "BAT-05",
        "The batch store could not be opened when the gateway started (its log says why).",
        "Give the gateway a writable state directory (--state-dir) or a database_url, and restart it.",
    ))
}

/// BAT-06: the store did not answer.
pub(super) fn store_failed(err: &StoreError) -> ApiError {
    ApiError::new(ErrorKind::UpstreamUnavailable, format!("The batch store did not answer: {err}."))
        .with_diagnosis(Diagnosis::new(
            "BAT-06",
            "The database that holds files and batches cannot be reached or refused the query.",
            "Check that the database in database_url is up (or the state directory is writable), then retry.",
        ))
}

/// BAT-03: nothing by that id that this key may see.
pub(super) fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("No {what} with id `{id}` was found."))
        .with_diagnosis(Diagnosis::new(
            "BAT-03",
            format!("No {what} `{id}` exists that this key may see: a {what} is visible only to the key that created it and to the master key."),
            format!(
                "Check the id (`GET {}` lists the ones this key may see), and use the key that created it.",
                match what {
                    "file" => "/v1/files",
                    "message batch" => "/v1/messages/batches",
                    _ => "/v1/batches",
                }
            ),
        ))
}

/// BAT-04: the request does not fit the file's or batch's state or kind.
pub(super) fn refused(message: String, remedy: &str, param: Option<&str>) -> ApiError {
    ApiError::invalid_request(message, param).with_diagnosis(Diagnosis::new(
        "BAT-04",
        "Files and batches allow only what their kind and state permit (a batch that ended cannot be cancelled, results wait for its end).",
        remedy,
    ))
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(super) fn ok(value: &Value) -> Response {
    json_response(StatusCode::OK, value)
}

fn batches(state: &AppState) -> Result<&Batches, ApiError> {
    state.batches().ok_or_else(unavailable)
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    limit: Option<i64>,
    after: Option<String>,
    purpose: Option<String>,
}

fn limit(requested: Option<i64>, default: i64) -> i64 {
    requested.unwrap_or(default).clamp(1, 10_000)
}

fn list(data: Vec<Value>, more: bool) -> Value {
    let id = |v: Option<&Value>| v.and_then(|v| v.get("id")).cloned().unwrap_or(Value::Null);
    json!({
        "object": "list",
        "first_id": id(data.first()),
        "last_id": id(data.last()),
        "has_more": more,
        "data": data,
    })
}

/// `POST /v1/files`: a `batch` file (JSONL), kept in the store.
pub async fn file_create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    match file_upload(&state, req).await {
        Ok(file) => ok(&wire::file_object(&file)),
        Err(err) => fail(&err),
    }
}

async fn file_upload(state: &AppState, req: Request) -> Result<FileRow, ApiError> {
    let batches = batches(state)?;
    let (parts, body) = req.into_parts();
    let owner = owner(parts.extensions.get::<Identity>()).unwrap_or_default();
    let bytes = read_limited(&parts.headers, body, state.runtime().max_body_bytes).await?;
    let content_type =
        parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let fields = multipart::parse(content_type, &bytes).map_err(|why| {
        refused(format!("The upload cannot be read: {why}."), "Send the file as multipart/form-data with a `file` part and `purpose=batch`, as the OpenAI SDKs do.", None)
    })?;
    let purpose = fields
        .iter()
        .find(|p| p.name == "purpose")
        .map(|p| String::from_utf8_lossy(&p.data).trim().to_owned())
        .unwrap_or_default();
    if purpose != "batch" {
        return Err(refused(
            format!(
                "Files with purpose `{purpose}` are not kept: this gateway stores batch input files only."
            ),
            "Upload the file with purpose=batch.",
            Some("purpose"),
        ));
    }
    let file = fields.iter().find(|p| p.name == "file").ok_or_else(|| {
        refused(
            "The upload has no `file` part.".to_owned(),
            "Send the JSONL file in a part named `file`.",
            Some("file"),
        )
    })?;
    let content = std::str::from_utf8(&file.data).map_err(|_| {
        refused(
            "The file is not UTF-8 text; a batch input file is JSON lines.".to_owned(),
            "Upload the JSONL file as written (UTF-8), one request per line.",
            Some("file"),
        )
    })?;
    let row = FileRow {
        id: model::new_id("file-"),
        owner,
        filename: file.filename.clone().unwrap_or_else(|| "upload.jsonl".to_owned()),
        purpose,
        bytes: i64::try_from(file.data.len()).unwrap_or(i64::MAX),
        created_at: model::now(),
    };
    batches.store.insert_file(&row, content).await.map_err(|e| store_failed(&e))?;
    Ok(row)
}

async fn visible_file(state: &AppState, id: &str, who: Option<&str>) -> Result<FileRow, ApiError> {
    let store = &batches(state)?.store;
    match store.file(id).await.map_err(|e| store_failed(&e))? {
        Some(f) if visible(who, &f.owner) => Ok(f),
        _ => Err(not_found("file", id)),
    }
}

/// `GET /v1/files`.
pub async fn file_list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
    Owner(who): Owner,
) -> Response {
    let page = Page { after: q.after.as_deref(), before: None, limit: limit(q.limit, 10_000) };
    let result = match batches(&state) {
        Ok(b) => b.store.list_files(who.as_deref(), q.purpose.as_deref(), &page).await,
        Err(err) => return fail(&err),
    };
    let result = result.map_err(|e| store_failed(&e));
    reply(result, |(files, more)| list(files.iter().map(wire::file_object).collect(), more))
}

/// `GET /v1/files/{id}`.
pub async fn file_get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Owner(who): Owner,
) -> Response {
    reply(visible_file(&state, &id, who.as_deref()).await, |f| wire::file_object(&f))
}

/// `GET /v1/files/{id}/content`: the file as uploaded (or written by a batch).
pub async fn file_content(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Owner(who): Owner,
) -> Response {
    let result = async {
        visible_file(&state, &id, who.as_deref()).await?;
        let store = &batches(&state)?.store;
        store
            .file_content(&id)
            .await
            .map_err(|e| store_failed(&e))?
            .ok_or_else(|| not_found("file", &id))
    }
    .await;
    match result {
        Ok(content) => {
            let mut response = Response::new(Body::from(content));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            response
        }
        Err(err) => fail(&err),
    }
}

/// `DELETE /v1/files/{id}`.
pub async fn file_delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Owner(who): Owner,
) -> Response {
    let result = async {
        visible_file(&state, &id, who.as_deref()).await?;
        batches(&state)?.store.delete_file(&id).await.map_err(|e| store_failed(&e))
    }
    .await;
    reply(result, |_| json!({"id": id, "object": "file", "deleted": true}))
}

#[derive(Debug, Deserialize)]
struct CreateBatch {
    input_file_id: Option<String>,
    endpoint: Option<String>,
    completion_window: Option<String>,
    metadata: Option<Value>,
}

/// `POST /v1/batches`: the input file's lines become queued items. A file with malformed
/// lines makes a `failed` batch whose `errors` name each line, as OpenAI does.
pub async fn batch_create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    reply(create(&state, req).await, |b| wire::openai_batch(&b))
}

async fn create(state: &AppState, req: Request) -> Result<BatchRow, ApiError> {
    let batches = batches(state)?;
    let (parts, body) = req.into_parts();
    let identity = parts.extensions.get::<Identity>();
    let owner = owner(identity);
    let bytes = read_limited(&parts.headers, body, state.runtime().max_body_bytes).await?;
    let asked: CreateBatch = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::invalid_request(
            format!("The request body is not a valid batch request: {e}"),
            None,
        )
    })?;
    let endpoint = asked.endpoint.unwrap_or_default();
    if !input::OPENAI_ENDPOINTS.contains(&endpoint.as_str()) {
        return Err(refused(
            format!(
                "Batches run {} only, not `{endpoint}`.",
                input::OPENAI_ENDPOINTS.join(" and ")
            ),
            "Set endpoint to /v1/chat/completions or /v1/responses (and the same url on every line).",
            Some("endpoint"),
        ));
    }
    let window = asked.completion_window.unwrap_or_else(|| WINDOW.to_owned());
    if window != WINDOW {
        return Err(refused(
            format!("completion_window `{window}` is not supported: a batch has 24 hours."),
            "Set completion_window to \"24h\".",
            Some("completion_window"),
        ));
    }
    let file_id = asked.input_file_id.unwrap_or_default();
    let file = visible_file(state, &file_id, owner.as_deref()).await?;
    let content = batches
        .store
        .file_content(&file.id)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(|| not_found("file", &file_id))?;
    let now = model::now();
    let mut b =
        BatchRow::new(model::new_id("batch_"), Surface::OpenAi, &endpoint, now, WINDOW_SECS);
    owned_by(&mut b, identity);
    b.input_file_id = Some(file.id.clone());
    b.completion_window = window;
    b.metadata = asked.metadata.filter(|m| !m.is_null());
    let items = match input::openai_lines(&content, &endpoint) {
        Ok(items) => items,
        Err(errors) => {
            b.status = Status::Failed;
            b.in_progress_at = None;
            b.failed_at = Some(now);
            b.errors = Some(Value::Array(errors.iter().map(input::LineError::to_json).collect()));
            Vec::new()
        }
    };
    batches.store.create_batch(&b, &items).await.map_err(|e| store_failed(&e))?;
    batches.wake();
    let store = &batches.store;
    store.batch(&b.id).await.map_err(|e| store_failed(&e))?.ok_or_else(|| not_found("batch", &b.id))
}

/// The batch belongs to the key that asks (the master key's: no owner).
pub(super) fn owned_by(b: &mut BatchRow, identity: Option<&Identity>) {
    b.owner = owner(identity).unwrap_or_default();
    b.owner_alias = identity.and_then(|i| i.key.key_alias.clone());
}

/// The batch `id` if `who` may see it and it was made through `surface`'s API.
pub(super) async fn visible_batch(
    state: &AppState,
    id: &str,
    who: Option<&str>,
    surface: Surface,
) -> Result<BatchRow, ApiError> {
    let store = &batches(state)?.store;
    match store.batch(id).await.map_err(|e| store_failed(&e))? {
        Some(b) if b.surface == surface && visible(who, &b.owner) => Ok(b),
        _ => Err(not_found(if surface == Surface::OpenAi { "batch" } else { "message batch" }, id)),
    }
}

/// `GET /v1/batches/{id}`.
pub async fn batch_get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Owner(who): Owner,
) -> Response {
    reply(visible_batch(&state, &id, who.as_deref(), Surface::OpenAi).await, |b| {
        wire::openai_batch(&b)
    })
}

/// `GET /v1/batches`: newest first, `after` a batch id, `limit` 1..100 (default 20).
pub async fn batch_list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
    Owner(who): Owner,
) -> Response {
    let page = Page { after: q.after.as_deref(), before: None, limit: limit(q.limit, 20).min(100) };
    let Ok(store) = batches(&state).map(|b| &b.store) else { return fail(&unavailable()) };
    let result = store.list_batches(who.as_deref(), Some(Surface::OpenAi), &page).await;
    let result = result.map_err(|e| store_failed(&e));
    reply(result, |(rows, more)| list(rows.iter().map(wire::openai_batch).collect(), more))
}

/// Cancels a batch `who` may see; BAT-04 when it has already ended.
pub(super) async fn cancel(
    state: &AppState,
    id: &str,
    who: Option<&str>,
    surface: Surface,
) -> Result<BatchRow, ApiError> {
    let b = visible_batch(state, id, who, surface).await?;
    let b = super::batch_forward::refresh(state, b).await?;
    if !b.status.is_open() {
        return Err(refused(
            format!(
                "The batch `{id}` has already ended (status {}); there is nothing to cancel.",
                b.status.as_str()
            ),
            "Read its results instead.",
            None,
        ));
    }
    if b.is_forwarded() {
        return super::batch_forward::cancel(state, b).await;
    }
    let batches = batches(state)?;
    batches.cancel(id).await.map_err(|e| store_failed(&e))?.ok_or_else(|| not_found("batch", id))
}

/// `POST /v1/batches/{id}/cancel`.
pub async fn batch_cancel(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Owner(who): Owner,
) -> Response {
    reply(cancel(&state, &id, who.as_deref(), Surface::OpenAi).await, |b| wire::openai_batch(&b))
}
