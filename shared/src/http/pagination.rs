use std::ops::RangeInclusive;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::Request;
use uuid::Uuid;

use super::ApiError;
use super::query_parameter;
use crate::domain::Fields;
use crate::store::PageRequest;

pub const PAGE_LIMIT: RangeInclusive<i32> = 1..=100;
pub const DEFAULT_PAGE_LIMIT: i32 = 50;

/// A page's `next_cursor`: the id of the last item the query looked at, opaque to clients.
pub fn encode_cursor(after: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(after.as_bytes())
}

fn decode_cursor(cursor: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    Uuid::from_slice(&bytes).ok()
}

/// The `limit` (1-100, default 50, a field of `query`) and `cursor` query parameters. `None`
/// when the limit failed (recorded in `query`); an invalid cursor is a 400.
pub fn page_request(req: &Request, query: &mut Fields) -> Result<Option<PageRequest>, ApiError> {
    let limit = query.optional_string("limit", |raw| {
        raw.parse::<i32>()
            .ok()
            .filter(|limit| PAGE_LIMIT.contains(limit))
            .ok_or_else(|| {
                format!(
                    "must be a whole number from {} to {}",
                    PAGE_LIMIT.start(),
                    PAGE_LIMIT.end()
                )
            })
    });
    let after = match query_parameter(req, "cursor") {
        None | Some("") => None,
        Some(cursor) => Some(
            decode_cursor(cursor).ok_or_else(|| ApiError::BadRequest("Invalid cursor".into()))?,
        ),
    };
    Ok(limit.map(|limit| PageRequest {
        limit: limit.unwrap_or(DEFAULT_PAGE_LIMIT),
        after,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)), Some(id));
        for bad in ["", "!!!", "abc", &encode_cursor(id)[1..], "AAAA"] {
            assert_eq!(decode_cursor(bad), None, "{bad:?} was accepted");
        }
    }
}
