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
    /// Nothing listens at a local upstream's address (a refused connection on loopback): the
    /// server is not running, and trying it again within the request cannot help.
    ServerDown,
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
    /// A budget the request counts against is spent (LiteLLM's `budget_exceeded`).
    BudgetExceeded,
    /// Budgets and rate limits cannot be checked (Redis unreachable, failing closed).
    LimitsUnavailable,
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order: what a class name read back from another replica
    /// can be (`parse`).
    pub const ALL: [ErrorKind; 26] = [
        Self::CredentialsInvalid,
        Self::CredentialsExpired,
        Self::CredentialsMissing,
        Self::PermissionDenied,
        Self::ModelAccess,
        Self::ModelNeedsProfile,
        Self::ModelNotFound,
        Self::InvalidRequest,
        Self::ContextWindow,
        Self::ContentPolicy,
        Self::Billing,
        Self::RateLimited,
        Self::Overloaded,
        Self::Timeout,
        Self::UpstreamUnavailable,
        Self::ServerDown,
        Self::Tls,
        Self::ClockSkew,
        Self::Configuration,
        Self::Unauthorized,
        Self::UnknownModel,
        Self::PayloadTooLarge,
        Self::NotFound,
        Self::BudgetExceeded,
        Self::LimitsUnavailable,
        Self::Internal,
    ];

    /// The kind whose [`ErrorKind::as_str`] is `class`.
    pub fn parse(class: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == class)
    }

    /// Position in [`ErrorKind::ALL`]; an exhaustive match, so a new kind must be placed
    /// (the test checks the list against it).
    #[cfg(test)]
    const fn position(self) -> usize {
        match self {
            Self::CredentialsInvalid => 0,
            Self::CredentialsExpired => 1,
            Self::CredentialsMissing => 2,
            Self::PermissionDenied => 3,
            Self::ModelAccess => 4,
            Self::ModelNeedsProfile => 5,
            Self::ModelNotFound => 6,
            Self::InvalidRequest => 7,
            Self::ContextWindow => 8,
            Self::ContentPolicy => 9,
            Self::Billing => 10,
            Self::RateLimited => 11,
            Self::Overloaded => 12,
            Self::Timeout => 13,
            Self::UpstreamUnavailable => 14,
            Self::ServerDown => 15,
            Self::Tls => 16,
            Self::ClockSkew => 17,
            Self::Configuration => 18,
            Self::Unauthorized => 19,
            Self::UnknownModel => 20,
            Self::PayloadTooLarge => 21,
            Self::NotFound => 22,
            Self::BudgetExceeded => 23,
            Self::LimitsUnavailable => 24,
            Self::Internal => 25,
        }
    }

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
            Self::ServerDown => "server_down",
            Self::Tls => "tls",
            Self::ClockSkew => "clock_skew",
            Self::Configuration => "configuration",
            Self::Unauthorized => "unauthorized",
            Self::UnknownModel => "unknown_model",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NotFound => "not_found",
            Self::BudgetExceeded => "budget_exceeded",
            Self::LimitsUnavailable => "limits_unavailable",
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
            | Self::BudgetExceeded
            | Self::UnknownModel => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            // 529 is Anthropic's overloaded status; SDKs retry it and map it to
            // `InternalServerError` / `OverloadedError`.
            Self::Overloaded => {
                StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
            }
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamUnavailable | Self::ServerDown | Self::Tls | Self::ClockSkew => {
                StatusCode::BAD_GATEWAY
            }
            Self::Configuration | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::LimitsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// OpenAI's `error.code`: the class, except where LiteLLM's clients expect its own
    /// (a budget error and a refused gateway key carry the status as a string).
    pub fn openai_code(self) -> &'static str {
        match self {
            Self::BudgetExceeded => "400",
            Self::Unauthorized => "401",
            _ => self.as_str(),
        }
    }

    /// OpenAI's `error.type` vocabulary; LiteLLM's `auth_error` for a refused gateway key
    /// (scripts written for LiteLLM match on it; the SDKs map the 401 status).
    pub fn openai_type(self) -> &'static str {
        match self {
            Self::Unauthorized => "auth_error",
            Self::CredentialsInvalid | Self::CredentialsExpired | Self::CredentialsMissing => {
                "authentication_error"
            }
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
            Self::BudgetExceeded => "budget_exceeded",
            Self::Overloaded
            | Self::Timeout
            | Self::UpstreamUnavailable
            | Self::ServerDown
            | Self::Tls
            | Self::ClockSkew
            | Self::Configuration
            | Self::LimitsUnavailable
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
            | Self::BudgetExceeded
            | Self::UnknownModel => "invalid_request_error",
            Self::Billing => "billing_error",
            Self::PayloadTooLarge => "request_too_large",
            Self::RateLimited => "rate_limit_error",
            Self::Overloaded => "overloaded_error",
            Self::Timeout => "timeout_error",
            Self::UpstreamUnavailable
            | Self::ServerDown
            | Self::Tls
            | Self::ClockSkew
            | Self::Configuration
            | Self::LimitsUnavailable
            | Self::Internal => "api_error",
        }
    }

    /// The Bedrock Runtime error name (`x-amzn-errortype`, and in lower camel case a stream's
    /// exception member) a Bedrock client expects for this kind.
    pub fn bedrock_exception(self) -> &'static str {
        match self {
            Self::CredentialsInvalid
            | Self::CredentialsExpired
            | Self::CredentialsMissing
            | Self::Unauthorized
            | Self::PermissionDenied
            | Self::ModelAccess
            | Self::Billing => "AccessDeniedException",
            Self::ModelNotFound | Self::NotFound | Self::UnknownModel => {
                "ResourceNotFoundException"
            }
            Self::ModelNeedsProfile
            | Self::InvalidRequest
            | Self::ContextWindow
            | Self::ContentPolicy
            | Self::BudgetExceeded
            | Self::PayloadTooLarge => "ValidationException",
            Self::RateLimited => "ThrottlingException",
            Self::Overloaded
            | Self::UpstreamUnavailable
            | Self::ServerDown
            | Self::LimitsUnavailable => "ServiceUnavailableException",
            Self::Timeout => "ModelTimeoutException",
            Self::Tls | Self::ClockSkew | Self::Configuration | Self::Internal => {
                "InternalServerException"
            }
        }
    }
}

