use aws_sdk_dynamodb::types::ReturnValue;
use serde_dynamo::aws_sdk_dynamodb_1::{from_items, to_item};
use uuid::Uuid;

use super::error::unless_refused;
use super::keys::{self, DEVICE_PREFIX, GSI1PK, GSI1SK};
use super::{Store, StoreError, string};
use crate::domain::Device;

/// What registering a device id did.
#[derive(Debug, PartialEq, Eq)]
pub enum RegisterDevice {
    Registered,
    /// The caller had registered this id before; its details are replaced.
    Updated,
    /// Another user registered this id first; nothing changed.
    OwnedByAnother,
}

impl Store {
    /// Creates or updates a device in one conditional update: the id must be new or already
    /// the caller's. The first registration time is kept.
    pub async fn register_device(&self, device: &Device) -> Result<RegisterDevice, StoreError> {
        let mut attributes = to_item(device)?;
        let registered_at = attributes
            .remove("registered_at")
            .ok_or_else(|| StoreError::Unexpected("device without registered_at".into()))?;
        attributes.insert(
            GSI1PK.to_owned(),
            string(keys::user_partition(device.user_id)),
        );
        attributes.insert(
            GSI1SK.to_owned(),
            string(format!("{DEVICE_PREFIX}{}", device.device_id)),
        );
        let mut assignments =
            vec!["registered_at = if_not_exists(registered_at, :registered_at)".to_owned()];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::device(&device.device_id).attributes()))
            .condition_expression("attribute_not_exists(PK) OR user_id = :owner")
            .expression_attribute_values(":owner", string(device.user_id.to_string()))
            .expression_attribute_values(":registered_at", registered_at)
            .return_values(ReturnValue::AllOld);
        for (index, (name, value)) in attributes.into_iter().enumerate() {
            assignments.push(format!("#a{index} = :a{index}"));
            update = update
                .expression_attribute_names(format!("#a{index}"), name)
                .expression_attribute_values(format!(":a{index}"), value);
        }
        let result = update
            .update_expression(format!("SET {}", assignments.join(", ")))
            .send()
            .await;
        match unless_refused(result)? {
            Some(output)
                if output
                    .attributes
                    .as_ref()
                    .is_some_and(|old| !old.is_empty()) =>
            {
                Ok(RegisterDevice::Updated)
            }
            Some(_) => Ok(RegisterDevice::Registered),
            None => Ok(RegisterDevice::OwnedByAnother),
        }
    }

    /// Every device of a user, by device id (GSI1; eventually consistent in AWS).
    pub async fn devices(&self, user_id: Uuid) -> Result<Vec<Device>, StoreError> {
        let items = self
            .owned_items(user_id, DEVICE_PREFIX)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await?;
        Ok(from_items(items)?)
    }
}
