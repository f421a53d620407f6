//! The administration of user accounts: the user list (GSI1 partition `USERS`, sorted by
//! username) and the actions on an account, each written in one transaction with its audit
//! event. The admin API and fogctl both act through `act_on_user`.

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use serde_dynamo::aws_sdk_dynamodb_1::from_item;
use uuid::Uuid;

use super::error::unless_refused;
use super::keys::{self, GSI1, GSI1PK, GSI1SK, PK, SK};
use super::{Item, Store, StoreError, TTL_ATTRIBUTE, find, number, string};
use crate::domain::{Actor, AuditContext, AuditEvent, User, UserAction, UserFlag};

/// One page of the user list; `next` is the username the following page starts with.
#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next: Option<String>,
}

/// What an action on a user came to.
#[derive(Debug)]
pub enum UserActionOutcome {
    /// Written with its event (already logged): the user as it now is.
    Done { user: User, event: AuditEvent },
    /// The flag already had the value: nothing written, no event. The user as it is.
    Unchanged(User),
}

#[derive(Debug, thiserror::Error)]
pub enum UserActionError {
    /// An administrator deactivating or demoting their own account: refused before any write.
    #[error("an administrator may not {0} their own account")]
    OwnAccount(UserAction),
    #[error("no such user")]
    NotFound,
    /// The acting administrator was no longer an active administrator when the action was
    /// written (demoted or deactivated since their request's read).
    #[error("the actor is no longer an active administrator")]
    ActorNotAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user with `id` among read items.
pub fn user_in(items: &[Item], id: Uuid) -> Result<Option<User>, StoreError> {
    Ok(find(items, &keys::user(id))
        .map(|item| from_item(item.clone()))
        .transpose()?)
}

fn flag_attribute(flag: UserFlag) -> &'static str {
    match flag {
        UserFlag::Active => "is_active",
        UserFlag::Admin => "is_admin",
    }
}

/// Above every username: usernames are ASCII (letters, digits, `_` and `-`), so every username
/// that starts with a prefix sorts between the prefix and the prefix followed by this.
const AFTER_EVERY_SUFFIX: char = char::MAX;

