//! Primary keys of every item type. See the README's table design.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

pub const PK: &str = "PK";
pub const SK: &str = "SK";

pub type Key = HashMap<String, AttributeValue>;

fn key(pk: String, sk: &str) -> Key {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk)),
        (SK.to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

pub fn user(id: Uuid) -> Key {
    key(format!("USER#{id}"), "PROFILE")
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

pub fn revoked_token(jti: Uuid) -> Key {
    key(format!("TOKEN#{jti}"), "REVOKED")
}

pub fn health() -> Key {
    key("HEALTH".to_owned(), "HEALTH")
}

/// One identity's counter for one rate-limit category and 60-second window.
pub fn rate_counter(category: &str, identity: &str, window_start_seconds: u64) -> Key {
    key(
        format!("RATE#{category}#{identity}"),
        &format!("WINDOW#{window_start_seconds}"),
    )
}

/// The recent failed logins of a username (existing or not).
pub fn login_failures(username: &str) -> Key {
    key(format!("LOGINFAIL#{username}"), "LOGINFAIL")
}
