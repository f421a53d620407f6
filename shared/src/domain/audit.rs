//! Security events: who did what to whom, from where. An event is written in the same DynamoDB
//! transaction as the action it records (so one exists exactly when the action committed), kept
//! `AUDIT_RETENTION_DAYS`, and logged with the `audit` marker once written. It never holds a
//! password, token, key secret or hash: its `detail` is built here, from typed values only.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

macro_rules! event_types {
    ($($variant:ident => $name:literal,)*) => {
        /// What happened.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AuditEventType {
            $($variant,)*
        }

        impl AuditEventType {
            pub const ALL: &[Self] = &[$(Self::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

event_types! {
    UserRegistered => "user.registered",
    LoginSucceeded => "login.succeeded",
    LoginFailed => "login.failed",
    LoginLocked => "login.locked",
    Logout => "logout",
    TokenRevoked => "token.revoked",
    UserDeactivated => "user.deactivated",
    UserActivated => "user.activated",
    UserPromoted => "user.promoted",
    UserDemoted => "user.demoted",
    UserUnlocked => "user.unlocked",
    TokensMinted => "tokens.minted",
    ApiKeyCreated => "apikey.created",
    ApiKeyRevoked => "apikey.revoked",
    SessionRefreshReused => "session.refresh_reused",
    SessionRevoked => "session.revoked",
    PasswordChanged => "password.changed",
    MfaEnabled => "mfa.enabled",
    MfaDisabled => "mfa.disabled",
    MfaFailed => "mfa.failed",
    MfaBackupCodeUsed => "mfa.backup_code_used",
    MfaBackupCodesRegenerated => "mfa.backup_codes_regenerated",
    PasswordReset => "password.reset",
    EmailVerified => "email.verified",
    MailFailed => "mail.failed",
}

impl AuditEventType {
    /// Exactly as `as_str` writes it.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.as_str() == raw)
    }
}

impl fmt::Display for AuditEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuditEventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditEventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&raw)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event type {raw:?}")))
    }
}

/// Why a login was refused, as `login.failed` records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFailure {
    BadPassword,
    UnknownUser,
    Disabled,
    Locked,
}

impl LoginFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadPassword => "bad_password",
            Self::UnknownUser => "unknown_user",
            Self::Disabled => "disabled",
            Self::Locked => "locked",
        }
    }
}

/// Why a second factor was refused, as `mfa.failed` records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MfaFailure {
    /// A wrong code, a replayed one, or a backup code already used.
    WrongCode,
    /// The user's wrong second factors reached the hourly limit: not checked at all.
    Limited,
}

impl MfaFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WrongCode => "wrong_code",
            Self::Limited => "limited",
        }
    }
}

/// Who acted: a user (by id), the operator CLI, or nobody known (a login, a registration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    User(Uuid),
    Fogctl,
    Anonymous,
}

impl Actor {
    fn value(self) -> Option<String> {
        match self {
            Self::User(id) => Some(id.to_string()),
            Self::Fogctl => Some("fogctl".to_owned()),
            Self::Anonymous => None,
        }
    }
}

/// Where an action came from: the same for every event one request writes.
#[derive(Clone, Debug)]
pub struct AuditContext {
    pub actor: Actor,
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
    pub at: OffsetDateTime,
    pub retention_days: i64,
}

impl AuditContext {
    /// The same request, acted on by `actor`.
    pub fn by(&self, actor: Actor) -> Self {
        Self {
            actor,
            ..self.clone()
        }
    }

    /// The event `kind` about `subject` (a user id, or a username where no user is known).
    pub fn event(&self, kind: AuditEventType, subject: impl Into<String>) -> AuditEvent {
        AuditEvent {
            id: time_ordered_id(self.at),
            time: self.at,
            kind,
            actor: self.actor.value(),
            subject: subject.into(),
            source_ip: self.source_ip.clone(),
            request_id: self.request_id.clone(),
            detail: Map::new(),
            expires_at: (self.at + time::Duration::days(self.retention_days)).unix_timestamp(),
        }
    }
}

/// A UUID v7 of `at`'s millisecond: events sort by their ids as by their times.
fn time_ordered_id(at: OffsetDateTime) -> Uuid {
    let millis = (at.unix_timestamp_nanos() / 1_000_000) as u64;
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        millis / 1000,
        (millis % 1000) as u32 * 1_000_000,
    ))
}

/// One recorded event, as stored, logged and answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    #[serde(rename = "type")]
    pub kind: AuditEventType,
    pub actor: Option<String>,
    pub subject: String,
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
    pub detail: Map<String, Value>,
    /// When the table's TTL expires it (epoch seconds); stored, never answered.
    #[serde(skip_serializing, default)]
    pub expires_at: i64,
}

