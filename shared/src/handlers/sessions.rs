//! Sessions (issue 15): refresh-token rotation with reuse detection, revocation, the list of a
//! user's sessions, ending one, and changing the password (which ends all but the current one).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::body_string;
use crate::AppState;
use crate::auth::{IssuedToken, JwtKeys, Principal, hash_password, verify_password};
use crate::domain::{
    Actor, AuditEvent, AuditEventType, EscapedText, Fields, Password, RefreshToken, User, Username,
    normalized_password,
};
use crate::http::{
    ApiError, audit_context, json_body, json_response, path_parameter, prefetched, source_ip,
};
use crate::ratelimit::{Reservation, reserve_login_attempt};
use crate::store::{
    LoginRead, LoginState, PasswordChange, RefreshRead, RefreshState, Rotation, SessionRecord,
    SessionStatus,
};

const INVALID_REFRESH_TOKEN: ApiError = ApiError::Unauthorized("Invalid or expired refresh token");
/// What is kept of a session's `User-Agent`.
const USER_AGENT_CHARS: usize = 256;
const SECONDS_PER_DAY: i64 = 24 * 60 * 60;

fn jwt_keys(state: &AppState) -> Result<&JwtKeys, ApiError> {
    state
        .jwt_keys()
        .ok_or_else(|| ApiError::Internal("a token route started without a JWT secret".into()))
}

/// How long a refresh token lives, in seconds.
fn refresh_seconds(state: &AppState) -> i64 {
    state.config.refresh_token_days * SECONDS_PER_DAY
}

/// The answer of login and refresh: an access token and the session's refresh token.
fn token_pair(access: IssuedToken, refresh: &RefreshToken, state: &AppState) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": access.token,
            "refresh_token": refresh.expose(),
            "token_type": "bearer",
            "expires_in": access.expires_in,
            "refresh_expires_in": refresh_seconds(state),
        }),
    )
}

/// Starts a session for `user`, who just proved their password: its item, its first refresh
/// token and the `login.succeeded` event in one transaction, which withdraws the failure events
/// recorded in case the password was wrong (`provisional`); then the pair login answers.
pub async fn start_session(
    req: &Request,
    state: &AppState,
    user: &User,
    now: OffsetDateTime,
    provisional: &[AuditEvent],
) -> Result<Response<Body>, ApiError> {
    let tokens = jwt_keys(state)?;
    let session = SessionRecord {
        id: Uuid::now_v7(),
        user_id: user.id,
        created_at: now,
        last_used_at: now,
        user_agent: req
            .headers()
            .get("user-agent")
            .map(|value| String::from_utf8_lossy(value.as_bytes()))
            .map(|raw| EscapedText::sanitize(&raw, USER_AGENT_CHARS).into_string())
            .filter(|agent| !agent.is_empty()),
        source_ip: source_ip(req).map(str::to_owned),
        status: SessionStatus::Active,
        epoch: user.session_epoch,
        expires_at: now.unix_timestamp() + refresh_seconds(state),
    };
    let refresh = RefreshToken::generate(user.id, session.id);
    let succeeded = audit_context(req, state, Actor::User(user.id), now)
        .event(AuditEventType::LoginSucceeded, user.id.to_string())
        .with_username(&user.username)
        .with_session(session.id);
    state
        .store
        .start_session(&session, &refresh.hash(), &succeeded, provisional)
        .await?;
    tracing::info!(user_id = %user.id, session_id = %session.id, "session started");
    Ok(token_pair(
        tokens.issue(user, session.id, now),
        &refresh,
        state,
    ))
}

/// The `refresh_token` field of a body: a string that is not empty (422 otherwise), then
/// whether it has a refresh token's form at all.
fn presented_refresh_token(req: &Request) -> Result<Option<RefreshToken>, ApiError> {
    let mut fields = Fields::new(json_body(req)?);
    let raw = fields.string("refresh_token", |raw| match raw {
        "" => Err("must not be empty".to_owned()),
        raw => Ok(raw.to_owned()),
    });
    let Some(raw) = raw else {
        return Err(fields.into_error().into());
    };
    Ok(RefreshToken::parse(&raw))
}

/// What refresh and revoke read first: the token's item, session and user, which the token names.
pub fn refresh_first_read(req: &Request, _: Option<Uuid>) -> Option<RefreshRead> {
    body_string(req, "refresh_token")
        .and_then(|raw| RefreshToken::parse(&raw))
        .map(RefreshRead)
}

