//! Sessions (issue 15): refresh-token rotation with reuse detection, revocation, the list of a
//! user's sessions, ending one, and changing the password (which ends all but the current one).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::body_string;
use crate::AppState;
use crate::auth::{
    IssuedToken, JwtKeys, Principal, hash_password, stated_username, verify_password,
};
use crate::domain::{
    Actor, Assurance, AuditEvent, AuditEventType, EscapedText, Fields, LoginFailure, Password,
    RefreshToken, SecondFactorCode, User, Username, normalized_password,
};
use crate::http::{
    ApiError, audit_context, bearer_token, json_body, json_response, path_parameter, prefetched,
    source_ip,
};
use crate::ratelimit::{Reservation, reserve_login_attempt};
use crate::store::{
    KeyRevocation, LoginRead, LoginState, NewPassword, PasswordChange, Reauthentication,
    RefreshRead, RefreshState, Rotation, SessionRecord, SessionStart, SessionStatus, VerifiedLogin,
};

/// The function that changes passwords, as the failures it records name it.
const CHANGE_PASSWORD_FUNCTION: &str = "change-password";
/// A login refused for its credentials, whatever was wrong with them.
pub const INCORRECT_LOGIN: ApiError = ApiError::Unauthorized("Incorrect username or password");
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
    json_response(StatusCode::OK, &token_pair_body(access, refresh, state))
}

/// The members of login's and refresh's answer (login's second step adds a warning to them).
pub(super) fn token_pair_body(
    access: IssuedToken,
    refresh: &RefreshToken,
    state: &AppState,
) -> serde_json::Map<String, serde_json::Value> {
    serde_json::Map::from_iter([
        ("access_token".to_owned(), json!(access.token)),
        ("refresh_token".to_owned(), json!(refresh.expose())),
        ("token_type".to_owned(), json!("bearer")),
        ("expires_in".to_owned(), json!(access.expires_in)),
        (
            "refresh_expires_in".to_owned(),
            json!(refresh_seconds(state)),
        ),
    ])
}

/// Starts a session for `user`, who just proved their password (`verified`): its item, its
/// first refresh token and the `login.succeeded` event in one transaction, which withdraws the
/// failure events recorded in case the password was wrong (`provisional`) and releases the
/// attempt; then the pair login answers. When the password changed or every session ended since
/// the credential was read, nothing starts: 401 as for a wrong password, the provisional failure
/// standing.
pub async fn start_session(
    req: &Request,
    state: &AppState,
    user: &User,
    now: OffsetDateTime,
    verified: &VerifiedLogin<'_>,
    provisional: &[AuditEvent],
) -> Result<Response<Body>, ApiError> {
    let tokens = jwt_keys(state)?;
    let session = new_session(req, state, user, now, Assurance::Password);
    let refresh = RefreshToken::generate(user.id, session.id);
    let succeeded = audit_context(req, state, Actor::User(user.id), now)
        .event(AuditEventType::LoginSucceeded, user.id.to_string())
        .with_username(&user.username)
        .with_session(session.id)
        .with_methods(Assurance::Password.amr());
    let started = state
        .store
        .start_session(&session, &refresh.hash(), verified, &succeeded, provisional)
        .await?;
    if started == SessionStart::CredentialChanged {
        tracing::info!(user_id = %user.id, "login refused: the password changed or every session ended while it was verified");
        provisional.iter().for_each(AuditEvent::log);
        return Err(INCORRECT_LOGIN);
    }
    tracing::info!(user_id = %user.id, session_id = %session.id, "session started");
    Ok(token_pair(
        tokens.issue(user, session.id, now, Assurance::Password),
        &refresh,
        state,
    ))
}

/// A new session of `user`, signed in to `now` with `assurance`, from the request's client.
pub(super) fn new_session(
    req: &Request,
    state: &AppState,
    user: &User,
    now: OffsetDateTime,
    assurance: Assurance,
) -> SessionRecord {
    SessionRecord {
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
        auth_time: Some(now),
        second_factor: assurance == Assurance::SecondFactor,
    }
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
    // A refresh is no sign-in: its access token keeps the session's.
    let signed_in_at = session.signed_in_at().unix_timestamp();
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
                    let access = tokens.issue_rotated(
                        &user,
                        session.id,
                        now_seconds,
                        signed_in_at,
                        session.assurance(),
                        &successor_hash,
                    );
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
            let access = tokens.issue_rotated(
                &user,
                session.id,
                spent_at,
                signed_in_at,
                session.assurance(),
                &successor_hash,
            );
            Ok(token_pair(access, &successor, state))
        }
        _ => {
            tracing::warn!(session_id = %session.id, user_id = %user.id, "refresh token reused after its rotation: the session is revoked");
            let reused = audit_context(&req, state, Actor::Anonymous, now)
                .event(AuditEventType::SessionRefreshReused, user.id.to_string())
                .with_session(session.id);
            state.store.end_session(session.id, &user, &reused).await?;
            Err(INVALID_REFRESH_TOKEN)
        }
    }
}

