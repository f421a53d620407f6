//! Step-up authentication (second security review, item 6), in-process against the local
//! DynamoDB: access tokens carry `auth_time`, which a refresh keeps; creating an API key needs a
//! sign-in within `REAUTHENTICATION_MINUTES` (403 with RFC 9470's challenge otherwise);
//! `POST /api/auth/reauthenticate` proves the password again (counted by the lockout and
//! audited like a login) for a token of the same session signed in now; and a password change
//! may revoke every API key in its own transaction. Time moves with the test app's clock
//! (`TestApp::later`), never by sleeping.

use crate::support::sessions::{Pair, text};
use crate::support::{PASSWORD, TestApp, TestResponse, event};
use aws_sdk_dynamodb::types::AttributeValue;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::config::JwtSecretSource;
use shared::handlers::{CHANGE_PASSWORD, LIST_API_KEYS, REAUTHENTICATE};
use shared::ratelimit::MAX_FAILED_LOGINS;
use shared::store::keys;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const CHALLENGE: &str = r#"Bearer error="insufficient_user_authentication", max_age=600"#;
const NEW_PASSWORD: &str = "Quiet-Harbour-Lantern-7";

async fn reauthenticate(app: &TestApp, access: &str, password: &str) -> TestResponse {
    let request = event("POST", "/api/auth/reauthenticate")
        .bearer(access)
        .json(&json!({"password": password}))
        .build();
    app.call(&REAUTHENTICATE, request).await
}

async fn change_password(app: &TestApp, access: &str, body: Value) -> TestResponse {
    let request = event("POST", "/api/auth/change-password")
        .bearer(access)
        .json(&body)
        .build();
    app.call(&CHANGE_PASSWORD, request).await
}

fn assert_sign_in_too_old(response: &TestResponse) {
    assert_eq!(response.status(), 403, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.header("www-authenticate"), Some(CHALLENGE));
    let detail = response.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("within the last 10 minutes")
            && detail.contains("POST /api/auth/reauthenticate"),
        "{detail}"
    );
}

/// The keys of the token's user, revoked ones included.
async fn keys_of(app: &TestApp, access: &str) -> Vec<Value> {
    let request = event("GET", "/api/keys")
        .bearer(access)
        .query("include_inactive=true")
        .build();
    let listed = app.call(&LIST_API_KEYS, request).await;
    assert_eq!(listed.status(), 200, "{}", listed.text());
    listed.json()["keys"].as_array().unwrap().clone()
}

/// The user's active-key count, as stored.
async fn active_count(app: &TestApp, user: Uuid) -> Option<i64> {
    let item = app.item(&keys::active_api_keys(user)).await?;
    Some(item["active"].as_n().unwrap().parse().unwrap())
}

