//! The API key routes: a user's own keys, managed with a bearer token only (the route table
//! refuses keys here, so a key cannot mint or revoke keys).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Principal, issue_key};
use crate::domain::{
    Actor, ApiKey, AuditEventType, DEFAULT_KEY_RATE_LIMIT, Fields, KEY_EXPIRES_IN_DAYS,
    KEY_RATE_LIMIT, MAX_ACTIVE_KEYS, NewApiKey, key_name, key_scopes,
};
use crate::http::{
    ApiError, audit_context, json_body, json_response, path_parameter, prefetched, query_fields,
};
use crate::routes::Scope;
use crate::store::{ApiKeyRead, CreateApiKeyError, RevokeApiKey};

/// A key as the API answers it at `now`: never its secret (nor the secret's hash).
#[derive(Serialize)]
struct KeyView<'a> {
    id: Uuid,
    name: &'a str,
    prefix: &'a str,
    scopes: &'a [Scope],
    rate_limit: u32,
    /// Neither revoked nor expired.
    is_active: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    last_used: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

impl<'a> KeyView<'a> {
    fn at(key: &'a ApiKey, now: OffsetDateTime) -> Self {
        Self {
            id: key.id,
            name: &key.name,
            prefix: &key.prefix,
            scopes: &key.scopes,
            rate_limit: key.rate_limit,
            is_active: key.usable(now),
            created_at: key.created_at,
            last_used: key.last_used,
            expires_at: key.expires_at,
        }
    }
}

fn key_not_found() -> ApiError {
    ApiError::NotFound("API key not found".into())
}

/// The `{id}` of the path: 400 when it cannot be a key id.
fn key_id(req: &Request) -> Result<Uuid, ApiError> {
    path_parameter(req, "id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ApiError::BadRequest("Malformed API key id".into()))
}

/// `POST /api/keys` `{name, expires_in_days?, rate_limit?, scopes?}`: 201 with the secret, shown
/// this once. Only within `REAUTHENTICATION_MINUTES` of a sign-in (a login or a reauthentication;
/// not a refresh), so that a stolen access token alone cannot make itself a key.
pub async fn create_api_key(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let now = state.clock.now();
    let max_age_seconds = state.config.reauthentication_minutes * 60;
    principal.signed_in_within(max_age_seconds, now.unix_timestamp())?;
    let user = principal.user();
    let mut fields = Fields::new(json_body(&req)?);
    let name = fields.string("name", key_name);
    let expires_in_days = fields.optional_integer("expires_in_days", KEY_EXPIRES_IN_DAYS);
    let rate_limit = fields
        .optional_integer("rate_limit", KEY_RATE_LIMIT)
        .map(|limit| limit.unwrap_or(DEFAULT_KEY_RATE_LIMIT));
    let scopes = fields
        .optional_strings("scopes", key_scopes)
        .map(|scopes| scopes.unwrap_or_else(|| Scope::ALL.to_vec()));
    let (Some(name), Some(expires_in_days), Some(rate_limit), Some(scopes)) =
        (name, expires_in_days, rate_limit, scopes)
    else {
        return Err(fields.into_error().into());
    };
    let rate_limit = u32::try_from(rate_limit)
        .map_err(|_| ApiError::Internal("a validated rate limit exceeds u32".into()))?;
    let id = Uuid::now_v7();
    let issued = issue_key(user.id, id, rate_limit);
    let new = NewApiKey {
        name,
        expires_in_days,
        rate_limit,
        scopes,
    };
    let key = ApiKey::new(id, user.id, new, issued.hash, issued.prefix, now);
    let created = audit_context(&req, state, Actor::User(user.id), now)
        .event(AuditEventType::ApiKeyCreated, user.id.to_string())
        .with_api_key(key.id);
    state
        .store
        .create_api_key(&key, now, &created)
        .await
        .map_err(|error| match error {
            CreateApiKeyError::TooMany => ApiError::Conflict(format!(
                "A user may have at most {MAX_ACTIVE_KEYS} active API keys; revoke one first"
            )),
            CreateApiKeyError::Store(error) => error.into(),
        })?;
    tracing::info!(user_id = %user.id, api_key_id = %key.id, "API key created");
    let mut body = serde_json::to_value(KeyView::at(&key, now))
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    body["secret_key"] = json!(issued.secret.expose());
    Ok(json_response(StatusCode::CREATED, &body))
}

/// `GET /api/keys?include_inactive=false`: the caller's keys, newest first; revoked and expired
/// ones only with `include_inactive=true`.
pub async fn list_api_keys(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let mut query = Fields::new(query_fields(&req)?);
    let Some(include_inactive) = query.optional_string("include_inactive", |raw| match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".to_owned()),
    }) else {
        return Err(query.into_error().into());
    };
    let include_inactive = include_inactive.unwrap_or(false);
    let now = state.clock.now();
    let keys = state.store.api_keys(user.id).await?;
    let keys: Vec<KeyView> = keys
        .iter()
        .map(|key| KeyView::at(key, now))
        .filter(|key| include_inactive || key.is_active)
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"total": keys.len(), "keys": keys}),
    ))
}

/// `GET /api/keys/{id}`: one of the caller's keys; another user's is 404.
pub async fn get_api_key(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let read = ApiKeyRead {
        owner: principal.user().id,
        key: key_id(&req)?,
    };
    let key = state
        .store
        .first_read(&read, prefetched(&req))
        .await?
        .ok_or_else(key_not_found)?;
    Ok(json_response(
        StatusCode::OK,
        &KeyView::at(&key, state.clock.now()),
    ))
}

/// What `get_api_key` reads first: the key (the caller's, or it answers 404).
pub fn get_api_key_first_read(req: &Request, user: Option<Uuid>) -> Option<ApiKeyRead> {
    Some(ApiKeyRead {
        owner: user?,
        key: key_id(req).ok()?,
    })
}

/// `DELETE /api/keys/{id}`: the key stops working at once. Revoking a revoked key changes
/// nothing and answers 200 again; another user's key is 404.
pub async fn revoke_api_key(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let key_id = key_id(&req)?;
    let now = state.clock.now();
    let revoked = audit_context(&req, state, Actor::User(user.id), now)
        .event(AuditEventType::ApiKeyRevoked, user.id.to_string())
        .with_api_key(key_id);
    let message = match state
        .store
        .revoke_api_key(user.id, key_id, now, &revoked)
        .await?
    {
        RevokeApiKey::Revoked => {
            tracing::info!(user_id = %user.id, api_key_id = %key_id, "API key revoked");
            "API key revoked"
        }
        RevokeApiKey::AlreadyInactive => "API key was already inactive",
        RevokeApiKey::NotFound => return Err(key_not_found()),
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"success": true, "message": message, "key_id": key_id}),
    ))
}
