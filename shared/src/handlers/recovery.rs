//! Account recovery by email (issue 25): password reset and address verification. The mails go
//! out through `AppState::outbox`; a mail the service refuses is logged and recorded
//! (`mail.failed`), and the request answers as if it had gone (the user can ask again).

use std::time::Duration;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::AppState;
use crate::auth::{Principal, hash_password};
use crate::domain::{
    Actor, AuditContext, AuditEventType, Email, Fields, MAILS_PER_HOUR, Mail, Password,
    RecoveryToken, TokenPurpose, User,
};
use crate::http::{ApiError, audit_context, json_body, json_response, source_ip};
use crate::mail::Outbox;
use crate::store::{MailCount, NewToken, ResetRecord, Spend, VerificationRecord};

const RESET_REQUESTED: &str =
    "If an account exists with that email, a password reset link has been sent.";
const RESET_DONE: &str = "Your password has been reset successfully.";
const INVALID_RESET_TOKEN: &str = "Invalid or expired reset token";
const INVALID_VERIFICATION_TOKEN: &str = "Invalid or expired verification token";

/// A reset request answers no sooner than this after it arrived, whether a mail went out or
/// not, so that the time of the answer does not tell a known address from an unknown one (the
/// mail service's round trip is the one step only a known address takes).
const RESET_REQUEST_ANSWER_FLOOR: Duration = Duration::from_millis(600);

/// `POST /api/auth/password-reset/request`: always the same 200, in about the same time. A
/// known, active address within its hourly cap gets a mail with a new reset link.
pub async fn request_password_reset(
    req: Request,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let answer_at = tokio::time::Instant::now() + RESET_REQUEST_ANSWER_FLOOR;
    let mut fields = Fields::new(json_body(&req)?);
    let email = fields.string("email", Email::parse);
    let Some(email) = email else {
        return Err(fields.into_error().into());
    };
    let outbox = outbox(state)?;
    let now = state.clock.now();
    // Both reads and the count happen for every address: no early answer a stopwatch can see.
    let (within_cap, user) = tokio::try_join!(
        state.store.count_mail(
            TokenPurpose::PasswordReset,
            email.as_str(),
            MAILS_PER_HOUR,
            now.unix_timestamp(),
        ),
        state.store.user_by_email(&email),
    )?;
    match user.filter(|user| user.is_active) {
        Some(user) if within_cap == MailCount::Counted => {
            let token = RecoveryToken::generate();
            let minutes = state.config.password_reset_token_minutes;
            let expires_at = (now + time::Duration::minutes(minutes)).unix_timestamp();
            state
                .store
                .issue_reset_token(
                    &user,
                    NewToken {
                        hash: token.hash(),
                        expires_at,
                    },
                )
                .await?;
            let link = outbox.link(TokenPurpose::PasswordReset, &token);
            let mail = Mail::password_reset(&user.email, &link, source_ip(&req), minutes);
            let audit = audit_context(&req, state, Actor::Anonymous, now);
            send(
                state,
                outbox,
                &mail,
                &user,
                TokenPurpose::PasswordReset,
                &audit,
            )
            .await?;
            tracing::info!(user_id = %user.id, "password reset mail sent");
        }
        Some(user) => {
            tracing::info!(user_id = %user.id, "password reset not mailed: the address's hourly cap is reached");
        }
        None => tracing::info!("password reset not mailed: no active account has the address"),
    }
    tokio::time::sleep_until(answer_at).await;
    Ok(json_response(
        StatusCode::OK,
        &json!({"message": RESET_REQUESTED}),
    ))
}

/// `POST /api/auth/password-reset/confirm`: a weak password is 422 and leaves the token usable;
/// a token that is not one, expired, spent (even by a racing confirm) or dead (another reset
/// came first) is 400.
pub async fn confirm_password_reset(
    req: Request,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let token = fields.string("token", |raw| Ok(RecoveryToken::parse(raw)));
    let password = fields.string("new_password", Password::parse);
    let (Some(token), Some(password)) = (token, password) else {
        return Err(fields.into_error().into());
    };
    let invalid = || ApiError::BadRequest(INVALID_RESET_TOKEN.into());
    let hash = token.ok_or_else(invalid)?.hash();
    let now = state.clock.now();
    let record: ResetRecord = state
        .store
        .recovery_token(TokenPurpose::PasswordReset, &hash, now.unix_timestamp())
        .await?
        .ok_or_else(invalid)?;
    let new_hash = hash_password(password).await?;
    let reset = audit_context(&req, state, Actor::User(record.user_id), now)
        .event(AuditEventType::PasswordReset, record.user_id.to_string());
    match state
        .store
        .reset_password(&hash, &record, &new_hash, now.unix_timestamp(), &reset)
        .await?
    {
        Spend::Done => {
            tracing::info!(user_id = %record.user_id, "password reset; every session ended");
            Ok(json_response(
                StatusCode::OK,
                &json!({"message": RESET_DONE}),
            ))
        }
        Spend::TokenInvalid => Err(invalid()),
    }
}

