use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;

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

/// Reasons for which DynamoDB cancels a transaction that may succeed when tried again: a
/// conflict with another transaction, and throttling, which a transaction meets as these
/// reasons rather than as the throttling exceptions of other calls.
const RETRYABLE_CANCELLATION_REASONS: &[&str] = &[
    "TransactionConflict",
    "ProvisionedThroughputExceeded",
    "ThrottlingError",
];

/// The per-item reasons of a transaction cancelled because a condition failed, in the order of
/// its items. Any other failure, including a cancellation for a conflict or for throttling
/// (retryable), comes back as the `StoreError` it is.
pub(super) fn failed_conditions<R: std::fmt::Debug>(
    error: SdkError<TransactWriteItemsError, R>,
) -> Result<Vec<CancellationReason>, StoreError> {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        error.as_service_error()
    {
        let reasons = cancelled.cancellation_reasons();
        if reasons.iter().any(condition_failed) {
            return Ok(reasons.to_vec());
        }
        if reasons.iter().any(|reason| {
            reason
                .code()
                .is_some_and(|code| RETRYABLE_CANCELLATION_REASONS.contains(&code))
        }) {
            return Err(StoreError::Unavailable(format!("{cancelled:?}")));
        }
    }
    Err(error.into())
}

/// Whether a single-item write was refused by its condition expression.
pub(super) fn is_condition_failure<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error
        .as_service_error()
        .is_some_and(|service| service.code() == Some("ConditionalCheckFailedException"))
}

pub(super) fn condition_failed(reason: &CancellationReason) -> bool {
    reason.code() == Some("ConditionalCheckFailed")
}

impl From<time::error::Format> for StoreError {
    fn from(error: time::error::Format) -> Self {
        Self::Unexpected(format!("time formatting: {error}"))
    }
}

impl From<serde_dynamo::Error> for StoreError {
    fn from(error: serde_dynamo::Error) -> Self {
        Self::Unexpected(format!("item (de)serialisation: {error}"))
    }
}
