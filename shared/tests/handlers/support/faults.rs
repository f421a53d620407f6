//! Fault injection for in-process tests: an SDK interceptor that numbers the DynamoDB calls a
//! request makes and makes one of them fail, the way it would fail against AWS.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An item's primary key: (PK, SK).
pub type ItemKey = (String, String);

/// How one DynamoDB call fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// No attempt reaches DynamoDB: each one meets a refused connection.
    Unreachable,
    /// The first attempt is executed but its response is lost (a 500 arrives instead, which the
    /// SDK retries); later attempts are unreachable. In AWS the SDK would resend a TransactWriteItems with the same
    /// ClientRequestToken, which DynamoDB deduplicates and the local server does not, so the
    /// executed write is never resent here.
    ResponseLost,
    /// Every attempt is answered with this DynamoDB error code (HTTP 400) without reaching
    /// DynamoDB: throttling, or a conflict with another transaction.
    Refused(&'static str),
    /// Every attempt of a TransactWriteItems is answered TransactionCanceledException with this
    /// reason for its first item (None for the others) without reaching DynamoDB: how DynamoDB
    /// reports a transaction that was throttled or met another one.
    Cancelled(&'static str),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable => f.write_str("unreachable"),
            Self::ResponseLost => f.write_str("response lost"),
            Self::Refused(code) => f.write_str(code),
            Self::Cancelled(reason) => write!(f, "transaction cancelled for {reason}"),
        }
    }
}

/// Every fault the fault tests inject (shared/tests/handlers/faults.rs, and the admin actions' in
/// shared/tests/handlers/admin.rs).
pub const FAULTS: [Fault; 8] = [
    Fault::Unreachable,
    Fault::ResponseLost,
    Fault::Refused("ProvisionedThroughputExceededException"),
    Fault::Refused("ThrottlingException"),
    Fault::Refused("TransactionConflictException"),
    Fault::Cancelled("ProvisionedThroughputExceeded"),
    Fault::Cancelled("ThrottlingError"),
    Fault::Cancelled("TransactionConflict"),
];

/// The rate limiter's calls (its counter's UpdateItem and a BatchGetItem) open every request.
pub const RATE_LIMITER_CALLS: usize = 2;

/// Whether `fault` is injected at call number `call`, a `call_name`. An unreachable DynamoDB,
/// at every call; a lost response, at every write (a read's lost response leaves what an
/// unreachable read leaves); throttling and conflicts, at every call of the handler (the rate
/// limiter's calls take them as any other unavailability, which the unreachable runs cover),
/// and as a transaction's cancellation reasons, at every transaction.
pub fn injected_at(fault: Fault, call: usize, call_name: &str) -> bool {
    match fault {
        Fault::Unreachable => true,
        Fault::ResponseLost => !matches!(call_name, "GetItem" | "BatchGetItem"),
        Fault::Refused(_) => call > RATE_LIMITER_CALLS,
        Fault::Cancelled(_) => call_name == "TransactWriteItems",
    }
}

/// The number of a call among those since the last `observe` or `arm` (1 is the first).
#[derive(Clone, Copy, Debug)]
struct CallNumber(usize);

impl Storable for CallNumber {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug, Default)]
struct Record {
    /// The operation names of the calls, in the order they started.
    calls: Vec<String>,
    fault: Option<(usize, Fault)>,
    /// The attempts the SDK made of the faulty call.
    faulty_attempts: u32,
    /// The keys of the items that write calls named (rate-limit counters aside).
    written_keys: BTreeSet<ItemKey>,
}

/// The interceptor; clones share what they record.
#[derive(Clone, Debug)]
pub struct FaultInjector {
    record: Arc<Mutex<Record>>,
    /// Where a connection is refused: a loopback port nothing listens on.
    closed_endpoint: String,
    /// A loopback server that answers every request with the error its header names.
    refusing_endpoint: String,
}

const ERROR_CODE_HEADER: &str = "x-injected-error-code";
const CANCELLATION_REASON_HEADER: &str = "x-injected-cancellation-reason";
const WRITE_OPERATIONS: &[&str] = &[
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

impl FaultInjector {
    /// Starts the refusing server on the current Tokio runtime.
    pub async fn start() -> Self {
        let closed_port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let refusing = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refusing_port = refusing.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = refusing.accept().await {
                tokio::spawn(answer_with_injected_error(stream));
            }
        });
        Self {
            record: Arc::default(),
            closed_endpoint: format!("http://127.0.0.1:{closed_port}"),
            refusing_endpoint: format!("http://127.0.0.1:{refusing_port}"),
        }
    }

    fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap()
    }

    /// Only counts the calls from now on.
    pub fn observe(&self) {
        *self.record() = Record::default();
    }

    /// Makes call `number` (1 is the next one) fail as `fault`, and counts from now on.
    pub fn arm(&self, number: usize, fault: Fault) {
        *self.record() = Record {
            fault: Some((number, fault)),
            ..Record::default()
        };
    }

    /// The operation names of the calls since the last `observe` or `arm`.
    pub fn calls(&self) -> Vec<String> {
        self.record().calls.clone()
    }

    /// How many attempts the SDK made of the faulty call.
    pub fn faulty_attempts(&self) -> u32 {
        self.record().faulty_attempts
    }

    /// The keys of the items that write calls named since the last `observe` or `arm`,
    /// whether or not the writes happened; rate-limit counters aside.
    pub fn written_keys(&self) -> BTreeSet<ItemKey> {
        self.record().written_keys.clone()
    }

    fn fault_of(&self, cfg: &ConfigBag) -> Option<Fault> {
        let CallNumber(number) = *cfg.load::<CallNumber>()?;
        self.record()
            .fault
            .filter(|(faulty, _)| *faulty == number)
            .map(|(_, fault)| fault)
    }
}

