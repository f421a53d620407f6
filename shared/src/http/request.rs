use std::collections::btree_map::Entry;

use lambda_http::http::header::{AUTHORIZATION, CONTENT_TYPE};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::error::Category;
use serde_json::value::RawValue;

use time::OffsetDateTime;

use super::ApiError;
use crate::AppState;
use crate::domain::{Actor, AuditContext, FieldError, JsonObject};
use crate::routes::Route;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The JSON object a request carries, after checking its media type and size.
pub fn json_body(req: &Request) -> Result<JsonObject, ApiError> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false);
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    // A body that is not UTF-8 reaches the function base64-encoded (`isBase64Encoded`), which
    // lambda_http decodes into `Body::Binary`.
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => return Err(ApiError::BadRequest("Unsupported request body".into())),
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    // JSON exchanged between systems is UTF-8 (RFC 8259, section 8.1). Said as such, rather than
    // as the parser's "invalid unicode code point" or "expected value" at some column.
    if let Err(error) = std::str::from_utf8(bytes) {
        return Err(ApiError::BadRequest(format!(
            "Malformed JSON body: not UTF-8 (an invalid byte at offset {})",
            error.valid_up_to()
        )));
    }
    // Well-formed JSON of another type (array, string, null, ...) is a data error.
    match serde_json::from_slice::<UniqueKeys>(bytes) {
        Ok(UniqueKeys::Fields(fields)) => Ok(fields),
        Ok(UniqueKeys::Duplicate(key)) => Err(ApiError::BadRequest(format!(
            "Malformed JSON body: the field `{key}` appears more than once"
        ))),
        Err(error) if error.classify() == Category::Data => {
            Err(ApiError::validation("body", "must be a JSON object"))
        }
        Err(error) => Err(ApiError::BadRequest(format!(
            "Malformed JSON body: {error}"
        ))),
    }
}

/// A JSON object's fields, or the first name it repeats: which value a repeated name means is
/// ambiguous (parsers disagree), so such a body is refused rather than read either way.
enum UniqueKeys {
    Fields(JsonObject),
    Duplicate(String),
}

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = UniqueKeys;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
                let mut fields = JsonObject::new();
                let mut duplicate = None;
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    match fields.entry(key) {
                        Entry::Occupied(repeated) => {
                            duplicate.get_or_insert_with(|| repeated.key().clone());
                        }
                        Entry::Vacant(slot) => {
                            slot.insert(value);
                        }
                    }
                }
                Ok(match duplicate {
                    Some(key) => UniqueKeys::Duplicate(key),
                    None => UniqueKeys::Fields(fields),
                })
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// The first value of a query string parameter.
pub fn query_parameter<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref()?.first(name)
}

/// The query string as fields of strings, so that query parameters are validated like body
/// fields. A name given twice is refused: which value it means is ambiguous.
pub fn query_fields(req: &Request) -> Result<JsonObject, ApiError> {
    let mut fields = JsonObject::new();
    let Some(query) = req.query_string_parameters_ref() else {
        return Ok(fields);
    };
    for (name, values) in query
        .iter()
        .map(|(name, _)| (name, query.all(name).unwrap_or_default()))
    {
        if values.len() > 1 {
            return Err(ApiError::BadRequest(format!(
                "The query parameter `{name}` appears more than once"
            )));
        }
        if let Some(value) = values.first() {
            let text = RawValue::from_string(Value::from(*value).to_string())
                .expect("a serialised JSON string is valid JSON");
            fields.insert(name.to_owned(), text);
        }
    }
    Ok(fields)
}

/// Refuses a query string naming a parameter `route` does not take (a typo would otherwise be
/// ignored, and the answer taken for the one asked): 422 listing each unknown name, with the
/// parameters the route takes. The default route answers whatever the query string: it serves
/// nothing to ask for.
pub fn refuse_unknown_query_parameters(req: &Request, route: &Route) -> Result<(), ApiError> {
    let Some(query) = req
        .query_string_parameters_ref()
        .filter(|_| !route.is_default())
    else {
        return Ok(());
    };
    let takes = match route.query {
        [] => "it takes none".to_owned(),
        names => format!("it takes {}", names.join(", ")),
    };
    let mut unknown: Vec<&str> = Vec::new();
    for (name, _) in query.iter() {
        if !route.query.contains(&name) && !unknown.contains(&name) {
            unknown.push(name);
        }
    }
    if unknown.is_empty() {
        return Ok(());
    }
    // The parameters come in a hash map: sorted, the answer is the same for the same request.
    unknown.sort_unstable();
    Err(ApiError::Validation(
        unknown
            .into_iter()
            .map(|name| FieldError {
                field: name.to_owned(),
                message: format!("is not a query parameter of {route}; {takes}"),
            })
            .collect(),
    ))
}

/// A path parameter of the route (`{id}`).
pub fn path_parameter<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.path_parameters_ref()?.first(name)
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(req: &Request) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The header an API key comes in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The `X-API-Key` header, if the request has one (its value unchecked: it may not even be text).
pub fn api_key_header(req: &Request) -> Option<&lambda_http::http::HeaderValue> {
    req.headers().get(API_KEY_HEADER)
}

/// The header a client names its own correlation id in, and every answer carries.
pub const CORRELATION_ID_HEADER: &str = "x-correlation-id";
const CORRELATION_ID_MAX_CHARS: usize = 64;

/// The client's `X-Correlation-ID`, if it is one this API repeats: 1-64 characters of
/// `[A-Za-z0-9._-]` (anything else could forge or break a log line or a header).
pub fn client_correlation_id(req: &Request) -> Option<&str> {
    let value = req.headers().get(CORRELATION_ID_HEADER)?.to_str().ok()?;
    let well_formed = (1..=CORRELATION_ID_MAX_CHARS).contains(&value.len())
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    well_formed.then_some(value)
}

