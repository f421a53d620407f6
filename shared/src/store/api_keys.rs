use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, from_items, to_item};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::error::unless_refused;
use super::keys::{self, API_KEY_PREFIX, GSI1PK, GSI1SK, Key};
use super::{Item, Store, StoreError, find, number, string};
use crate::domain::{ApiKey, AuditEvent, MAX_ACTIVE_KEYS, User, rfc3339};

/// A presented API key's item and its owner's user item, read together.
pub struct KeySession {
    pub key: Option<ApiKey>,
    pub owner: Option<User>,
}

impl KeySession {
    /// The items to read (the key by the id its secret carries, the owner by the user id it
    /// carries), so that callers can batch them with others.
    pub fn keys(key_id: Uuid, owner: Uuid) -> [Key; 2] {
        [keys::api_key(key_id), keys::user(owner)]
    }

    pub fn from_items(items: &[Item], key_id: Uuid, owner: Uuid) -> Result<Self, StoreError> {
        Ok(Self {
            key: api_key_in(items, key_id)?,
            owner: find(items, &keys::user(owner))
                .map(|item| from_item(item.clone()))
                .transpose()?,
        })
    }
}

/// An API key among read items.
pub fn api_key_in(items: &[Item], key_id: Uuid) -> Result<Option<ApiKey>, StoreError> {
    Ok(find(items, &keys::api_key(key_id))
        .map(|item| from_item(item.clone()))
        .transpose()?)
}

#[derive(Debug, thiserror::Error)]
pub enum CreateApiKeyError {
    #[error("the user has the most active API keys allowed")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What revoking a key did.
#[derive(Debug, PartialEq, Eq)]
pub enum RevokeApiKey {
    Revoked,
    /// Revoked before (or retired when expired): nothing changed.
    AlreadyInactive,
    /// No such key, or another user's.
    NotFound,
}

/// One of a user's active keys to revoke inside another action's transaction (a password change
/// that revokes every key), with the `apikey.revoked` event that records it; revoked at the
/// event's time.
pub struct KeyRevocation {
    pub key_id: Uuid,
    pub revoked: AuditEvent,
}

/// Why a key is deactivated: revoked by its owner (or an operator), or retired because it had
/// expired and its place among the active keys was needed.
#[derive(Clone, Copy)]
enum Deactivation<'a> {
    /// By its owner or an operator, as the event says.
    Revoked(&'a AuditEvent),
    Expired,
}

/// Whether a new key found its place among the user's active keys.
enum Placement {
    Placed,
    AtTheCap,
}

/// `last_used` is written at most this often per key.
pub const LAST_USED_INTERVAL: Duration = Duration::minutes(1);

impl Store {
    /// Stores a new key, counted among its owner's active keys in the same transaction, whose
    /// condition keeps them at most `MAX_ACTIVE_KEYS`. At the cap, keys that have expired since
    /// are retired (each in a transaction of its own with the count) and the key is tried once
    /// more.
    pub async fn create_api_key(
        &self,
        key: &ApiKey,
        now: OffsetDateTime,
        created: &AuditEvent,
    ) -> Result<(), CreateApiKeyError> {
        if let Placement::Placed = self.place_api_key(key, created).await? {
            return Ok(());
        }
        if self.retire_expired_api_keys(key.user_id, now).await? == 0 {
            return Err(CreateApiKeyError::TooMany);
        }
        match self.place_api_key(key, created).await? {
            Placement::Placed => Ok(()),
            Placement::AtTheCap => Err(CreateApiKeyError::TooMany),
        }
    }

