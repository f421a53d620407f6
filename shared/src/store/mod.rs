//! DynamoDB access. One table holds every item type; `keys` names them and docs/table-design.md
//! documents the design.

mod api_keys;
mod audit;
mod devices;
mod error;
mod first_reads;
mod governance;
mod jobs;
pub mod keys;
mod ledger;
mod login_attempts;
mod mfa;
mod rate_counters;
mod recovery;
mod round_trip_log;
mod sessions;
mod user_admin;
mod users;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use uuid::Uuid;

use crate::telemetry;

pub use api_keys::{
    CreateApiKeyError, KeyRevocation, KeySession, LAST_USED_INTERVAL, RevokeApiKey, api_key_in,
};
pub use audit::{AuditPage, AuditQuery};
pub use devices::RegisterDevice;
use error::Refusal;
pub use error::StoreError;
pub use first_reads::{
    ApiKeyRead, FirstRead, JobRead, LoginRead, MfaLoginRead, Prefetched, RefreshRead,
    SecondFactorRead, UserRead, VoteRead, WalletRead,
};
pub use governance::{VoteError, proposal_in};
pub use jobs::{CancelJob, job_in};
pub use keys::Key;
pub use ledger::{
    Holding, Movement, MovementError, MovementKind, MovementOutcome, StoredResponse, Wallet,
    wallet_in,
};
pub use login_attempts::{AttemptsWrite, LoginAttempts};
pub use mfa::{
    FAILURE_WINDOW_SECONDS, FactorEnabling, FactorOutcome, FactorState, FactorUse,
    MAX_LOGIN_TOKEN_FAILURES, MAX_SECOND_FACTOR_FAILURES, MFA_LOGIN_SECONDS, MfaLoginState,
    PendingLogin, SecondFactor, SecondFactorFailure, SecondFactorFailures, SecondFactorState,
};
pub use rate_counters::counter_hits;
pub use recovery::{MailCount, NewToken, ResetRecord, Spend, VerificationRecord};
pub use sessions::{
    NewPassword, PasswordChange, Reauthentication, RefreshLookup, RefreshRecord, RefreshState,
    Rotation, SessionRecord, SessionStart, SessionStatus, VerifiedLogin,
};
pub use user_admin::{UserActionError, UserActionOutcome, UserPage, user_in};
pub use users::{CreateUserError, Credential, LoginRecord, LoginState, Session};

/// BatchGetItem may leave keys unprocessed under load; re-ask this many times before giving up.
const BATCH_GET_ATTEMPTS: usize = 3;

pub type Item = std::collections::HashMap<String, AttributeValue>;

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

// A request makes at most two DynamoDB calls one after the other before it can answer (the rate
// limiter's, then the handler's first), so two operation timeouts stay well inside the
// functions' 10-second timeout even when DynamoDB hangs.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// The roots every AWS service endpoint's certificate chains to (Amazon Trust Services), PEM.
const AWS_ROOT_CERTIFICATES: &[u8] = include_bytes!("aws_root_cas.pem");

/// The AWS SDK configuration, loaded once per cold start: bounded timeouts and retries, and TLS
/// that trusts only Amazon's roots (see docs/security.md). `endpoint` points at a local server, which is
/// given placeholder credentials so that real ones never leave for it.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
    if let Some(endpoint) = endpoint {
        loader = loader
            .endpoint_url(endpoint)
            .test_credentials()
            .region(Region::from_static("us-east-1"));
    }
    loader
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(INITIAL_BACKOFF)
                .with_max_backoff(MAX_BACKOFF),
        )
        .load()
        .await
}

/// An HTTPS client trusting Amazon's roots alone, instead of the SDK default's every root the
/// system knows: no certificate files read and parsed at cold start, and no other authority can
/// vouch for an AWS endpoint.
fn https_client() -> SharedHttpClient {
    let trust_store = TrustStore::empty().with_pem_certificate(AWS_ROOT_CERTIFICATES);
    let tls_context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .expect("a trust store alone is a valid TLS context");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls_context)
        .build_https()
}

