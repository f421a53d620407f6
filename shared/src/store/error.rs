use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Unreachable, timed out or throttled after the SDK's retries: worth retrying later.
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    #[error("unexpected DynamoDB answer: {0}")]
    Unexpected(String),
}

const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "ServiceUnavailable",
];

impl<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug> From<SdkError<E, R>>
    for StoreError
{
    fn from(error: SdkError<E, R>) -> Self {
        match &error {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                Self::Unavailable(format!("{error:?}"))
            }
            SdkError::ServiceError(service)
                if RETRYABLE_CODES.contains(&service.err().code().unwrap_or("")) =>
            {
                Self::Unavailable(format!("{:?}", service.err()))
            }
            _ => Self::Unexpected(format!("{error:?}")),
        }
    }
}

impl From<serde_dynamo::Error> for StoreError {
    fn from(error: serde_dynamo::Error) -> Self {
        Self::Unexpected(format!("item (de)serialisation: {error}"))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "DynamoDB unavailable");
                ApiError::Unavailable
            }
            StoreError::Unexpected(reason) => ApiError::Internal(reason),
        }
    }
}
