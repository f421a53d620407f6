//! Sessions and their refresh tokens (issue 15). A session is one login: an item `SESSION#<id>`
//! listed under its user in GSI1, `active` until it ends (`revoked`), with an `epoch` that must be
//! at least its user's `session_epoch`. A refresh token is an item `REFRESH#<sha256>`, `current`
//! until a rotation spends it (recording when, and its successor's hash). See docs/table-design.md
//! for every write.

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, from_items, to_item};
use time::OffsetDateTime;
use uuid::Uuid;

use super::keys::{self, GSI1PK, GSI1SK, SESSION_PREFIX};
use super::mfa::FactorUse;
use super::{Item, KeyRevocation, Store, StoreError, TTL_ATTRIBUTE, find, number, string};
use crate::domain::{Assurance, AuditEvent, RefreshToken, RefreshTokenHash, User, rfc3339};

const STATUS: &str = "status";
const STATE: &str = "state";
const EPOCH: &str = "epoch";
const SESSION_EPOCH: &str = "session_epoch";
const ACTIVE: &str = "active";
const REVOKED: &str = "revoked";
const CURRENT: &str = "current";
const SPENT: &str = "spent";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Active,
    Revoked,
}

/// A session as stored: one login, and the refresh tokens it rotates through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The login, or the last refresh.
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    pub status: SessionStatus,
    /// The user's `session_epoch` when the session began (or changed the password).
    pub epoch: u64,
    /// When its newest refresh token expires (epoch s): the session's TTL.
    pub expires_at: i64,
    /// When its user last proved their password in it: the login, or the latest
    /// reauthentication. Absent from sessions begun before it was recorded (see `auth_time`).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_time: Option<OffsetDateTime>,
    /// Whether its user proved a second factor in it: at a login's second step, or by verifying
    /// a new factor in it. Its access tokens say so (`amr`, `aal`), refreshes too.
    #[serde(default)]
    pub second_factor: bool,
}

impl SessionRecord {
    /// How its user signed in to it.
    pub fn assurance(&self) -> Assurance {
        match self.second_factor {
            true => Assurance::SecondFactor,
            false => Assurance::Password,
        }
    }

    /// When its user last proved their password in it (its access tokens' `auth_time`): a
    /// session begun before that was recorded, when it began.
    pub fn signed_in_at(&self) -> OffsetDateTime {
        self.auth_time.unwrap_or(self.created_at)
    }

    /// Whether the session still admits the tokens it issued to `user`: its own, active, and not
    /// ended since by "log out everywhere" or a password change (its epoch behind the user's).
    /// Its access tokens never outlive it (`config::REFRESH_TOKEN_DAYS`), so this needs no clock.
    pub fn admits(&self, user: &User) -> bool {
        self.user_id == user.id
            && self.status == SessionStatus::Active
            && self.epoch >= user.session_epoch
    }

    /// Whether the session is live at `now` (epoch s): it admits its tokens and has not expired.
    pub fn live(&self, user: &User, now: i64) -> bool {
        self.admits(user) && self.expires_at > now
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefreshState {
    Current,
    Spent,
}

/// A refresh token as stored, under the SHA-256 of the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    #[serde(rename = "sid")]
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub state: RefreshState,
    /// When a rotation spent it (epoch s): the rotation's access token's `iat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_at: Option<i64>,
    /// The hash of the token that rotation issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
    /// The token's own expiry (epoch s); spending it keeps it, so that a reuse is recognised for
    /// as long as the token could have been used.
    pub expires_at: i64,
}

impl RefreshRecord {
    /// Whether this is the item of `token` (its hash matched; this checks the ids the token
    /// names) and has not expired at `now`.
    pub fn usable_for(&self, token: &RefreshToken, now: i64) -> bool {
        self.session_id == token.session_id()
            && self.user_id == token.user_id()
            && self.expires_at > now
    }

