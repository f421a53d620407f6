//! The auth handlers in-process, against the local DynamoDB.

use std::time::{Duration, Instant};

use crate::support::{PASSWORD, TestApp, event, unique_username};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use shared::handlers::{HEALTH, LOGIN, LOGOUT, ME};

fn claims(app: &TestApp, token: &str) -> shared::auth::Claims {
    app.state.jwt_keys().unwrap().verify(token).unwrap()
}

#[tokio::test]
async fn register_answers_the_user_and_never_a_credential() {
    let app = TestApp::new().await;
    let username = unique_username();
    let response = app.register(&username).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.json()["username"], username.as_str());
    assert!(!response.text().contains("password"));
    assert!(!response.text().contains("argon2"));
}

#[tokio::test]
async fn a_username_with_underscores_and_hyphens_registers_and_logs_in_in_any_case() {
    let app = TestApp::new().await;
    let username = format!("Refresh_User-{}", unique_username());
    let registered = app.register(&username).await;
    assert_eq!(registered.status(), 201, "{}", registered.text());
    assert_eq!(registered.json()["username"], username.to_lowercase());
    assert_eq!(
        app.login(&username.to_uppercase(), PASSWORD).await.status(),
        200
    );
}

#[tokio::test]
async fn the_stored_credential_is_an_argon2id_hash() {
    let app = TestApp::new().await;
    let username = unique_username();
    app.register(&username).await;
    let item = app
        .dynamodb()
        .get_item()
        .table_name(app.table())
        .key("PK", AttributeValue::S(format!("USERNAME#{username}")))
        .key("SK", AttributeValue::S("CREDENTIAL".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let hash = item["password_hash"].as_s().unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(PASSWORD));
}

#[tokio::test]
async fn a_revocation_counts_whatever_its_ttl_says() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let jti = claims(&app, &token).jti;
    let revoke_until = |expires_at: i64| {
        app.dynamodb()
            .put_item()
            .table_name(app.table())
            .item("PK", AttributeValue::S(format!("TOKEN#{jti}")))
            .item("SK", AttributeValue::S("REVOKED".into()))
            .item("expires_at", AttributeValue::N(expires_at.to_string()))
            .send()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    revoke_until(now + 600).await.unwrap();
    let me_event = || event("GET", "/api/auth/me").bearer(&token).build();
    assert_eq!(app.call(&ME, me_event()).await.status(), 401);
    // DynamoDB deletes expired items only lazily; one still there still revokes its token.
    revoke_until(now - 1).await.unwrap();
    assert_eq!(app.call(&ME, me_event()).await.status(), 401);
}

#[tokio::test]
async fn logout_revokes_until_the_token_stops_verifying() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let response = app
        .call(
            &LOGOUT,
            event("POST", "/api/auth/logout").bearer(&token).build(),
        )
        .await;
    assert_eq!(response.status(), 200);
    let claims = claims(&app, &token);
    let item = app
        .dynamodb()
        .get_item()
        .table_name(app.table())
        .key("PK", AttributeValue::S(format!("TOKEN#{}", claims.jti)))
        .key("SK", AttributeValue::S("REVOKED".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("a revocation item");
    let leeway = shared::auth::LEEWAY_SECONDS;
    assert_eq!(
        item["expires_at"].as_n().unwrap(),
        &(claims.exp + leeway).to_string()
    );
}

#[tokio::test]
async fn unknown_user_and_wrong_password_are_indistinguishable() {
    let app = TestApp::new().await;
    let (username, _) = app.user_with_token().await;
    let wrong = app.login(&username, "Wrong-Password-1").await;
    let unknown = app.login(&unique_username(), "Wrong-Password-1").await;
    let invalid_name = app.login("not a valid name!", "Wrong-Password-1").await;
    for response in [&wrong, &unknown, &invalid_name] {
        assert_eq!(response.status(), 401);
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        assert_eq!(response.text(), wrong.text());
    }
}

#[tokio::test]
async fn login_requires_both_fields() {
    let app = TestApp::new().await;
    let response = app
        .call(
            &LOGIN,
            event("POST", "/api/auth/login")
                .json(&json!({"username": 7}))
                .build(),
        )
        .await;
    assert_eq!(response.status(), 422);
    let fields: Vec<_> = response.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["username", "password"]);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::new().await;
    for response in [
        app.call(&ME, event("GET", "/api/auth/me").build()).await,
        app.call(&HEALTH, event("GET", "/health").build()).await,
    ] {
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(response.header("cache-control"), Some("no-store"));
        assert!(response.header("strict-transport-security").is_some());
        assert_eq!(
            response.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'")
        );
        assert_eq!(response.header("referrer-policy"), Some("no-referrer"));
    }
}

#[tokio::test]
async fn an_unreachable_table_gives_503_with_retry_after_quickly() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{closed_port}");
    let app = TestApp::with_settings(&[("DYNAMODB_ENDPOINT", &endpoint)]).await;
    let started = Instant::now();
    let response = app.call(&HEALTH, event("GET", "/health").build()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "the function's timeout is 10 s"
    );
    let response = app.login("somebody", PASSWORD).await;
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn a_base64_encoded_body_that_is_not_json_gets_400() {
    let app = TestApp::new().await;
    let request = event("POST", "/api/auth/login")
        .header("content-type", "application/json")
        .base64_body(&[0xff, 0xfe, 0x00])
        .build();
    let response = app.call(&LOGIN, request).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    let body =
        serde_json::json!({"username": "nobody", "password": "Wrong-Password-1"}).to_string();
    let request = event("POST", "/api/auth/login")
        .header("content-type", "application/json")
        .base64_body(body.as_bytes())
        .build();
    assert_eq!(app.call(&LOGIN, request).await.status(), 401);
}

#[tokio::test]
async fn login_reads_its_credential_in_the_rate_limiters_round_trip() {
    let injector = crate::support::faults::FaultInjector::start().await;
    let app = TestApp::with_fault_injector(&injector).await;
    let username = unique_username();
    app.register(&username).await;
    // The limiter's two calls, then the attempt's reservation (with its provisional failure).
    let reserved = ["UpdateItem", "BatchGetItem", "TransactWriteItems"];

    injector.observe();
    assert_eq!(app.login(&username, PASSWORD).await.status(), 200);
    assert_eq!(
        injector.calls(),
        [&reserved[..], &["UpdateItem", "TransactWriteItems"]].concat(),
        "then last_login, then the session, its refresh token, its event and the reservation's release"
    );

    injector.observe();
    assert_eq!(app.login(&username, "Wrong-Password-1").await.status(), 401);
    assert_eq!(injector.calls(), reserved, "the reservation is the failure");

    // Outside the rate limiter (no first reads handed over), login reads for itself.
    let body = json!({"username": username, "password": PASSWORD});
    let request = event("POST", "/api/auth/login").json(&body).build();
    injector.observe();
    let response = (LOGIN.handler)(request, app.state).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        injector.calls(),
        [
            "BatchGetItem",
            "TransactWriteItems",
            "UpdateItem",
            "TransactWriteItems"
        ]
    );
}

