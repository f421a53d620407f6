use crate::domain::FieldError;

/// Every way a request can fail. `http::response::problem` is the one place that turns these into
/// HTTP responses.
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
