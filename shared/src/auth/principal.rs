use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{ApiKey, Assurance, User};
use crate::routes::{ApiKeys, Scope};
use crate::store::{KeySession, Session};

use super::{Claims, PresentedKey, TokenFault};

/// Who a request acts as: verified once per request (by `http::dispatch`, with the rate
/// limiter's read of the session or key), then handed to the handler.
#[derive(Clone, Debug)]
pub enum Principal {
    /// The holder of an access token whose session is live: not revoked, its user active.
    User { user: User, claims: Claims },
    /// The holder of an API key that is active, unexpired, and whose owner is active.
    ApiKey { key: ApiKey, owner: User },
}

impl Principal {
    /// The user the request acts for: the token's, or the key's owner.
    pub fn user(&self) -> &User {
        match self {
            Self::User { user, .. } => user,
            Self::ApiKey { owner, .. } => owner,
        }
    }

    /// The session the request acts in: its access token's (a key acts in none).
    pub fn session_id(&self) -> Option<Uuid> {
        match self {
            Self::User { claims, .. } => Some(claims.sid),
            Self::ApiKey { .. } => None,
        }
    }

    /// How the request's session was signed in to (its access token's `aal`); an API key acts
    /// on a password's strength at most.
    pub fn assurance(&self) -> Assurance {
        match self {
            Self::User { claims, .. } => claims.assurance(),
            Self::ApiKey { .. } => Assurance::Password,
        }
    }

    pub fn api_key(&self) -> Option<&ApiKey> {
        match self {
            Self::ApiKey { key, .. } => Some(key),
            Self::User { .. } => None,
        }
    }

    /// Whether the request's user proved their password within `max_age_seconds` of `now`
    /// (epoch s): its access token's `auth_time`. A token without one, or an API key, never did.
    pub fn signed_in_within(&self, max_age_seconds: i64, now: i64) -> Result<(), AuthError> {
        match self {
            Self::User {
                claims:
                    Claims {
                        auth_time: Some(auth_time),
                        ..
                    },
                ..
            } if now - auth_time <= max_age_seconds => Ok(()),
            _ => Err(AuthError::SignInTooOld { max_age_seconds }),
        }
    }

    /// Whether the request's user has verified their address (`REQUIRE_VERIFIED_EMAIL`).
    pub fn email_verified(&self) -> Result<(), AuthError> {
        if self.user().email_verified {
            Ok(())
        } else {
            Err(AuthError::EmailUnverified)
        }
    }

    /// Whether this principal may use a route that takes `api_keys`: a token always may; a key
    /// only where keys are accepted, and then only with the route's scope.
    pub fn authorize(&self, api_keys: ApiKeys) -> Result<(), AuthError> {
        let Self::ApiKey { key, .. } = self else {
            return Ok(());
        };
        match api_keys {
            ApiKeys::AnyScope => Ok(()),
            ApiKeys::Scope(scope) if key.has_scope(scope) => Ok(()),
            ApiKeys::Scope(scope) => Err(AuthError::MissingScope(scope)),
            ApiKeys::Ignored | ApiKeys::Refused => Err(AuthError::KeysRefused),
        }
    }
}

/// What a request's credentials came to.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// No bearer token (nor API key).
    Missing,
    /// A bearer token that does not verify, and why.
    Unverified(TokenFault),
    /// A bearer token that verifies (its claims), whose session is revoked or whose user is
    /// inactive or gone.
    Refused(Claims),
    /// An API key that is unknown, does not match its stored hash, is revoked or expired, or
    /// whose owner is inactive or gone.
    RefusedKey,
    /// Not known: the table did not answer the read of the session or key (the rate limiter had
    /// failed open). A public route goes on without credentials; an authenticated one is 503.
    Unavailable,
    Valid(Principal),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("Not authenticated")]
    Missing,
    /// A bearer token that does not verify, or whose session or user is over.
    #[error("Could not validate credentials")]
    Refused,
    #[error("Token has expired")]
    Expired,
    #[error("Invalid API key")]
    InvalidKey,
    #[error("This API key lacks the scope {0}")]
    MissingScope(Scope),
    #[error("API keys are not accepted on this route; use a bearer token")]
    KeysRefused,
    #[error("Send either a bearer token or an API key, not both")]
    BothCredentials,
    /// A valid token whose sign-in is older than the action allows (RFC 9470's
    /// `insufficient_user_authentication`).
    #[error(
        "This action needs a sign-in within the last {} minutes: confirm your password with POST /api/auth/reauthenticate, then retry with the access token it answers",
        max_age_seconds / 60
    )]
    SignInTooOld { max_age_seconds: i64 },
    #[error("the credentials could not be checked: the table did not answer")]
    Unavailable,
    /// `REQUIRE_VERIFIED_EMAIL` is on and the user has not verified their address.
    #[error(
        "Verify your email address first: open the link in the verification mail, or ask for a new one with POST /api/auth/verify-email/resend"
    )]
    EmailUnverified,
}

