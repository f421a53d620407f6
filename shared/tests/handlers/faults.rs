//! Failure at every step of every multi-step write, and throttling. Each write runs once with
//! its DynamoDB calls counted; then, for each fault and each call in turn, it runs again on
//! fresh data with that call failing. Afterwards the items it may touch have undergone none of
//! its effect or all of it; the answer is 503 with Retry-After (or the success, where the rate
//! limiter fails open), never a 500, within the function's timeout, after at most the SDK's
//! three attempts. Then the same request is sent again without the fault: it succeeds (a
//! movement's Idempotency-Key answers from its record), or, for a write without a key that did
//! take effect, answers what is now so (400 username taken, 409 already voted or cancelled).
//! Either way the effect is then applied exactly once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::support::faults::{
    FAULTS, Fault, FaultInjector, ItemKey, RATE_LIMITER_CALLS, injected_at,
};
use crate::support::{EventBuilder, PASSWORD, TestApp, TestResponse, event, unique_username};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use serde_json::json;
use shared::domain::{
    Actor, ApiKey, AuditEventType, Job, JobStatus, NewApiKey, Proposal, SlaTier, User,
};
use shared::handlers;
use shared::routes::Scope;
use shared::store::keys::{self, Key};
use time::OffsetDateTime;
use uuid::Uuid;

/// The functions' timeout (template.yaml).
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);

/// How many attempts the SDK makes of a call that keeps failing: its maximum of three
/// (shared/src/store), or one for an error it does not retry.
fn attempts(fault: Fault) -> u32 {
    match fault {
        Fault::Refused("TransactionConflictException") | Fault::Cancelled(_) => 1,
        _ => 3,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Register,
    /// One session's logout: its token revoked and its session ended.
    Logout,
    /// `logout?all=true`: every session of the user.
    LogoutAll,
    /// A refresh token's rotation.
    Refresh,
    /// A refresh token revoked: its session ended, with its `token.revoked` event.
    Revoke,
    ChangePassword,
    /// A password change with `revoke_api_keys`: every active key revoked in its transaction.
    ChangePasswordRevokingKeys,
    Transfer,
    /// A transfer sent again with the Idempotency-Key of one that succeeded.
    TransferReplay,
    Stake,
    Unstake,
    /// An unstake of stake beside what a vote locks.
    UnstakeBesideLock,
    Mint,
    Vote,
    CancelJob,
    RegisterDevice,
    /// A new API key: the key and its owner's active-key count in one transaction.
    CreateApiKey,
    /// A key revoked: set inactive and taken off the count in one transaction.
    RevokeApiKey,
}

impl Operation {
    async fn send(self, app: &TestApp, request: EventBuilder) -> TestResponse {
        let request = request.build();
        match self {
            Self::Register => app.call(&handlers::REGISTER, request).await,
            Self::Logout | Self::LogoutAll => app.call(&handlers::LOGOUT, request).await,
            Self::Refresh => app.call(&handlers::REFRESH, request).await,
            Self::Revoke => app.call(&handlers::REVOKE, request).await,
            Self::ChangePassword | Self::ChangePasswordRevokingKeys => {
                app.call(&handlers::CHANGE_PASSWORD, request).await
            }
            Self::Transfer | Self::TransferReplay => app.call(&handlers::TRANSFER, request).await,
            Self::Stake => app.call(&handlers::STAKE, request).await,
            Self::Unstake | Self::UnstakeBesideLock => app.call(&handlers::UNSTAKE, request).await,
            Self::Mint => app.call(&handlers::MINT, request).await,
            Self::Vote => app.call(&handlers::VOTE, request).await,
            Self::CancelJob => app.call(&handlers::CANCEL_JOB, request).await,
            Self::RegisterDevice => app.call(&handlers::REGISTER_DEVICE, request).await,
            Self::CreateApiKey => app.call(&handlers::CREATE_API_KEY, request).await,
            Self::RevokeApiKey => app.call(&handlers::REVOKE_API_KEY, request).await,
        }
    }

    fn success(self) -> u16 {
        match self {
            Self::Register | Self::RegisterDevice | Self::CreateApiKey => 201,
            _ => 200,
        }
    }

    /// The answer to the same request once it has taken effect: those without an
    /// Idempotency-Key say what the state now is. A refresh sent again within the grace gets the
    /// same pair; a password change, that the old password is wrong now.
    fn repeated(self) -> u16 {
        match self {
            Self::Register => 400,
            Self::ChangePassword | Self::ChangePasswordRevokingKeys => 401,
            Self::Vote | Self::CancelJob => 409,
            Self::RegisterDevice => 200,
            _ => self.success(),
        }
    }

    /// Whether the same request sent again has an effect of its own: a key creation carries no
    /// Idempotency-Key, so a retry after a lost answer makes a second key (the first is listed,
    /// and can be revoked, but its secret is lost with the answer).
    fn retry_adds_its_own(self) -> bool {
        self == Self::CreateApiKey
    }

    /// Auth routes fail closed when the rate limiter's calls fail; the others fail open.
    fn is_auth_route(self) -> bool {
        matches!(
            self,
            Self::Register
                | Self::Logout
                | Self::LogoutAll
                | Self::Refresh
                | Self::Revoke
                | Self::ChangePassword
                | Self::ChangePasswordRevokingKeys
        )
    }

    /// Item kinds (partition key prefixes) whose changes are not all-or-nothing by design: a
    /// password change reserves and releases a login attempt as login does, and a reservation
    /// whose release is lost counts as one failed attempt until it ages out (docs/rate-limiting.md, Brute force).
    fn untracked(self) -> &'static [&'static str] {
        match self {
            Self::ChangePassword | Self::ChangePasswordRevokingKeys => &["LOGINFAIL#"],
            _ => &[],
        }
    }

    /// The events written with such a reservation, in case the password is wrong: one stands
    /// with the attempt when the write that would withdraw it fails.
    fn provisional_events(self) -> &'static [&'static str] {
        match self {
            Self::ChangePassword | Self::ChangePasswordRevokingKeys => &[" login.failed "],
            _ => &[],
        }
    }
}

