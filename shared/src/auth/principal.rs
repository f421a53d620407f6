use uuid::Uuid;

use crate::domain::User;
use crate::store::Session;

use super::Claims;

/// Who a request acts as: verified once per request (by `http::dispatch`, with the rate
/// limiter's read of the session), then handed to the handler.
#[derive(Clone, Debug)]
pub enum Principal {
    /// The holder of an access token whose session is live: not revoked, its user active.
    User { user: User, claims: Claims },
}

impl Principal {
    pub fn user(&self) -> &User {
        match self {
            Self::User { user, .. } => user,
        }
    }
}

/// What a request's credentials came to.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// No bearer token.
    Missing,
    /// A bearer token that does not verify; or one that does (its claims), whose session is
    /// revoked or whose user is inactive or gone.
    Refused(Option<Claims>),
    /// A bearer token that verifies, whose session was not read: the route does not act for the
    /// caller, and the rate limiter could not read it in its own round trip.
    Unresolved(Claims),
    Valid(Principal),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("Not authenticated")]
    Missing,
    #[error("Could not validate credentials")]
    Refused,
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
            _ => Self::Refused(Some(claims)),
        }
    }

    pub fn principal(self) -> Result<Principal, AuthError> {
        match self {
            Self::Valid(principal) => Ok(principal),
            Self::Missing => Err(AuthError::Missing),
            Self::Refused(_) | Self::Unresolved(_) => Err(AuthError::Refused),
        }
    }

    /// The claims of a token that verified, whatever its session.
    pub fn claims(&self) -> Option<&Claims> {
        match self {
            Self::Valid(Principal::User { claims, .. }) => Some(claims),
            Self::Refused(claims) => claims.as_ref(),
            Self::Unresolved(claims) => Some(claims),
            Self::Missing => None,
        }
    }
}

impl Principal {
    /// The session the request acts in: its access token's.
    pub fn session_id(&self) -> Option<Uuid> {
        match self {
            Self::User { claims, .. } => Some(claims.sid),
        }
    }
}
