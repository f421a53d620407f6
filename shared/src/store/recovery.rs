//! Account recovery's items (issue 25): one-time tokens, stored under their SHA-256 with a TTL
//! (`RESET#<hash>`: a password reset; `VERIFY#<hash>`: an address's verification), and the
//! mail logs that cap each recipient's mails in any hour. A reset token carries the user's `reset_generation` at its issue: the
//! reset that spends one moves the generation on, which kills every other. See
//! docs/table-design.md.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::error::{unless_refused, update_or_read_back};
use super::keys::{self, Key};
use super::{Item, Store, StoreError, TTL_ATTRIBUTE, expired, number, string};
use crate::domain::{AuditEvent, Email, RecoveryTokenHash, TokenPurpose, User};

const RESET_GENERATION: &str = "reset_generation";
/// A mail log's attribute: the times (epoch s) of the recipient's last mails, oldest first.
const SENT: &str = "sent";
/// How long a mail counts against its recipient's cap.
const MAIL_LOG_SECONDS: i64 = 3600;
const SESSION_EPOCH: &str = "session_epoch";

/// A password-reset token as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetRecord {
    pub user_id: Uuid,
    pub username: String,
    /// The user's `reset_generation` when it was issued.
    pub generation: u64,
    pub expires_at: i64,
}

/// An address-verification token as stored: the address it proves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    pub user_id: Uuid,
    pub email: String,
    pub expires_at: i64,
}

/// Whether a mail may go out under its recipient's cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailCount {
    /// Counted: send it.
    Counted,
    /// The cap is reached; a place frees in this many seconds.
    Capped { retry_after_seconds: u64 },
}

