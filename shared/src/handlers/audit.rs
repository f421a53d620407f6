//! The audit log, for administrators: `GET /api/admin/audit`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::admin::require_admin;
use crate::AppState;
use crate::auth::Principal;
use crate::domain::{AuditEventType, Fields};
use crate::http::{ApiError, encode_cursor, json_response, page_request, query_fields};
use crate::store::AuditQuery;

/// Longest subject a query names: a user id, or a username (at most 50 characters).
const SUBJECT_CHARS: usize = 100;

fn timestamp(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|_| "must be an RFC 3339 date-time, e.g. 2026-11-30T09:00:00Z".to_owned())
}

/// `GET /api/admin/audit?type=&subject=&since=&until=&cursor=&limit=`: events newest first;
/// `since` defaults to the start of the retention period, `until` to now.
pub async fn audit(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    require_admin(&principal, state)?;
    let mut query = Fields::new(query_fields(&req)?);
    let kind = query.optional_string("type", |raw| {
        AuditEventType::parse(raw).ok_or_else(|| {
            let known: Vec<&str> = AuditEventType::ALL
                .iter()
                .map(|kind| kind.as_str())
                .collect();
            format!("must be one of {}", known.join(", "))
        })
    });
    let subject = query.optional_string("subject", |raw| {
        if (1..=SUBJECT_CHARS).contains(&raw.chars().count()) {
            Ok(raw.to_owned())
        } else {
            Err(format!("must be 1 to {SUBJECT_CHARS} characters"))
        }
    });
    let since = query.optional_string("since", timestamp);
    let until = query.optional_string("until", timestamp);
    let page = page_request(&req, &mut query)?;
    let (Some(kind), Some(subject), Some(since), Some(until), Some(page)) =
        (kind, subject, since, until, page)
    else {
        return Err(query.into_error().into());
    };
    let now = state.clock.now();
    let since = since.unwrap_or(now - time::Duration::days(state.config.audit_retention_days));
    let until = until.unwrap_or(now);
    if since > until {
        let _: Option<()> = query.fail("since", "must not be after until");
        return Err(query.into_error().into());
    }
    let found = state
        .store
        .audit_events(&AuditQuery {
            at: now,
            kind,
            subject,
            since,
            until,
            before: page.after,
            limit: page.limit.try_into().unwrap_or(1),
        })
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"events": found.events, "next_cursor": found.next.map(encode_cursor)}),
    ))
}
