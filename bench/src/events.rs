//! The API Gateway HTTP API (payload 2.0) events the bench sends, and the access tokens in them.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde_json::{Map, Value, json};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is not a JWT")]
    NotAJwt,
}

/// An event as API Gateway sends it for `method path`, with `body` as JSON.
pub fn api_gateway_event(method: &str, path: &str, body: Option<&Value>) -> Value {
    let route_key = format!("{method} {path}");
    let mut headers = json!({
        "host": "api.fog-compute.example",
        "user-agent": "fog-bench",
        "accept": "application/json",
    });
    if body.is_some() {
        headers["content-type"] = json!("application/json");
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "api.fog-compute.example",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.20",
                "userAgent": "fog-bench"
            },
            "requestId": "",
            "routeKey": route_key,
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 0
        },
        "isBase64Encoded": false
    });
    if let Some(body) = body {
        event["body"] = json!(body.to_string());
    }
    event
}

/// Fills a route's path parameters (`{id}`) with fresh UUIDs, in `rawPath` and
/// `pathParameters`; the route key keeps the template.
pub fn fill_path_parameters(event: &mut Value, path: &str) {
    let mut parameters = Map::new();
    let concrete: Vec<String> = path
        .split('/')
        .map(|segment| {
            match segment
                .strip_prefix('{')
                .and_then(|name| name.strip_suffix('}'))
            {
                Some(name) => {
                    let value = Uuid::new_v4().to_string();
                    parameters.insert(name.trim_end_matches('+').to_owned(), json!(value));
                    value
                }
                None => segment.to_owned(),
            }
        })
        .collect();
    if parameters.is_empty() {
        return;
    }
    let concrete = concrete.join("/");
    event["rawPath"] = json!(concrete);
    event["requestContext"]["http"]["path"] = json!(concrete);
    event["pathParameters"] = Value::Object(parameters);
}

/// `event` as one invocation sends it: its own request id and time, and `token` as the bearer.
pub fn invocation_event(event: &Value, token: Option<&str>) -> Value {
    let mut event = event.clone();
    let now_ms = epoch_ms();
    let context = &mut event["requestContext"];
    context["requestId"] = json!(Uuid::new_v4().to_string());
    context["timeEpoch"] = json!(now_ms);
    if let Some(token) = token {
        if !event["headers"].is_object() {
            event["headers"] = json!({});
        }
        let headers = event["headers"].as_object_mut().expect("an object");
        // A fixture's own token, whatever the case of its header name, gives way.
        headers.retain(|name, _| !name.eq_ignore_ascii_case("authorization"));
        headers.insert("authorization".into(), json!(format!("Bearer {token}")));
    }
    event
}

/// Signs copies of a real access token that differ in their id (`jti`) and times, with the
/// HS256 key the functions were given: each request gets a token of its own, as when many
/// clients call, and a route that revokes its token (logout) never meets an already revoked one.
pub struct TokenMint {
    header: String,
    claims: Map<String, Value>,
    lifetime_seconds: i64,
    key: Vec<u8>,
}

impl TokenMint {
    pub fn new(token: &str, key: &[u8]) -> Result<Self, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::NotAJwt);
        };
        let claims: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(claims)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(TokenError::NotAJwt)?;
        let lifetime_seconds = match (claims.get("exp"), claims.get("iat")) {
            (Some(exp), Some(iat)) => exp.as_i64().unwrap_or(0) - iat.as_i64().unwrap_or(0),
            _ => 1800,
        };
        Ok(Self {
            header: header.to_owned(),
            claims,
            lifetime_seconds,
            key: key.to_vec(),
        })
    }

    /// A claim of the token it copies (the session's id, `sid`, say).
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    pub fn fresh(&self) -> String {
        let now = (epoch_ms() / 1000) as i64;
        let mut claims = self.claims.clone();
        claims.insert("jti".into(), json!(Uuid::new_v4().to_string()));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + self.lifetime_seconds));
        let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
        let signed = format!("{}.{payload}", self.header);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signed}.{signature}")
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims_of(token: &str) -> Value {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    fn sign(header_and_payload: &str, key: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(header_and_payload.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    #[test]
    fn minted_tokens_keep_the_claims_and_change_id_and_times() {
        let key = b"a-key-of-at-least-thirty-two-bytes!!";
        let header = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"HS256"}"#);
        let payload = URL_SAFE_NO_PAD.encode(
            r#"{"sub":"u1","username":"fogbench","iat":100,"exp":1900,"jti":"old","iss":"fog-compute","aud":"fog-compute-api"}"#,
        );
        let original = format!(
            "{header}.{payload}.{}",
            sign(&format!("{header}.{payload}"), key)
        );
        let mint = TokenMint::new(&original, key).unwrap();
        assert_eq!(mint.claim("sub"), Some(&json!("u1")));
        assert_eq!(mint.claim("sid"), None);
        let (first, second) = (mint.fresh(), mint.fresh());
        let claims = claims_of(&first);
        assert_eq!(claims["sub"], "u1");
        assert_eq!(claims["iss"], "fog-compute");
        assert_ne!(claims["jti"], "old");
        assert_ne!(claims["jti"], claims_of(&second)["jti"]);
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            1800
        );
        let (signed, signature) = first.rsplit_once('.').unwrap();
        assert_eq!(signature, sign(signed, key));
        assert!(signed.starts_with(&header));
    }

    #[test]
    fn refuses_what_is_not_a_jwt() {
        assert!(TokenMint::new("abc", b"k").is_err());
        assert!(TokenMint::new("a.b.c", b"k").is_err());
    }

    #[test]
    fn invocation_events_carry_their_own_request_id_and_the_token() {
        let base = api_gateway_event("GET", "/api/auth/me", None);
        let first = invocation_event(&base, Some("t1"));
        let second = invocation_event(&base, None);
        assert_eq!(first["headers"]["authorization"], "Bearer t1");
        assert!(second["headers"].get("authorization").is_none());
        assert_ne!(
            first["requestContext"]["requestId"],
            second["requestContext"]["requestId"]
        );
        assert_eq!(first["requestContext"]["http"]["method"], "GET");
    }

    #[test]
    fn a_fixture_token_gives_way_to_the_fresh_one() {
        let mut fixture = api_gateway_event("GET", "/api/auth/me", None);
        fixture["headers"]["Authorization"] = json!("Bearer stale");
        let event = invocation_event(&fixture, Some("fresh"));
        let headers = event["headers"].as_object().unwrap();
        assert_eq!(headers.get("authorization").unwrap(), "Bearer fresh");
        assert!(headers.get("Authorization").is_none());
    }

    #[test]
    fn bodies_are_json_text_with_their_content_type() {
        let event = api_gateway_event("POST", "/api/auth/login", Some(&json!({"username": "a"})));
        assert_eq!(event["body"], r#"{"username":"a"}"#);
        assert_eq!(event["headers"]["content-type"], "application/json");
    }

    #[test]
    fn path_parameters_are_filled() {
        let mut event = api_gateway_event("GET", "/api/scheduler/jobs/{id}", None);
        fill_path_parameters(&mut event, "/api/scheduler/jobs/{id}");
        let id = event["pathParameters"]["id"].as_str().unwrap().to_owned();
        assert_eq!(event["rawPath"], format!("/api/scheduler/jobs/{id}"));
        assert_eq!(event["routeKey"], "GET /api/scheduler/jobs/{id}");
    }
}
