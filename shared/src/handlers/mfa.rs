//! The second factor (issue 24), on the old backend's `/api/auth/mfa` contract: setting up a
//! TOTP factor with backup codes, verifying it (which enables it), validating a code, disabling
//! it, new backup codes, and a login's second step. Every code is checked against the factor
//! as read, then spent by a conditional write (a TOTP step only later than the last accepted,
//! a backup code only while it is there), so that of two requests with one code exactly one
//! succeeds. Wrong codes count per user (`MAX_SECOND_FACTOR_FAILURES` an hour, then 429) and per
//! login temp token (`MAX_LOGIN_TOKEN_FAILURES`, then it is dead).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::body_string;
use super::sessions::{confirm_password, new_session, token_pair_body, withdraw_confirmation};
use crate::AppState;
use crate::auth::{MfaKeys, Principal, qr_svg};
use crate::domain::{
    Actor, Assurance, AuditContext, AuditEvent, AuditEventType, BackupCode, Fields, MfaFailure,
    MfaLoginToken, RefreshToken, SecondFactorCode, TotpCode, User, normalized_password,
};
use crate::http::{ApiError, audit_context, json_body, json_response, prefetched};
use crate::store::{
    FactorEnabling, FactorOutcome, FactorUse, MAX_LOGIN_TOKEN_FAILURES, MFA_LOGIN_SECONDS,
    MfaLoginRead, MfaLoginState, PendingLogin, SecondFactor, SecondFactorFailure,
    SecondFactorFailures, SecondFactorRead, SecondFactorState,
};

pub(super) const INVALID_CODE: ApiError = ApiError::Unauthorized("Invalid MFA code.");
const INVALID_LOGIN_TOKEN: ApiError =
    ApiError::Unauthorized("Invalid or expired MFA token; log in again");
const NOT_ENABLED: &str = "MFA is not enabled for this account.";
const SETUP_FUNCTION: &str = "mfa-setup";
const VERIFY_FUNCTION: &str = "mfa-verify";
const VALIDATE_FUNCTION: &str = "mfa-validate";
const DISABLE_FUNCTION: &str = "mfa-disable";
const REGENERATE_FUNCTION: &str = "mfa-regenerate-backup-codes";
const LOGIN_MFA_FUNCTION: &str = "login-mfa";

fn mfa_keys(state: &AppState) -> Result<&MfaKeys, ApiError> {
    state.mfa_keys().ok_or_else(|| {
        ApiError::Internal("a second-factor route started without the MFA key".into())
    })
}

/// 429 for a user whose wrong second factors reached the limit, for `retry_after_seconds`.
pub(super) fn too_many_failures(retry_after_seconds: u64) -> ApiError {
    ApiError::RateLimited {
        retry_after_seconds,
        detail: format!(
            "Too many wrong second factors. Try again in {} minutes.",
            retry_after_seconds.div_ceil(60)
        ),
    }
}

/// A second factor proven and not yet spent: the write of the action it allows spends it.
pub(super) struct ProvenFactor {
    pub used: FactorUse,
    /// `mfa.backup_code_used`, for the same write, when it is a backup code.
    pub backup_code_used: Option<AuditEvent>,
    /// The backup codes that remain once it is spent.
    pub backup_codes_remaining: usize,
}

/// What a request's code is of `factor` at `now`: the factor use that spends it, or `None`.
fn match_code(
    keys: &MfaKeys,
    factor: &SecondFactor,
    code: &SecondFactorCode,
    now: i64,
) -> Result<Option<FactorUse>, ApiError> {
    Ok(match code {
        SecondFactorCode::Totp(code) => {
            totp_step(keys, factor, code, now)?.map(|step| FactorUse::Totp { step })
        }
        SecondFactorCode::Backup(code) => {
            let hash = keys.backup_code_hash(factor.user_id, code);
            factor
                .backup_codes
                .contains_key(&hash)
                .then_some(FactorUse::BackupCode { hash })
        }
    })
}

