//! Sessions (issue 15) in-process, against the local DynamoDB: refresh-token rotation, reuse
//! detection and its grace for honest races, logout (one session and all), revocation, the
//! session list, ending one session, and changing the password. Time moves with the test app's
//! clock (`TestApp::later`), never by sleeping.

use crate::support::sessions::{Pair, number, text};
use crate::support::{PASSWORD, TestApp, TestResponse, event, unique_username};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::config::JwtSecretSource;
use shared::domain::UserAction;
use shared::handlers::{CHANGE_PASSWORD, DELETE_SESSION, LIST_SESSIONS, LOGOUT, REFRESH, REVOKE};
use time::Duration;
use uuid::Uuid;

const INVALID: &str = "Invalid or expired refresh token";

/// `count` refreshes of `token` at once, each a request of its own, as 20 tabs would send them.
async fn concurrent_refreshes(app: &TestApp, token: &str, count: usize) -> Vec<TestResponse> {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (state, token) = (app.state, token.to_owned());
            tokio::spawn(async move { TestApp { state }.refresh(&token).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(count);
    for task in tasks {
        answers.push(task.await.expect("the request ran"));
    }
    answers
}

fn assert_invalid_refresh(response: &TestResponse) {
    assert_eq!(response.status(), 401, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    assert_eq!(response.json()["detail"], INVALID);
}

fn field_names(response: &TestResponse) -> Vec<String> {
    assert_eq!(response.status(), 422, "{}", response.text());
    response.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap().to_owned())
        .collect()
}

async fn logout(app: &TestApp, access: &str, query: &str) -> TestResponse {
    let request = event("POST", "/api/auth/logout")
        .bearer(access)
        .query(query)
        .build();
    app.call(&LOGOUT, request).await
}

async fn revoke(app: &TestApp, body: Value) -> TestResponse {
    let request = event("POST", "/api/auth/revoke").json(&body).build();
    app.call(&REVOKE, request).await
}

async fn sessions(app: &TestApp, access: &str) -> TestResponse {
    let request = event("GET", "/api/auth/sessions").bearer(access).build();
    app.call(&LIST_SESSIONS, request).await
}

async fn delete_session(app: &TestApp, access: &str, id: &str) -> TestResponse {
    let request = event("DELETE", &format!("/api/auth/sessions/{id}"))
        .path_parameter("id", id)
        .bearer(access)
        .build();
    app.call(&DELETE_SESSION, request).await
}

async fn change_password(app: &TestApp, access: &str, body: Value) -> TestResponse {
    let request = event("POST", "/api/auth/change-password")
        .bearer(access)
        .json(&body)
        .build();
    app.call(&CHANGE_PASSWORD, request).await
}

#[tokio::test]
async fn login_answers_a_refresh_token_kept_only_as_its_hash() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let body = &pair.body;
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "access_token",
            "expires_in",
            "refresh_expires_in",
            "refresh_token",
            "token_type"
        ]
    );
    assert_eq!(
        (
            &body["token_type"],
            &body["expires_in"],
            &body["refresh_expires_in"]
        ),
        (&json!("bearer"), &json!(1800), &json!(7 * 24 * 3600))
    );
    assert!(pair.refresh.starts_with("fog_rt_"), "{}", pair.refresh);
    assert_eq!(pair.refresh.len(), 93);
    assert_eq!(pair.refresh.matches('.').count(), 0, "not a JWT");

    let claims = app.claims(&pair.access);
    let session = app.session_item(claims.sid).await.expect("a session item");
    assert_eq!(text(&session, "status"), "active");
    assert_eq!(text(&session, "user_id"), claims.sub.to_string());
    assert_eq!(text(&session, "GSI1PK"), format!("USER#{}", claims.sub));
    assert_eq!(text(&session, "GSI1SK"), format!("SESSION#{}", claims.sid));
    assert_eq!(number(&session, "epoch"), 0);
    let stored = app
        .refresh_item(&pair.refresh)
        .await
        .expect("the token's item");
    assert_eq!(text(&stored, "state"), "current");
    assert_eq!(text(&stored, "sid"), claims.sid.to_string());
    assert_eq!(
        number(&stored, "expires_at"),
        number(&session, "expires_at")
    );
    assert!(
        number(&stored, "expires_at") - claims.iat >= 7 * 24 * 3600 - 1,
        "lives REFRESH_TOKEN_EXPIRE_DAYS"
    );
    // The token itself is stored nowhere: not in its item, not in its session's.
    let secret = &pair.refresh["fog_rt_".len()..];
    for item in [&stored, &session] {
        assert!(!format!("{item:?}").contains(secret));
    }
}