impl Intercept for FaultInjector {
    fn name(&self) -> &'static str {
        "FaultInjector"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map_or("unknown", Metadata::name)
            .to_owned();
        let number = {
            let mut record = self.record();
            record.calls.push(operation);
            record.calls.len()
        };
        cfg.interceptor_state().store_put(CallNumber(number));
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        if cfg
            .load::<Metadata>()
            .is_some_and(|metadata| WRITE_OPERATIONS.contains(&metadata.name()))
        {
            let body: Value = serde_json::from_slice(request.body().bytes().unwrap_or_default())?;
            let mut keys = BTreeSet::new();
            collect_keys(&body, &mut keys);
            keys.retain(|(partition, _)| !partition.starts_with("RATE#"));
            self.record().written_keys.extend(keys);
        }
        let Some(fault) = self.fault_of(cfg) else {
            return Ok(());
        };
        let attempt = {
            let mut record = self.record();
            record.faulty_attempts += 1;
            record.faulty_attempts
        };
        let endpoint = match fault {
            Fault::ResponseLost if attempt == 1 => return Ok(()),
            Fault::Unreachable | Fault::ResponseLost => &self.closed_endpoint,
            Fault::Refused(code) => {
                request.headers_mut().insert(ERROR_CODE_HEADER, code);
                &self.refusing_endpoint
            }
            Fault::Cancelled(reason) => {
                request
                    .headers_mut()
                    .insert(CANCELLATION_REASON_HEADER, reason);
                &self.refusing_endpoint
            }
        };
        request.uri_mut().set_endpoint(endpoint)?;
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.fault_of(cfg) == Some(Fault::ResponseLost) && self.faulty_attempts() == 1 {
            let response = context.response_mut();
            *response.status_mut() = StatusCode::try_from(500)?;
            *response.body_mut() = SdkBody::from(error_body("InternalServerError").to_string());
        }
        Ok(())
    }
}

/// The keys of every item and key in a request body: each object with string `PK` and `SK`.
fn collect_keys(value: &Value, keys: &mut BTreeSet<ItemKey>) {
    match value {
        Value::Object(members) => {
            let string = |name: &str| members.get(name)?.get("S")?.as_str().map(str::to_owned);
            if let (Some(partition), Some(sort)) = (string("PK"), string("SK")) {
                keys.insert((partition, sort));
            }
            members
                .values()
                .for_each(|member| collect_keys(member, keys));
        }
        Value::Array(elements) => elements
            .iter()
            .for_each(|element| collect_keys(element, keys)),
        _ => {}
    }
}

/// A DynamoDB (awsJson1_0) error body.
fn error_body(code: &str) -> Value {
    json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
        "message": "injected",
    })
}

/// The TransactionCanceledException of a transaction of `items` items, the first cancelled for
/// `reason`.
fn cancellation_body(reason: &str, items: usize) -> Value {
    let mut body = error_body("TransactionCanceledException");
    body["CancellationReasons"] = (0..items)
        .map(|index| match index {
            0 => json!({"Code": reason, "Message": "injected"}),
            _ => json!({"Code": "None"}),
        })
        .collect();
    body
}

/// Reads one HTTP request and answers 400 with the error its headers name.
async fn answer_with_injected_error(mut stream: TcpStream) -> std::io::Result<()> {
    let mut received = Vec::new();
    let mut buffer = [0; 8192];
    let (head, body_start) = loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        received.extend_from_slice(&buffer[..read]);
        if let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break (
                String::from_utf8_lossy(&received[..end]).into_owned(),
                end + 4,
            );
        }
    };
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let content_length: usize =
        header("content-length").map_or(0, |length| length.parse().unwrap_or(0));
    while received.len() < body_start + content_length {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        received.extend_from_slice(&buffer[..read]);
    }
    let body = match header(CANCELLATION_REASON_HEADER) {
        Some(reason) => {
            let request: Value =
                serde_json::from_slice(&received[body_start..]).unwrap_or_default();
            let items = request["TransactItems"].as_array().map_or(0, Vec::len);
            cancellation_body(&reason, items)
        }
        None => error_body(&header(ERROR_CODE_HEADER).unwrap_or_default()),
    }
    .to_string();
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