/// An administrator with a funded, partly staked wallet, and another user's wallet; made once
/// per test through an app without faults.
struct Fixture {
    app: TestApp,
    /// For snapshots: a client without faults.
    dynamodb: aws_sdk_dynamodb::Client,
    user: User,
    token: String,
    other_wallet: String,
}

impl Fixture {
    async fn new() -> Self {
        let app = TestApp::new().await;
        let (_, token) = app.admin_with_token().await;
        let (_, other_token) = app.user_with_token().await;
        let me = app
            .call(
                &handlers::ME,
                event("GET", "/api/auth/me").bearer(&token).build(),
            )
            .await;
        let user: User = serde_json::from_value(me.json()).unwrap();
        let other_wallet = app.wallet(&other_token).await;
        let fixture = Self {
            dynamodb: app.dynamodb(),
            app,
            user,
            token,
            other_wallet,
        };
        for (operation, path, amount) in [
            (Operation::Mint, "mint", "1000"),
            (Operation::Stake, "stake", "100"),
        ] {
            let request =
                fixture.post(path, json!({"address": fixture.wallet(), "amount": amount}));
            let response = operation.send(&fixture.app, request).await;
            assert_eq!(response.status(), 200, "{}", response.text());
        }
        fixture
    }

    fn wallet(&self) -> &str {
        self.user.wallet_address.as_str()
    }

    fn post(&self, path: &str, body: serde_json::Value) -> EventBuilder {
        event("POST", &format!("/api/tokenomics/{path}"))
            .bearer(&self.token)
            .json(&body)
    }

    /// A movement of one token with a new Idempotency-Key, and the items it changes.
    fn movement(
        &self,
        path: &str,
        body: serde_json::Value,
        wallets: &[&str],
    ) -> (EventBuilder, Vec<Key>) {
        let idempotency_key = Uuid::new_v4().to_string();
        let request = self
            .post(path, body)
            .header("idempotency-key", &idempotency_key);
        let mut items: Vec<Key> = wallets.iter().map(|wallet| keys::wallet(wallet)).collect();
        items.push(keys::idempotency(self.user.id, &idempotency_key));
        (request, items)
    }

