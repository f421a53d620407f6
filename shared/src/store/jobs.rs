use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, from_items, to_item};
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::update_or_read_back;
use super::keys::{self, JOB_PREFIX};
use super::{Item, Page, PageRequest, Store, StoreError, find, next_page_start, string};
use crate::domain::{Job, JobStatus, rfc3339};

/// What a cancellation found.
#[derive(Debug)]
pub enum CancelJob {
    Cancelled(Job),
    NotFound,
    /// Already cancelled, completed or failed.
    NotCancellable(JobStatus),
}

/// A user's job among read items (`keys::job`); another user's job is simply not in this user's
/// partition.
pub fn job_in(items: &[Item], user_id: Uuid, job_id: Uuid) -> Result<Option<Job>, StoreError> {
    Ok(find(items, &keys::job(user_id, job_id))
        .map(|item| from_item(item.clone()))
        .transpose()?)
}

impl Store {
    pub async fn create_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut item = to_item(job)?;
        item.extend(keys::job(job.user_id, job.id).attributes());
        self.put(item).await
    }

    /// A page of a user's jobs, newest first. With a status filter a page may hold fewer than
    /// `limit` jobs (DynamoDB filters after reading `limit` items) and still have a next page.
    pub async fn jobs(
        &self,
        user_id: Uuid,
        status: Option<JobStatus>,
        page: PageRequest,
    ) -> Result<Page<Job>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", string(keys::user_partition(user_id)))
            .expression_attribute_values(":prefix", string(JOB_PREFIX))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(page.limit)
            .set_exclusive_start_key(
                page.after
                    .map(|after| keys::job(user_id, after).attributes()),
            );
        if let Some(status) = status {
            query = query
                .filter_expression("#status = :status")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", string(status.as_str()));
        }
        let output = query.send().await?;
        Ok(Page {
            next: next_page_start(output.last_evaluated_key(), keys::SK, JOB_PREFIX)?,
            items: from_items(output.items.unwrap_or_default())?,
        })
    }

    /// Cancels a pending or running job in one conditional update, so of two racing
    /// cancellations exactly one succeeds.
    pub async fn cancel_job(
        &self,
        user_id: Uuid,
        job_id: Uuid,
        at: OffsetDateTime,
    ) -> Result<CancelJob, StoreError> {
        let at = rfc3339(at)?;
        let [pending, running] = JobStatus::CANCELLABLE;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::job(user_id, job_id).attributes()))
            .update_expression("SET #status = :cancelled, updated_at = :at")
            .condition_expression("attribute_exists(PK) AND #status IN (:pending, :running)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":cancelled", string(JobStatus::Cancelled.as_str()))
            .expression_attribute_values(":pending", string(pending.as_str()))
            .expression_attribute_values(":running", string(running.as_str()))
            .expression_attribute_values(":at", string(at))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match update_or_read_back(result)? {
            Ok(output) => {
                let item = output.attributes.ok_or_else(|| {
                    StoreError::Unexpected("update returned no attributes".into())
                })?;
                Ok(CancelJob::Cancelled(from_item(item)?))
            }
            Err(None) => Ok(CancelJob::NotFound),
            Err(Some(item)) => {
                let job: Job = from_item(item)?;
                Ok(CancelJob::NotCancellable(job.status))
            }
        }
    }
}