/// The step `code` is of, when later than the last accepted one (a replay matches none).
fn totp_step(
    keys: &MfaKeys,
    factor: &SecondFactor,
    code: &TotpCode,
    now: i64,
) -> Result<Option<u64>, ApiError> {
    let secret = keys
        .open(&factor.sealed_secret, factor.user_id)
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(secret
        .matching_step(code, now)
        .filter(|step| *step > factor.last_step))
}

/// How many backup codes remain once `used` is spent.
fn remaining_after(factor: &SecondFactor, used: &FactorUse) -> usize {
    factor.backup_codes.len() - usize::from(matches!(used, FactorUse::BackupCode { .. }))
}

/// Where a refusal of a second factor came from, for `mfa.failed`.
struct Refusal<'a> {
    audit: &'a AuditContext,
    user_id: Uuid,
    via: &'static str,
}

impl Refusal<'_> {
    fn event(&self, reason: MfaFailure) -> AuditEvent {
        self.audit
            .event(AuditEventType::MfaFailed, self.user_id.to_string())
            .with_via(self.via)
            .with_mfa_failure(reason)
    }

    /// 429 when the user's wrong second factors reached the limit (audited).
    async fn refuse_if_limited(
        &self,
        state: &AppState,
        failures: &SecondFactorFailures,
        now: i64,
    ) -> Result<(), ApiError> {
        let Some(retry_after_seconds) = failures.limited(now) else {
            return Ok(());
        };
        tracing::info!(user_id = %self.user_id, via = self.via, "second factor refused: too many wrong ones this hour");
        state
            .store
            .record_audit(&[self.event(MfaFailure::Limited)], &[])
            .await?;
        Err(too_many_failures(retry_after_seconds))
    }

    /// Records a wrong code (with the login's temp token and its wrong codes as read) and
    /// answers 401.
    async fn wrong_code(
        &self,
        state: &AppState,
        seen: SecondFactorFailures,
        login: Option<(&MfaLoginToken, i64)>,
        now: i64,
    ) -> ApiError {
        tracing::info!(user_id = %self.user_id, via = self.via, "second factor refused: wrong code");
        let event = self.event(MfaFailure::WrongCode);
        let failure = SecondFactorFailure {
            user_id: self.user_id,
            seen,
            login,
            event: &event,
        };
        match state
            .store
            .record_second_factor_failure(&failure, now)
            .await
        {
            Ok(()) => match login {
                Some((_, wrong)) if wrong + 1 >= MAX_LOGIN_TOKEN_FAILURES => {
                    ApiError::Unauthorized(
                        "Invalid MFA code; too many wrong codes for this login, log in again",
                    )
                }
                _ => INVALID_CODE,
            },
            Err(error) => error.into(),
        }
    }
}

/// Proves `user`'s second factor with `code`, for an action whose own write spends it
/// (reauthentication): 409 without an enabled factor, 429 past the hourly limit, 401 (recorded)
/// for a wrong code.
pub(super) async fn prove_second_factor(
    req: &Request,
    state: &AppState,
    user: &User,
    code: &SecondFactorCode,
    via: &'static str,
) -> Result<ProvenFactor, ApiError> {
    let keys = mfa_keys(state)?;
    let now = state.clock.now();
    let SecondFactorState { factor, failures } = state
        .store
        .first_read(&SecondFactorRead(user.id), prefetched(req))
        .await?;
    let factor = factor
        .filter(SecondFactor::enabled)
        .ok_or_else(|| ApiError::Conflict(NOT_ENABLED.into()))?;
    let audit = audit_context(req, state, Actor::User(user.id), now);
    let refusal = Refusal {
        audit: &audit,
        user_id: user.id,
        via,
    };
    let now = now.unix_timestamp();
    refusal.refuse_if_limited(state, &failures, now).await?;
    let Some(used) = match_code(keys, &factor, code, now)? else {
        return Err(refusal.wrong_code(state, failures, None, now).await);
    };
    let backup_codes_remaining = remaining_after(&factor, &used);
    let backup_code_used = matches!(used, FactorUse::BackupCode { .. }).then(|| {
        audit
            .event(AuditEventType::MfaBackupCodeUsed, user.id.to_string())
            .with_via(via)
            .with_remaining(backup_codes_remaining)
    });
    Ok(ProvenFactor {
        used,
        backup_code_used,
        backup_codes_remaining,
    })
}