impl AuditEvent {
    fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(name.to_owned(), value.into());
        self
    }

    pub fn with_reason(self, reason: LoginFailure) -> Self {
        self.with("reason", reason.as_str())
    }

    pub fn with_username(self, username: &str) -> Self {
        self.with("username", username)
    }

    pub fn with_session(self, session_id: Uuid) -> Self {
        self.with("session_id", session_id.to_string())
    }

    pub fn with_api_key(self, key_id: Uuid) -> Self {
        self.with("api_key_id", key_id.to_string())
    }

    pub fn with_amount(self, amount: &str) -> Self {
        self.with("amount", amount)
    }

    pub fn with_transaction(self, transaction_id: Uuid) -> Self {
        self.with("transaction_id", transaction_id.to_string())
    }

    /// The route other than login's that checked a password, on `login.*` events
    /// (`change-password`, `reauthenticate`).
    pub fn with_via(self, function: &str) -> Self {
        self.with("via", function)
    }

    pub fn with_mfa_failure(self, reason: MfaFailure) -> Self {
        self.with("reason", reason.as_str())
    }

    /// The methods a sign-in used (`login.succeeded`): RFC 8176's names.
    pub fn with_methods(self, methods: &[&str]) -> Self {
        self.with("methods", methods.to_vec())
    }

    /// How many of a user's backup codes remain (`mfa.backup_code_used`).
    pub fn with_remaining(self, remaining: usize) -> Self {
        self.with("backup_codes_remaining", remaining)
    }

    /// Which mail, on `mail.failed` (`reset`, `verify`): never its link.
    pub fn with_mail(self, kind: &str) -> Self {
        self.with("mail", kind)
    }

    pub fn with_flag(self, name: &str, value: bool) -> Self {
        self.with(name, value)
    }

    /// The event on the function's log, once written: one line with the `audit` marker and the
    /// event as JSON, for CloudWatch Logs Insights (`filter audit = 1`). Logs name no username
    /// (a name typed at login may be a password typed in the wrong field): the line leaves the
    /// `username` detail out, and a subject that is that name becomes a digest of it, so lines
    /// about one name still group together.
    pub fn log(&self) {
        let event = serde_json::to_string(&self.without_usernames()).unwrap_or_default();
        tracing::info!(audit = 1, event_type = %self.kind, event = %event, "audit event");
    }

    fn without_usernames(&self) -> Self {
        let mut event = self.clone();
        if let Some(Value::String(username)) = event.detail.remove("username")
            && event.subject == username
        {
            let digest = Sha256::digest(username.as_bytes());
            let hex: String = digest[..8]
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            event.subject = format!("username-sha256:{hex}");
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(at: OffsetDateTime) -> AuditContext {
        AuditContext {
            actor: Actor::Fogctl,
            source_ip: Some("203.0.113.9".into()),
            request_id: Some("req-1".into()),
            at,
            retention_days: 90,
        }
    }

    #[test]
    fn ids_sort_as_times_and_events_expire_after_the_retention() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let first = context(at).event(AuditEventType::Logout, "u");
        let second =
            context(at + time::Duration::milliseconds(1)).event(AuditEventType::Logout, "u");
        assert!(first.id.to_string() < second.id.to_string());
        assert_eq!(first.expires_at, at.unix_timestamp() + 90 * 86_400);
        assert_eq!(first.actor.as_deref(), Some("fogctl"));
    }

    #[test]
    fn logged_events_name_no_username() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let unknown = context(at)
            .event(AuditEventType::LoginFailed, "alice")
            .with_username("alice")
            .with_reason(LoginFailure::UnknownUser);
        let logged = unknown.without_usernames();
        assert!(!serde_json::to_string(&logged).unwrap().contains("alice"));
        // sha256("alice") begins 2bd806c97f0e00af.
        assert_eq!(logged.subject, "username-sha256:2bd806c97f0e00af");
        assert_eq!(logged.detail["reason"], "unknown_user");
        let known = context(at)
            .event(
                AuditEventType::LoginSucceeded,
                "3f0f6a58-8f8e-4d3c-9a53-2b1f5f3b8c11",
            )
            .with_username("alice");
        let logged = known.without_usernames();
        assert_eq!(logged.subject, known.subject);
        assert!(!logged.detail.contains_key("username"));
    }

    #[test]
    fn every_type_round_trips_through_its_name() {
        for kind in AuditEventType::ALL {
            assert_eq!(AuditEventType::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(AuditEventType::parse("login.FAILED"), None);
    }

    #[test]
    fn the_answered_event_has_the_issues_fields_and_no_expiry() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let event = context(at)
            .event(AuditEventType::LoginFailed, "alice")
            .with_reason(LoginFailure::Locked);
        let json = serde_json::to_value(&event).unwrap();
        let mut fields: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "actor",
                "detail",
                "id",
                "request_id",
                "source_ip",
                "subject",
                "time",
                "type"
            ]
        );
        assert_eq!(json["type"], "login.failed");
        assert_eq!(json["detail"]["reason"], "locked");
    }
}