/// The token's claims as JSON, changed by `change` and signed with the app's key.
fn resigned(app: &TestApp, access: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut claims = serde_json::to_value(app.claims(access)).unwrap();
    change(&mut claims);
    let Some(JwtSecretSource::Value(secret)) = &app.state.config.jwt_secret else {
        panic!("the test app's secret is a value")
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_login_signs_in_and_a_refresh_keeps_the_sign_in_time() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let claims = app.claims(&pair.access);
    assert_eq!(claims.auth_time, Some(claims.iat));
    let session = app.session_item(claims.sid).await.unwrap();
    let stored = OffsetDateTime::parse(
        text(&session, "auth_time"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(stored.unix_timestamp(), claims.iat);

    let later = TestApp::later(Duration::minutes(20)).await;
    let refreshed = Pair::of(&later.refresh(&pair.refresh).await);
    let after = app.claims(&refreshed.access);
    assert!(after.iat >= claims.iat + 20 * 60, "a new token");
    assert_eq!(after.auth_time, claims.auth_time, "the same sign-in");
}

/// A session stored before `auth_time` was: its sign-in is taken to be its start.
#[tokio::test]
async fn a_session_without_a_sign_in_time_counts_from_its_start() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let claims = app.claims(&pair.access);
    app.dynamodb()
        .update_item()
        .table_name(app.table())
        .set_key(Some(keys::session(claims.sid).attributes()))
        .update_expression("REMOVE auth_time")
        .send()
        .await
        .unwrap();
    let session = app.session_item(claims.sid).await.unwrap();
    assert!(!session.contains_key("auth_time"));
    let created_at = OffsetDateTime::parse(
        text(&session, "created_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let later = TestApp::later(Duration::minutes(5)).await;
    let refreshed = Pair::of(&later.refresh(&pair.refresh).await);
    assert_eq!(
        app.claims(&refreshed.access).auth_time,
        Some(created_at.unix_timestamp())
    );
}

#[tokio::test]
async fn creating_a_key_needs_a_sign_in_of_the_last_ten_minutes() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let body = json!({"name": "agent"});
    let within = TestApp::later(Duration::minutes(9)).await;
    assert_eq!(within.create_key(&pair.access, &body).await.status(), 201);

    let later = TestApp::later(Duration::minutes(11)).await;
    let refused = later.create_key(&pair.access, &body).await;
    assert_sign_in_too_old(&refused);
    // A refresh is no sign-in: its token is as old.
    let refreshed = Pair::of(&later.refresh(&pair.refresh).await);
    assert_sign_in_too_old(&later.create_key(&refreshed.access, &body).await);
    // Nothing was stored for the refused ones.
    assert_eq!(keys_of(&later, &refreshed.access).await.len(), 1);
}

/// A token from before `auth_time` existed (a live session's, still valid) is too old.
#[tokio::test]
async fn a_token_without_a_sign_in_time_cannot_create_a_key() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let old_style = resigned(&app, &pair.access, |claims| {
        claims.as_object_mut().unwrap().remove("auth_time");
    });
    assert_eq!(app.me(&old_style).await.status(), 200, "a valid token");
    assert_sign_in_too_old(&app.create_key(&old_style, &json!({"name": "agent"})).await);
}

#[tokio::test]
async fn reauthenticating_answers_a_token_of_the_same_session_signed_in_now() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let before = app.claims(&pair.access);
    let session_before = app.session_item(before.sid).await.unwrap();
    let later = TestApp::later(Duration::minutes(30)).await;
    assert_sign_in_too_old(&later.create_key(&pair.access, &json!({"name": "a"})).await);

    let answer = reauthenticate(&later, &pair.access, PASSWORD).await;
    assert_eq!(answer.status(), 200, "{}", answer.text());
    let body = answer.json();
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["access_token", "expires_in", "token_type"]);
    assert_eq!(
        (&body["token_type"], &body["expires_in"]),
        (&json!("bearer"), &json!(1800))
    );
    let access = body["access_token"].as_str().unwrap();
    let after = app.claims(access);
    let now = later.state.clock.now().unix_timestamp();
    assert_eq!((after.sid, after.sub), (before.sid, before.sub));
    assert_ne!(after.jti, before.jti);
    let auth_time = after.auth_time.unwrap();
    assert!(
        (now - 5..=now).contains(&auth_time),
        "{auth_time} is now ({now})"
    );

    // The session's sign-in moved on, and nothing else of it changed.
    let session_after = app.session_item(before.sid).await.unwrap();
    let mut changed: Vec<&String> = session_after
        .keys()
        .filter(|name| session_before.get(*name) != session_after.get(*name))
        .collect();
    changed.sort_unstable();
    assert_eq!(changed, ["auth_time"]);
    // The key is made now, and a refresh keeps the new sign-in.
    assert_eq!(
        later
            .create_key(access, &json!({"name": "a"}))
            .await
            .status(),
        201
    );
    assert_eq!(
        later.me(&pair.access).await.status(),
        200,
        "the old token lives on"
    );
    let refreshed = Pair::of(&later.refresh(&pair.refresh).await);
    assert_eq!(app.claims(&refreshed.access).auth_time, Some(auth_time));

    let succeeded = app.events(before.sub, "login.succeeded").await;
    let reauthenticated = serde_json::to_value(&succeeded[0]).unwrap();
    assert_eq!(reauthenticated["detail"]["via"], "reauthenticate");
    assert_eq!(
        reauthenticated["detail"]["session_id"],
        before.sid.to_string()
    );
    assert_eq!(reauthenticated["actor"], before.sub.to_string());
    assert!(app.events(before.sub, "login.failed").await.is_empty());
}

