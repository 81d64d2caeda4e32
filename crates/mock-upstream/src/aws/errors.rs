//! AWS's error answers: the catalogue of Bedrock errors (code, status, exact message) that tests
//! script, and the restJson1 rendering every AWS JSON error shares (`x-amzn-ErrorType`,
//! `x-amzn-RequestId`, `{"message": …}`). It never decides when an error happens.

use axum::body::Body as HttpBody;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::AwsCall;
use crate::reply::{ApiError, Reply};

/// The namespace in `x-amzn-ErrorType` of errors raised by AWS's front door (authentication).
const CORAL: &str = "com.amazon.coral.service";
/// The namespace of errors raised by Bedrock itself.
const BEDROCK: &str = "com.amazon.bedrock";

/// One AWS error as Bedrock answers it: HTTP status, error code and message.
///
/// Constructors name the catalogue cases (`AWS-xx` in DIAGNOSES.md). Messages may hold
/// placeholders that Bedrock fills in from the call being answered: `{principal}` (the
/// caller's ARN), `{action}` (`bedrock:InvokeModel`, `bedrock:InvokeModelWithResponseStream`
/// or `bedrock:CountTokens`), `{resource}` (the model's ARN in the signed region), `{model}`
/// (the model id as sent, decoded), `{region}` and `{account}`.
///
/// ```no_run
/// # async fn demo(mock: mock_upstream::MockUpstream) {
/// use mock_upstream::AwsError;
/// mock.push(AwsError::not_authorized().into());
/// mock.push(AwsError::throttling().mid_stream(3));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    status: u16,
    code: String,
    message: String,
}