/// `POST /api/auth/refresh`: a new access token and a new refresh token for a current one, which
/// is spent. The same spent token again within `REFRESH_REUSE_GRACE_SECONDS` of its rotation is
/// answered the same pair (two tabs refreshing at once); later, it is taken for a stolen copy and
/// its whole session ends.
pub async fn refresh(req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    let presented = presented_refresh_token(&req)?.ok_or(INVALID_REFRESH_TOKEN)?;
    let tokens = jwt_keys(state)?;
    let now = state.clock.now();
    let now_seconds = now.unix_timestamp();
    let found = state
        .store
        .first_read(&RefreshRead(presented.clone()), prefetched(&req))
        .await?;
    let (Some(record), Some(session), Some(user)) = (found.token, found.session, found.user) else {
        tracing::info!("refresh refused: unknown refresh token");
        return Err(INVALID_REFRESH_TOKEN);
    };
    if !record.usable_for(&presented, now_seconds) || !session.live(&user, now_seconds) {
        tracing::info!(session_id = %session.id, "refresh refused: the token or its session is over");
        return Err(INVALID_REFRESH_TOKEN);
    }
    if !user.is_active {
        tracing::info!(user_id = %user.id, "refresh refused: account disabled");
        return Err(ApiError::Forbidden("Account is disabled".into()));
    }
    let successor = tokens.refresh_successor(&presented);
    let successor_hash = successor.hash();
    let spent = match record.state {
        RefreshState::Current => {
            let rotation = state
                .store
                .rotate_refresh_token(
                    &presented.hash(),
                    &successor_hash,
                    &session,
                    now,
                    now_seconds + refresh_seconds(state),
                )
                .await?;
            match rotation {
                Rotation::Rotated => {
                    tracing::info!(session_id = %session.id, "refresh token rotated");
                    let access =
                        tokens.issue_rotated(&user, session.id, now_seconds, &successor_hash);
                    return Ok(token_pair(access, &successor, state));
                }
                // Another request rotated it first: as for a token read as spent.
                Rotation::NotCurrent(Some(record)) if record.state == RefreshState::Spent => record,
                Rotation::NotCurrent(_) | Rotation::SessionEnded => {
                    tracing::info!(session_id = %session.id, "refresh refused: the token or its session ended meanwhile");
                    return Err(INVALID_REFRESH_TOKEN);
                }
            }
        }
        RefreshState::Spent => record,
    };
    let grace = state.config.refresh_reuse_grace_seconds;
    match spent.spent_at {
        Some(spent_at) if now_seconds - spent_at < grace && spent.succeeded_by(&successor_hash) => {
            tracing::info!(session_id = %session.id, "refresh token presented again within the grace: the same pair");
            let access = tokens.issue_rotated(&user, session.id, spent_at, &successor_hash);
            Ok(token_pair(access, &successor, state))
        }
        _ => {
            tracing::warn!(session_id = %session.id, user_id = %user.id, "refresh token reused after its rotation: the session is revoked");
            let reused = audit_context(&req, state, Actor::Anonymous, now)
                .event(AuditEventType::SessionRefreshReused, user.id.to_string())
                .with_session(session.id);
            state.store.end_session(session.id, &reused).await?;
            Err(INVALID_REFRESH_TOKEN)
        }
    }
}

/// `POST /api/auth/revoke` (RFC 7009): always 200; a known refresh token (current or spent)
/// ends its session.
pub async fn revoke(req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    if let Some(presented) = presented_refresh_token(&req)? {
        let now = state.clock.now();
        let found = state
            .store
            .first_read(&RefreshRead(presented.clone()), prefetched(&req))
            .await?;
        if let (Some(record), Some(session)) = (found.token, found.session)
            && record.usable_for(&presented, now.unix_timestamp())
            && session.status == SessionStatus::Active
        {
            let revoked = audit_context(&req, state, Actor::User(session.user_id), now)
                .event(AuditEventType::TokenRevoked, session.user_id.to_string())
                .with_session(session.id);
            state.store.end_session(session.id, &revoked).await?;
            tracing::info!(session_id = %session.id, "session revoked by its refresh token");
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"success": true, "message": "Token revoked"}),
    ))
}