/// A wrong password is a failed login: recorded, and counted until the username is locked, for
/// logins too.
#[tokio::test]
async fn a_wrong_password_counts_toward_the_lockout_and_is_audited() {
    let app = TestApp::new().await;
    let (username, pair) = app.user_with_pair().await;
    let user = app.claims(&pair.access).sub;
    for attempt in 1..=MAX_FAILED_LOGINS {
        let refused = reauthenticate(&app, &pair.access, "Not-The-Password-1").await;
        assert_eq!(
            refused.status(),
            401,
            "attempt {attempt}: {}",
            refused.text()
        );
        assert_eq!(refused.json()["detail"], "Incorrect password");
        assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    }
    let locked = reauthenticate(&app, &pair.access, PASSWORD).await;
    assert_eq!(locked.status(), 423, "{}", locked.text());
    assert!(locked.header("retry-after").is_some());

    let failed = app.events(user, "login.failed").await;
    assert_eq!(failed.len(), MAX_FAILED_LOGINS + 1);
    let reasons: Vec<Value> = failed
        .iter()
        .map(|event| serde_json::to_value(event).unwrap()["detail"]["reason"].clone())
        .collect();
    assert_eq!(reasons[0], "locked");
    assert!(
        reasons[1..].iter().all(|reason| reason == "bad_password"),
        "{reasons:?}"
    );
    let via: Vec<Value> = failed
        .iter()
        .map(|event| serde_json::to_value(event).unwrap()["detail"]["via"].clone())
        .collect();
    assert!(via.iter().all(|via| via == "reauthenticate"), "{via:?}");
    assert_eq!(app.events(user, "login.locked").await.len(), 1);
    // No sign-in was renewed by any of them, and logins are locked out too.
    assert_eq!(app.events(user, "login.succeeded").await.len(), 1);
    assert_eq!(app.login(&username, PASSWORD).await.status(), 423);
}

#[tokio::test]
async fn only_a_live_session_reauthenticates_and_never_with_a_key_or_bad_input() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let (_, secret) = app.key(&pair.access, &json!({"name": "agent"})).await;
    let with_key = event("POST", "/api/auth/reauthenticate")
        .api_key(&secret)
        .json(&json!({"password": PASSWORD}))
        .build();
    let refused = app.call(&REAUTHENTICATE, with_key).await;
    assert_eq!(refused.status(), 403, "{}", refused.text());

    for body in [
        json!({}),
        json!({"password": 12}),
        json!({"password": null}),
    ] {
        let request = event("POST", "/api/auth/reauthenticate")
            .bearer(&pair.access)
            .json(&body)
            .build();
        let invalid = app.call(&REAUTHENTICATE, request).await;
        assert_eq!(invalid.status(), 422, "{body}: {}", invalid.text());
        assert_eq!(invalid.json()["errors"][0]["field"], "password");
    }

    let logout = event("POST", "/api/auth/logout")
        .bearer(&pair.access)
        .build();
    assert_eq!(
        app.call(&shared::handlers::LOGOUT, logout).await.status(),
        200
    );
    let ended = reauthenticate(&app, &pair.access, PASSWORD).await;
    assert_eq!(ended.status(), 401, "{}", ended.text());
}

/// The session ends between the limiter's read and the reauthentication's write: nothing is
/// written, and the password's provisional failure is withdrawn, since it was right.
#[tokio::test]
async fn a_session_ended_meanwhile_is_not_signed_in_again() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let claims = app.claims(&pair.access);
    let store = &app.state.store;
    let user = store
        .user_by_username(&claims.username)
        .await
        .unwrap()
        .unwrap();
    let now = app.state.clock.now();
    let audit = crate::support::audit_context(shared::domain::Actor::User(user.id), now);
    let logout = audit.event(shared::domain::AuditEventType::Logout, user.id.to_string());
    assert!(store.end_session(claims.sid, &user, &logout).await.unwrap());
    let succeeded = audit.event(
        shared::domain::AuditEventType::LoginSucceeded,
        user.id.to_string(),
    );
    let recorded = store
        .reauthenticate(
            &user,
            claims.sid,
            now,
            None,
            (std::slice::from_ref(&succeeded), &[]),
        )
        .await
        .unwrap();
    assert_eq!(recorded, shared::store::Reauthentication::SessionEnded);
    let session = app.session_item(claims.sid).await.unwrap();
    assert_eq!(text(&session, "status"), "revoked");
    assert_eq!(
        app.events(user.id, "login.succeeded").await.len(),
        1,
        "the login's only"
    );
}