/// The DynamoDB client of a process; it logs a cost line per round trip when the bench asks for
/// them (`FOG_LOG_COSTS=1`).
pub fn client(sdk_config: &SdkConfig) -> Client {
    let mut config = aws_sdk_dynamodb::config::Builder::from(sdk_config);
    if telemetry::costs_logged() {
        config = config.interceptor(round_trip_log::RoundTripLog);
    }
    Client::from_conf(config.build())
}

impl Store {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
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
            .set_key(Some(keys::health().attributes()))
            .send()
            .await?;
        Ok(())
    }

    /// A query of GSI1 for `user_id`'s items whose sort key starts with `prefix` (their keys,
    /// sessions, devices); the caller adds its filter and order.
    fn owned_items(
        &self,
        user_id: Uuid,
        prefix: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :owner AND begins_with(GSI1SK, :prefix)")
            .expression_attribute_values(":owner", string(keys::user_partition(user_id)))
            .expression_attribute_values(":prefix", string(prefix))
    }

    /// Writes `item` whole, unconditionally.
    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await?;
        Ok(())
    }

    /// Writes `items` in one TransactWriteItems: `Ok(Ok(()))` once committed, `Ok(Err(refusal))`
    /// when a condition refused it (each refused item read back where its write asked for
    /// `ReturnValuesOnConditionCheckFailure::AllOld`), `Err` for any other failure, including a
    /// cancellation for a conflict or throttling (retryable). One round trip.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Refusal>, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(error) => Ok(Err(Refusal::of(error)?)),
        }
    }

    /// Reads items by key in one consistent BatchGetItem (re-asking for any it leaves unprocessed).
    pub async fn get_items(&self, keys: Vec<Key>) -> Result<Vec<Item>, StoreError> {
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(Key::attributes).collect()))
            .consistent_read(true)
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        let mut items = Vec::new();
        for _ in 0..BATCH_GET_ATTEMPTS {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await?;
            if let Some(mut responses) = output.responses {
                items.extend(responses.remove(&self.table).unwrap_or_default());
            }
            match output
                .unprocessed_keys
                .and_then(|mut keys| keys.remove(&self.table))
            {
                Some(unprocessed) if !unprocessed.keys().is_empty() => request = unprocessed,
                _ => return Ok(items),
            }
        }
        Err(StoreError::Unavailable(
            "BatchGetItem left keys unprocessed".into(),
        ))
    }
}

/// The item of `items` that has `key`'s primary key.
fn find<'a>(items: &'a [Item], key: &Key) -> Option<&'a Item> {
    items.iter().find(|item| key.identifies(item))
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
fn expired(item: &Item, now: i64) -> bool {
    item.get(TTL_ATTRIBUTE)
        .and_then(|value| value.as_n().ok())
        .and_then(|seconds| seconds.parse::<i64>().ok())
        .is_some_and(|expires_at| expires_at <= now)
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    use super::AWS_ROOT_CERTIFICATES;

    #[test]
    fn the_sdk_trusts_amazons_roots_alone() {
        let certificates = CertificateDer::pem_slice_iter(AWS_ROOT_CERTIFICATES)
            .collect::<Result<Vec<_>, _>>()
            .expect("the bundle is PEM");
        let mut roots = rustls::RootCertStore::empty();
        assert_eq!(roots.add_parsable_certificates(certificates), (5, 0));
        let names: Vec<&[u8]> = roots
            .roots
            .iter()
            .map(|anchor| anchor.subject.as_ref())
            .collect();
        for (anchor, name) in names.iter().zip([
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ]) {
            assert!(
                anchor
                    .windows(name.len())
                    .any(|part| part == name.as_bytes()),
                "{name} missing"
            );
        }
    }
}