/// What the router does with a deployment after an attempt failed with this kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cooling {
    /// Cool it at once: the next request would fail the same way (bad credentials, a
    /// missing permission, a wrong model id, a rate limit).
    Now,
    /// Count the failure; cool it when it fails more than `allowed_fails` times a minute.
    Counted,
    /// The deployment is fine; the request was at fault.
    Never,
}

/// Where the request may go after an attempt failed with this kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Other deployments of the group, then the group's `fallbacks`/`default_fallbacks`.
    Any,
    /// Only the group's `context_window_fallbacks`.
    ContextWindow,
    /// Only the group's `content_policy_fallbacks`.
    ContentPolicy,
    /// Nowhere: the same request would fail anywhere; answer the client now.
    None,
}

impl ErrorKind {
    /// Whether trying the same deployment again can succeed.
    pub fn is_retryable(self) -> bool {
        match self {
            Self::RateLimited | Self::Overloaded | Self::Timeout | Self::UpstreamUnavailable => {
                true
            }
            Self::CredentialsInvalid
            | Self::CredentialsExpired
            | Self::CredentialsMissing
            | Self::PermissionDenied
            | Self::ModelAccess
            | Self::ModelNeedsProfile
            | Self::ModelNotFound
            | Self::InvalidRequest
            | Self::ContextWindow
            | Self::ContentPolicy
            | Self::Billing
            | Self::ServerDown
            | Self::Tls
            | Self::ClockSkew
            | Self::Configuration
            | Self::Unauthorized
            | Self::UnknownModel
            | Self::PayloadTooLarge
            | Self::NotFound
            | Self::BudgetExceeded
            | Self::LimitsUnavailable
            | Self::Internal => false,
        }
    }

    pub fn cooling(self) -> Cooling {
        match self {
            Self::CredentialsInvalid
            | Self::CredentialsExpired
            | Self::CredentialsMissing
            | Self::PermissionDenied
            | Self::ModelAccess
            | Self::ModelNeedsProfile
            | Self::ModelNotFound
            | Self::Billing
            | Self::RateLimited
            | Self::ServerDown
            | Self::Tls
            | Self::ClockSkew
            | Self::Configuration => Cooling::Now,
            Self::Overloaded | Self::Timeout | Self::UpstreamUnavailable | Self::Internal => {
                Cooling::Counted
            }
            Self::InvalidRequest
            | Self::ContextWindow
            | Self::ContentPolicy
            | Self::Unauthorized
            | Self::UnknownModel
            | Self::PayloadTooLarge
            | Self::BudgetExceeded
            | Self::LimitsUnavailable
            | Self::NotFound => Cooling::Never,
        }
    }