impl Store {
    /// A user by id (one consistent read).
    pub async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::user(id).attributes()))
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.map(from_item).transpose()?)
    }

    /// A user by username: its credential names its id.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        match self.credential(username).await? {
            Some(credential) => self.user(credential.user_id).await,
            None => Ok(None),
        }
    }

    /// At most `limit` users in username order, from the username `from` on (a page's `next`),
    /// only those whose username starts with `prefix` when one is given: Query of GSI1 `USERS`
    /// (eventually consistent in AWS: a new user may take a moment to appear). One item more
    /// than the page is read, to know where the next page starts.
    pub async fn users(
        &self,
        prefix: Option<&str>,
        from: Option<&str>,
        limit: usize,
    ) -> Result<UserPage, StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .expression_attribute_names("#pk", GSI1PK)
            .expression_attribute_values(":users", string(keys::USERS));
        request = match (prefix, from) {
            (Some(prefix), from) => {
                let from = from.filter(|from| *from > prefix).unwrap_or(prefix);
                if !from.starts_with(prefix) {
                    // The cursor is past every username with the prefix.
                    return Ok(UserPage {
                        users: Vec::new(),
                        next: None,
                    });
                }
                request
                    .key_condition_expression("#pk = :users AND #sk BETWEEN :from AND :to")
                    .expression_attribute_names("#sk", GSI1SK)
                    .expression_attribute_values(":from", string(from))
                    .expression_attribute_values(
                        ":to",
                        string(format!("{prefix}{AFTER_EVERY_SUFFIX}")),
                    )
            }
            (None, Some(from)) => request
                .key_condition_expression("#pk = :users AND #sk >= :from")
                .expression_attribute_names("#sk", GSI1SK)
                .expression_attribute_values(":from", string(from)),
            (None, None) => request.key_condition_expression("#pk = :users"),
        };
        let wanted = limit + 1;
        let mut users: Vec<User> = Vec::with_capacity(wanted);
        let mut start = None;
        loop {
            let output = request
                .clone()
                .limit(i32::try_from(wanted - users.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in output.items.unwrap_or_default() {
                users.push(from_item(item)?);
            }
            start = output.last_evaluated_key;
            if users.len() >= wanted || start.is_none() {
                break;
            }
        }
        let next = (users.len() > limit).then(|| users.swap_remove(limit).username);
        users.truncate(limit);
        Ok(UserPage { users, next })
    }

    /// Does `action` to `target` (as read) for `context`'s actor, in one TransactWriteItems with
    /// its audit event: the profile's flag (conditioned on the user existing and the flag not
    /// already having the value, so that of racing requests exactly one writes and records it)
    /// or, for `unlock`, the username's failed logins emptied; the actor, an administrator, still
    /// an active administrator (a condition check, unless fogctl acts); and the event. The event
    /// is logged once the transaction committed. A flag that already has the value writes
    /// nothing; an administrator deactivating or demoting themselves is refused before any write.
    pub async fn act_on_user(
        &self,
        target: &User,
        action: UserAction,
        context: &AuditContext,
    ) -> Result<UserActionOutcome, UserActionError> {
        let acting_admin = match context.actor {
            Actor::User(id) => Some(id),
            Actor::Fogctl | Actor::Anonymous => None,
        };
        let on_oneself = acting_admin == Some(target.id);
        if on_oneself && !action.allowed_on_oneself() {
            return Err(UserActionError::OwnAccount(action));
        }
        if action.changes_nothing(target) {
            return Ok(UserActionOutcome::Unchanged(target.clone()));
        }
        let mut items = vec![self.action_write(target, action, context.at.unix_timestamp())?];
        // The acting administrator still one when this commits: a check of their profile,
        // unless the action writes that very item (a transaction names an item once), which
        // only activating or promoting oneself could, and those change nothing.
        let actor_checked = match acting_admin {
            Some(actor) if !(on_oneself && action.flag().is_some()) => {
                items.push(self.active_admin_check(actor)?);
                true
            }
            _ => false,
        };
        let event = context
            .event(action.event_type(), target.id.to_string())
            .with_username(&target.username);
        items.push(self.audit_put(&event)?);
        let Err(refusal) = self.transact(items).await? else {
            event.log();
            return Ok(UserActionOutcome::Done {
                user: action.applied_to(target.clone()),
                event,
            });
        };
        // The profile's condition: gone, or the flag has the value already (another request set
        // it since this one's read).
        match refusal.read_back(0)? {
            Some(Some(user)) => return Ok(UserActionOutcome::Unchanged(user)),
            Some(None) => return Err(UserActionError::NotFound),
            None => {}
        }
        if actor_checked && refusal.failed(1) {
            return Err(UserActionError::ActorNotAdmin);
        }
        Err(refusal.unexpected("user action cancelled").into())
    }

    /// The action's own write: the profile's flag, or the username's failed logins emptied.
    fn action_write(
        &self,
        target: &User,
        action: UserAction,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = match action.flag() {
            Some((flag, value)) => Update::builder()
                .table_name(&self.table)
                .set_key(Some(keys::user(target.id).attributes()))
                .update_expression("SET #flag = :value")
                .condition_expression("attribute_exists(PK) AND #flag <> :value")
                .expression_attribute_names("#flag", flag_attribute(flag))
                .expression_attribute_values(":value", AttributeValue::Bool(value))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                ),
            // Every attempt goes, and the version moves on (never back to 0, as a deletion would
            // take it): a reservation computed from the record before the unlock is refused and
            // redone from the empty record (see `replace_login_attempts`). A record that did not
            // exist is made empty, expiring at once (reads take an expired record as it is: no
            // attempts).
            None => Update::builder()
                .table_name(&self.table)
                .set_key(Some(keys::login_failures(&target.username).attributes()))
                .update_expression(
                    "REMOVE #attempts SET #version = if_not_exists(#version, :zero) + :one, \
                     #expires_at = if_not_exists(#expires_at, :now)",
                )
                .expression_attribute_names("#attempts", "attempts")
                .expression_attribute_names("#version", "version")
                .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
                .expression_attribute_values(":zero", number(0))
                .expression_attribute_values(":one", number(1))
                .expression_attribute_values(":now", number(now)),
        };
        let update = update
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// That `actor` is still an active administrator when the transaction commits.
    fn active_admin_check(&self, actor: Uuid) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(keys::user(actor).attributes()))
            .condition_expression("is_admin = :yes AND is_active = :yes")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Lists in GSI1 the users written before the user list existed (profiles without GSI1
    /// keys): a Scan of the table for them, then one conditional update each. Answers how many
    /// were indexed. For fogctl; no function may scan.
    pub async fn index_unlisted_users(&self) -> Result<usize, StoreError> {
        let mut unlisted = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("#sk = :profile AND attribute_not_exists(#gsi1pk)")
            .projection_expression("#pk, #sk, username")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_names("#gsi1pk", GSI1PK)
            .expression_attribute_values(":profile", string(keys::PROFILE))
            .into_paginator()
            .items()
            .send();
        let mut indexed = 0;
        while let Some(mut item) = unlisted.try_next().await? {
            let username = item
                .remove("username")
                .and_then(|value| value.as_s().ok().cloned())
                .ok_or_else(|| StoreError::Unexpected("a profile without username".into()))?;
            item.retain(|name, _| name == PK || name == SK);
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(item))
                .update_expression("SET #gsi1pk = :users, #gsi1sk = :username")
                .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#gsi1pk)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#gsi1pk", GSI1PK)
                .expression_attribute_names("#gsi1sk", GSI1SK)
                .expression_attribute_values(":users", string(keys::USERS))
                .expression_attribute_values(":username", string(username));
            if unless_refused(update.send().await)?.is_some() {
                indexed += 1;
            }
        }
        Ok(indexed)
    }
}