    /// A request of `operation` on fresh data, and the keys of the items it may change that are
    /// known beforehand. Items under ids the request makes up itself (a new user and wallet, a
    /// ledger entry), the injector records from the writes that name them.
    async fn prepare(&self, operation: Operation) -> (EventBuilder, BTreeSet<ItemKey>) {
        let now = OffsetDateTime::now_utc();
        let (request, items) = match operation {
            Operation::Register => {
                let username = unique_username();
                let email = format!("{username}@example.com");
                let body = json!({"username": username, "email": email, "password": PASSWORD});
                (
                    event("POST", "/api/auth/register").json(&body),
                    vec![keys::username(&username), keys::email(&email)],
                )
            }
            Operation::Logout | Operation::LogoutAll => {
                // A user of its own each time: "everywhere" ends every session of the user.
                let (_, token) = self.app.user_with_token().await;
                let claims = self.app.state.jwt_keys().unwrap().verify(&token).unwrap();
                let (query, items) = match operation {
                    Operation::Logout => (
                        "",
                        vec![keys::revoked_token(claims.jti), keys::session(claims.sid)],
                    ),
                    _ => (
                        "all=true",
                        vec![keys::user(claims.sub), keys::session(claims.sid)],
                    ),
                };
                (
                    event("POST", "/api/auth/logout")
                        .bearer(&token)
                        .query(query),
                    items,
                )
            }
            Operation::Refresh => {
                let (username, _) = self.app.user_with_token().await;
                let login = self.app.login(&username, PASSWORD).await;
                let refresh = login.json()["refresh_token"].as_str().unwrap().to_owned();
                let token = shared::domain::RefreshToken::parse(&refresh).unwrap();
                (
                    event("POST", "/api/auth/refresh").json(&json!({"refresh_token": refresh})),
                    vec![
                        keys::refresh_token(token.hash().as_str()),
                        keys::session(token.session_id()),
                    ],
                )
            }
            Operation::Revoke => {
                let (username, _) = self.app.user_with_token().await;
                let login = self.app.login(&username, PASSWORD).await;
                let refresh = login.json()["refresh_token"].as_str().unwrap().to_owned();
                let token = shared::domain::RefreshToken::parse(&refresh).unwrap();
                (
                    event("POST", "/api/auth/revoke").json(&json!({"refresh_token": refresh})),
                    vec![keys::session(token.session_id())],
                )
            }
            Operation::ChangePassword => {
                let (username, token) = self.app.user_with_token().await;
                let claims = self.app.state.jwt_keys().unwrap().verify(&token).unwrap();
                let body =
                    json!({"old_password": PASSWORD, "new_password": "Fog-Compute-2025-Renewed"});
                (
                    event("POST", "/api/auth/change-password")
                        .bearer(&token)
                        .json(&body),
                    vec![
                        keys::username(&username),
                        keys::user(claims.sub),
                        keys::session(claims.sid),
                    ],
                )
            }
            Operation::ChangePasswordRevokingKeys => {
                let (username, token) = self.app.user_with_token().await;
                let claims = self.app.state.jwt_keys().unwrap().verify(&token).unwrap();
                let mut items = vec![
                    keys::username(&username),
                    keys::user(claims.sub),
                    keys::session(claims.sid),
                    keys::active_api_keys(claims.sub),
                ];
                for name in ["agent", "ci"] {
                    let (id, _) = self.app.key(&token, &json!({"name": name})).await;
                    items.push(keys::api_key(id.parse().unwrap()));
                }
                let body = json!({"old_password": PASSWORD, "new_password": "Fog-Compute-2025-Renewed", "revoke_api_keys": true});
                (
                    event("POST", "/api/auth/change-password")
                        .bearer(&token)
                        .json(&body),
                    items,
                )
            }
            Operation::Transfer | Operation::TransferReplay => {
                let body = json!({"from_address": self.wallet(), "to_address": self.other_wallet, "amount": "1"});
                let movement =
                    self.movement("transfer", body, &[self.wallet(), &self.other_wallet]);
                if operation == Operation::TransferReplay {
                    let first = Operation::Transfer
                        .send(&self.app, movement.0.clone())
                        .await;
                    assert_eq!(first.status(), 200, "{}", first.text());
                }
                movement
            }
            Operation::Stake | Operation::Unstake => {
                let path = if operation == Operation::Stake {
                    "stake"
                } else {
                    "unstake"
                };
                let body = json!({"address": self.wallet(), "amount": "1"});
                self.movement(path, body, &[self.wallet()])
            }
            Operation::Mint => {
                let body = json!({"address": self.other_wallet, "amount": "1"});
                self.movement("mint", body, &[&self.other_wallet])
            }
            Operation::UnstakeBesideLock => {
                // The whole stake votes and is locked; one more token staked is free to go.
                let vote = self.post(
                    "vote",
                    json!({"proposal_id": self.proposal(now).await, "voter": self.wallet(), "vote": true}),
                );
                let voted = Operation::Vote.send(&self.app, vote).await;
                assert_eq!(voted.status(), 200, "{}", voted.text());
                let one = json!({"address": self.wallet(), "amount": "1"});
                let staked = Operation::Stake
                    .send(&self.app, self.post("stake", one.clone()))
                    .await;
                assert_eq!(staked.status(), 200, "{}", staked.text());
                self.movement("unstake", one, &[self.wallet()])
            }
            Operation::Vote => {
                let proposal_id = self.proposal(now).await;
                let body =
                    json!({"proposal_id": proposal_id, "voter": self.wallet(), "vote": true});
                (
                    self.post("vote", body),
                    vec![
                        keys::proposal(proposal_id),
                        keys::vote(proposal_id, self.wallet()),
                        keys::wallet(self.wallet()),
                    ],
                )
            }
            Operation::CancelJob => {
                let job = Job {
                    id: Uuid::now_v7(),
                    user_id: self.user.id,
                    name: "render".into(),
                    sla_tier: SlaTier::Gold,
                    cpu_required: 2.0,
                    memory_required: 4.0,
                    gpu_required: 0.0,
                    duration_estimate: None,
                    data_size_mb: None,
                    status: JobStatus::Pending,
                    submitted_at: now,
                    updated_at: now,
                };
                self.app.state.store.create_job(&job).await.unwrap();
                (
                    event("DELETE", &format!("/api/scheduler/jobs/{}", job.id))
                        .path_parameter("id", &job.id.to_string())
                        .bearer(&self.token),
                    vec![keys::job(self.user.id, job.id)],
                )
            }
            Operation::RegisterDevice => {
                let device_id = format!("device-{}", Uuid::new_v4());
                let body = json!({"device_id": device_id, "device_type": "android", "cpu_cores": 8, "memory_mb": 8192});
                (
                    event("POST", "/api/idle-compute/devices")
                        .bearer(&self.token)
                        .json(&body),
                    vec![keys::device(&device_id)],
                )
            }
            Operation::CreateApiKey => {
                // A new owner each time, whose count of active keys does not exist yet.
                let (_, token) = self.app.user_with_token().await;
                let owner = self
                    .app
                    .state
                    .jwt_keys()
                    .unwrap()
                    .verify(&token)
                    .unwrap()
                    .sub;
                (
                    event("POST", "/api/keys")
                        .bearer(&token)
                        .json(&json!({"name": "agent", "scopes": ["jobs:read"]})),
                    vec![keys::active_api_keys(owner)],
                )
            }
            Operation::RevokeApiKey => {
                let id = Uuid::now_v7();
                let issued = shared::auth::issue_key(self.user.id, id, 10);
                let new = NewApiKey {
                    name: "agent".into(),
                    expires_in_days: None,
                    rate_limit: 10,
                    scopes: vec![Scope::JobsRead],
                };
                let key = ApiKey::new(id, self.user.id, new, issued.hash, issued.prefix, now);
                let created = crate::support::audit_context(Actor::User(self.user.id), now)
                    .event(AuditEventType::ApiKeyCreated, self.user.id.to_string());
                self.app
                    .state
                    .store
                    .create_api_key(&key, now, &created)
                    .await
                    .unwrap();
                (
                    event("DELETE", &format!("/api/keys/{id}"))
                        .path_parameter("id", &id.to_string())
                        .bearer(&self.token),
                    vec![keys::api_key(id), keys::active_api_keys(self.user.id)],
                )
            }
        };
        let item_key = |key: &Key| (key.partition().to_owned(), key.sort().to_owned());
        (request, items.iter().map(item_key).collect())
    }