/// The caller's factor and failures, as the rate limiter read them.
async fn second_factor_state(
    req: &Request,
    state: &AppState,
    user: &User,
) -> Result<SecondFactorState, ApiError> {
    Ok(state
        .store
        .first_read(&SecondFactorRead(user.id), prefetched(req))
        .await?)
}

/// What the MFA routes of a signed-in user read first: their factor and wrong second factors.
pub fn second_factor_first_read(_: &Request, user: Option<Uuid>) -> Option<SecondFactorRead> {
    user.map(SecondFactorRead)
}

/// `GET /api/auth/mfa/status`
pub async fn status(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let factor = second_factor_state(&req, state, principal.user())
        .await?
        .factor
        .filter(SecondFactor::enabled);
    let enabled = factor.is_some();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "mfa_enabled": enabled,
            "mfa_verified": enabled,
            "backup_codes_remaining": factor.as_ref().map_or(0, |factor| factor.backup_codes.len()),
            "enabled_at": factor
                .and_then(|factor| factor.enabled_at)
                .map(crate::domain::rfc3339)
                .transpose()?,
        }),
    ))
}

/// `POST /api/auth/mfa/setup`: a new TOTP secret and backup codes, pending until verified (a
/// pending one is replaced); 400 when a factor is enabled.
pub async fn setup(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let keys = mfa_keys(state)?;
    let user = principal.user();
    let already =
        || ApiError::BadRequest("MFA is already enabled. Disable it first to set up again.".into());
    let current = second_factor_state(&req, state, user).await?;
    if current.factor.as_ref().is_some_and(SecondFactor::enabled) {
        return Err(already());
    }
    let secret = crate::auth::TotpSecret::generate();
    let codes = BackupCode::generate_set();
    let factor = SecondFactor::pending(
        user.id,
        keys.seal(&secret, user.id),
        codes
            .iter()
            .map(|code| keys.backup_code_hash(user.id, code))
            .collect(),
        state.clock.now(),
    );
    if !state.store.set_up_factor(&factor).await? {
        return Err(already());
    }
    tracing::info!(user_id = %user.id, via = SETUP_FUNCTION, "second factor set up, pending verification");
    let uri = secret.provisioning_uri(&user.username);
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "secret": secret.base32(),
            "provisioning_uri": uri,
            "qr_svg": qr_svg(&uri),
            "backup_codes": codes.iter().map(BackupCode::display).collect::<Vec<_>>(),
            "message": "Scan the QR code with an authenticator app, then verify with /api/auth/mfa/verify. The backup codes are shown this once.",
        }),
    ))
}