/// Security review, item 4: a token verifies until `exp` + the leeway, so its revocation must
/// hold that long too.
#[tokio::test]
async fn a_logged_out_token_stays_refused_inside_the_leeway() {
    let app = TestApp::with_settings(&[("ACCESS_TOKEN_EXPIRE_MINUTES", "1")]).await;
    let (_, token) = app.user_with_token().await;
    let me_of = |token: &str| event("GET", "/api/auth/me").bearer(token).build();
    let user: shared::domain::User =
        serde_json::from_value(app.call(&ME, me_of(&token)).await.json()).unwrap();
    // Issued 62 s ago with a 1-minute lifetime: 2 s past `exp`, still inside the 5 s leeway.
    let issued_at = time::OffsetDateTime::now_utc() - time::Duration::seconds(62);
    let sid = claims(&app, &token).sid;
    let late = app
        .state
        .jwt_keys()
        .unwrap()
        .issue(&user, sid, issued_at, shared::domain::Assurance::Password)
        .token;
    assert_eq!(app.call(&ME, me_of(&late)).await.status(), 200);
    let logout_event = event("POST", "/api/auth/logout").bearer(&late).build();
    assert_eq!(app.call(&LOGOUT, logout_event).await.status(), 200);
    assert_eq!(app.call(&ME, me_of(&late)).await.status(), 401);
}

/// Security review, item 6: "é" as one code point and as e + combining accent is one password.
#[tokio::test]
async fn passwords_are_compared_in_nfkc() {
    let app = TestApp::new().await;
    let composed = "Caf\u{e9}-Compute-2024";
    let decomposed = "Cafe\u{301}-Compute-2024";
    for (registered_as, typed_as) in [(composed, decomposed), (decomposed, composed)] {
        let username = unique_username();
        let body = json!({"username": username, "email": format!("{username}@example.com"), "password": registered_as});
        let register = event("POST", "/api/auth/register").json(&body).build();
        assert_eq!(
            app.call(&shared::handlers::REGISTER, register)
                .await
                .status(),
            201
        );
        assert_eq!(app.login(&username, typed_as).await.status(), 200);
        assert_eq!(app.login(&username, registered_as).await.status(), 200);
    }
}
