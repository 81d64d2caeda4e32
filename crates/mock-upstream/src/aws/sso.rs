//! Emulates the SSO portal's `GetRoleCredentials` (`GET /federation/credentials?account_id=…&
//! role_name=…` with `x-amz-sso_bearer_token`), which aws-config's SSO provider calls with the
//! cached access token. Fresh credentials join the registry; it never emulates SSO-OIDC.

use axum::body::Body as HttpBody;
use axum::response::Response;
use serde_json::json;

use super::errors::{AwsError, json_error, respond};
use super::{AwsCall, AwsState, tag};

/// The user an SSO token belongs to, in the role session's name.
const USER: &str = "dev@example.com";

/// Answers one portal call.
pub(crate) fn route(state: &AwsState, call: &AwsCall<'_>) -> Response {
    let query: Vec<(String, String)> =
        form_urlencoded::parse(call.query.unwrap_or_default().as_bytes()).into_owned().collect();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let (Some(account), Some(role)) = (param("account_id"), param("role_name")) else {
        let error = AwsError::new(400, "InvalidRequestException", "Missing required parameter");
        return portal_error(call, &error);
    };
    let mut registry = state.registry();
    let token = call.header("x-amz-sso_bearer_token").unwrap_or_default();
    let Some(grants) = registry.sso_tokens.get(token).filter(|t| !t.expired) else {
        let message = "Session token not found or invalid";
        return portal_error(call, &AwsError::new(401, "UnauthorizedException", message));
    };
    if !grants.grants.iter().any(|(a, r)| a == account && r == role) {
        return portal_error(call, &AwsError::new(403, "ForbiddenException", "No access"));
    }
    let arn = format!(
        "arn:aws:sts::{account}:assumed-role/AWSReservedSSO_{role}_{}/{USER}",
        tag(role).to_lowercase()
    );
    let issued = registry.issue(arn, None);
    let expiration = issued
        .expires_at
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
    let body = json!({ "roleCredentials": {
        "accessKeyId": issued.access_key_id,
        "secretAccessKey": issued.secret_access_key,
        "sessionToken": issued.session_token,
        "expiration": expiration,
    }});
    respond(call, 200, "application/json", &[], HttpBody::from(body.to_string()))
}

/// The portal's errors: `x-amzn-ErrorType` is the bare code (no coral namespace).
fn portal_error(call: &AwsCall<'_>, error: &AwsError) -> Response {
    let mut response = json_error(call, error, &[]);
    if let Ok(value) = error.code().parse() {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}