    /// Whether its recorded successor is `successor`.
    pub fn succeeded_by(&self, successor: &RefreshTokenHash) -> bool {
        self.successor.as_deref() == Some(successor.as_str())
    }
}

/// What a refresh token names, read in one round trip: its item, its session and its user.
#[derive(Debug)]
pub struct RefreshLookup {
    pub token: Option<RefreshRecord>,
    pub session: Option<SessionRecord>,
    pub user: Option<User>,
}

impl RefreshLookup {
    pub fn keys(token: &RefreshToken) -> Vec<keys::Key> {
        vec![
            keys::refresh_token(token.hash().as_str()),
            keys::session(token.session_id()),
            keys::user(token.user_id()),
        ]
    }

    pub fn from_items(items: &[Item], token: &RefreshToken) -> Result<Self, StoreError> {
        let token_item = find(items, &keys::refresh_token(token.hash().as_str()));
        Ok(Self {
            token: token_item.cloned().map(from_item).transpose()?,
            session: session_in(items, token.session_id())?,
            user: find(items, &keys::user(token.user_id()))
                .cloned()
                .map(from_item)
                .transpose()?,
        })
    }
}

/// The session `id` among read items.
pub fn session_in(items: &[Item], id: Uuid) -> Result<Option<SessionRecord>, StoreError> {
    Ok(find(items, &keys::session(id))
        .cloned()
        .map(from_item)
        .transpose()?)
}

/// What a rotation came to.
#[derive(Debug)]
pub enum Rotation {
    /// The presented token is spent and its successor stored; the session's expiry moved on.
    Rotated,
    /// The presented token was no longer current: here it is as it now is (absent: gone).
    NotCurrent(Option<RefreshRecord>),
    /// The session ended before the rotation could be written.
    SessionEnded,
}

/// What a reauthentication came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Reauthentication {
    Recorded,
    /// The session is no longer live (it ended, or expired, since it was read): nothing written.
    SessionEnded,
    /// The second factor's code was spent meanwhile (the same TOTP step, the same backup code):
    /// nothing written.
    SecondFactorSpent,
    /// The user's wrong second factors reached the limit meanwhile: nothing written.
    SecondFactorLimited,
}

/// What a password change came to.
#[derive(Debug, PartialEq, Eq)]
pub enum PasswordChange {
    Changed,
    /// The credential, the user's sessions (another change, "log out everywhere", a
    /// deactivation) or the caller's session changed since they were read: nothing was written.
    Conflict,
    /// Asked to revoke every API key, and the user's keys changed since they were read (one
    /// created, revoked or retired): nothing was written.
    KeysChanged,
}

/// What a login verified, which must still hold when its session starts.
#[derive(Clone, Copy, Debug)]
pub struct VerifiedLogin<'a> {
    pub username: &'a str,
    /// The credential's hash the password verified against.
    pub password_hash: &'a str,
    /// The login attempt reserved before verifying: released when the session starts.
    pub attempt: Uuid,
}

/// What starting a session came to.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionStart {
    Started,
    /// The password changed, or every session was ended, after the login read the credential:
    /// nothing was written.
    CredentialChanged,
}

/// A password change, beside the user whose it is.
#[derive(Clone, Copy, Debug)]
pub struct NewPassword<'a> {
    /// The hash the old password verified against: the credential must still hold it.
    pub old_hash: &'a str,
    pub new_hash: &'a str,
    /// The session that changes it: it goes on, every other ends.
    pub session_id: Uuid,
    /// The login attempt the old password reserved.
    pub attempt: Uuid,
}

/// A write of one item: `Put` conditioned on the item being new.
fn new_item(table: &str, item: Item) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .build()
        .expect("table, item and condition are set");
    TransactWriteItem::builder().put(put).build()
}

/// The item of a new, current refresh token of `session`.
fn refresh_item(
    token: &RefreshTokenHash,
    session: &SessionRecord,
    expires_at: i64,
) -> Result<Item, StoreError> {
    let record = RefreshRecord {
        session_id: session.id,
        user_id: session.user_id,
        state: RefreshState::Current,
        spent_at: None,
        successor: None,
        expires_at,
    };
    let mut item = to_item(&record)?;
    item.extend(keys::refresh_token(token.as_str()).attributes());
    Ok(item)
}

