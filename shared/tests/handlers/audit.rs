//! The audit log: each action records exactly one event of its type with the fields,
//! a refused action records none (besides the failed login, which is itself an event), no event
//! holds a secret, events expire after the retention, and `GET /api/admin/audit` filters and
//! pages them for administrators only. (That a failure at any DynamoDB call leaves neither the
//! action nor its event is `faults.rs`, whose items include the events the writes name.)

use crate::support::{PASSWORD, TestApp, event, unique_username};
use serde_json::{Value, json};
use shared::domain::{AuditEvent, UserAction};
use shared::handlers;
use shared::ratelimit::MAX_FAILED_LOGINS;
use shared::store::AuditQuery;
use time::OffsetDateTime;
use uuid::Uuid;

const SOURCE_IP: &str = "198.51.100.7";

/// Every event about `subject` (a user id, or a username no user has), newest first.
async fn events_of(app: &TestApp, subject: &str) -> Vec<AuditEvent> {
    let now = app.state.clock.now();
    app.state
        .store
        .audit_events(&AuditQuery {
            at: now,
            kind: None,
            subject: Some(subject.to_owned()),
            since: now - time::Duration::days(1),
            until: now + time::Duration::days(1),
            before: None,
            limit: 100,
        })
        .await
        .unwrap()
        .events
}

/// The event types about `subject`, oldest first.
async fn types_of(app: &TestApp, subject: &str) -> Vec<String> {
    let mut types: Vec<String> = events_of(app, subject)
        .await
        .iter()
        .map(|event| event.kind.as_str().to_owned())
        .collect();
    types.reverse();
    types
}

fn json_of(event: &AuditEvent) -> Value {
    serde_json::to_value(event).unwrap()
}

async fn login_from(app: &TestApp, username: &str, password: &str) -> u16 {
    let body = json!({"username": username, "password": password});
    app.call(
        &handlers::LOGIN,
        event("POST", "/api/auth/login")
            .source_ip(SOURCE_IP)
            .json(&body)
            .build(),
    )
    .await
    .status()
}

/// A new user's name, id and token (registered and logged in).
async fn user(app: &TestApp) -> (String, String, String) {
    let (username, token) = app.user_with_token().await;
    let claims = app.state.jwt_keys().unwrap().verify(&token).unwrap();
    (username, claims.sub.to_string(), token)
}

