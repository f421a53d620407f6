//! The admin API (issue 17): the user list and the actions on a user account, for
//! administrators only (read from the table on every request); each action and its audit event
//! written together or not at all, with a fault at every DynamoDB call of the action.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::support::faults::{FAULTS, Fault, FaultInjector, RATE_LIMITER_CALLS, injected_at};
use crate::support::{EventBuilder, PASSWORD, TestApp, TestResponse, event};
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Context, RequestExt};
use serde_json::{Value, json};
use shared::domain::{AuditEvent, UserAction};
use shared::handlers::{ADMIN_LIST_USERS, ADMIN_USER_ACTION, LIST_JOBS, ME, REFRESH};
use shared::store::AuditQuery;
use shared::store::keys;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const ACTIONS: [UserAction; 5] = UserAction::ALL;

/// A user of the test: name, id and access token.
struct Account {
    username: String,
    id: Uuid,
    token: String,
}

async fn account(app: &TestApp) -> Account {
    let (username, token) = app.user_with_token().await;
    let id = app.state.jwt_keys().unwrap().verify(&token).unwrap().sub;
    Account {
        username,
        id,
        token,
    }
}

async fn admin(app: &TestApp) -> Account {
    let account = account(app).await;
    app.act_on(&account.username, UserAction::Promote).await;
    account
}

fn list_request(token: Option<&str>, query: &str) -> EventBuilder {
    let request = event("GET", "/api/admin/users").query(query);
    match token {
        Some(token) => request.bearer(token),
        None => request,
    }
}

async fn list(app: &TestApp, token: Option<&str>, query: &str) -> TestResponse {
    app.call(&ADMIN_LIST_USERS, list_request(token, query).build())
        .await
}

/// `POST /api/admin/users/{id}/{action}`, with the Lambda request id `request_id`.
fn action_request(token: Option<&str>, id: &str, action: &str) -> EventBuilder {
    let request = event("POST", &format!("/api/admin/users/{id}/{action}"))
        .path_parameter("id", id)
        .path_parameter("action", action);
    match token {
        Some(token) => request.bearer(token),
        None => request,
    }
}

async fn act(
    app: &TestApp,
    token: Option<&str>,
    target: impl ToString,
    action: impl ToString,
) -> TestResponse {
    let request = action_request(token, &target.to_string(), &action.to_string());
    app.call(&ADMIN_USER_ACTION, request.build()).await
}

fn assert_problem(response: &TestResponse, status: u16, detail: &str) {
    assert_eq!(response.status(), status, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.json()["detail"], detail, "{}", response.text());
}

/// The events of `kind` about `subject`, newest first.
async fn events(app: &TestApp, action: UserAction, subject: Uuid) -> Vec<AuditEvent> {
    let now = OffsetDateTime::now_utc();
    app.state
        .store
        .audit_events(&AuditQuery {
            at: now,
            kind: Some(action.event_type()),
            subject: Some(subject.to_string()),
            since: now - Duration::hours(1),
            until: now + Duration::hours(1),
            before: None,
            limit: 100,
        })
        .await
        .unwrap()
        .events
}

/// Every event about `subject`, whatever its type.
async fn all_events(app: &TestApp, subject: Uuid) -> Vec<AuditEvent> {
    let mut found = Vec::new();
    for action in ACTIONS {
        found.extend(events(app, action, subject).await);
    }
    found
}

async fn stored_user(app: &TestApp, id: Uuid) -> shared::domain::User {
    app.state.store.user(id).await.unwrap().expect("stored")
}

