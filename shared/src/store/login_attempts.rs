//! The login attempts of a username that did not succeed: failed, or still being verified. One
//! item per username (`keys::login_failures`), rewritten whole under a version number, so that
//! an attempt is reserved by one conditional write (a transaction, with a login's provisional
//! audit events) before its password is verified.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use uuid::Uuid;

use super::error::unless_refused;
use super::keys;
use super::{Item, Store, StoreError, TTL_ATTRIBUTE, find, number};
use crate::domain::AuditEvent;

const ATTEMPTS: &str = "attempts";
const VERSION: &str = "version";

/// A username's attempts as read, and the version a write must find unchanged (0: no record).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoginAttempts {
    pub version: u64,
    /// When each attempt was made, epoch seconds, by attempt id.
    pub attempts: Vec<(Uuid, i64)>,
}

impl LoginAttempts {
    pub fn times(&self) -> Vec<i64> {
        self.attempts.iter().map(|&(_, at)| at).collect()
    }

    fn from_item(item: Option<&Item>) -> Result<Self, StoreError> {
        let Some(item) = item else {
            return Ok(Self::default());
        };
        let version = match item.get(VERSION) {
            None => 0,
            Some(value) => value
                .as_n()
                .ok()
                .and_then(|version| version.parse().ok())
                .ok_or_else(|| {
                    StoreError::Unexpected("login attempts with a bad version".into())
                })?,
        };
        let attempts = item
            .get(ATTEMPTS)
            .and_then(|attempts| attempts.as_m().ok())
            .into_iter()
            .flatten()
            .map(|(id, at)| {
                let id = id.parse().ok();
                let at = at.as_n().ok().and_then(|at| at.parse().ok());
                id.zip(at)
                    .ok_or_else(|| StoreError::Unexpected("a malformed login attempt".into()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { version, attempts })
    }
}

/// The username's login attempts among read items.
pub fn login_attempts_in(items: &[Item], username: &str) -> Result<LoginAttempts, StoreError> {
    LoginAttempts::from_item(find(items, &keys::login_failures(username)))
}

pub enum AttemptsWrite {
    Written,
    /// The record changed since it was read: here it is as it is now.
    Changed(LoginAttempts),
}

impl Store {
    /// Replaces the username's attempts by `attempts`, if its record is still at version `seen`,
    /// writing `events` in the same transaction (a login's provisional failure).
    pub async fn replace_login_attempts(
        &self,
        username: &str,
        seen: u64,
        attempts: &[(Uuid, i64)],
        expires_at: i64,
        events: &[AuditEvent],
    ) -> Result<AttemptsWrite, StoreError> {
        let attempts: HashMap<String, AttributeValue> = attempts
            .iter()
            .map(|(id, at)| (id.to_string(), number(*at)))
            .collect();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::login_failures(username).attributes()))
            .update_expression(
                "SET #attempts = :attempts, #version = :next, #expires_at = :expires_at",
            )
            .expression_attribute_names("#attempts", ATTEMPTS)
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":attempts", AttributeValue::M(attempts))
            .expression_attribute_values(":next", number(seen as i64 + 1))
            .expression_attribute_values(":expires_at", number(expires_at))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        update = if seen == 0 {
            update.condition_expression("attribute_not_exists(#version)")
        } else {
            update
                .condition_expression("#version = :seen")
                .expression_attribute_values(":seen", number(seen as i64))
        };
        let update = update
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        for event in events {
            items.push(self.audit_put(event)?);
        }
        let Err(refusal) = self.transact(items).await? else {
            return Ok(AttemptsWrite::Written);
        };
        match refusal.refused(0) {
            Some(record) => Ok(AttemptsWrite::Changed(LoginAttempts::from_item(record)?)),
            None => Err(refusal.unexpected("login attempt reservation cancelled")),
        }
    }

    /// The release of `username`'s reserved `attempt` (as `release_login_attempt`), for the
    /// transaction of the action its right password allows.
    pub(super) fn attempt_release(&self, username: &str, attempt: Uuid) -> TransactWriteItem {
        let release = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::login_failures(username).attributes()))
            .update_expression("REMOVE #attempts.#attempt SET #version = #version + :one")
            .expression_attribute_names("#attempts", ATTEMPTS)
            .expression_attribute_names("#attempt", attempt.to_string())
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_values(":one", number(1))
            .build()
            .expect("table, key and expressions are set");
        TransactWriteItem::builder().update(release).build()
    }

    /// Takes a reserved attempt back (its password was right), bumping the version so that a
    /// concurrent reservation computed from a read that still held it is refused and redone.
    pub async fn release_login_attempt(
        &self,
        username: &str,
        attempt: Uuid,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::login_failures(username).attributes()))
            .update_expression("REMOVE #attempts.#attempt SET #version = #version + :one")
            .condition_expression("attribute_exists(#attempts.#attempt)")
            .expression_attribute_names("#attempts", ATTEMPTS)
            .expression_attribute_names("#attempt", attempt.to_string())
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_values(":one", number(1))
            .send()
            .await;
        unless_refused(result)?;
        Ok(())
    }
}