/// `POST /api/auth/mfa/verify {code}`: a TOTP code of the pending setup enables it; the current
/// session is raised to the second factor and every other session of the user ends.
pub async fn verify(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let Some(code) = fields.string("code", TotpCode::parse) else {
        return Err(fields.into_error().into());
    };
    let keys = mfa_keys(state)?;
    let user = principal.user();
    let session_id = principal
        .session_id()
        .ok_or(ApiError::Unauthorized("Could not validate credentials"))?;
    let SecondFactorState { factor, failures } = second_factor_state(&req, state, user).await?;
    let factor = match factor {
        None => {
            return Err(ApiError::Conflict(
                "MFA setup not initiated. Call /api/auth/mfa/setup first.".into(),
            ));
        }
        Some(factor) if factor.enabled() => {
            return Err(ApiError::Conflict("MFA is already enabled.".into()));
        }
        Some(factor) => factor,
    };
    let now = state.clock.now();
    let audit = audit_context(&req, state, Actor::User(user.id), now);
    let refusal = Refusal {
        audit: &audit,
        user_id: user.id,
        via: VERIFY_FUNCTION,
    };
    let seconds = now.unix_timestamp();
    refusal.refuse_if_limited(state, &failures, seconds).await?;
    let Some(step) = totp_step(keys, &factor, &code, seconds)? else {
        return Err(refusal.wrong_code(state, failures, None, seconds).await);
    };
    let enabled = audit
        .event(AuditEventType::MfaEnabled, user.id.to_string())
        .with_session(session_id);
    let enabling = FactorEnabling {
        user,
        factor: &factor,
        step,
        session_id,
        at: now,
    };
    match state.store.enable_factor(&enabling, &enabled).await? {
        FactorOutcome::Accepted => {
            tracing::info!(user_id = %user.id, "second factor enabled; every other session ended");
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "verified": true,
                    "message": "MFA has been successfully enabled for your account. Every other session has ended; refresh for tokens that carry the second factor.",
                    "backup_codes_remaining": factor.backup_codes.len(),
                }),
            ))
        }
        FactorOutcome::Limited => Err(too_many_failures(
            crate::store::FAILURE_WINDOW_SECONDS.unsigned_abs(),
        )),
        FactorOutcome::Spent | FactorOutcome::Conflict => Err(ApiError::Conflict(
            "The setup or the session changed while it was being verified; nothing was enabled"
                .into(),
        )),
    }
}

/// `POST /api/auth/mfa/validate {code}`: a TOTP code or a backup code, spent.
pub async fn validate(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let Some(code) = fields.string("code", SecondFactorCode::parse) else {
        return Err(fields.into_error().into());
    };
    let user = principal.user();
    let proven = prove_second_factor(&req, state, user, &code, VALIDATE_FUNCTION).await?;
    let events: Vec<&AuditEvent> = proven.backup_code_used.iter().collect();
    let outcome = state
        .store
        .use_factor(
            user.id,
            &proven.used,
            state.clock.now().unix_timestamp(),
            &events,
        )
        .await?;
    settle(&req, state, user, VALIDATE_FUNCTION, outcome).await?;
    let remaining = proven.backup_codes_remaining;
    let message = match proven.backup_code_used {
        Some(_) => format!("Backup code accepted. {remaining} backup codes remaining."),
        None => "MFA code verified successfully.".to_owned(),
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "verified": true,
            "message": message,
            "backup_codes_remaining": remaining,
        }),
    ))
}

/// What a refused spend answers: a code spent meanwhile is a wrong one (recorded), the limit
/// reached meanwhile 429.
async fn settle(
    req: &Request,
    state: &AppState,
    user: &User,
    via: &'static str,
    outcome: FactorOutcome,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    match outcome {
        FactorOutcome::Accepted => Ok(()),
        FactorOutcome::Limited => Err(too_many_failures(
            crate::store::FAILURE_WINDOW_SECONDS.unsigned_abs(),
        )),
        FactorOutcome::Spent | FactorOutcome::Conflict => {
            let failures = second_factor_state(req, state, user).await?.failures;
            let audit = audit_context(req, state, Actor::User(user.id), now);
            let refusal = Refusal {
                audit: &audit,
                user_id: user.id,
                via,
            };
            Err(refusal
                .wrong_code(state, failures, None, now.unix_timestamp())
                .await)
        }
    }
}

