//! The admin API: the user list and the actions on a user account, for administrators only.
//! Whether the caller is one is read from the table on every request (the principal's user, read
//! fresh by the rate limiter's round trip), never from the token.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Principal;
use crate::domain::{Actor, Assurance, Fields, User, UserAction, username_prefix};
use crate::http::{
    ApiError, audit_context, encode_username_cursor, json_response, path_parameter, prefetched,
    query_fields, username_page_request,
};
use crate::store::{UserActionError, UserActionOutcome, UserRead};

/// 403 unless the request's user is an administrator (as read from the table for this
/// request), and, with `ADMIN_MFA_REQUIRED`, signed in to this session with a second factor (its
/// access token's `aal`). Mint's check too.
pub(super) fn require_admin(principal: &Principal, state: &AppState) -> Result<(), ApiError> {
    if !principal.user().is_admin {
        return Err(not_an_admin());
    }
    if state.config.admin_mfa_required && principal.assurance() != Assurance::SecondFactor {
        return Err(ApiError::Forbidden(
            "Administrator routes need a session signed in with a second factor: set one up with /api/auth/mfa/setup, then log in again with it".into(),
        ));
    }
    Ok(())
}

fn not_an_admin() -> ApiError {
    ApiError::Forbidden("Administrator privileges required".into())
}

/// A user as the admin API answers it: the seven fields (no wallet, no session epoch),
/// and whether the address is verified (issue 25).
#[derive(Serialize)]
struct UserView<'a> {
    id: Uuid,
    username: &'a str,
    email: &'a str,
    is_active: bool,
    is_admin: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    last_login: Option<OffsetDateTime>,
    email_verified: bool,
}

impl<'a> From<&'a User> for UserView<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            id: user.id,
            username: &user.username,
            email: &user.email,
            is_active: user.is_active,
            is_admin: user.is_admin,
            created_at: user.created_at,
            last_login: user.last_login,
            email_verified: user.email_verified,
        }
    }
}

/// `GET /api/admin/users?cursor=&limit=&q=`: every user in username order, a page at a time;
/// with `q`, those whose username starts with it.
pub async fn list_users(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    require_admin(&principal, state)?;
    let mut query = Fields::new(query_fields(&req)?);
    let prefix = query.optional_string("q", username_prefix);
    let page = username_page_request(&req, &mut query)?;
    let (Some(prefix), Some(page)) = (prefix, page) else {
        return Err(query.into_error().into());
    };
    let page = state
        .store
        .users(prefix.as_deref(), page.from.as_deref(), page.limit)
        .await?;
    let users: Vec<UserView> = page.users.iter().map(UserView::from).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"users": users, "next_cursor": page.next.as_deref().map(encode_username_cursor)}),
    ))
}

/// The path's `{action}`: an action this API has, or 404 as for a route it does not have.
fn action(req: &Request) -> Result<UserAction, ApiError> {
    path_parameter(req, "action")
        .and_then(UserAction::parse)
        .ok_or_else(|| {
            ApiError::NotFound(
                "No such action; the actions are deactivate, activate, promote, demote and unlock"
                    .into(),
            )
        })
}

/// The path's `{id}`: 422 when it is no user id.
fn user_id(req: &Request) -> Result<Uuid, ApiError> {
    path_parameter(req, "id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ApiError::validation("id", "must be a user id (a UUID)"))
}

/// What `admin-user-action` reads first: the target user, unless it is the caller (whose user
/// the rate limiter reads anyway), or the path names no action or no user id.
pub fn user_action_first_read(req: &Request, caller: Option<Uuid>) -> Option<UserRead> {
    action(req).ok()?;
    let id = user_id(req).ok()?;
    (Some(id) != caller).then_some(UserRead(id))
}

/// `POST /api/admin/users/{id}/{action}`: deactivate, activate, promote, demote or unlock a
/// user, and record it. Answers the user as it now is.
pub async fn user_action(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let admin = principal.user();
    require_admin(&principal, state)?;
    let action = action(&req)?;
    let id = user_id(&req)?;
    let target = if id == admin.id {
        admin.clone()
    } else {
        state
            .store
            .first_read(&UserRead(id), prefetched(&req))
            .await?
            .ok_or_else(user_not_found)?
    };
    let context = audit_context(&req, state, Actor::User(admin.id), state.clock.now());
    let user = match state.store.act_on_user(&target, action, &context).await {
        Ok(UserActionOutcome::Done { user, .. }) => user,
        Ok(UserActionOutcome::Unchanged(user)) => {
            tracing::info!(user_id = %user.id, %action, "user already so; nothing written");
            user
        }
        Err(UserActionError::OwnAccount(action)) => {
            return Err(ApiError::Conflict(format!(
                "An administrator cannot {action} their own account"
            )));
        }
        Err(UserActionError::NotFound) => return Err(user_not_found()),
        // Demoted or deactivated since this request's read.
        Err(UserActionError::ActorNotAdmin) => return Err(not_an_admin()),
        Err(UserActionError::Store(error)) => return Err(error.into()),
    };
    Ok(json_response(StatusCode::OK, &UserView::from(&user)))
}

fn user_not_found() -> ApiError {
    ApiError::NotFound("User not found".into())
}