fn sent_times(item: &Item) -> Vec<i64> {
    item.get(SENT)
        .and_then(|sent| sent.as_l().ok())
        .map(|times| {
            times
                .iter()
                .filter_map(|time| time.as_n().ok()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A token to store, and until when it works (epoch s).
pub struct NewToken {
    pub hash: RecoveryTokenHash,
    pub expires_at: i64,
}

/// How a spend of a token ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Spend {
    Done,
    /// Spent already (by a racing request), expired, or another reset came first.
    TokenInvalid,
}

fn token_key(purpose: TokenPurpose, hash: &RecoveryTokenHash) -> Key {
    match purpose {
        TokenPurpose::PasswordReset => keys::reset_token(hash.as_str()),
        TokenPurpose::EmailVerification => keys::verification_token(hash.as_str()),
    }
}

impl Store {
    /// The user an address belongs to, if any (two consistent reads: the address's
    /// reservation, then the profile).
    pub async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::email(email.as_str()).attributes()))
            .consistent_read(true)
            .send()
            .await?;
        let owner = output
            .item
            .and_then(|item| item.get("user_id")?.as_s().ok()?.parse::<Uuid>().ok());
        match owner {
            Some(id) => self.user(id).await,
            None => Ok(None),
        }
    }

    /// Counts one mail of `purpose` to `recipient` (an address, or a user id) unless `cap` were
    /// sent in the hour before `now`. The recipient's item keeps the times of its last `cap`
    /// mails, oldest first: a place is free while fewer are kept, or once the oldest is an hour
    /// old (then it gives way). Each write is conditioned on what it read, so the cap holds
    /// across every Lambda instance and in any 60 minutes, not only within a clock hour.
    pub async fn count_mail(
        &self,
        purpose: TokenPurpose,
        recipient: &str,
        cap: u64,
        now: i64,
    ) -> Result<MailCount, StoreError> {
        let digest: String = Sha256::digest(recipient.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let key = keys::mail_log(purpose.as_str(), &digest);
        let kept = match self.append_mail(&key, cap, now).await? {
            Ok(()) => return Ok(MailCount::Counted),
            Err(kept) => kept,
        };
        // Full: a racing request may take the place that frees, but only one of them.
        match kept.first() {
            Some(&oldest) if oldest <= now - MAIL_LOG_SECONDS => {
                let mut times = kept[1..].to_vec();
                times.push(now);
                if self.rotate_mail(&key, oldest, &times, now).await? {
                    return Ok(MailCount::Counted);
                }
                Ok(MailCount::Capped {
                    retry_after_seconds: MAIL_LOG_SECONDS as u64,
                })
            }
            Some(&oldest) => Ok(MailCount::Capped {
                retry_after_seconds: (oldest + MAIL_LOG_SECONDS - now).max(1) as u64,
            }),
            None => Err(StoreError::Unexpected(
                "a mail log refused an append but keeps no time".into(),
            )),
        }
    }

    /// Appends `now` to the log while it keeps fewer than `cap` times; otherwise the times it
    /// keeps.
    async fn append_mail(
        &self,
        key: &Key,
        cap: u64,
        now: i64,
    ) -> Result<Result<(), Vec<i64>>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.attributes()))
            .update_expression(
                "SET #sent = list_append(if_not_exists(#sent, :none), :now), #ttl = :ttl",
            )
            .condition_expression("attribute_not_exists(#sent) OR size(#sent) < :cap")
            .expression_attribute_names("#sent", SENT)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":now", AttributeValue::L(vec![number(now)]))
            .expression_attribute_values(":cap", number(cap as i64))
            .expression_attribute_values(":ttl", number(now + MAIL_LOG_SECONDS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        Ok(match update_or_read_back(result)? {
            Ok(_) => Ok(()),
            Err(old) => Err(old.as_ref().map(sent_times).unwrap_or_default()),
        })
    }

    /// Replaces a full log whose oldest time is still `oldest` by `times`: `false` when another
    /// request changed it first.
    async fn rotate_mail(
        &self,
        key: &Key,
        oldest: i64,
        times: &[i64],
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.attributes()))
            .update_expression("SET #sent = :times, #ttl = :ttl")
            .condition_expression("#sent[0] = :oldest")
            .expression_attribute_names("#sent", SENT)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(
                ":times",
                AttributeValue::L(times.iter().map(|time| number(*time)).collect()),
            )
            .expression_attribute_values(":oldest", number(oldest))
            .expression_attribute_values(":ttl", number(now + MAIL_LOG_SECONDS))
            .send()
            .await;
        Ok(unless_refused(result)?.is_some())
    }

    /// Stores a password-reset token for `user` (its item names the user, its username and
    /// reset generation).
    pub async fn issue_reset_token(&self, user: &User, token: NewToken) -> Result<(), StoreError> {
        let record = ResetRecord {
            user_id: user.id,
            username: user.username.clone(),
            generation: user.reset_generation,
            expires_at: token.expires_at,
        };
        let mut item = to_item(&record)?;
        item.extend(keys::reset_token(token.hash.as_str()).attributes());
        item.insert(TTL_ATTRIBUTE.to_owned(), number(token.expires_at));
        self.put(item).await
    }

    /// The item of an address-verification token, for the transaction that stores it (a
    /// registration's).
    pub(super) fn verification_put(
        &self,
        user: &User,
        token: &NewToken,
    ) -> Result<TransactWriteItem, StoreError> {
        let record = VerificationRecord {
            user_id: user.id,
            email: user.email.clone(),
            expires_at: token.expires_at,
        };
        let mut item = to_item(&record)?;
        item.extend(keys::verification_token(token.hash.as_str()).attributes());
        item.insert(TTL_ATTRIBUTE.to_owned(), number(token.expires_at));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .expect("table and item are set");
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Stores an address-verification token for `user`'s current address.
    pub async fn issue_verification_token(
        &self,
        user: &User,
        token: NewToken,
    ) -> Result<(), StoreError> {
        self.transact(vec![self.verification_put(user, &token)?])
            .await?
            .map_err(|refusal| refusal.unexpected("an unconditional put was refused"))
    }

    /// A token's item, if it is there and unexpired at `now` (one consistent read).
    pub async fn recovery_token<T: serde::de::DeserializeOwned>(
        &self,
        purpose: TokenPurpose,
        hash: &RecoveryTokenHash,
        now: i64,
    ) -> Result<Option<T>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(token_key(purpose, hash).attributes()))
            .consistent_read(true)
            .send()
            .await?;
        Ok(output
            .item
            .filter(|item| !expired(item, now))
            .map(from_item)
            .transpose()?)
    }

    /// The spend of a token: deleted, on condition that it is there and unexpired at `now`, so
    /// that of racing spends one succeeds.
    fn token_spend(
        &self,
        purpose: TokenPurpose,
        hash: &RecoveryTokenHash,
        now: i64,
    ) -> TransactWriteItem {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(token_key(purpose, hash).attributes()))
            .condition_expression("attribute_exists(PK) AND #expires_at > :now")
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", number(now))
            .build()
            .expect("table, key and condition are set");
        TransactWriteItem::builder().delete(delete).build()
    }

    /// A password reset, in one transaction: the token spent (it must still be there and
    /// unexpired), the credential's hash replaced, the user's session epoch moved on (every
    /// session ends) and its reset generation with it (every other reset token dies; the
    /// condition that it is still the token's makes racing resets with two tokens one), the
    /// username's failed logins cleared (its lockout with them), and `reset` recorded.
    pub async fn reset_password(
        &self,
        token: &RecoveryTokenHash,
        record: &ResetRecord,
        new_hash: &str,
        now: i64,
        reset: &AuditEvent,
    ) -> Result<Spend, StoreError> {
        let credential = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::username(&record.username).attributes()))
            .update_expression("SET password_hash = :new")
            .condition_expression("user_id = :owner")
            .expression_attribute_values(":new", string(new_hash))
            .expression_attribute_values(":owner", string(record.user_id.to_string()))
            .build()
            .expect("table, key and expressions are set");
        let user = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::user(record.user_id).attributes()))
            .update_expression("ADD #epoch :one, #generation :one")
            .condition_expression(if record.generation == 0 {
                "attribute_exists(PK) AND attribute_not_exists(#generation)"
            } else {
                "attribute_exists(PK) AND #generation = :generation"
            })
            .expression_attribute_names("#epoch", SESSION_EPOCH)
            .expression_attribute_names("#generation", RESET_GENERATION)
            .set_expression_attribute_values(Some(
                [(":one".to_owned(), number(1))]
                    .into_iter()
                    .chain((record.generation != 0).then(|| {
                        (
                            ":generation".to_owned(),
                            AttributeValue::N(record.generation.to_string()),
                        )
                    }))
                    .collect(),
            ))
            .build()
            .expect("table, key and expressions are set");
        let lockout = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(keys::login_failures(&record.username).attributes()))
            .build()
            .expect("table and key are set");
        let items = vec![
            self.token_spend(TokenPurpose::PasswordReset, token, now),
            TransactWriteItem::builder().update(credential).build(),
            TransactWriteItem::builder().update(user).build(),
            TransactWriteItem::builder().delete(lockout).build(),
            self.audit_put(reset)?,
        ];
        let Err(refusal) = self.transact(items).await? else {
            reset.log();
            return Ok(Spend::Done);
        };
        if refusal.failed(0) || refusal.failed(2) {
            Ok(Spend::TokenInvalid)
        } else {
            Err(refusal.unexpected("password reset cancelled"))
        }
    }

    /// An address's verification, in one transaction: the token spent, the user's
    /// `email_verified` set while its address is still the one the token proves, and `verified`
    /// recorded.
    pub async fn verify_email(
        &self,
        token: &RecoveryTokenHash,
        record: &VerificationRecord,
        now: i64,
        verified: &AuditEvent,
    ) -> Result<Spend, StoreError> {
        let user = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::user(record.user_id).attributes()))
            .update_expression("SET email_verified = :true")
            .condition_expression("attribute_exists(PK) AND email = :email")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":email", string(&record.email))
            .build()
            .expect("table, key and expressions are set");
        let items = vec![
            self.token_spend(TokenPurpose::EmailVerification, token, now),
            TransactWriteItem::builder().update(user).build(),
            self.audit_put(verified)?,
        ];
        let Err(refusal) = self.transact(items).await? else {
            verified.log();
            return Ok(Spend::Done);
        };
        if refusal.any_failed(0..2) {
            Ok(Spend::TokenInvalid)
        } else {
            Err(refusal.unexpected("address verification cancelled"))
        }
    }
}