    /// A new proposal's id, open for voting from `now`.
    async fn proposal(&self, now: OffsetDateTime) -> Uuid {
        let proposal = Proposal::open(
            "Lower the fees".into(),
            "Halve the platform fee for bronze-tier jobs for a quarter.".into(),
            self.user.wallet_address.clone(),
            now,
            1,
        );
        self.app
            .state
            .store
            .create_proposal(&proposal)
            .await
            .unwrap();
        proposal.id
    }

    /// The items, read consistently in one round trip.
    async fn snapshot(&self, items: &BTreeSet<ItemKey>) -> Snapshot {
        let keys = items
            .iter()
            .map(|(partition, sort)| {
                HashMap::from([
                    (keys::PK.to_owned(), AttributeValue::S(partition.clone())),
                    (keys::SK.to_owned(), AttributeValue::S(sort.clone())),
                ])
            })
            .collect();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .unwrap();
        let output = self
            .dynamodb
            .batch_get_item()
            .request_items(self.app.table(), request)
            .send()
            .await
            .unwrap();
        assert!(
            output
                .unprocessed_keys
                .as_ref()
                .is_none_or(HashMap::is_empty),
            "the local server processes every key"
        );
        output
            .responses
            .unwrap_or_default()
            .into_values()
            .flatten()
            .map(|item| (item_key(&item), item))
            .collect()
    }
}