fn epoch(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl Store {
    /// What starting `session` writes, whatever proved the sign-in: a check that the user's
    /// `session_epoch` is still the session's (no password change, no "log out everywhere"
    /// since it was read), the session's item and its first refresh token's.
    pub(super) fn session_start_items(
        &self,
        session: &SessionRecord,
        token: &RefreshTokenHash,
    ) -> Result<[TransactWriteItem; 3], StoreError> {
        let mut item = to_item(session)?;
        item.extend(keys::session(session.id).attributes());
        item.insert(
            GSI1PK.to_owned(),
            string(keys::user_partition(session.user_id)),
        );
        item.insert(
            GSI1SK.to_owned(),
            string(format!("{SESSION_PREFIX}{}", session.id)),
        );
        let token = refresh_item(token, session, session.expires_at)?;
        let epoch_as_read = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(keys::user(session.user_id).attributes()))
            .condition_expression(if session.epoch == 0 {
                "attribute_exists(PK) AND (attribute_not_exists(#epoch) OR #epoch = :read)"
            } else {
                "attribute_exists(PK) AND #epoch = :read"
            })
            .expression_attribute_names("#epoch", SESSION_EPOCH)
            .expression_attribute_values(":read", epoch(session.epoch))
            .build()
            .expect("table, key and condition are set");
        Ok([
            TransactWriteItem::builder()
                .condition_check(epoch_as_read)
                .build(),
            new_item(&self.table, item),
            new_item(&self.table, token),
        ])
    }

    /// Starts a session with its first refresh token and records the login (`succeeded`,
    /// withdrawing the failure `provisional` recorded in case the password was wrong, and
    /// releasing the attempt it reserved), in one transaction: all or nothing. It holds only
    /// while what the login verified does: the credential still the hash it verified, the user's
    /// `session_epoch` still the session's (no password change, no "log out everywhere" since);
    /// otherwise nothing is written (`CredentialChanged`).
    pub async fn start_session(
        &self,
        session: &SessionRecord,
        token: &RefreshTokenHash,
        verified: &VerifiedLogin<'_>,
        succeeded: &AuditEvent,
        provisional: &[AuditEvent],
    ) -> Result<SessionStart, StoreError> {
        let credential = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(keys::username(verified.username).attributes()))
            .condition_expression("password_hash = :verified AND user_id = :owner")
            .expression_attribute_values(":verified", string(verified.password_hash))
            .expression_attribute_values(":owner", string(session.user_id.to_string()))
            .build()
            .expect("table, key and condition are set");
        let [epoch_as_read, session_item, token_item] = self.session_start_items(session, token)?;
        let mut items = vec![
            TransactWriteItem::builder()
                .condition_check(credential)
                .build(),
            epoch_as_read,
            session_item,
            token_item,
            self.audit_put(succeeded)?,
            self.attempt_release(verified.username, verified.attempt),
        ];
        for event in provisional {
            items.push(self.audit_delete(event)?);
        }
        let Err(refusal) = self.transact(items).await? else {
            succeeded.log();
            return Ok(SessionStart::Started);
        };
        if refusal.any_failed(0..2) {
            Ok(SessionStart::CredentialChanged)
        } else {
            Err(refusal.unexpected("the session's start was cancelled"))
        }
    }

    /// Rotates `presented` to `successor` at `now`, in one transaction: `presented` from current
    /// to spent (recording when, and the successor's hash), the successor stored as current
    /// until `expires_at`, and the session's `last_used_at` and expiry moved on while it is
    /// active. Of racing rotations of one token exactly one is written; the others learn from
    /// the refused write what the token now is.
    pub async fn rotate_refresh_token(
        &self,
        presented: &RefreshTokenHash,
        successor: &RefreshTokenHash,
        session: &SessionRecord,
        now: OffsetDateTime,
        expires_at: i64,
    ) -> Result<Rotation, StoreError> {
        let at = rfc3339(now)?;
        let now = now.unix_timestamp();
        let spend = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::refresh_token(presented.as_str()).attributes()))
            .update_expression("SET #state = :spent, spent_at = :now, successor = :successor")
            .condition_expression("#state = :current AND #expires_at > :now")
            .expression_attribute_names("#state", STATE)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":spent", string(SPENT))
            .expression_attribute_values(":current", string(CURRENT))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":successor", string(successor.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table, key and expressions are set");
        let touch = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::session(session.id).attributes()))
            .update_expression("SET last_used_at = :at, #expires_at = :expires_at")
            .condition_expression("#status = :active AND user_id = :owner")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":at", string(at))
            .expression_attribute_values(":expires_at", number(expires_at))
            .expression_attribute_values(":active", string(ACTIVE))
            .expression_attribute_values(":owner", string(session.user_id.to_string()))
            .build()
            .expect("table, key and expressions are set");
        let items = vec![
            TransactWriteItem::builder().update(spend).build(),
            new_item(&self.table, refresh_item(successor, session, expires_at)?),
            TransactWriteItem::builder().update(touch).build(),
        ];
        let Err(refusal) = self.transact(items).await? else {
            return Ok(Rotation::Rotated);
        };
        if let Some(as_now) = refusal.read_back::<RefreshRecord>(0)? {
            Ok(Rotation::NotCurrent(as_now))
        } else if refusal.failed(2) {
            Ok(Rotation::SessionEnded)
        } else {
            Err(refusal.unexpected("refresh-token rotation cancelled"))
        }
    }

    /// Ends `user`'s session `id` (a reused or revoked refresh token) and records why (`event`),
    /// in one transaction: its refresh tokens and access tokens stop working at once. Only a
    /// session that still admits the user's tokens (active, its epoch not behind the user's as
    /// read) ends, so that of racing endings one records; `Ok(false)` for the others.
    pub async fn end_session(
        &self,
        id: Uuid,
        user: &User,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let end = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::session(id).attributes()))
            .update_expression("SET #status = :revoked")
            .condition_expression("user_id = :owner AND #status = :active AND #epoch >= :epoch")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#epoch", EPOCH)
            .expression_attribute_values(":revoked", string(REVOKED))
            .expression_attribute_values(":active", string(ACTIVE))
            .expression_attribute_values(":owner", string(user.id.to_string()))
            .expression_attribute_values(":epoch", epoch(user.session_epoch))
            .build()
            .expect("table, key and expressions are set");
        let write = TransactWriteItem::builder().update(end).build();
        self.write_recorded(vec![write], event).await
    }

    /// Ends `user`'s session `id` if it is live at `now`, recording it (`event`); `Ok(false)`
    /// when it is not the user's, not there, or over already (nothing recorded).
    pub async fn end_own_session(
        &self,
        user: &User,
        id: Uuid,
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let end = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::session(id).attributes()))
            .update_expression("SET #status = :revoked")
            .condition_expression(
                "user_id = :owner AND #status = :active AND #epoch >= :epoch AND #expires_at > :now",
            )
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#epoch", EPOCH)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":revoked", string(REVOKED))
            .expression_attribute_values(":active", string(ACTIVE))
            .expression_attribute_values(":owner", string(user.id.to_string()))
            .expression_attribute_values(":epoch", epoch(user.session_epoch))
            .expression_attribute_values(":now", number(now))
            .build()
            .expect("table, key and expressions are set");
        let write = TransactWriteItem::builder().update(end).build();
        self.write_recorded(vec![write], event).await
    }

    /// Logs one access token out, in one transaction: its revocation (kept until
    /// `verifies_until`: its `exp` plus the verification's clock leeway), the end of its session
    /// and the `logout` event. A token revoked already, or whose session is over or gone, is
    /// refused for good already: nothing is written, nor recorded.
    pub async fn log_out(
        &self,
        jti: Uuid,
        verifies_until: i64,
        session_id: Uuid,
        user_id: Uuid,
        logout: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut revocation = keys::revoked_token(jti).attributes();
        revocation.insert(TTL_ATTRIBUTE.to_owned(), number(verifies_until));
        let revocation = Put::builder()
            .table_name(&self.table)
            .set_item(Some(revocation))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .expect("table, item and condition are set");
        let end = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::session(session_id).attributes()))
            .update_expression("SET #status = :revoked")
            .condition_expression("user_id = :owner AND #status = :active")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":revoked", string(REVOKED))
            .expression_attribute_values(":active", string(ACTIVE))
            .expression_attribute_values(":owner", string(user_id.to_string()))
            .build()
            .expect("table, key and expressions are set");
        let writes = vec![
            TransactWriteItem::builder().put(revocation).build(),
            TransactWriteItem::builder().update(end).build(),
        ];
        self.write_recorded(writes, logout).await.map(drop)
    }

    /// "Log out everywhere": the user's `session_epoch` + 1, so that every session begun before
    /// is over, and the `logout` event, in one transaction. Nothing for a user who is not there.
    pub async fn end_every_session(
        &self,
        user_id: Uuid,
        logout: &AuditEvent,
    ) -> Result<(), StoreError> {
        let next_epoch = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::user(user_id).attributes()))
            .update_expression("ADD #epoch :one")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#epoch", SESSION_EPOCH)
            .expression_attribute_values(":one", number(1))
            .build()
            .expect("table, key and expressions are set");
        let write = TransactWriteItem::builder().update(next_epoch).build();
        self.write_recorded(vec![write], logout).await.map(drop)
    }

    /// A password change, in one transaction: the credential's hash from `old_hash` (the one
    /// verified) to `new_hash`; the user's `session_epoch` from the one read (`user`) to the next,
    /// which ends every session; session `session_id`'s epoch to that next one, so that it alone
    /// goes on; the `changed` event; the login attempt the old password reserved released, with
    /// the failure events recorded in case it was wrong (`provisional`) withdrawn. With
    /// `revoked_keys` (every active API key of the user, as read), those keys are revoked too,
    /// each with its event (`Store::revoke_every_api_key`).
    pub async fn change_password(
        &self,
        user: &User,
        change: &NewPassword<'_>,
        changed: &AuditEvent,
        provisional: &[AuditEvent],
        revoked_keys: Option<&[KeyRevocation]>,
    ) -> Result<PasswordChange, StoreError> {
        let NewPassword {
            old_hash,
            new_hash,
            session_id,
            attempt,
        } = *change;
        let next = user.session_epoch + 1;
        let credential = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::username(&user.username).attributes()))
            .update_expression("SET password_hash = :new")
            .condition_expression("password_hash = :old AND user_id = :owner")
            .expression_attribute_values(":new", string(new_hash))
            .expression_attribute_values(":old", string(old_hash))
            .expression_attribute_values(":owner", string(user.id.to_string()))
            .build()
            .expect("table, key and expressions are set");
        let sessions = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::user(user.id).attributes()))
            .update_expression("SET #epoch = :next")
            .condition_expression(
                "attribute_exists(PK) AND is_active = :true AND (attribute_not_exists(#epoch) OR #epoch = :read)",
            )
            .expression_attribute_names("#epoch", SESSION_EPOCH)
            .expression_attribute_values(":next", epoch(next))
            .expression_attribute_values(":read", epoch(user.session_epoch))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .build()
            .expect("table, key and expressions are set");
        let current = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::session(session_id).attributes()))
            .update_expression("SET #epoch = :next")
            .condition_expression("#status = :active AND user_id = :owner")
            .expression_attribute_names("#epoch", EPOCH)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":next", epoch(next))
            .expression_attribute_values(":active", string(ACTIVE))
            .expression_attribute_values(":owner", string(user.id.to_string()))
            .build()
            .expect("table, key and expressions are set");
        let mut items = vec![
            TransactWriteItem::builder().update(credential).build(),
            TransactWriteItem::builder().update(sessions).build(),
            TransactWriteItem::builder().update(current).build(),
            self.audit_put(changed)?,
            self.attempt_release(&user.username, attempt),
        ];
        for event in provisional {
            items.push(self.audit_delete(event)?);
        }
        let password_items = items.len();
        if let Some(revoked_keys) = revoked_keys {
            items.extend(self.revoke_every_api_key(user.id, revoked_keys)?);
        }
        let Err(refusal) = self.transact(items).await? else {
            changed.log();
            revoked_keys
                .into_iter()
                .flatten()
                .for_each(|key| key.revoked.log());
            return Ok(PasswordChange::Changed);
        };
        tracing::info!(reasons = ?refusal, "password change refused by its conditions");
        if refusal.any_failed(0..password_items) {
            Ok(PasswordChange::Conflict)
        } else {
            Ok(PasswordChange::KeysChanged)
        }
    }

    /// The user's live sessions at `now`, newest first (GSI1, every page; eventually consistent
    /// in AWS).
    pub async fn live_sessions(
        &self,
        user: &User,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let items = self
            .owned_items(user.id, SESSION_PREFIX)
            .filter_expression("#status = :active AND #epoch >= :epoch AND #expires_at > :now")
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#epoch", EPOCH)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":active", string(ACTIVE))
            .expression_attribute_values(":epoch", epoch(user.session_epoch))
            .expression_attribute_values(":now", number(now))
            .scan_index_forward(false)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await?;
        let sessions: Vec<SessionRecord> = from_items(items)?;
        Ok(sessions
            .into_iter()
            .filter(|session| session.live(user, now))
            .collect())
    }

    /// Records that `user` proved their password again at `at` in session `session_id`: its
    /// `auth_time`, with the `succeeded` event, withdrawing the failure `provisional` recorded
    /// in case the password was wrong, in one transaction; on condition that the session is
    /// still live (the user's, active, not behind the user's epoch as read, unexpired). A user
    /// with a second factor spends the one they proved (`second_factor`) in it too.
    pub async fn reauthenticate(
        &self,
        user: &User,
        session_id: Uuid,
        at: OffsetDateTime,
        second_factor: Option<&FactorUse>,
        events: (&[AuditEvent], &[AuditEvent]),
    ) -> Result<Reauthentication, StoreError> {
        let (recorded, provisional) = events;
        let signed_in = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::session(session_id).attributes()))
            .update_expression("SET auth_time = :at")
            .condition_expression(
                "user_id = :owner AND #status = :active AND #epoch >= :epoch AND #expires_at > :now",
            )
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#epoch", EPOCH)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":at", string(rfc3339(at)?))
            .expression_attribute_values(":owner", string(user.id.to_string()))
            .expression_attribute_values(":active", string(ACTIVE))
            .expression_attribute_values(":epoch", epoch(user.session_epoch))
            .expression_attribute_values(":now", number(at.unix_timestamp()))
            .build()
            .expect("table, key and expressions are set");
        let mut items = vec![TransactWriteItem::builder().update(signed_in).build()];
        for event in recorded {
            items.push(self.audit_put(event)?);
        }
        for event in provisional {
            items.push(self.audit_delete(event)?);
        }
        let factor_at = items.len();
        if let Some(used) = second_factor {
            items.extend(self.factor_items(user.id, used, at.unix_timestamp())?);
        }
        let Err(refusal) = self.transact(items).await? else {
            recorded.iter().for_each(AuditEvent::log);
            return Ok(Reauthentication::Recorded);
        };
        if refusal.failed(0) {
            Ok(Reauthentication::SessionEnded)
        } else if refusal.failed(factor_at + 1) {
            Ok(Reauthentication::SecondFactorLimited)
        } else if refusal.failed(factor_at) {
            Ok(Reauthentication::SecondFactorSpent)
        } else {
            Err(refusal.unexpected("reauthentication cancelled"))
        }
    }
}
