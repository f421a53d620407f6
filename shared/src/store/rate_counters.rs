use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::error::{unless_refused, update_or_read_back};
use super::keys::Key;
use super::{Item, Store, StoreError, TTL_ATTRIBUTE, expired, find, number};

const HITS: &str = "hits";

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
            .set_key(Some(key.attributes()))
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
        match update_or_read_back(result)? {
            Ok(output) => Ok(output
                .attributes
                .as_ref()
                .and_then(|item| integer(item, HITS))
                .map(|hits| hits as u64)),
            // At the cap, or a counter whose TTL has passed (DynamoDB had not deleted it yet).
            Err(old) => match old.filter(|old| expired(old, now)) {
                None => Ok(None),
                Some(old) => self.restart_counter(key, &old, expires_at).await,
            },
        }
    }

    /// Replaces a counter whose TTL has passed (DynamoDB had not deleted it yet) by a fresh one.
    async fn restart_counter(
        &self,
        key: &Key,
        old: &Item,
        expires_at: i64,
    ) -> Result<Option<u64>, StoreError> {
        let mut item = key.attributes();
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
        // Refused: another request restarted it first; this one is not counted.
        Ok(unless_refused(result)?.map(|_| 1))
    }

    /// Takes back one request counted under an identity that turned out not to be the caller's.
    pub async fn refund_counter(&self, key: &Key) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.attributes()))
            .update_expression("ADD #hits :minus_one")
            .condition_expression("#hits > :zero")
            .expression_attribute_names("#hits", HITS)
            .expression_attribute_values(":minus_one", number(-1))
            .expression_attribute_values(":zero", number(0))
            .send()
            .await;
        unless_refused(result)?;
        Ok(())
    }
}

/// The count of a window counter among read items; an expired counter counts nothing.
pub fn counter_hits(items: &[Item], key: &Key, now: i64) -> u64 {
    find(items, key)
        .filter(|item| !expired(item, now))
        .and_then(|item| integer(item, HITS))
        .map_or(0, |hits| hits.max(0) as u64)
}