/// Whether the request has an `Authorization` header, whatever its scheme or value.
pub fn has_authorization(req: &Request) -> bool {
    req.headers().contains_key(AUTHORIZATION)
}

/// The client address API Gateway saw. Never taken from a client-sent header.
pub fn source_ip(req: &Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref(),
        _ => None,
    }
}

/// Where the request's audit events come from: its source IP and request id, at `now`, acted on
/// by `actor`.
pub fn audit_context(
    req: &Request,
    state: &AppState,
    actor: Actor,
    now: OffsetDateTime,
) -> AuditContext {
    AuditContext {
        actor,
        source_ip: source_ip(req).map(str::to_owned),
        request_id: req
            .lambda_context_ref()
            .map(|context| context.request_id.clone()),
        at: now,
        retention_days: state.config.audit_retention_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http;

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = http::Request::builder().method("POST").uri("/x");
        if let Some(content_type) = content_type {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        builder.body(Body::Text(body.to_owned())).unwrap()
    }

    #[test]
    fn accepts_a_json_object() {
        let body = json_body(&request(
            Some("application/json; charset=utf-8"),
            r#"{"a":1}"#,
        ))
        .unwrap();
        assert_eq!(body["a"].get(), "1");
    }

    #[test]
    fn refuses_other_media_types() {
        for content_type in [
            None,
            Some("text/html"),
            Some("application/x-www-form-urlencoded"),
        ] {
            assert!(matches!(
                json_body(&request(content_type, "{}")),
                Err(ApiError::UnsupportedMediaType)
            ));
        }
    }

    #[test]
    fn refuses_malformed_non_object_and_oversize_bodies() {
        let json = Some("application/json");
        assert!(matches!(
            json_body(&request(json, "{bad")),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            json_body(&request(json, "")),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            json_body(&request(json, "[1]")),
            Err(ApiError::Validation(_))
        ));
        // Nesting is never recursed into: a deep array is just not an object, and a deep field
        // nobody reads is ignored.
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            json_body(&request(json, &deep)),
            Err(ApiError::Validation(_))
        ));
        assert!(json_body(&request(json, &format!(r#"{{"a":{deep}}}"#))).is_ok());
        assert!(matches!(
            json_body(&request(json, &format!(r#"{{"a":{}}}"#, &deep[1..]))),
            Err(ApiError::BadRequest(_))
        ));
        let at_limit = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_BODY_BYTES - 8));
        assert_eq!(at_limit.len(), MAX_BODY_BYTES);
        assert!(json_body(&request(json, &at_limit)).is_ok());
        let over = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_BODY_BYTES - 7));
        assert!(matches!(
            json_body(&request(json, &over)),
            Err(ApiError::PayloadTooLarge(_))
        ));
    }

    #[test]
    fn refuses_bodies_that_are_not_utf8() {
        let binary = |bytes: &[u8]| {
            http::Request::builder()
                .method("POST")
                .header(CONTENT_TYPE, "application/json")
                .body(Body::Binary(bytes.to_vec()))
                .unwrap()
        };
        for (bytes, offset) in [
            (&b"{\"a\":\"caf\xe9\"}"[..], 9),
            (b"\xff\xfe{}", 0),
            (b"{\"a\":\"\xed\xa0\x80\"}", 6),
        ] {
            let Err(ApiError::BadRequest(detail)) = json_body(&binary(bytes)) else {
                panic!("{bytes:?} was accepted")
            };
            assert_eq!(
                detail,
                format!("Malformed JSON body: not UTF-8 (an invalid byte at offset {offset})")
            );
        }
        let body = json_body(&binary("{\"a\":\"café\"}".as_bytes())).unwrap();
        assert_eq!(body["a"].get(), "\"café\"");
    }

    #[test]
    fn refuses_repeated_field_names() {
        let json = Some("application/json");
        let Err(ApiError::BadRequest(detail)) = json_body(&request(
            json,
            r#"{"amount": "1", "to": "x", "amount": "1000"}"#,
        )) else {
            panic!("a repeated name was accepted")
        };
        assert!(detail.contains("`amount`"), "{detail}");
        assert!(
            json_body(&request(json, r#"{"a": {"b": 1, "b": 2}}"#)).is_ok(),
            "nested objects are the fields' own business"
        );
    }

    #[test]
    fn a_client_correlation_id_is_repeated_only_when_well_formed() {
        let with = |value: &[u8]| {
            http::Request::builder()
                .header(CORRELATION_ID_HEADER, value)
                .body(Body::Empty)
                .unwrap()
        };
        let longest = "a".repeat(64);
        for good in ["a", "req-42", "A.b_c-9", longest.as_str()] {
            assert_eq!(client_correlation_id(&with(good.as_bytes())), Some(good));
        }
        let too_long = "a".repeat(65);
        for bad in [
            &b""[..],
            too_long.as_bytes(),
            b"has space",
            b"tab\there",
            b"quote\"d",
            b"{json}",
            b"caf\xc3\xa9",
            b"a/b",
            b"a:b",
        ] {
            assert_eq!(client_correlation_id(&with(bad)), None, "{bad:?}");
        }
        let without = http::Request::builder().body(Body::Empty).unwrap();
        assert_eq!(client_correlation_id(&without), None);
    }

    #[test]
    fn reads_bearer_tokens_only() {
        let with = |value: &str| {
            http::Request::builder()
                .header(AUTHORIZATION, value)
                .body(Body::Empty)
                .unwrap()
        };
        assert_eq!(bearer_token(&with("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&with("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&with("Bearer")), None);
        assert_eq!(bearer_token(&with("Bearer ")), None);
        assert_eq!(bearer_token(&with("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer_token(&with("")), None);
    }
}
