use lambda_http::http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;

use super::ApiError;
use crate::auth::TokenFault;

/// RFC 6750, section 3.1: a refused bearer token is `invalid_token`; an expired one says so.
const INVALID_TOKEN_CHALLENGE: &str = "Bearer error=\"invalid_token\"";
const EXPIRED_TOKEN_CHALLENGE: &str =
    "Bearer error=\"invalid_token\", error_description=\"The access token expired\"";

/// Seconds a client should wait before retrying after a 503.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u32 = 1;

pub fn json_response(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_string(value).expect("response types serialise infallibly");
    with_body(status, "application/json", body)
}

/// A body that is JSON text already.
pub fn json_text_response(status: StatusCode, body: &str) -> Response<Body> {
    with_body(status, "application/json", body.to_owned())
}

/// A 200 of a file the docs page serves, with how long it may be cached (kept only on the docs
/// page's route: `routes::Serves`).
pub fn file_response(
    content_type: &'static str,
    cache_control: &'static str,
    body: Body,
) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
    response
}

/// The RFC 9457 problem+json answer for an error: the one shape every failure takes.
pub fn problem(error: &ApiError) -> Response<Body> {
    let status = match error {
        ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ApiError::Unauthorized(_) | ApiError::InvalidToken(_) | ApiError::InvalidApiKey => {
            StatusCode::UNAUTHORIZED
        }
        ApiError::Forbidden(_) | ApiError::ReauthenticationRequired { .. } => StatusCode::FORBIDDEN,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        ApiError::Conflict(_) => StatusCode::CONFLICT,
        ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ApiError::Locked { .. } => StatusCode::LOCKED,
        ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": error.to_string(),
    });
    match error {
        ApiError::Validation(errors) => body["errors"] = json!(errors),
        ApiError::RateLimited {
            retry_after_seconds,
            ..
        } => {
            body["error"] = json!("Rate limit exceeded");
            body["retry_after"] = json!(retry_after_seconds);
        }
        ApiError::Locked {
            retry_after_seconds,
        } => body["retry_after"] = json!(retry_after_seconds),
        _ => {}
    }
    let mut response = with_body(status, "application/problem+json", body.to_string());
    let headers = response.headers_mut();
    match error {
        ApiError::Unauthorized(_) => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        ApiError::InvalidToken(fault) => {
            let challenge = match fault {
                TokenFault::Expired => EXPIRED_TOKEN_CHALLENGE,
                TokenFault::Invalid => INVALID_TOKEN_CHALLENGE,
            };
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        ApiError::InvalidApiKey => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("ApiKey"));
        }
        ApiError::ReauthenticationRequired {
            max_age_seconds, ..
        } => {
            let challenge = format!(
                r#"Bearer error="insufficient_user_authentication", max_age={max_age_seconds}"#
            );
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_str(&challenge).expect("a challenge of ASCII and digits"),
            );
        }
        ApiError::MethodNotAllowed { allowed, .. } => {
            if let Ok(allow) = HeaderValue::try_from(allowed.join(", ")) {
                headers.insert(ALLOW, allow);
            }
        }
        ApiError::Unavailable => {
            headers.insert(RETRY_AFTER, UNAVAILABLE_RETRY_AFTER_SECONDS.into());
        }
        ApiError::RateLimited {
            retry_after_seconds,
            ..
        }
        | ApiError::Locked {
            retry_after_seconds,
        } => {
            headers.insert(RETRY_AFTER, (*retry_after_seconds).into());
        }
        _ => {}
    }
    response
}

fn with_body(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FieldError;

    fn body(response: &Response<Body>) -> serde_json::Value {
        match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            _ => panic!("expected a text body"),
        }
    }

    #[test]
    fn validation_problems_list_their_fields() {
        let error = ApiError::Validation(vec![FieldError {
            field: "email".into(),
            message: "must be a valid email address".into(),
        }]);
        let response = problem(&error);
        assert_eq!(response.status(), 422);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        let body = body(&response);
        assert_eq!(body["status"], 422);
        assert!(body["detail"].is_string());
        assert_eq!(body["errors"][0]["field"], "email");
    }

    #[test]
    fn unauthorized_and_unavailable_carry_their_headers() {
        let response = problem(&ApiError::Unauthorized("Not authenticated"));
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
        let response = problem(&ApiError::InvalidToken(TokenFault::Invalid));
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(body(&response)["detail"], "Could not validate credentials");
        let response = problem(&ApiError::InvalidToken(TokenFault::Expired));
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\", error_description=\"The access token expired\""
        );
        assert_eq!(body(&response)["detail"], "Token has expired");
        let response = problem(&ApiError::InvalidApiKey);
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "ApiKey");
        assert_eq!(body(&response)["detail"], "Invalid API key");
        let response = problem(&ApiError::Unavailable);
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
    }

    /// RFC 9470's step-up challenge, on the project's problem shape.
    #[test]
    fn a_sign_in_too_old_is_a_403_with_the_step_up_challenge() {
        let response = problem(&ApiError::ReauthenticationRequired {
            max_age_seconds: 600,
            detail: "Sign in again".into(),
        });
        assert_eq!(response.status(), 403);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            r#"Bearer error="insufficient_user_authentication", max_age=600"#
        );
        let body = body(&response);
        assert_eq!(
            (body["status"].as_u64(), body["detail"].as_str()),
            (Some(403), Some("Sign in again"))
        );
    }

    #[test]
    fn rate_limited_answers_carry_what_the_frontend_reads() {
        let response = problem(&ApiError::RateLimited {
            retry_after_seconds: 12,
            detail: "Too many requests".into(),
        });
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[RETRY_AFTER], "12");
        let body = body(&response);
        assert_eq!(
            (body["error"].as_str(), body["retry_after"].as_u64()),
            (Some("Rate limit exceeded"), Some(12))
        );
        assert_eq!(body["detail"], "Too many requests");
    }

    #[test]
    fn a_locked_username_is_423_in_the_old_backends_words() {
        for (seconds, minutes) in [(1, 1), (60, 1), (61, 2), (900, 15)] {
            let response = problem(&ApiError::Locked {
                retry_after_seconds: seconds,
            });
            assert_eq!(response.status(), 423);
            assert_eq!(
                response.headers()[RETRY_AFTER],
                seconds.to_string().as_str()
            );
            let body = body(&response);
            assert_eq!(
                body["detail"],
                format!(
                    "Account locked due to too many failed attempts. Try again in {minutes} minutes."
                )
            );
            assert_eq!(
                (body["title"].as_str(), body["retry_after"].as_u64()),
                (Some("Locked"), Some(seconds))
            );
            assert_eq!(body.get("error"), None, "not the rate limiter's answer");
        }
    }

    #[test]
    fn internal_errors_leak_nothing() {
        let response = problem(&ApiError::Internal(
            "table fog-users: ValidationException".into(),
        ));
        assert_eq!(response.status(), 500);
        assert_eq!(body(&response)["detail"], "Internal server error");
    }
}