impl AwsError {
    /// Any error: `(429, "ThrottlingException", "Too many requests, …")`.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into() }
    }

    fn of(code: &str, message: &str) -> Self {
        Self::new(status_for(code).unwrap_or(500), code, message)
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// AWS-01: 403 `UnrecognizedClientException` (unknown or garbled access key).
    pub fn unrecognized_client() -> Self {
        Self::of("UnrecognizedClientException", INVALID_TOKEN)
    }

    /// AWS-02: 403 `ExpiredTokenException` (temporary credentials past their expiry).
    pub fn expired_token() -> Self {
        Self::of("ExpiredTokenException", EXPIRED_TOKEN)
    }

    /// AWS-05: 403 `AccessDeniedException`, the caller has no policy allowing the action.
    pub fn not_authorized() -> Self {
        Self::of(
            "AccessDeniedException",
            "User: {principal} is not authorized to perform: {action} on resource: {resource} \
             because no identity-based policy allows the {action} action",
        )
    }

    /// AWS-06: 403 `AccessDeniedException`, an organisation's service control policy denies it.
    pub fn explicit_deny_scp() -> Self {
        Self::of(
            "AccessDeniedException",
            "User: {principal} is not authorized to perform: {action} on resource: {resource} \
             with an explicit deny in a service control policy",
        )
    }

    /// AWS-06: 403 `AccessDeniedException`, an identity-based policy denies it.
    pub fn explicit_deny_identity_policy() -> Self {
        Self::of(
            "AccessDeniedException",
            "User: {principal} is not authorized to perform: {action} on resource: {resource} \
             with an explicit deny in an identity-based policy",
        )
    }

    /// AWS-07: 403 `AccessDeniedException`, model access is not enabled in the region.
    pub fn model_access_denied() -> Self {
        Self::of(
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        )
    }

    /// AWS-08: 403 `AccessDeniedException`, the first-use Marketplace subscription failed.
    pub fn marketplace_subscription_missing() -> Self {
        Self::of(
            "AccessDeniedException",
            "Model access is denied due to IAM user or service role is not authorized to perform \
             the required AWS Marketplace actions (aws-marketplace:ViewSubscriptions, \
             aws-marketplace:Subscribe) to enable access to this model. Refer to the Amazon \
             Bedrock documentation for further details. Your AWS Marketplace subscription for \
             this model cannot be completed at this time. If you recently fixed this issue, try \
             again after 15 minutes.",
        )
    }

    /// AWS-09: 400 `ValidationException`, a bare model id that needs an inference profile
    /// (with AWS's U+2019 in "isn’t").
    pub fn on_demand_not_supported() -> Self {
        Self::of(
            "ValidationException",
            "Invocation of model ID {model} with on-demand throughput isn\u{2019}t supported. \
             Retry your request with the ID or ARN of an inference profile that contains this \
             model.",
        )
    }

    /// AWS-10: 400 `ValidationException`, an unknown model id.
    pub fn invalid_model_identifier() -> Self {
        Self::of("ValidationException", "The provided model identifier is invalid.")
    }

    /// AWS-11: 403 `InvalidSignatureException` (wrong secret for the key id).
    pub fn invalid_signature() -> Self {
        Self::of("InvalidSignatureException", SIGNATURE_MISMATCH)
    }

    /// AWS-15: 429 `ThrottlingException` (requests).
    pub fn throttling() -> Self {
        Self::of("ThrottlingException", "Too many requests, please wait before trying again.")
    }

    /// AWS-15: 429 `ThrottlingException` (tokens).
    pub fn throttling_tokens() -> Self {
        Self::of("ThrottlingException", "Too many tokens, please wait before trying again.")
    }

    /// AWS-16: 503 `ServiceUnavailableException`.
    pub fn service_unavailable() -> Self {
        Self::of(
            "ServiceUnavailableException",
            "The service isn't currently available. Try again later.",
        )
    }

    /// AWS-16: 500 `InternalServerException`.
    pub fn internal_server() -> Self {
        Self::of(
            "InternalServerException",
            "An internal server error occurred. Retry your request.",
        )
    }

    /// AWS-16: 408 `ModelTimeoutException`.
    pub fn model_timeout() -> Self {
        Self::of("ModelTimeoutException", "Processing time exceeded the model timeout length.")
    }

    /// AWS-16: 429 `ModelNotReadyException`.
    pub fn model_not_ready() -> Self {
        Self::of(
            "ModelNotReadyException",
            "Model is not ready to serve inference requests. The AWS SDK will automatically \
             retry the operation up to 5 times.",
        )
    }

    /// AWS-16: 424 `ModelErrorException`.
    pub fn model_error() -> Self {
        Self::of(
            "ModelErrorException",
            "The request failed due to an error while processing the model.",
        )
    }

    /// AWS-16: 424 `ModelStreamErrorException`.
    pub fn model_stream_error() -> Self {
        Self::of("ModelStreamErrorException", "An error occurred while streaming the response.")
    }

    /// AWS-17: 400 `ValidationException` "…prompt is too long: N tokens > M maximum".
    pub fn prompt_too_long(tokens: u64, maximum: u64) -> Self {
        let message = format!(
            "The model returned the following errors: prompt is too long: {tokens} tokens > \
             {maximum} maximum"
        );
        Self::of("ValidationException", &message)
    }

    /// AWS-17: 400 `ValidationException` "Input is too long for requested model."
    pub fn input_too_long() -> Self {
        Self::of("ValidationException", "Input is too long for requested model.")
    }

    /// 400 `ValidationException` with this message.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(400, "ValidationException", message)
    }

    /// 400 `ServiceQuotaExceededException`.
    pub fn service_quota_exceeded() -> Self {
        Self::of(
            "ServiceQuotaExceededException",
            "Your request exceeds the service quota for your account. You can view your quotas \
             at Viewing service quotas. You can resubmit your request later.",
        )
    }

    /// 404 `ResourceNotFoundException`.
    pub fn resource_not_found() -> Self {
        Self::of("ResourceNotFoundException", "The specified resource ARN was not found.")
    }

    /// The scripted reply: an HTTP error, for streaming and non-streaming calls alike.
    pub fn reply(self) -> Reply {
        self.into()
    }

    /// A 200 stream of `Hello world` whose frame number `frames` (0-based) is this error as an
    /// exception frame (`:exception-type` is the code in lower camel case, e.g.
    /// `throttlingException`). A non-streaming call gets it as an HTTP error instead.
    pub fn mid_stream(self, frames: usize) -> Reply {
        Reply::text("Hello world").with_stream_error_after(frames, self.code, self.message)
    }
}

impl From<AwsError> for Reply {
    fn from(error: AwsError) -> Self {
        Reply::error(error.status, error.code, error.message)
    }
}

pub(crate) const INVALID_TOKEN: &str = "The security token included in the request is invalid.";
pub(crate) const EXPIRED_TOKEN: &str = "The security token included in the request is expired";
pub(crate) const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match \
     the signature you provided. Check your AWS Secret Access Key and signing method. Consult \
     the service documentation for details.";

