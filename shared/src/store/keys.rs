//! Primary keys of every item type. See docs/table-design.md.

use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::Item;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
/// The one secondary index, and its key attributes.
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";

/// An item's primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    partition: String,
    sort: String,
}

impl Key {
    pub fn partition(&self) -> &str {
        &self.partition
    }

    pub fn sort(&self) -> &str {
        &self.sort
    }

    /// The key as DynamoDB takes it: the `PK` and `SK` attributes, with which an item begins.
    pub fn attributes(&self) -> Item {
        Item::from([
            (PK.to_owned(), AttributeValue::S(self.partition.clone())),
            (SK.to_owned(), AttributeValue::S(self.sort.clone())),
        ])
    }

    /// Whether `item` is the item with this key.
    pub fn identifies(&self, item: &Item) -> bool {
        let text = |name| item.get(name).and_then(|value| value.as_s().ok());
        text(PK) == Some(&self.partition) && text(SK) == Some(&self.sort)
    }
}

fn key(pk: String, sk: impl Into<String>) -> Key {
    Key {
        partition: pk,
        sort: sk.into(),
    }
}

/// The partition of everything a user owns directly: the profile and the jobs.
pub fn user_partition(id: Uuid) -> String {
    format!("USER#{id}")
}

pub const PROFILE: &str = "PROFILE";

pub fn user(id: Uuid) -> Key {
    key(user_partition(id), PROFILE)
}

/// The GSI1 partition that lists every user, by username (the user list of the admin API).
pub const USERS: &str = "USERS";

/// The GSI1 attributes of a user's profile: listed under `USERS` by its username.
pub fn user_index(username: &str) -> Item {
    Item::from([
        (GSI1PK.to_owned(), AttributeValue::S(USERS.to_owned())),
        (GSI1SK.to_owned(), AttributeValue::S(username.to_owned())),
    ])
}

pub const JOB_PREFIX: &str = "JOB#";

/// Jobs sort by their UUID v7 ids, so by submission time.
pub fn job(user_id: Uuid, job_id: Uuid) -> Key {
    key(user_partition(user_id), format!("{JOB_PREFIX}{job_id}"))
}

/// The login credential of a username; its existence also reserves the username.
pub fn username(username: &str) -> Key {
    key(format!("USERNAME#{username}"), "CREDENTIAL")
}

pub fn email(email: &str) -> Key {
    key(format!("EMAIL#{email}"), "EMAIL")
}

pub fn wallet(address: &str) -> Key {
    key(format!("WALLET#{address}"), "WALLET")
}

pub const DEVICE_PREFIX: &str = "DEVICE#";

/// A device, keyed by its own id so that an id has one owner; GSI1 lists a user's devices.
pub fn device(device_id: &str) -> Key {
    key(format!("{DEVICE_PREFIX}{device_id}"), "DEVICE")
}

/// A ledger entry, in the partition of the wallet it debits (or credits, for a mint).
pub fn ledger_entry(address: &str, transaction_id: Uuid) -> Key {
    key(format!("WALLET#{address}"), format!("TX#{transaction_id}"))
}

/// The GSI1 partition that lists every proposal, newest first by their UUID v7 ids.
pub const PROPOSALS: &str = "PROPOSALS";

pub fn proposal(id: Uuid) -> Key {
    key(format!("PROPOSAL#{id}"), "PROPOSAL")
}

/// A proposal's key together with its GSI1 key, as a GSI1 query's start key needs.
pub fn proposal_in_index(id: Uuid) -> Item {
    let mut key = proposal(id).attributes();
    key.insert(GSI1PK.to_owned(), AttributeValue::S(PROPOSALS.to_owned()));
    key.insert(GSI1SK.to_owned(), AttributeValue::S(id.to_string()));
    key
}

/// One wallet's vote on a proposal; its existence is what refuses a second vote.
pub fn vote(proposal_id: Uuid, address: &str) -> Key {
    key(format!("PROPOSAL#{proposal_id}"), format!("VOTE#{address}"))
}