#[tokio::test]
async fn registration_and_login_record_one_event_each_with_their_fields() {
    let app = TestApp::new().await;
    let username = unique_username();
    let body = json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD});
    let registered = app
        .call(
            &handlers::REGISTER,
            event("POST", "/api/auth/register")
                .source_ip(SOURCE_IP)
                .json(&body)
                .build(),
        )
        .await;
    assert_eq!(registered.status(), 201);
    let user_id = registered.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(login_from(&app, &username, PASSWORD).await, 200);

    let events = events_of(&app, &user_id).await;
    assert_eq!(
        types_of(&app, &user_id).await,
        ["user.registered", "login.succeeded"]
    );
    let [succeeded, registered] = [json_of(&events[0]), json_of(&events[1])];
    assert_eq!(registered["actor"], Value::Null);
    assert_eq!(registered["subject"], user_id.as_str());
    assert_eq!(registered["source_ip"], SOURCE_IP);
    assert_eq!(registered["detail"], json!({"username": username}));
    assert_eq!(succeeded["actor"], user_id.as_str());
    assert_eq!(succeeded["detail"]["username"], username.as_str());
    assert!(
        succeeded["detail"]["session_id"]
            .as_str()
            .unwrap()
            .parse::<Uuid>()
            .is_ok()
    );
    // Kept for the retention, then expired by the table's TTL.
    for event in &events {
        let expected = event.time + time::Duration::days(90);
        assert_eq!(event.expires_at, expected.unix_timestamp());
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_each_record_one_failure() {
    let app = TestApp::new().await;
    let (username, user_id, _) = user(&app).await;
    assert_eq!(login_from(&app, &username, "Wrong-Password-1").await, 401);
    let failed = events_of(&app, &user_id).await;
    assert_eq!(
        types_of(&app, &user_id).await,
        ["user.registered", "login.succeeded", "login.failed"]
    );
    let failed = json_of(&failed[0]);
    assert_eq!(failed["actor"], Value::Null);
    assert_eq!(
        failed["detail"],
        json!({"username": username, "reason": "bad_password"})
    );

    let nobody = unique_username();
    assert_eq!(login_from(&app, &nobody, PASSWORD).await, 401);
    let unknown = events_of(&app, &nobody).await;
    assert_eq!(unknown.len(), 1);
    assert_eq!(
        json_of(&unknown[0])["detail"],
        json!({"username": nobody, "reason": "unknown_user"})
    );

    // A name that cannot be a username is bad input: refused like any failure, and nothing is
    // stored for it (no lookup, no count, no event).
    let impossible = "no such <name> at all";
    assert_eq!(login_from(&app, impossible, PASSWORD).await, 401);
    assert!(events_of(&app, impossible).await.is_empty());
    assert!(
        events_of(&app, "no such &lt;name&gt; at all")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn the_failure_that_locks_records_the_lock_and_a_locked_attempt_records_its_refusal() {
    let app = TestApp::new().await;
    let (username, user_id, _) = user(&app).await;
    for _ in 0..MAX_FAILED_LOGINS {
        assert_eq!(login_from(&app, &username, "Wrong-Password-1").await, 401);
    }
    // Locked now, even for the right password.
    assert_eq!(login_from(&app, &username, PASSWORD).await, 423);
    let mut expected = vec!["user.registered", "login.succeeded"];
    expected.extend(["login.failed"; MAX_FAILED_LOGINS]);
    expected.extend(["login.locked", "login.failed"]);
    let types = types_of(&app, &user_id).await;
    // The lock is written with the failure that caused it, in one transaction: same order
    // within their millisecond is not promised, so compare the locking pair as a set.
    assert_eq!(types.len(), expected.len(), "{types:?}");
    assert_eq!(
        types[..MAX_FAILED_LOGINS + 1],
        expected[..MAX_FAILED_LOGINS + 1],
        "{types:?}"
    );
    let mut locking_pair = types[MAX_FAILED_LOGINS + 1..MAX_FAILED_LOGINS + 3].to_vec();
    locking_pair.sort();
    assert_eq!(locking_pair, ["login.failed", "login.locked"], "{types:?}");
    let last = json_of(&events_of(&app, &user_id).await[0]);
    assert_eq!(last["type"], "login.failed");
    assert_eq!(last["detail"]["reason"], "locked");
}

#[tokio::test]
async fn a_disabled_account_records_disabled_not_a_wrong_password() {
    let app = TestApp::new().await;
    let (username, user_id, _) = user(&app).await;
    app.act_on(&username, UserAction::Deactivate).await;
    assert_eq!(login_from(&app, &username, PASSWORD).await, 403);
    let events = events_of(&app, &user_id).await;
    assert_eq!(
        types_of(&app, &user_id).await,
        [
            "user.registered",
            "login.succeeded",
            "user.deactivated",
            "login.failed"
        ]
    );
    assert_eq!(json_of(&events[0])["detail"]["reason"], "disabled");
}

#[tokio::test]
async fn logouts_revocations_reuse_and_password_changes_record_their_events() {
    let app = TestApp::new().await;
    let (username, user_id, token) = user(&app).await;
    let logout = |token: &str, query: &str| {
        event("POST", "/api/auth/logout")
            .bearer(token)
            .query(query)
            .build()
    };
    assert_eq!(
        app.call(&handlers::LOGOUT, logout(&token, ""))
            .await
            .status(),
        200
    );
    // The same token again: revoked already, nothing more written.
    assert_eq!(
        app.call(&handlers::LOGOUT, logout(&token, ""))
            .await
            .status(),
        200
    );

    let everywhere = session(&app, &username).await;
    let access = everywhere["access_token"].as_str().unwrap();
    assert_eq!(
        app.call(&handlers::LOGOUT, logout(access, "all=true"))
            .await
            .status(),
        200
    );

    let revoked = session(&app, &username).await;
    let revoke = event("POST", "/api/auth/revoke")
        .json(&json!({"refresh_token": revoked["refresh_token"]}))
        .build();
    assert_eq!(app.call(&handlers::REVOKE, revoke).await.status(), 200);

    let reused = session(&app, &username).await;
    let refresh = |token: &Value| {
        event("POST", "/api/auth/refresh")
            .json(&json!({"refresh_token": token}))
            .build()
    };
    assert_eq!(
        app.call(&handlers::REFRESH, refresh(&reused["refresh_token"]))
            .await
            .status(),
        200
    );
    let later = TestApp::later(time::Duration::minutes(5)).await;
    assert_eq!(
        later
            .call(&handlers::REFRESH, refresh(&reused["refresh_token"]))
            .await
            .status(),
        401
    );

    let current = session(&app, &username).await;
    let change = event("POST", "/api/auth/change-password")
        .bearer(current["access_token"].as_str().unwrap())
        .json(&json!({"old_password": PASSWORD, "new_password": "Fog-Compute-2025"}))
        .build();
    assert_eq!(
        app.call(&handlers::CHANGE_PASSWORD, change).await.status(),
        200
    );

    let types = types_of(&app, &user_id).await;
    assert_eq!(
        types,
        [
            "user.registered",
            "login.succeeded",
            "logout",
            "login.succeeded",
            "logout",
            "login.succeeded",
            "token.revoked",
            "login.succeeded",
            "login.succeeded",
            "password.changed",
            // Five minutes later, by the clock of the app that presented the token again.
            "session.refresh_reused",
        ]
    );
    let events = events_of(&app, &user_id).await;
    let by_type = |kind: &str| -> Vec<Value> {
        events
            .iter()
            .map(json_of)
            .filter(|event| event["type"] == kind)
            .collect()
    };
    let logouts = by_type("logout");
    assert_eq!(logouts[0]["detail"], json!({"all_sessions": true}));
    assert!(logouts[1]["detail"]["session_id"].is_string());
    assert_eq!(logouts[1]["actor"], user_id.as_str());
    assert_eq!(by_type("token.revoked")[0]["actor"], user_id.as_str());
    assert_eq!(by_type("session.refresh_reused")[0]["actor"], Value::Null);
    assert!(by_type("password.changed")[0]["detail"]["session_id"].is_string());

    // No event holds a secret: no token, refresh token, password or hash of one.
    let secrets = [
        token.clone(),
        PASSWORD.to_owned(),
        "Fog-Compute-2025".to_owned(),
        everywhere["refresh_token"].as_str().unwrap().to_owned(),
        reused["refresh_token"].as_str().unwrap().to_owned(),
    ];
    let recorded = serde_json::to_string(&events).unwrap();
    for secret in &secrets {
        assert!(
            !recorded.contains(secret.as_str()),
            "an event holds a secret"
        );
    }
    assert!(
        !recorded.contains("$argon2"),
        "an event holds a password hash"
    );
}

#[tokio::test]
async fn api_keys_and_mints_record_their_events_without_the_secret() {
    let app = TestApp::new().await;
    let (_, admin_token) = app.admin_with_token().await;
    let admin_id = app
        .state
        .jwt_keys()
        .unwrap()
        .verify(&admin_token)
        .unwrap()
        .sub
        .to_string();
    let (key_id, secret) = app.key(&admin_token, &json!({"name": "ci"})).await;
    let revoke = event("DELETE", &format!("/api/keys/{key_id}"))
        .path_parameter("id", &key_id)
        .bearer(&admin_token)
        .build();
    assert_eq!(
        app.call(&handlers::REVOKE_API_KEY, revoke.clone())
            .await
            .status(),
        200
    );
    // Revoked already: 200 again, nothing written.
    assert_eq!(
        app.call(&handlers::REVOKE_API_KEY, revoke).await.status(),
        200
    );
    let events = events_of(&app, &admin_id).await;
    let key_events: Vec<Value> = events
        .iter()
        .map(json_of)
        .filter(|event| event["type"].as_str().unwrap().starts_with("apikey."))
        .collect();
    assert_eq!(key_events.len(), 2);
    assert_eq!(key_events[0]["type"], "apikey.revoked");
    assert_eq!(key_events[1]["type"], "apikey.created");
    for event in &key_events {
        assert_eq!(event["detail"], json!({"api_key_id": key_id}));
        assert_eq!(event["actor"], admin_id.as_str());
    }
    assert!(!serde_json::to_string(&events).unwrap().contains(&secret));

    let wallet = app.wallet(&admin_token).await;
    let mint = event("POST", "/api/tokenomics/mint")
        .bearer(&admin_token)
        .json(&json!({"address": wallet, "amount": "12.5"}))
        .build();
    let minted = app.call(&handlers::MINT, mint).await;
    assert_eq!(minted.status(), 200, "{}", minted.text());
    let minted_events = events_of(&app, &wallet).await;
    assert_eq!(minted_events.len(), 1);
    let minted_event = json_of(&minted_events[0]);
    assert_eq!(minted_event["type"], "tokens.minted");
    assert_eq!(minted_event["actor"], admin_id.as_str());
    assert_eq!(minted_event["detail"]["amount"], "12.5");
    assert_eq!(
        minted_event["detail"]["transaction_id"],
        minted.json()["transactionId"]
    );
}

/// A new session of `username`: the login's answer.
async fn session(app: &TestApp, username: &str) -> Value {
    let login = app.login(username, PASSWORD).await;
    assert_eq!(login.status(), 200);
    login.json()
}

/// `GET /api/admin/audit` as an administrator with `query`: 200, and its body.
async fn page(app: &TestApp, admin: &str, query: String) -> Value {
    let response = audit(app, Some(admin), &query).await;
    assert_eq!(response.status(), 200, "{query}: {}", response.text());
    response.json()
}

/// `GET /api/admin/audit` as `token`'s user with `query`.
async fn audit(app: &TestApp, token: Option<&str>, query: &str) -> crate::support::TestResponse {
    let mut request = event("GET", "/api/admin/audit").query(query);
    if let Some(token) = token {
        request = request.bearer(token);
    }
    app.call(&handlers::ADMIN_AUDIT, request.build()).await
}

#[tokio::test]
async fn only_administrators_read_the_log() {
    let app = TestApp::new().await;
    let (_, _, token) = user(&app).await;
    assert_eq!(audit(&app, None, "").await.status(), 401);
    let refused = audit(&app, Some(&token), "").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    let (_, admin) = app.admin_with_token().await;
    assert_eq!(audit(&app, Some(&admin), "limit=1").await.status(), 200);
}

#[tokio::test]
async fn the_log_filters_by_type_subject_and_time_and_pages_newest_first() {
    let app = TestApp::new().await;
    let (_, admin) = app.admin_with_token().await;
    let (username, user_id, _) = user(&app).await;
    for _ in 0..3 {
        assert_eq!(login_from(&app, &username, "Wrong-Password-1").await, 401);
    }
    let all = page(&app, &admin, format!("subject={user_id}")).await;
    let types: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "login.failed",
            "login.failed",
            "login.failed",
            "login.succeeded",
            "user.registered"
        ]
    );
    assert_eq!(all["next_cursor"], Value::Null);

    // Two pages of the failures, by type and subject.
    let first = page(
        &app,
        &admin,
        format!("subject={user_id}&type=login.failed&limit=2"),
    )
    .await;
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = page(
        &app,
        &admin,
        format!("subject={user_id}&type=login.failed&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(second["events"].as_array().unwrap().len(), 1);
    let ids: Vec<&Value> = first["events"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["events"].as_array().unwrap())
        .map(|event| &event["id"])
        .collect();
    let expected: Vec<&Value> = all["events"].as_array().unwrap()[..3]
        .iter()
        .map(|event| &event["id"])
        .collect();
    assert_eq!(ids, expected, "the pages, in order, are the three failures");

    // By time, without a subject: the day's partition, newest first, bounded by since/until.
    let registered_at = all["events"][4]["time"].as_str().unwrap().to_owned();
    let last_failure_at = all["events"][0]["time"].as_str().unwrap().to_owned();
    let window = page(
        &app,
        &admin,
        format!(
            "type=user.registered&since={}&until={}",
            urlencoded(&registered_at),
            urlencoded(&last_failure_at)
        ),
    )
    .await;
    assert!(
        window["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["subject"] == user_id.as_str()),
        "{window}"
    );
    let after = page(
        &app,
        &admin,
        format!("subject={user_id}&since={}", urlencoded(&last_failure_at)),
    )
    .await;
    assert_eq!(after["events"].as_array().unwrap().len(), 1);
    let before = page(
        &app,
        &admin,
        format!("subject={user_id}&until={}", urlencoded(&registered_at)),
    )
    .await;
    assert_eq!(before["events"].as_array().unwrap().len(), 1);
    assert_eq!(before["events"][0]["type"], "user.registered");
}

#[tokio::test]
async fn bad_queries_are_refused_with_every_reason() {
    let app = TestApp::new().await;
    let (_, admin) = app.admin_with_token().await;
    let refused = audit(
        &app,
        Some(&admin),
        "type=login.FAILED&since=yesterday&until=2026-01-01T00%3A00%3A00Z&limit=0",
    )
    .await;
    assert_eq!(refused.status(), 422, "{}", refused.text());
    let fields: Vec<String> = refused.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["type", "since", "limit"]);
    let inverted = audit(
        &app,
        Some(&admin),
        "since=2026-11-02T00%3A00%3A00Z&until=2026-11-01T00%3A00%3A00Z",
    )
    .await;
    assert_eq!(inverted.status(), 422);
    assert_eq!(
        audit(&app, Some(&admin), "cursor=nonsense").await.status(),
        400
    );
}

fn urlencoded(raw: &str) -> String {
    raw.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn a_walk_over_months_stops_at_its_bound_with_a_cursor_that_goes_on() {
    let app = TestApp::new().await;
    let now = OffsetDateTime::now_utc();
    // Four years back, one partition a month and nothing in them: a page reads 32 at most.
    let query = |before| AuditQuery {
        at: now,
        kind: Some(shared::domain::AuditEventType::UserUnlocked),
        subject: None,
        since: now - time::Duration::days(4 * 365),
        until: now - time::Duration::days(31),
        before,
        limit: 10,
    };
    let page = app.state.store.audit_events(&query(None)).await.unwrap();
    assert!(page.events.is_empty());
    let cursor = page.next.expect("the walk stopped at its bound");
    let second = app
        .state
        .store
        .audit_events(&query(Some(cursor)))
        .await
        .unwrap();
    assert!(second.events.is_empty());
    assert_eq!(second.next, None, "the rest fits in one page");
}

/// A login that fails at a DynamoDB call records no success and starts no session; once its
/// reservation is written, the reservation's provisional failure stands (the attempt counts as
/// failed in the lockout too). Sent again, it succeeds with exactly one `login.succeeded`.
#[tokio::test]
async fn a_login_failing_at_a_dynamodb_call_records_no_success() {
    use crate::support::faults::{Fault, FaultInjector};
    let injector = FaultInjector::start().await;
    let faulty = TestApp::with_fault_injector(&injector).await;
    let app = TestApp::new().await;
    // The limiter's two calls, the reservation, last_login, the session (and the release).
    for (call, standing_failures) in [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1)] {
        let (username, user_id, _) = user(&app).await;
        injector.arm(call, Fault::Unreachable);
        assert_eq!(
            login_from(&faulty, &username, PASSWORD).await,
            503,
            "call {call}"
        );
        let types = types_of(&app, &user_id).await;
        assert_eq!(
            types
                .iter()
                .filter(|kind| *kind == "login.succeeded")
                .count(),
            1,
            "call {call}: only the first login's success, {types:?}"
        );
        assert_eq!(
            types.iter().filter(|kind| *kind == "login.failed").count(),
            standing_failures,
            "call {call}: {types:?}"
        );
        injector.observe();
        assert_eq!(
            login_from(&faulty, &username, PASSWORD).await,
            200,
            "call {call}"
        );
        let types = types_of(&app, &user_id).await;
        assert_eq!(
            types
                .iter()
                .filter(|kind| *kind == "login.succeeded")
                .count(),
            2,
            "call {call}: {types:?}"
        );
    }
}

/// `count` copies of `request` at once, each its own request, through `endpoint`.
async fn concurrently(
    app: &TestApp,
    endpoint: &'static shared::http::Endpoint,
    request: crate::support::EventBuilder,
    count: usize,
) -> Vec<u16> {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (state, request) = (app.state, request.clone());
            tokio::spawn(async move { TestApp { state }.call(endpoint, request.build()).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().status());
    }
    statuses
}

fn count_of(types: &[String], kind: &str) -> usize {
    types.iter().filter(|recorded| *recorded == kind).count()
}

/// Second security review, item 4: 8 parallel revocations of one refresh token recorded 3
/// `token.revoked`, and 8 parallel replays of a spent one after the grace 4
/// `session.refresh_reused`. One state change, one event; the losers answer as for a session
/// already over.
#[tokio::test]
async fn parallel_endings_of_one_session_record_one_event() {
    let app = TestApp::new().await;
    let (username, user_id, _) = user(&app).await;
    let revoked = session(&app, &username).await;
    let revoke =
        event("POST", "/api/auth/revoke").json(&json!({"refresh_token": revoked["refresh_token"]}));
    assert_eq!(
        concurrently(&app, &handlers::REVOKE, revoke, 8).await,
        [200; 8]
    );

    let reused = session(&app, &username).await;
    let refresh =
        event("POST", "/api/auth/refresh").json(&json!({"refresh_token": reused["refresh_token"]}));
    assert_eq!(
        app.call(&handlers::REFRESH, refresh.clone().build())
            .await
            .status(),
        200
    );
    let later = TestApp::later(time::Duration::minutes(5)).await;
    assert_eq!(
        concurrently(&later, &handlers::REFRESH, refresh, 8).await,
        [401; 8]
    );

    let types = types_of(&app, &user_id).await;
    assert_eq!(count_of(&types, "token.revoked"), 1, "{types:?}");
    assert_eq!(count_of(&types, "session.refresh_reused"), 1, "{types:?}");
}

/// Second security review, item 5: ending one session through `DELETE /api/auth/sessions/{id}`
/// is recorded (`session.revoked`, the session's id in its detail); an ending that changes
/// nothing records nothing, and answers as before.
#[tokio::test]
async fn ending_a_session_is_recorded_once_and_an_ending_that_changes_nothing_never() {
    let app = TestApp::new().await;
    let (username, user_id, token) = user(&app).await;

    let ended = session(&app, &username).await;
    let ended_id = app
        .state
        .jwt_keys()
        .unwrap()
        .verify(ended["access_token"].as_str().unwrap())
        .unwrap()
        .sid
        .to_string();
    let delete = || {
        event("DELETE", &format!("/api/auth/sessions/{ended_id}"))
            .path_parameter("id", &ended_id)
            .bearer(&token)
            .build()
    };
    assert_eq!(
        app.call(&handlers::DELETE_SESSION, delete()).await.status(),
        200
    );
    assert_eq!(
        app.call(&handlers::DELETE_SESSION, delete()).await.status(),
        404
    );
    let revoke = |refresh: &Value| {
        event("POST", "/api/auth/revoke")
            .json(&json!({"refresh_token": refresh}))
            .build()
    };
    // Its refresh token: the session is over already.
    assert_eq!(
        app.call(&handlers::REVOKE, revoke(&ended["refresh_token"]))
            .await
            .status(),
        200
    );

    // A session "log out everywhere" ended: revoking its refresh token changes nothing.
    let behind = session(&app, &username).await;
    let everywhere = session(&app, &username).await;
    let logout = |token: &str, query: &str| {
        event("POST", "/api/auth/logout")
            .bearer(token)
            .query(query)
            .build()
    };
    assert_eq!(
        app.call(
            &handlers::LOGOUT,
            logout(everywhere["access_token"].as_str().unwrap(), "all=true")
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        app.call(&handlers::REVOKE, revoke(&behind["refresh_token"]))
            .await
            .status(),
        200
    );

    // A token whose session item is gone (past its TTL): logging out changes nothing.
    let gone = session(&app, &username).await;
    let gone_token = gone["access_token"].as_str().unwrap();
    let gone_sid = app
        .state
        .jwt_keys()
        .unwrap()
        .verify(gone_token)
        .unwrap()
        .sid;
    app.dynamodb()
        .delete_item()
        .table_name(app.table())
        .set_key(Some(shared::store::keys::session(gone_sid).attributes()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.call(&handlers::LOGOUT, logout(gone_token, ""))
            .await
            .status(),
        200
    );

    let types = types_of(&app, &user_id).await;
    assert_eq!(
        types,
        [
            "user.registered",
            "login.succeeded",
            "login.succeeded",
            "session.revoked",
            "login.succeeded",
            "login.succeeded",
            "logout",
            "login.succeeded",
        ]
    );
    let events = events_of(&app, &user_id).await;
    let revoked = events
        .iter()
        .map(json_of)
        .find(|event| event["type"] == "session.revoked")
        .unwrap();
    assert_eq!(revoked["actor"], user_id.as_str());
    assert_eq!(revoked["detail"], json!({"session_id": ended_id}));
}

/// Second security review, item 3: wrong old passwords on change-password locked the account
/// without a trace. They are recorded as login's are, saying where they came from.
#[tokio::test]
async fn wrong_old_passwords_on_change_password_are_recorded_like_wrong_logins() {
    let app = TestApp::new().await;
    let (_, user_id, token) = user(&app).await;
    let change = |old: &str| {
        event("POST", "/api/auth/change-password")
            .bearer(&token)
            .json(&json!({"old_password": old, "new_password": "Fog-Compute-2025"}))
            .build()
    };
    for _ in 0..MAX_FAILED_LOGINS {
        assert_eq!(
            app.call(&handlers::CHANGE_PASSWORD, change("Wrong-Password-1"))
                .await
                .status(),
            401
        );
    }
    let refused = app.call(&handlers::CHANGE_PASSWORD, change(PASSWORD)).await;
    assert!(matches!(refused.status(), 423 | 429), "{}", refused.text());

    let types = types_of(&app, &user_id).await;
    assert_eq!(types.len(), 2 + MAX_FAILED_LOGINS + 2, "{types:?}");
    assert_eq!(count_of(&types, "login.failed"), MAX_FAILED_LOGINS + 1);
    assert_eq!(count_of(&types, "login.locked"), 1);
    let events = events_of(&app, &user_id).await;
    let last = json_of(&events[0]);
    assert_eq!(last["type"], "login.failed");
    assert_eq!(last["detail"]["reason"], "locked");
    assert_eq!(last["detail"]["via"], "change-password");
    for event in events.iter().map(json_of) {
        if event["type"] == "login.failed" && event["detail"]["reason"] == "bad_password" {
            assert_eq!(event["detail"]["via"], "change-password", "{event}");
            assert_eq!(event["actor"], user_id.as_str());
        }
    }
}

/// Second security review, item 7: DynamoDB's TTL deletes an expired event days late at worst;
/// until then the log answered it. An event past its `expires_at` is never answered.
#[tokio::test]
async fn events_past_their_retention_are_not_answered_before_ttl_deletes_them() {
    let app = TestApp::new().await;
    let (_, admin) = app.admin_with_token().await;
    let subject = Uuid::new_v4().to_string();
    let now = app.state.clock.now();
    let recorded = |retention_days| {
        let context = shared::domain::AuditContext {
            retention_days,
            ..crate::support::audit_context(shared::domain::Actor::Fogctl, now)
        };
        context.event(shared::domain::AuditEventType::UserUnlocked, &subject)
    };
    let (expired, kept) = (recorded(-1), recorded(90));
    app.state
        .store
        .record_audit(&[expired.clone(), kept.clone()], &[])
        .await
        .unwrap();
    assert_eq!(
        events_of(&app, &subject)
            .await
            .iter()
            .map(|event| event.id)
            .collect::<Vec<_>>(),
        [kept.id]
    );
    for query in [
        format!("subject={subject}"),
        "type=user.unlocked&limit=100".to_owned(),
    ] {
        let listed = page(&app, &admin, query).await.to_string();
        assert!(!listed.contains(&expired.id.to_string()), "{listed}");
    }
    let listed = page(&app, &admin, format!("subject={subject}")).await;
    assert_eq!(listed["events"][0]["id"], kept.id.to_string());
}