/// `POST /api/auth/mfa/disable {password, code}`: the factor deleted and its backup codes with
/// it; logins ask for a password alone again.
pub async fn disable(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let password = fields.string("password", |raw| Ok(normalized_password(raw)));
    let code = fields.string("code", SecondFactorCode::parse);
    let (Some(password), Some(code)) = (password, code) else {
        return Err(fields.into_error().into());
    };
    let user = principal.user();
    let session_id = principal
        .session_id()
        .ok_or(ApiError::Unauthorized("Could not validate credentials"))?;
    // The code first: a wrong one costs no password attempt (nor an argon2id verification).
    let proven = prove_second_factor(&req, state, user, &code, DISABLE_FUNCTION).await?;
    let confirmed =
        confirm_password(&req, state, user, session_id, password, DISABLE_FUNCTION).await?;
    let now = state.clock.now();
    let disabled = audit_context(&req, state, Actor::User(user.id), now)
        .event(AuditEventType::MfaDisabled, user.id.to_string())
        .with_session(session_id);
    let outcome = state
        .store
        .disable_factor(
            user,
            &proven.used,
            now.unix_timestamp(),
            confirmed.attempt,
            &disabled,
            &confirmed.provisional,
        )
        .await?;
    if outcome != FactorOutcome::Accepted {
        withdraw_confirmation(state, user, &confirmed).await?;
        settle(&req, state, user, DISABLE_FUNCTION, outcome).await?;
    }
    tracing::info!(user_id = %user.id, "second factor disabled");
    Ok(json_response(
        StatusCode::OK,
        &json!({"success": true, "message": "MFA has been disabled for your account."}),
    ))
}

/// `POST /api/auth/mfa/regenerate-backup-codes {code}`: ten new backup codes; the old ones die.
pub async fn regenerate_backup_codes(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let Some(code) = fields.string("code", SecondFactorCode::parse) else {
        return Err(fields.into_error().into());
    };
    let keys = mfa_keys(state)?;
    let user = principal.user();
    let proven = prove_second_factor(&req, state, user, &code, REGENERATE_FUNCTION).await?;
    let codes = BackupCode::generate_set();
    let now = state.clock.now();
    let regenerated = audit_context(&req, state, Actor::User(user.id), now).event(
        AuditEventType::MfaBackupCodesRegenerated,
        user.id.to_string(),
    );
    let outcome = state
        .store
        .replace_backup_codes(
            user.id,
            &proven.used,
            codes
                .iter()
                .map(|code| keys.backup_code_hash(user.id, code))
                .collect(),
            now.unix_timestamp(),
            &regenerated,
        )
        .await?;
    settle(&req, state, user, REGENERATE_FUNCTION, outcome).await?;
    tracing::info!(user_id = %user.id, "backup codes regenerated");
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "success": true,
            "backup_codes": codes.iter().map(BackupCode::display).collect::<Vec<_>>(),
            "message": "New backup codes generated. Store them securely - they will not be shown again.",
        }),
    ))
}

/// Login's answer for a user with a second factor, whose password was right: a temp token for
/// `login/mfa`, stored as its hash with the login's attempt released and its provisional failure
/// withdrawn. No session yet.
pub(super) async fn ask_for_second_factor(
    state: &AppState,
    user: &User,
    now: OffsetDateTime,
    attempt: Uuid,
    provisional: &[AuditEvent],
) -> Result<Response<Body>, ApiError> {
    let token = MfaLoginToken::generate(user.id);
    let pending = PendingLogin {
        user_id: user.id,
        epoch: user.session_epoch,
        wrong: 0,
        expires_at: now.unix_timestamp() + MFA_LOGIN_SECONDS,
    };
    state
        .store
        .start_mfa_login(&token, &pending, &user.username, attempt, provisional)
        .await?;
    tracing::info!(user_id = %user.id, "password right; waiting for the second factor");
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "mfa_required": true,
            "temp_token": token.expose(),
            "message": "Enter the code from your authenticator app, or a backup code, at /api/auth/login/mfa",
            "expires_in": MFA_LOGIN_SECONDS,
        }),
    ))
}

/// What `login/mfa` reads first: everything its temp token names.
pub fn login_mfa_first_read(req: &Request, _: Option<Uuid>) -> Option<MfaLoginRead> {
    body_string(req, "temp_token")
        .and_then(|raw| MfaLoginToken::parse(&raw))
        .map(MfaLoginRead)
}

