//! The audit log's items. An event lives in the partition of its UTC month (`AUDIT#<YYYY-MM>`)
//! under its time-ordered id (`EVENT#<id>`), and in GSI1 under its subject
//! (`AUDITSUBJECT#<subject>`): a query by time walks month partitions newest first (four cover
//! the default retention), a query by subject reads one index partition, and neither scans the
//! table. Every event is written inside its action's transaction
//! (`audit_put`), or alone where the action writes nothing else (`record_audit`: a refused login).

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::keys::{GSI1, GSI1PK, GSI1SK, PK, SK};
use super::{Item, Store, StoreError, TTL_ATTRIBUTE, number, string};
use crate::domain::{AuditEvent, AuditEventType};

/// At most this many queries make one page (each reads up to 1 MB of a month's partition or a
/// subject's); a page that reaches it may be short, and its cursor says where it stopped.
const MAX_READS_PER_PAGE: usize = 32;

/// The first day of `date`'s month, which names the month's partition.
fn month_of(date: Date) -> Date {
    date.replace_day(1).expect("every month has a first day")
}

fn month_partition(month: Date) -> String {
    format!("AUDIT#{:04}-{:02}", month.year(), u8::from(month.month()))
}

/// The first day of the month after `month` (a first day: 31 days on is always in the next).
fn next_month(month: Date) -> Option<Date> {
    month.checked_add(time::Duration::days(31)).map(month_of)
}

fn subject_partition(subject: &str) -> String {
    format!("AUDITSUBJECT#{subject}")
}

/// An event's sort key, in its month's partition and in its subject's.
fn event_sort_key(id: Uuid) -> String {
    format!("{EVENT_PREFIX}{id}")
}

const EVENT_PREFIX: &str = "EVENT#";

fn event_item(event: &AuditEvent) -> Result<Item, StoreError> {
    let id = event_sort_key(event.id);
    let mut item: Item = to_item(event)?;
    item.extend([
        (
            PK.to_owned(),
            string(month_partition(month_of(event.time.date()))),
        ),
        (SK.to_owned(), string(&id)),
        (GSI1PK.to_owned(), string(subject_partition(&event.subject))),
        (GSI1SK.to_owned(), string(id)),
        (TTL_ATTRIBUTE.to_owned(), number(event.expires_at)),
    ]);
    Ok(item)
}

/// Which events to read: newest first, at most `limit`, with ids below `before` (the previous
/// page's cursor) and times within `since..=until`.
#[derive(Clone, Debug)]
pub struct AuditQuery {
    /// When the query is made: events expired by then are left out, though DynamoDB's TTL may
    /// not have deleted them yet (it can take days).
    pub at: OffsetDateTime,
    pub kind: Option<AuditEventType>,
    pub subject: Option<String>,
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
    pub before: Option<Uuid>,
    pub limit: usize,
}

/// One page of events; `next` is the cursor of the following page, if there may be one.
#[derive(Debug)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub next: Option<Uuid>,
}