fn item_key(item: &HashMap<String, AttributeValue>) -> ItemKey {
    let string = |name: &str| item[name].as_s().unwrap().clone();
    (string(keys::PK), string(keys::SK))
}

/// Items by key; an absent item is simply not there.
type Snapshot = BTreeMap<ItemKey, HashMap<String, AttributeValue>>;

/// What changed from one snapshot to another, in terms that hold whatever the ids and times:
/// for each item added, removed or changed, its kind (its keys' prefixes) and its attribute
/// names, with the difference of each changed number (balances, stakes, tallies, versions).
/// An audit event's type, ` login.failed`; nothing for another item.
fn event_type(item: &HashMap<String, AttributeValue>) -> String {
    match item.get("type") {
        Some(AttributeValue::S(kind)) => format!(" {kind}"),
        _ => String::new(),
    }
}

fn effect(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let kind = |(pk, sk): &ItemKey| {
        let prefix = |key: &str| key.split('#').next().unwrap_or_default().to_owned();
        format!("{}/{}", prefix(pk), prefix(sk))
    };
    let keys: BTreeSet<_> = before.keys().chain(after.keys()).collect();
    let mut changes: Vec<String> = keys
        .into_iter()
        .filter_map(|key| match (before.get(key), after.get(key)) {
            (None, Some(item)) => Some(format!(
                "added {}{} {:?}",
                kind(key),
                event_type(item),
                item.keys().collect::<BTreeSet<_>>()
            )),
            (Some(_), None) => Some(format!("removed {}", kind(key))),
            (Some(old), Some(new)) => {
                let names: BTreeSet<_> = old.keys().chain(new.keys()).collect();
                let changed: Vec<String> = names
                    .into_iter()
                    .filter(|name| !TIMES.contains(&name.as_str()))
                    .filter(|name| old.get(*name) != new.get(*name))
                    .map(|name| difference(name, old.get(name), new.get(name)))
                    .collect();
                (!changed.is_empty())
                    .then(|| format!("changed {} {}", kind(key), changed.join(", ")))
            }
            _ => None,
        })
        .collect();
    changes.sort();
    changes
}

/// Attributes whose numbers are times (epoch seconds) derived from when a request ran: a rerun in
/// another second writes other values for the same effect, and a rerun in the same second as the
/// item's last write may write the same one. Their changes are left out; an added item still
/// lists them by name.
const TIMES: &[&str] = &["expires_at", "spent_at"];