#[tokio::test]
async fn refresh_rotates_the_pair_and_spends_the_old_token() {
    let app = TestApp::new().await;
    let (username, first) = app.user_with_pair().await;
    let sid = app.claims(&first.access).sid;

    let second = Pair::of(&app.refresh(&first.refresh).await);
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    assert_eq!(second.body["token_type"], "bearer");
    assert_eq!(second.body["expires_in"], 1800);
    assert_eq!(second.body["refresh_expires_in"], 7 * 24 * 3600);
    let claims = app.claims(&second.access);
    assert_eq!(
        (claims.sid, claims.username.as_str()),
        (sid, username.as_str())
    );
    assert_eq!(app.me(&second.access).await.status(), 200);

    let spent = app.refresh_item(&first.refresh).await.unwrap();
    assert_eq!(text(&spent, "state"), "spent");
    assert_eq!(number(&spent, "spent_at"), claims.iat);
    let successor = shared::domain::RefreshToken::parse(&second.refresh).unwrap();
    assert_eq!(text(&spent, "successor"), successor.hash().as_str());
    assert_eq!(
        text(&app.refresh_item(&second.refresh).await.unwrap(), "state"),
        "current"
    );

    // The chain goes on, one session throughout.
    let third = Pair::of(&app.refresh(&second.refresh).await);
    let fourth = Pair::of(&app.refresh(&third.refresh).await);
    assert_eq!(app.claims(&fourth.access).sid, sid);
    assert_eq!(app.refresh_items_of(sid).await.len(), 4);
    let listed = sessions(&app, &fourth.access).await;
    assert_eq!(listed.json()["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn refresh_refuses_what_is_not_a_live_refresh_token() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let request = |body: &str| {
        event("POST", "/api/auth/refresh")
            .header("content-type", "application/json")
            .body(body)
            .build()
    };
    for (body, field) in [
        ("{}", "refresh_token"),
        (r#"{"refresh_token": null}"#, "refresh_token"),
        (r#"{"refresh_token": 7}"#, "refresh_token"),
        (r#"{"refresh_token": ""}"#, "refresh_token"),
        (r#"{"refresh_token": ["fog_rt_"]}"#, "refresh_token"),
    ] {
        let response = app.call(&shared::handlers::REFRESH, request(body)).await;
        assert_eq!(field_names(&response), [field], "{body}");
    }
    let unknown = shared::domain::RefreshToken::generate(
        app.claims(&pair.access).sub,
        app.claims(&pair.access).sid,
    );
    for token in [
        unknown.expose(),
        &pair.access,
        "fog_rt_short",
        &pair.refresh[..92],
        &format!("{}A", pair.refresh),
        "not a token at all",
        &"x".repeat(10_000),
    ] {
        assert_invalid_refresh(&app.refresh(token).await);
    }
    // None of that touched the real one.
    assert_eq!(
        text(&app.refresh_item(&pair.refresh).await.unwrap(), "state"),
        "current"
    );

    // Eight days on, the token has expired.
    let later = TestApp::later(Duration::days(8)).await;
    assert_invalid_refresh(&later.refresh(&pair.refresh).await);
    assert_eq!(
        text(&app.refresh_item(&pair.refresh).await.unwrap(), "state"),
        "current"
    );
}

#[tokio::test]
async fn a_refresh_token_is_never_an_access_token_nor_the_other_way_round() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let me = app.me(&pair.refresh).await;
    assert_eq!(me.status(), 401, "not a JWT, so no credentials");
    assert_invalid_refresh(&app.refresh(&pair.access).await);
    let revoked = revoke(&app, json!({"refresh_token": pair.access})).await;
    assert_eq!(revoked.status(), 200);
    // Neither mix-up changed anything.
    assert_eq!(app.me(&pair.access).await.status(), 200);
    Pair::of(&app.refresh(&pair.refresh).await);
}

#[tokio::test]
async fn a_token_without_a_session_is_refused() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let claims = app.claims(&pair.access);
    let mut old_style = serde_json::to_value(&claims).unwrap();
    old_style.as_object_mut().unwrap().remove("sid");
    let Some(JwtSecretSource::Value(secret)) = &app.state.config.jwt_secret else {
        panic!("the test app's secret is a value")
    };
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &old_style,
        &jsonwebtoken::EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .unwrap();
    assert_eq!(app.me(&token).await.status(), 401);
}

/// Two tabs refresh with the same token at once: both get the one new pair, and the session
/// goes on.
#[tokio::test]
async fn the_same_token_twice_within_the_grace_gets_the_same_pair() {
    let app = TestApp::new().await;
    let (_, first) = app.user_with_pair().await;
    let second = app.refresh(&first.refresh).await;
    let again = app.refresh(&first.refresh).await;
    assert_eq!(second.status(), 200);
    assert_eq!(again.text(), second.text(), "the very same answer");
    // 9.5 seconds after the rotation (whatever time the requests took so far) is still inside
    // the 10-second grace.
    let spent_at = number(&app.refresh_item(&first.refresh).await.unwrap(), "spent_at");
    let now = time::OffsetDateTime::now_utc();
    let nine = TestApp::later(
        time::OffsetDateTime::from_unix_timestamp(spent_at).unwrap()
            + Duration::milliseconds(9_500)
            - now,
    )
    .await;
    assert_eq!(nine.refresh(&first.refresh).await.text(), second.text());
    let pair = Pair::of(&second);
    assert_eq!(app.me(&pair.access).await.status(), 200);
    assert_eq!(app.me(&first.access).await.status(), 200);
    Pair::of(&app.refresh(&pair.refresh).await);
}

/// A spent token presented after the grace is a stolen copy: its whole session ends, the newest
/// refresh token and every access token of the session with it.
#[tokio::test]
async fn reuse_after_the_grace_ends_the_family_and_its_access_tokens() {
    let app = TestApp::new().await;
    let (username, first) = app.user_with_pair().await;
    let other = app.another_session(&username).await;
    let second = Pair::of(&app.refresh(&first.refresh).await);
    let third = Pair::of(&app.refresh(&second.refresh).await);
    let sid = app.claims(&first.access).sid;

    let later = TestApp::later(Duration::seconds(11)).await;
    assert_invalid_refresh(&later.refresh(&first.refresh).await);

    assert_eq!(
        text(&app.session_item(sid).await.unwrap(), "status"),
        "revoked"
    );
    for access in [&first.access, &second.access, &third.access] {
        assert_eq!(app.me(access).await.status(), 401, "at once, not at expiry");
    }
    for refresh in [&third.refresh, &second.refresh, &first.refresh] {
        assert_invalid_refresh(&app.refresh(refresh).await);
    }
    // The user's other session is another family.
    assert_eq!(app.me(&other.access).await.status(), 200);
    Pair::of(&app.refresh(&other.refresh).await);
}

/// Issue 15: 20 concurrent refreshes of one token. Each answer is the one new pair or 401, and
/// exactly one family goes on: one current refresh token, the one answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_refreshes_of_one_token_keep_one_family() {
    let app = TestApp::new().await;
    let (_, first) = app.user_with_pair().await;
    let sid = app.claims(&first.access).sid;
    let answers = concurrent_refreshes(&app, &first.refresh, 20).await;

    let winners: Vec<&TestResponse> = answers.iter().filter(|a| a.status() == 200).collect();
    assert!(!winners.is_empty());
    for answer in &answers {
        match answer.status() {
            200 => assert_eq!(answer.text(), winners[0].text(), "one pair"),
            _ => assert_invalid_refresh(answer),
        }
    }
    let pair = Pair::of(winners[0]);
    let current: Vec<_> = app
        .refresh_items_of(sid)
        .await
        .into_iter()
        .filter(|item| text(item, "state") == "current")
        .collect();
    assert_eq!(current.len(), 1, "one successor");
    assert_eq!(app.refresh_items_of(sid).await.len(), 2);
    assert_eq!(
        text(&app.session_item(sid).await.unwrap(), "status"),
        "active"
    );
    assert_eq!(app.me(&pair.access).await.status(), 200);
    let listed = sessions(&app, &pair.access).await.json();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);
    Pair::of(&app.refresh(&pair.refresh).await);
}

/// Without a grace, a second presentation of a spent token is reuse however soon it comes: of 20
/// concurrent refreshes one is answered, and the session ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_grace_concurrent_refreshes_are_reuse() {
    let app = TestApp::with_settings(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
    let (_, first) = app.user_with_pair().await;
    let sid = app.claims(&first.access).sid;
    let answers = concurrent_refreshes(&app, &first.refresh, 20).await;
    let statuses: Vec<u16> = answers.iter().map(TestResponse::status).collect();
    assert_eq!(
        statuses.iter().filter(|&&status| status == 200).count(),
        1,
        "{statuses:?}"
    );
    for answer in answers.iter().filter(|answer| answer.status() != 200) {
        assert_invalid_refresh(answer);
    }
    assert_eq!(
        text(&app.session_item(sid).await.unwrap(), "status"),
        "revoked"
    );
    let winner = Pair::of(
        answers
            .iter()
            .find(|answer| answer.status() == 200)
            .unwrap(),
    );
    assert_eq!(app.me(&winner.access).await.status(), 401);
    assert_invalid_refresh(&app.refresh(&winner.refresh).await);
}

#[tokio::test]
async fn a_deactivated_users_refresh_is_forbidden_and_changes_nothing() {
    let app = TestApp::new().await;
    let (username, pair) = app.user_with_pair().await;
    app.act_on(&username, UserAction::Deactivate).await;
    let response = app.refresh(&pair.refresh).await;
    assert_eq!(response.status(), 403, "{}", response.text());
    assert_eq!(response.json()["detail"], "Account is disabled");
    assert_eq!(
        text(&app.refresh_item(&pair.refresh).await.unwrap(), "state"),
        "current"
    );
    app.act_on(&username, UserAction::Activate).await;
    Pair::of(&app.refresh(&pair.refresh).await);
}

#[tokio::test]
async fn logout_ends_the_session_and_its_refresh_token() {
    let app = TestApp::new().await;
    let (username, pair) = app.user_with_pair().await;
    let other = app.another_session(&username).await;
    let refreshed = Pair::of(&app.refresh(&pair.refresh).await);
    let response = logout(&app, &pair.access, "").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json()["success"], true);
    assert_eq!(app.me(&pair.access).await.status(), 401);
    assert_eq!(
        app.me(&refreshed.access).await.status(),
        401,
        "its whole session"
    );
    assert_invalid_refresh(&app.refresh(&refreshed.refresh).await);
    let sid = app.claims(&pair.access).sid;
    assert_eq!(
        text(&app.session_item(sid).await.unwrap(), "status"),
        "revoked"
    );
    // The token's jti is still revoked, as before sessions.
    let jti = app.claims(&pair.access).jti;
    assert!(
        app.item(&shared::store::keys::revoked_token(jti))
            .await
            .is_some()
    );
    // Another login of the same user goes on.
    assert_eq!(app.me(&other.access).await.status(), 200);
    Pair::of(&app.refresh(&other.refresh).await);
    // Again, with the dead token: still 200.
    assert_eq!(logout(&app, &pair.access, "").await.status(), 200);
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_user_and_only_theirs() {
    let app = TestApp::new().await;
    let (username, first) = app.user_with_pair().await;
    let second = app.another_session(&username).await;
    let (_, stranger) = app.user_with_pair().await;

    for bad in ["all=maybe", "all=1", "all=true&all=true"] {
        let response = logout(&app, &first.access, bad).await;
        assert!(
            [400, 422].contains(&response.status()),
            "{bad}: {}",
            response.text()
        );
        assert_eq!(
            app.me(&first.access).await.status(),
            200,
            "{bad} changed nothing"
        );
    }
    assert_eq!(logout(&app, &first.access, "all=false").await.status(), 200);
    assert_eq!(
        app.me(&first.access).await.status(),
        401,
        "all=false: this one"
    );
    assert_eq!(app.me(&second.access).await.status(), 200);

    let third = app.another_session(&username).await;
    let response = logout(&app, &third.access, "all=true").await;
    assert_eq!(response.status(), 200);
    for pair in [&second, &third] {
        assert_eq!(app.me(&pair.access).await.status(), 401);
        assert_invalid_refresh(&app.refresh(&pair.refresh).await);
    }
    assert_eq!(app.me(&stranger.access).await.status(), 200);
    // A new login starts afresh.
    let fourth = app.another_session(&username).await;
    assert_eq!(app.me(&fourth.access).await.status(), 200);
    let listed = sessions(&app, &fourth.access).await.json();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);
    // A dead token asking for "everywhere" ends nothing more.
    assert_eq!(logout(&app, &third.access, "all=true").await.status(), 200);
    assert_eq!(app.me(&fourth.access).await.status(), 200);
}

