//! Everything decided from an error's kind lives in this file, as exhaustive matches
//! without a default arm: adding a kind forces a decision in every table.

use http::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The provider did not recognise the credentials at all.
    CredentialsInvalid,
    CredentialsExpired,
    CredentialsMissing,
    /// Credentials are fine; a permission is missing or denied.
    PermissionDenied,
    /// The account has not been granted access to the model.
    ModelAccess,
    /// The model id needs an inference profile (Bedrock on-demand).
    ModelNeedsProfile,
    ModelNotFound,
    InvalidRequest,
    ContextWindow,
    ContentPolicy,
    Billing,
    RateLimited,
    Overloaded,
    Timeout,
    UpstreamUnavailable,
    Tls,
    ClockSkew,
    /// The gateway's own configuration prevents serving.
    Configuration,
    /// The client did not present a valid gateway key.
    Unauthorized,
    /// The client named a model/alias the gateway does not serve.
    UnknownModel,
    PayloadTooLarge,
    /// A route or method the gateway does not serve.
    NotFound,
    Internal,
}

impl ErrorKind {
    /// Stable machine-readable class: OpenAI `error.code`, the `x-switchyard-error-class`
    /// header and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CredentialsInvalid => "credentials_invalid",
            Self::CredentialsExpired => "credentials_expired",
            Self::CredentialsMissing => "credentials_missing",
            Self::PermissionDenied => "permission_denied",
            Self::ModelAccess => "model_access",
            Self::ModelNeedsProfile => "model_needs_profile",
            Self::ModelNotFound => "model_not_found",
            Self::InvalidRequest => "invalid_request",
            Self::ContextWindow => "context_window",
            Self::ContentPolicy => "content_policy",
            Self::Billing => "billing",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::Timeout => "timeout",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::Tls => "tls",
            Self::ClockSkew => "clock_skew",
            Self::Configuration => "configuration",
            Self::Unauthorized => "unauthorized",
            Self::UnknownModel => "unknown_model",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NotFound => "not_found",
            Self::Internal => "internal",
        }
    }

    /// The status a client SDK maps to the right exception class.
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::CredentialsInvalid | Self::CredentialsExpired | Self::CredentialsMissing => {
                StatusCode::UNAUTHORIZED
            }
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied | Self::ModelAccess => StatusCode::FORBIDDEN,
            Self::ModelNotFound | Self::NotFound => StatusCode::NOT_FOUND,
            Self::ModelNeedsProfile
            | Self::InvalidRequest
            | Self::ContextWindow
            | Self::ContentPolicy
            | Self::Billing
            | Self::UnknownModel => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            // 529 is Anthropic's overloaded status; SDKs retry it and map it to
            // `InternalServerError` / `OverloadedError`.
            Self::Overloaded => StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamUnavailable | Self::Tls | Self::ClockSkew => StatusCode::BAD_GATEWAY,
            Self::Configuration | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `error.type` vocabulary.
    pub fn openai_type(self) -> &'static str {
        match self {
            Self::CredentialsInvalid
            | Self::CredentialsExpired
            | Self::CredentialsMissing
            | Self::Unauthorized => "authentication_error",
            Self::PermissionDenied | Self::ModelAccess => "permission_error",
            Self::ModelNotFound | Self::NotFound => "not_found_error",
            Self::ModelNeedsProfile
            | Self::InvalidRequest
            | Self::ContextWindow
            | Self::ContentPolicy
            | Self::Billing
            | Self::UnknownModel
            | Self::PayloadTooLarge => "invalid_request_error",
            Self::RateLimited => "rate_limit_error",
            Self::Overloaded
            | Self::Timeout
            | Self::UpstreamUnavailable
            | Self::Tls
            | Self::ClockSkew
            | Self::Configuration
            | Self::Internal => "api_error",
        }
    }

    /// Anthropic's `error.type` vocabulary.
    pub fn anthropic_type(self) -> &'static str {
        match self {
            Self::CredentialsInvalid
            | Self::CredentialsExpired
            | Self::CredentialsMissing
            | Self::Unauthorized => "authentication_error",
            Self::PermissionDenied | Self::ModelAccess => "permission_error",
            Self::ModelNotFound | Self::NotFound => "not_found_error",
            Self::ModelNeedsProfile
            | Self::InvalidRequest
            | Self::ContextWindow
            | Self::ContentPolicy
            | Self::UnknownModel => "invalid_request_error",
            Self::Billing => "billing_error",
            Self::PayloadTooLarge => "request_too_large",
            Self::RateLimited => "rate_limit_error",
            Self::Overloaded => "overloaded_error",
            Self::Timeout => "timeout_error",
            Self::UpstreamUnavailable
            | Self::Tls
            | Self::ClockSkew
            | Self::Configuration
            | Self::Internal => "api_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_map_to_the_statuses_sdks_expect() {
        assert_eq!(ErrorKind::Unauthorized.http_status(), 401);
        assert_eq!(ErrorKind::UnknownModel.http_status(), 400);
        assert_eq!(ErrorKind::InvalidRequest.http_status(), 400);
        assert_eq!(ErrorKind::PayloadTooLarge.http_status(), 413);
        assert_eq!(ErrorKind::RateLimited.http_status(), 429);
        assert_eq!(ErrorKind::Overloaded.http_status(), 529);
    }

    #[test]
    fn classes_are_snake_case_and_distinct() {
        use std::collections::HashSet;
        let all = [
            ErrorKind::CredentialsInvalid,
            ErrorKind::CredentialsExpired,
            ErrorKind::CredentialsMissing,
            ErrorKind::PermissionDenied,
            ErrorKind::ModelAccess,
            ErrorKind::ModelNeedsProfile,
            ErrorKind::ModelNotFound,
            ErrorKind::InvalidRequest,
            ErrorKind::ContextWindow,
            ErrorKind::ContentPolicy,
            ErrorKind::Billing,
            ErrorKind::RateLimited,
            ErrorKind::Overloaded,
            ErrorKind::Timeout,
            ErrorKind::UpstreamUnavailable,
            ErrorKind::Tls,
            ErrorKind::ClockSkew,
            ErrorKind::Configuration,
            ErrorKind::Unauthorized,
            ErrorKind::UnknownModel,
            ErrorKind::PayloadTooLarge,
            ErrorKind::NotFound,
            ErrorKind::Internal,
        ];
        let names: HashSet<_> = all.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), all.len());
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    }
}
