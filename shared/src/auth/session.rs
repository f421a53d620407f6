use lambda_http::Request;

use crate::domain::User;
use crate::http::bearer_token;
use crate::ratelimit::ResolvedSession;
use crate::{ApiError, AppState};

use super::Claims;

/// The active user a request's bearer token belongs to. The rate limiter usually resolved it
/// already; otherwise one DynamoDB round trip reads the user and the token's revocation together.
pub async fn authenticate(req: &Request, state: &AppState) -> Result<(User, Claims), ApiError> {
    const NOT_AUTHENTICATED: ApiError = ApiError::Unauthorized("Could not validate credentials");
    let token = bearer_token(req).ok_or(ApiError::Unauthorized("Not authenticated"))?;
    let claims = state
        .tokens()?
        .verify(token)
        .map_err(|_| NOT_AUTHENTICATED)?;
    if let Some(ResolvedSession(resolved)) = req.extensions().get::<ResolvedSession>() {
        return resolved.clone().ok_or(NOT_AUTHENTICATED);
    }
    let session = state.store.session(claims.sub, claims.jti).await?;
    match session.user {
        Some(user) if user.is_active && !session.revoked => Ok((user, claims)),
        _ => Err(NOT_AUTHENTICATED),
    }
}
