use std::ops::RangeInclusive;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::Request;
use uuid::Uuid;

use super::ApiError;
use super::query_parameter;
use crate::domain::{Fields, Username};
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
    let limit = page_limit(query);
    let after = cursor(req, decode_cursor)?;
    Ok(limit.map(|limit| PageRequest { limit, after }))
}

/// A page of the user list: at most `limit` users from the username `from` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernamePage {
    pub limit: usize,
    pub from: Option<String>,
}

/// A user-list page's `next_cursor`: the username the next page starts with, opaque to clients.
pub fn encode_username_cursor(username: &str) -> String {
    URL_SAFE_NO_PAD.encode(username)
}

fn decode_username_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let username = String::from_utf8(bytes).ok()?;
    Username::parse(&username)
        .ok()
        .map(|parsed| parsed.as_str().to_owned())
        .filter(|parsed| *parsed == username)
}

/// As `page_request`, for a list in username order (the user list).
pub fn username_page_request(
    req: &Request,
    query: &mut Fields,
) -> Result<Option<UsernamePage>, ApiError> {
    let limit = page_limit(query);
    let from = cursor(req, decode_username_cursor)?;
    Ok(limit.map(|limit| UsernamePage {
        limit: limit as usize,
        from,
    }))
}

/// The `limit` field of `query`, by default 50; `None` when it failed.
fn page_limit(query: &mut Fields) -> Option<i32> {
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
    limit.map(|limit| limit.unwrap_or(DEFAULT_PAGE_LIMIT))
}

/// The `cursor` query parameter, decoded; absent or empty for the first page, 400 when it is no
/// cursor this API answered.
fn cursor<T>(req: &Request, decode: fn(&str) -> Option<T>) -> Result<Option<T>, ApiError> {
    match query_parameter(req, "cursor") {
        None | Some("") => Ok(None),
        Some(cursor) => decode(cursor)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest("Invalid cursor".into())),
    }
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

    #[test]
    fn username_cursors_round_trip_and_refuse_anything_but_a_stored_username() {
        let cursor = encode_username_cursor("alice42");
        assert_eq!(decode_username_cursor(&cursor).as_deref(), Some("alice42"));
        let not_usernames = ["Alice", "al", "al ice", "é", ""].map(encode_username_cursor);
        for bad in not_usernames
            .iter()
            .map(String::as_str)
            .chain(["!!!", "YWxpY2U="])
        {
            assert_eq!(decode_username_cursor(bad), None, "{bad:?} was accepted");
        }
    }
}