#[tokio::test]
async fn every_admin_route_answers_401_without_a_token_and_403_to_a_non_administrator() {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let user = account(&app).await;
    let target = account(&app).await;

    assert_eq!(list(&app, None, "").await.status(), 401);
    assert_problem(
        &list(&app, Some(&user.token), "").await,
        403,
        "Administrator privileges required",
    );
    assert_eq!(list(&app, Some(&admin.token), "").await.status(), 200);

    for action in ACTIONS {
        let before = stored_user(&app, target.id).await;
        assert_eq!(
            act(&app, None, target.id, action).await.status(),
            401,
            "{action}"
        );
        assert_problem(
            &act(&app, Some(&user.token), target.id, action).await,
            403,
            "Administrator privileges required",
        );
        // The non-administrator's 403 comes before the path is read.
        assert_problem(
            &act(&app, Some(&user.token), "not-an-id", "explode").await,
            403,
            "Administrator privileges required",
        );
        assert_eq!(stored_user(&app, target.id).await, before, "{action}");
        assert!(all_events(&app, target.id).await.is_empty(), "{action}");
    }
    for action in ACTIONS {
        let answered = act(&app, Some(&admin.token), target.id, action).await;
        assert_eq!(answered.status(), 200, "{action}: {}", answered.text());
    }
    // An API key is refused whatever its owner, an administrator included.
    let (_, secret) = app
        .key(
            &admin.token,
            &json!({"name": "agent", "scopes": ["jobs:read"]}),
        )
        .await;
    let with_key = app
        .call(
            &ADMIN_LIST_USERS,
            event("GET", "/api/admin/users").api_key(&secret).build(),
        )
        .await;
    assert_eq!(with_key.status(), 403, "{}", with_key.text());
    let with_key = app
        .call(
            &ADMIN_USER_ACTION,
            action_request(None, &target.id.to_string(), "promote")
                .api_key(&secret)
                .build(),
        )
        .await;
    assert_eq!(with_key.status(), 403, "{}", with_key.text());
    assert!(!stored_user(&app, target.id).await.is_admin);
}

#[tokio::test]
async fn a_promotion_takes_effect_on_the_next_request_whatever_the_token_says() {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let user = account(&app).await;
    assert_eq!(list(&app, Some(&user.token), "").await.status(), 403);
    let promoted = act(&app, Some(&admin.token), user.id, "promote").await;
    assert_eq!(promoted.status(), 200, "{}", promoted.text());
    assert_eq!(promoted.json()["is_admin"], true);
    // The token was issued before the promotion; the table says administrator now.
    assert_eq!(list(&app, Some(&user.token), "").await.status(), 200);
    let demoted = act(&app, Some(&admin.token), user.id, "demote").await;
    assert_eq!(demoted.json()["is_admin"], false);
    assert_eq!(list(&app, Some(&user.token), "").await.status(), 403);
}

#[tokio::test]
async fn the_list_walks_every_user_in_username_order_and_filters_by_prefix() {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let prefix = format!("l{}", &Uuid::new_v4().simple().to_string()[..10]);
    let mut names: Vec<String> = ["c", "a", "b0", "b", "e", "d"]
        .iter()
        .map(|suffix| format!("{prefix}{suffix}"))
        .collect();
    for name in &names {
        assert_eq!(app.register(name).await.status(), 201);
    }
    // Beside the prefix, on both sides: not listed with it.
    let shorter = prefix[..prefix.len() - 1].to_owned();
    let (before, after) = (shorter.clone(), format!("{shorter}z"));
    for name in [&before, &after] {
        assert_eq!(app.register(name).await.status(), 201);
    }
    names.sort();

    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            // In any case: usernames are stored lower-cased.
            None => format!("q={}&limit=4", prefix.to_uppercase()),
            Some(cursor) => format!("q={prefix}&limit=4&cursor={cursor}"),
        };
        let page = list(&app, Some(&admin.token), &query).await;
        assert_eq!(page.status(), 200, "{}", page.text());
        let body = page.json();
        let users = body["users"].as_array().unwrap();
        assert!(users.len() <= 4);
        for user in users {
            let mut fields: Vec<&str> = user
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
                    "email",
                    "email_verified",
                    "id",
                    "is_active",
                    "is_admin",
                    "last_login",
                    "username"
                ]
            );
            walked.push(user["username"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, names);
    assert_eq!(pages, 2);

    // The whole list holds them in order too, with the neighbours where they sort.
    let whole = list(&app, Some(&admin.token), "limit=100").await;
    assert_eq!(whole.status(), 200);
    // A full answer is the one page of a small table; a full table goes on.
    let listed: Vec<String> = whole.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["username"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "username order");

    let exact = list(&app, Some(&admin.token), &format!("q={}", names[1])).await;
    let exact: Vec<String> = exact.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(exact, [names[1].clone(), names[2].clone()], "b, then b0");
}