    /// The key, one more on its owner's active count, and its `created` event, in one
    /// transaction.
    async fn place_api_key(
        &self,
        key: &ApiKey,
        created: &AuditEvent,
    ) -> Result<Placement, StoreError> {
        let mut item = to_item(key)?;
        item.extend(keys::api_key(key.id).attributes());
        item.insert(GSI1PK.to_owned(), string(keys::user_partition(key.user_id)));
        item.insert(
            GSI1SK.to_owned(),
            string(format!("{API_KEY_PREFIX}{}", key.id)),
        );
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::active_api_keys(key.user_id).attributes()))
            .update_expression("ADD #active :one")
            .condition_expression("attribute_not_exists(#active) OR #active < :max")
            .expression_attribute_names("#active", "active")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":max", number(MAX_ACTIVE_KEYS.into()))
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(count).build(),
            self.audit_put(created)?,
        ];
        let Err(refusal) = self.transact(items).await? else {
            created.log();
            return Ok(Placement::Placed);
        };
        if refusal.failed(1) {
            Ok(Placement::AtTheCap)
        } else {
            Err(refusal.unexpected("API key creation cancelled"))
        }
    }

    /// Retires the user's keys that are still counted active but have expired; how many.
    async fn retire_expired_api_keys(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut retired = 0;
        for key in self.api_keys(user_id).await? {
            if key.is_active
                && key.expired(now)
                && self
                    .deactivate_api_key(user_id, key.id, Deactivation::Expired, now)
                    .await?
                    == RevokeApiKey::Revoked
            {
                retired += 1;
            }
        }
        Ok(retired)
    }

    /// Revokes one of `owner`'s keys: it stops working at once (every request reads the key
    /// item), and leaves its place among the active keys.
    pub async fn revoke_api_key(
        &self,
        owner: Uuid,
        key_id: Uuid,
        now: OffsetDateTime,
        revoked: &AuditEvent,
    ) -> Result<RevokeApiKey, StoreError> {
        self.deactivate_api_key(owner, key_id, Deactivation::Revoked(revoked), now)
            .await
    }

    /// Sets the key inactive, on condition that it is `owner`'s and active (and, to retire it,
    /// expired), and takes it off the active count in the same transaction, with the revocation's
    /// event.
    async fn deactivate_api_key(
        &self,
        owner: Uuid,
        key_id: Uuid,
        why: Deactivation<'_>,
        now: OffsetDateTime,
    ) -> Result<RevokeApiKey, StoreError> {
        let condition = match why {
            Deactivation::Revoked(_) => "user_id = :owner AND is_active = :true",
            Deactivation::Expired => {
                "user_id = :owner AND is_active = :true AND valid_until <= :now"
            }
        };
        let mut key = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::api_key(key_id).attributes()))
            .update_expression("SET is_active = :false, revoked_at = :at")
            .condition_expression(condition)
            .expression_attribute_values(":owner", string(owner.to_string()))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":at", string(rfc3339(now)?))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Deactivation::Expired = why {
            key = key.expression_attribute_values(":now", number(now.unix_timestamp()));
        }
        let key = key
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::active_api_keys(owner).attributes()))
            .update_expression("ADD #active :minus_one")
            .expression_attribute_names("#active", "active")
            .expression_attribute_values(":minus_one", number(-1))
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().update(key).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        if let Deactivation::Revoked(event) = why {
            items.push(self.audit_put(event)?);
        }
        let Err(refusal) = self.transact(items).await? else {
            if let Deactivation::Revoked(event) = why {
                event.log();
            }
            return Ok(RevokeApiKey::Revoked);
        };
        // The key's condition read it back: unknown or another user's, or already inactive.
        match refusal.read_back::<ApiKey>(0)? {
            Some(Some(key)) if key.user_id == owner => Ok(RevokeApiKey::AlreadyInactive),
            Some(_) => Ok(RevokeApiKey::NotFound),
            None => Err(refusal.unexpected("API key deactivation cancelled")),
        }
    }

    /// The writes that revoke every active key of `owner`, as read (`revocations`), for another
    /// action's transaction: each key set inactive on condition that it still is the owner's and
    /// active, with its event; and the owner's active-key count from exactly their number to
    /// zero, so that a key created since they were read makes the transaction fail rather than
    /// outlive it.
    pub(super) fn revoke_every_api_key(
        &self,
        owner: Uuid,
        revocations: &[KeyRevocation],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = Vec::with_capacity(2 * revocations.len() + 1);
        for KeyRevocation { key_id, revoked } in revocations {
            let key = Update::builder()
                .table_name(&self.table)
                .set_key(Some(keys::api_key(*key_id).attributes()))
                .update_expression("SET is_active = :false, revoked_at = :at")
                .condition_expression("user_id = :owner AND is_active = :true")
                .expression_attribute_values(":owner", string(owner.to_string()))
                .expression_attribute_values(":true", AttributeValue::Bool(true))
                .expression_attribute_values(":false", AttributeValue::Bool(false))
                .expression_attribute_values(":at", string(rfc3339(revoked.time)?))
                .build()
                .map_err(|error| StoreError::Unexpected(error.to_string()))?;
            items.push(TransactWriteItem::builder().update(key).build());
            items.push(self.audit_put(revoked)?);
        }
        let counted = match revocations.len() {
            0 => "attribute_not_exists(#active) OR #active = :zero",
            _ => "#active = :counted",
        };
        let mut count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::active_api_keys(owner).attributes()))
            .update_expression("SET #active = :zero")
            .condition_expression(counted)
            .expression_attribute_names("#active", "active")
            .expression_attribute_values(":zero", number(0));
        if !revocations.is_empty() {
            count = count.expression_attribute_values(":counted", number(revocations.len() as i64));
        }
        let count = count
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        items.push(TransactWriteItem::builder().update(count).build());
        Ok(items)
    }

    /// A key by id, whoever's (consistent read).
    pub async fn api_key(&self, key_id: Uuid) -> Result<Option<ApiKey>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::api_key(key_id).attributes()))
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.map(from_item).transpose()?)
    }

    /// Every key of a user, newest first, revoked ones included (GSI1; eventually consistent in
    /// AWS, so a key may take a moment to appear).
    pub async fn api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        let items = self
            .owned_items(user_id, API_KEY_PREFIX)
            .scan_index_forward(false)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await?;
        Ok(from_items(items)?)
    }

    /// Records that a key was used at `now`, unless another request did within the last
    /// `LAST_USED_INTERVAL` (the condition), so that however many instances serve the key, it is
    /// written at most once a minute.
    pub async fn touch_api_key(&self, key_id: Uuid, now: OffsetDateTime) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::api_key(key_id).attributes()))
            .update_expression("SET last_used = :now")
            .condition_expression(
                "attribute_exists(PK) AND (attribute_not_exists(last_used) OR last_used <= :due)",
            )
            .expression_attribute_values(":now", number(now.unix_timestamp()))
            .expression_attribute_values(
                ":due",
                number((now - LAST_USED_INTERVAL).unix_timestamp()),
            )
            .send()
            .await;
        unless_refused(result)?;
        Ok(())
    }
}