/// A session as `GET /api/auth/sessions` answers it.
#[derive(Serialize)]
struct SessionView<'a> {
    id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_used_at: OffsetDateTime,
    user_agent: Option<&'a str>,
    source_ip: Option<&'a str>,
    current: bool,
}

/// `GET /api/auth/sessions`: the caller's live sessions, newest first, the caller's own marked.
pub async fn list_sessions(
    _req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let now = state.clock.now().unix_timestamp();
    let sessions = state.store.live_sessions(user, now).await?;
    let current = principal.session_id();
    let views: Vec<SessionView> = sessions
        .iter()
        .map(|session| SessionView {
            id: session.id,
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            user_agent: session.user_agent.as_deref(),
            source_ip: session.source_ip.as_deref(),
            current: Some(session.id) == current,
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"sessions": views})))
}

/// `DELETE /api/auth/sessions/{id}`: ends one of the caller's live sessions (the current one too).
/// Another user's, an unknown one, one already over, or an id that is no session id: 404.
pub async fn delete_session(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let not_found = || ApiError::NotFound("Session not found".into());
    let id: Uuid = path_parameter(&req, "id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(not_found)?;
    let user = principal.user();
    let now = state.clock.now().unix_timestamp();
    if !state.store.end_own_session(user, id, now).await? {
        return Err(not_found());
    }
    tracing::info!(user_id = %user.id, session_id = %id, "session ended");
    Ok(json_response(
        StatusCode::OK,
        &json!({"success": true, "id": id}),
    ))
}

/// `POST /api/auth/change-password`: the old password (counted toward the login lockout like a
/// login), a new one meeting the registration rules; then one transaction changes the hash and
/// ends every other session.
pub async fn change_password(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let old_password = fields.string("old_password", |raw| Ok(normalized_password(raw)));
    let new_password = fields.string("new_password", Password::parse);
    let (Some(old_password), Some(new_password)) = (old_password, new_password) else {
        return Err(fields.into_error().into());
    };
    let user = principal.user();
    let session_id = principal
        .session_id()
        .ok_or(ApiError::Unauthorized("Could not validate credentials"))?;
    let username = Username::parse(&user.username)
        .map_err(|reason| ApiError::Internal(format!("a stored username is invalid: {reason}")))?;
    let LoginState {
        credential,
        attempts,
    } = state
        .store
        .first_read(&LoginRead(username.clone()), None)
        .await?;
    let credential = credential
        .filter(|credential| credential.user_id == user.id)
        .ok_or_else(|| ApiError::Internal("the user has no credential".into()))?;
    let now = state.clock.now();
    let attempt = match reserve_login_attempt(
        &state.store,
        username.as_str(),
        attempts,
        now.unix_timestamp(),
        |_| Vec::new(),
    )
    .await?
    {
        Reservation::Reserved { attempt, .. } => attempt,
        Reservation::Locked {
            retry_after_seconds,
        } => {
            tracing::info!("password change refused: too many failed attempts for this username");
            return Err(ApiError::Locked {
                retry_after_seconds,
            });
        }
    };
    // A wrong password leaves its reserved attempt in place: that is the recorded failure.
    if !verify_password(old_password, Some(credential.password_hash.clone())).await {
        tracing::info!("password change refused: bad credentials");
        return Err(ApiError::Unauthorized("Incorrect password"));
    }
    // The right password takes its attempt back while the new one is hashed; then one
    // transaction, so that a failure anywhere leaves the password as it was or changed.
    let (released, new_hash) = tokio::join!(
        state
            .store
            .release_login_attempt(username.as_str(), attempt),
        hash_password(new_password)
    );
    released?;
    let changed = audit_context(&req, state, Actor::User(user.id), now)
        .event(AuditEventType::PasswordChanged, user.id.to_string())
        .with_session(session_id);
    let changed = state
        .store
        .change_password(
            user,
            &credential.password_hash,
            &new_hash?,
            session_id,
            &changed,
        )
        .await?;
    match changed {
        PasswordChange::Changed => {
            tracing::info!(user_id = %user.id, "password changed; every other session ended");
            Ok(json_response(
                StatusCode::OK,
                &json!({"success": true, "message": "Password changed; every other session has ended"}),
            ))
        }
        PasswordChange::Conflict => Err(ApiError::Unauthorized("Could not validate credentials")),
    }
}
