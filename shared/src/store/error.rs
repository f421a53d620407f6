use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::CancellationReason;
use serde::de::DeserializeOwned;
use serde_dynamo::aws_sdk_dynamodb_1::from_item;

use super::Item;

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
fn failed_conditions<R: std::fmt::Debug>(
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

/// A transaction that a condition refused (see `Store::transact`): the per-item reasons, in the
/// order of its items (which is how it prints).
pub(super) struct Refusal(Vec<CancellationReason>);

impl std::fmt::Debug for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Refusal {
    /// The refusal a transaction's failure is, if a condition refused it (`failed_conditions`).
    pub(super) fn of<R: std::fmt::Debug>(
        error: SdkError<TransactWriteItemsError, R>,
    ) -> Result<Self, StoreError> {
        failed_conditions(error).map(Self)
    }

    /// Whether the condition of the transaction's item at `index` failed.
    pub(super) fn failed(&self, index: usize) -> bool {
        self.refused(index).is_some()
    }

    /// Whether the condition of any of the transaction's items in `indices` failed.
    pub(super) fn any_failed(&self, indices: std::ops::Range<usize>) -> bool {
        self.0
            .get(indices)
            .is_some_and(|reasons| reasons.iter().any(condition_failed))
    }

    /// The item at `index` as its refused condition read it back: `None` when that condition
    /// did not fail; `Some(None)` when the item did not exist (or its write did not ask for
    /// `ReturnValuesOnConditionCheckFailure::AllOld`).
    pub(super) fn refused(&self, index: usize) -> Option<Option<&Item>> {
        self.0
            .get(index)
            .filter(|reason| condition_failed(reason))
            .map(CancellationReason::item)
    }

    /// `refused`, the item deserialised.
    pub(super) fn read_back<T: DeserializeOwned>(
        &self,
        index: usize,
    ) -> Result<Option<Option<T>>, StoreError> {
        Ok(self
            .refused(index)
            .map(|item| item.cloned().map(from_item).transpose())
            .transpose()?)
    }

    /// The refusal as an unexpected answer, when none of the conditions the caller expects to
    /// fail did: `<message>: <reasons>`.
    pub(super) fn unexpected(&self, message: &str) -> StoreError {
        StoreError::Unexpected(format!("{message}: {self:?}"))
    }
}

/// A single-item conditional write's answer: its output, or `None` when its condition refused it.
pub(super) fn unless_refused<O, E, R>(
    result: Result<O, SdkError<E, R>>,
) -> Result<Option<O>, StoreError>
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match result {
        Ok(output) => Ok(Some(output)),
        Err(error) if is_condition_failure(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// A conditional UpdateItem's answer: its output, or, when its condition refused it, the item as
/// it was (read back with `ReturnValuesOnConditionCheckFailure::AllOld`; `None` when it did not
/// exist).
pub(super) fn update_or_read_back<R: std::fmt::Debug>(
    result: Result<UpdateItemOutput, SdkError<UpdateItemError, R>>,
) -> Result<Result<UpdateItemOutput, Option<Item>>, StoreError> {
    match result {
        Ok(output) => Ok(Ok(output)),
        Err(error) => match error.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                Ok(Err(failed.item().cloned()))
            }
            _ => Err(error.into()),
        },
    }
}

/// Whether a single-item write was refused by its condition expression.
fn is_condition_failure<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error
        .as_service_error()
        .is_some_and(|service| service.code() == Some("ConditionalCheckFailedException"))
}

fn condition_failed(reason: &CancellationReason) -> bool {
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