#[tokio::test]
async fn a_password_change_may_revoke_every_key_in_its_transaction() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let user = app.claims(&pair.access).sub;
    let mut secrets = Vec::new();
    for name in ["agent", "ci", "backup"] {
        secrets.push(app.key(&pair.access, &json!({"name": name})).await);
    }
    // One revoked before: not revoked again, nor counted.
    let revoke = event("DELETE", "/api/keys/x")
        .path_parameter("id", &secrets[2].0)
        .bearer(&pair.access)
        .build();
    assert_eq!(
        app.call(&shared::handlers::REVOKE_API_KEY, revoke)
            .await
            .status(),
        200
    );
    assert_eq!(active_count(&app, user).await, Some(2));

    let changed = change_password(
        &app,
        &pair.access,
        json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD, "revoke_api_keys": true}),
    )
    .await;
    assert_eq!(changed.status(), 200, "{}", changed.text());
    assert_eq!(
        changed.json()["message"],
        "Password changed; every other session has ended and every API key is revoked"
    );
    for (_, secret) in &secrets {
        let used = event("GET", "/api/auth/me").api_key(secret).build();
        assert_eq!(app.call(&shared::handlers::ME, used).await.status(), 401);
    }
    let keys = keys_of(&app, &pair.access).await;
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|key| key["is_active"] == false), "{keys:?}");
    assert_eq!(active_count(&app, user).await, Some(0));
    let mut revoked: Vec<String> = app
        .events(user, "apikey.revoked")
        .await
        .iter()
        .map(|event| serde_json::to_value(event).unwrap()["detail"]["api_key_id"].clone())
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    revoked.sort_unstable();
    let mut expected: Vec<String> = secrets.iter().map(|(id, _)| id.clone()).collect();
    expected.sort_unstable();
    assert_eq!(
        revoked, expected,
        "one event each, the earlier revocation's included"
    );
    assert_eq!(app.events(user, "password.changed").await.len(), 1);
}

#[tokio::test]
async fn without_the_flag_a_password_change_leaves_the_keys_and_with_it_revokes_none_of_none() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let user = app.claims(&pair.access).sub;
    let (_, secret) = app.key(&pair.access, &json!({"name": "agent"})).await;
    let changed = change_password(
        &app,
        &pair.access,
        json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(changed.status(), 200, "{}", changed.text());
    let used = event("GET", "/api/auth/me").api_key(&secret).build();
    assert_eq!(app.call(&shared::handlers::ME, used).await.status(), 200);
    assert_eq!(active_count(&app, user).await, Some(1));

    let invalid = change_password(
        &app,
        &pair.access,
        json!({"old_password": NEW_PASSWORD, "new_password": PASSWORD, "revoke_api_keys": "yes"}),
    )
    .await;
    assert_eq!(invalid.status(), 422, "{}", invalid.text());
    assert_eq!(invalid.json()["errors"][0]["field"], "revoke_api_keys");

    // A user without keys: nothing to revoke, and the change goes through.
    let (_, other) = app.user_with_pair().await;
    let changed = change_password(
        &app,
        &other.access,
        json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD, "revoke_api_keys": true}),
    )
    .await;
    assert_eq!(changed.status(), 200, "{}", changed.text());
}

/// A key created after the password change read the keys (here: its count moved on, as a
/// creation moves it) makes the change fail whole rather than leave that key alive.
#[tokio::test]
async fn keys_that_changed_since_they_were_read_fail_the_whole_change() {
    let app = TestApp::new().await;
    let (username, pair) = app.user_with_pair().await;
    let user = app.claims(&pair.access).sub;
    app.key(&pair.access, &json!({"name": "agent"})).await;
    app.dynamodb()
        .update_item()
        .table_name(app.table())
        .set_key(Some(keys::active_api_keys(user).attributes()))
        .update_expression("ADD active :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    let conflict = change_password(
        &app,
        &pair.access,
        json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD, "revoke_api_keys": true}),
    )
    .await;
    assert_eq!(conflict.status(), 409, "{}", conflict.text());
    assert_eq!(
        conflict.header("content-type"),
        Some("application/problem+json")
    );
    // Nothing changed: the old password, the key, the count.
    assert_eq!(app.login(&username, PASSWORD).await.status(), 200);
    assert_eq!(keys_of(&app, &pair.access).await[0]["is_active"], true);
    assert_eq!(active_count(&app, user).await, Some(2));
    assert!(app.events(user, "password.changed").await.is_empty());
}
