use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use uuid::Uuid;

use super::body_string;
use super::recovery::{send_verification, verification_token};
use super::sessions::{INCORRECT_LOGIN, start_session};
use crate::AppState;
use crate::auth::{Credentials, LEEWAY_SECONDS, Principal, hash_password, verify_password};
use crate::domain::{
    Actor, AuditEvent, AuditEventType, Email, Fields, LoginFailure, Password, RecoveryToken, User,
    Username, normalized_password,
};
use crate::http::{
    ApiError, audit_context, credentials, json_body, json_response, prefetched, query_fields,
};
use crate::ratelimit::{Reservation, reserve_login_attempt};
use crate::store::{CreateUserError, LoginRead, LoginRecord, LoginState, VerifiedLogin};

/// `POST /api/auth/register`
pub async fn register(req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let username = fields.string("username", Username::parse);
    let email = fields.string("email", Email::parse);
    let password = fields.string("password", Password::parse);
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        return Err(fields.into_error().into());
    };
    let outbox = state
        .outbox()
        .ok_or_else(|| ApiError::Internal("register has no MAIL_FROM and APP_BASE_URL".into()))?;
    let password_hash = hash_password(password).await?;
    let now = state.clock.now();
    let user = User::new(&username, &email, now);
    let audit = audit_context(&req, state, Actor::Anonymous, now);
    let registered = audit
        .event(AuditEventType::UserRegistered, user.id.to_string())
        .with_username(&user.username);
    let token = RecoveryToken::generate();
    state
        .store
        .create_user(
            &user,
            &password_hash,
            &registered,
            verification_token(state, &token, &audit),
        )
        .await
        .map_err(|error| match error {
            CreateUserError::UsernameTaken => {
                ApiError::BadRequest("Username already registered".into())
            }
            CreateUserError::EmailTaken => ApiError::BadRequest("Email already registered".into()),
            CreateUserError::Store(error) => error.into(),
        })?;
    tracing::info!(user_id = %user.id, "user registered");
    let audit = audit.by(Actor::User(user.id));
    send_verification(&req, state, outbox, &user, Some(token), &audit).await?;
    Ok(json_response(StatusCode::CREATED, &user))
}

/// `POST /api/auth/login`
pub async fn login(req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let username = fields.string("username", |raw| Ok(raw.to_owned()));
    let password = fields.string("password", |raw| Ok(normalized_password(raw)));
    let (Some(username), Some(password)) = (username, password) else {
        return Err(fields.into_error().into());
    };
    let now = state.clock.now();
    let audit = audit_context(&req, state, Actor::Anonymous, now);
    // Names that cannot exist are not looked up, nor counted, nor recorded, but cost the same
    // verification.
    let valid_username = Username::parse(&username).ok();
    let (credential, reserved) = match &valid_username {
        Some(username) => {
            let read = LoginRead(username.clone());
            let LoginState {
                credential,
                attempts,
            } = state.store.first_read(&read, prefetched(&req)).await?;
            let (subject, reason) = match &credential {
                Some(credential) => (credential.user_id.to_string(), LoginFailure::BadPassword),
                None => (username.as_str().to_owned(), LoginFailure::UnknownUser),
            };
            let failed = |reason| {
                audit
                    .event(AuditEventType::LoginFailed, &subject)
                    .with_username(username.as_str())
                    .with_reason(reason)
            };
            let if_failed = |locks: bool| {
                let locked = audit
                    .event(AuditEventType::LoginLocked, &subject)
                    .with_username(username.as_str());
                let mut events = vec![failed(reason)];
                events.extend(locks.then_some(locked));
                events
            };
            let reservation = reserve_login_attempt(
                &state.store,
                username.as_str(),
                attempts,
                now.unix_timestamp(),
                if_failed,
            )
            .await?;
            match reservation {
                Reservation::Reserved {
                    attempt,
                    provisional,
                } => (credential, Some((username, attempt, provisional))),
                Reservation::Locked {
                    retry_after_seconds,
                } => {
                    tracing::info!("login refused: too many failed attempts for this username");
                    state
                        .store
                        .record_audit(&[failed(LoginFailure::Locked)], &[])
                        .await?;
                    return Err(ApiError::Locked {
                        retry_after_seconds,
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
    // A wrong password leaves its reserved attempt and its provisional events in place: they
    // are the recorded failure.
    let Some(credential) = credential.filter(|_| verified) else {
        tracing::info!("login refused: bad credentials");
        if let Some((_, _, provisional)) = &reserved {
            provisional.iter().for_each(AuditEvent::log);
        }
        return Err(INCORRECT_LOGIN);
    };
    let Some((username, attempt, provisional)) = reserved else {
        return Err(ApiError::Internal(
            "a credential was read without its attempt reserved".into(),
        ));
    };
    match state.store.record_login(credential.user_id, now).await? {
        LoginRecord::Disabled => {
            tracing::info!(user_id = %credential.user_id, "login refused: account disabled");
            let disabled = audit
                .event(AuditEventType::LoginFailed, credential.user_id.to_string())
                .with_username(username.as_str())
                .with_reason(LoginFailure::Disabled);
            let (released, recorded) = tokio::join!(
                state
                    .store
                    .release_login_attempt(username.as_str(), attempt),
                state
                    .store
                    .record_audit(std::slice::from_ref(&disabled), &provisional)
            );
            if let Err(error) = released {
                tracing::warn!(%error, "a verified login attempt was not released; it counts as a failure until it ages out");
            }
            recorded?;
            Err(ApiError::Forbidden("Account is disabled".into()))
        }
        LoginRecord::Recorded(user) if credential.mfa => {
            super::mfa::ask_for_second_factor(state, &user, now, attempt, &provisional).await
        }
        LoginRecord::Recorded(user) => {
            let verified = VerifiedLogin {
                username: username.as_str(),
                password_hash: &credential.password_hash,
                attempt,
            };
            start_session(&req, state, &user, now, &verified, &provisional).await
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

/// `POST /api/auth/logout[?all=true]`: always succeeds. A token that verifies is revoked until it
/// stops verifying and its session ends (its refresh token with it), whatever state it was in.
/// With `all=true` and a live session, every session of the user ends instead: one write of the
/// user's session epoch, which the token's own session is behind too.
pub async fn logout(mut req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    let mut query = Fields::new(query_fields(&req)?);
    let all = query.optional_string("all", |raw| match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".to_owned()),
    });
    let Some(all) = all.map(Option::unwrap_or_default) else {
        return Err(query.into_error().into());
    };
    let audit = audit_context(&req, state, Actor::Anonymous, state.clock.now());
    let logout = |user_id: Uuid| {
        audit
            .by(Actor::User(user_id))
            .event(AuditEventType::Logout, user_id.to_string())
    };
    match credentials(&mut req) {
        Credentials::Valid(principal) if all => {
            let user = principal.user();
            let everywhere = logout(user.id).with_flag("all_sessions", true);
            state.store.end_every_session(user.id, &everywhere).await?;
            tracing::info!(user_id = %user.id, "logged out everywhere");
        }
        // A token already refused (its session over, its user inactive) ends nothing more for
        // everyone.
        Credentials::Refused(_) if all => {}
        credentials => {
            if let Some(claims) = credentials.claims() {
                state
                    .store
                    .log_out(
                        claims.jti,
                        claims.exp + LEEWAY_SECONDS,
                        claims.sid,
                        claims.sub,
                        &logout(claims.sub).with_session(claims.sid),
                    )
                    .await?;
            }
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"success": true, "message": "Successfully logged out"}),
    ))
}
