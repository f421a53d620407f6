use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::keys::{self, Key};
use super::{Item, Store, StoreError, TTL_ATTRIBUTE, expired, find, number};

const HITS: &str = "hits";
const FAILURES: &str = "failures";
/// Failed-login lists are cut back to their newest entries once they grow past this.
const MAX_KEPT_FAILURES: usize = 16;

fn integer(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

impl Store {
    /// Counts one request in a window's counter unless it already holds `cap`: one conditional
    /// write, atomic across every Lambda instance. The new count, or `None` when at the cap.
    pub async fn hit_counter(
        &self,
        key: &Key,
        cap: u64,
        expires_at: i64,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .update_expression("ADD #hits :one SET #expires_at = :expires_at")
            .condition_expression(
                "attribute_not_exists(#hits) OR (#hits < :cap AND #expires_at > :now)",
            )
            .expression_attribute_names("#hits", HITS)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":cap", number(cap as i64))
            .expression_attribute_values(":expires_at", number(expires_at))
            .expression_attribute_values(":now", number(now))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output
                .attributes
                .as_ref()
                .and_then(|item| integer(item, HITS))
                .map(|hits| hits as u64)),
            Err(error) => {
                let stale = error
                    .as_service_error()
                    .filter(|service| service.is_conditional_check_failed_exception())
                    .map(|service| match service {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                            failed,
                        ) => failed.item().filter(|old| expired(old, now)).cloned(),
                        _ => None,
                    });
                match stale {
                    None => Err(error.into()),
                    Some(None) => Ok(None),
                    Some(Some(old)) => self.restart_counter(key, &old, expires_at).await,
                }
            }
        }
    }

    /// Replaces a counter whose TTL has passed (DynamoDB had not deleted it yet) by a fresh one.
    async fn restart_counter(
        &self,
        key: &Key,
        old: &Item,
        expires_at: i64,
    ) -> Result<Option<u64>, StoreError> {
        let mut item = key.clone();
        item.insert(HITS.to_owned(), number(1));
        item.insert(TTL_ATTRIBUTE.to_owned(), number(expires_at));
        let old_expiry = old
            .get(TTL_ATTRIBUTE)
            .cloned()
            .unwrap_or(AttributeValue::Null(true));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#expires_at = :old")
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":old", old_expiry)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(1)),
            // Another request restarted it first; this one is not counted.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Takes back one request counted under an identity that turned out not to be the caller's.
    pub async fn refund_counter(&self, key: &Key) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .update_expression("ADD #hits :minus_one")
            .condition_expression("#hits > :zero")
            .expression_attribute_names("#hits", HITS)
            .expression_attribute_values(":minus_one", number(-1))
            .expression_attribute_values(":zero", number(0))
            .send()
            .await
            .map(|_| ())
            .or_else(|error| {
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_conditional_check_failed_exception())
                {
                    Ok(())
                } else {
                    Err(error.into())
                }
            })
    }

    /// Appends a failed login's time to the username's list and returns the list's times.
    pub async fn record_login_failure(
        &self,
        username: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::login_failures(username)))
            .update_expression("SET #failures = list_append(if_not_exists(#failures, :empty), :now), #expires_at = :expires_at")
            .expression_attribute_names("#failures", FAILURES)
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":now", AttributeValue::L(vec![number(now)]))
            .expression_attribute_values(":expires_at", number(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await?;
        let failures = output
            .attributes
            .as_ref()
            .map(failure_times)
            .unwrap_or_default();
        if failures.len() > MAX_KEPT_FAILURES {
            self.trim_login_failures(username, &failures).await?;
        }
        Ok(failures)
    }

    /// Keeps only the newest failures, unless another failure was appended meanwhile.
    async fn trim_login_failures(
        &self,
        username: &str,
        failures: &[i64],
    ) -> Result<(), StoreError> {
        let newest = failures[failures.len() - MAX_KEPT_FAILURES / 2..]
            .iter()
            .map(|&time| number(time))
            .collect();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::login_failures(username)))
            .update_expression("SET #failures = :newest")
            .condition_expression("size(#failures) = :length")
            .expression_attribute_names("#failures", FAILURES)
            .expression_attribute_values(":newest", AttributeValue::L(newest))
            .expression_attribute_values(":length", number(failures.len() as i64))
            .send()
            .await;
        match result {
            Err(error)
                if !error
                    .as_service_error()
                    .is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                Err(error.into())
            }
            _ => Ok(()),
        }
    }
}

/// The count of a window counter among read items; an expired counter counts nothing.
pub fn counter_hits(items: &[Item], key: &Key, now: i64) -> u64 {
    find(items, key)
        .filter(|item| !expired(item, now))
        .and_then(|item| integer(item, HITS))
        .map_or(0, |hits| hits.max(0) as u64)
}

/// The failed-login times among read items; an expired list holds none.
pub fn login_failure_times(items: &[Item], username: &str, now: i64) -> Vec<i64> {
    find(items, &keys::login_failures(username))
        .filter(|item| !expired(item, now))
        .map(failure_times)
        .unwrap_or_default()
}

fn failure_times(item: &Item) -> Vec<i64> {
    item.get(FAILURES)
        .and_then(|list| list.as_l().ok())
        .map(|list| {
            list.iter()
                .filter_map(|time| time.as_n().ok()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