#[tokio::test]
async fn bad_list_parameters_are_refused() {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    for (query, field) in [
        ("q=", "q"),
        ("q=al.ice", "q"),
        ("q=%C3%A9", "q"),
        (&*format!("q={}", "a".repeat(51)), "q"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
    ] {
        let refused = list(&app, Some(&admin.token), query).await;
        assert_eq!(refused.status(), 422, "{query}: {}", refused.text());
        assert_eq!(refused.json()["errors"][0]["field"], field, "{query}");
    }
    for cursor in ["!!!", "QUxJQ0U", "YQ", "x"] {
        let refused = list(&app, Some(&admin.token), &format!("cursor={cursor}")).await;
        assert_problem(&refused, 400, "Invalid cursor");
    }
    let twice = list(&app, Some(&admin.token), "q=a&q=b").await;
    assert_eq!(twice.status(), 400, "{}", twice.text());
}

#[tokio::test]
async fn deactivation_ends_every_access_of_the_user_at_once() {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let user = account(&app).await;
    let login = app.login(&user.username, PASSWORD).await;
    let refresh_token = login.json()["refresh_token"].as_str().unwrap().to_owned();
    let (_, secret) = app
        .key(
            &user.token,
            &json!({"name": "agent", "scopes": ["jobs:read"]}),
        )
        .await;
    let me = |token: String| {
        let app = &app;
        async move {
            app.call(&ME, event("GET", "/api/auth/me").bearer(&token).build())
                .await
        }
    };
    let jobs_with_key = || {
        app.call(
            &LIST_JOBS,
            event("GET", "/api/scheduler/jobs").api_key(&secret).build(),
        )
    };
    assert_eq!(me(user.token.clone()).await.status(), 200);
    assert_eq!(jobs_with_key().await.status(), 200);

    let deactivated = act(&app, Some(&admin.token), user.id, "deactivate").await;
    assert_eq!(deactivated.status(), 200, "{}", deactivated.text());
    assert_eq!(deactivated.json()["is_active"], false);
    assert_eq!(deactivated.json()["id"], user.id.to_string());

    // The very next request of each credential the user holds.
    assert_eq!(me(user.token.clone()).await.status(), 401);
    assert_eq!(jobs_with_key().await.status(), 401);
    let refreshed = app
        .call(
            &REFRESH,
            event("POST", "/api/auth/refresh")
                .json(&json!({"refresh_token": refresh_token}))
                .build(),
        )
        .await;
    assert_problem(&refreshed, 403, "Account is disabled");
    let relogin = app.login(&user.username, PASSWORD).await;
    assert_problem(&relogin, 403, "Account is disabled");

    let activated = act(&app, Some(&admin.token), user.id, "activate").await;
    assert_eq!(activated.json()["is_active"], true);
    assert_eq!(jobs_with_key().await.status(), 200);
    assert_eq!(app.login(&user.username, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn unlock_lets_the_right_password_in_again() {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let user = account(&app).await;
    for _ in 0..5 {
        let wrong = app.login(&user.username, "Wrong-Password-1").await;
        assert_eq!(wrong.status(), 401, "{}", wrong.text());
    }
    let locked = app.login(&user.username, PASSWORD).await;
    assert_eq!(locked.status(), 423, "{}", locked.text());

    let unlocked = act(&app, Some(&admin.token), user.id, "unlock").await;
    assert_eq!(unlocked.status(), 200, "{}", unlocked.text());
    assert_eq!(unlocked.json()["username"], user.username);
    let login = app.login(&user.username, PASSWORD).await;
    assert_eq!(login.status(), 200, "{}", login.text());
    // The lockout counts afresh: four more wrong passwords do not lock.
    for _ in 0..4 {
        assert_eq!(
            app.login(&user.username, "Wrong-Password-1").await.status(),
            401
        );
    }
    assert_eq!(app.login(&user.username, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn an_unlock_racing_a_wrong_password_leaves_the_record_consistent() {
    // A reservation computed from the record before the unlock must not write over it: the
    // unlock moves the version on (it never goes back to an old one).
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let user = account(&app).await;
    for _ in 0..3 {
        assert_eq!(
            app.login(&user.username, "Wrong-Password-1").await.status(),
            401
        );
    }
    let record = |app: &TestApp| {
        let client = app.dynamodb();
        let table = app.table().to_owned();
        let key = keys::login_failures(&user.username).attributes();
        async move {
            client
                .get_item()
                .table_name(table)
                .set_key(Some(key))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
                .unwrap()
        }
    };
    let version = |item: &HashMap<String, AttributeValue>| -> i64 {
        item["version"].as_n().unwrap().parse().unwrap()
    };
    let before = record(&app).await;
    assert_eq!(
        act(&app, Some(&admin.token), user.id, "unlock")
            .await
            .status(),
        200
    );
    let after = record(&app).await;
    assert_eq!(version(&after), version(&before) + 1);
    assert!(!after.contains_key("attempts"), "{after:?}");
    // A reservation from the old record is refused and redone from the new one.
    let stale = app
        .state
        .store
        .replace_login_attempts(
            &user.username,
            version(&before) as u64,
            &[(Uuid::new_v4(), OffsetDateTime::now_utc().unix_timestamp())],
            OffsetDateTime::now_utc().unix_timestamp() + 900,
            &[],
        )
        .await
        .unwrap();
    assert!(matches!(stale, shared::store::AttemptsWrite::Changed(_)));
    // Unlocking a username with no record (it never tried to log in) makes an empty one,
    // expiring at once.
    let fresh = crate::support::unique_username();
    assert_eq!(app.register(&fresh).await.status(), 201);
    let fresh_id = app
        .state
        .store
        .user_by_username(&fresh)
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        act(&app, Some(&admin.token), fresh_id, "unlock")
            .await
            .status(),
        200
    );
    let empty = {
        let client = app.dynamodb();
        client
            .get_item()
            .table_name(app.table())
            .set_key(Some(keys::login_failures(&fresh).attributes()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    };
    assert_eq!(version(&empty), 1);
    let expires: i64 = empty["expires_at"].as_n().unwrap().parse().unwrap();
    assert!(expires <= OffsetDateTime::now_utc().unix_timestamp());
    assert_eq!(app.login(&fresh, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn an_administrator_cannot_deactivate_or_demote_themselves() {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let before = stored_user(&app, admin.id).await;
    for action in [UserAction::Deactivate, UserAction::Demote] {
        let refused = act(&app, Some(&admin.token), admin.id, action).await;
        assert_problem(
            &refused,
            409,
            &format!("An administrator cannot {action} their own account"),
        );
    }
    assert_eq!(stored_user(&app, admin.id).await, before, "nothing written");
    assert!(
        all_events(&app, admin.id)
            .await
            .iter()
            .all(|event| event.actor.as_deref() == Some("fogctl")),
        "only fogctl's promotion"
    );
    assert_eq!(list(&app, Some(&admin.token), "").await.status(), 200);
    // What leaves them an administrator is allowed, and changes nothing but the lockout.
    for action in ["activate", "promote"] {
        let same = act(&app, Some(&admin.token), admin.id, action).await;
        assert_eq!(same.status(), 200, "{}", same.text());
    }
    assert!(
        events(&app, UserAction::Activate, admin.id)
            .await
            .is_empty()
    );
    let unlocked = act(&app, Some(&admin.token), admin.id, "unlock").await;
    assert_eq!(unlocked.status(), 200, "{}", unlocked.text());
    assert_eq!(events(&app, UserAction::Unlock, admin.id).await.len(), 1);
}

#[tokio::test]
async fn an_administrator_demoted_meanwhile_acts_no_more() {
    // Two administrators demote each other: the one demoted first is refused, so one is left.
    let app = TestApp::new().await;
    let first = admin(&app).await;
    let second = admin(&app).await;
    let target = account(&app).await;
    // `second`'s request read `second` an administrator; `first` demotes `second` before that
    // request's transaction. Modelled with the store: `second` acts on a target read earlier.
    let demoted = act(&app, Some(&first.token), second.id, "demote").await;
    assert_eq!(demoted.status(), 200);
    let context = shared::domain::AuditContext {
        actor: shared::domain::Actor::User(second.id),
        source_ip: Some("203.0.113.10".into()),
        request_id: None,
        at: OffsetDateTime::now_utc(),
        retention_days: 90,
    };
    let target_user = stored_user(&app, target.id).await;
    let refused = app
        .state
        .store
        .act_on_user(&target_user, UserAction::Promote, &context)
        .await;
    assert!(
        matches!(refused, Err(shared::store::UserActionError::ActorNotAdmin)),
        "{refused:?}"
    );
    assert!(!stored_user(&app, target.id).await.is_admin);
    assert!(
        events(&app, UserAction::Promote, target.id)
            .await
            .is_empty()
    );
    assert!(stored_user(&app, first.id).await.is_admin);
}

#[tokio::test]
async fn a_flag_that_has_the_value_already_writes_nothing_and_records_nothing() {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let user = account(&app).await;
    for action in ["activate", "demote"] {
        let same = act(&app, Some(&admin.token), user.id, action).await;
        assert_eq!(same.status(), 200, "{}", same.text());
        assert_eq!(same.json()["is_active"], true);
        assert_eq!(same.json()["is_admin"], false);
    }
    assert!(all_events(&app, user.id).await.is_empty());
    // Twice the same change: one event.
    for _ in 0..2 {
        assert_eq!(
            act(&app, Some(&admin.token), user.id, "deactivate")
                .await
                .status(),
            200
        );
    }
    assert_eq!(events(&app, UserAction::Deactivate, user.id).await.len(), 1);
}

#[tokio::test]
async fn concurrent_identical_actions_record_one_event() {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let user = account(&app).await;
    // Both read the user active, before either writes: the condition lets one through.
    let target = stored_user(&app, user.id).await;
    let context = |at| shared::domain::AuditContext {
        actor: shared::domain::Actor::User(admin.id),
        source_ip: None,
        request_id: None,
        at,
        retention_days: 90,
    };
    let now = OffsetDateTime::now_utc();
    let (one, other) = (context(now), context(now));
    let (first, second) = tokio::join!(
        app.state
            .store
            .act_on_user(&target, UserAction::Deactivate, &one),
        app.state
            .store
            .act_on_user(&target, UserAction::Deactivate, &other),
    );
    let done = [first.unwrap(), second.unwrap()]
        .iter()
        .filter(|outcome| matches!(outcome, shared::store::UserActionOutcome::Done { .. }))
        .count();
    assert_eq!(done, 1);
    assert_eq!(events(&app, UserAction::Deactivate, user.id).await.len(), 1);
    assert!(!stored_user(&app, user.id).await.is_active);
}

#[tokio::test]
async fn unknown_actions_unknown_users_and_malformed_ids() {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let user = account(&app).await;
    for action in ["delete", "Promote", "promote2", ""] {
        let unknown = act(&app, Some(&admin.token), user.id, action).await;
        assert_eq!(unknown.status(), 404, "{action:?}: {}", unknown.text());
        assert_eq!(
            unknown.header("content-type"),
            Some("application/problem+json")
        );
    }
    let missing = act(&app, Some(&admin.token), Uuid::new_v4(), "promote").await;
    assert_problem(&missing, 404, "User not found");
    for id in ["42", "not-a-uuid", ""] {
        let malformed = act(&app, Some(&admin.token), id, "promote").await;
        assert_eq!(malformed.status(), 422, "{id:?}: {}", malformed.text());
        assert_eq!(malformed.json()["errors"][0]["field"], "id");
    }
    assert!(all_events(&app, user.id).await.is_empty());
}

#[tokio::test]
async fn each_action_records_exactly_one_event_with_its_fields() {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let user = account(&app).await;
    // Each changes something: the user starts active, not an administrator.
    for action in [
        UserAction::Promote,
        UserAction::Demote,
        UserAction::Deactivate,
        UserAction::Activate,
        UserAction::Unlock,
    ] {
        let request_id = Uuid::new_v4().to_string();
        let mut context = Context::default();
        context.request_id = request_id.clone();
        let request = action_request(Some(&admin.token), &user.id.to_string(), action.as_str())
            .source_ip("198.51.100.23")
            .build()
            .with_lambda_context(context);
        let answered = app.call(&ADMIN_USER_ACTION, request).await;
        assert_eq!(answered.status(), 200, "{action}: {}", answered.text());

        let recorded = events(&app, action, user.id).await;
        assert_eq!(recorded.len(), 1, "{action}: {recorded:?}");
        let event = &recorded[0];
        assert_eq!(event.kind, action.event_type());
        assert_eq!(event.actor, Some(admin.id.to_string()), "{action}");
        assert_eq!(event.subject, user.id.to_string(), "{action}");
        assert_eq!(
            event.source_ip.as_deref(),
            Some("198.51.100.23"),
            "{action}"
        );
        assert_eq!(
            event.request_id.as_deref(),
            Some(request_id.as_str()),
            "{action}"
        );
        assert_eq!(
            Value::Object(event.detail.clone()),
            json!({"username": user.username}),
            "{action}"
        );
        let text = serde_json::to_string(event).unwrap();
        for secret in [PASSWORD, &admin.token, &user.token, "password", "hash"] {
            assert!(!text.contains(secret), "{action}: {text}");
        }
    }
    assert_eq!(all_events(&app, user.id).await.len(), 5);
    // fogctl's own: the same event, by `fogctl`, from nowhere.
    app.act_on(&user.username, UserAction::Promote).await;
    let by_fogctl = events(&app, UserAction::Promote, user.id).await;
    assert_eq!(by_fogctl.len(), 2);
    assert_eq!(by_fogctl[0].actor.as_deref(), Some("fogctl"));
    assert_eq!(
        (
            by_fogctl[0].source_ip.as_deref(),
            by_fogctl[0].request_id.as_deref()
        ),
        (None, None)
    );
}

#[tokio::test]
async fn an_action_and_its_first_read_take_two_round_trips_after_the_limiter() {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let user = account(&app).await;
    let injector = FaultInjector::start().await;
    let observed = TestApp::with_fault_injector(&injector).await;
    for (action, calls) in [
        (
            "deactivate",
            &["UpdateItem", "BatchGetItem", "TransactWriteItems"][..],
        ),
        // Nothing to change: the limiter's round trip alone.
        ("deactivate", &["UpdateItem", "BatchGetItem"][..]),
        (
            "unlock",
            &["UpdateItem", "BatchGetItem", "TransactWriteItems"][..],
        ),
    ] {
        injector.observe();
        let answered = act(&observed, Some(&admin.token), user.id, action).await;
        assert_eq!(answered.status(), 200, "{}", answered.text());
        assert_eq!(injector.calls(), calls, "{action}");
    }
    injector.observe();
    assert_eq!(list(&observed, Some(&admin.token), "").await.status(), 200);
    assert_eq!(injector.calls(), ["UpdateItem", "BatchGetItem", "Query"]);
}

// ---------------------------------------------------------------------------------------------
// Faults: each action with each DynamoDB call failing in turn.

/// What an action may change: the target's profile and its username's failed logins.
async fn snapshot(app: &TestApp, username: &str, id: Uuid) -> BTreeMap<String, Option<Value>> {
    let client = app.dynamodb();
    let mut items = BTreeMap::new();
    for (name, key) in [
        ("profile", keys::user(id)),
        ("login failures", keys::login_failures(username)),
    ] {
        let item = client
            .get_item()
            .table_name(app.table())
            .set_key(Some(key.attributes()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .map(|item| {
                let mut item: Vec<_> = item
                    .into_iter()
                    .filter(|(name, _)| name != "last_login")
                    .map(|(name, value)| (name, format!("{value:?}")))
                    .collect();
                item.sort();
                json!(item)
            });
        items.insert(name.to_owned(), item);
    }
    items
}

/// A target on which `action` changes something: deactivated first for `activate`, promoted
/// first for `demote` (by fogctl: its event has another type or actor).
async fn target_for(app: &TestApp, action: UserAction) -> Account {
    let target = account(app).await;
    match action {
        UserAction::Activate => app.act_on(&target.username, UserAction::Deactivate).await,
        UserAction::Demote => app.act_on(&target.username, UserAction::Promote).await,
        _ => {}
    }
    target
}

/// The events of `action` about `subject` by `actor`.
async fn events_by(app: &TestApp, action: UserAction, subject: Uuid, actor: Uuid) -> usize {
    events(app, action, subject)
        .await
        .iter()
        .filter(|event| event.actor == Some(actor.to_string()))
        .count()
}

async fn no_partial_effect_and_an_event_exactly_with_the_action(action: UserAction) {
    let app = TestApp::new().await;
    let admin = admin(&app).await;
    let injector = FaultInjector::start().await;
    let faulty = TestApp::with_fault_injector(&injector).await;

    let target = target_for(&app, action).await;
    let before = snapshot(&app, &target.username, target.id).await;
    injector.observe();
    let done = act(&faulty, Some(&admin.token), target.id, action).await;
    assert_eq!(done.status(), 200, "{}", done.text());
    let calls = injector.calls();
    assert_eq!(calls, ["UpdateItem", "BatchGetItem", "TransactWriteItems"]);
    let whole = snapshot(&app, &target.username, target.id).await;
    assert_ne!(before, whole, "{action} changes something");
    assert_eq!(events_by(&app, action, target.id, admin.id).await, 1);
    let written: BTreeSet<String> = injector
        .written_keys()
        .into_iter()
        .map(|(partition, _)| match partition.starts_with("AUDIT#") {
            true => "AUDIT#<day>".to_owned(),
            false => partition,
        })
        .collect();
    let acted_on = match action {
        UserAction::Unlock => keys::login_failures(&target.username),
        _ => keys::user(target.id),
    };
    let expected: BTreeSet<String> = [
        acted_on.partition().to_owned(),
        keys::user(admin.id).partition().to_owned(),
        "AUDIT#<day>".to_owned(),
    ]
    .into();
    assert_eq!(written, expected, "{action}: the items of its transaction");

    for fault in FAULTS {
        for (call, call_name) in (1..).zip(&calls) {
            if !injected_at(fault, call, call_name) {
                continue;
            }
            let case = format!("{action}, call {call} ({call_name}) {fault}");
            let target = target_for(&app, action).await;
            let before = snapshot(&app, &target.username, target.id).await;
            injector.arm(call, fault);
            let answered = act(&faulty, Some(&admin.token), target.id, action).await;
            let after = snapshot(&app, &target.username, target.id).await;
            let applied = after != before;
            let recorded = events_by(&app, action, target.id, admin.id).await;
            // The action and its event: both or neither.
            assert_eq!(recorded, usize::from(applied), "{case}: {after:?}");
            if call <= RATE_LIMITER_CALLS {
                // The limiter fails open: the action is done anyway.
                assert_eq!(answered.status(), 200, "{case}: {}", answered.text());
                assert!(applied, "{case}");
            } else {
                assert_eq!(answered.status(), 503, "{case}: {}", answered.text());
                assert_eq!(answered.header("retry-after"), Some("1"), "{case}");
                // Only a lost response leaves the committed transaction behind it.
                assert_eq!(applied, fault == Fault::ResponseLost, "{case}");
            }
            // Sent again without the fault: done (or found done), and recorded once in all, an
            // unlock (which always writes) once more.
            injector.observe();
            let again = act(&faulty, Some(&admin.token), target.id, action).await;
            assert_eq!(again.status(), 200, "{case}: retry {}", again.text());
            let expected = match action {
                UserAction::Unlock => usize::from(applied) + 1,
                _ => 1,
            };
            assert_eq!(
                events_by(&app, action, target.id, admin.id).await,
                expected,
                "{case}: after the retry"
            );
        }
    }
}

#[tokio::test]
async fn deactivation_under_faults() {
    no_partial_effect_and_an_event_exactly_with_the_action(UserAction::Deactivate).await;
}

#[tokio::test]
async fn activation_under_faults() {
    no_partial_effect_and_an_event_exactly_with_the_action(UserAction::Activate).await;
}

#[tokio::test]
async fn promotion_under_faults() {
    no_partial_effect_and_an_event_exactly_with_the_action(UserAction::Promote).await;
}

#[tokio::test]
async fn demotion_under_faults() {
    no_partial_effect_and_an_event_exactly_with_the_action(UserAction::Demote).await;
}

#[tokio::test]
async fn unlock_under_faults() {
    no_partial_effect_and_an_event_exactly_with_the_action(UserAction::Unlock).await;
}