fn difference(name: &str, old: Option<&AttributeValue>, new: Option<&AttributeValue>) -> String {
    // An absent number counts as 0, as a wallet's lock_version does before its first vote.
    let integer = |value: Option<&AttributeValue>| match value {
        None => Some(0),
        Some(value) => value.as_n().ok()?.parse::<i128>().ok(),
    };
    match (integer(old), integer(new)) {
        (Some(old), Some(new)) => format!("{name} {:+}", new - old),
        _ => name.to_owned(),
    }
}

async fn all_or_nothing_at_every_call(operation: Operation, expected_calls: &[&str]) {
    let fixture = Fixture::new().await;
    let injector = FaultInjector::start().await;
    let faulty = TestApp::with_fault_injector(&injector).await;

    let (request, items) = fixture.prepare(operation).await;
    let before = fixture.snapshot(&items).await;
    injector.observe();
    let response = operation.send(&faulty, request).await;
    assert_eq!(
        response.status(),
        operation.success(),
        "{}",
        response.text()
    );
    assert_eq!(injector.calls(), expected_calls);
    // Every item a request can change: those known beforehand and those its writes named.
    let tracked = |keys: BTreeSet<ItemKey>| -> BTreeSet<ItemKey> {
        keys.into_iter()
            .filter(|(partition, _)| {
                !operation
                    .untracked()
                    .iter()
                    .any(|prefix| partition.starts_with(prefix))
            })
            .collect()
    };
    let touched = tracked(&items | &injector.written_keys());
    let whole_effect = effect(&before, &fixture.snapshot(&touched).await);
    // Changes but the provisional events that a failed request leaves standing by design.
    let settled = |mut changes: Vec<String>| {
        changes.retain(|change| {
            !operation
                .provisional_events()
                .iter()
                .any(|kind| change.contains(kind))
        });
        changes
    };

    for fault in FAULTS {
        for (call, call_name) in (1..).zip(expected_calls) {
            if !injected_at(fault, call, call_name) {
                continue;
            }
            let case = format!("{operation:?}, call {call} ({call_name}) {fault}");
            let (request, items) = fixture.prepare(operation).await;
            let before = fixture.snapshot(&items).await;

            injector.arm(call, fault);
            let started = Instant::now();
            let response = operation.send(&faulty, request.clone()).await;
            assert!(
                started.elapsed() < FUNCTION_TIMEOUT,
                "{case}: took too long"
            );
            assert_eq!(injector.faulty_attempts(), attempts(fault), "{case}");
            let mut touched = tracked(&items | &injector.written_keys());
            let done = settled(effect(&before, &fixture.snapshot(&touched).await));
            assert!(
                done.is_empty() || done == whole_effect,
                "{case}: partial effect {done:?}, whole: {whole_effect:?}"
            );
            if call <= RATE_LIMITER_CALLS && !operation.is_auth_route() {
                assert_eq!(response.status(), operation.success(), "{case}: fails open");
                assert_eq!(done, whole_effect, "{case}");
            } else {
                assert_eq!(response.status(), 503, "{case}: {}", response.text());
                assert_eq!(response.header("retry-after"), Some("1"), "{case}");
                assert_eq!(
                    response.header("content-type"),
                    Some("application/problem+json"),
                    "{case}"
                );
            }

            injector.observe();
            let retry = operation.send(&faulty, request).await;
            let expected = if done.is_empty() {
                operation.success()
            } else {
                operation.repeated()
            };
            assert_eq!(retry.status(), expected, "{case}: retry {}", retry.text());
            touched.extend(tracked(injector.written_keys()));
            let after = fixture.snapshot(&touched).await;
            if operation.retry_adds_its_own() && !done.is_empty() {
                assert_eq!(
                    active_keys_counted(&after),
                    (2, 2),
                    "{case}: both keys counted"
                );
            } else {
                let total = settled(effect(&before, &after));
                assert_eq!(total, whole_effect, "{case}: applied once after the retry");
            }
        }
    }
}

/// The API keys among `items` and the active count they name: (keys, count).
fn active_keys_counted(items: &Snapshot) -> (usize, i64) {
    let keys = items
        .keys()
        .filter(|(partition, _)| partition.starts_with("APIKEY#"))
        .count();
    let count = items
        .iter()
        .find(|((partition, _), _)| partition.starts_with("APIKEYS#"))
        .and_then(|(_, item)| item.get("active")?.as_n().ok()?.parse().ok())
        .unwrap_or(0);
    (keys, count)
}

