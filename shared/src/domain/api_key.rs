use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::EscapedText;
use crate::routes::Scope;

/// A key's `name`: 1-100 characters once trimmed, stored HTML-escaped like other free text.
pub const KEY_NAME_CHARS: RangeInclusive<usize> = 1..=100;
/// `expires_in_days`; absent or null: the key never expires.
pub const KEY_EXPIRES_IN_DAYS: RangeInclusive<i64> = 1..=3650;
/// `rate_limit`: requests per hour, over every route.
pub const KEY_RATE_LIMIT: RangeInclusive<i64> = 1..=100_000;
pub const DEFAULT_KEY_RATE_LIMIT: i64 = 1000;
/// Keys a user may have active (neither revoked nor expired) at once.
pub const MAX_ACTIVE_KEYS: u32 = 25;

pub fn key_name(raw: &str) -> Result<String, String> {
    EscapedText::parse(raw, KEY_NAME_CHARS).map(EscapedText::into_string)
}

/// The `scopes` of a new key: a non-empty subset of `Scope::ALL`, each named once; kept in the
/// order `Scope::ALL` lists them.
pub fn key_scopes(raw: &[String]) -> Result<Vec<Scope>, String> {
    if raw.is_empty() {
        return Err("must name at least one scope".into());
    }
    let mut scopes = Vec::with_capacity(raw.len());
    for name in raw {
        let scope = Scope::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
            format!("{name:?} is not a scope; scopes are {}", known.join(", "))
        })?;
        if scopes.contains(&scope) {
            return Err(format!("names {scope} more than once"));
        }
        scopes.push(scope);
    }
    scopes.sort();
    Ok(scopes)
}

/// An API key as stored. Never its secret: only the SHA-256 of the secret, which is shown once,
/// when the key is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: Uuid,
    pub user_id: Uuid,
    /// Trimmed and HTML-escaped.
    pub name: String,
    /// The secret's first characters, to tell keys apart in lists.
    pub prefix: String,
    /// SHA-256 of the whole secret, as lower-case hex.
    pub secret_hash: String,
    pub scopes: Vec<Scope>,
    /// Requests per hour.
    pub rate_limit: u32,
    /// False once revoked (or found expired when a new key needed its place).
    pub is_active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Whole epoch seconds, written at most once a minute; absent until first used. A number,
    /// which the write's condition compares.
    #[serde(
        default,
        with = "time::serde::timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_used: Option<OffsetDateTime>,
    /// Whole epoch seconds; absent: never. Not `expires_at`, the table's TTL attribute: an
    /// expired key stays listed (inactive) rather than vanishing whenever DynamoDB deletes it.
    #[serde(
        default,
        rename = "valid_until",
        with = "time::serde::timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<OffsetDateTime>,
}

/// What a new key is given: its fields, validated.
pub struct NewApiKey {
    pub name: String,
    pub expires_in_days: Option<i64>,
    pub rate_limit: u32,
    pub scopes: Vec<Scope>,
}

impl ApiKey {
    /// The key `new` describes, for `user_id`, created `now` (whole seconds) with the secret's
    /// hash and prefix.
    pub fn new(
        id: Uuid,
        user_id: Uuid,
        new: NewApiKey,
        secret_hash: String,
        prefix: String,
        now: OffsetDateTime,
    ) -> Self {
        let now = whole_seconds(now);
        Self {
            id,
            user_id,
            name: new.name,
            prefix,
            secret_hash,
            scopes: new.scopes,
            rate_limit: new.rate_limit,
            is_active: true,
            created_at: now,
            last_used: None,
            expires_at: new.expires_in_days.map(|days| now + Duration::days(days)),
        }
    }

    pub fn expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }

    /// Whether the key works at `now`: not revoked and not expired.
    pub fn usable(&self, now: OffsetDateTime) -> bool {
        self.is_active && !self.expired(now)
    }

    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether `last_used` is older than `interval` at `now` (or was never written).
    pub fn last_used_due(&self, now: OffsetDateTime, interval: Duration) -> bool {
        self.last_used
            .is_none_or(|last_used| last_used + interval <= now)
    }
}

/// `at` without its fraction of a second: the stored times of keys are whole seconds.
pub fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).expect("0 is a valid nanosecond")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn scopes_are_a_non_empty_subset_named_once() {
        assert_eq!(
            key_scopes(&strings(&["tokens:write", "jobs:read"])),
            Ok(vec![Scope::JobsRead, Scope::TokensWrite])
        );
        let all: Vec<String> = Scope::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(key_scopes(&all), Ok(Scope::ALL.to_vec()));
        assert!(key_scopes(&[]).is_err());
        assert!(key_scopes(&strings(&["jobs:read", "jobs:read"])).is_err());
        let unknown = key_scopes(&strings(&["jobs:read", "admin"])).unwrap_err();
        assert!(unknown.contains("\"admin\""), "{unknown}");
        assert!(key_scopes(&strings(&["Jobs:Read"])).is_err());
    }

    #[test]
    fn names_are_trimmed_escaped_and_not_blank() {
        assert_eq!(key_name("  ci <bot> "), Ok("ci &lt;bot&gt;".to_owned()));
        assert!(key_name("   ").is_err());
        assert!(key_name("").is_err());
        assert!(key_name(&"x".repeat(100)).is_ok());
        assert!(key_name(&"x".repeat(101)).is_err());
        assert!(key_name("a\u{0}b").is_err());
    }

    fn key(expires_in_days: Option<i64>, now: OffsetDateTime) -> ApiKey {
        let new = NewApiKey {
            name: "ci".into(),
            expires_in_days,
            rate_limit: 10,
            scopes: vec![Scope::JobsRead],
        };
        ApiKey::new(
            Uuid::now_v7(),
            Uuid::new_v4(),
            new,
            "h".into(),
            "p".into(),
            now,
        )
    }

    #[test]
    fn a_key_expires_after_its_days_and_is_usable_until_then() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
            + Duration::milliseconds(700);
        let key = key(Some(1), now);
        assert_eq!(key.created_at.nanosecond(), 0);
        assert!(key.usable(now));
        assert!(key.usable(now + Duration::hours(23)));
        assert!(!key.usable(now + Duration::days(1)));
        let forever = key_never(now);
        assert!(forever.usable(now + Duration::days(36500)));
        let mut revoked = forever.clone();
        revoked.is_active = false;
        assert!(!revoked.usable(now));
    }

    fn key_never(now: OffsetDateTime) -> ApiKey {
        key(None, now)
    }

    #[test]
    fn last_used_is_due_once_a_minute() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut key = key_never(now);
        assert!(key.last_used_due(now, Duration::minutes(1)));
        key.last_used = Some(now);
        assert!(!key.last_used_due(now + Duration::seconds(59), Duration::minutes(1)));
        assert!(key.last_used_due(now + Duration::seconds(60), Duration::minutes(1)));
    }

    #[test]
    fn stored_times_are_numbers_and_absent_ones_are_not_written() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let item = serde_json::to_value(key(Some(2), now)).unwrap();
        assert_eq!(item["valid_until"], 1_800_000_000 + 2 * 86_400);
        assert!(
            item.get("expires_at").is_none(),
            "not the table's TTL attribute"
        );
        assert!(item.get("last_used").is_none());
        assert_eq!(item["scopes"], serde_json::json!(["jobs:read"]));
        let back: ApiKey = serde_json::from_value(item).unwrap();
        assert_eq!(back.expires_at, Some(now + Duration::days(2)));
    }
}
