use crate::auth::{AuthError, PasswordError, TokenFault};
use crate::domain::{FieldError, ValidationError};
use crate::store::StoreError;

/// Every way a request can fail, as HTTP sees it. The lower layers' errors become these here (the
/// `From` impls below), and `http::response::problem` is the one place that turns these into
/// responses.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("Invalid fields: {}", .0.iter().map(|error| error.field.as_str()).collect::<Vec<_>>().join(", "))]
    Validation(Vec<FieldError>),
    /// Answered with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A bearer token refused: answered 401 with `WWW-Authenticate: Bearer
    /// error="invalid_token"` (RFC 6750, section 3.1), saying when it expired.
    #[error("{}", match .0 {
        TokenFault::Expired => "Token has expired",
        TokenFault::Invalid => "Could not validate credentials",
    })]
    InvalidToken(TokenFault),
    /// An API key that is malformed, unknown, revoked or expired, or whose owner is inactive:
    /// answered 401 with `WWW-Authenticate: ApiKey`.
    #[error("Invalid API key")]
    InvalidApiKey,
    #[error("{0}")]
    Forbidden(String),
    /// A valid token whose sign-in is too old for the action: answered 403 with RFC 9470's
    /// challenge, `WWW-Authenticate: Bearer error="insufficient_user_authentication",
    /// max_age=<max_age_seconds>`.
    #[error("{detail}")]
    ReauthenticationRequired {
        max_age_seconds: i64,
        detail: String,
    },
    #[error("{0}")]
    NotFound(String),
    /// A known path asked with a method none of its routes takes: answered 405 with `Allow`.
    #[error("{method} is not allowed on {path}, which takes {}", .allowed.join(", "))]
    MethodNotAllowed {
        method: String,
        path: &'static str,
        allowed: Vec<&'static str>,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("Request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// Answered 429 with `Retry-After` and the `error`/`retry_after` members the frontend reads.
    #[error("{detail}")]
    RateLimited {
        retry_after_seconds: u64,
        detail: String,
    },
    /// A username locked by failed logins (`ratelimit::lockout`), known or not: answered 423 with
    /// `Retry-After` and `retry_after`, in the old backend's words (whole minutes, rounded up).
    #[error(
        "Account locked due to too many failed attempts. Try again in {} minutes.",
        .retry_after_seconds.div_ceil(60)
    )]
    Locked { retry_after_seconds: u64 },
    /// A dependency (DynamoDB) could not be reached in time; the client may retry.
    #[error("Service temporarily unavailable, retry shortly")]
    Unavailable,
    /// A bug or an unexpected answer from a dependency. The message is logged, never sent.
    #[error("Internal server error")]
    Internal(String),
}

impl ApiError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::Validation(error.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "DynamoDB unavailable");
                Self::Unavailable
            }
            StoreError::Unexpected(reason) => Self::Internal(reason),
        }
    }
}

impl From<time::error::Format> for ApiError {
    fn from(error: time::error::Format) -> Self {
        Self::Internal(format!("time formatting: {error}"))
    }
}

impl From<PasswordError> for ApiError {
    fn from(error: PasswordError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Missing => Self::Unauthorized("Not authenticated"),
            AuthError::Refused => Self::InvalidToken(TokenFault::Invalid),
            AuthError::Expired => Self::InvalidToken(TokenFault::Expired),
            AuthError::InvalidKey => Self::InvalidApiKey,
            AuthError::MissingScope(_) | AuthError::KeysRefused | AuthError::EmailUnverified => {
                Self::Forbidden(error.to_string())
            }
            AuthError::BothCredentials => Self::BadRequest(error.to_string()),
            AuthError::SignInTooOld { max_age_seconds } => Self::ReauthenticationRequired {
                max_age_seconds,
                detail: error.to_string(),
            },
            AuthError::Unavailable => Self::Unavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::Scope;

    #[test]
    fn auth_errors_become_401_403_and_400() {
        assert!(matches!(
            ApiError::from(AuthError::Missing),
            ApiError::Unauthorized(_)
        ));
        assert!(matches!(
            ApiError::from(AuthError::Refused),
            ApiError::InvalidToken(TokenFault::Invalid)
        ));
        assert!(matches!(
            ApiError::from(AuthError::Expired),
            ApiError::InvalidToken(TokenFault::Expired)
        ));
        assert!(matches!(
            ApiError::from(AuthError::InvalidKey),
            ApiError::InvalidApiKey
        ));
        let ApiError::Forbidden(detail) = ApiError::from(AuthError::MissingScope(Scope::JobsWrite))
        else {
            panic!("a missing scope is 403")
        };
        assert!(detail.contains("jobs:write"), "{detail}");
        assert!(matches!(
            ApiError::from(AuthError::KeysRefused),
            ApiError::Forbidden(_)
        ));
        assert!(matches!(
            ApiError::from(AuthError::BothCredentials),
            ApiError::BadRequest(_)
        ));
        assert!(matches!(
            ApiError::from(AuthError::Unavailable),
            ApiError::Unavailable
        ));
        let ApiError::ReauthenticationRequired {
            max_age_seconds,
            detail,
        } = ApiError::from(AuthError::SignInTooOld {
            max_age_seconds: 600,
        })
        else {
            panic!("a sign-in too old is its own 403")
        };
        assert_eq!(max_age_seconds, 600);
        assert!(detail.contains("10 minutes"), "{detail}");
        assert!(detail.contains("POST /api/auth/reauthenticate"), "{detail}");
    }
}