/// The smallest (`fill` 0) or largest (`fill` 0xff) UUID v7 of a millisecond: ids compare as
/// strings in time order, so these bound a time range of sort keys.
fn id_bound(at: OffsetDateTime, fill: u8) -> Uuid {
    let millis = (at.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    let mut bytes = [fill; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70 | (fill & 0x0f);
    bytes[8] = 0x80 | (fill & 0x3f);
    Uuid::from_bytes(bytes)
}

/// The millisecond a UUID v7 was made in.
fn id_time(id: Uuid) -> OffsetDateTime {
    let mut millis = [0u8; 8];
    millis[2..].copy_from_slice(&id.as_bytes()[..6]);
    let millis = u64::from_be_bytes(millis) as i128;
    OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Store {
    /// The event's write, for its action's transaction.
    pub fn audit_put(&self, event: &AuditEvent) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(event_item(event)?))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The withdrawal of an event written before its action's outcome was known (a login's
    /// provisional failure), for the transaction that records the outcome.
    pub fn audit_delete(&self, event: &AuditEvent) -> Result<TransactWriteItem, StoreError> {
        let mut key = Item::new();
        key.insert(
            PK.to_owned(),
            string(month_partition(month_of(event.time.date()))),
        );
        key.insert(SK.to_owned(), string(event_sort_key(event.id)));
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .build()
            .map_err(|error| StoreError::Unexpected(error.to_string()))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Writes events that no other write carries (a refused login's), withdrawing `withdrawn`
    /// in the same transaction; then logs them.
    pub async fn record_audit(
        &self,
        recorded: &[AuditEvent],
        withdrawn: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut items = recorded
            .iter()
            .map(|event| self.audit_put(event))
            .collect::<Result<Vec<_>, _>>()?;
        for event in withdrawn {
            items.push(self.audit_delete(event)?);
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await?;
        recorded.iter().for_each(AuditEvent::log);
        Ok(())
    }

    /// `writes` and their `event` in one transaction, then the event logged: `Ok(true)`. Nothing
    /// written or recorded, and no error, when a condition of `writes` refused them (nothing to
    /// do): `Ok(false)`.
    pub(super) async fn write_recorded(
        &self,
        writes: Vec<TransactWriteItem>,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let count = writes.len();
        let mut items = writes;
        items.push(self.audit_put(event)?);
        let Err(refusal) = self.transact(items).await? else {
            event.log();
            return Ok(true);
        };
        if refusal.any_failed(0..count) {
            Ok(false)
        } else {
            Err(refusal.unexpected("an audited write was cancelled"))
        }
    }

    /// A page of events, newest first (see `AuditQuery`).
    pub async fn audit_events(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let lowest = id_bound(query.since, 0);
        let mut highest = id_bound(query.until, 0xff);
        if let Some(before) = query.before {
            highest = highest.min(Uuid::from_u128(before.as_u128().saturating_sub(1)));
        }
        if highest < lowest {
            return Ok(AuditPage {
                events: Vec::new(),
                next: None,
            });
        }
        let bounds = (lowest, highest);
        let above_range = Uuid::from_u128(highest.as_u128().saturating_add(1));
        match &query.subject {
            Some(subject) => {
                let partitions = std::iter::once((subject_partition(subject), above_range));
                self.read_partitions(query, (GSI1PK, GSI1SK), partitions, bounds)
                    .await
            }
            None => {
                let first_month = month_of(id_time(lowest).date());
                let months =
                    std::iter::successors(Some(month_of(id_time(highest).date())), |month| {
                        month.previous_day().map(month_of)
                    })
                    .take_while(move |month| *month >= first_month)
                    .map(|month| {
                        let skipped = next_month(month)
                            .map(|next| id_bound(next.midnight().assume_utc(), 0).min(above_range))
                            .unwrap_or(above_range);
                        (month_partition(month), skipped)
                    });
                self.read_partitions(query, (PK, SK), months, bounds).await
            }
        }
    }

    /// Reads `partitions` (newest first, each with the cursor that skips all of it) until the
    /// page is full, the partitions end, or `MAX_READS_PER_PAGE` queries were made; then the
    /// cursor is the last id read.
    async fn read_partitions(
        &self,
        query: &AuditQuery,
        (partition_key, sort_key): (&'static str, &'static str),
        partitions: impl Iterator<Item = (String, Uuid)>,
        (lowest, highest): (Uuid, Uuid),
    ) -> Result<AuditPage, StoreError> {
        let mut events: Vec<AuditEvent> = Vec::new();
        let mut reads = 0;
        for (partition, skipped) in partitions {
            let mut start = None;
            loop {
                if reads == MAX_READS_PER_PAGE {
                    let next = start
                        .as_ref()
                        .and_then(|key: &Item| key.get(sort_key))
                        .and_then(|id| id.as_s().ok())
                        .and_then(|id| id.strip_prefix(EVENT_PREFIX))
                        .and_then(|id| id.parse().ok())
                        .or_else(|| events.last().map(|event| event.id))
                        .or(Some(skipped));
                    return Ok(AuditPage { events, next });
                }
                reads += 1;
                let (found, last) = self
                    .query_events(
                        query,
                        (partition_key, sort_key),
                        &partition,
                        (lowest, highest),
                        query.limit - events.len(),
                        start.take(),
                    )
                    .await?;
                events.extend(found);
                if events.len() == query.limit {
                    let next = events.last().map(|event| event.id);
                    return Ok(AuditPage { events, next });
                }
                match last {
                    Some(last) => start = Some(last),
                    None => break,
                }
            }
        }
        Ok(AuditPage { events, next: None })
    }

    /// One Query of a partition of events between two ids, newest first, filtered by type:
    /// what it found, and where to go on if DynamoDB stopped before the partition's end.
    async fn query_events(
        &self,
        query: &AuditQuery,
        (partition_key, sort_key): (&str, &str),
        partition: &str,
        (lowest, highest): (Uuid, Uuid),
        limit: usize,
        start: Option<Item>,
    ) -> Result<(Vec<AuditEvent>, Option<Item>), StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :partition AND #sk BETWEEN :lowest AND :highest")
            .expression_attribute_names("#pk", partition_key)
            .expression_attribute_names("#sk", sort_key)
            .expression_attribute_values(":partition", string(partition))
            .expression_attribute_values(":lowest", string(event_sort_key(lowest)))
            .expression_attribute_values(":highest", string(event_sort_key(highest)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start);
        if partition_key == GSI1PK {
            request = request.index_name(GSI1);
        }
        request = request
            .expression_attribute_names("#expires_at", TTL_ATTRIBUTE)
            .expression_attribute_values(":at", number(query.at.unix_timestamp()));
        request = match query.kind {
            Some(kind) => request
                .filter_expression("#expires_at > :at AND #type = :type")
                .expression_attribute_names("#type", "type")
                .expression_attribute_values(":type", AttributeValue::S(kind.as_str().into())),
            None => request.filter_expression("#expires_at > :at"),
        };
        let output = request.send().await?;
        let events = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item(item).map_err(StoreError::from))
            .collect::<Result<_, _>>()?;
        Ok((events, output.last_evaluated_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_name_their_partitions_and_follow_one_another() {
        let date = |year, month, day| {
            Date::from_calendar_date(year, time::Month::try_from(month).unwrap(), day).unwrap()
        };
        assert_eq!(
            month_partition(month_of(date(2026, 2, 28))),
            "AUDIT#2026-02"
        );
        assert_eq!(next_month(date(2026, 1, 1)), Some(date(2026, 2, 1)));
        assert_eq!(next_month(date(2028, 2, 1)), Some(date(2028, 3, 1)));
        assert_eq!(next_month(date(2026, 12, 1)), Some(date(2027, 1, 1)));
    }

    #[test]
    fn id_bounds_enclose_exactly_their_milliseconds() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let lowest = id_bound(at, 0);
        let highest = id_bound(at, 0xff);
        assert_eq!(lowest.get_version_num(), 7);
        assert_eq!(highest.get_version_num(), 7);
        assert_eq!(id_time(lowest), at);
        assert_eq!(id_time(highest), at);
        let millisecond = time::Duration::milliseconds(1);
        assert!(id_bound(at - millisecond, 0xff).to_string() < lowest.to_string());
        assert!(highest.to_string() < id_bound(at + millisecond, 0).to_string());
    }
}