/// `POST /api/auth/verify-email`: the address the token was mailed to is verified.
pub async fn verify_email(req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let token = fields.string("token", |raw| Ok(RecoveryToken::parse(raw)));
    let Some(token) = token else {
        return Err(fields.into_error().into());
    };
    let invalid = || ApiError::BadRequest(INVALID_VERIFICATION_TOKEN.into());
    let hash = token.ok_or_else(invalid)?.hash();
    let now = state.clock.now();
    let record: VerificationRecord = state
        .store
        .recovery_token(TokenPurpose::EmailVerification, &hash, now.unix_timestamp())
        .await?
        .ok_or_else(invalid)?;
    let verified = audit_context(&req, state, Actor::User(record.user_id), now)
        .event(AuditEventType::EmailVerified, record.user_id.to_string());
    match state
        .store
        .verify_email(&hash, &record, now.unix_timestamp(), &verified)
        .await?
    {
        Spend::Done => {
            tracing::info!(user_id = %record.user_id, "email address verified");
            Ok(json_response(
                StatusCode::OK,
                &json!({"message": "Your email address has been verified.", "email_verified": true}),
            ))
        }
        Spend::TokenInvalid => Err(invalid()),
    }
}

/// `POST /api/auth/verify-email/resend`: a new verification mail, at most `MAILS_PER_HOUR` an
/// hour (429 beyond: the caller is signed in, so this tells nothing about other addresses).
pub async fn resend_verification(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    if user.email_verified {
        return Err(ApiError::BadRequest(
            "Your email address is verified already".into(),
        ));
    }
    let outbox = outbox(state)?;
    let now = state.clock.now();
    let count = state
        .store
        .count_mail(
            TokenPurpose::EmailVerification,
            &user.id.to_string(),
            MAILS_PER_HOUR,
            now.unix_timestamp(),
        )
        .await?;
    if let MailCount::Capped {
        retry_after_seconds,
    } = count
    {
        return Err(ApiError::RateLimited {
            retry_after_seconds,
            detail: format!(
                "At most {MAILS_PER_HOUR} verification mails an hour; retry in {retry_after_seconds} seconds"
            ),
        });
    }
    let audit = audit_context(&req, state, Actor::User(user.id), now);
    send_verification(&req, state, outbox, user, None, &audit).await?;
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({"message": "A verification mail has been sent."}),
    ))
}

/// A new verification token for `user`, stored (unless a registration's transaction stored
/// `stored` already), and its mail sent.
pub async fn send_verification(
    req: &Request,
    state: &AppState,
    outbox: &Outbox,
    user: &User,
    stored: Option<RecoveryToken>,
    audit: &AuditContext,
) -> Result<(), ApiError> {
    let hours = state.config.email_verification_token_hours;
    let token = match stored {
        Some(token) => token,
        None => {
            let token = RecoveryToken::generate();
            state
                .store
                .issue_verification_token(user, verification_token(state, &token, audit))
                .await?;
            token
        }
    };
    let link = outbox.link(TokenPurpose::EmailVerification, &token);
    let mail = Mail::verification(&user.email, &link, source_ip(req), hours);
    send(
        state,
        outbox,
        &mail,
        user,
        TokenPurpose::EmailVerification,
        audit,
    )
    .await
}

/// The stored form of a new verification token, valid `EMAIL_VERIFICATION_TOKEN_HOURS` from
/// the request.
pub fn verification_token(
    state: &AppState,
    token: &RecoveryToken,
    audit: &AuditContext,
) -> NewToken {
    let hours = time::Duration::hours(state.config.email_verification_token_hours);
    NewToken {
        hash: token.hash(),
        expires_at: (audit.at + hours).unix_timestamp(),
    }
}

/// Sends `mail`; a refusal is logged and recorded (`mail.failed`), not an error of the request.
async fn send(
    state: &AppState,
    outbox: &Outbox,
    mail: &Mail,
    user: &User,
    purpose: TokenPurpose,
    audit: &AuditContext,
) -> Result<(), ApiError> {
    let Err(error) = outbox.send(mail).await else {
        return Ok(());
    };
    tracing::warn!(user_id = %user.id, mail = purpose.as_str(), %error, "a mail was not sent");
    let failed = audit
        .event(AuditEventType::MailFailed, user.id.to_string())
        .with_mail(purpose.as_str());
    state.store.record_audit(&[failed], &[]).await?;
    Ok(())
}

fn outbox(state: &AppState) -> Result<&Outbox, ApiError> {
    state
        .outbox()
        .ok_or_else(|| ApiError::Internal("this function has no MAIL_FROM and APP_BASE_URL".into()))
}
