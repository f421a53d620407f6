//! DynamoDB access. One table holds every item type; `keys` names them and the README documents
//! the design.

mod devices;
mod error;
mod governance;
mod jobs;
pub mod keys;
mod ledger;
mod users;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

pub use devices::RegisterDevice;
pub use error::StoreError;
pub use governance::VoteError;
pub use jobs::CancelJob;
pub use ledger::{
    Holding, Movement, MovementError, MovementKind, MovementOutcome, StoredResponse, Wallet,
};
pub use users::{CreateUserError, Credential, LoginRecord, Session, UserFlag};

/// The TTL attribute: epoch seconds after which an item counts as absent.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// Which page of a listing to read: at most `limit` items after the item `after`.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: i32,
    pub after: Option<Uuid>,
}

/// One page of a listing; `next` is where the following page starts, if there may be one.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Uuid>,
}

/// The DynamoDB table and the one client every request of a process shares.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    /// Builds the client once per cold start. `endpoint` points at a local server, which is
    /// given placeholder credentials so that real ones never leave for it.
    pub async fn connect(table: &str, endpoint: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(endpoint) = endpoint {
            loader = loader
                .endpoint_url(endpoint)
                .test_credentials()
                .region(Region::from_static("us-east-1"));
        }
        let sdk_config = loader
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_secs(2))
                    .operation_timeout(Duration::from_secs(5))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .load()
            .await;
        Self {
            client: Client::new(&sdk_config),
            table: table.to_owned(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One cheap read, to tell whether the table answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::health()))
            .send()
            .await?;
        Ok(())
    }
}

fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The id at the end of a sort key (`JOB#<id>`) or of a GSI1 sort key (`<id>`) of a
/// LastEvaluatedKey: where the next page starts.
fn next_page_start(
    last_evaluated_key: Option<&std::collections::HashMap<String, AttributeValue>>,
    attribute: &str,
    prefix: &str,
) -> Result<Option<Uuid>, StoreError> {
    let Some(key) = last_evaluated_key else {
        return Ok(None);
    };
    key.get(attribute)
        .and_then(|value| value.as_s().ok())
        .and_then(|text| text.strip_prefix(prefix))
        .and_then(|id| id.parse().ok())
        .map(Some)
        .ok_or_else(|| StoreError::Unexpected(format!("LastEvaluatedKey without {attribute}")))
}

/// Whether an item's TTL has passed: DynamoDB deletes such items lazily and the local server
/// never does, so every read treats them as absent.
fn expired(item: &std::collections::HashMap<String, AttributeValue>, now: i64) -> bool {
    item.get(TTL_ATTRIBUTE)
        .and_then(|value| value.as_n().ok())
        .and_then(|seconds| seconds.parse::<i64>().ok())
        .is_some_and(|expires_at| expires_at <= now)
}