/// `POST /api/auth/revoke` (RFC 7009): always 200; a known refresh token (current or spent)
/// ends its session, if it was not over already.
pub async fn revoke(req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    if let Some(presented) = presented_refresh_token(&req)? {
        let now = state.clock.now();
        let found = state
            .store
            .first_read(&RefreshRead(presented.clone()), prefetched(&req))
            .await?;
        if let (Some(record), Some(session), Some(user)) = (found.token, found.session, found.user)
            && record.usable_for(&presented, now.unix_timestamp())
            && session.admits(&user)
        {
            let revoked = audit_context(&req, state, Actor::User(user.id), now)
                .event(AuditEventType::TokenRevoked, user.id.to_string())
                .with_session(session.id);
            if state.store.end_session(session.id, &user, &revoked).await? {
                tracing::info!(session_id = %session.id, "session revoked by its refresh token");
            }
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
    let now = state.clock.now();
    let revoked = audit_context(&req, state, Actor::User(user.id), now)
        .event(AuditEventType::SessionRevoked, user.id.to_string())
        .with_session(id);
    if !state
        .store
        .end_own_session(user, id, now.unix_timestamp(), &revoked)
        .await?
    {
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
/// ends every other session, and with `revoke_api_keys: true` revokes every API key of the user.
pub async fn change_password(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let old_password = fields.string("old_password", |raw| Ok(normalized_password(raw)));
    let new_password = fields.string("new_password", Password::parse);
    let revoke_api_keys = fields.boolean("revoke_api_keys", Some(false));
    let (Some(old_password), Some(new_password), Some(revoke_api_keys)) =
        (old_password, new_password, revoke_api_keys)
    else {
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
    // Recorded as login records its failures, saying where they came from: a wrong old password
    // counts toward the username's lockout.
    let audit = audit_context(&req, state, Actor::User(user.id), now);
    let failed = |reason| {
        audit
            .event(AuditEventType::LoginFailed, user.id.to_string())
            .with_username(username.as_str())
            .with_reason(reason)
            .with_via(CHANGE_PASSWORD_FUNCTION)
    };
    let if_failed = |locks: bool| {
        let locked = audit
            .event(AuditEventType::LoginLocked, user.id.to_string())
            .with_username(username.as_str())
            .with_via(CHANGE_PASSWORD_FUNCTION);
        let mut events = vec![failed(LoginFailure::BadPassword)];
        events.extend(locks.then_some(locked));
        events
    };
    let (attempt, provisional) = match reserve_login_attempt(
        &state.store,
        username.as_str(),
        attempts,
        now.unix_timestamp(),
        if_failed,
    )
    .await?
    {
        Reservation::Reserved {
            attempt,
            provisional,
        } => (attempt, provisional),
        Reservation::Locked {
            retry_after_seconds,
        } => {
            tracing::info!("password change refused: too many failed attempts for this username");
            state
                .store
                .record_audit(&[failed(LoginFailure::Locked)], &[])
                .await?;
            return Err(ApiError::Locked {
                retry_after_seconds,
            });
        }
    };
    // A wrong password leaves its reserved attempt and its provisional events in place: they are
    // the recorded failure.
    if !verify_password(old_password, Some(credential.password_hash.clone())).await {
        tracing::info!("password change refused: bad credentials");
        provisional.iter().for_each(AuditEvent::log);
        return Err(ApiError::Unauthorized("Incorrect password"));
    }
    // The new password is hashed while the keys to revoke are read; then one transaction, so
    // that a failure anywhere leaves the password (and the keys) as they were or changed.
    let keys_to_revoke = async {
        match revoke_api_keys {
            true => state.store.api_keys(user.id).await.map(Some),
            false => Ok(None),
        }
    };
    let (new_hash, keys) = tokio::join!(hash_password(new_password), keys_to_revoke);
    let new_hash = new_hash?;
    let changed = audit
        .event(AuditEventType::PasswordChanged, user.id.to_string())
        .with_session(session_id);
    let revocations: Option<Vec<KeyRevocation>> = keys?.map(|keys| {
        keys.into_iter()
            .filter(|key| key.is_active)
            .map(|key| KeyRevocation {
                key_id: key.id,
                revoked: audit
                    .event(AuditEventType::ApiKeyRevoked, user.id.to_string())
                    .with_api_key(key.id),
            })
            .collect()
    });
    let changed = state
        .store
        .change_password(
            user,
            &NewPassword {
                old_hash: &credential.password_hash,
                new_hash: &new_hash,
                session_id,
                attempt,
            },
            &changed,
            &provisional,
            revocations.as_deref(),
        )
        .await?;
    match changed {
        PasswordChange::Changed => {
            tracing::info!(user_id = %user.id, revoke_api_keys, "password changed; every other session ended");
            let message = match revoke_api_keys {
                true => {
                    "Password changed; every other session has ended and every API key is revoked"
                }
                false => "Password changed; every other session has ended",
            };
            Ok(json_response(
                StatusCode::OK,
                &json!({"success": true, "message": message}),
            ))
        }
        PasswordChange::Conflict | PasswordChange::KeysChanged => {
            // The password was right: its attempt is released and its provisional failure
            // withdrawn all the same.
            let (released, withdrawn) = tokio::join!(
                state
                    .store
                    .release_login_attempt(username.as_str(), attempt),
                state.store.record_audit(&[], &provisional)
            );
            released?;
            withdrawn?;
            Err(match changed {
                PasswordChange::KeysChanged => ApiError::Conflict(
                    "The API keys changed while the password was being changed; nothing was changed, try again".into(),
                ),
                _ => ApiError::Unauthorized("Could not validate credentials"),
            })
        }
    }
}

/// What a reauthentication's `login.*` events name as the route that checked the password.
const REAUTHENTICATE: &str = "reauthenticate";

/// A password a signed-in user confirmed, counted toward the login lockout and audited as a
/// login is (`login.*` events naming the route, `via`): the attempt it reserved and the failure
/// recorded in case it was wrong (`provisional`), for the write of the action it allows to
/// release and withdraw; and whether the user has a second factor.
pub(super) struct ConfirmedPassword {
    pub attempt: Uuid,
    pub provisional: Vec<AuditEvent>,
    pub has_second_factor: bool,
}

/// Checks `password` for the principal's user in session `session_id` (401 `Incorrect
/// password` when wrong, 423 when the username is locked).
pub(super) async fn confirm_password(
    req: &Request,
    state: &AppState,
    user: &User,
    session_id: Uuid,
    password: SecretString,
    via: &'static str,
) -> Result<ConfirmedPassword, ApiError> {
    let username = Username::parse(&user.username)
        .map_err(|reason| ApiError::Internal(format!("a stored username is invalid: {reason}")))?;
    let LoginState {
        credential,
        attempts,
    } = state
        .store
        .first_read(&LoginRead(username.clone()), prefetched(req))
        .await?;
    let credential = credential
        .filter(|credential| credential.user_id == user.id)
        .ok_or_else(|| ApiError::Internal("the user has no credential".into()))?;
    let now = state.clock.now();
    let audit = audit_context(req, state, Actor::User(user.id), now);
    let subject = user.id.to_string();
    let event = |kind| {
        audit
            .event(kind, &subject)
            .with_username(username.as_str())
            .with_session(session_id)
            .with_via(via)
    };
    let failed = |reason| event(AuditEventType::LoginFailed).with_reason(reason);
    let if_failed = |locks: bool| {
        let mut events = vec![failed(LoginFailure::BadPassword)];
        events.extend(locks.then(|| event(AuditEventType::LoginLocked)));
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
    let (attempt, provisional) = match reservation {
        Reservation::Reserved {
            attempt,
            provisional,
        } => (attempt, provisional),
        Reservation::Locked {
            retry_after_seconds,
        } => {
            tracing::info!(
                via,
                "password confirmation refused: too many failed attempts for this username"
            );
            state
                .store
                .record_audit(&[failed(LoginFailure::Locked)], &[])
                .await?;
            return Err(ApiError::Locked {
                retry_after_seconds,
            });
        }
    };
    // A wrong password leaves its reserved attempt and its provisional events in place: they
    // are the recorded failure.
    if !verify_password(password, Some(credential.password_hash.clone())).await {
        tracing::info!(via, "password confirmation refused: bad credentials");
        provisional.iter().for_each(AuditEvent::log);
        return Err(ApiError::Unauthorized("Incorrect password"));
    }
    Ok(ConfirmedPassword {
        attempt,
        provisional,
        has_second_factor: credential.mfa,
    })
}

/// `POST /api/auth/reauthenticate` `{password}` (and `code`, for a user with a second factor):
/// the caller proves their password again (with `confirm_password`: counted toward the login
/// lockout, audited with `via: reauthenticate`), and their second factor if they have one, and
/// gets a new access token of the same session whose `auth_time` is now: what the actions that
/// need a recent sign-in (creating an API key) ask for. Nothing else changes: the refresh token,
/// and the session but for its `auth_time`, stay as they are.
pub async fn reauthenticate(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let password = fields.string("password", |raw| Ok(normalized_password(raw)));
    let code = fields.optional_string("code", SecondFactorCode::parse);
    let (Some(password), Some(code)) = (password, code) else {
        return Err(fields.into_error().into());
    };
    let tokens = jwt_keys(state)?;
    let user = principal.user();
    let session_id = principal
        .session_id()
        .ok_or(ApiError::Unauthorized("Could not validate credentials"))?;
    let now = state.clock.now();
    let confirmed =
        confirm_password(&req, state, user, session_id, password, REAUTHENTICATE).await?;
    let second_factor = match (confirmed.has_second_factor, code) {
        (false, _) => None,
        (true, None) => {
            // The password was right: its attempt and provisional failure do not stand.
            withdraw_confirmation(state, user, &confirmed).await?;
            return Err(ApiError::validation(
                "code",
                "required: this account has a second factor",
            ));
        }
        (true, Some(code)) => {
            let proven =
                super::mfa::prove_second_factor(&req, state, user, &code, REAUTHENTICATE).await;
            match proven {
                Ok(used) => Some(used),
                Err(error) => {
                    withdraw_confirmation(state, user, &confirmed).await?;
                    return Err(error);
                }
            }
        }
    };
    let audit = audit_context(&req, state, Actor::User(user.id), now);
    let assurance = match second_factor {
        Some(_) => Assurance::SecondFactor,
        None => principal.assurance(),
    };
    let mut recorded = vec![
        audit
            .event(AuditEventType::LoginSucceeded, user.id.to_string())
            .with_username(&user.username)
            .with_session(session_id)
            .with_via(REAUTHENTICATE)
            .with_methods(match second_factor {
                Some(_) => Assurance::SecondFactor.amr(),
                None => Assurance::Password.amr(),
            }),
    ];
    recorded.extend(
        second_factor
            .as_ref()
            .and_then(|proven| proven.backup_code_used.clone()),
    );
    let (released, recorded) = tokio::join!(
        state
            .store
            .release_login_attempt(&user.username, confirmed.attempt),
        state.store.reauthenticate(
            user,
            session_id,
            now,
            second_factor.as_ref().map(|proven| &proven.used),
            (&recorded, &confirmed.provisional),
        )
    );
    if let Err(error) = released {
        tracing::warn!(%error, "a verified attempt was not released; it counts as a failure until it ages out");
    }
    match recorded? {
        Reauthentication::Recorded => {
            tracing::info!(user_id = %user.id, session_id = %session_id, "reauthenticated");
            let access = tokens.issue(user, session_id, now, assurance);
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "access_token": access.token,
                    "token_type": "bearer",
                    "expires_in": access.expires_in,
                }),
            ))
        }
        outcome => {
            tracing::info!(session_id = %session_id, ?outcome, "reauthentication refused by its conditions");
            // The password was right: its provisional failure does not stand.
            state
                .store
                .record_audit(&[], &confirmed.provisional)
                .await?;
            Err(match outcome {
                Reauthentication::SecondFactorSpent => super::mfa::INVALID_CODE,
                Reauthentication::SecondFactorLimited => super::mfa::too_many_failures(
                    crate::store::FAILURE_WINDOW_SECONDS.unsigned_abs(),
                ),
                _ => ApiError::Unauthorized("Could not validate credentials"),
            })
        }
    }
}

/// Takes back a right password's confirmation when the action it allowed went no further: its
/// attempt released, its provisional failure withdrawn.
pub(super) async fn withdraw_confirmation(
    state: &AppState,
    user: &User,
    confirmed: &ConfirmedPassword,
) -> Result<(), ApiError> {
    let (released, withdrawn) = tokio::join!(
        state
            .store
            .release_login_attempt(&user.username, confirmed.attempt),
        state.store.record_audit(&[], &confirmed.provisional)
    );
    released?;
    withdrawn?;
    Ok(())
}

/// What reauthenticate reads first: the credential and failed logins of the username its bearer
/// token states (the token is verified before the handler runs, which reads for itself unless
/// these are its user's).
pub fn reauthenticate_first_read(req: &Request, _: Option<Uuid>) -> Option<LoginRead> {
    bearer_token(req)
        .and_then(stated_username)
        .and_then(|username| Username::parse(&username).ok())
        .map(LoginRead)
}