#[tokio::test]
async fn revoke_always_answers_200_and_a_known_token_ends_its_session() {
    let app = TestApp::new().await;
    let (username, pair) = app.user_with_pair().await;
    let other = app.another_session(&username).await;
    let unknown = shared::domain::RefreshToken::generate(Uuid::new_v4(), Uuid::now_v7());
    for body in [
        json!({"refresh_token": unknown.expose()}),
        json!({"refresh_token": "anything at all"}),
        json!({"refresh_token": pair.access}),
    ] {
        let response = revoke(&app, body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json()["success"], true);
    }
    for body in [
        json!({}),
        json!({"refresh_token": 1}),
        json!({"refresh_token": ""}),
    ] {
        assert_eq!(field_names(&revoke(&app, body).await), ["refresh_token"]);
    }
    assert_eq!(
        app.me(&pair.access).await.status(),
        200,
        "nothing ended yet"
    );

    assert_eq!(
        revoke(&app, json!({"refresh_token": pair.refresh}))
            .await
            .status(),
        200
    );
    assert_eq!(app.me(&pair.access).await.status(), 401);
    assert_invalid_refresh(&app.refresh(&pair.refresh).await);
    assert_eq!(
        revoke(&app, json!({"refresh_token": pair.refresh}))
            .await
            .status(),
        200
    );
    // A spent token of a live session ends it too.
    let next = Pair::of(&app.refresh(&other.refresh).await);
    assert_eq!(
        revoke(&app, json!({"refresh_token": other.refresh}))
            .await
            .status(),
        200
    );
    assert_eq!(app.me(&next.access).await.status(), 401);
}

