use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::body_string;
use crate::AppState;
use crate::auth::{LEEWAY_SECONDS, Principal, hash_password, verify_password};
use crate::domain::{Email, Fields, Password, User, Username, normalized_password};
use crate::http::{ApiError, credentials, json_body, json_response, prefetched};
use crate::ratelimit::{Reservation, reserve_login_attempt};
use crate::store::{CreateUserError, LoginRead, LoginRecord, LoginState};

/// `POST /api/auth/register`
pub async fn register(req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let username = fields.string("username", Username::parse);
    let email = fields.string("email", Email::parse);
    let password = fields.string("password", Password::parse);
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        return Err(fields.into_error().into());
    };
    let password_hash = hash_password(password).await?;
    let user = User::new(&username, &email, OffsetDateTime::now_utc());
    state
        .store
        .create_user(&user, &password_hash)
        .await
        .map_err(|error| match error {
            CreateUserError::UsernameTaken => {
                ApiError::BadRequest("Username already registered".into())
            }
            CreateUserError::EmailTaken => ApiError::BadRequest("Email already registered".into()),
            CreateUserError::Store(error) => error.into(),
        })?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok(json_response(StatusCode::CREATED, &user))
}

/// `POST /api/auth/login`
pub async fn login(req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    const REFUSED: ApiError = ApiError::Unauthorized("Incorrect username or password");
    let mut fields = Fields::new(json_body(&req)?);
    let username = fields.string("username", |raw| Ok(raw.to_owned()));
    let password = fields.string("password", |raw| Ok(normalized_password(raw)));
    let (Some(username), Some(password)) = (username, password) else {
        return Err(fields.into_error().into());
    };
    let now = OffsetDateTime::now_utc();
    // Names that cannot exist are not looked up, nor counted, but cost the same verification.
    let username = Username::parse(&username).ok();
    let (credential, reserved) = match &username {
        Some(username) => {
            let read = LoginRead(username.clone());
            let LoginState {
                credential,
                attempts,
            } = state.store.first_read(&read, prefetched(&req)).await?;
            let reservation = reserve_login_attempt(
                &state.store,
                username.as_str(),
                attempts,
                now.unix_timestamp(),
            )
            .await?;
            match reservation {
                Reservation::Reserved(attempt) => (credential, Some((username, attempt))),
                Reservation::Locked {
                    retry_after_seconds,
                } => {
                    tracing::info!("login refused: too many failed attempts for this username");
                    return Err(ApiError::RateLimited {
                        retry_after_seconds,
                        detail: "Too many failed login attempts; try again later".into(),
                    });
                }
            }
        }
        None => (None, None),
    };
    let stored_hash = credential
        .as_ref()
        .map(|credential| credential.password_hash.clone());
    let verified = verify_password(password, stored_hash).await;
    // A wrong password leaves its reserved attempt in place: that is the recorded failure.
    let Some(credential) = credential.filter(|_| verified) else {
        tracing::info!("login refused: bad credentials");
        return Err(REFUSED);
    };
    let release = async {
        match reserved {
            Some((username, attempt)) => {
                state
                    .store
                    .release_login_attempt(username.as_str(), attempt)
                    .await
            }
            None => Ok(()),
        }
    };
    let (recorded, released) =
        tokio::join!(state.store.record_login(credential.user_id, now), release);
    if let Err(error) = released {
        tracing::warn!(%error, "a verified login attempt was not released; it counts as a failure until it ages out");
    }
    match recorded? {
        LoginRecord::Disabled => {
            tracing::info!(user_id = %credential.user_id, "login refused: account disabled");
            Err(ApiError::Forbidden("Account is disabled".into()))
        }
        LoginRecord::Recorded(user) => {
            let tokens = state.jwt_keys().ok_or_else(|| {
                ApiError::Internal("login's function was started without a JWT secret".into())
            })?;
            let issued = tokens.issue(&user, now);
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "access_token": issued.token,
                    "token_type": "bearer",
                    "expires_in": issued.expires_in,
                }),
            ))
        }
    }
}

/// What login reads first: the username's credential and failed attempts.
pub fn login_first_read(req: &Request, _: Option<Uuid>) -> Option<LoginRead> {
    body_string(req, "username")
        .and_then(|username| Username::parse(&username).ok())
        .map(LoginRead)
}

/// `GET /api/auth/me`
pub async fn me(
    _req: Request,
    principal: Principal,
    _state: &AppState,
) -> Result<Response<Body>, ApiError> {
    Ok(json_response(StatusCode::OK, principal.user()))
}

/// `POST /api/auth/logout`: always succeeds; a token that verifies is revoked until it stops
/// verifying, whatever its session.
pub async fn logout(mut req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    if let Some(claims) = credentials(&mut req).claims() {
        state
            .store
            .revoke_token(claims.jti, claims.exp + LEEWAY_SECONDS)
            .await?;
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"success": true, "message": "Successfully logged out"}),
    ))
}
