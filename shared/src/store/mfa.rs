//! The second factor (issue 24). A user's factor is one item (`keys::second_factor`): its TOTP
//! secret as sealed by `auth::MfaKeys` (never in the clear), the last time step a code was
//! accepted at (a code is accepted only for a later step: RFC 6238 section 5.2), and its unused
//! backup codes' keyed hashes, each removed by the conditional write that accepts it. Wrong
//! second factors count on one item per user (`keys::second_factor_failures`), an hour-long
//! window from its first failure. A login's second step is an item per temp token, by the
//! token's SHA-256, with a TTL. See docs/table-design.md.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_attribute_value, to_item};
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::unless_refused;
use super::keys::{self, Key};
use super::sessions::SessionRecord;
use super::{Item, Store, StoreError, TTL_ATTRIBUTE, find, number, string};
use crate::domain::{AuditEvent, MfaLoginToken, RefreshTokenHash, User, rfc3339};

/// Wrong second factors one user may send in `FAILURE_WINDOW_SECONDS` before every further one
/// is answered 429 until the window ends.
pub const MAX_SECOND_FACTOR_FAILURES: i64 = 10;
pub const FAILURE_WINDOW_SECONDS: i64 = 60 * 60;
/// Wrong codes after which a login's temp token is dead.
pub const MAX_LOGIN_TOKEN_FAILURES: i64 = 5;
/// How long a login's temp token lives.
pub const MFA_LOGIN_SECONDS: i64 = 300;

const STATE: &str = "state";
const LAST_STEP: &str = "last_step";
const BACKUP_CODES: &str = "backup_codes";
const SETUP_ID: &str = "setup_id";
const COUNT: &str = "count";
const WRONG: &str = "wrong";
const SESSION_EPOCH: &str = "session_epoch";
const EPOCH: &str = "epoch";
const STATUS: &str = "status";
const MFA: &str = "mfa";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FactorState {
    /// Set up, not yet verified: it protects nothing.
    Pending,
    Enabled,
}

/// A user's second factor as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactor {
    pub user_id: Uuid,
    pub state: FactorState,
    /// Which setup this is: verifying enables only the setup whose code it checked.
    pub setup_id: Uuid,
    /// The TOTP secret, sealed (`auth::MfaKeys::seal`).
    pub sealed_secret: String,
    /// The last time step a code was accepted at (0: none yet).
    pub last_step: u64,
    /// The unused backup codes' keyed hashes (the value means nothing: DynamoDB has no empty
    /// set, and a map's member can be removed by a conditional write).
    pub backup_codes: HashMap<String, bool>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub enabled_at: Option<OffsetDateTime>,
}

impl SecondFactor {
    /// A new, pending factor.
    pub fn pending(
        user_id: Uuid,
        sealed_secret: String,
        backup_code_hashes: Vec<String>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            user_id,
            state: FactorState::Pending,
            setup_id: Uuid::now_v7(),
            sealed_secret,
            last_step: 0,
            backup_codes: backup_code_hashes
                .into_iter()
                .map(|hash| (hash, true))
                .collect(),
            created_at: now,
            enabled_at: None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.state == FactorState::Enabled
    }
}

/// A user's wrong second factors in the current window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecondFactorFailures {
    pub count: i64,
    /// When the window ends (epoch s); 0 with no window.
    pub window_ends_at: i64,
}

impl SecondFactorFailures {
    /// Seconds until the window ends, when its failures reached the limit at `now`.
    pub fn limited(&self, now: i64) -> Option<u64> {
        (self.window_ends_at > now && self.count >= MAX_SECOND_FACTOR_FAILURES)
            .then(|| (self.window_ends_at - now).unsigned_abs())
    }