/// The HTTP status of an AWS error code, for the codes the emulation knows.
pub(crate) fn status_for(code: &str) -> Option<u16> {
    Some(match code {
        "ValidationException" | "ServiceQuotaExceededException" => 400,
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "AccessDeniedException"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException" => 403,
        "ResourceNotFoundException" => 404,
        "ModelTimeoutException" => 408,
        "ModelErrorException" | "ModelStreamErrorException" => 424,
        "ThrottlingException" | "ModelNotReadyException" => 429,
        "InternalServerException" => 500,
        "ServiceUnavailableException" => 503,
        _ => return None,
    })
}

/// A scripted error as Bedrock sends it. AWS codes pass through; Anthropic error types (from
/// replies written for the Anthropic emulation) become the Bedrock error with the same meaning.
pub(crate) fn from_reply(error: &ApiError) -> AwsError {
    let code = match error.kind.as_str() {
        "invalid_request_error" | "request_too_large" => "ValidationException",
        "authentication_error" => "UnrecognizedClientException",
        "permission_error" | "billing_error" => "AccessDeniedException",
        "not_found_error" => "ResourceNotFoundException",
        "rate_limit_error" => "ThrottlingException",
        "overloaded_error" => "ServiceUnavailableException",
        "timeout_error" => "ModelTimeoutException",
        "api_error" => "InternalServerException",
        aws => return AwsError::new(error.status, aws, error.message.clone()),
    };
    AwsError::new(status_for(code).unwrap_or(500), code, error.message.clone())
}

/// `throttlingException` for `ThrottlingException`: the event-stream union member name.
pub(crate) fn member_name(code: &str) -> String {
    let mut chars = code.chars();
    chars.next().map(|c| c.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// `x-amzn-ErrorType`'s value: `<Code>:http://internal.amazon.com/coral/<namespace>/`.
pub(crate) fn error_type(code: &str) -> String {
    let namespace = match code {
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException" => CORAL,
        _ => BEDROCK,
    };
    format!("{code}:http://internal.amazon.com/coral/{namespace}/")
}

/// A restJson1 error: the status, `x-amzn-ErrorType`, `x-amzn-RequestId` and `{"message": …}`.
pub(crate) fn json_error(
    call: &AwsCall<'_>,
    error: &AwsError,
    extra: &[(String, String)],
) -> Response {
    let body = json!({ "message": error.message }).to_string();
    let mut response = respond(call, error.status, "application/json", extra, HttpBody::from(body));
    if let Ok(value) = HeaderValue::try_from(error_type(&error.code)) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

/// Assembles a response with `x-amzn-RequestId` and the reply's extra headers. A scripted
/// status or header that HTTP cannot carry becomes a 500 naming it, so the test author sees it.
pub(crate) fn respond(
    call: &AwsCall<'_>,
    status: u16,
    content_type: &'static str,
    extra: &[(String, String)],
    body: HttpBody,
) -> Response {
    let Ok(code) = StatusCode::from_u16(status) else {
        return mistake(call, &format!("status {status} is not a valid HTTP status"));
    };
    let mut response = Response::new(body);
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::try_from(call.request_id()) {
        headers.insert("x-amzn-requestid", id);
    }
    for (name, value) in extra {
        match (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => return mistake(call, &format!("header {name:?}: {value:?} is not valid")),
        }
    }
    response
}

fn mistake(call: &AwsCall<'_>, what: &str) -> Response {
    let error =
        AwsError::new(500, "InternalServerException", format!("mock-upstream: scripted {what}"));
    json_error(call, &error, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_types_become_bedrock_errors() {
        let overloaded =
            ApiError { status: 529, kind: "overloaded_error".into(), message: "Overloaded".into() };
        assert_eq!(
            from_reply(&overloaded),
            AwsError::new(503, "ServiceUnavailableException", "Overloaded")
        );
        let aws =
            ApiError { status: 429, kind: "ThrottlingException".into(), message: "slow".into() };
        assert_eq!(from_reply(&aws), AwsError::new(429, "ThrottlingException", "slow"));
    }

    #[test]
    fn catalogue_entries_carry_aws_statuses() {
        assert_eq!(AwsError::throttling().status(), 429);
        assert_eq!(AwsError::model_not_ready().status(), 429);
        assert_eq!(AwsError::model_error().status(), 424);
        assert_eq!(AwsError::model_timeout().status(), 408);
        assert_eq!(AwsError::on_demand_not_supported().status(), 400);
        assert!(AwsError::on_demand_not_supported().message().contains("isn\u{2019}t"));
        assert_eq!(member_name("ThrottlingException"), "throttlingException");
        assert_eq!(
            error_type("UnrecognizedClientException"),
            "UnrecognizedClientException:http://internal.amazon.com/coral/com.amazon.coral.service/"
        );
    }
}