    pub fn fallback(self) -> Fallback {
        match self {
            Self::CredentialsInvalid
            | Self::CredentialsExpired
            | Self::CredentialsMissing
            | Self::PermissionDenied
            | Self::ModelAccess
            | Self::ModelNeedsProfile
            | Self::ModelNotFound
            | Self::Billing
            | Self::RateLimited
            | Self::Overloaded
            | Self::Timeout
            | Self::UpstreamUnavailable
            | Self::ServerDown
            | Self::Tls
            | Self::ClockSkew
            | Self::Configuration
            | Self::Internal => Fallback::Any,
            Self::ContextWindow => Fallback::ContextWindow,
            Self::ContentPolicy => Fallback::ContentPolicy,
            Self::InvalidRequest
            | Self::Unauthorized
            | Self::UnknownModel
            | Self::PayloadTooLarge
            | Self::BudgetExceeded
            | Self::LimitsUnavailable
            | Self::NotFound => Fallback::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_name_parses_back_to_its_kind() {
        for (i, kind) in ErrorKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.position(), i, "{kind:?} is out of place in ALL");
            assert_eq!(ErrorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ErrorKind::parse("no_such_class"), None);
    }

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
    fn credential_and_permission_failures_cool_at_once_and_fall_back_without_retrying() {
        for kind in [
            ErrorKind::CredentialsInvalid,
            ErrorKind::CredentialsExpired,
            ErrorKind::CredentialsMissing,
            ErrorKind::PermissionDenied,
            ErrorKind::ModelAccess,
            ErrorKind::ModelNeedsProfile,
            ErrorKind::ModelNotFound,
            ErrorKind::Billing,
            ErrorKind::ServerDown,
            ErrorKind::Tls,
            ErrorKind::ClockSkew,
            ErrorKind::Configuration,
        ] {
            assert!(!kind.is_retryable(), "{kind:?}");
            assert_eq!(kind.cooling(), Cooling::Now, "{kind:?}");
            assert_eq!(kind.fallback(), Fallback::Any, "{kind:?}");
        }
    }

    #[test]
    fn transient_failures_are_retried_counted_and_fall_back() {
        for kind in [ErrorKind::Overloaded, ErrorKind::Timeout, ErrorKind::UpstreamUnavailable] {
            assert!(kind.is_retryable(), "{kind:?}");
            assert_eq!(kind.cooling(), Cooling::Counted, "{kind:?}");
            assert_eq!(kind.fallback(), Fallback::Any, "{kind:?}");
        }
    }

    #[test]
    fn a_rate_limit_is_retried_and_cools_the_deployment_at_once() {
        assert!(ErrorKind::RateLimited.is_retryable());
        assert_eq!(ErrorKind::RateLimited.cooling(), Cooling::Now);
        assert_eq!(ErrorKind::RateLimited.fallback(), Fallback::Any);
    }

    #[test]
    fn request_faults_never_cool_and_only_special_fallbacks_apply() {
        assert_eq!(ErrorKind::ContextWindow.fallback(), Fallback::ContextWindow);
        assert_eq!(ErrorKind::ContentPolicy.fallback(), Fallback::ContentPolicy);
        for kind in [
            ErrorKind::InvalidRequest,
            ErrorKind::ContextWindow,
            ErrorKind::ContentPolicy,
            ErrorKind::Unauthorized,
            ErrorKind::UnknownModel,
            ErrorKind::PayloadTooLarge,
            ErrorKind::NotFound,
        ] {
            assert!(!kind.is_retryable(), "{kind:?}");
            assert_eq!(kind.cooling(), Cooling::Never, "{kind:?}");
        }
        assert_eq!(ErrorKind::InvalidRequest.fallback(), Fallback::None);
        assert_eq!(ErrorKind::Internal.cooling(), Cooling::Counted);
        assert!(!ErrorKind::Internal.is_retryable());
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
            ErrorKind::ServerDown,
            ErrorKind::Tls,
            ErrorKind::ClockSkew,
            ErrorKind::Configuration,
            ErrorKind::Unauthorized,
            ErrorKind::UnknownModel,
            ErrorKind::PayloadTooLarge,
            ErrorKind::NotFound,
            ErrorKind::BudgetExceeded,
            ErrorKind::LimitsUnavailable,
            ErrorKind::Internal,
        ];
        let names: HashSet<_> = all.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), all.len());
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    }
}
