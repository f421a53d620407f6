//! The rate limiter in-process, against the local DynamoDB: atomicity, identities, headers,
//! brute-force lockout, stale counters and the failure policy.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{PASSWORD, TestApp, TestResponse, event, unique_username};
use aws_sdk_dynamodb::types::AttributeValue;
use shared::domain::UserAction;
use shared::handlers::{HEALTH, LIST_JOBS, LOGIN, ME, ROOT};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Waits, if need be, so that a burst of requests falls inside one 60-second window.
async fn start_of_a_window() {
    let elapsed = now_ms() % 60_000;
    if elapsed > 45_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - elapsed + 100)).await;
    }
}

fn unique_ip() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    format!("10.{}.{}.{}", bytes[0], bytes[1], bytes[2])
}

async fn get_root(app: &TestApp, ip: &str) -> TestResponse {
    app.call(&ROOT, event("GET", "/").source_ip(ip).build())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_against_a_limit_of_ten_admit_exactly_ten() {
    let app = TestApp::with_settings(&[("RATE_LIMIT_READ_PER_MIN", "10")]).await;
    let state = app.state;
    let ip = unique_ip();
    start_of_a_window().await;
    let requests: Vec<_> = (0..50)
        .map(|_| {
            let request = event("GET", "/").source_ip(&ip).build();
            tokio::spawn(async move {
                shared::http::dispatch(&shared::handlers::ROOT, request, state)
                    .await
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|&&status| status == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&status| status == 429).count(),
        40,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn admitted_and_refused_responses_carry_the_rate_limit_headers() {
    let app = TestApp::with_settings(&[("RATE_LIMIT_READ_PER_MIN", "3")]).await;
    let ip = unique_ip();
    start_of_a_window().await;
    for remaining in ["2", "1", "0"] {
        let response = get_root(&app, &ip).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(response.header("x-ratelimit-remaining"), Some(remaining));
        assert!(response.header("x-ratelimit-reset").is_some());
    }
    let refused = get_root(&app, &ip).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(
        refused.header("x-ratelimit-reset"),
        Some(retry_after.to_string().as_str())
    );
    let body = refused.json();
    assert_eq!(body["error"], "Rate limit exceeded");
    assert_eq!(body["retry_after"], retry_after);
    assert!(body["detail"].as_str().unwrap().contains("retry"));
}

#[tokio::test]
async fn a_refused_request_runs_no_handler() {
    let app = TestApp::with_settings(&[("RATE_LIMIT_AUTH_PER_MIN", "1")]).await;
    let ip = unique_ip();
    start_of_a_window().await;
    let register = |username: String| {
        let body = serde_json::json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD});
        app.call(
            &shared::handlers::REGISTER,
            event("POST", "/api/auth/register")
                .source_ip(&ip)
                .json(&body)
                .build(),
        )
    };
    assert_eq!(register(unique_username()).await.status(), 201);
    let refused_name = unique_username();
    assert_eq!(register(refused_name.clone()).await.status(), 429);
    assert!(
        app.state
            .store
            .credential(&refused_name)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn garbage_tokens_and_forwarded_for_headers_share_the_ip_bucket() {
    let app = TestApp::with_settings(&[("RATE_LIMIT_READ_PER_MIN", "5")]).await;
    let ip = unique_ip();
    start_of_a_window().await;
    for attempt in 0..5 {
        let request = event("GET", "/")
            .source_ip(&ip)
            .bearer(&format!("garbage-{attempt}"))
            .header("x-forwarded-for", &unique_ip())
            .build();
        assert_eq!(app.call(&ROOT, request).await.status(), 200);
    }
    let request = event("GET", "/")
        .source_ip(&ip)
        .bearer("yet-another")
        .header("x-forwarded-for", "1.2.3.4")
        .build();
    assert_eq!(app.call(&ROOT, request).await.status(), 429);
    // Another source address has its own bucket.
    assert_eq!(get_root(&app, &unique_ip()).await.status(), 200);
}

#[tokio::test]
async fn a_valid_token_counts_against_its_user_wherever_it_comes_from() {
    let app = TestApp::with_settings(&[("RATE_LIMIT_READ_PER_MIN", "3")]).await;
    let (_, token) = app.user_with_token().await;
    start_of_a_window().await;
    for _ in 0..3 {
        let request = event("GET", "/")
            .bearer(&token)
            .source_ip(&unique_ip())
            .build();
        assert_eq!(app.call(&ROOT, request).await.status(), 200);
    }
    let request = event("GET", "/")
        .bearer(&token)
        .source_ip(&unique_ip())
        .build();
    assert_eq!(app.call(&ROOT, request).await.status(), 429);
}

#[tokio::test]
async fn a_revoked_token_counts_against_the_ip_and_not_its_user() {
    let app = TestApp::with_settings(&[("RATE_LIMIT_READ_PER_MIN", "2")]).await;
    let (_, token) = app.user_with_token().await;
    let (_, other_token) = app.user_with_token().await;
    let logout = event("POST", "/api/auth/logout").bearer(&token).build();
    assert_eq!(
        app.call(&shared::handlers::LOGOUT, logout).await.status(),
        200
    );
    start_of_a_window().await;
    let ip = unique_ip();
    for _ in 0..2 {
        let request = event("GET", "/").bearer(&token).source_ip(&ip).build();
        assert_eq!(app.call(&ROOT, request).await.status(), 200);
    }
    // The IP's bucket is spent, whichever token it shows next.
    let request = event("GET", "/")
        .bearer(&other_token)
        .source_ip(&unique_ip())
        .build();
    assert_eq!(app.call(&ROOT, request).await.status(), 200);
    assert_eq!(get_root(&app, &ip).await.status(), 429);
    // The revoked token's user was charged nothing.
    let claims = app.state.jwt_keys().unwrap().verify(&token).unwrap();
    let window = now_ms() / 1000 / 60 * 60;
    let counter = app
        .dynamodb()
        .get_item()
        .table_name(app.table())
        .key(
            "PK",
            AttributeValue::S(format!("RATE#read#root#user:{}", claims.sub)),
        )
        .key("SK", AttributeValue::S(format!("WINDOW#{window}")))
        .send()
        .await
        .unwrap()
        .item;
    let hits = counter
        .as_ref()
        .and_then(|item| item.get("hits"))
        .map(|hits| hits.as_n().unwrap().clone());
    assert!(matches!(hits.as_deref(), None | Some("0")), "{hits:?}");
}

#[tokio::test]
async fn admins_get_the_admin_limit() {
    let app = TestApp::with_settings(&[
        ("RATE_LIMIT_READ_PER_MIN", "2"),
        ("RATE_LIMIT_ADMIN_PER_MIN", "4"),
    ])
    .await;
    let username = unique_username();
    assert_eq!(app.register(&username).await.status(), 201);
    app.act_on(&username, UserAction::Promote).await;
    let token = app.login(&username, PASSWORD).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    start_of_a_window().await;
    for _ in 0..4 {
        let response = app
            .call(&ROOT, event("GET", "/").bearer(&token).build())
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.header("x-ratelimit-limit"), Some("4"));
    }
    assert_eq!(
        app.call(&ROOT, event("GET", "/").bearer(&token).build())
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn the_eleventh_login_attempt_in_a_minute_is_refused() {
    let app = TestApp::with_settings(&[("RATE_LIMIT_AUTH_PER_MIN", "10")]).await;
    let ip = unique_ip();
    start_of_a_window().await;
    let attempt = || {
        let body =
            serde_json::json!({"username": unique_username(), "password": "Wrong-Password-1"});
        app.call(
            &LOGIN,
            event("POST", "/api/auth/login")
                .source_ip(&ip)
                .json(&body)
                .build(),
        )
    };
    for _ in 0..10 {
        assert_eq!(attempt().await.status(), 401);
    }
    let refused = attempt().await;
    assert_eq!(refused.status(), 429);
    assert!(refused.json()["retry_after"].as_u64().unwrap() >= 1);
    assert!(refused.header("retry-after").is_some());
}

#[tokio::test]
async fn the_sixth_failed_login_locks_the_username_even_with_the_right_password() {
    let app = TestApp::new().await;
    let (username, _) = app.user_with_token().await;
    for _ in 0..5 {
        assert_eq!(app.login(&username, "Wrong-Password-1").await.status(), 401);
    }
    let locked = app.login(&username, PASSWORD).await;
    assert_eq!(locked.status(), 423, "{}", locked.text());
    assert_eq!(
        locked.header("content-type"),
        Some("application/problem+json")
    );
    let retry_after = locked.json()["retry_after"].as_u64().unwrap();
    assert!((800..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(
        locked.header("retry-after"),
        Some(retry_after.to_string().as_str())
    );
    assert_eq!(
        locked.json()["detail"],
        format!(
            "Account locked due to too many failed attempts. Try again in {} minutes.",
            retry_after.div_ceil(60)
        )
    );
    assert_eq!(locked.json()["title"], "Locked");
    // Unknown usernames lock alike, so the answer reveals nothing: the same status, detail and
    // headers (the minutes aside, which follow each name's own failures).
    let unknown = unique_username();
    for _ in 0..5 {
        assert_eq!(app.login(&unknown, "Wrong-Password-1").await.status(), 401);
    }
    let unknown_locked = app.login(&unknown, "Wrong-Password-1").await;
    assert_eq!(unknown_locked.status(), 423);
    assert_eq!(
        unknown_locked.json()["detail"],
        "Account locked due to too many failed attempts. Try again in 15 minutes."
    );
    let mut names: Vec<_> = unknown_locked.header_names();
    names.sort();
    let mut known_names = locked.header_names();
    known_names.sort();
    assert_eq!(names, known_names);
}

#[tokio::test]
async fn a_successful_login_does_not_reset_the_failure_count() {
    let app = TestApp::new().await;
    let (username, _) = app.user_with_token().await;
    for _ in 0..4 {
        assert_eq!(app.login(&username, "Wrong-Password-1").await.status(), 401);
    }
    assert_eq!(app.login(&username, PASSWORD).await.status(), 200);
    assert_eq!(app.login(&username, "Wrong-Password-1").await.status(), 401);
    assert_eq!(app.login(&username, PASSWORD).await.status(), 423);
}

#[tokio::test]
async fn expired_counters_left_in_the_table_do_not_count() {
    let app = TestApp::with_settings(&[("RATE_LIMIT_READ_PER_MIN", "3")]).await;
    let ip = unique_ip();
    start_of_a_window().await;
    let window = now_ms() / 1000 / 60 * 60;
    let now = (now_ms() / 1000) as i64;
    for (start, expires_at) in [
        (window, now - 1),
        (window - 60, now - 1),
        (window - 120, now - 3600),
    ] {
        app.dynamodb()
            .put_item()
            .table_name(app.table())
            .item("PK", AttributeValue::S(format!("RATE#read#root#ip:{ip}")))
            .item("SK", AttributeValue::S(format!("WINDOW#{start}")))
            .item("hits", AttributeValue::N("1000".into()))
            .item("expires_at", AttributeValue::N(expires_at.to_string()))
            .send()
            .await
            .unwrap();
    }
    for remaining in ["2", "1", "0"] {
        let response = get_root(&app, &ip).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.header("x-ratelimit-remaining"), Some(remaining));
    }
    assert_eq!(get_root(&app, &ip).await.status(), 429);
}

#[tokio::test]
async fn without_dynamodb_auth_fails_closed_and_the_rest_fails_open() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{closed_port}");
    let app = TestApp::with_settings(&[("DYNAMODB_ENDPOINT", &endpoint)]).await;
    let auth = app.login("somebody", PASSWORD).await;
    assert_eq!(auth.status(), 503);
    assert_eq!(auth.header("retry-after"), Some("1"));
    let open = get_root(&app, &unique_ip()).await;
    assert_eq!(open.status(), 200);
    assert!(open.header("x-ratelimit-limit").is_none());
    // With a token too: a route that does not act for the caller reads no session either.
    let user = shared::domain::User::new(
        &shared::domain::Username::parse("somebody").unwrap(),
        &shared::domain::Email::parse("somebody@example.com").unwrap(),
        time::OffsetDateTime::now_utc(),
    );
    let token = app
        .state
        .jwt_keys()
        .unwrap()
        .issue(
            &user,
            uuid::Uuid::now_v7(),
            time::OffsetDateTime::now_utc(),
            shared::domain::Assurance::Password,
        )
        .token;
    let with_token = event("GET", "/").bearer(&token).build();
    assert_eq!(app.call(&ROOT, with_token).await.status(), 200);
    // /health is exempt: it answers for the table itself.
    assert_eq!(
        app.call(&HEALTH, event("GET", "/health").build())
            .await
            .status(),
        503
    );
}

/// Security review, item 2: tokens of many accounts must not open new buckets for logins.
#[tokio::test]
async fn auth_requests_count_against_the_ip_whatever_token_they_carry() {
    let setup = TestApp::new().await;
    let limited = TestApp::with_settings(&[("RATE_LIMIT_AUTH_PER_MIN", "10")]).await;
    let mut tokens = Vec::new();
    for _ in 0..25 {
        tokens.push(setup.user_with_token().await.1);
    }
    let ip = unique_ip();
    start_of_a_window().await;
    let mut admitted = 0;
    for token in &tokens {
        let body =
            serde_json::json!({"username": unique_username(), "password": "Wrong-Password-1"});
        let request = event("POST", "/api/auth/login")
            .source_ip(&ip)
            .bearer(token)
            .json(&body)
            .build();
        if limited.call(&LOGIN, request).await.status() != 429 {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10, "{admitted} of 25 logins admitted");
}

/// Security review, item 3: the attempt is reserved before the password is verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twelve_parallel_wrong_guesses_get_at_most_five_answers() {
    let app = TestApp::new().await;
    let state = app.state;
    let (username, _) = app.user_with_token().await;
    let guesses: Vec<_> = (0..12)
        .map(|_| {
            let body = serde_json::json!({"username": username, "password": "Wrong-Password-1"});
            let request = event("POST", "/api/auth/login")
                .source_ip(&unique_ip())
                .json(&body)
                .build();
            tokio::spawn(async move {
                shared::http::dispatch(&shared::handlers::LOGIN, request, state)
                    .await
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.unwrap());
    }
    let refused = statuses.iter().filter(|&&status| status == 401).count();
    let locked = statuses.iter().filter(|&&status| status == 423).count();
    assert!(refused <= 5, "{statuses:?}");
    assert_eq!(refused + locked, 12, "{statuses:?}");
    assert_eq!(app.login(&username, PASSWORD).await.status(), 423);
}

/// Security review, item 5: behind a custom domain's base path a route keeps its category.
#[tokio::test]
async fn a_base_path_leaves_a_route_in_its_category() {
    let app = TestApp::with_settings(&[("RATE_LIMIT_AUTH_PER_MIN", "3")]).await;
    let ip = unique_ip();
    start_of_a_window().await;
    let attempt = || {
        let body =
            serde_json::json!({"username": unique_username(), "password": "Wrong-Password-1"});
        app.call(
            &LOGIN,
            event("POST", "/v1/api/auth/login")
                .source_ip(&ip)
                .json(&body)
                .build(),
        )
    };
    for _ in 0..3 {
        let response = attempt().await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.header("x-ratelimit-limit"), Some("3"));
    }
    assert_eq!(attempt().await.status(), 429);
}

/// Security review, item 10: one bucket per route, as the old backend counted.
#[tokio::test]
async fn each_route_has_a_bucket_of_its_own() {
    let app = TestApp::with_settings(&[("RATE_LIMIT_AUTH_PER_MIN", "2")]).await;
    let ip = unique_ip();
    start_of_a_window().await;
    let failed_login = || {
        let body =
            serde_json::json!({"username": unique_username(), "password": "Wrong-Password-1"});
        app.call(
            &LOGIN,
            event("POST", "/api/auth/login")
                .source_ip(&ip)
                .json(&body)
                .build(),
        )
    };
    for _ in 0..2 {
        assert_eq!(failed_login().await.status(), 401);
    }
    assert_eq!(failed_login().await.status(), 429);
    let username = unique_username();
    let body = serde_json::json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD});
    let register = event("POST", "/api/auth/register")
        .source_ip(&ip)
        .json(&body)
        .build();
    let registered = app.call(&shared::handlers::REGISTER, register).await;
    assert_eq!(registered.status(), 201);
    assert_eq!(registered.header("x-ratelimit-remaining"), Some("1"));
}

/// Failing open, the limiter still checks the credentials with a read of their own; when that
/// fails too, a public route answers as it would without them, and an authenticated one is 503
/// (a token's or an API key's alike).
#[tokio::test]
async fn without_dynamodb_public_routes_answer_and_authenticated_ones_are_503() {
    let app = TestApp::new().await;
    let (_, token) = app.user_with_token().await;
    let (_, key) = app
        .key(
            &token,
            &serde_json::json!({"name": "k", "scopes": ["jobs:read"]}),
        )
        .await;
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{closed_port}");
    let dead = TestApp::with_settings(&[("DYNAMODB_ENDPOINT", &endpoint)]).await;
    for request in [
        event("GET", "/").bearer(&token),
        event("GET", "/").api_key(&key),
    ] {
        assert_eq!(dead.call(&ROOT, request.build()).await.status(), 200);
    }
    for (endpoint, request) in [
        (
            &LIST_JOBS,
            event("GET", "/api/scheduler/jobs").bearer(&token),
        ),
        (
            &LIST_JOBS,
            event("GET", "/api/scheduler/jobs").api_key(&key),
        ),
        (&ME, event("GET", "/api/auth/me").api_key(&key)),
    ] {
        let response = dead.call(endpoint, request.build()).await;
        assert_eq!(response.status(), 503, "{}", response.text());
        assert_eq!(response.header("retry-after"), Some("1"));
    }
}