    /// An item whose window ended counts as none by `limited` and `record_second_factor_failure`,
    /// whatever DynamoDB's TTL has done with it yet.
    fn from_item(item: Option<&Item>) -> Result<Self, StoreError> {
        let Some(item) = item else {
            return Ok(Self::default());
        };
        let whole = |name: &str| {
            item.get(name)
                .and_then(|value| value.as_n().ok())
                .and_then(|value| value.parse::<i64>().ok())
                .ok_or_else(|| {
                    StoreError::Unexpected(format!("second-factor failures without {name}"))
                })
        };
        Ok(Self {
            count: whole(COUNT)?,
            window_ends_at: whole(TTL_ATTRIBUTE)?,
        })
    }
}

/// A user's factor and wrong second factors, read together.
#[derive(Clone, Debug)]
pub struct SecondFactorState {
    pub factor: Option<SecondFactor>,
    pub failures: SecondFactorFailures,
}

impl SecondFactorState {
    pub fn keys(user_id: Uuid) -> Vec<Key> {
        vec![
            keys::second_factor(user_id),
            keys::second_factor_failures(user_id),
        ]
    }

    pub fn from_items(items: &[Item], user_id: Uuid) -> Result<Self, StoreError> {
        Ok(Self {
            factor: find(items, &keys::second_factor(user_id))
                .cloned()
                .map(from_item)
                .transpose()?,
            failures: SecondFactorFailures::from_item(find(
                items,
                &keys::second_factor_failures(user_id),
            ))?,
        })
    }
}

/// A login waiting for its second factor, as stored under its temp token's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub user_id: Uuid,
    /// The user's `session_epoch` when the password was verified: a password change or "log out
    /// everywhere" since then refuses the second step.
    pub epoch: u64,
    /// Wrong codes presented with it so far.
    pub wrong: i64,
    pub expires_at: i64,
}

impl PendingLogin {
    /// Whether it can still be completed at `now`.
    pub fn usable(&self, now: i64) -> bool {
        self.expires_at > now && self.wrong < MAX_LOGIN_TOKEN_FAILURES
    }
}

/// What a login's second step reads, in the rate limiter's round trip: the temp token's item,
/// the user's profile, factor and wrong second factors.
#[derive(Debug)]
pub struct MfaLoginState {
    pub pending: Option<PendingLogin>,
    pub user: Option<User>,
    pub second_factor: SecondFactorState,
}

impl MfaLoginState {
    pub fn keys(token: &MfaLoginToken) -> Vec<Key> {
        let mut keys = vec![keys::mfa_login(&token.hash()), keys::user(token.user_id())];
        keys.extend(SecondFactorState::keys(token.user_id()));
        keys
    }

    pub fn from_items(items: &[Item], token: &MfaLoginToken) -> Result<Self, StoreError> {
        let pending: Option<PendingLogin> = find(items, &keys::mfa_login(&token.hash()))
            .cloned()
            .map(from_item)
            .transpose()?;
        Ok(Self {
            pending: pending.filter(|pending| pending.user_id == token.user_id()),
            user: find(items, &keys::user(token.user_id()))
                .cloned()
                .map(from_item)
                .transpose()?,
            second_factor: SecondFactorState::from_items(items, token.user_id())?,
        })
    }
}

/// Which second factor a request proved, to be spent by the write that accepts it.
#[derive(Clone, Debug)]
pub enum FactorUse {
    /// A TOTP code of this time step: written as the last accepted one, on condition that it is
    /// later than the last.
    Totp { step: u64 },
    /// A backup code, by its keyed hash: removed, on condition that it is still there.
    BackupCode { hash: String },
}

/// What a write that spends a second factor came to.
#[derive(Debug, PartialEq, Eq)]
pub enum FactorOutcome {
    Accepted,
    /// The code was spent meanwhile (the same TOTP step, or the same backup code, accepted by
    /// another request), or the factor changed: nothing was written.
    Spent,
    /// The user's wrong second factors reached the limit meanwhile: nothing was written.
    Limited,
    /// What the request was about changed meanwhile (the temp token used or burnt, the session
    /// ended, the password changed, another setup replaced the one verified): nothing written.
    Conflict,
}