impl Credentials {
    /// The credentials of a verified token, given its session as read: valid while its user is
    /// active, the token not revoked, and its session (`sid`) admits it.
    pub fn of_session(claims: Claims, session: Session) -> Self {
        match (session.user, session.record) {
            (Some(user), Some(record))
                if user.is_active
                    && !session.revoked
                    && record.id == claims.sid
                    && record.admits(&user) =>
            {
                Self::Valid(Principal::User { user, claims })
            }
            _ => Self::Refused(claims),
        }
    }

    /// The credentials of a well-formed API key, given its key item and owner as read at `now`:
    /// valid when the item is the key whose hash it holds, the key usable, and its owner active.
    pub fn of_key(presented: &PresentedKey, session: KeySession, now: OffsetDateTime) -> Self {
        match session {
            KeySession {
                key: Some(key),
                owner: Some(owner),
            } if presented.matches(&key.secret_hash)
                && key.user_id == presented.owner
                && owner.id == key.user_id
                && key.rate_limit == presented.rate_limit
                && key.usable(now)
                && owner.is_active =>
            {
                Self::Valid(Principal::ApiKey { key, owner })
            }
            _ => Self::RefusedKey,
        }
    }

    pub fn principal(self) -> Result<Principal, AuthError> {
        match self {
            Self::Valid(principal) => Ok(principal),
            Self::Missing => Err(AuthError::Missing),
            Self::Unverified(TokenFault::Expired) => Err(AuthError::Expired),
            Self::Unverified(TokenFault::Invalid) | Self::Refused(_) => Err(AuthError::Refused),
            Self::RefusedKey => Err(AuthError::InvalidKey),
            Self::Unavailable => Err(AuthError::Unavailable),
        }
    }

    /// The claims of a token that verified, whatever its session.
    pub fn claims(&self) -> Option<&Claims> {
        match self {
            Self::Valid(Principal::User { claims, .. }) | Self::Refused(claims) => Some(claims),
            Self::Valid(Principal::ApiKey { .. })
            | Self::Unverified(_)
            | Self::RefusedKey
            | Self::Unavailable
            | Self::Missing => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, Username};

    fn signed_in_at(auth_time: Option<i64>) -> Principal {
        let user = User::new(
            &Username::parse("alice").unwrap(),
            &Email::parse("alice@example.com").unwrap(),
            OffsetDateTime::UNIX_EPOCH,
        );
        let claims = serde_json::from_value(serde_json::json!({
            "sub": user.id, "username": "alice", "iat": 0, "exp": 0, "jti": Uuid::new_v4(),
            "sid": Uuid::now_v7(), "iss": "", "aud": "", "auth_time": auth_time,
        }))
        .unwrap();
        Principal::User { user, claims }
    }

    #[test]
    fn a_sign_in_is_recent_up_to_max_age_seconds_inclusive() {
        const NOW: i64 = 1_800_000_000;
        let too_old = Err(AuthError::SignInTooOld {
            max_age_seconds: 600,
        });
        assert_eq!(signed_in_at(Some(NOW)).signed_in_within(600, NOW), Ok(()));
        assert_eq!(
            signed_in_at(Some(NOW - 600)).signed_in_within(600, NOW),
            Ok(())
        );
        assert_eq!(
            signed_in_at(Some(NOW - 601)).signed_in_within(600, NOW),
            too_old
        );
        assert_eq!(signed_in_at(None).signed_in_within(600, NOW), too_old);
    }
}