/// What a request carrying an `Idempotency-Key` did, per user and key.
pub fn idempotency(user_id: Uuid, idempotency_key: &str) -> Key {
    key(
        format!("IDEMPOTENCY#{user_id}#{idempotency_key}"),
        "IDEMPOTENCY",
    )
}

pub const SESSION_PREFIX: &str = "SESSION#";

/// A session (one login and the refresh tokens it rotates through); GSI1 lists a user's, newest
/// first by their UUID v7 ids.
pub fn session(id: Uuid) -> Key {
    key(format!("{SESSION_PREFIX}{id}"), "SESSION")
}

/// A refresh token, by the SHA-256 of the token (hex): the token itself is never stored.
pub fn refresh_token(hash: &str) -> Key {
    key(format!("REFRESH#{hash}"), "REFRESH")
}

pub fn revoked_token(jti: Uuid) -> Key {
    key(format!("TOKEN#{jti}"), "REVOKED")
}

pub fn health() -> Key {
    key("HEALTH".to_owned(), "HEALTH")
}

pub const API_KEY_PREFIX: &str = "APIKEY#";

/// An API key, by its id (which its secret carries, so that the rate limiter reads it in its one
/// round trip); GSI1 lists a user's keys.
pub fn api_key(id: Uuid) -> Key {
    key(format!("{API_KEY_PREFIX}{id}"), "APIKEY")
}

/// How many of a user's API keys are active: the 25-key cap is a condition on it.
pub fn active_api_keys(user_id: Uuid) -> Key {
    key(format!("APIKEYS#{user_id}"), "ACTIVE")
}

/// One API key's own budget, over every route, in one hour-long window: keyed by the hash of
/// the secret presented, so that a forged secret naming a real key id counts on a counter of its
/// own and never on the real key's.
pub fn api_key_rate_counter(secret_hash: &str, window_start_seconds: u64) -> Key {
    key(
        format!("RATE#apikey#{secret_hash}"),
        format!("WINDOW#{window_start_seconds}"),
    )
}

/// One identity's counter for one route, in one rate-limit category and 60-second window.
pub fn rate_counter(
    category: &str,
    function: &str,
    identity: &str,
    window_start_seconds: u64,
) -> Key {
    key(
        format!("RATE#{category}#{function}#{identity}"),
        format!("WINDOW#{window_start_seconds}"),
    )
}

/// A user's second factor (issue 24): its sealed TOTP secret, last accepted step, backup codes.
pub fn second_factor(user_id: Uuid) -> Key {
    key(user_partition(user_id), "MFA")
}

/// A user's wrong second factors in the current hour-long window.
pub fn second_factor_failures(user_id: Uuid) -> Key {
    key(user_partition(user_id), "MFAFAIL")
}

/// A login waiting for its second factor, by the SHA-256 of its temp token (hex).
pub fn mfa_login(hash: &str) -> Key {
    key(format!("MFALOGIN#{hash}"), "MFALOGIN")
}

/// The recent failed logins of a username (existing or not).
pub fn login_failures(username: &str) -> Key {
    key(format!("LOGINFAIL#{username}"), "LOGINFAIL")
}

/// A password-reset token, by the SHA-256 of the token (hex): the token itself is never stored.
pub fn reset_token(hash: &str) -> Key {
    key(format!("RESET#{hash}"), "RESET")
}

/// An address-verification token, by the SHA-256 of the token (hex).
pub fn verification_token(hash: &str) -> Key {
    key(format!("VERIFY#{hash}"), "VERIFY")
}

/// The mails of one kind sent to one recipient (the SHA-256 of an address, or of a user id) in
/// the last hour: the times of the last few, oldest first.
pub fn mail_log(kind: &str, recipient_hash: &str) -> Key {
    key(
        format!("RATE#mail#{kind}#{recipient_hash}"),
        "MAILS".to_owned(),
    )
}