/// A wrong second factor, as recorded.
pub struct SecondFactorFailure<'a> {
    pub user_id: Uuid,
    /// The failures as read (which form of write restarts or extends the window).
    pub seen: SecondFactorFailures,
    /// The login's temp token it was presented with, and that token's wrong codes as read.
    pub login: Option<(&'a MfaLoginToken, i64)>,
    pub event: &'a AuditEvent,
}

/// The verification of a factor's setup: what enabling it writes.
pub struct FactorEnabling<'a> {
    pub user: &'a User,
    pub factor: &'a SecondFactor,
    pub step: u64,
    /// The session that verified: raised to the second factor; every other session ends.
    pub session_id: Uuid,
    pub at: OffsetDateTime,
}

fn update(
    builder: aws_sdk_dynamodb::types::builders::UpdateBuilder,
) -> Result<TransactWriteItem, StoreError> {
    let update = builder
        .build()
        .map_err(|error| StoreError::Unexpected(error.to_string()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

fn check(
    builder: aws_sdk_dynamodb::types::builders::ConditionCheckBuilder,
) -> Result<TransactWriteItem, StoreError> {
    let check = builder
        .build()
        .map_err(|error| StoreError::Unexpected(error.to_string()))?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

fn epoch(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl Store {
    /// Stores a new pending factor, replacing a pending one, on condition that the user has no
    /// enabled factor (`false`: one was enabled meanwhile; nothing written).
    pub async fn set_up_factor(&self, factor: &SecondFactor) -> Result<bool, StoreError> {
        let mut item = to_item(factor)?;
        item.extend(keys::second_factor(factor.user_id).attributes());
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR #state = :pending")
            .expression_attribute_names("#state", STATE)
            .expression_attribute_values(":pending", string("pending"))
            .send()
            .await;
        Ok(unless_refused(result)?.is_some())
    }

    /// The write that spends `used` of `user_id`'s enabled factor.
    fn factor_use(&self, user_id: Uuid, used: &FactorUse) -> Result<TransactWriteItem, StoreError> {
        let builder = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::second_factor(user_id).attributes()))
            .expression_attribute_names("#state", STATE)
            .expression_attribute_values(":enabled", string("enabled"));
        update(match used {
            FactorUse::Totp { step } => builder
                .update_expression("SET #last_step = :step")
                .condition_expression("#state = :enabled AND #last_step < :step")
                .expression_attribute_names("#last_step", LAST_STEP)
                .expression_attribute_values(":step", number(*step as i64)),
            FactorUse::BackupCode { hash } => builder
                .update_expression("REMOVE #codes.#code")
                .condition_expression("#state = :enabled AND attribute_exists(#codes.#code)")
                .expression_attribute_names("#codes", BACKUP_CODES)
                .expression_attribute_names("#code", hash),
        })
    }

    /// The check that `user_id`'s wrong second factors are under the limit at `now`.
    fn failures_under_limit(
        &self,
        user_id: Uuid,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        check(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(keys::second_factor_failures(user_id).attributes()))
                .condition_expression(
                    "attribute_not_exists(PK) OR #expires_at <= :now OR #count < :limit",
                )
                .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
                .expression_attribute_names("#count", COUNT)
                .expression_attribute_values(":now", number(now))
                .expression_attribute_values(":limit", number(MAX_SECOND_FACTOR_FAILURES)),
        )
    }

    /// Runs `items`, whose first `factor_items` spend the factor and whose next one is the
    /// failures' check; `conflict_items` more after them decide a `Conflict`.
    async fn spend_factor(
        &self,
        items: Vec<TransactWriteItem>,
        factor_items: usize,
        conflict_items: usize,
        events: &[&AuditEvent],
    ) -> Result<FactorOutcome, StoreError> {
        let Err(refusal) = self.transact(items).await? else {
            events.iter().for_each(|event| event.log());
            return Ok(FactorOutcome::Accepted);
        };
        if refusal.failed(factor_items) {
            Ok(FactorOutcome::Limited)
        } else if refusal.any_failed(factor_items + 1..factor_items + 1 + conflict_items) {
            Ok(FactorOutcome::Conflict)
        } else if refusal.any_failed(0..factor_items) {
            Ok(FactorOutcome::Spent)
        } else {
            Err(refusal.unexpected("a second factor's write was cancelled"))
        }
    }

    /// Spends `used` (`mfa/validate`), recording `events` with it.
    pub async fn use_factor(
        &self,
        user_id: Uuid,
        used: &FactorUse,
        now: i64,
        events: &[&AuditEvent],
    ) -> Result<FactorOutcome, StoreError> {
        let mut items = vec![
            self.factor_use(user_id, used)?,
            self.failures_under_limit(user_id, now)?,
        ];
        for event in events {
            items.push(self.audit_put(event)?);
        }
        self.spend_factor(items, 1, 0, events).await
    }

    /// Replaces the backup codes by `hashes`, spending `used` (`mfa/regenerate-backup-codes`):
    /// one write of the factor, so that a backup code spent here dies with the others.
    pub async fn replace_backup_codes(
        &self,
        user_id: Uuid,
        used: &FactorUse,
        hashes: Vec<String>,
        now: i64,
        regenerated: &AuditEvent,
    ) -> Result<FactorOutcome, StoreError> {
        let codes: HashMap<String, bool> = hashes.into_iter().map(|hash| (hash, true)).collect();
        let builder = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::second_factor(user_id).attributes()))
            .expression_attribute_names("#state", STATE)
            .expression_attribute_names("#codes", BACKUP_CODES)
            .expression_attribute_values(":enabled", string("enabled"))
            .expression_attribute_values(":codes", to_attribute_value(codes)?);
        let replace = update(match used {
            FactorUse::Totp { step } => builder
                .update_expression("SET #codes = :codes, #last_step = :step")
                .condition_expression("#state = :enabled AND #last_step < :step")
                .expression_attribute_names("#last_step", LAST_STEP)
                .expression_attribute_values(":step", number(*step as i64)),
            FactorUse::BackupCode { hash } => builder
                .update_expression("SET #codes = :codes")
                .condition_expression("#state = :enabled AND attribute_exists(#codes.#code)")
                .expression_attribute_names("#code", hash),
        })?;
        let items = vec![
            replace,
            self.failures_under_limit(user_id, now)?,
            self.audit_put(regenerated)?,
        ];
        self.spend_factor(items, 1, 0, &[regenerated]).await
    }

    /// Records a wrong second factor: the user's failures counted (a window restarted when the
    /// last one ended), the temp token's wrong codes counted, and `mfa.failed`, in one
    /// transaction. A window that began or ended meanwhile is written in its other form once.
    pub async fn record_second_factor_failure(
        &self,
        failure: &SecondFactorFailure<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut extends = failure.seen.window_ends_at > now;
        for _ in 0..2 {
            let counted = Update::builder()
                .table_name(&self.table)
                .set_key(Some(
                    keys::second_factor_failures(failure.user_id).attributes(),
                ))
                .expression_attribute_names("#count", COUNT)
                .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
                .expression_attribute_values(":one", number(1))
                .expression_attribute_values(":now", number(now));
            let counted = update(match extends {
                true => counted
                    .update_expression("ADD #count :one")
                    .condition_expression("#expires_at > :now"),
                false => counted
                    .update_expression("SET #count = :one, #expires_at = :ends")
                    .condition_expression("attribute_not_exists(PK) OR #expires_at <= :now")
                    .expression_attribute_values(":ends", number(now + FAILURE_WINDOW_SECONDS)),
            })?;
            let mut items = vec![counted, self.audit_put(failure.event)?];
            if let Some((token, _)) = failure.login {
                // Unconditional: a token used or gone meanwhile is left an item that has
                // already expired.
                items.push(update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(keys::mfa_login(&token.hash()).attributes()))
                        .update_expression(
                            "ADD #wrong :one SET #expires_at = if_not_exists(#expires_at, :now)",
                        )
                        .expression_attribute_names("#wrong", WRONG)
                        .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
                        .expression_attribute_values(":one", number(1))
                        .expression_attribute_values(":now", number(now)),
                )?);
            }
            let Err(refusal) = self.transact(items).await? else {
                failure.event.log();
                return Ok(());
            };
            if !refusal.failed(0) {
                return Err(refusal.unexpected("a wrong second factor's record was cancelled"));
            }
            extends = !extends;
        }
        Err(StoreError::Unavailable(
            "the second-factor failure window kept changing".into(),
        ))
    }

    /// Stores a login waiting for its second factor under `token`'s hash, releasing the attempt
    /// its right password reserved and withdrawing its provisional failure, in one transaction.
    pub async fn start_mfa_login(
        &self,
        token: &MfaLoginToken,
        pending: &PendingLogin,
        username: &str,
        attempt: Uuid,
        provisional: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut item = to_item(pending)?;
        item.extend(keys::mfa_login(&token.hash()).attributes());
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.attempt_release(username, attempt),
        ];
        for event in provisional {
            items.push(self.audit_delete(event)?);
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await?;
        Ok(())
    }

    /// Completes a login's second step: the temp token spent (on condition that it is unexpired
    /// and not burnt), the factor spent, the failures under the limit, and the session started
    /// (as `start_session`, on condition that the user's epoch is still the one the password was
    /// verified at) with `events`, all in one transaction.
    pub async fn complete_mfa_login(
        &self,
        token: &MfaLoginToken,
        used: &FactorUse,
        session: &SessionRecord,
        refresh: &RefreshTokenHash,
        now: i64,
        events: &[&AuditEvent],
    ) -> Result<FactorOutcome, StoreError> {
        let spend_token = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(keys::mfa_login(&token.hash()).attributes()))
            .condition_expression(
                "attribute_exists(PK) AND #wrong < :max AND #expires_at > :now AND user_id = :owner",
            )
            .expression_attribute_names("#wrong", WRONG)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":max", number(MAX_LOGIN_TOKEN_FAILURES))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":owner", string(session.user_id.to_string()))
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        let [epoch_as_read, session_item, refresh_item] =
            self.session_start_items(session, refresh)?;
        let mut items = vec![
            self.factor_use(session.user_id, used)?,
            self.failures_under_limit(session.user_id, now)?,
            TransactWriteItem::builder().delete(spend_token).build(),
            epoch_as_read,
            session_item,
            refresh_item,
        ];
        for event in events {
            items.push(self.audit_put(event)?);
        }
        self.spend_factor(items, 1, 2, events).await
    }

    /// Enables a verified setup: the factor enabled at the verified step (on condition that it
    /// is still the pending setup verified), the credential marked (so that a login asks for the
    /// second factor), every other session of the user ended and the verifying one raised to the
    /// second factor (as a password change: the user's epoch moves on, the session's with it),
    /// and `enabled`, in one transaction.
    pub async fn enable_factor(
        &self,
        enabling: &FactorEnabling<'_>,
        enabled: &AuditEvent,
    ) -> Result<FactorOutcome, StoreError> {
        let FactorEnabling {
            user,
            factor,
            step,
            session_id,
            at,
        } = enabling;
        let next = user.session_epoch + 1;
        let enable = update(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(keys::second_factor(user.id).attributes()))
                .update_expression("SET #state = :enabled, #last_step = :step, enabled_at = :at")
                .condition_expression("#state = :pending AND #setup = :setup")
                .expression_attribute_names("#state", STATE)
                .expression_attribute_names("#last_step", LAST_STEP)
                .expression_attribute_names("#setup", SETUP_ID)
                .expression_attribute_values(":enabled", string("enabled"))
                .expression_attribute_values(":pending", string("pending"))
                .expression_attribute_values(":setup", string(factor.setup_id.to_string()))
                .expression_attribute_values(":step", number(*step as i64))
                .expression_attribute_values(":at", string(rfc3339(*at)?)),
        )?;
        let mut items = vec![
            enable,
            self.failures_under_limit(user.id, at.unix_timestamp())?,
            self.credential_second_factor(user, true)?,
            update(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(keys::user(user.id).attributes()))
                    .update_expression("SET #epoch = :next")
                    .condition_expression(
                        "attribute_exists(PK) AND is_active = :true AND (attribute_not_exists(#epoch) OR #epoch = :read)",
                    )
                    .expression_attribute_names("#epoch", SESSION_EPOCH)
                    .expression_attribute_values(":next", epoch(next))
                    .expression_attribute_values(":read", epoch(user.session_epoch))
                    .expression_attribute_values(":true", AttributeValue::Bool(true)),
            )?,
            update(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(keys::session(*session_id).attributes()))
                    .update_expression("SET #epoch = :next, second_factor = :true")
                    .condition_expression("#status = :active AND user_id = :owner")
                    .expression_attribute_names("#epoch", EPOCH)
                    .expression_attribute_names("#status", STATUS)
                    .expression_attribute_values(":next", epoch(next))
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .expression_attribute_values(":active", string("active"))
                    .expression_attribute_values(":owner", string(user.id.to_string())),
            )?,
        ];
        items.push(self.audit_put(enabled)?);
        self.spend_factor(items, 1, 3, &[enabled]).await
    }

    /// The credential's mark that its user has a second factor (`login` reads it with the
    /// credential), on condition that the credential is still the user's.
    fn credential_second_factor(
        &self,
        user: &User,
        enabled: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        update(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(keys::username(&user.username).attributes()))
                .update_expression("SET #mfa = :enabled")
                .condition_expression("user_id = :owner")
                .expression_attribute_names("#mfa", MFA)
                .expression_attribute_values(":enabled", AttributeValue::Bool(enabled))
                .expression_attribute_values(":owner", string(user.id.to_string())),
        )
    }

    /// Disables the user's factor: deleted, spending `used` (on condition that it is enabled and
    /// the code unspent), the credential's mark cleared, the attempt the right password reserved
    /// released and its provisional failure withdrawn, with `disabled`, in one transaction.
    pub async fn disable_factor(
        &self,
        user: &User,
        used: &FactorUse,
        now: i64,
        attempt: Uuid,
        disabled: &AuditEvent,
        provisional: &[AuditEvent],
    ) -> Result<FactorOutcome, StoreError> {
        let builder = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(keys::second_factor(user.id).attributes()))
            .expression_attribute_names("#state", STATE)
            .expression_attribute_values(":enabled", string("enabled"));
        let delete = match used {
            FactorUse::Totp { step } => builder
                .condition_expression("#state = :enabled AND #last_step < :step")
                .expression_attribute_names("#last_step", LAST_STEP)
                .expression_attribute_values(":step", number(*step as i64)),
            FactorUse::BackupCode { hash } => builder
                .condition_expression("#state = :enabled AND attribute_exists(#codes.#code)")
                .expression_attribute_names("#codes", BACKUP_CODES)
                .expression_attribute_names("#code", hash),
        }
        .build()
        .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.failures_under_limit(user.id, now)?,
            self.credential_second_factor(user, false)?,
            self.audit_put(disabled)?,
            self.attempt_release(&user.username, attempt),
        ];
        for event in provisional {
            items.push(self.audit_delete(event)?);
        }
        self.spend_factor(items, 1, 1, &[disabled]).await
    }

    /// The writes that spend `used` and check the failures, for a transaction of another
    /// action that a second factor allows (reauthentication).
    pub(super) fn factor_items(
        &self,
        user_id: Uuid,
        used: &FactorUse,
        now: i64,
    ) -> Result<[TransactWriteItem; 2], StoreError> {
        Ok([
            self.factor_use(user_id, used)?,
            self.failures_under_limit(user_id, now)?,
        ])
    }
}
