//! The `/_mock/aws/*` admin routes: the [`super::Aws`] configuration over HTTP, for another
//! process (the Python SDK suite, via the binary's `--admin`). AWS errors need no route of their
//! own: push `{"error": {"type": "ThrottlingException", "message": "…"}}` (the status follows the
//! code) or `stream_error_after` with an AWS code. Never recorded or counted as calls.
//!
//! - `POST identity` `{access_key_id, secret_access_key, session_token?, arn?}`
//! - `POST bedrock_api_key` `{key, arn?}`; `POST revoke_bedrock_api_key` `{key}`
//! - `POST sso_token` `{token, account_id, role_name}`; `POST expire_sso_token` `{token}`
//! - `POST web_identity_token` `{token}`; `POST role` `{role_arn, external_id?}`
//! - `POST expire` / `POST forget` `{access_key_id}`; `POST temporary_lifetime` `{seconds}`
//! - `GET issued`: the temporary credentials handed out, in order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body as HttpBody;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Aws, AwsIdentity};
use crate::Shared;

/// The path prefix of the AWS admin routes.
pub(crate) const PREFIX: &str = "/_mock/aws/";

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Spec {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    arn: Option<String>,
    key: Option<String>,
    token: Option<String>,
    account_id: Option<String>,
    role_name: Option<String>,
    role_arn: Option<String>,
    external_id: Option<String>,
    seconds: Option<u64>,
}

/// Answers one AWS admin request.
pub(crate) fn route(shared: &Shared, method: &str, path: &str, body: &[u8]) -> Response {
    let aws = Aws { state: &shared.aws };
    let name = path.strip_prefix(PREFIX).unwrap_or_default();
    if (method, name) == ("GET", "issued") {
        return respond(
            StatusCode::OK,
            &Value::Array(aws.issued().iter().map(identity_json).collect()),
        );
    }
    if method != "POST" {
        return problem(StatusCode::NOT_FOUND, &format!("no admin route {method} {path}"));
    }
    let spec: Spec = match serde_json::from_slice(if body.is_empty() { b"{}" } else { body }) {
        Ok(spec) => spec,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("not an AWS spec: {e}")),
    };
    match apply(aws, name, spec) {
        Ok(()) => respond(StatusCode::OK, &json!({})),
        Err("") => problem(StatusCode::NOT_FOUND, &format!("no admin route {method} {path}")),
        Err(missing) => problem(StatusCode::BAD_REQUEST, &format!("{name} needs `{missing}`")),
    }
}

/// Applies one route; `Err` names the missing field (empty: no such route).
fn apply(aws: Aws<'_>, name: &str, spec: Spec) -> Result<(), &'static str> {
    let need = |value: Option<String>, field: &'static str| value.ok_or(field);
    match name {
        "identity" => {
            let key = need(spec.access_key_id, "access_key_id")?;
            let mut identity =
                AwsIdentity::new(key, need(spec.secret_access_key, "secret_access_key")?);
            if let Some(token) = spec.session_token {
                identity = identity.session_token(token);
            }
            if let Some(arn) = spec.arn {
                identity = identity.arn(arn);
            }
            aws.identity(identity);
        }
        "bedrock_api_key" => {
            let key = need(spec.key, "key")?;
            match spec.arn {
                Some(arn) => aws.bedrock_api_key_for(key, arn),
                None => aws.bedrock_api_key(key),
            };
        }
        "revoke_bedrock_api_key" => {
            aws.revoke_bedrock_api_key(&need(spec.key, "key")?);
        }
        "sso_token" => {
            let token = need(spec.token, "token")?;
            let account = need(spec.account_id, "account_id")?;
            aws.sso_token(token, &account, &need(spec.role_name, "role_name")?);
        }
        "expire_sso_token" => {
            aws.expire_sso_token(&need(spec.token, "token")?);
        }
        "web_identity_token" => {
            aws.web_identity_token(need(spec.token, "token")?);
        }
        "role" => {
            aws.role(need(spec.role_arn, "role_arn")?, spec.external_id.as_deref());
        }
        "expire" => {
            aws.expire(&need(spec.access_key_id, "access_key_id")?);
        }
        "forget" => {
            aws.forget(&need(spec.access_key_id, "access_key_id")?);
        }
        "temporary_lifetime" => {
            let seconds = spec.seconds.ok_or("seconds")?;
            aws.temporary_lifetime(Duration::from_secs(seconds));
        }
        _ => return Err(""),
    }
    Ok(())
}

fn identity_json(identity: &AwsIdentity) -> Value {
    let expires = identity.expires_at.and_then(|at| at.duration_since(UNIX_EPOCH).ok());
    json!({
        "access_key_id": identity.access_key_id,
        "secret_access_key": identity.secret_access_key,
        "session_token": identity.session_token,
        "arn": identity.arn,
        "account": identity.account,
        "user_id": identity.user_id,
        "expires_at": expires.map(|d| d.as_secs()),
        "expired": identity.expires_at.is_some_and(|at| at <= SystemTime::now()),
    })
}

fn problem(status: StatusCode, what: &str) -> Response {
    respond(status, &json!({ "error": format!("mock-upstream: {what}") }))
}

fn respond(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(HttpBody::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