/// `POST /api/auth/login/mfa {temp_token, mfa_code}`: a login's second step. The login's usual
/// answer (and `warning` after a backup code), with a session signed in to with the second
/// factor; in two round trips in all (the limiter's read, then one transaction).
pub async fn login_mfa(req: Request, state: &AppState) -> Result<Response<Body>, ApiError> {
    let mut fields = Fields::new(json_body(&req)?);
    let token = fields.string("temp_token", |raw| Ok(MfaLoginToken::parse(raw)));
    let code = fields.string("mfa_code", SecondFactorCode::parse);
    let (Some(token), Some(code)) = (token, code) else {
        return Err(fields.into_error().into());
    };
    let token = token.ok_or(INVALID_LOGIN_TOKEN)?;
    let keys = mfa_keys(state)?;
    let tokens = state
        .jwt_keys()
        .ok_or_else(|| ApiError::Internal("a token route started without a JWT secret".into()))?;
    let now = state.clock.now();
    let seconds = now.unix_timestamp();
    let MfaLoginState {
        pending,
        user,
        second_factor: SecondFactorState { factor, failures },
    } = state
        .store
        .first_read(&MfaLoginRead(token.clone()), prefetched(&req))
        .await?;
    let (Some(pending), Some(user), Some(factor)) = (
        pending.filter(|pending| pending.usable(seconds)),
        user,
        factor.filter(SecondFactor::enabled),
    ) else {
        tracing::info!("second login step refused: unknown, used, burnt or expired temp token");
        return Err(INVALID_LOGIN_TOKEN);
    };
    if !user.is_active {
        return Err(ApiError::Forbidden("Account is disabled".into()));
    }
    let audit = audit_context(&req, state, Actor::User(user.id), now);
    let refusal = Refusal {
        audit: &audit,
        user_id: user.id,
        via: LOGIN_MFA_FUNCTION,
    };
    refusal.refuse_if_limited(state, &failures, seconds).await?;
    let login = Some((&token, pending.wrong));
    let Some(used) = match_code(keys, &factor, &code, seconds)? else {
        return Err(refusal.wrong_code(state, failures, login, seconds).await);
    };
    let mut session = new_session(&req, state, &user, now, Assurance::SecondFactor);
    session.epoch = pending.epoch;
    let refresh = RefreshToken::generate(user.id, session.id);
    let succeeded = audit
        .event(AuditEventType::LoginSucceeded, user.id.to_string())
        .with_username(&user.username)
        .with_session(session.id)
        .with_methods(Assurance::SecondFactor.amr());
    let remaining = remaining_after(&factor, &used);
    let backup_code_used = matches!(used, FactorUse::BackupCode { .. }).then(|| {
        audit
            .event(AuditEventType::MfaBackupCodeUsed, user.id.to_string())
            .with_via(LOGIN_MFA_FUNCTION)
            .with_session(session.id)
            .with_remaining(remaining)
    });
    let mut events = vec![&succeeded];
    events.extend(backup_code_used.as_ref());
    let outcome = state
        .store
        .complete_mfa_login(&token, &used, &session, &refresh.hash(), seconds, &events)
        .await?;
    match outcome {
        FactorOutcome::Accepted => {}
        FactorOutcome::Limited => {
            return Err(too_many_failures(
                crate::store::FAILURE_WINDOW_SECONDS.unsigned_abs(),
            ));
        }
        FactorOutcome::Conflict => {
            tracing::info!(user_id = %user.id, "second login step refused: the token or the user's sessions changed meanwhile");
            return Err(INVALID_LOGIN_TOKEN);
        }
        FactorOutcome::Spent => {
            return Err(refusal.wrong_code(state, failures, login, seconds).await);
        }
    }
    tracing::info!(user_id = %user.id, session_id = %session.id, "session started with a second factor");
    let access = tokens.issue(&user, session.id, now, Assurance::SecondFactor);
    let mut body = token_pair_body(access, &refresh, state);
    if backup_code_used.is_some() {
        body.insert(
            "warning".to_owned(),
            json!(format!(
                "A backup code was used; {remaining} remain. Generate new ones with /api/auth/mfa/regenerate-backup-codes when few are left."
            )),
        );
    }
    Ok(json_response(StatusCode::OK, &body))
}