/// The limiter's one batch read named the user and the session twice (the bearer token's and
/// the refresh token's), which DynamoDB refuses: both routes answered 500, and a sign-out
/// through revoke left the session alive (second security review, item 2).
#[tokio::test]
async fn refresh_and_revoke_work_beside_the_callers_own_bearer_token() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    let request = event("POST", "/api/auth/refresh")
        .bearer(&pair.access)
        .json(&json!({"refresh_token": pair.refresh}))
        .build();
    let next = Pair::of(&app.call(&REFRESH, request).await);
    let request = event("POST", "/api/auth/revoke")
        .bearer(&next.access)
        .json(&json!({"refresh_token": next.refresh}))
        .build();
    let revoked = app.call(&REVOKE, request).await;
    assert_eq!(revoked.status(), 200, "{}", revoked.text());
    assert_eq!(
        app.me(&next.access).await.status(),
        401,
        "the session ended"
    );
    assert_invalid_refresh(&app.refresh(&next.refresh).await);
}

/// A password change (or "log out everywhere") committed while a login on the old password is
/// between its verification and its session's write: the login answers 401 as for a wrong
/// password, starts nothing, and its attempt counts as a failure (second security review, item
/// 1: both answered 200 and the login's session outlived the change).
#[tokio::test]
async fn a_login_verified_against_a_credential_that_changed_meanwhile_starts_no_session() {
    let app = TestApp::new().await;
    // Login's calls after the limiter's: the reservation (TransactWriteItems #1), argon2id,
    // last_login (UpdateItem #2), the session (TransactWriteItems #2).
    let cases = [
        ("UpdateItem", 2, "change-password"),
        ("TransactWriteItems", 2, "change-password"),
        ("TransactWriteItems", 2, "logout-all"),
    ];
    for (operation, nth, racing) in cases {
        let case = format!("{racing} before {operation} #{nth}");
        let (username, pair) = app.user_with_pair().await;
        let access = pair.access.clone();
        let race = async move {
            let other = TestApp::new().await;
            let response = match racing {
                "change-password" => {
                    let body =
                        json!({"old_password": PASSWORD, "new_password": "Fog-Compute-2025"});
                    change_password(&other, &access, body).await
                }
                _ => logout(&other, &access, "all=true").await,
            };
            assert_eq!(response.status(), 200, "{}", response.text());
        };
        let interleave = crate::support::interleave::Interleave::before(operation, nth, race);
        let racing_app = TestApp::with_interceptor(interleave.clone()).await;
        let login = racing_app.login(&username, PASSWORD).await;
        assert!(interleave.ran(), "{case}");
        assert_eq!(login.status(), 401, "{case}: {}", login.text());
        assert_eq!(
            login.json()["detail"],
            "Incorrect username or password",
            "{case}"
        );

        let attempts = app
            .item(&shared::store::keys::login_failures(&username))
            .await
            .unwrap();
        assert_eq!(attempts["attempts"].as_m().unwrap().len(), 1, "{case}");
        if racing == "change-password" {
            let listed = sessions(&app, &pair.access).await;
            assert_eq!(listed.status(), 200, "{case}");
            assert_eq!(
                listed.json()["sessions"].as_array().unwrap().len(),
                1,
                "{case}: the changing session alone"
            );
        }
    }
}