const MOVEMENT_CALLS: &[&str] = &[
    "UpdateItem",
    "BatchGetItem",
    "TransactWriteItems",
    "GetItem",
];

#[tokio::test]
async fn registration() {
    all_or_nothing_at_every_call(
        Operation::Register,
        &["UpdateItem", "BatchGetItem", "TransactWriteItems"],
    )
    .await;
}

#[tokio::test]
async fn logout() {
    all_or_nothing_at_every_call(
        Operation::Logout,
        &["UpdateItem", "BatchGetItem", "TransactWriteItems"],
    )
    .await;
}

#[tokio::test]
async fn logout_of_every_session() {
    all_or_nothing_at_every_call(
        Operation::LogoutAll,
        &["UpdateItem", "BatchGetItem", "TransactWriteItems"],
    )
    .await;
}

#[tokio::test]
async fn refresh() {
    all_or_nothing_at_every_call(
        Operation::Refresh,
        &["UpdateItem", "BatchGetItem", "TransactWriteItems"],
    )
    .await;
}

#[tokio::test]
async fn refresh_token_revocation() {
    all_or_nothing_at_every_call(
        Operation::Revoke,
        &["UpdateItem", "BatchGetItem", "TransactWriteItems"],
    )
    .await;
}

#[tokio::test]
async fn password_change() {
    all_or_nothing_at_every_call(
        Operation::ChangePassword,
        &[
            "UpdateItem",
            "BatchGetItem",
            "BatchGetItem",
            "TransactWriteItems",
            "TransactWriteItems",
        ],
    )
    .await;
}

#[tokio::test]
async fn password_change_revoking_every_api_key() {
    all_or_nothing_at_every_call(
        Operation::ChangePasswordRevokingKeys,
        &[
            "UpdateItem",
            "BatchGetItem",
            "BatchGetItem",
            "TransactWriteItems",
            "Query",
            "TransactWriteItems",
        ],
    )
    .await;
}

#[tokio::test]
async fn transfer() {
    all_or_nothing_at_every_call(Operation::Transfer, MOVEMENT_CALLS).await;
}

#[tokio::test]
async fn transfer_replayed_from_its_idempotency_record() {
    all_or_nothing_at_every_call(Operation::TransferReplay, MOVEMENT_CALLS).await;
}

#[tokio::test]
async fn stake() {
    all_or_nothing_at_every_call(Operation::Stake, MOVEMENT_CALLS).await;
}

#[tokio::test]
async fn unstake() {
    all_or_nothing_at_every_call(Operation::Unstake, MOVEMENT_CALLS).await;
}

#[tokio::test]
async fn unstake_beside_a_lock() {
    all_or_nothing_at_every_call(Operation::UnstakeBesideLock, MOVEMENT_CALLS).await;
}

#[tokio::test]
async fn mint() {
    all_or_nothing_at_every_call(Operation::Mint, MOVEMENT_CALLS).await;
}

#[tokio::test]
async fn vote() {
    all_or_nothing_at_every_call(
        Operation::Vote,
        &["UpdateItem", "BatchGetItem", "TransactWriteItems"],
    )
    .await;
}

#[tokio::test]
async fn job_cancellation() {
    all_or_nothing_at_every_call(
        Operation::CancelJob,
        &["UpdateItem", "BatchGetItem", "UpdateItem"],
    )
    .await;
}

#[tokio::test]
async fn device_registration() {
    all_or_nothing_at_every_call(
        Operation::RegisterDevice,
        &["UpdateItem", "BatchGetItem", "UpdateItem"],
    )
    .await;
}

#[tokio::test]
async fn api_key_creation() {
    all_or_nothing_at_every_call(
        Operation::CreateApiKey,
        &["UpdateItem", "BatchGetItem", "TransactWriteItems"],
    )
    .await;
}

#[tokio::test]
async fn api_key_revocation() {
    all_or_nothing_at_every_call(
        Operation::RevokeApiKey,
        &["UpdateItem", "BatchGetItem", "TransactWriteItems"],
    )
    .await;
}
