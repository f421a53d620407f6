use crate::auth::{AuthError, PasswordError};
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
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
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
        Self::Unauthorized(match error {
            AuthError::Missing => "Not authenticated",
            AuthError::Refused => "Could not validate credentials",
        })
    }
}