#[tokio::test]
async fn the_session_list_shows_the_users_live_sessions_newest_first() {
    let app = TestApp::new().await;
    let username = unique_username();
    assert_eq!(app.register(&username).await.status(), 201);
    let first = Pair::of(
        &app.login_from(&username, "198.51.100.7", "Firefox/128.0")
            .await,
    );
    let second = Pair::of(
        &app.login_from(&username, "198.51.100.8", "curl/8.5 <script>\u{202e}")
            .await,
    );
    let (_, stranger) = app.user_with_pair().await;

    let listed = sessions(&app, &first.access).await;
    assert_eq!(listed.status(), 200);
    let body = listed.json();
    let items = body["sessions"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    let ids: Vec<String> = items
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        [
            app.claims(&second.access).sid.to_string(),
            app.claims(&first.access).sid.to_string()
        ],
        "newest first"
    );
    let mut fields: Vec<&str> = items[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "current",
            "id",
            "last_used_at",
            "source_ip",
            "user_agent"
        ]
    );
    assert_eq!(
        (&items[0]["current"], &items[1]["current"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(items[1]["source_ip"], "198.51.100.7");
    assert_eq!(items[1]["user_agent"], "Firefox/128.0");
    assert_eq!(items[0]["user_agent"], "curl/8.5 &lt;script&gt;");
    assert!(
        !body.to_string().contains("refresh"),
        "no token in the list"
    );

    // A refresh moves last_used_at; the list seen from the other session marks that one.
    let later = TestApp::later(Duration::seconds(30)).await;
    let refreshed = Pair::of(&later.refresh(&first.refresh).await);
    let body = sessions(&app, &second.access).await.json();
    let items = body["sessions"].as_array().unwrap();
    assert_eq!(items[0]["current"], true);
    assert_ne!(items[1]["last_used_at"], items[1]["created_at"]);
    assert_eq!(app.me(&refreshed.access).await.status(), 200);

    let theirs = sessions(&app, &stranger.access).await.json();
    assert_eq!(theirs["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_session_is_ended_by_its_own_user_alone() {
    let app = TestApp::new().await;
    let (username, first) = app.user_with_pair().await;
    let second = app.another_session(&username).await;
    let (_, stranger) = app.user_with_pair().await;
    let second_id = app.claims(&second.access).sid.to_string();

    for (access, id) in [
        (&stranger.access, second_id.as_str()),
        (&first.access, &Uuid::now_v7().to_string()),
        (&first.access, "not-a-session-id"),
        (&first.access, "%00"),
    ] {
        let response = delete_session(&app, access, id).await;
        assert_eq!(response.status(), 404, "{id}: {}", response.text());
        assert_eq!(response.json()["detail"], "Session not found");
    }
    assert_eq!(app.me(&second.access).await.status(), 200, "untouched");

    let response = delete_session(&app, &first.access, &second_id).await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(response.json()["id"], second_id);
    assert_eq!(app.me(&second.access).await.status(), 401);
    assert_invalid_refresh(&app.refresh(&second.refresh).await);
    assert_eq!(
        delete_session(&app, &first.access, &second_id)
            .await
            .status(),
        404
    );
    let listed = sessions(&app, &first.access).await.json();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);
    // Its own session too: that is a logout.
    let own = app.claims(&first.access).sid.to_string();
    assert_eq!(
        delete_session(&app, &first.access, &own).await.status(),
        200
    );
    assert_eq!(app.me(&first.access).await.status(), 401);
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_and_keeps_this_one() {
    let app = TestApp::new().await;
    let (username, current) = app.user_with_pair().await;
    let other = app.another_session(&username).await;
    let new_password = "Fog-Compute-2025-Renewed";

    // Refused changes change nothing.
    let missing = change_password(&app, &current.access, json!({})).await;
    assert_eq!(field_names(&missing), ["old_password", "new_password"]);
    for weak in ["short1A", "alllowercase1", "Password1"] {
        let response = change_password(
            &app,
            &current.access,
            json!({"old_password": PASSWORD, "new_password": weak}),
        )
        .await;
        assert_eq!(field_names(&response), ["new_password"], "{weak}");
    }
    let wrong = change_password(
        &app,
        &current.access,
        json!({"old_password": "Wrong-Password-1", "new_password": new_password}),
    )
    .await;
    assert_eq!(wrong.status(), 401, "{}", wrong.text());
    assert_eq!(wrong.json()["detail"], "Incorrect password");
    assert_eq!(app.me(&other.access).await.status(), 200);
    assert_eq!(app.login(&username, PASSWORD).await.status(), 200);

    let changed = change_password(
        &app,
        &current.access,
        json!({"old_password": PASSWORD, "new_password": new_password}),
    )
    .await;
    assert_eq!(changed.status(), 200, "{}", changed.text());
    assert_eq!(changed.json()["success"], true);
    assert!(!changed.text().contains(new_password));

    assert_eq!(
        app.me(&current.access).await.status(),
        200,
        "this session stays"
    );
    let refreshed = Pair::of(&app.refresh(&current.refresh).await);
    assert_eq!(app.me(&refreshed.access).await.status(), 200);
    assert_eq!(app.me(&other.access).await.status(), 401, "the others end");
    assert_invalid_refresh(&app.refresh(&other.refresh).await);
    assert_eq!(app.login(&username, PASSWORD).await.status(), 401);
    assert_eq!(app.login(&username, new_password).await.status(), 200);
    let listed = sessions(&app, &refreshed.access).await.json();
    assert_eq!(
        listed["sessions"].as_array().unwrap().len(),
        2,
        "this one and the new login"
    );
    // The old password no longer changes anything.
    let again = change_password(
        &app,
        &refreshed.access,
        json!({"old_password": PASSWORD, "new_password": "Another-Pass-2026"}),
    )
    .await;
    assert_eq!(again.status(), 401);
}

#[tokio::test]
async fn wrong_old_passwords_count_toward_the_login_lockout() {
    let app = TestApp::new().await;
    let (username, pair) = app.user_with_pair().await;
    for _ in 0..5 {
        let response = change_password(
            &app,
            &pair.access,
            json!({"old_password": "Wrong-Password-1", "new_password": "Fog-Compute-2025-Renewed"}),
        )
        .await;
        assert_eq!(response.status(), 401);
    }
    let locked = change_password(
        &app,
        &pair.access,
        json!({"old_password": PASSWORD, "new_password": "Fog-Compute-2025-Renewed"}),
    )
    .await;
    assert_eq!(locked.status(), 423, "{}", locked.text());
    assert!(locked.header("retry-after").is_some());
    assert!(
        locked.json()["detail"]
            .as_str()
            .unwrap()
            .starts_with("Account locked due to too many failed attempts. Try again in "),
        "{}",
        locked.text()
    );
    assert_eq!(
        app.login(&username, PASSWORD).await.status(),
        423,
        "one lockout"
    );
}

#[tokio::test]
async fn session_routes_need_a_live_session() {
    let app = TestApp::new().await;
    let (_, pair) = app.user_with_pair().await;
    assert_eq!(logout(&app, &pair.access, "").await.status(), 200);
    let id = app.claims(&pair.access).sid.to_string();
    for response in [
        sessions(&app, &pair.access).await,
        delete_session(&app, &pair.access, &id).await,
        change_password(
            &app,
            &pair.access,
            json!({"old_password": PASSWORD, "new_password": "Fog-Compute-2025-Renewed"}),
        )
        .await,
    ] {
        assert_eq!(response.status(), 401, "{}", response.text());
        assert_eq!(
            response.header("www-authenticate"),
            Some("Bearer error=\"invalid_token\"")
        );
    }
    let without_token = app
        .call(&LIST_SESSIONS, event("GET", "/api/auth/sessions").build())
        .await;
    assert_eq!(without_token.status(), 401);
    assert_eq!(without_token.header("www-authenticate"), Some("Bearer"));
}
